"""A WebSocket chat room: ``preforkit examples.ws_chat:handler``, then open http://127.0.0.1:8000/.

Every text message a browser sends is published with ``preforkit.pubsub``;
every worker (and every instance sharing ``--pubsub redis://...``) sends it
to the browsers it holds.  Each client is told which worker serves it.
"""

from __future__ import annotations

import json
import os
import time

from preforkit import as_channel, pubsub

members: set = set()  # the channels this worker holds


def _send_to_members(payload: dict) -> None:
    text = json.dumps(payload)
    for channel in list(members):
        channel.send(text)


pubsub.subscribe("ws-chat", _send_to_members)


def on_open(channel) -> None:
    members.add(channel)
    channel.send(
        json.dumps({"system": f"connected to worker {os.getpid()}", "worker": os.getpid(), "time": time.time()})
    )
    pubsub.publish("ws-chat", {"system": "someone joined", "time": time.time()})


def on_receive(channel, message) -> None:
    if isinstance(message, str) and message.strip():
        pubsub.publish("ws-chat", {"text": message.strip()[:500], "time": time.time()})


def on_close(channel, status) -> None:
    members.discard(channel)
    pubsub.publish("ws-chat", {"system": "someone left", "time": time.time()})


def handler(request: dict):
    if request["websocket"]:
        return as_channel(request, on_open=on_open, on_receive=on_receive, on_close=on_close)
    if request["uri"] == "/":
        return {"headers": {"Content-Type": "text/html; charset=utf-8"}, "body": PAGE}
    return {"status": 404, "body": "not found\n"}


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>preforkit WebSocket chat</title>
<style>body{font:16px sans-serif;max-width:40em;margin:2em auto}#log{border:1px solid #ccc;height:20em;
overflow-y:auto;padding:.5em}#log p{margin:.2em 0}.system{color:#888}</style></head>
<body><h1>WebSocket chat</h1><div id="status">connecting…</div><div id="log"></div>
<form id="form"><input id="text" autocomplete="off" size="50" autofocus> <button>Send</button></form>
<script>
const log = document.getElementById("log");
const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
ws.onopen = () => { document.getElementById("status").textContent = "connected"; };
ws.onclose = () => { document.getElementById("status").textContent = "disconnected"; };
ws.onmessage = (event) => {
  const m = JSON.parse(event.data);
  const p = document.createElement("p");
  p.className = m.system ? "system" : "message";
  p.textContent = new Date(m.time * 1000).toLocaleTimeString() + "  " + (m.system || m.text);
  log.appendChild(p);
  log.scrollTop = log.scrollHeight;
};
document.getElementById("form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("text");
  if (input.value.trim()) ws.send(input.value);
  input.value = "";
});
</script></body></html>
"""
