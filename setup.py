import importlib.util
import json
import logging
import os
import pathlib

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

HERE = pathlib.Path(__file__).parent
log = logging.getLogger("preforkit.build")


def _accel():
    """preforkit/_accel.py, loaded alone (it imports nothing of preforkit's)."""
    spec = importlib.util.spec_from_file_location("_preforkit_accel", HERE / "preforkit" / "_accel.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compiled_extensions() -> list:
    accel = _accel()
    return [
        Extension(accel.compiled_name(module), [accel.source_path(module)], optional=True)
        for module in accel.ACCELERATED
    ]


class BuildCompiled(build_ext):
    """build_ext for the compiled twins: Cython first; any failure leaves the Python modules to run."""

    def finalize_options(self) -> None:
        super().finalize_options()
        if self.parallel is None:
            self.parallel = os.cpu_count() or 1

    def run(self) -> None:
        try:
            from Cython.Build import cythonize
        except ImportError:
            log.debug("preforkit: Cython is not installed; the compiled hot path is not built")
            self.extensions = []
            return
        self._forget_outdated_translations()
        try:
            translated = cythonize(
                self.extensions,
                build_dir="build/cython",
                compiler_directives={"language_level": "3", "binding": True, "annotation_typing": False},
                quiet=True,
            )
        except Exception as exc:  # a Cython error: build nothing, the Python modules run
            log.debug("preforkit: Cython failed (%s); the compiled hot path is not built", exc)
            self.extensions = []
            return
        for ext, done in zip(self.extensions, translated):
            ext.sources = done.sources  # the C files (cythonize's own Extensions lack setuptools' fields)
        super().run()
        self._write_source_hashes()

    def build_extension(self, ext) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # no compiler, missing headers...: this module runs as Python
            log.debug("preforkit: %s not built: %s", ext.name, exc)

    @staticmethod
    def _forget_outdated_translations() -> None:
        """Cython retranslates a module when its .py changes, not when its _c_<name>.pxd does
        (it looks for <name>.pxd): drop the C file older than the .pxd."""
        accel = _accel()
        for module in accel.ACCELERATED:
            pxd = HERE / accel.declarations_path(module)
            translated = HERE / "build" / "cython" / accel.source_path(module).replace(".py", ".c")
            if pxd.exists() and translated.exists() and translated.stat().st_mtime < pxd.stat().st_mtime:
                translated.unlink()

    def _write_source_hashes(self) -> None:
        """What each extension was built from, for preforkit/_accel.py's staleness check."""
        accel = _accel()
        hashes = {module: accel.build_hash(str(HERE), module) for module in accel.ACCELERATED}
        targets = {pathlib.Path(self.get_ext_fullpath("preforkit._x")).parent}
        if self.inplace or getattr(self, "editable_mode", False):
            targets.add(HERE / "preforkit")
        for target in targets:
            target.mkdir(parents=True, exist_ok=True)
            (target / accel.SOURCE_HASHES).write_text(json.dumps(hashes, indent=1) + "\n", encoding="utf-8")


setup(
    name="preforkit",
    version="0.1.0",
    description="A prefork gevent HTTP/1.1 server for Ring-style and WSGI Python apps",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.9",
    packages=find_packages(include=["preforkit", "preforkit.*"]),
    package_data={"preforkit": ["py.typed", "*/_c_*.pxd"]},  # the .pxd: the stale-build check reads them
    install_requires=[
        "gevent>=23.9",
        "click>=8.1",
        "psutil>=5.9",
        "websockets>=12",  # only its C apply_mask, to unmask client frames
        "tomli>=1.1; python_version < '3.11'",
    ],
    extras_require={
        "test": [
            "pytest>=7",
            "pytest-timeout>=2.1",
            "hypothesis>=6",
            "requests>=2.28",
            "h11>=0.14",
            "ruff>=0.5",
            "flask>=2.3",
            "django>=4.2",
            "gunicorn>=21",
            "websockets>=12",
            "atheris>=2.3",
            "redis>=4.5",
            "mypy>=1.5",
            "pyright>=1.1.380",
            # the legacy-stack tests (tests/test_legacy.py) on a real PostgreSQL, and gRPC
            "psycopg2-binary>=2.9",
            "psycopg[binary]>=3.1",
            "sqlalchemy>=2.0",
            "grpcio>=1.60",
            "watchfiles>=0.20",  # the --reload tests, both backends
            "mkdocs>=1.5",  # the docs site, built --strict by tests/test_docs.py
            "mkdocs-material>=9",
            "Cython>=3.0",  # tests/test_accel.py rebuilds the compiled hot path
            "build>=1.0",  # and builds a wheel of it (without isolation: needs wheel here)
            "wheel>=0.40",
        ],
        "bench": ["gunicorn>=21", "uvicorn[standard]>=0.30", "granian>=1.5", "matplotlib>=3.5", "psycogreen>=1.0"],
        "proctitle": ["setproctitle>=1.3"],
        "reload": ["watchfiles>=0.20"],
        "redis": ["redis>=4.5"],
        "fuzz": ["atheris>=2.3"],
    },
    # The compiled twins of the hot modules (preforkit/_accel.py); built where Cython and a
    # compiler are at hand, skipped (logged at debug) where not: the Python modules still run.
    ext_modules=compiled_extensions(),
    cmdclass={"build_ext": BuildCompiled},
    entry_points={"console_scripts": ["preforkit = preforkit.cli:entry"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Framework :: Gevent",
        "Topic :: Internet :: WWW/HTTP :: HTTP Servers",
    ],
)
