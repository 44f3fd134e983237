"""The CLI's error edge: how an error is printed, and which exit status it gives.

Every error line goes through ``report``: ``skiff: MESSAGE``, where Docker's client puts its
daemon's answer or ``Error:`` before the message (skiff has no daemon; the wording after the
prefix is Docker's, so what scripts grep for still matches). Lines Docker's client prints as
they are (``unknown flag: --x``, a usage) are printed as they are.

A command whose exit status depends on the kind of error (``run``: 125 for skiff's own
failures, 126 and 127 for the command's) says so in one table of error types, given to
argparse as its ``exit_codes`` default; ``main`` applies it to whatever the command raises.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping

from skiff.errors import SkiffError

# Error type -> exit status; the nearest class of an error in its type's MRO decides.
ExitCodes = Mapping[type[SkiffError], int]


def error_line(error: SkiffError | str) -> str:
    """The line (or Docker's client's verbatim lines) printed for ``error``."""
    if isinstance(error, SkiffError) and error.verbatim:
        return str(error)
    return f"skiff: {error}"


def report(error: SkiffError | str) -> None:
    """Print ``error`` on stderr in skiff's one style."""
    print(error_line(error), file=sys.stderr)


def exit_status(error: SkiffError, codes: ExitCodes) -> int:
    """The exit status of ``error`` under a command's table: the entry of its nearest class,
    else the status its type carries (skiff.errors)."""
    for cls in type(error).__mro__:
        if cls in codes:
            return codes[cls]
    return error.exit_code


def for_each(refs: Iterable[str], action: Callable[[str], object]) -> int:
    """Apply ``action`` to every object named; as Docker's client, an error is printed as it
    happens, the others still go, and the status is 1 if any failed."""
    status = 0
    for ref in refs:
        try:
            action(ref)
        except SkiffError as exc:
            report(exc)
            status = 1
    return status
