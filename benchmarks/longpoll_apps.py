"""Long-poll apps for benchmarks/longpoll_bench.py and connections_bench.py: the same logic per server.

GET /poll is held until GET /release; GET /count says how many are held;
GET / is a plain hello.  ``ring`` for preforkit, ``wsgi`` for gunicorn -k
gevent, ``asgi`` for uvicorn and granian.
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
    if path == "/":
        return {"body": "Hello, World!"}
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
    elif path == "/":
        body = b"Hello, World!"
    elif path == "/release":
        body = str(_held[0]).encode()
        _event.set()
        _event.clear()
    else:
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


_asgi_held = [0]
_asgi_release = None


async def asgi(scope, receive, send):
    """For uvicorn and granian: one awaiting coroutine per held request."""
    import asyncio

    global _asgi_release
    if scope["type"] != "http":
        return
    if _asgi_release is None:
        _asgi_release = asyncio.Event()
    path = scope["path"]
    if path == "/poll":
        _asgi_held[0] += 1
        try:
            await _asgi_release.wait()
        finally:
            _asgi_held[0] -= 1
        body = b"released"
    elif path == "/count":
        body = str(_asgi_held[0]).encode()
    elif path == "/release":
        body = str(_asgi_held[0]).encode()
        _asgi_release.set()
        _asgi_release = asyncio.Event()
    elif path == "/":
        body = b"Hello, World!"
    else:
        await send({"type": "http.response.start", "status": 404, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})
        return
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
