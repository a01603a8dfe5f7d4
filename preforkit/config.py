"""Every preforkit option, declared once.

``SETTINGS`` (declared in ``_settings/process.py`` and ``protocol.py``) is the single source:
the click options of the CLI, the ``PREFORKIT_<NAME>`` environment variables,
the TOML config-file keys and the README table are all derived from it.
Precedence, lowest first: defaults, config file, environment, command line.
"""

from __future__ import annotations

import os
from typing import Any

from ._settings.process import PROCESS_SETTINGS
from ._settings.protocol import PROTOCOL_SETTINGS
from ._settings.setting import ENV_PREFIX as ENV_PREFIX
from ._settings.setting import Setting as Setting
from ._settings.values import parse_bool as parse_bool
from ._settings.values import parse_float as parse_float
from ._settings.values import parse_int as parse_int
from ._settings.values import parse_size as parse_size

SETTINGS: tuple[Setting, ...] = PROCESS_SETTINGS + PROTOCOL_SETTINGS


class ConfigError(Exception):
    """An option has an invalid value; the message names it and its source."""


SETTINGS_BY_NAME = {setting.name: setting for setting in SETTINGS}


class Config:
    """The resolved value of every setting, with where each came from."""

    def __init__(self) -> None:
        self._sources: dict[str, str] = {}
        for setting in SETTINGS:
            value = setting.default
            object.__setattr__(self, setting.name, list(value) if isinstance(value, list) else value)
            self._sources[setting.name] = "default"

    def set(self, name: str, value: Any, source: str) -> None:
        """Parse and set one setting; ``ConfigError`` names it and the source."""
        setting = SETTINGS_BY_NAME.get(name)
        if setting is None:
            raise ConfigError(f"unknown setting {name!r} in {source}")
        try:
            parsed = setting.parse(value)
        except ValueError as exc:
            raise ConfigError(f"invalid value for {name} from {source}: {exc}") from None
        object.__setattr__(self, name, parsed)
        self._sources[name] = source

    def source(self, name: str) -> str:
        return self._sources[name]

    def binds(self) -> list[str]:
        """The --bind addresses with --port applied to those without a port."""
        port = self.port
        result = []
        for address in self.bind:
            if port is not None and not address.startswith(("unix:", "fd://")) and not _has_port(address):
                address = f"{address}:{port}"
            result.append(address)
        if port is not None and self.source("bind") == "default":
            result = [f"127.0.0.1:{port}"]
        return result

    def __setattr__(self, name: str, value: Any) -> None:
        if name in SETTINGS_BY_NAME:
            self.set(name, value, "assignment")
        else:
            object.__setattr__(self, name, value)


def _has_port(address: str) -> bool:
    if address.startswith("["):
        return "]:" in address
    return ":" in address


def read_config_file(path: str) -> dict[str, Any]:
    """The settings in a TOML file (top-level keys, or a [preforkit] table)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python < 3.11
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        with open(path, "rb") as file:
            data = tomllib.load(file)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    data = data.get("preforkit", data)
    values = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name not in SETTINGS_BY_NAME:
            raise ConfigError(f"unknown setting {key!r} in config file {path}")
        values[name] = value
    return values


def make_config(
    *, file: str | None = None, env: dict[str, str] | None = None, cli: dict[str, Any] | None = None
) -> Config:
    """Defaults, then the config file, then the environment, then the CLI.

    Only the winning value of each setting is parsed, so a bad environment
    variable that the command line overrides does no harm.
    """
    chosen: dict[str, tuple[Any, str]] = {}
    if file:
        for name, value in read_config_file(file).items():
            chosen[name] = (value, f"config file {file}")
    environ = os.environ if env is None else env
    for setting in SETTINGS:
        if setting.env in environ:
            chosen[setting.name] = (environ[setting.env], f"environment variable {setting.env}")
    for name, value in (cli or {}).items():
        if value is not None and value != ():
            chosen[name] = (list(value) if isinstance(value, tuple) else value, "command line")
    config = Config()
    for name, (value, source) in chosen.items():
        config.set(name, value, source)
    return config
