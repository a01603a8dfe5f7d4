"""The server's own log: stderr or ``--error-log FILE``, text or JSON, or the user's ``--log-config``.

Set up once in the master; forked workers inherit the handlers.  A file is
written through ``WatchedFileHandler``, which reopens it when logrotate moved
it away, so no signal is needed for the error log.
"""

from __future__ import annotations

import json
import logging
import logging.config
import logging.handlers
import sys

TEXT_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"


class LogSetupError(Exception):
    """The log cannot be set up as configured (a one-line message)."""


class JSONFormatter(logging.Formatter):
    """One JSON object per record; every value escaped by ``json.dumps``."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "pid": record.process,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry)


def setup_logging(config) -> None:
    """Configure the root logger from ``config``; ``LogSetupError`` if it cannot be done."""
    if getattr(config, "log_config", None):
        _apply_dict_config(config.log_config)
        return
    target = getattr(config, "error_log", None)
    if target and target != "-":
        try:
            handler: logging.Handler = logging.handlers.WatchedFileHandler(target, encoding="utf-8")
        except OSError as exc:
            raise LogSetupError(f"cannot open the error log {target}: {exc.strerror}") from None
    else:
        handler = logging.StreamHandler(sys.stderr)
    if getattr(config, "log_format", "text") == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT, DATE_FORMAT))
    logging.basicConfig(level=getattr(logging, config.log_level.upper()), handlers=[handler], force=True)


def _apply_dict_config(path: str) -> None:
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        raise LogSetupError(f"cannot read the log config {path}: {exc.strerror}") from None
    try:
        if path.endswith(".toml"):
            try:
                import tomllib
            except ModuleNotFoundError:  # Python < 3.11
                import tomli as tomllib  # type: ignore[no-redef]
            settings = tomllib.loads(data.decode("utf-8"))
        else:
            settings = json.loads(data)
    except ValueError as exc:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        kind = "TOML" if path.endswith(".toml") else "JSON"
        raise LogSetupError(f"the log config {path} is not valid {kind}: {exc}") from None
    if not isinstance(settings, dict):
        raise LogSetupError(f"the log config {path} must hold a dictConfig mapping")
    settings.setdefault("version", 1)
    settings.setdefault("disable_existing_loggers", False)  # the server's own loggers exist already
    try:
        logging.config.dictConfig(settings)
    except (ValueError, TypeError, AttributeError, ImportError) as exc:
        raise LogSetupError(f"the log config {path} was refused by logging.config.dictConfig: {exc}") from None
