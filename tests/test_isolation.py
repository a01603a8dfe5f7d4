"""Pooled greenlets are reused, and carry nothing of one request into the next.

A worker lends a greenlet from its pool to each request; gevent's ``local``
(``threading.local`` under monkey-patching) and ``contextvars`` must start
empty every time, as they did when every connection had a greenlet of its
own (uvicorn needed ``--reset-contextvars`` for exactly this).
"""

from __future__ import annotations

import collections

import pytest
import requests

APPS = {
    "ring": "tests.fixtures.isolation_apps:ring",
    "flask": "tests.fixtures.isolation_apps:flask_app",
    "django": "tests.fixtures.isolation_apps:django_app",
}


@pytest.mark.parametrize("kind", sorted(APPS))
def test_reused_greenlets_start_every_request_empty(cli_server, kind):
    server = cli_server(APPS[kind], "-b", "127.0.0.1:0")
    url = f"http://127.0.0.1:{server.port}/"
    seen = []
    with requests.Session() as session:  # one keep-alive connection, and fresh ones
        for i in range(30):
            getter = session.get if i % 2 else requests.get
            response = getter(url, params={"mark": f"m{i}"}, timeout=5)
            assert response.status_code == 200, response.text
            seen.append(response.json())
    greenlets = collections.Counter(entry["greenlet"] for entry in seen)
    assert greenlets.most_common(1)[0][1] > 1, "greenlets were not reused: the test would prove nothing"
    for entry in seen:
        assert entry["local"] is None
        assert entry["var"] is None
        assert entry["items"] == []  # a threading.local subclass's __init__ ran again
        if kind == "flask":
            assert entry["g"] is None
        if kind == "django":
            assert entry["language"] == "en-us"
    assert "Traceback" not in server.output


def test_forget_locals_drops_values_and_reruns_init():
    """The mechanism alone, on gevent's compiled local and a subclass with __init__."""
    from gevent.local import local
    from greenlet import getcurrent, greenlet

    from preforkit.worker._pool import forget_locals

    class WithInit(local):
        def __init__(self):
            self.items = []

    plain, with_init = local(), WithInit()
    seen = []

    def tasks():
        me = getcurrent()
        for i in range(3):
            seen.append((getattr(plain, "x", None), list(with_init.items)))
            plain.x = i
            with_init.items.append(i)
            forget_locals(me)

    greenlet(tasks).switch()
    assert seen == [(None, [])] * 3


def test_a_kept_local_stays_with_its_runner_and_is_dropped_when_it_ends():
    """keep_across_tasks (Django's per-thread connections): values survive tasks in one runner,
    other locals do not, and on_drop gets them when the runner ends."""
    import gevent
    from gevent.local import local
    from greenlet import getcurrent

    from preforkit.worker import _pool

    kept, other = local(), local()
    dropped = []
    _pool.keep_across_tasks(kept, dropped.append)
    try:
        pool = _pool.GreenletPool(idle_runners=0)  # every runner ends once the queue is empty
        seen = []

        def task(i):
            seen.append((getattr(kept, "conn", None), getattr(other, "x", None), id(getcurrent())))
            kept.conn = kept.__dict__.get("conn", f"conn of task {i}")
            other.x = i

        for i in range(3):
            pool.spawn(task, i)
        assert pool.join(5)
        gevent.sleep(0)  # the runner ends after its last task
        assert len({runner for _, _, runner in seen}) == 1, "one runner took all three tasks"
        assert seen == [
            (None, None, seen[0][2]),
            ("conn of task 0", None, seen[0][2]),
            ("conn of task 0", None, seen[0][2]),
        ]
        assert dropped == [{"conn": "conn of task 0"}]
    finally:
        _pool._kept.remove((kept, dropped.append))
