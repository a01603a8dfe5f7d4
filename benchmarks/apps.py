"""The same app logic for every server in the benchmarks.

Paths: ``/`` hello (13 bytes), ``/echo`` echoes the request body, ``/64k`` a
65,536-byte body, ``/slow`` (Ring only) the hello after half a second.  Ring
handlers for preforkit, WSGI for gunicorn / granian / preforkit's WSGI path,
ASGI for uvicorn.
"""

HELLO = b"Hello, World!"
BIG = b"x" * 65536


def ring(request):
    path = request["uri"]
    if path == "/echo":
        body = request["body"].read() if request["body"] is not None else b""
        return {"status": 200, "headers": {"Content-Type": "application/octet-stream"}, "body": body}
    if path == "/64k":
        return {"status": 200, "headers": {"Content-Type": "application/octet-stream"}, "body": BIG}
    if path == "/slow":  # benchmarks/capacity_bench.py: a handler that takes half a second
        import gevent

        gevent.sleep(0.5)
    return {"status": 200, "headers": {"Content-Type": "text/plain"}, "body": HELLO}


def wsgi(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/echo":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        content_type = "application/octet-stream"
    elif path == "/64k":
        body, content_type = BIG, "application/octet-stream"
    else:
        body, content_type = HELLO, "text/plain"
    start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


async def asgi(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/echo":
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body, content_type = b"".join(chunks), b"application/octet-stream"
    elif path == "/64k":
        body, content_type = BIG, b"application/octet-stream"
    else:
        body, content_type = HELLO, b"text/plain"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
