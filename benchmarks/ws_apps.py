"""The same WebSocket echo for every server in benchmarks/ws_bench.py."""

from preforkit import as_channel


def ring(request):
    if not request["websocket"]:
        return {"body": "echo"}
    return as_channel(request, on_receive=lambda channel, message: channel.send(message))


async def asgi(scope, receive, send):
    """For uvicorn (--ws websockets)."""
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        event = await receive()
        if event["type"] == "websocket.disconnect":
            return
        if event.get("text") is not None:
            await send({"type": "websocket.send", "text": event["text"]})
        else:
            await send({"type": "websocket.send", "bytes": event["bytes"]})


def run_websockets(port: int) -> None:
    """The websockets library's own asyncio server (no compression)."""
    import asyncio

    from websockets.asyncio.server import serve

    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    async def main():
        async with serve(echo, "127.0.0.1", port, compression=None, max_queue=None):
            await asyncio.Future()

    asyncio.run(main())


def run_aiohttp(port: int) -> None:
    from aiohttp import WSMsgType, web

    async def echo(request):
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                await ws.send_str(message.data)
            elif message.type == WSMsgType.BINARY:
                await ws.send_bytes(message.data)
        return ws

    app = web.Application()
    app.router.add_get("/", echo)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    import sys

    {"websockets": run_websockets, "aiohttp": run_aiohttp}[sys.argv[1]](int(sys.argv[2]))
