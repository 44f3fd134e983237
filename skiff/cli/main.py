"""The ``skiff`` command: parse Docker-style flags, call the library, report errors.

Each command family lives in its own module with a ``register(subparsers)``
function; skiff.cli.commands says which module has which command, and only the
module of the command given is imported. Modules import only argparse at load
time; the library is imported inside the handlers, so ``skiff run`` pays only for
what it uses. Errors are printed and given their exit status in skiff.cli.errors.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import TYPE_CHECKING, Any, NoReturn

from skiff.cli.commands import MODULES
from skiff.cli.errors import exit_status, report
from skiff.errors import ArgumentCountError, GroupUsage, SkiffError, UnknownCommand, UnknownFlag, UsageError

if TYPE_CHECKING:
    from skiff.engine import Engine
    from skiff.paths import Paths

# argparse's words for a command it does not know (the word quoted as Python's repr quotes it).
_INVALID_COMMAND = re.compile(r"^argument COMMAND: invalid choice: (['\"])(?P<word>.*)\1 \(choose from")


class ArgumentParser(argparse.ArgumentParser):
    """argparse with Docker's client's rules for a bad command line.

    No abbreviated flags (``--nam`` is not ``--name``); an unknown flag is
    ``unknown flag: --x`` and 125; too few or too many arguments is Docker's
    ``"skiff rm" requires at least 1 argument.`` with the usage, and 1. Other
    usage errors raise instead of exiting 2, so they exit 125 as Docker's do. An unknown
    command is ``'X' is not a skiff command.`` and 1; a group without one of its commands
    prints the group's usage (``GroupUsage``).
    """

    # ``run IMAGE -- ARG``: Docker stops parsing flags at the image, so a ``--`` after it is the
    # command's first argument; argparse would swallow it with the image (set by add_run_flags).
    dashdash_after_first_positional = False
    # The fewest arguments the command needs when a REMAINDER hides it (exec: CONTAINER COMMAND).
    min_args = 0

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.register("action", "parsers", _SubParsersAction)
        self.summary = ""  # the one-line help the parent gave this command (Docker prints it after the usage)
        self._dashdash_pending = False

    def error(self, message: str) -> NoReturn:
        if message.startswith("the following arguments are required"):
            raise _MissingArguments(message)
        needs = message.partition(": expected one argument")
        if needs[1] and needs[0].startswith("argument "):
            flag = needs[0][len("argument "):].split("/")[-1]
            raise UnknownFlag(f"flag needs an argument: {flag}\nSee '{self.prog} --help'.")
        unknown = _INVALID_COMMAND.match(message)
        if unknown and self.prog == "skiff":
            raise UnknownCommand(f"skiff: '{unknown['word']}' is not a skiff command.\nSee 'skiff --help'")
        if unknown:
            raise GroupUsage(self._group_usage(), exit_code=1)
        raise UsageError(message, hint=f"see '{self.prog} --help'")

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[no-untyped-def]
        words = list(sys.argv[1:] if args is None else args)
        self._dashdash_pending = False
        try:
            parsed, extras = super().parse_known_args(words, namespace)
        except _MissingArguments as missing:
            self._raise_unknown_flag(words)
            if self._has_subcommands() and self.prog != "skiff":  # "skiff volume": no command named
                raise GroupUsage(self._group_usage(), exit_code=0) from None
            if self._has_subcommands():
                raise UsageError(str(missing), hint=f"see '{self.prog} --help'") from None
            raise self._count_error() from None
        self._raise_unknown_flag(extras)
        if extras or self._positional_count(parsed) < self.min_args:
            raise self._count_error()
        return parsed, extras

    def _get_values(self, action: argparse.Action, arg_strings: list[str]) -> object:
        if self.dashdash_after_first_positional and not action.option_strings:
            if action.nargs is None and arg_strings[1:] == ["--"] and arg_strings[0] != "--":
                self._dashdash_pending = True  # IMAGE --: the "--" belongs to the command
                arg_strings = arg_strings[:1]
            elif action.nargs == argparse.REMAINDER and self._dashdash_pending:
                arg_strings = ["--", *arg_strings]
        return super()._get_values(action, arg_strings)

    def _raise_unknown_flag(self, words: list[str]) -> None:
        for word in words:
            if word == "--":
                return
            found = self._parse_optional(word)
            if found and found[0] is None:
                flag = word.partition("=")[0]
                text = f"unknown flag: {flag}" if flag.startswith("--") else \
                    f"unknown shorthand flag: '{flag[1:2]}' in {flag}"
                raise UnknownFlag(f"{text}\nSee '{self.prog} --help'.")

    def _has_subcommands(self) -> bool:
        return any(isinstance(a, argparse._SubParsersAction) for a in self._actions)

    def _positional_actions(self) -> list[argparse.Action]:
        return [a for a in self._actions if not a.option_strings]

    def _positional_count(self, parsed: argparse.Namespace) -> int:
        count = 0
        for action in self._positional_actions():
            value = getattr(parsed, action.dest, None)
            count += len(value) if isinstance(value, list) else int(value is not None)
        return count

    def _count_error(self) -> ArgumentCountError:
        """Docker's wording for a wrong number of arguments, from the command's positionals."""
        low, high = 0, 0
        for action in self._positional_actions():
            nargs = action.nargs
            if nargs is None:
                low, high = low + 1, high + 1
            elif isinstance(nargs, int):
                low, high = low + nargs, high + nargs
            elif nargs == "?":
                high += 1
            else:  # "*", "+", REMAINDER: no upper bound
                low, high = low + (nargs == "+"), -1
        low = max(low, self.min_args)
        name = f'"{self.prog}"'
        if high == 0:
            text = f"{name} accepts no arguments."
        elif low == high:
            text = f"{name} requires exactly {_arguments(low)}."
        elif high < 0:
            text = f"{name} requires at least {_arguments(low)}."
        elif low == 0:
            text = f"{name} requires at most {_arguments(high)}."
        else:
            text = f"{name} requires at least {low} and at most {_arguments(high)}."
        usage = f"\n\nUsage:  {self._usage_line()}" + (f"\n\n{self.summary}" if self.summary else "")
        return ArgumentCountError(f"{text}\nSee '{self.prog} --help'.{usage}")

    def _group_usage(self) -> str:
        """Docker's usage of a command group: its commands (not their aliases), sorted, each with
        its help line, padded as cobra pads them."""
        commands: dict[str, str] = {}
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                seen: set[int] = set()
                for name, parser in action.choices.items():
                    if id(parser) not in seen:  # the first name of a parser is its own, the rest aliases
                        seen.add(id(parser))
                        commands[name] = getattr(parser, "summary", "")
        rows = "\n".join(f"  {name.ljust(11)} {summary}".rstrip() for name, summary in sorted(commands.items()))
        summary = f"\n\n{self.summary}" if self.summary else ""
        return (f"\nUsage:  {self.prog} COMMAND{summary}\n\nCommands:\n{rows}\n\n"
                f"Run '{self.prog} COMMAND --help' for more information on a command.")

    def _usage_line(self) -> str:
        words = [self.prog]
        if any(a.option_strings and not isinstance(a, argparse._HelpAction) for a in self._actions):
            words.append("[OPTIONS]")
        for action in self._positional_actions():
            name = action.metavar if isinstance(action.metavar, str) else action.dest.upper()
            needed = len(words) - 1 - (words[1:2] == ["[OPTIONS]"]) < self.min_args  # exec's COMMAND
            words.append({None: name, "?": f"[{name}]", "+": f"{name} [{name}...]", "*": f"[{name}...]",
                          argparse.REMAINDER: f"{name} [ARG...]" if needed else f"[{name}] [ARG...]",
                          }.get(action.nargs, name))  # type: ignore[arg-type]
        return " ".join(words)


class _MissingArguments(Exception):
    """Raised by ``error`` for missing positionals; ``parse_known_args`` turns it into Docker's message."""


class _SubParsersAction(argparse._SubParsersAction):
    """Keeps each command's help line on its parser, for the usage Docker prints after a count error."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        summary = str(kwargs.get("help") or "")
        parser = super().add_parser(name, **kwargs)
        parser.summary = summary[:1].upper() + summary[1:]
        return parser


def _arguments(count: int) -> str:
    return f"{count} argument" if count == 1 else f"{count} arguments"


def build_parser(command: str | None = None) -> ArgumentParser:
    """The whole command line, or only ``command``'s part of it.

    argparse spends about 25 ms building every subcommand (most of it looking up
    translations for each help string); ``skiff run`` needs only its own, so the
    others are skipped, and their modules not imported, when the command word is known.
    """
    parser = ArgumentParser(prog="skiff", description="Run containers with Docker's behaviour.")
    parser.add_argument("--root", help="persistent state directory (default /var/lib/skiff, env SKIFF_ROOT)")
    parser.add_argument("--run-root", help="runtime state directory (default /run/skiff, env SKIFF_RUN_ROOT)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    parser.add_argument("--version", action="version", version=f"skiff {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    sub.required = True
    import importlib

    # not a command (or none: --help): the full parser, which lists them all in the table's order
    for name in [command] if command in MODULES else MODULES:
        importlib.import_module(f"skiff.cli.{MODULES[name]}").register(_OnlyCommand(sub, name))
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

    def add_parser(self, name: str, **kwargs: Any) -> object:
        if name == self._command or self._command in kwargs.get("aliases", ()):
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


def paths_from(args: argparse.Namespace) -> Paths:
    from skiff.paths import Paths

    return Paths.from_env(args.root, args.run_root)


def engine_from(args: argparse.Namespace) -> Engine:
    from skiff.engine import Engine

    return Engine(paths_from(args))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv or bool(os.environ.get("SKIFF_DEBUG"))
    args = argparse.Namespace()
    try:
        args = build_parser(command_word(argv)).parse_args(argv)
        status = args.func(args)
        return int(status or 0)
    except SkiffError as exc:
        _report(exc, debug)
        # the command's own table (``run``: 125, 126, 127), else the error's type's status
        return exit_status(exc, getattr(args, "exit_codes", {}))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 141
    except OSError as exc:
        # An OSError that escaped the library is still a user-facing failure:
        # one line that names the file, never a traceback (unless asked for).
        return _report(str(exc), debug)
    except Exception as exc:  # a bug in skiff: still one line, the traceback on request
        return _report(f"internal error: {type(exc).__name__}: {exc} (run with --debug for details)", debug)


def run() -> NoReturn:
    """The ``skiff`` command: ``main()``, then exit without the interpreter's teardown."""
    from skiff import exit_without_teardown

    exit_without_teardown(main())


def _report(error: SkiffError | str, debug: bool) -> int:
    if debug:
        import traceback

        traceback.print_exc()
    report(error)
    return 125


if __name__ == "__main__":
    run()
