"""Minimal Django settings: one app module (this package), a database only if ``DATABASE_URL`` names one.

``DATABASE_URL=postgres://user:password@host:port/name`` uses Django's postgresql
backend (psycopg 3 if installed, else psycopg2); ``?conn_max_age=60`` keeps
connections open between requests (Django's ``CONN_MAX_AGE``).
"""

import os
from urllib.parse import parse_qs, unquote, urlsplit

SECRET_KEY = "preforkit-example-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "examples.django_app.urls"
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
USE_TZ = True


def database(url: str) -> dict:
    """Django's DATABASES entry for a ``postgres://`` URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError(f"DATABASE_URL: only postgres:// is supported here, not {parts.scheme}://")
    options = parse_qs(parts.query)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")) or "postgres",
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "CONN_MAX_AGE": int(options.get("conn_max_age", ["0"])[0]),
    }


DATABASES = {"default": database(os.environ["DATABASE_URL"])} if os.environ.get("DATABASE_URL") else {}
