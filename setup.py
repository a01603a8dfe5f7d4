import pathlib

from setuptools import find_packages, setup

setup(
    name="preforkit",
    version="0.1.0",
    description="A prefork gevent HTTP/1.1 server for Ring-style and WSGI Python apps",
    long_description=pathlib.Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.9",
    packages=find_packages(include=["preforkit", "preforkit.*"]),
    package_data={"preforkit": ["py.typed"]},
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
        ],
        "bench": ["gunicorn>=21", "uvicorn[standard]>=0.30", "granian>=1.5", "matplotlib>=3.5", "psycogreen>=1.0"],
        "proctitle": ["setproctitle>=1.3"],
        "reload": ["watchfiles>=0.20"],
        "redis": ["redis>=4.5"],
        "fuzz": ["atheris>=2.3"],
    },
    entry_points={"console_scripts": ["preforkit = preforkit.cli:entry"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Framework :: Gevent",
        "Topic :: Internet :: WWW/HTTP :: HTTP Servers",
    ],
)
