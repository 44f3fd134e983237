"""The command line that runs a module of skiff in a new Python process.

skiff starts Python children of its own: the monitor's ``after`` phase, a
network's DNS resolver. Each must import the same skiff, and the same
dependencies, as the process that starts it, however that one was started:
the launcher ``scripts/setup`` writes (the base interpreter with ``-S`` and
``sys.path`` set inside the script), a venv's console script, ``python -m
skiff``, or a plain ``pip install``. None of these can be found again from the
interpreter alone, and the environment is no way to pass it: a child runs
isolated (``-I``: no ``PYTHONPATH``, no current directory on the path, as
befits a process running as root) and without ``site`` (``-S``: no ``.pth``
costs). So the import path goes on the command line itself.

Standard library only: imported on the hot path of ``run -d``.
"""

from __future__ import annotations

import os
import sys


def import_path() -> list[str]:
    """Where this process imports skiff and its dependencies from, beyond the standard library.

    First the directory holding the ``skiff`` package (from its own ``__file__``, so
    that an editable install's import hook, which a child without ``site`` would not
    have, is not needed), then this process's other absolute ``sys.path`` entries
    except the interpreter's own standard library, which every child has already.
    """
    import skiff

    package_root = os.path.dirname(os.path.dirname(os.path.abspath(skiff.__file__)))
    stdlib = os.path.dirname(os.__file__)
    stdlib_parent = os.path.dirname(stdlib)
    entries = [package_root]
    for entry in sys.path:
        if not entry or not os.path.isabs(entry) or entry in entries:
            continue
        if entry == stdlib or entry.startswith(stdlib + os.sep):
            continue  # the standard library and lib-dynload
        if entry.endswith(".zip") and os.path.dirname(entry) == stdlib_parent:
            continue  # the standard library's zip (pythonXY.zip)
        entries.append(entry)
    return entries


def module_argv(module: str, *args: str) -> list[str]:
    """The argv that runs ``module.main(list(args))`` in a child with this interpreter.

    ``module`` must define ``main(argv: list[str])``: it is imported, not run as
    ``__main__``, so that its cached bytecode is used and its name stays in the
    child's command line (``ps`` shows ``from skiff.network.resolver import main``).
    """
    code = f"import sys; sys.path[0:0] = {import_path()!r}; from {module} import main; main(sys.argv[1:])"
    return [sys.executable, "-I", "-S", "-c", code, *args]


def main(argv: list[str]) -> None:
    """Print where this process found skiff: ``module_argv("skiff.pychild")`` checks a child can."""
    import skiff

    print(os.path.dirname(os.path.abspath(skiff.__file__)))
