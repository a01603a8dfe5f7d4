"""A long-poll chat room: ``preforkit examples.chat:handler``, then open http://127.0.0.1:8000/.

GET /poll?since=N is held until a message newer than N exists (or 25 s pass);
POST /send publishes a message with ``preforkit.pubsub``, and every worker
(every instance, with ``--pubsub redis://...``) stores it and answers the
polls it holds.  Works the same with ``--workers 4`` and behind a load
balancer in front of several instances.
"""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs

from preforkit import async_response, pubsub

MAX_MESSAGES = 100
POLL_TIMEOUT = 25.0

messages: list[dict] = []  # {"id", "time", "text"}, oldest first; ids are publish times in ns
waiting: dict = {}  # respond -> the id the client has seen


def _since(query: str | None) -> int:
    try:
        return int(parse_qs(query or "").get("since", ["0"])[0])
    except ValueError:
        return 0


def _newer(since: int) -> list[dict]:
    return [message for message in messages if message["id"] > since]


def _json(data, status: int = 200) -> dict:
    return {"status": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(data)}


def poll(request: dict):
    since = _since(request["query_string"])
    newer = _newer(since)
    if newer:
        return _json(newer)

    def hold(respond):
        waiting[respond] = since
        respond.on_close(lambda r: waiting.pop(r, None))

    return async_response(hold, timeout=POLL_TIMEOUT, timeout_response=_json([]))


def send(request: dict) -> dict:
    raw = request["body"].read(4096).decode("utf-8", "replace") if request["body"] else ""
    if (request["content_type"] or "").startswith("application/x-www-form-urlencoded"):
        raw = parse_qs(raw).get("text", [""])[0]
    text = raw.strip()[:500]
    if not text:
        return _json({"error": "empty message"}, 400)
    message = {"id": time.time_ns(), "time": time.time(), "text": text}
    pubsub.publish("chat", message)  # reaches every worker, this one included
    return _json(message, 201)


def on_message(message: dict) -> None:
    """Every worker: keep the message and answer the polls held here."""
    messages.append(message)
    messages.sort(key=lambda m: m["id"])
    del messages[:-MAX_MESSAGES]
    held = list(waiting.items())
    waiting.clear()
    for respond, since in held:
        respond(_json(_newer(since)))


pubsub.subscribe("chat", on_message)


def handler(request: dict):
    path, method = request["uri"], request["request_method"]
    if path == "/poll" and method == "GET":
        return poll(request)
    if path == "/send" and method == "POST":
        return send(request)
    if path == "/" and method in ("GET", "HEAD"):
        return {"headers": {"Content-Type": "text/html; charset=utf-8"}, "body": PAGE}
    return {"status": 404, "body": "not found\n"}


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>preforkit chat</title>
<style>body{font:16px sans-serif;max-width:40em;margin:2em auto}#log{border:1px solid #ccc;height:20em;
overflow-y:auto;padding:.5em}#log p{margin:.2em 0}</style></head>
<body><h1>Chat</h1><div id="log"></div>
<form id="form"><input id="text" autocomplete="off" size="50" autofocus> <button>Send</button></form>
<script>
let since = 0;
const log = document.getElementById("log");
function show(messages) {
  for (const m of messages) {
    const p = document.createElement("p");
    p.textContent = new Date(m.time * 1000).toLocaleTimeString() + "  " + m.text;
    log.appendChild(p);
    since = Math.max(since, m.id);
  }
  log.scrollTop = log.scrollHeight;
}
async function poll() {
  for (;;) {
    try {
      const response = await fetch("/poll?since=" + since);
      if (response.ok) show(await response.json());
    } catch (e) {
      await new Promise(r => setTimeout(r, 1000));
    }
  }
}
document.getElementById("form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = document.getElementById("text");
  if (!input.value.trim()) return;
  await fetch("/send", {method: "POST", headers: {"Content-Type": "text/plain"}, body: input.value});
  input.value = "";
});
poll();
</script></body></html>
"""
