"""The conversation's states and decisions, without a socket (in the style of h11's test_state.py)."""

from __future__ import annotations

import pytest

from preforkit.http import (
    TRANSITIONS,
    After,
    Event,
    LocalProtocolError,
    State,
    advance,
    after_response,
    may_send_continue,
    response_keeps_alive,
)

S, E = State, Event


def walk(*events: Event, start: State = S.WAITING) -> list[State]:
    states = [start]
    for event in events:
        states.append(advance(states[-1], event))
    return states


def test_keep_alive_requests_one_after_another():
    assert walk(E.HEAD, E.RESPONDED, E.BYTES, E.BYTES, E.HEAD, E.RESPONDED) == [
        S.WAITING, S.HANDLING, S.WAITING, S.RECEIVING_HEAD, S.RECEIVING_HEAD, S.HANDLING, S.WAITING,
    ]  # fmt: skip


def test_an_async_response_and_a_channel():
    assert walk(E.HEAD, E.HOLD, E.RESUME, E.RESPONDED) == [S.WAITING, S.HANDLING, S.HELD, S.HANDLING, S.WAITING]
    assert walk(E.HEAD, E.TAKE_OVER, E.HAND_BACK) == [S.WAITING, S.HANDLING, S.CHANNEL, S.WAITING]


@pytest.mark.parametrize("state", list(State))
def test_every_state_can_close(state):
    assert advance(state, E.CLOSE) is S.CLOSED


@pytest.mark.parametrize(
    ("state", "event"),
    [(state, event) for state in State for event in Event if (state, event) not in TRANSITIONS],
)
def test_every_other_move_is_refused(state, event):
    with pytest.raises(LocalProtocolError):
        advance(state, event)


def test_nothing_follows_closed():
    assert [event for (state, event) in TRANSITIONS if state is S.CLOSED] == [E.CLOSE]


@pytest.mark.parametrize(
    ("client", "stopping", "body", "expected"),
    [
        (True, False, {}, True),
        (False, False, {}, False),  # Connection: close, or HTTP/1.0 without keep-alive
        (True, True, {}, False),  # the worker is stopping
        (True, False, {"body_done": False, "body_left": 10}, True),  # a small unread rest is skipped
        (True, False, {"body_done": False, "body_left": 2 * 1024 * 1024}, False),  # too much to skip
        (True, False, {"body_done": False, "body_left": None}, True),  # chunked: tried
        (True, False, {"body_done": False, "awaiting_continue": True}, False),  # the client holds the body back
    ],
)
def test_response_keeps_alive(client, stopping, body, expected):
    assert response_keeps_alive(client, stopping, **body) is expected


def test_after_response():
    assert after_response(True, True) is After.NEXT_REQUEST
    assert after_response(True, False) is After.DRAIN_BODY
    assert after_response(False, True) is After.CLOSE
    assert after_response(False, False) is After.CLOSE


def test_may_send_continue():
    assert may_send_continue("1.1", True, False)
    assert not may_send_continue("1.0", True, False)  # RFC 9110 §10.1.1
    assert not may_send_continue("1.1", True, True)  # never twice
    assert not may_send_continue("1.1", False, False)
