"""Every preforkit option, declared once.

``SETTINGS`` is the single source: the click options of the CLI, the
``PREFORKIT_<NAME>`` environment variables, the TOML config-file keys and the
README table are all derived from it.  Precedence, lowest first: defaults,
config file, environment, command line.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Callable

ENV_PREFIX = "PREFORKIT_"


class ConfigError(Exception):
    """An option has an invalid value; the message names it and its source."""


# -- value parsers: str (from CLI/env) or TOML value -> typed value ----------


def parse_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a whole number")
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValueError(f"{value!r} is not a whole number") from None


def parse_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a number") from None


_SIZE_RE = re.compile(r"(\d+)\s*([kmg]?)(i?b?)", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_size(value: Any) -> int:
    """``8388608``, ``8M``, ``512k``, ``1G`` (binary units)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE_RE.fullmatch(str(value).strip())
    if match is None:
        raise ValueError(f"{value!r} is not a size (use bytes or a suffix: 512K, 8M, 1G)")
    return int(match[1]) * _SIZE_UNITS[match[2].lower()]


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{value!r} is not a boolean (true/false)")


def parse_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a string")
    return value


def parse_optional_str(value: Any) -> str | None:
    return None if value is None else parse_str(value)


def parse_str_list(value: Any) -> list[str]:
    """A list; from the environment, entries are separated by commas or spaces."""
    if isinstance(value, str):
        return [item for item in re.split(r"[,\s]+", value) if item]
    if isinstance(value, (list, tuple)):
        return [parse_str(item) for item in value]
    raise ValueError(f"{value!r} is not a list of strings")


def parse_octal(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return int(str(value).strip(), 8)
    except ValueError:
        raise ValueError(f"{value!r} is not an octal number such as 022") from None


def parse_hook(value: Any) -> str | None:
    """A ``MODULE:FUNCTION`` path (resolved when the hook is first used)."""
    if value is None:
        return None
    from ._common.apps import AppLoadError, split_spec

    text = parse_str(value).strip()
    try:
        split_spec(text)
    except AppLoadError:
        raise ValueError(f"{value!r} is not MODULE:FUNCTION") from None
    return text


def parse_pubsub(value: Any) -> str:
    text = parse_str(value).strip()
    if text == "local" or text.startswith(("redis://", "rediss://", "unix://")):
        return text
    raise ValueError(f"{value!r} is not 'local' or a redis:// URL")


def choice(*options: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).strip().lower()
        if text not in options:
            raise ValueError(f"{value!r} is not one of {', '.join(options)}")
        return text

    return parse


def optional(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``parse``, or None for a missing value, an empty string or ``auto``."""

    def parse_optional(value: Any) -> Any:
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto")):
            return None
        return parse(value)

    return parse_optional


def at_least(parse: Callable[[Any], Any], minimum: float) -> Callable[[Any], Any]:
    def checked(value: Any) -> Any:
        result = parse(value)
        if result < minimum:
            raise ValueError(f"{value!r} is below the minimum {minimum}")
        return result

    return checked


@dataclass(frozen=True)
class Setting:
    """One option: its name, CLI flags, parser, default and help."""

    name: str
    flags: tuple[str, ...]
    parse: Callable[[Any], Any]
    default: Any
    help: str
    section: str = "server"
    multiple: bool = False  # the CLI flag may repeat
    is_flag: bool = False  # a --x/--no-x boolean switch
    metavar: str | None = None

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "bind",
        ("-b", "--bind"),
        parse_str_list,
        ["127.0.0.1:8000"],
        "Address to listen on: HOST:PORT, [IPv6]:PORT, unix:PATH or fd://N. Repeat for several.",
        multiple=True,
        metavar="ADDRESS",
    ),
    Setting(
        "port",
        ("-p", "--port"),
        at_least(parse_int, 0),
        None,
        "Port for --bind addresses given without one (and for the default host 127.0.0.1).",
        metavar="PORT",
    ),
    Setting("workers", ("-w", "--workers"), at_least(parse_int, 1), 1, "Number of worker processes."),
    Setting(
        "chdir",
        ("--chdir",),
        parse_optional_str,
        None,
        "Change to this directory before loading the app.",
        metavar="DIR",
    ),
    Setting(
        "interface",
        ("--interface",),
        choice("auto", "ring", "wsgi"),
        "auto",
        "Application interface: ring (request dict in, response dict out), wsgi, or auto (guessed from the signature).",
        section="app",
    ),
    Setting(
        "monkey_patch",
        ("--monkey-patch/--no-monkey-patch",),
        parse_bool,
        True,
        "Run gevent's patch_all() in each worker before the app is imported.",
        section="app",
        is_flag=True,
    ),
    Setting(
        "preload",
        ("--preload/--no-preload",),
        parse_bool,
        False,
        "Import the app in the master before forking (faster start, shared memory; HUP then does not reload app code).",
        section="app",
        is_flag=True,
    ),
    Setting(
        "timeout",
        ("-t", "--timeout"),
        at_least(parse_float, 0),
        30.0,
        "A worker whose event loop has not turned for this many seconds is killed (with a traceback of where it was "
        "stuck) and replaced; 0 turns it off.",
        section="master",
        metavar="SECONDS",
    ),
    Setting(
        "graceful_timeout",
        ("--graceful-timeout",),
        at_least(parse_float, 0),
        30.0,
        "On stop or reload, seconds a worker may spend finishing requests in flight before it is killed.",
        section="master",
        metavar="SECONDS",
    ),
    Setting(
        "request_timeout",
        ("--request-timeout",),
        at_least(parse_float, 0),
        0.0,
        "Seconds a handler may take for one request before the client gets 504 (cooperative code only); 0: no limit.",
        section="limits",
        metavar="SECONDS",
    ),
    Setting(
        "max_requests",
        ("--max-requests",),
        at_least(parse_int, 0),
        0,
        "Recycle a worker gracefully after it has served this many requests; 0: never.",
        section="master",
    ),
    Setting(
        "max_requests_jitter",
        ("--max-requests-jitter",),
        at_least(parse_int, 0),
        0,
        "Add a random 0..N to --max-requests per worker, so workers do not all recycle at once.",
        section="master",
    ),
    Setting(
        "max_worker_memory",
        ("--max-worker-memory",),
        parse_size,
        0,
        "Recycle a worker gracefully once its RSS is above this size, e.g. 128M (checked every 2 s); 0: no limit.",
        section="master",
        metavar="SIZE",
    ),
    Setting(
        "backlog",
        ("--backlog",),
        at_least(parse_int, 1),
        2048,
        "Listen backlog: connections the kernel queues before they are accepted.",
        section="server",
    ),
    Setting(
        "reuse_port",
        ("--reuse-port/--no-reuse-port",),
        parse_bool,
        False,
        "Each worker binds its own SO_REUSEPORT socket so the kernel spreads connections (TCP only).",
        section="server",
        is_flag=True,
    ),
    Setting(
        "umask",
        ("--umask",),
        parse_octal,
        None,
        "umask (octal, e.g. 007) set before binding, so it decides the mode of unix socket files.",
        section="server",
        metavar="MASK",
    ),
    Setting(
        "certfile",
        ("--certfile",),
        parse_optional_str,
        None,
        "Serve HTTPS with this PEM certificate (chain); TLS 1.2 and newer, ALPN http/1.1.",
        section="tls",
        metavar="FILE",
    ),
    Setting(
        "keyfile",
        ("--keyfile",),
        parse_optional_str,
        None,
        "The certificate's private key (PEM), if it is not in --certfile.",
        section="tls",
        metavar="FILE",
    ),
    Setting(
        "ca_certs",
        ("--ca-certs",),
        parse_optional_str,
        None,
        "CA bundle (PEM) to verify client certificates; with it, clients must present one.",
        section="tls",
        metavar="FILE",
    ),
    Setting(
        "pid",
        ("--pid",),
        parse_optional_str,
        None,
        "Write the master's pid to FILE (atomically; removed on exit; a live pid in it refuses the start).",
        section="master",
        metavar="FILE",
    ),
    Setting(
        "on_starting",
        (),
        parse_hook,
        None,
        "Hook MODULE:FUNCTION, fn(config), run in the master before the sockets are bound.",
        section="hooks",
    ),
    Setting(
        "when_ready",
        (),
        parse_hook,
        None,
        "Hook MODULE:FUNCTION, fn(config), run in the master once every worker serves.",
        section="hooks",
    ),
    Setting(
        "post_fork",
        (),
        parse_hook,
        None,
        "Hook MODULE:FUNCTION, fn(config, worker), run in a new worker right after the fork.",
        section="hooks",
    ),
    Setting(
        "post_worker_init",
        (),
        parse_hook,
        None,
        "Hook MODULE:FUNCTION, fn(config, worker), run in a worker once the app is loaded.",
        section="hooks",
    ),
    Setting(
        "worker_exit",
        (),
        parse_hook,
        None,
        "Hook MODULE:FUNCTION, fn(config, worker), run in a worker just before it exits.",
        section="hooks",
    ),
    Setting(
        "on_reload",
        (),
        parse_hook,
        None,
        "Hook MODULE:FUNCTION, fn(config), run in the master on SIGHUP after the config is re-read.",
        section="hooks",
    ),
    Setting(
        "root_path",
        ("--root-path",),
        parse_str,
        "",
        "URL prefix the app is mounted under behind a proxy: WSGI SCRIPT_NAME, stripped from PATH_INFO.",
        section="app",
        metavar="PATH",
    ),
    Setting(
        "forwarded_allow_ips",
        ("--forwarded-allow-ips",),
        parse_str_list,
        ["127.0.0.1", "::1"],
        "Proxy addresses whose X-Forwarded-For/-Proto and Forwarded headers set the client address and scheme; "
        "'*' trusts every peer.",
        section="app",
        metavar="IPS",
    ),
    Setting(
        "worker_connections",
        ("--worker-connections",),
        optional(at_least(parse_int, 1)),
        None,
        "Maximum simultaneous connections per worker (default: three quarters of the open-file limit, which the "
        "master raises to the hard limit); past it idle keep-alive connections are shed, then new clients get 503.",
        section="limits",
    ),
    Setting(
        "keepalive",
        ("--keepalive",),
        at_least(parse_float, 0),
        75.0,
        "Seconds an idle keep-alive connection is kept open (above the 60 s idle timeout of common load balancers).",
        section="limits",
        metavar="SECONDS",
    ),
    Setting(
        "header_timeout",
        ("--header-timeout",),
        at_least(parse_float, 0),
        20.0,
        "Seconds a client has to send a whole request head once it started; slower ones (slowloris) get 408.",
        section="limits",
        metavar="SECONDS",
    ),
    Setting(
        "body_timeout",
        ("--body-timeout",),
        at_least(parse_float, 0),
        30.0,
        "Seconds a request body may stall (no bytes arriving) while the app reads it; then 408 and close.",
        section="limits",
        metavar="SECONDS",
    ),
    Setting(
        "limit_request_line",
        ("--limit-request-line",),
        at_least(parse_int, 64),
        8190,
        "Maximum bytes in the request line (414 above).",
        section="limits",
        metavar="BYTES",
    ),
    Setting(
        "limit_request_fields",
        ("--limit-request-fields",),
        at_least(parse_int, 1),
        100,
        "Maximum number of header fields (431 above).",
        section="limits",
    ),
    Setting(
        "limit_request_field_size",
        ("--limit-request-field-size",),
        at_least(parse_int, 64),
        8190,
        "Maximum bytes in one header field line (431 above).",
        section="limits",
        metavar="BYTES",
    ),
    Setting(
        "max_body",
        ("--max-body",),
        parse_size,
        8 * 1024 * 1024,
        "Maximum request body size, e.g. 8M (413 above).",
        section="limits",
        metavar="SIZE",
    ),
    Setting(
        "pubsub",
        ("--pubsub",),
        parse_pubsub,
        "local",
        "Pub/sub backend: 'local' fans out to every worker of this server; redis://HOST:PORT/DB also reaches every "
        "instance sharing that Redis (needs the redis package).",
        section="pubsub",
        metavar="URL",
    ),
    Setting(
        "max_ws_message",
        ("--max-ws-message",),
        parse_size,
        4 * 1024 * 1024,
        "Largest WebSocket message accepted (after decompression); a larger one closes with 1009.",
        section="websocket",
        metavar="SIZE",
    ),
    Setting(
        "ws_compression",
        ("--ws-compression/--no-ws-compression",),
        parse_bool,
        True,
        "Negotiate permessage-deflate (RFC 7692) when the client offers it.",
        section="websocket",
        is_flag=True,
    ),
    Setting(
        "ws_ping_interval",
        ("--ws-ping-interval",),
        at_least(parse_float, 0),
        20.0,
        "Ping a WebSocket peer after this many seconds without a frame from it; 0 turns pings off.",
        section="websocket",
        metavar="SECONDS",
    ),
    Setting(
        "ws_ping_timeout",
        ("--ws-ping-timeout",),
        at_least(parse_float, 0),
        20.0,
        "Drop a WebSocket peer that has not answered a ping within this many seconds.",
        section="websocket",
        metavar="SECONDS",
    ),
    Setting(
        "ws_max_queue",
        ("--ws-max-queue",),
        at_least(parse_int, 1),
        1024,
        "Outgoing messages queued per channel while the peer reads slowly; when full, send() returns False.",
        section="websocket",
    ),
    Setting(
        "access_log",
        ("--access-log",),
        parse_optional_str,
        None,
        "Write an access log to FILE, or to stdout with '-' (off by default).",
        section="logging",
        metavar="FILE",
    ),
    Setting(
        "access_log_format",
        ("--access-log-format",),
        parse_str,
        '%(h)s - - [%(t)s] "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"',
        "Access log line format (combined log by default); atoms: h t r m U q H s b B f a T D L p.",
        section="logging",
        metavar="FORMAT",
    ),
    Setting(
        "log_level",
        ("--log-level",),
        choice("debug", "info", "warning", "error", "critical"),
        "info",
        "Error log level.",
        section="logging",
    ),
    Setting(
        "server_header",
        ("--server-header",),
        parse_str,
        "preforkit",
        "Value of the Server response header; an empty string turns it off.",
        section="logging",
        metavar="VALUE",
    ),
)

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
