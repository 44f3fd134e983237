"""skiff: a container engine for one Linux host, with Docker's behaviour."""

from __future__ import annotations

import os as _os

__version__ = "0.1.0"

# The crash-safety tests (tests/e2e/test_crash.py) make a command SIGKILL itself at a named step;
# read once at import so that the check on the hot path is one comparison.
_CRASH_AT = _os.environ.get("SKIFF_CRASH_AT", "")

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

    from skiff import errors as errors, testing as testing  # what __getattr__ loads lazily, for type checkers
    from skiff.client import Client as Client, from_env as from_env


# The Python API (skiff.Client, skiff.testing), loaded on first use: ``skiff run`` from the
# command line imports this package and must not pay for the client (start-up time).
_LAZY = {"Client": ("skiff.client", "Client"), "from_env": ("skiff.client", "from_env"),
         "testing": ("skiff.testing", None), "errors": ("skiff.errors", None)}


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module 'skiff' has no attribute {name!r}")
    import importlib

    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value  # kept: the next lookup finds it without calling here
    return value


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


def crash_point(name: str) -> None:
    """SIGKILL this process here if ``SKIFF_CRASH_AT`` names this step (a test of crash safety).

    The steps: ``recorded`` (record written, its volumes not yet made), ``reserved``
    (record and volumes made), ``starting`` (start has claimed the record), ``rootfs``,
    ``network``, ``volumes``, ``bundle`` (config.json written),
    ``runtime-create`` (init made, runtime state not yet written), ``created``
    (runtime create done, not started), ``exited`` (exit recorded, not torn down).
    """
    if _CRASH_AT == name:
        _os.kill(_os.getpid(), 9)
