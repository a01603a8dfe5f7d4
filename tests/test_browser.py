"""The WebSocket chat page driven by a real browser (headless Chromium over CDP)."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")

FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Page:
    """One browser tab, driven with Runtime.evaluate over the DevTools protocol."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.next_id = 0

    async def call(self, method: str, params: dict | None = None, timeout: float = 15) -> dict:
        self.next_id += 1
        message_id = self.next_id
        await self.ws.send(json.dumps({"id": message_id, "method": method, "params": params or {}}))
        while True:
            reply = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if reply.get("id") == message_id:
                assert "error" not in reply, reply
                return reply["result"]

    async def open(self, url: str, timeout: float = 15) -> None:
        """Navigate and wait for the load event."""
        await self.call("Page.enable")
        await self.call("Page.navigate", {"url": url})
        while True:
            event = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if event.get("method") == "Page.loadEventFired":
                return

    async def evaluate(self, expression: str, timeout: float = 15):
        params = {"expression": expression, "awaitPromise": True, "returnByValue": True}
        result = await self.call("Runtime.evaluate", params, timeout)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")


def _wait_until(js_condition: str) -> str:
    """A promise that resolves once the condition holds (polled in the page, bounded)."""
    return (
        "new Promise((resolve, reject) => { let n = 0; const check = () => {"
        f" if ({js_condition}) resolve(true); else if (++n > 300) reject('timed out'); else setTimeout(check, 20);"
        " }; check(); })"
    )


def test_chat_page_in_chromium(cli_server):
    from websockets.asyncio.client import connect

    server = cli_server("examples.ws_chat:handler", "-b", "127.0.0.1:0")
    page_url = f"http://127.0.0.1:{server.port}/"
    debug_port = _free_port()
    profile = tempfile.mkdtemp(prefix="preforkit-chromium-")
    browser = subprocess.Popen(
        [CHROMIUM, *FLAGS, f"--remote-debugging-port={debug_port}", f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        target = None
        deadline = time.monotonic() + 30
        while target is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{debug_port}/json/list", timeout=2) as response:
                    pages = [t for t in json.load(response) if t.get("type") == "page"]
                target = pages[0] if pages else None
            except OSError:
                pass
            if target is None:
                time.sleep(0.1)  # the browser offers no event to wait on before its DevTools port is up
        assert target, "Chromium did not open the page"

        async def drive():
            async with connect(target["webSocketDebuggerUrl"], max_size=None) as devtools:
                page = Page(devtools)
                await page.open(page_url)
                assert await page.evaluate(
                    _wait_until("(document.getElementById('status') || {}).textContent === 'connected'")
                )
                async with connect(f"ws://127.0.0.1:{server.port}/ws") as python_client:
                    await python_client.send("hello from python")
                    in_log = "document.getElementById('log').textContent.includes('hello from python')"
                    assert await page.evaluate(_wait_until(in_log))
                    await page.evaluate(
                        "document.getElementById('text').value = 'hello from the browser';"
                        "document.getElementById('form').requestSubmit(); true"
                    )
                    for _ in range(10):
                        message = json.loads(await asyncio.wait_for(python_client.recv(), 10))
                        if message.get("text") == "hello from the browser":
                            return True
            return False

        assert asyncio.run(drive())
    finally:
        browser.terminate()
        browser.wait(timeout=20)
        shutil.rmtree(profile, ignore_errors=True)
