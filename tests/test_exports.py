"""The public surface: every exported name resolves, and type checkers (mypy, pyright) see real types.

In the style of trio's ``test_exports.py``.  The package loads its exports
lazily (PEP 562) so the master never imports gevent; ``TYPE_CHECKING``
imports show mypy the definitions behind them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

import preforkit
from preforkit import pubsub, worker

mypy_api = pytest.importorskip("mypy.api")


@pytest.mark.parametrize("package", [preforkit, worker])
def test_every_exported_name_resolves(package):
    for name in package.__all__:
        assert getattr(package, name) is not None, name


def _mypy(tmp_path, source: str) -> str:
    path = tmp_path / "use_preforkit.py"
    path.write_text(textwrap.dedent(source))
    stdout, stderr, _ = mypy_api.run(
        [str(path), "--follow-imports=silent", "--no-incremental", "--cache-dir=/dev/null", "--show-error-codes"]
    )
    return stdout + stderr


def test_mypy_sees_the_real_types(tmp_path):
    output = _mypy(
        tmp_path,
        """
        import preforkit
        from preforkit import pubsub
        from preforkit.middleware import wrap_params

        wrong: int = preforkit.async_response
        reveal_type(preforkit.serve)
        reveal_type(preforkit.run_server)
        reveal_type(preforkit.as_channel)
        reveal_type(pubsub.publish)
        reveal_type(wrap_params)
        """,
    )
    lines = output.splitlines()
    assert any(":6: error: Incompatible types in assignment" in line for line in lines), output
    revealed = [line for line in lines if "Revealed type is" in line]
    assert len(revealed) == 5, output
    assert "preforkit._api.Server" in revealed[0]
    assert "handler:" in revealed[1]
    assert "ChannelResponse" in revealed[2]
    assert "topic: str" in revealed[3]
    assert all('"Any"' not in line for line in revealed), output


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYRIGHT = shutil.which("pyright", path=os.path.dirname(sys.executable)) or shutil.which("pyright")


@pytest.mark.skipif(PYRIGHT is None, reason="pyright is not installed (pip install -e '.[test]')")
def test_pyright_sees_the_real_types(tmp_path):
    (tmp_path / "use_preforkit.py").write_text(
        textwrap.dedent(
            """
            import preforkit
            from preforkit import pubsub

            wrong: int = preforkit.async_response
            reveal_type(preforkit.serve)
            reveal_type(preforkit.as_channel)
            reveal_type(pubsub.publish)
            """
        )
    )
    # An editable install is an import hook pyright cannot follow: point it at the checkout.
    (tmp_path / "pyrightconfig.json").write_text(json.dumps({"extraPaths": [ROOT]}))
    result = subprocess.run(
        [PYRIGHT, "--outputjson", "--pythonpath", sys.executable, "use_preforkit.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if not result.stdout.lstrip().startswith("{"):
        pytest.skip(f"pyright could not start (it needs Node: apt-get install nodejs npm): {result.stderr[-300:]}")
    report = json.loads(result.stdout)
    messages = {(d["range"]["start"]["line"] + 1, d["severity"]): d["message"] for d in report["generalDiagnostics"]}
    assert 'is not assignable to declared type "int"' in messages[5, "error"], messages
    assert "-> Server" in messages[6, "information"], messages
    assert "-> ChannelResponse" in messages[7, "information"], messages
    assert "(topic: str, message: Any) -> None" in messages[8, "information"], messages
    assert not any("Unknown" in messages[line, "information"].split("->")[-1] for line in (6, 7, 8)), messages
    assert report["summary"]["errorCount"] == 1, messages


def test_pubsub_surface():
    assert set(pubsub.__all__) == {"MAX_MESSAGE", "Subscription", "publish", "subscribe"}
