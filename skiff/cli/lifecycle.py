"""``skiff rm``, ``stop``, ``restart``, ``kill``, ``wait``, ``pause``, ``unpause``, ``rename``,
``update`` and ``container prune``: commands that change containers that exist.

Each command that takes several containers goes through them all, printing each error as it
comes (skiff.cli.errors.for_each), and exits 1 if any failed, as Docker's client does.
"""

from __future__ import annotations

import argparse
import sys

from skiff.cli.commands import Command, add_commands
from skiff.cli.errors import for_each, report
from skiff.cli.main import engine_from


def register(sub: argparse._SubParsersAction) -> None:
    add_commands(sub, COMMANDS)


def add_rm_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--force", action="store_true", help="force the removal of a running container")
    p.add_argument("-v", "--volumes", action="store_true", help="remove anonymous volumes of the container")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.set_defaults(func=cmd_rm)


def cmd_rm(args: argparse.Namespace) -> int:
    from skiff.errors import ContainerNotFound, SkiffError

    engine = engine_from(args)
    status = 0
    for ref in args.containers:
        try:
            print(engine.remove_container(ref, force=args.force, volumes=args.volumes))
        except SkiffError as exc:
            report(exc)
            # As Docker 20.10's client: -f names a missing container on stderr; it is no failure.
            if not (args.force and isinstance(exc, ContainerNotFound)):
                status = 1
    return status


def add_stop_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-t", "--time", "--timeout", dest="time", type=int,
                   help="seconds to wait before killing the container")
    p.add_argument("-s", "--signal", help="signal to send to the container")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.set_defaults(func=cmd_stop)


def cmd_stop(args: argparse.Namespace) -> int:
    from skiff.engine.lifecycle import parse_signal, parse_timeout

    parse_timeout(args.time, 0)  # a bad value fails before any container is touched
    sig = parse_signal(args.signal) if args.signal else None
    engine = engine_from(args)
    return for_each(args.containers, lambda ref: (engine.stop(ref, args.time, sig), print(ref)))


def add_restart_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-t", "--time", "--timeout", dest="time", type=int,
                   help="seconds to wait before killing the container")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.set_defaults(func=cmd_restart)


def cmd_restart(args: argparse.Namespace) -> int:
    from skiff.engine.lifecycle import parse_timeout

    parse_timeout(args.time, 0)
    engine = engine_from(args)
    return for_each(args.containers, lambda ref: (engine.restart(ref, args.time), print(ref)))


def add_kill_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-s", "--signal", default="SIGKILL", help="signal to send to the container")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.set_defaults(func=cmd_kill)


def cmd_kill(args: argparse.Namespace) -> int:
    from skiff.engine.lifecycle import parse_signal

    sig = parse_signal(args.signal)
    engine = engine_from(args)
    return for_each(args.containers, lambda ref: (engine.kill(ref, sig), print(ref)))


def add_wait_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.set_defaults(func=cmd_wait)


def cmd_wait(args: argparse.Namespace) -> int:
    engine = engine_from(args)
    return for_each(args.containers, lambda ref: print(engine.wait(ref)))


def add_pause_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.set_defaults(func=cmd_pause, pause=True)


def add_unpause_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.set_defaults(func=cmd_pause, pause=False)


def cmd_pause(args: argparse.Namespace) -> int:
    engine = engine_from(args)
    return for_each(args.containers, lambda ref: (engine.pause(ref, args.pause), print(ref)))


def add_rename_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("new_name", metavar="NEW_NAME")
    p.set_defaults(func=cmd_rename)


def cmd_rename(args: argparse.Namespace) -> int:
    engine_from(args).rename(args.container, args.new_name)
    return 0


def add_prune_flags(p: argparse.ArgumentParser) -> None:
    from skiff.cli.filterflags import add_filter_flag

    p.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    add_filter_flag(p, "provide filter values (until=, label=, label!=)", short=False)
    p.set_defaults(func=cmd_prune)


def cmd_prune(args: argparse.Namespace) -> int:
    from skiff.cli.filterflags import filter_args
    from skiff.engine.filters import container_prune_filter

    include = container_prune_filter(filter_args(args, "--filter"))
    if not args.force:
        sys.stdout.write("WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ")
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    removed = engine_from(args).prune(include)
    if removed:  # as Docker: the header only when something went
        print("Deleted Containers:")
        for cid in removed:
            print(cid)
        print()
    print("Total reclaimed space: 0B")
    return 0


def add_update_flags(p: argparse.ArgumentParser) -> None:
    """``update``'s flags: the resource flags of ``run`` and ``--restart``."""
    from skiff.cli.run import RESOURCE_FLAGS

    for flags, key in RESOURCE_FLAGS.items():
        p.add_argument(*flags, dest=f"res_{key}", metavar="VALUE")
    p.add_argument("--restart", help="restart policy to apply when a container exits")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.set_defaults(func=cmd_update)


def cmd_update(args: argparse.Namespace) -> int:
    """Docker's ``update``: each container's name as given when done; the errors at the end, 1."""
    from skiff.cli.run import RESOURCE_FLAGS
    from skiff.engine.update import UpdateRequest
    from skiff.errors import FlagValueError, InvalidFlagValue, NoFlagGiven, SkiffError

    flags = {key: getattr(args, f"res_{key}") for key in RESOURCE_FLAGS.values()}
    if all(value is None for value in flags.values()) and args.restart is None:
        raise NoFlagGiven("you must provide one or more flags when using this command")
    request: UpdateRequest | None = None
    refused: SkiffError | None = None
    try:
        request = UpdateRequest(flags, args.restart)
    except FlagValueError as exc:  # the client's own flag parsing: its lines, 125
        raise InvalidFlagValue(f"{exc.message}\nSee 'skiff update --help'.") from None
    except SkiffError as exc:
        refused = exc  # the daemon's checks: reported for each container, as Docker's
    engine = engine_from(args)
    errors = []
    for ref in args.containers:
        try:
            if refused is not None:
                engine.find(ref)  # an unknown container is reported as such first
                raise refused
            assert request is not None
            engine.update(ref, request)
            print(ref)
        except SkiffError as exc:
            errors.append(exc)
    sys.stdout.flush()
    for error in errors:
        report(error)
    return 1 if errors else 0


COMMANDS = (
    Command("rm", add_rm_flags, "remove one or more containers"),
    Command("stop", add_stop_flags, "stop one or more running containers"),
    Command("restart", add_restart_flags, "restart one or more containers"),
    Command("kill", add_kill_flags, "kill one or more running containers"),
    Command("wait", add_wait_flags, "block until containers stop, then print their exit codes"),
    Command("pause", add_pause_flags, "pause all processes within one or more containers"),
    Command("unpause", add_unpause_flags, "unpause all processes within one or more containers"),
    Command("rename", add_rename_flags, "rename a container"),
    Command("update", add_update_flags, "update configuration of one or more containers"),
)
