"""``skiff inspect``: Docker's untyped inspect, any object by name or id, or ``--type`` one kind.

Without ``--type`` each name is looked up as Docker 20.10's client does: a container, then an
image, a network, a volume; the first kind that has it wins. A name none of them has is
"No such object"; with ``--type`` it is "No such <type>".
"""

from __future__ import annotations

import argparse
from typing import Any, Callable

from skiff.cli.commands import Command, add_commands
from skiff.cli.errors import report
Lookup = Callable[[argparse.Namespace, str], dict[str, Any]]

# Docker 20.10's --type values; the swarm kinds need a swarm manager, which skiff never is.
SWARM_TYPES = ("config", "node", "plugin", "secret", "service", "task")
NOT_A_MANAGER = ('This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" '
                 "to connect this node to swarm and try again.")


def register(sub: argparse._SubParsersAction) -> None:
    add_commands(sub, COMMANDS)


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--format", help="format the output using a Go template ('json': the documents)")
    p.add_argument("-s", "--size", action="store_true", help="display total file sizes if the type is container")
    p.add_argument("--type", default="", help="return JSON for specified type (container, image, network, volume)")
    p.add_argument("objects", nargs="+", metavar="NAME|ID")
    p.set_defaults(func=cmd_inspect)


def add_container_flags(p: argparse.ArgumentParser) -> None:
    """``container inspect``: containers only."""
    p.add_argument("-f", "--format", help="format the output using a Go template ('json': the documents)")
    p.add_argument("-s", "--size", action="store_true", help="display total file sizes (SizeRw, SizeRootFs)")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.set_defaults(func=cmd_container_inspect)


def cmd_container_inspect(args: argparse.Namespace) -> int:
    from skiff.cli.listing import check_template, print_documents
    from skiff.cli.main import engine_from
    from skiff.errors import SkiffError

    check_template(args.format)
    engine = engine_from(args)
    found, status = [], 0
    for ref in args.containers:
        try:
            found.append(engine.inspect(ref, size=args.size))
        except SkiffError as exc:
            report(exc)
            status = 1
    return print_documents(found, args.format) or status


def _container(args: argparse.Namespace, ref: str) -> dict[str, Any]:
    from skiff.cli.main import engine_from

    return engine_from(args).inspect(ref, size=args.size)


def _image(args: argparse.Namespace, ref: str) -> dict[str, Any]:
    from skiff.cli.image import _store

    return _store(args).inspect(ref)


def _network(args: argparse.Namespace, ref: str) -> dict[str, Any]:
    from skiff.cli.network import _manager, _members

    return _manager(args).inspect_network(ref, members=_members(args, ref))


def _volume(args: argparse.Namespace, ref: str) -> dict[str, Any]:
    from skiff.cli.volume import _store

    return _store(args).inspect(ref)


# Docker's order of the untyped look-up (cli/command/system/inspect.go, inspectAll).
LOOKUPS: dict[str, Lookup] = {"container": _container, "image": _image, "network": _network, "volume": _volume}


def cmd_inspect(args: argparse.Namespace) -> int:
    from skiff.cli.listing import check_template, print_documents
    from skiff.errors import InvalidObjectType

    kind = args.type
    if kind and kind not in LOOKUPS and kind not in SWARM_TYPES:
        raise InvalidObjectType(f'"{kind}" is not a valid value for --type')
    check_template(args.format)
    found: list[Any] = []
    errors: list[str] = []
    for ref in args.objects:
        document, error = _lookup(args, kind, ref)
        if document is not None:
            found.append(document)
        else:
            errors.append(error)
    status = print_documents(found, args.format)
    for error in errors:
        report(error)
    return 1 if errors else status


def _lookup(args: argparse.Namespace, kind: str, ref: str) -> tuple[Any, str]:
    """(document, "") for the object ``ref`` names, or (None, Docker's message for its absence)."""
    from skiff.errors import NotFound

    if kind in SWARM_TYPES:
        return None, NOT_A_MANAGER
    for name in (kind,) if kind else tuple(LOOKUPS):
        try:
            return LOOKUPS[name](args, ref), ""
        except NotFound:
            continue
    return None, f"No such {kind or 'object'}: {ref}"


COMMANDS = (Command("inspect", add_flags, "display detailed information on one or more containers"),)
