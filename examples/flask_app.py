"""A Flask app served unchanged: ``preforkit examples.flask_app:app`` (needs ``pip install flask``)."""

from __future__ import annotations

import time

from flask import Flask, Response, abort, jsonify, request

app = Flask(__name__)


@app.get("/")
def index():
    return "Hello from Flask on preforkit\n"


@app.post("/json")
def echo_json():
    return jsonify(received=request.get_json(), method=request.method)


@app.post("/form")
def form():
    upload = request.files.get("file")
    return jsonify(
        fields=request.form.to_dict(),
        file={"name": upload.filename, "size": len(upload.read())} if upload else None,
    )


@app.get("/stream")
def stream():
    def generate():
        for i in range(3):
            yield f"line {i}\n"
            time.sleep(0.01)  # cooperative: the worker is monkey-patched

    return Response(generate(), mimetype="text/plain")


@app.get("/users/<int:user_id>")
def user(user_id: int):
    if user_id > 100:
        abort(404)
    return jsonify(id=user_id)


@app.get("/error")
def error():
    raise RuntimeError("a bug in the view")


@app.route("/ws", websocket=True)  # Werkzeug routes WebSocket handshakes only to websocket rules
def websocket_echo():
    """A WebSocket from a Flask view: take the connection over as a channel."""
    take_over = request.environ.get("preforkit.as_channel")
    if take_over is None or not request.environ.get("preforkit.websocket"):
        abort(400)
    take_over(on_receive=lambda channel, message: channel.send(message))
    return ""  # ignored: the connection now belongs to the channel
