"""The app benchmarks/soak.py drives: every kind of traffic preforkit serves."""

import gevent

from preforkit import as_channel, async_response, pubsub

delivered = [0]
pubsub.subscribe("soak", lambda message: delivered.__setitem__(0, delivered[0] + 1))


def handler(request):
    path = request["uri"]
    if path == "/echo":
        return {"body": request["body"].read() if request["body"] is not None else b""}
    if path == "/poll":  # a long poll that times out after a second: 204, poll again
        return async_response(lambda respond: None, timeout=1, timeout_response={"status": 204})
    if path == "/sse":

        def events():
            for i in range(5):
                gevent.sleep(0.05)
                yield f"data: {i}\n\n"

        return {"headers": {"Content-Type": "text/event-stream"}, "body": events()}
    if path == "/ws":
        return as_channel(request, on_receive=lambda ch, message: ch.send(message))
    if path == "/publish":
        pubsub.publish("soak", request["query_string"] or "")
        return {"body": "published"}
    return {"body": "Hello, World!"}
