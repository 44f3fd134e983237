"""The ``skiff`` command: parse Docker-style flags, call the library, report errors.

Each command group lives in its own module with a ``register(subparsers)``
function. Modules import only argparse at load time; the library is imported
inside the handlers, so ``skiff run`` pays only for what it uses.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn

from skiff.errors import SkiffError, UsageError

# Command-group modules, in the order their commands appear in ``--help``.
COMMAND_MODULES = ("container", "image", "registry", "volume", "network", "system")


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises instead of exiting 2, so usage errors exit 125 as Docker's do."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, hint=f"see '{self.prog} --help'")


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="skiff", description="Run containers with Docker's behaviour.")
    parser.add_argument("--root", help="persistent state directory (default /var/lib/skiff, env SKIFF_ROOT)")
    parser.add_argument("--run-root", help="runtime state directory (default /run/skiff, env SKIFF_RUN_ROOT)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    parser.add_argument("--version", action="version", version=f"skiff {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    sub.required = True
    import importlib

    for name in COMMAND_MODULES:
        module = importlib.import_module(f"skiff.cli.{name}")
        module.register(sub)
    return parser


def _version() -> str:
    from skiff import __version__

    return __version__


def paths_from(args: argparse.Namespace):  # -> skiff.paths.Paths
    from skiff.paths import Paths

    return Paths.from_env(args.root, args.run_root)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv or bool(os.environ.get("SKIFF_DEBUG"))
    try:
        args = build_parser().parse_args(argv)
        status = args.func(args)
        return int(status or 0)
    except SkiffError as exc:
        _report(f"skiff: {exc}", debug)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 141
    except OSError as exc:
        # An OSError that escaped the library is still a user-facing failure:
        # one line that names the file, never a traceback (unless asked for).
        return _report(f"skiff: {exc}", debug)
    except Exception as exc:  # a bug in skiff: still one line, the traceback on request
        return _report(f"skiff: internal error: {type(exc).__name__}: {exc} (run with --debug for details)", debug)


def _report(line: str, debug: bool) -> int:
    if debug:
        import traceback

        traceback.print_exc()
    print(line, file=sys.stderr)
    return 125


if __name__ == "__main__":
    sys.exit(main())
