"""``--filter`` on the command line: Docker's client's parsing of ``name=value`` words.

What the filters mean lives in skiff.engine.filters (shared with any other front end);
here only the client's own error: a word without ``=`` is a bad flag value (125).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from skiff.engine.filters import FilterArgs


def filter_args(args: argparse.Namespace, flag: str = "-f, --filter") -> FilterArgs:
    from skiff.engine.filters import FilterArgs
    from skiff.errors import UnknownFlag

    try:
        return FilterArgs.parse(args.filter)
    except ValueError as exc:
        prog = getattr(args, "prog_name", None) or "skiff"
        raise UnknownFlag(f'invalid argument "{exc}" for "{flag}" flag: bad format of filter (expected '
                          f"name=value)\nSee '{prog} --help'.") from None


def add_filter_flag(p: argparse.ArgumentParser, help_text: str, short: bool = True) -> None:
    """``-f``/``--filter`` (``--filter`` alone on prune commands, as Docker's), repeatable."""
    flags = ("-f", "--filter") if short else ("--filter",)
    p.add_argument(*flags, dest="filter", action="append", default=[], help=help_text)
    p.set_defaults(prog_name=p.prog)
