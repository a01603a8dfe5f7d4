"""A worker's connections counted by state, for its slot (``preforkit status``, metrics)."""

from __future__ import annotations

from ._outcome import WAITING


def census(server) -> tuple[int, int, int, int, int]:
    """(idle, active, held, websocket, stream) connections of ``server`` now.

    idle: waiting for a request (new or between keep-alive requests); held:
    parked for an async response; websocket / stream: owned by a channel;
    active: everything else (reading a request, in the handler, writing).
    """
    idle = active = held = websocket = stream = 0
    for connection in server.connections:
        channel = connection.channel
        if channel is not None:
            if channel.is_websocket:
                websocket += 1
            else:
                stream += 1
        elif connection.held:
            held += 1
        elif connection.state is WAITING and not connection.head_started:
            idle += 1
        else:
            active += 1
    return idle, active, held, websocket, stream
