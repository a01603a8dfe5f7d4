"""The compiled head parser against the Python one, on the same heads, in one run.

The suite runs once on each path; this test puts both side by side: every head of
the corpus and thousands of mutants of them (bytes changed, inserted, dropped, lines
repeated, under the default limits and under small ones) are parsed here, compiled,
and in a child process on the pure-Python path, and each verdict (the head, or the
refusal's status and reason) must be the same.  The C helpers of ``_c_head.pxd``
accept only what the Python lines accept, so any head where they disagree fails.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import pytest

from preforkit import _accel
from preforkit.http import HeadLimits, HeadParser, ProtocolError

from .helpers import REQUESTS, load_http

# bytes that sit on a boundary of the grammar: controls, OWS, separators, obs-text, case
_EDGE_BYTES = b'\x00\x01\t\n\r "(),/:;=@[\\]{}\x7f\x80\xff0129AZaz-_~.HTP'

_BROWSER = (
    b"GET /static/app.js?v=3 HTTP/1.1\r\nHost: example.com:8080\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
    b"Accept: */*\r\nAccept-Encoding: gzip, deflate, br\r\nCookie: session=1; theme=dark\r\n"
    b"Connection: keep-alive\r\nContent-Length: 0\r\nX-Empty:\r\nX-Spaces: \t a  b \t\r\n\r\n"
)

LIMITS = {"default": HeadLimits(), "small": HeadLimits(max_request_line=40, max_fields=4, max_field_size=24)}


def _heads(seed: int = 9112, mutants: int = 4000) -> list[bytes]:
    """The corpus heads (up to their empty line) and seeded mutants of them."""
    corpus = []
    for path in sorted(REQUESTS.glob("*/*.http")):
        data = load_http(path)
        end = data.find(b"\r\n\r\n")
        corpus.append(data[: end + 4] if end >= 0 else data + b"\r\n\r\n")
    bases = [_BROWSER] + [load_http(path) for path in sorted((REQUESTS / "valid").glob("*.http"))]
    bases = [base[: base.index(b"\r\n\r\n") + 4] for base in bases]  # mutants of accepted heads
    chooser = random.Random(seed)
    heads = [*corpus, _BROWSER]
    while len(heads) < len(corpus) + mutants:
        head = bytearray(chooser.choice(bases)[:-4])
        for _ in range(chooser.choice((1, 1, 2))):
            at = chooser.randrange(len(head) + 1)
            kind = chooser.randrange(5)
            edge = _EDGE_BYTES[chooser.randrange(len(_EDGE_BYTES))]
            if kind == 0 and at < len(head):
                head[at] = edge
            elif kind == 1:
                head.insert(at, edge)
            elif kind == 2 and at < len(head):
                del head[at]
            elif kind == 3:  # a field line again
                lines = bytes(head).split(b"\r\n")
                lines.insert(chooser.randrange(1, len(lines) + 1), chooser.choice(lines))
                head = bytearray(b"\r\n".join(lines))
            else:
                head[at:at] = bytes(chooser.choice(b"\x41\x61")) * chooser.randrange(1, 40)
        heads.append(bytes(head) + b"\r\n\r\n")
    return heads


def verdicts(heads: list[bytes]) -> dict[str, list]:
    """Each head's verdict under each set of limits, parsed three times (the third from the memo),
    from a bytes and from a bytearray buffer."""
    found: dict[str, list] = {}
    for name, limits in LIMITS.items():
        parser = HeadParser(limits)
        seen = []
        for head in heads:
            outcomes = []
            for buffer in (head, bytearray(head), head + b"GET"):
                try:
                    result = parser.parse(buffer)
                    outcomes.append(None if result is None else [repr(tuple(result[0])), result[1]])
                except ProtocolError as error:
                    outcomes.append(["refused", error.status, str(error)])
            seen.append(outcomes)
        found[name] = seen
    return found


def test_the_compiled_parser_gives_the_python_verdict_on_every_head():
    import preforkit.http._head as head_module

    if not _accel.runs_compiled(head_module.parse_head):
        pytest.skip("the head parser runs as Python here: nothing to compare (the compiled run compares)")
    heads = _heads()
    compiled = verdicts(heads)
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, json; from tests.test_http_twins import _heads, verdicts;"
            " json.dump(verdicts(_heads()), sys.stdout)",
        ],
        capture_output=True,
        env={**os.environ, "PREFORKIT_PURE_PYTHON": "1"},
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        timeout=300,
        check=True,
    )
    python = json.loads(child.stdout)
    compiled = json.loads(json.dumps(compiled))
    accepted = sum(outcome[0] is not None and outcome[0][0] != "refused" for outcome in compiled["default"])
    assert 500 < accepted < len(heads) - 500  # heads on both sides of the line
    for name in LIMITS:
        for head, ours, reference in zip(heads, compiled[name], python[name], strict=True):
            assert ours == reference, (name, head)
