"""The one outbox every non-blocking writer uses: bytes in, sends out, one backpressure rule."""

from __future__ import annotations

import pytest

from preforkit._common.outbox import Outbox


class Peer:
    """A socket's send(): takes up to ``room`` bytes per call, then would block."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.received = bytearray()

    def send(self, data) -> int:
        if self.room == 0:
            raise BlockingIOError
        taken = bytes(data[: self.room])
        self.room -= len(taken)
        self.received += taken
        return len(taken)


def test_flush_writes_in_order_until_the_socket_would_block():
    outbox = Outbox()
    for chunk in (b"abc", b"defg", b"hi"):
        assert outbox.push(chunk)
    peer = Peer(room=5)
    assert outbox.flush(peer.send) is False
    assert peer.received == b"abcde"
    assert (len(outbox), outbox.size) == (2, 4)  # "fg" and "hi" wait
    peer.room = 100
    assert outbox.flush(peer.send) is True
    assert peer.received == b"abcdefghi"
    assert (len(outbox), outbox.size, bool(outbox)) == (0, 0, False)


@pytest.mark.parametrize("room", [1, 2, 3, 7])
def test_any_split_delivers_the_same_bytes(room):
    outbox = Outbox()
    data = [bytes([65 + i]) * (i + 1) for i in range(8)]
    for chunk in data:
        outbox.push(chunk)
    peer = Peer(room=0)
    for _ in range(100):
        peer.room = room
        if outbox.flush(peer.send):
            break
    assert peer.received == b"".join(data)


def test_message_limit_refuses_and_counts():
    outbox = Outbox(max_items=2)
    assert outbox.push(b"1")
    assert outbox.push(b"2")
    assert not outbox.push(b"3")
    assert outbox.push(b"close frame", force=True)
    assert (len(outbox), outbox.dropped) == (3, 1)


def test_byte_limit_refuses_and_counts():
    outbox = Outbox(max_bytes=10)
    assert outbox.push(b"x" * 6)
    assert not outbox.push(b"y" * 5)
    assert outbox.push(b"z" * 4)
    assert (outbox.size, outbox.dropped) == (10, 1)


def test_push_front_goes_before_what_waits():
    outbox = Outbox()
    outbox.push(b"later")
    outbox.push_front(memoryview(b"rest of the first")[8:])
    peer = Peer(room=100)
    assert outbox.flush(peer.send)
    assert peer.received == b"the firstlater"


def test_a_gone_peer_raises_and_clear_empties():
    outbox = Outbox()
    outbox.push(b"data")

    def broken(_data):
        raise BrokenPipeError

    with pytest.raises(BrokenPipeError):
        outbox.flush(broken)
    outbox.clear()
    assert (len(outbox), outbox.size) == (0, 0)
