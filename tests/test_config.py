"""Every setting: default, environment, config file, CLI, and errors."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import preforkit
from preforkit import cli
from preforkit.config import SETTINGS, Config, ConfigError, make_config, parse_size

SAMPLE = {
    "bind": ("127.0.0.1:9001", ["127.0.0.1:9001"]),
    "port": ("9002", 9002),
    "workers": ("3", 3),
    "chdir": ("/tmp", "/tmp"),
    "interface": ("WSGI", "wsgi"),
    "monkey_patch": ("false", False),
    "worker_connections": ("50", 50),
    "keepalive": ("2.5", 2.5),
    "limit_request_line": ("1000", 1000),
    "limit_request_fields": ("20", 20),
    "limit_request_field_size": ("2000", 2000),
    "max_body": ("2M", 2 * 1024 * 1024),
    "access_log": ("-", "-"),
    "access_log_format": ("%(s)s", "%(s)s"),
    "log_level": ("debug", "debug"),
    "server_header": ("x", "x"),
    "preload": ("true", True),
    "request_id": ("true", True),
    "proxy_protocol": ("true", True),
    "reload": ("true", True),
    "reload_dir": ("src", ["src"]),
    "reload_include": ("*.html", ["*.html"]),
    "reload_exclude": ("build", ["build"]),
    "certfile": ("/tmp/c.pem", "/tmp/c.pem"),
    "keyfile": ("/tmp/k.pem", "/tmp/k.pem"),
    "ca_certs": ("/tmp/ca.pem", "/tmp/ca.pem"),
    "header_timeout": ("5", 5.0),
    "body_timeout": ("6", 6.0),
    "pubsub": ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    "max_ws_message": ("1M", 1 << 20),
    "ws_compression": ("false", False),
    "ws_ping_interval": ("5", 5.0),
    "ws_ping_timeout": ("3", 3.0),
    "ws_max_queue": ("16", 16),
    "root_path": ("/app", "/app"),
    "forwarded_allow_ips": ("10.0.0.1,10.0.0.2", ["10.0.0.1", "10.0.0.2"]),
    "timeout": ("5", 5.0),
    "graceful_timeout": ("7", 7.0),
    "request_timeout": ("1.5", 1.5),
    "max_requests": ("100", 100),
    "max_requests_jitter": ("10", 10),
    "max_worker_memory": ("128M", 128 << 20),
    "backlog": ("64", 64),
    "defer_accept": ("5", 5),
    "reuse_port": ("yes", True),
    "umask": ("007", 0o007),
    "pid": ("/tmp/p.pid", "/tmp/p.pid"),
    "control_socket": ("/tmp/c.sock", "/tmp/c.sock"),
    "metrics_bind": ("127.0.0.1:9100", "127.0.0.1:9100"),
    "user": ("nobody", "nobody"),
    "group": ("nogroup", "nogroup"),
    "error_log": ("/tmp/e.log", "/tmp/e.log"),
    "log_format": ("json", "json"),
    "log_config": ("/tmp/l.json", "/tmp/l.json"),
    "on_starting": ("hooks:a", "hooks:a"),
    "when_ready": ("hooks:b", "hooks:b"),
    "post_fork": ("hooks:c", "hooks:c"),
    "post_worker_init": ("hooks:d", "hooks:d"),
    "worker_exit": ("hooks:e", "hooks:e"),
    "on_reload": ("hooks:f", "hooks:f"),
}


def test_every_setting_has_a_sample():
    assert set(SAMPLE) == {s.name for s in SETTINGS}


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_defaults_parse(setting):
    config = Config()
    assert getattr(config, setting.name) == setting.default
    assert config.source(setting.name) == "default"
    if setting.default is not None:
        assert setting.parse(setting.default) == setting.default


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_env_file_and_precedence(setting, tmp_path):
    raw, value = SAMPLE[setting.name]
    config = make_config(env={setting.env: raw})
    assert getattr(config, setting.name) == value
    assert config.source(setting.name) == f"environment variable {setting.env}"
    path = tmp_path / "c.toml"
    path.write_text(f"{setting.name} = {raw!r}\n".replace("'", '"'))
    config = make_config(file=str(path), env={})
    assert getattr(config, setting.name) == value
    assert config.source(setting.name).startswith("config file")
    # The environment beats the file.
    config = make_config(file=str(path), env={setting.env: raw})
    assert config.source(setting.name).startswith("environment")


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.flags], ids=lambda s: s.name)
def test_cli_option_exists_and_wins(setting, monkeypatch):
    captured = {}

    def fake_run(app, config, reload_config=None):
        captured["config"] = config
        return 0

    monkeypatch.setattr("preforkit.master.run", fake_run)
    raw, value = SAMPLE[setting.name]
    if setting.is_flag:
        flag = setting.flags[0].split("/")[1] if value is False else setting.flags[0].split("/")[0]
        args = [flag]
    else:
        args = [setting.flags[-1], raw]
    result = CliRunner().invoke(cli.main, ["app:handler", *args], env={setting.env: "garbage-ignored"})
    assert result.exit_code == 0, result.output
    assert getattr(captured["config"], setting.name) == value
    assert captured["config"].source(setting.name) == "command line"


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("workers", "0"),
        ("workers", "many"),
        ("max_body", "8X"),
        ("keepalive", "-1"),
        ("interface", "asgi"),
        ("monkey_patch", "maybe"),
        ("log_level", "loud"),
    ],
)
def test_invalid_values_name_setting_and_source(name, raw):
    with pytest.raises(ConfigError) as info:
        make_config(env={f"PREFORKIT_{name.upper()}": raw})
    assert name in str(info.value)
    assert f"PREFORKIT_{name.upper()}" in str(info.value)


def test_hooks_are_not_cli_options():
    hooks = [s for s in SETTINGS if not s.flags]
    assert {s.name for s in hooks} == {
        "on_starting",
        "when_ready",
        "post_fork",
        "post_worker_init",
        "worker_exit",
        "on_reload",
    }
    with pytest.raises(ConfigError, match="MODULE:FUNCTION"):
        make_config(env={"PREFORKIT_POST_FORK": "nocolon"})


def test_unknown_key_in_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("no_such_thing = 1\n")
    with pytest.raises(ConfigError, match="unknown setting 'no_such_thing'"):
        make_config(file=str(path), env={})


def test_bad_toml(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("this is = = not toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        make_config(file=str(path), env={})


@pytest.mark.parametrize(
    ("text", "size"), [("10", 10), ("8M", 8 << 20), ("512k", 512 << 10), ("1G", 1 << 30), ("2MiB", 2 << 20), (7, 7)]
)
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("bind", "port", "expected"),
    [
        (None, None, ["127.0.0.1:8000"]),
        (None, "9000", ["127.0.0.1:9000"]),
        ("0.0.0.0", "9000", ["0.0.0.0:9000"]),
        ("0.0.0.0:1234", "9000", ["0.0.0.0:1234"]),
        ("[::1]", "9000", ["[::1]:9000"]),
        ("unix:/tmp/s", "9000", ["unix:/tmp/s"]),
    ],
)
def test_port_applies_to_binds_without_one(bind, port, expected):
    cli_values = {}
    if bind:
        cli_values["bind"] = (bind,)
    if port:
        cli_values["port"] = port
    assert make_config(env={}, cli=cli_values).binds() == expected


def test_public_exports():
    """The public surface is pinned: changing it must be deliberate."""
    assert preforkit.__all__ == [
        "SSE_HEADERS",
        "AsyncResponse",
        "Channel",
        "Responder",
        "Server",
        "__version__",
        "as_channel",
        "async_response",
        "run_server",
        "serve",
        "sse_comment",
        "sse_event",
    ]
    for name in preforkit.__all__:
        assert hasattr(preforkit, name)
