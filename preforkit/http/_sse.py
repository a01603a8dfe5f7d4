"""Server-Sent Events framing (the WHATWG ``text/event-stream`` format)."""

from __future__ import annotations

SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}


def sse_event(data=None, *, event: str | None = None, id: str | None = None, retry: int | None = None) -> str:
    """One event: ``event:``, ``id:``, ``retry:`` and one ``data:`` line per line of ``data``."""
    lines = []
    for name, value in (("event", event), ("id", id)):
        if value is not None:
            value = str(value)
            if "\n" in value or "\r" in value:
                raise ValueError(f"an SSE {name} cannot contain a line break")
            lines.append(f"{name}: {value}")
    if retry is not None:
        lines.append(f"retry: {int(retry)}")
    if data is not None:
        text = str(data).replace("\r\n", "\n").replace("\r", "\n")
        lines.extend(f"data: {line}" for line in text.split("\n"))
    if not lines:
        raise ValueError("an SSE event needs data, event, id or retry")
    return "\n".join(lines) + "\n\n"


def sse_comment(text: str = "") -> str:
    """A comment line: keeps the connection (and proxies) from timing out."""
    return "".join(f": {line}\n" for line in (text.split("\n") if text else [""])) + "\n"
