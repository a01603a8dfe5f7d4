"""WebSocket echo: ``preforkit examples.ws_echo:handler``.

Every message comes back with the same type (text as text, binary as binary),
on any path.  A plain HTTP request gets a short explanation.
"""

from preforkit import as_channel


def echo(channel, message):
    channel.send(message)


def handler(request):
    if not request["websocket"]:
        return {"headers": {"Content-Type": "text/plain"}, "body": "A WebSocket echo server: connect with ws://\n"}
    return as_channel(request, on_receive=echo)
