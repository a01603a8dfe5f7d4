"""Long-poll apps for benchmarks/longpoll_bench.py: the same logic per server.

GET /poll is held until GET /release; GET /count says how many are held.
"""

import gevent.event

from preforkit import async_response

waiting: set = set()


def ring(request):
    path = request["uri"]
    if path == "/poll":

        def hold(respond):
            waiting.add(respond)
            respond.on_close(waiting.discard)

        return async_response(hold)
    if path == "/count":
        return {"body": str(len(waiting))}
    if path == "/release":
        held = list(waiting)
        waiting.clear()
        for respond in held:
            respond({"body": "released"})
        return {"body": str(len(held))}
    return {"status": 404}


_event = gevent.event.Event()
_held = [0]


def wsgi(environ, start_response):
    """For gunicorn -k gevent: one greenlet per held request, parked on an Event."""
    path = environ["PATH_INFO"]
    if path == "/poll":
        _held[0] += 1
        try:
            _event.wait()
        finally:
            _held[0] -= 1
        body = b"released"
    elif path == "/count":
        body = str(_held[0]).encode()
    elif path == "/release":
        body = str(_held[0]).encode()
        _event.set()
        _event.clear()
    else:
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
