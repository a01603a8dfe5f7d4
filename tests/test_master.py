"""The prefork master with real processes, real signals and real load."""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import sys
import threading
import time

import psutil
import pytest
import requests

from .conftest import ROOT
from .load import Wrk, needs_wrk

APP = "tests.fixtures.master_apps:handler"


def workers_of(server) -> list[int]:
    return sorted(child.pid for child in psutil.Process(server.process.pid).children())


def served_by(port: int, path: str = "/") -> int:
    return int(requests.get(f"http://127.0.0.1:{port}{path}", timeout=10).text.split()[-1])


def served_by_many(port: int, count: int = 40) -> set[int]:
    """Pids that answer ``count`` connections opened at once (so several workers accept)."""
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(count)]
    pids = set()
    try:
        for sock in sockets:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        for sock in sockets:
            reply = b""
            while chunk := sock.recv(4096):
                reply += chunk
            pids.add(int(reply.rsplit(b"\r\n\r\n", 1)[1]))
    finally:
        for sock in sockets:
            sock.close()
    return pids


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02):
    """Poll a condition the server offers no event for (a process table)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def test_workers_forked_named_and_serving(cli_server):
    server = cli_server(APP, "-b", "127.0.0.1:0", "-w", "3")
    assert server.wait_for("Ready: 3 workers serving")
    pids = workers_of(server)
    assert len(pids) == 3
    master = psutil.Process(server.process.pid)
    try:
        import setproctitle  # noqa: F401
    except ImportError:
        assert master.name() == "pfk-master"
        assert {psutil.Process(pid).name() for pid in pids} == {"pfk-worker"}
    else:
        assert " ".join(master.cmdline()).startswith("preforkit: master [")
        assert all(" ".join(psutil.Process(p).cmdline()).startswith("preforkit: worker [") for p in pids)
    seen = {served_by(server.port) for _ in range(60)}
    assert seen <= set(pids)


def test_dead_worker_replaced_within_a_second(cli_server):
    server = cli_server(APP, "-b", "127.0.0.1:0", "-w", "2")
    assert server.wait_for("Ready: 2 workers")
    before = set(workers_of(server))
    victim = min(before)
    start = len(server.lines)
    killed_at = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    assert server.wait_for(rf"Worker {victim} killed by SIGKILL; replacing it", timeout=5, start=start)
    new = wait_until(lambda: set(workers_of(server)) - before, timeout=5)
    assert len(new) == 1
    replacement = new.pop()
    # The replacement is up within a second of the kill, and serves.
    assert server.wait_for(rf"Worker {replacement}: using the ring interface", timeout=5, start=start)
    assert time.monotonic() - killed_at < 1.0
    # It logs that line before its accept loop starts: poll (bounded in time, not in tries,
    # which a faster server used up before the replacement took its first client).
    assert wait_until(lambda: replacement in served_by_many(server.port), timeout=5)
    assert victim not in workers_of(server)


@needs_wrk
def test_kill_9_during_load_loses_only_that_workers_connections(cli_server):
    server = cli_server(APP, "-b", "127.0.0.1:0", "-w", "2")
    assert server.wait_for("Ready: 2 workers")
    load = Wrk(server.port, connections=40, seconds=4)

    def established() -> dict[int, int]:
        return {
            pid: len([c for c in psutil.Process(pid).net_connections("tcp") if c.status == "ESTABLISHED"])
            for pid in workers_of(server)
        }

    assert wait_until(lambda: sum(established().values()) >= 40, timeout=5)
    counts = established()
    victim = max(counts, key=counts.get)  # the kernel need not spread wrk's connections evenly
    connections = counts[victim]
    os.kill(victim, signal.SIGKILL)
    result = load.result()
    assert result["requests"] > 1000
    assert result["non2xx"] == 0
    assert result["errors"] <= connections, result["output"]


@needs_wrk
def test_hup_reload_under_load_no_errors_and_new_code(cli_server, tmp_path):
    module = tmp_path / "reloadable.py"
    module.write_text("def handler(request):\n    return {'body': 'version 1'}\n")
    server = cli_server(
        "reloadable:handler", "-b", "127.0.0.1:0", "-w", "2", "--chdir", str(tmp_path),
        env={"PYTHONDONTWRITEBYTECODE": "1"},
    )  # fmt: skip
    assert server.wait_for("Ready: 2 workers")
    assert requests.get(f"http://127.0.0.1:{server.port}/", timeout=5).text == "version 1"
    load = Wrk(server.port, connections=50, seconds=20)
    module.write_text("def handler(request):\n    return {'body': 'version 2'}\n")
    old = workers_of(server)
    start = len(server.lines)
    server.signal(signal.SIGHUP)
    assert server.wait_for("Reload complete", timeout=15, start=start)
    assert wait_until(lambda: not set(old) & set(workers_of(server)), timeout=15)
    assert requests.get(f"http://127.0.0.1:{server.port}/", timeout=5).text == "version 2"
    result = load.result()
    assert result["requests"] > 10000
    assert (result["errors"], result["non2xx"]) == (0, 0), result["output"]


def test_term_lets_100_slow_requests_finish(cli_server):
    server = cli_server(APP, "-b", "127.0.0.1:0", "-w", "2")
    assert server.wait_for("Ready: 2 workers")
    results = []

    def client():
        try:
            response = requests.get(f"http://127.0.0.1:{server.port}/slow", timeout=20)
            results.append(response.status_code)
        except requests.RequestException as exc:
            results.append(repr(exc))

    threads = [threading.Thread(target=client) for _ in range(100)]
    for thread in threads:
        thread.start()
    assert server.wait_for("slow request started", count=100, timeout=15)
    server.signal(signal.SIGTERM)
    for thread in threads:
        thread.join(timeout=20)
    assert results == [200] * 100
    assert server.process.wait(timeout=15) == 0


def test_ttin_ttou_change_worker_count(cli_server):
    server = cli_server(APP, "-b", "127.0.0.1:0", "-w", "2")
    assert server.wait_for("Ready: 2 workers")
    server.signal(signal.SIGTTIN)
    assert server.wait_for("SIGTTIN: 3 workers")
    assert wait_until(lambda: len(workers_of(server)) == 3)
    # Two identical signals sent at once may merge into one (POSIX), so wait between.
    server.signal(signal.SIGTTOU)
    assert server.wait_for("SIGTTOU: 2 workers")
    server.signal(signal.SIGTTOU)
    assert server.wait_for("fewer workers wanted", count=2)
    assert wait_until(lambda: len(workers_of(server)) == 1)
    server.signal(signal.SIGTTOU)
    assert server.wait_for("SIGTTOU: 1 worker", count=2)
    assert len(workers_of(server)) == 1


def test_stuck_worker_traceback_and_replacement(cli_server):
    server = cli_server(APP, "-b", "127.0.0.1:0", "-w", "1", "--timeout", "2")
    assert server.wait_for("Ready: 1 worker serving")
    old = workers_of(server)
    try:
        requests.get(f"http://127.0.0.1:{server.port}/stuck", timeout=10)
    except requests.RequestException:
        pass  # the connection dies with the worker
    assert server.wait_for(r"Worker \d+ is hung", timeout=10)
    assert server.wait_for(r'File ".*master_apps.py", line \d+ in handler', timeout=10)
    assert server.wait_for(r"Booting worker", count=2, timeout=10)
    assert served_by(server.port) not in old


def test_workers_outlive_a_frozen_server(cli_server):
    """All the server's processes stopped for longer than --timeout (SIGSTOP, a cgroup
    freezer, `docker pause`, a suspended VM), then continued: nobody was hung, so no
    worker is killed.  The master noticed that it did not run itself for that long and
    counts the heartbeats from its own resumption.  Continued master first, as a thaw
    may: the old master woke to heartbeats 5 s old and killed every worker."""
    server = cli_server(APP, "-b", "127.0.0.1:0", "-w", "2", "--timeout", "2")
    assert server.wait_for("Ready: 2 workers serving")
    master = server.process.pid
    workers = workers_of(server)
    for pid in [master, *workers]:
        os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(5)  # the thing under test: a stop longer than --timeout (2 s)
    finally:
        for pid in [master, *workers]:
            os.kill(pid, signal.SIGCONT)
    assert server.wait_for(r"The master did not run for [\d.]+ s", timeout=10)
    assert {served_by(server.port) for _ in range(20)} <= set(workers)
    assert not server.wait_for(r"is hung|Booting worker", start=len(server.lines), timeout=3)
    assert workers_of(server) == workers
    assert "is hung" not in server.output


@needs_wrk
def test_max_requests_recycles_under_load_without_errors(cli_server):
    server = cli_server(APP, "-b", "127.0.0.1:0", "-w", "2", "--max-requests", "2000", "--max-requests-jitter", "200")
    assert server.wait_for("Ready: 2 workers")
    result = Wrk(server.port, connections=20, seconds=5).result()
    assert server.wait_for(r"recycling: served \d+ requests", count=2)
    assert result["requests"] > 8000
    assert (result["errors"], result["non2xx"]) == (0, 0), result["output"]


@needs_wrk
def test_max_worker_memory_recycles_under_load_without_errors(cli_server):
    server = cli_server(APP, "-b", "127.0.0.1:0", "-w", "2", "--max-worker-memory", "150M")
    assert server.wait_for("Ready: 2 workers")
    result = Wrk(server.port, path="/leak", connections=4, seconds=8).result()
    assert server.wait_for(r"Recycling worker \d+: RSS .* is over --max-worker-memory", timeout=10)
    assert (result["errors"], result["non2xx"]) == (0, 0), result["output"]


def test_request_timeout_gives_504(cli_server):
    server = cli_server(APP, "-b", "127.0.0.1:0", "--request-timeout", "0.5")
    response = requests.get(f"http://127.0.0.1:{server.port}/sleep", timeout=10)
    assert response.status_code == 504
    assert server.wait_for(r"took over 0.5 s \(--request-timeout\)")


@pytest.mark.parametrize(
    ("spec", "status", "shown"),
    [
        ("tests.fixtures.broken_app:handler", 1, "this_module_does_not_exist_anywhere"),
        ("examples.hello:nothing", 2, "has no attribute 'nothing'"),
    ],
)
def test_worker_that_cannot_boot_stops_the_master(spec, status, shown):
    result = subprocess.run(
        [sys.executable, "-m", "preforkit", spec, "-b", "127.0.0.1:0", "-w", "3"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == status
    assert shown in result.stderr
    assert result.stderr.count("Booting worker") <= 3, "no respawn storm"


def test_reuse_port_and_preload(cli_server):
    server = cli_server(APP, "-b", "127.0.0.1:0", "-w", "2", "--reuse-port", "--preload")
    assert server.wait_for("Ready: 2 workers")
    pids = set(workers_of(server))
    seen = set()
    for _ in range(200):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            reply = b""
            while chunk := sock.recv(4096):
                reply += chunk
        seen.add(int(reply.rsplit(b"\r\n\r\n", 1)[1]))
        if seen == pids:
            break
    assert seen == pids, "the kernel spreads new connections over both workers"
    assert "MonkeyPatchWarning" not in server.output


def test_pidfile_written_removed_stale_and_live(cli_server, tmp_path):
    pidfile = tmp_path / "preforkit.pid"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    pidfile.write_text(f"{dead.pid}\n")  # stale: that process is gone
    server = cli_server(APP, "-b", "127.0.0.1:0", "--pid", str(pidfile))
    assert pidfile.read_text().strip() == str(server.process.pid)
    refused = subprocess.run(
        [sys.executable, "-m", "preforkit", APP, "-b", "127.0.0.1:0", "--pid", str(pidfile)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "names a running process" in refused.stderr
    server.stop()
    assert not pidfile.exists()


def test_hooks_from_config_file(cli_server, tmp_path):
    log = tmp_path / "hooks.log"
    config = tmp_path / "preforkit.toml"
    names = ["on_starting", "when_ready", "post_fork", "post_worker_init", "worker_exit", "on_reload"]
    config.write_text("".join(f'{name} = "tests.fixtures.hooks:{name}"\n' for name in names))
    server = cli_server(APP, "-b", "127.0.0.1:0", "--config", str(config), env={"HOOK_LOG": str(log)})
    assert server.wait_for("Ready: 1 worker serving")
    server.signal(signal.SIGHUP)
    assert server.wait_for("Reload complete")
    server.stop()
    called = [line.split()[0] for line in log.read_text().splitlines()]
    for name in names:
        assert name in called, name
    assert called[0] == "on_starting"


def test_systemd_socket_activation(tmp_path):
    activate = "/usr/bin/systemd-socket-activate"
    if not os.path.exists(activate):
        pytest.skip("systemd-socket-activate is not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [activate, "-l", f"127.0.0.1:{port}", sys.executable, "-m", "preforkit", APP, "-b", "127.0.0.1:1"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        # systemd-socket-activate listens itself and starts us on the first connection.
        first = process.stdout.readline()
        assert "Listening on" in first, first
        response = requests.get(f"http://127.0.0.1:{port}/", timeout=20)
        assert response.status_code == 200
        assert int(response.text) > 0
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=20)
    assert "from systemd socket activation" in out, out


def test_sd_notify_messages_in_order(cli_server, tmp_path):
    path = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(path)
    listener.settimeout(20)
    server = cli_server(APP, "-b", "127.0.0.1:0", "-w", "2", env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})

    def next_message(prefix: str) -> str:
        """The next message, skipping interleaved STATUS/WATCHDOG ones (bounded)."""
        for _ in range(200):
            message = listener.recv(4096).decode()
            if message.startswith(prefix):
                return message
            assert message.startswith(("STATUS=", "WATCHDOG=")), f"expected {prefix}, got {message}"
        raise AssertionError(f"no {prefix} message")

    ready = next_message("READY=1")
    assert f"MAINPID={server.process.pid}" in ready
    assert "STATUS=2 workers serving" in ready
    assert next_message("WATCHDOG=1") == "WATCHDOG=1"
    server.signal(signal.SIGHUP)
    reloading = next_message("RELOADING=1")
    assert "MONOTONIC_USEC=" in reloading
    assert next_message("READY=1")
    server.signal(signal.SIGTERM)
    assert next_message("STOPPING=1")
    server.stop()
    listener.close()


def test_systemd_units_verify(tmp_path):
    """scripts/preforkit.service and .socket are clean under systemd-analyze verify."""
    analyze = "/usr/bin/systemd-analyze"
    if not os.path.exists(analyze):
        pytest.skip("systemd-analyze is not installed")
    scripts = os.path.join(ROOT, "scripts")
    for name in ("preforkit.service", "preforkit.socket"):
        text = pathlib.Path(scripts, name).read_text()
        # Point ExecStart at a binary that exists here; everything else as shipped.
        text = text.replace("/srv/app/.venv/bin/preforkit", sys.executable + " -m preforkit")
        text = text.replace("WorkingDirectory=/srv/app", f"WorkingDirectory={tmp_path}")
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        [analyze, "verify", str(tmp_path / "preforkit.service"), str(tmp_path / "preforkit.socket")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    problems = [
        line for line in result.stderr.splitlines()
        if "preforkit" in line and "does not exist" not in line.lower()
    ]  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert not problems, result.stderr


def test_usr1_reopens_the_access_log(cli_server, tmp_path):
    log = tmp_path / "access.log"
    server = cli_server(APP, "-b", "127.0.0.1:0", "--access-log", str(log))
    assert server.wait_for("Ready: 1 worker serving")
    requests.get(f"http://127.0.0.1:{server.port}/before", timeout=5)
    rotated = tmp_path / "access.log.1"
    log.rename(rotated)  # what logrotate does
    start = len(server.lines)
    server.signal(signal.SIGUSR1)
    assert server.wait_for("Reopened the access log", start=start)
    requests.get(f"http://127.0.0.1:{server.port}/after", timeout=5)
    server.stop()
    assert "/before" in rotated.read_text()
    assert "/after" in log.read_text()
    assert "/after" not in rotated.read_text()


def test_ipv6_and_inherited_fd(cli_server):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("no IPv6 loopback")
    server = cli_server(APP, "-b", "[::1]:0")
    match = server.wait_for(r"Listening at http://\[::1\]:(\d+)")
    port = int(match.split("]:")[1].split()[0])
    with socket.create_connection(("::1", port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: [::1]\r\nConnection: close\r\n\r\n")
        assert b"200 OK" in sock.recv(4096)

    inherited = socket.socket()
    inherited.bind(("127.0.0.1", 0))
    inherited.listen(16)
    port = inherited.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "preforkit", APP, "-b", f"fd://{inherited.fileno()}"],
        cwd=ROOT, pass_fds=[inherited.fileno()], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        line = ""
        for _ in range(20):
            line = process.stdout.readline()
            if "Ready" in line or not line:
                break
        assert requests.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200
    finally:
        inherited.close()
        process.terminate()
        process.communicate(timeout=20)


def test_master_does_not_import_gevent():
    """The master stays small: gevent is imported by each worker after the fork, not before."""
    code = (
        "import sys, preforkit, preforkit.cli, preforkit.master._arbiter, preforkit.master._run;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('gevent', 'greenlet')))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_workers_sharing_a_socket_share_a_burst_of_keepalive_connections(cli_server):
    """A burst of long-lived connections is spread over the workers sharing the listening
    socket: none is starved (the worker that happened to be running once took nearly all)."""
    server = cli_server(APP, "-b", "127.0.0.1:0", "-w", "2")
    assert server.wait_for("Ready: 2 workers")

    def open_connections() -> int:
        return sum(
            1
            for pid in workers_of(server)
            for conn in psutil.Process(pid).net_connections("tcp")
            if conn.status != "LISTEN" and conn.laddr.port == server.port
        )

    for attempt in range(3):  # three bursts, each must be shared
        # Balancing goes by the connections each worker holds: start once the last burst's are closed.
        assert wait_until(lambda: open_connections() == 0, timeout=10)
        sockets = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(100)]
        try:
            counts: dict[int, int] = {}
            for sock in sockets:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            for sock in sockets:
                reply = b""
                while b"\r\n\r\n" not in reply:
                    reply += sock.recv(4096)
                length = int(reply.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                body = reply.split(b"\r\n\r\n", 1)[1]
                while len(body) < length:
                    body += sock.recv(4096)
                pid = int(body.split()[-1])
                counts[pid] = counts.get(pid, 0) + 1
            assert len(counts) == 2, f"burst {attempt}: {counts}"
            assert min(counts.values()) >= 20, f"burst {attempt}: {counts}"
        finally:
            for sock in sockets:
                sock.close()


def test_slot_board_shows_each_worker_the_others_load():
    from preforkit._common.process import DRAINING, READY, SlotBoard

    board = SlotBoard(capacity=3)
    first, second, third = board.take(), board.take(), board.take()
    assert board.take().board is None  # full: a private slot, no balancing
    assert first.fewest_elsewhere() is None  # nobody else is serving yet
    for slot, connections in ((first, 30), (second, 7), (third, 2)):
        slot.beat(READY)
        slot.count(connections)
    assert first.fewest_elsewhere() == 2
    assert third.fewest_elsewhere() == 7
    third.beat(DRAINING)  # a draining worker accepts nothing: not a candidate
    assert first.fewest_elsewhere() == 7
    assert second.fewest_elsewhere() == 30
    second.close()  # the master reaped it: its slot is free and counts for nothing
    assert first.fewest_elsewhere() is None
    assert board.take().index == second.index


def test_a_reader_of_the_slot_board_never_sees_a_half_written_slot():
    """The master reads each worker's slot while the worker writes it, with no lock.
    A heartbeat read in the middle of a write once came out as 0 s: the master
    called a healthy worker hung ("has not turned for 7722.7 s", the machine's
    uptime) and killed it with its requests.  A child process beats and publishes
    as fast as it can while this process reads: every value read is one the child
    wrote, never lower than the last one read."""
    from preforkit._common import stats
    from preforkit._common.process import READY, SlotBoard

    board = SlotBoard(capacity=2)
    slot = board.take()
    slot.beat(READY)
    slot.count(1)
    slot.publish((1, 1, 1, 1, 1), 1, (1,) * len(stats.COUNTERS) + (1.0,))
    first_beat = slot.last_beat
    writes = 200_000
    pid = os.fork()
    if pid == 0:  # the writer, as a worker's event loop does it, bounded in count and time
        try:
            deadline = time.monotonic() + 20
            for n in range(1, writes + 1):
                slot.beat()
                slot.count(n)
                slot.publish((n, n, n, n, n), n, (n,) * len(stats.COUNTERS) + (float(n),))
                if time.monotonic() > deadline:
                    break
        finally:
            os._exit(0)
    reads = torn = 0
    last = {"beat": first_beat, "connections": 1, "requests": 1, "accepted": 1}
    try:
        while os.waitpid(pid, os.WNOHANG) == (0, 0) and reads < 5 * writes:
            reads += 1
            seen = {
                "beat": slot.last_beat,
                "connections": board.fewest_connections(besides=-1) or 0,
                "requests": slot.requests,
                "accepted": slot.counters()["accepted"],
            }
            states = set(slot.connection_states().values())
            if slot.state != READY or any(seen[key] < last[key] for key in last) or 0 in states:
                torn += 1
            last = seen
    finally:
        if reads >= 5 * writes:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    assert reads > 1000, "the writer finished before the reader started: nothing was checked"
    assert torn == 0, f"{torn} of {reads} reads saw a value no write left there"
