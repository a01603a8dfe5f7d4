"""One setting's declaration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

ENV_PREFIX = "PREFORKIT_"


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
