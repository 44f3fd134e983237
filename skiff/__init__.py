"""skiff: a container engine for one Linux host, with Docker's behaviour."""

from __future__ import annotations

__version__ = "0.1.0"

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn


def exit_without_teardown(status: int) -> NoReturn:
    """Flush stdout and stderr, then exit at once, skipping the interpreter's teardown.

    Both commands start one Python per container operation, and finalizing every
    loaded module costs 2-5 ms at each exit. They need none of it: files are closed
    (and records fsynced) where they are written, and threads are joined before the
    command returns. A closed pipe on output turns a success into 141, as a shell's.
    """
    import os
    import sys

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):
            status = status or 141
    os._exit(status)
