"""Server push every second: ``preforkit examples.clock:handler``, then open http://127.0.0.1:8000/.

Two ways to push: GET /poll is a long poll that a ticker answers at the next
full second (async_response: no greenlet per waiting client), and GET /stream
is a chunked response that sends one line per second.
"""

from __future__ import annotations

import time

import gevent

from preforkit import async_response

waiting: set = set()
_ticker = None


def _tick_forever() -> None:
    while True:
        second = int(time.time()) + 1  # wake at the next full second, never before it:
        while time.time() < second:  # a timer may fire a little early (the loop's clock is cached)
            gevent.sleep(second - time.time())
        now = time.strftime("%H:%M:%S", time.localtime(second))
        held = list(waiting)
        waiting.clear()
        for respond in held:
            respond({"headers": {"Content-Type": "text/plain"}, "body": now})


def _ensure_ticker() -> None:
    """Started on first use, in the worker (not at import, which --preload does in the master)."""
    global _ticker
    if _ticker is None or _ticker.dead:
        _ticker = gevent.spawn(_tick_forever)


def _stream(seconds: int = 3600):
    for _ in range(seconds):
        yield time.strftime("%H:%M:%S") + "\n"
        gevent.sleep(1)


def handler(request: dict):
    path = request["uri"]
    if path == "/poll":
        _ensure_ticker()

        def hold(respond):
            waiting.add(respond)
            respond.on_close(waiting.discard)

        return async_response(hold)
    if path == "/stream":
        return {"headers": {"Content-Type": "text/plain", "Cache-Control": "no-cache"}, "body": _stream()}
    if path == "/":
        return {"headers": {"Content-Type": "text/html; charset=utf-8"}, "body": PAGE}
    return {"status": 404, "body": "not found\n"}


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>preforkit clock</title></head>
<body style="font:48px monospace;text-align:center;margin-top:3em"><div id="clock">--:--:--</div>
<script>
async function tick() {
  for (;;) {
    try {
      const response = await fetch("/poll");
      document.getElementById("clock").textContent = await response.text();
    } catch (e) {
      await new Promise(r => setTimeout(r, 1000));
    }
  }
}
tick();
</script></body></html>
"""
