"""The compiled hot path (preforkit/_accel.py): which path runs, and the build that makes it.

The whole suite runs on both paths (the README's test command runs it twice,
once with PREFORKIT_PURE_PYTHON=1); these tests check the switch itself.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig

import pytest

from preforkit._accel import ACCELERATED, compiled_name, declarations_path, pure_python_requested

ROOT = pathlib.Path(__file__).resolve().parent.parent

IMPORT_ALL = (
    "import importlib, json, preforkit._accel as accel\n"
    "modules = {name: importlib.import_module(name) for name in accel.ACCELERATED}\n"
    "print(json.dumps({'compiled': accel.compiled_modules(),"
    " 'classes': modules['preforkit.worker._connection'].Connection.__module__}))\n"
)


def _import_all(root: pathlib.Path, **env: str) -> dict:
    import json

    environ = {key: value for key, value in os.environ.items() if key != "PREFORKIT_PURE_PYTHON"}
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL],
        cwd=root, env={**environ, "PYTHONPATH": str(root), **env}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return {**json.loads(result.stdout), "stderr": result.stderr}


def _built() -> list[str]:
    return [module for module in ACCELERATED if importlib.util.find_spec(compiled_name(module)) is not None]


def _can_build() -> bool:
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(compiler) is not None and importlib.util.find_spec("Cython") is not None


def test_compiled_names():
    assert compiled_name("preforkit.http._head") == "preforkit.http._c_head"
    assert compiled_name("preforkit.worker.wsgi") == "preforkit.worker._c_wsgi"
    for module in ACCELERATED:  # the last line of each swaps in its compiled twin
        path = ROOT / (module.replace(".", "/") + ".py")
        assert path.read_text().rstrip().endswith("accelerate(globals())"), module


def test_a_checkout_installed_where_a_compiler_exists_runs_compiled():
    """`pip install -e .` built every twin here (a compiler and Cython are at hand), and they run."""
    if not _can_build():
        pytest.skip("no C compiler or Cython here: the pure-Python path is the only one")
    assert _built() == list(ACCELERATED), "pip install -e . should have built every compiled module"
    found = _import_all(ROOT)
    assert sorted(found["compiled"]) == sorted(ACCELERATED)
    assert found["classes"] == "preforkit.worker._c_connection"
    assert "older than their source" not in found["stderr"]


def test_pure_python_runs_when_asked():
    found = _import_all(ROOT, PREFORKIT_PURE_PYTHON="1")
    assert found["compiled"] == []
    assert found["classes"] == "preforkit.worker._connection"
    assert sorted(_import_all(ROOT, PREFORKIT_PURE_PYTHON="0")["compiled"]) == sorted(_built())  # "0" is off


def test_this_run_is_on_the_path_it_asked_for():
    from preforkit.worker._connection import Connection

    expected = (
        "preforkit.worker._connection"
        if pure_python_requested() or not _built()
        else ("preforkit.worker._c_connection")
    )
    assert Connection.__module__ == expected


def _copy_checkout(tmp_path: pathlib.Path) -> pathlib.Path:
    """preforkit/ with its built twins, and the build's C files (so Cython has nothing to redo)."""
    copy = tmp_path / "checkout"
    shutil.copytree(ROOT / "preforkit", copy / "preforkit", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, copy / name)
    if (ROOT / "build" / "cython").exists():
        shutil.copytree(ROOT / "build" / "cython", copy / "build" / "cython")
    return copy


def _import_after_editing(tmp_path, relative: str) -> dict:
    """``_import_all`` in a copy of the checkout where ``relative`` was edited after the build.

    Exactly one warning says so, and the modules not edited still run compiled.
    """
    if not _built():
        pytest.skip("nothing compiled here")
    copy = _copy_checkout(tmp_path)
    edited = copy / relative
    edited.write_text(edited.read_text() + "# edited after the build\n")
    found = _import_all(copy)
    assert found["stderr"].count("older than their source") == 1, found["stderr"]
    assert "preforkit.http._head" in found["compiled"]
    return found


def test_a_module_edited_after_the_build_runs_as_python_with_a_warning(tmp_path):
    found = _import_after_editing(tmp_path, "preforkit/worker/_connection.py")
    assert "preforkit.worker._connection" not in found["compiled"]
    assert found["classes"] == "preforkit.worker._connection"  # the edited source is what runs
    assert "pip install -e ." in found["stderr"]


def _build_without_a_compiler(copy) -> None:
    """``setup.py build_ext --inplace`` in ``copy`` with a compiler that always fails; the build must succeed."""
    result = subprocess.run(
        [sys.executable, "setup.py", "build_ext", "--inplace"],
        cwd=copy, env={**os.environ, "CC": "/bin/false", "LDSHARED": "/bin/false"},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]


def test_without_a_compiler_the_build_succeeds_and_python_runs(tmp_path):
    """The build never fails for want of a compiler: each module not built runs as Python."""
    copy = _copy_checkout(tmp_path)
    for built in copy.glob("preforkit/*/_c_*.so"):
        built.unlink()
    _build_without_a_compiler(copy)
    assert not list(copy.glob("preforkit/*/_c_*.so"))
    found = _import_all(copy)
    assert found["compiled"] == []
    assert found["classes"] == "preforkit.worker._connection"
    assert "older than their source" not in found["stderr"]


def test_a_pxd_edited_after_the_build_counts_as_a_change(tmp_path):
    """The .pxd is part of what a twin is built from: an edited one makes its module run as Python."""
    found = _import_after_editing(tmp_path, "preforkit/http/_c_response.pxd")
    assert "preforkit.http._response" not in found["compiled"]


def test_the_build_translates_again_a_module_whose_pxd_changed(tmp_path):
    """Cython alone would keep the C file of a module whose _c_<name>.pxd changed (it looks for <name>.pxd)."""
    if importlib.util.find_spec("Cython") is None or not (ROOT / "build" / "cython").exists():
        pytest.skip("no Cython, or no earlier translation to reuse")
    copy = _copy_checkout(tmp_path)
    translated = copy / "build" / "cython" / "preforkit" / "http" / "_response.c"
    kept = copy / "build" / "cython" / "preforkit" / "http" / "_head.c"
    before = {path: path.stat().st_mtime_ns for path in (translated, kept)}
    declarations = copy / "preforkit" / "http" / "_c_response.pxd"
    declarations.write_text(declarations.read_text() + "# edited\n")
    _build_without_a_compiler(copy)
    assert translated.stat().st_mtime_ns > before[translated]  # translated again, with the new .pxd
    assert kept.stat().st_mtime_ns == before[kept]  # the others were not


@pytest.mark.parametrize("module", ACCELERATED)
def test_each_extension_type_declares_exactly_the_python_slots(module):
    """A ``cdef class`` in a ``.pxd`` turns the Python class of that name into an extension
    type: its fields must be the Python class's slots, or the compiled path would lose (or
    add) state the Python one has."""
    import importlib
    import re

    declarations = ROOT / declarations_path(module)
    text = declarations.read_text() if declarations.exists() else ""
    python_module = importlib.import_module(module)
    for name, body in re.findall(r"^cdef class (\w+)\b.*:\n((?:[ \t]+.*\n|\n)*)", text, re.MULTILINE):
        declared = re.findall(r"^\s+cdef public \w+ (\w+)$", body, re.MULTILINE)
        slots = [slot for cls in getattr(python_module, name).__mro__ for slot in vars(cls).get("__slots__", ())]
        assert sorted(declared) == sorted(slots), name


def test_a_connection_takes_its_slots_and_nothing_else():
    """Either path: a typo'd attribute fails at once instead of living in an instance dict."""
    from preforkit.worker._connection import Connection

    connection = Connection.__new__(Connection)
    connection.buffer = bytearray(b"x")
    assert connection.buffer == b"x"
    with pytest.raises(AttributeError):
        connection.bufer = bytearray()


def test_a_wheel_carries_the_compiled_twins_and_runs_them(tmp_path):
    """`python -m build --wheel` gives a wheel whose installed files run compiled: the twins,
    the .pxd files and the hashes of what they were built from are all in it."""
    import zipfile

    if pure_python_requested() or not _can_build() or importlib.util.find_spec("build") is None:
        pytest.skip("checked once, on the compiled run, where Cython, a compiler and `build` are at hand")
    copy = _copy_checkout(tmp_path)  # with the C files: Cython has nothing to translate again
    shutil.copy2(ROOT / "MANIFEST.in", copy / "MANIFEST.in")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path / "dist")],
        cwd=copy, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("preforkit-*.whl")
    installed = tmp_path / "installed"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(installed)
    for module in ACCELERATED:
        twin = compiled_name(module).replace(".", "/")
        assert any(name.startswith(twin + ".") and name.endswith(".so") for name in names), module
    assert "preforkit/worker/_c_connection.pxd" in names
    found = _import_all(installed)
    assert sorted(found["compiled"]) == sorted(ACCELERATED)
    assert "older than their source" not in found["stderr"]
