"""The master: binding, forking and supervising workers."""

from ._binding import BindError, bind, describe, parse_address
from ._run import run

__all__ = ["BindError", "bind", "describe", "parse_address", "run"]
