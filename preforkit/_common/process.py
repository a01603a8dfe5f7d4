"""What the master and its workers agree on: exit statuses, states, signals, the slot board."""

from __future__ import annotations

import mmap
import signal
import struct
import time

from . import stats

# Exit statuses with a meaning for the master (gunicorn's WORKER_BOOT_ERROR /
# APP_LOAD_ERROR): the master halts instead of respawning forever.
EXIT_BOOT_ERROR = 3
EXIT_APP_LOAD_ERROR = 4  # the app module raised while being imported
EXIT_APP_SPEC_ERROR = 5  # MODULE:ATTR does not name a callable

BOOTING, READY, DRAINING = 0, 1, 2
_SLOT = struct.Struct("=dii")  # last heartbeat (CLOCK_MONOTONIC), state, open connections
_NOTE = struct.Struct("=H254s")  # then: what a stalled event loop is busy with (UTF-8), for the master's log
_STATS = struct.Struct("=5iQ")  # then: connections idle, active, held, websocket, stream; requests served
_STATS_OFFSET = _SLOT.size + _NOTE.size
_COUNTERS_OFFSET = _STATS_OFFSET + _STATS.size  # then: the counters of ``stats`` (metrics)
_STRIDE = _COUNTERS_OFFSET + stats.FORMAT.size
CONNECTION_STATES = ("idle", "active", "held", "websocket", "stream")
_SLOT_HEAD = struct.Struct("=i")  # the board's first bytes: how many slots were ever handed out

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


class SlotBoard:
    """Shared memory for all workers: one slot each (heartbeat, state, connections).

    Made by the master before the first fork, so every worker ever forked
    maps the same pages: the master reads heartbeats from it, and a worker
    sharing a listening socket reads the others' connection counts to leave
    new connections to a less loaded worker.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self._map = mmap.mmap(-1, _SLOT_HEAD.size + _STRIDE * capacity)
        self._free = list(range(capacity - 1, -1, -1))  # the master's bookkeeping

    def take(self) -> WorkerSlot:
        """In the master: a slot for a new worker (a private one if the board is full)."""
        if not self._free:
            return WorkerSlot()
        index = self._free.pop()
        if index + 1 > _SLOT_HEAD.unpack_from(self._map, 0)[0]:
            _SLOT_HEAD.pack_into(self._map, 0, index + 1)
        return WorkerSlot(self, index)

    def give_back(self, slot: WorkerSlot) -> None:
        """In the master, once the worker is gone."""
        if slot.board is self:
            self._map[slot.offset : slot.offset + _STRIDE] = bytes(_STRIDE)  # beat 0, BOOTING, no counts
            self._free.append(slot.index)

    def fewest_connections(self, besides: int) -> int | None:
        """The fewest connections of a serving worker other than slot ``besides`` (None: no other)."""
        fewest = None
        buffer = self._map
        for index in range(_SLOT_HEAD.unpack_from(buffer, 0)[0]):
            if index == besides:
                continue
            _, state, connections = _SLOT.unpack_from(buffer, _SLOT_HEAD.size + index * _STRIDE)
            if state == READY and (fewest is None or connections < fewest):
                fewest = connections
        return fewest


class WorkerSlot:
    """One worker's place in shared memory: heartbeat, state, open connections.

    Taken from the master's ``SlotBoard`` before the fork (or private, without
    a board); the worker writes it from its event loop, so a stale heartbeat
    means the loop has stopped turning.
    """

    def __init__(self, board: SlotBoard | None = None, index: int = -1) -> None:
        self.board = board
        self.index = index
        if board is None:
            self._map = mmap.mmap(-1, _STRIDE)
            self.offset = 0
        else:
            self._map = board._map
            self.offset = _SLOT_HEAD.size + index * _STRIDE
        self.connections = 0
        self.beat(BOOTING)

    def beat(self, state: int | None = None) -> None:
        if state is None:
            state = self.state
        _SLOT.pack_into(self._map, self.offset, time.monotonic(), state, self.connections)

    def count(self, connections: int) -> None:
        """The worker's open connections now."""
        self.connections = connections
        _COUNT.pack_into(self._map, self.offset + _COUNT_OFFSET, connections)

    def fewest_elsewhere(self) -> int | None:
        """The fewest connections any other serving worker has (None: no other, or no board)."""
        return None if self.board is None else self.board.fewest_connections(self.index)

    def note(self, text: str) -> None:
        """Say what the event loop is stuck in ("" once it turns again); any thread may call this."""
        data = text.encode("utf-8", "replace")[: _NOTE.size - 2]
        _NOTE.pack_into(self._map, self.offset + _SLOT.size, len(data), data)

    def publish(self, connections: tuple[int, int, int, int, int], requests: int, counters: tuple = ()) -> None:
        """The worker's connections by state (``CONNECTION_STATES``), requests served so far
        and its metrics counters (``stats.WorkerCounters.values()``)."""
        _STATS.pack_into(self._map, self.offset + _STATS_OFFSET, *connections, requests)
        if counters:
            stats.FORMAT.pack_into(self._map, self.offset + _COUNTERS_OFFSET, *counters)

    def counters(self) -> dict:
        return stats.unpack(self._map, self.offset + _COUNTERS_OFFSET)

    def connection_states(self) -> dict[str, int]:
        return dict(zip(CONNECTION_STATES, _STATS.unpack_from(self._map, self.offset + _STATS_OFFSET)))

    @property
    def requests(self) -> int:
        return _STATS.unpack_from(self._map, self.offset + _STATS_OFFSET)[5]

    @property
    def noted(self) -> str:
        length, data = _NOTE.unpack_from(self._map, self.offset + _SLOT.size)
        return data[:length].decode("utf-8", "replace")

    @property
    def last_beat(self) -> float:
        return _SLOT.unpack_from(self._map, self.offset)[0]

    @property
    def state(self) -> int:
        return _SLOT.unpack_from(self._map, self.offset)[1]

    def close(self) -> None:
        if self.board is None:
            self._map.close()
        else:
            self.board.give_back(self)


_COUNT = struct.Struct("=i")
_COUNT_OFFSET = struct.calcsize("=di")
