"""The server side of one HTTP/1.1 connection, without I/O: where it stands and what may follow.

A connection is in one ``State`` at a time; ``TRANSITIONS`` holds every legal
move and ``advance`` refuses any other (a bug in the caller:
``LocalProtocolError``).  The questions a server must answer between the
bytes - may this response keep the connection alive, must the unread body be
discarded first, may ``100 Continue`` still be sent - are pure functions of
what the request said and what happened since, so they are tested here with
no socket at all (``tests/test_http_conversation.py``).
"""

from __future__ import annotations

import enum

from ._errors import LocalProtocolError


class State(enum.IntEnum):
    """Where a connection stands (small integers, so that ``NEXT_STATE`` tables index by them)."""

    WAITING = 0  # no byte of the next request yet (new, or idle between keep-alive requests)
    RECEIVING_HEAD = 1  # part of a request head has arrived
    HANDLING = 2  # a request is being answered: the app runs, its response is written
    HELD = 3  # the app answers later (an async response); the connection waits without a greenlet
    CHANNEL = 4  # a WebSocket or a streamed response owns the connection
    CLOSED = 5


class Event(enum.Enum):
    """What moves a connection from one state to another."""

    __hash__ = object.__hash__

    BYTES = "bytes of a request head arrived, not the whole head"
    HEAD = "a whole request head arrived"
    RESPONDED = "a response was sent and the connection is kept for the next request"
    HOLD = "the handler returned an async response"
    RESUME = "the async response is being written"
    TAKE_OVER = "a channel took the connection over"
    HAND_BACK = "a streamed response ended on a keep-alive connection"
    CLOSE = "the connection closes (from any state)"


WAITING, RECEIVING_HEAD, HANDLING, HELD, CHANNEL, CLOSED = State
BYTES, HEAD, RESPONDED, HOLD, RESUME, TAKE_OVER, HAND_BACK, CLOSE = Event

# Every legal move.  A pipelined request moves HANDLING -> WAITING -> HANDLING
# without waiting: the next head is already in the buffer.
TRANSITIONS: dict[tuple[State, Event], State] = {
    (WAITING, BYTES): RECEIVING_HEAD,
    (WAITING, HEAD): HANDLING,
    (RECEIVING_HEAD, BYTES): RECEIVING_HEAD,
    (RECEIVING_HEAD, HEAD): HANDLING,
    (HANDLING, RESPONDED): WAITING,
    (HANDLING, HOLD): HELD,
    (HELD, RESUME): HANDLING,
    (HANDLING, TAKE_OVER): CHANNEL,
    (CHANNEL, HAND_BACK): WAITING,
}
for _state in State:
    TRANSITIONS[_state, CLOSE] = CLOSED


# The same moves as one tuple per event, indexed by the current state (None:
# not a legal move): what the worker looks up on its hot path, a tuple index
# instead of a dict lookup on a (state, event) pair.
NEXT_STATE: dict[Event, tuple[State | None, ...]] = {
    event: tuple(TRANSITIONS.get((state, event)) for state in State) for event in Event
}


def advance(state: State, event: Event) -> State:
    """The state after ``event``; ``LocalProtocolError`` if ``event`` cannot happen in ``state``."""
    try:
        return TRANSITIONS[state, event]
    except KeyError:
        raise LocalProtocolError(f"{event.name} cannot happen while {state.name}") from None


class After(enum.Enum):
    """What a connection does once a response has been written."""

    NEXT_REQUEST = "read (or find in the buffer) the next request"
    DRAIN_BODY = "discard the unread rest of the request body, then read the next request"
    CLOSE = "close the connection"


def response_keeps_alive(
    client_keeps_alive: bool,
    stopping: bool,
    body_done: bool = True,
    awaiting_continue: bool = False,
    body_left: int | None = None,
    max_drain: int = 1024 * 1024,
) -> bool:
    """Whether a response may announce keep-alive (else it says ``Connection: close``).

    The client must allow it (RFC 9112 §9.3: HTTP/1.1 unless ``close``,
    HTTP/1.0 only with ``keep-alive``) and the server must not be stopping.
    An unread request body must be skippable: not when the client still waits
    for ``100 Continue`` (it may never send the body, or send it later:
    RFC 9110 §10.1.1), nor when more than ``max_drain`` bytes are announced.
    A chunked body of unknown length is tried (``body_left`` None).
    """
    if not client_keeps_alive or stopping:
        return False
    if body_done:
        return True
    if awaiting_continue:
        return False
    return body_left is None or body_left <= max_drain


def after_response(keeps_alive: bool, body_done: bool) -> After:
    """The step after a response: the next request, a drain first, or close.

    Keep to what the response announced: closing a connection that was
    promised keep-alive could cut a request the client already sent.
    """
    if not keeps_alive:
        return After.CLOSE
    return After.NEXT_REQUEST if body_done else After.DRAIN_BODY


def may_send_continue(http_version: str, expect_continue: bool, already_sent: bool) -> bool:
    """``100 Continue`` goes out when the app first reads a body the client holds back.

    Never to HTTP/1.0 (RFC 9110 §10.1.1: a server MUST NOT send it to a 1.0
    client) and never twice.
    """
    return http_version == "1.1" and expect_continue and not already_sent


from .._accel import accelerate  # noqa: E402  (last: the compiled twin replaces these names)

accelerate(globals())
