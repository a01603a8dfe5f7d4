"""What a connection does after a step, and the conversation's names as the worker's hot path uses them."""

from __future__ import annotations

import enum

from ..http import NEXT_STATE, After, Event, State

# After a response, up to this much unread request body is discarded so the
# connection can be reused; a larger remainder closes the connection instead.
MAX_DRAIN = 1024 * 1024
# While a response is pending, pipelined bytes are buffered up to this much;
# beyond it the connection stops reading until the response is sent.
HELD_BUFFER_LIMIT = 65536


class Outcome(enum.Enum):
    """What a connection does after one step of serving it."""

    NEXT = "serve the next request"
    CLOSE = "close the connection"
    PARKED = "wait without a greenlet: for bytes, an async response or a channel's events"


NEXT, CLOSE, PARKED = Outcome.NEXT, Outcome.CLOSE, Outcome.PARKED
WAITING, RECEIVING_HEAD, CLOSED = State.WAITING, State.RECEIVING_HEAD, State.CLOSED
BYTES, HEAD, RESPONDED, HOLD, RESUME = Event.BYTES, Event.HEAD, Event.RESPONDED, Event.HOLD, Event.RESUME
TAKE_OVER, HAND_BACK = Event.TAKE_OVER, Event.HAND_BACK
NEXT_REQUEST, DRAIN_BODY = After.NEXT_REQUEST, After.DRAIN_BODY
ON_HEAD, ON_RESPONDED = NEXT_STATE[HEAD], NEXT_STATE[RESPONDED]  # advance(), for the two moves of every request
