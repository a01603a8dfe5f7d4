"""The ``preforkit`` command, with options generated from ``config.SETTINGS``."""

from __future__ import annotations

import logging
import os
import sys

import click

from . import __version__
from .config import SETTINGS, ConfigError, make_config

log = logging.getLogger("preforkit.error")


def _fail(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(2)


def _add_setting_options(command):
    for setting in reversed(SETTINGS):
        if not setting.flags:
            continue  # config-file and environment only (hooks)
        kwargs = {"default": None, "help": f"{setting.help} [env {setting.env}]"}
        if setting.is_flag:
            kwargs["default"] = None
        elif setting.multiple:
            kwargs["multiple"] = True
            kwargs["default"] = ()
        if setting.metavar:
            kwargs["metavar"] = setting.metavar
        if not setting.is_flag and not setting.metavar:
            kwargs["metavar"] = setting.name.upper().split("_")[-1]
        command = click.option(*setting.flags, setting.name, **kwargs)(command)
    return command


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("app", metavar="MODULE:ATTR")
@_add_setting_options
@click.option(
    "--config",
    "config_file",
    metavar="FILE",
    default=None,
    help='TOML config file (keys are the option names, e.g. max_body = "8M") [env PREFORKIT_CONFIG]',
)
@click.option(
    "--check-config",
    is_flag=True,
    help="Load the settings, the hooks and the app, then exit: 0 if all is well, 2 with the error in one line",
)
@click.option(
    "--print-config",
    is_flag=True,
    help="Print every effective setting and where it came from (default, file, environment, flag), then exit",
)
@click.version_option(__version__, "--version", prog_name="preforkit")
def main(app: str, config_file: str | None, check_config: bool, print_config: bool, **options) -> None:
    """Serve the Ring handler or WSGI app MODULE:ATTR (e.g. examples.hello:handler).

    Settings come from, lowest precedence first: defaults, the config file,
    PREFORKIT_<NAME> environment variables, then these options.
    """
    config_file = config_file or os.environ.get("PREFORKIT_CONFIG")
    try:
        config = make_config(file=config_file, cli=options)
    except ConfigError as exc:
        _fail(str(exc))
    if print_config or check_config:
        from ._config_report import CheckFailed
        from ._config_report import check_config as check
        from ._config_report import print_config as show

        if print_config:
            show(config)
        if check_config:
            try:
                click.echo(check(app, config))
            except CheckFailed as exc:
                _fail(str(exc))
        sys.exit(0)
    from .master import run

    def reload_config():
        """SIGHUP: the config file and environment read again, the CLI kept."""
        return make_config(file=config_file, cli=options)

    sys.exit(run(app, config, reload_config))


def entry() -> None:
    """``preforkit MODULE:ATTR [options]``, or ``preforkit status|reload|stop|workers`` for a running master."""
    if len(sys.argv) > 1 and sys.argv[1] in CONTROL_COMMANDS:
        from ._control_cli import control

        control(prog_name="preforkit")
    else:
        main(prog_name="preforkit")


CONTROL_COMMANDS = ("status", "reload", "stop", "workers")  # never an app: an app is MODULE:ATTR


if __name__ == "__main__":  # pragma: no cover
    entry()
