"""``skiff exec``, ``attach`` and ``logs``: commands that reach into a container's processes
and output."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

from skiff.cli.commands import Command, add_commands
from skiff.cli.errors import ExitCodes
from skiff.cli.main import engine_from
from skiff.errors import ExecError, UnknownUser

if TYPE_CHECKING:
    from skiff.engine.logs import Entry

# Docker 20.10's exec: a command that cannot be started (missing, not executable, an unknown
# user) is 126 (run keeps 127 for a missing one); a missing or stopped container is 1.
EXEC_EXIT_CODES: ExitCodes = {ExecError: 126, UnknownUser: 126}


def register(sub: argparse._SubParsersAction) -> None:
    add_commands(sub, COMMANDS)


def add_exec_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-d", "--detach", action="store_true", help="run the command in the background")
    p.add_argument("-i", "--interactive", action="store_true", help="keep STDIN open")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-TTY")
    p.add_argument("-e", "--env", action="append", default=[], help="set environment variables")
    p.add_argument("-u", "--user", help="username or UID (format: name|uid[:group|gid])")
    p.add_argument("-w", "--workdir", help="working directory inside the container")
    from skiff.cli.run import add_explain_flag

    add_explain_flag(p)
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND")
    p.dashdash_after_first_positional = True  # type: ignore[attr-defined]
    p.min_args = 2  # type: ignore[attr-defined]  # CONTAINER COMMAND, as Docker's client counts them
    p.set_defaults(func=cmd_exec, exit_codes=EXEC_EXIT_CODES)


def cmd_exec(args: argparse.Namespace) -> int:
    from skiff.cli.run import check_terminal, enable_explain

    check_terminal(args)
    enable_explain(args)
    status = engine_from(args).exec(args.container, args.command, env=args.env, user=args.user,
                                    workdir=args.workdir, interactive=args.interactive, tty=args.tty,
                                    detach=args.detach)
    return 0 if args.detach else status


def add_attach_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-stdin", action="store_true", help="do not attach STDIN")
    p.add_argument("--sig-proxy", default="true", choices=("true", "false"),
                   help="proxy all received signals to the process (default true)")
    p.add_argument("--detach-keys", help="override the key sequence for detaching a container (ctrl-p,ctrl-q)")
    p.add_argument("container", metavar="CONTAINER")
    p.set_defaults(func=cmd_attach)


def cmd_attach(args: argparse.Namespace) -> int:
    status = engine_from(args).attach(args.container, stdin=not args.no_stdin, detach_keys=args.detach_keys,
                                      proxy_signals=args.sig_proxy == "true")
    return 0 if status is None else status


def add_logs_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--follow", action="store_true", help="follow log output")
    p.add_argument("-n", "--tail", default="all", help="number of lines to show from the end of the logs")
    p.add_argument("-t", "--timestamps", action="store_true", help="show timestamps")
    p.add_argument("--since", help="show logs since a timestamp or a relative time (42m)")
    p.add_argument("container", metavar="CONTAINER")
    p.set_defaults(func=cmd_logs)


def cmd_logs(args: argparse.Namespace) -> int:
    from skiff.engine import logs

    tail = logs.tail_lines(args.tail)
    since = logs.parse_since(args.since)
    container = engine_from(args).find(args.container)
    entries, offset = logs.read(container.log_path, tail, since)
    _print_entries(entries, args.timestamps)
    if args.follow:
        _print_entries(logs.follow(container.log_path, offset, logs.still_written(container)), args.timestamps)
    return 0


def _print_entries(entries: Iterable[Entry], timestamps: bool) -> None:
    for stream, text, stamp in entries:
        out = sys.stdout if stream == "stdout" else sys.stderr
        out.write(f"{stamp} {text}" if timestamps else text)
        out.flush()


COMMANDS = (
    Command("exec", add_exec_flags, "execute a command in a running container"),
    Command("attach", add_attach_flags, "attach local standard input, output, and error streams to a running "
            "container"),
    Command("logs", add_logs_flags, "fetch the logs of a container"),
)
