"""What the master and its workers agree on: exit statuses, states, signals, the slot board."""

from __future__ import annotations

import mmap
import signal
import time

from . import stats

# Exit statuses with a meaning for the master (gunicorn's WORKER_BOOT_ERROR /
# APP_LOAD_ERROR): the master halts instead of respawning forever.
EXIT_BOOT_ERROR = 3
EXIT_APP_LOAD_ERROR = 4  # the app module raised while being imported
EXIT_APP_SPEC_ERROR = 5  # MODULE:ATTR does not name a callable

BOOTING, READY, DRAINING = 0, 1, 2
CONNECTION_STATES = ("idle", "active", "held", "websocket", "stream")

# Signals the master handles; a new worker starts with the default action.
MASTER_SIGNALS = (
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGCHLD,
    signal.SIGWINCH,
)


# The board's layout, in 8-byte words.  A worker writes its slot while the master
# (and, for balancing, the other workers) read it, with no lock.  Each field is
# aligned and written and read whole through a memoryview cast to its type: one
# machine store or load of the field's size, so a reader gets the old value or
# the new one.  ``struct.pack_into`` will not do: it zeroes the bytes it is about
# to write, and a master reading at that moment once saw a heartbeat of 0.0 and
# killed a healthy worker as hung.
_HEAD_WORDS = 1  # the board's first word: how many slots were ever handed out (int32)
_BEAT = 0  # last heartbeat (CLOCK_MONOTONIC, float64)
_STATE = 1  # state, open connections (two int32)
_CENSUS = 2  # connections by state (five int32, ``CONNECTION_STATES``), three words
_REQUESTS = 5  # requests served (uint64)
_COUNTERS = 6  # the counters of ``stats`` (uint64 each), then the sum of durations (float64)
_DURATION = _COUNTERS + len(stats.COUNTERS)
_NOTE = _DURATION + 1  # what a stalled event loop is busy with (UTF-8, NUL-padded), for the master's log
_NOTE_BYTES = 256
_SLOT_WORDS = _NOTE + _NOTE_BYTES // 8


def _slot_base(index: int) -> int:
    """The first word of slot ``index`` on the board."""
    return _HEAD_WORDS + index * _SLOT_WORDS


class _Words:
    """An anonymous shared mapping, seen as 8-byte words and their 4-byte halves."""

    def __init__(self, words: int) -> None:
        self._map = mmap.mmap(-1, 8 * words)  # MAP_SHARED: forked children see the same pages
        self.bytes = memoryview(self._map)
        self.f64 = self.bytes.cast("d")
        self.u64 = self.bytes.cast("Q")
        self.i32 = self.bytes.cast("i")

    def clear(self, word: int, count: int) -> None:
        self.bytes[8 * word : 8 * (word + count)] = bytes(8 * count)

    def close(self) -> None:
        for view in (self.f64, self.u64, self.i32, self.bytes):
            view.release()
        self._map.close()


class SlotBoard:
    """Shared memory for all workers: one slot each (heartbeat, state, connections, counters).

    Made by the master before the first fork, so every worker ever forked
    maps the same pages: the master reads heartbeats from it, and a worker
    sharing a listening socket reads the others' connection counts to leave
    new connections to a less loaded worker.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self.words = _Words(_HEAD_WORDS + _SLOT_WORDS * capacity)
        self._free = list(range(capacity - 1, -1, -1))  # the master's bookkeeping

    def take(self) -> WorkerSlot:
        """In the master: a slot for a new worker (a private one if the board is full)."""
        if not self._free:
            return WorkerSlot()
        index = self._free.pop()
        head = self.words.i32
        if index + 1 > head[0]:
            head[0] = index + 1
        return WorkerSlot(self, index)

    def give_back(self, slot: WorkerSlot) -> None:
        """In the master, once the worker is gone."""
        if slot.board is self:
            self.words.clear(slot.base, _SLOT_WORDS)  # beat 0, BOOTING, no counts
            self._free.append(slot.index)

    def fewest_connections(self, besides: int) -> int | None:
        """The fewest connections of a serving worker other than slot ``besides`` (None: no other)."""
        fewest = None
        i32 = self.words.i32
        for index in range(i32[0]):
            if index == besides:
                continue
            at = 2 * (_slot_base(index) + _STATE)
            if i32[at] == READY:
                connections = i32[at + 1]
                if fewest is None or connections < fewest:
                    fewest = connections
        return fewest


class WorkerSlot:
    """One worker's place in shared memory: heartbeat, state, open connections, counters.

    Taken from the master's ``SlotBoard`` before the fork (or private, without
    a board); the worker writes it from its event loop, so a stale heartbeat
    means the loop has stopped turning.
    """

    def __init__(self, board: SlotBoard | None = None, index: int = -1) -> None:
        self.board = board
        self.index = index
        if board is None:
            self._words = _Words(_SLOT_WORDS)
            self.base = 0  # the slot's first word
        else:
            self._words = board.words
            self.base = _slot_base(index)
        self._f64, self._u64, self._i32 = self._words.f64, self._words.u64, self._words.i32
        self._state_at = 2 * (self.base + _STATE)  # in int32s; the connections follow
        self.connections = 0
        self.beat(BOOTING)

    def beat(self, state: int | None = None) -> None:
        if state is not None:
            self._i32[self._state_at] = state
        self._f64[self.base + _BEAT] = time.monotonic()

    def count(self, connections: int) -> None:
        """The worker's open connections now."""
        self.connections = connections
        self._i32[self._state_at + 1] = connections

    def fewest_elsewhere(self) -> int | None:
        """The fewest connections any other serving worker has (None: no other, or no board)."""
        return None if self.board is None else self.board.fewest_connections(self.index)

    def note(self, text: str) -> None:
        """Say what the event loop is stuck in ("" once it turns again); any thread may call this."""
        data = text.encode("utf-8", "replace")[: _NOTE_BYTES - 1]
        start = 8 * (self.base + _NOTE)
        self._words.bytes[start : start + _NOTE_BYTES] = data.ljust(_NOTE_BYTES, b"\0")

    def publish(self, connections: tuple[int, int, int, int, int], requests: int, counters: tuple = ()) -> None:
        """The worker's connections by state (``CONNECTION_STATES``), requests served so far
        and its metrics counters (``stats.WorkerCounters.values()``)."""
        i32, u64 = self._i32, self._u64
        at = 2 * (self.base + _CENSUS)
        for offset, count in enumerate(connections):
            i32[at + offset] = count
        u64[self.base + _REQUESTS] = requests
        if counters:
            for word, count in zip(range(self.base + _COUNTERS, self.base + _DURATION), counters):
                u64[word] = count
            self._f64[self.base + _DURATION] = counters[-1]

    def counters(self) -> dict:
        at = self.base + _COUNTERS
        return stats.as_dict(self._u64[at : at + len(stats.COUNTERS)].tolist(), self._f64[self.base + _DURATION])

    def connection_states(self) -> dict[str, int]:
        at = 2 * (self.base + _CENSUS)
        return dict(zip(CONNECTION_STATES, self._i32[at : at + len(CONNECTION_STATES)].tolist()))

    @property
    def requests(self) -> int:
        return self._u64[self.base + _REQUESTS]

    @property
    def noted(self) -> str:
        start = 8 * (self.base + _NOTE)
        return bytes(self._words.bytes[start : start + _NOTE_BYTES]).split(b"\0", 1)[0].decode("utf-8", "replace")

    @property
    def last_beat(self) -> float:
        return self._f64[self.base + _BEAT]

    @property
    def state(self) -> int:
        return self._i32[self._state_at]

    def close(self) -> None:
        if self.board is None:
            self._words.close()
        else:
            self.board.give_back(self)
