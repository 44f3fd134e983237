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


def build_parser(command: str | None = None) -> ArgumentParser:
    """The whole command line, or only ``command``'s part of it.

    argparse spends about 25 ms building every subcommand (most of it looking up
    translations for each help string); ``skiff run`` needs only its own, so the
    others are skipped when the command word is known.
    """
    parser = ArgumentParser(prog="skiff", description="Run containers with Docker's behaviour.")
    parser.add_argument("--root", help="persistent state directory (default /var/lib/skiff, env SKIFF_ROOT)")
    parser.add_argument("--run-root", help="runtime state directory (default /run/skiff, env SKIFF_RUN_ROOT)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    parser.add_argument("--version", action="version", version=f"skiff {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    sub.required = True
    import importlib

    target = sub if command is None else _OnlyCommand(sub, command)
    for name in COMMAND_MODULES:
        importlib.import_module(f"skiff.cli.{name}").register(target)
    if command is not None and not sub.choices:
        return build_parser()  # not a command: the full parser reports it with the list of choices
    return parser


def command_word(argv: list[str]) -> str | None:
    """The subcommand in ``argv``: the first word that is neither a global option nor its value."""
    words = iter(argv)
    for word in words:
        if word in ("--root", "--run-root"):
            next(words, None)
        elif not word.startswith("-"):
            return word
        elif word in ("-h", "--help", "--version"):
            return None
    return None


class _OnlyCommand:
    """Stands in for the subparsers object: registers one command, ignores the rest."""

    def __init__(self, sub: argparse._SubParsersAction, command: str) -> None:
        self._sub = sub
        self._command = command

    def add_parser(self, name: str, **kwargs: object) -> object:
        if name == self._command or self._command in kwargs.get("aliases", ()):  # type: ignore[operator]
            return self._sub.add_parser(name, **kwargs)
        return _IGNORED


class _Ignored:
    """Absorbs the calls made on parsers of commands that are not being run."""

    def __getattr__(self, name: str) -> "_Ignored":
        return self

    def __call__(self, *args: object, **kwargs: object) -> "_Ignored":
        return self

    def __getitem__(self, key: object) -> "_Ignored":
        return self


_IGNORED = _Ignored()


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
        args = build_parser(command_word(argv)).parse_args(argv)
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


def run() -> NoReturn:
    """The ``skiff`` command: ``main()``, then exit without the interpreter's teardown."""
    from skiff import exit_without_teardown

    exit_without_teardown(main())


def _report(line: str, debug: bool) -> int:
    if debug:
        import traceback

        traceback.print_exc()
    print(line, file=sys.stderr)
    return 125


if __name__ == "__main__":
    run()
