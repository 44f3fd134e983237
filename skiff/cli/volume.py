"""`skiff volume create|ls|inspect|rm|prune`, as Docker's."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from skiff.cli.errors import report

if TYPE_CHECKING:
    from skiff.paths import Paths
    from skiff.volume.store import VolumeStore


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the top-level parser."""
    volume = sub.add_parser("volume", help="manage volumes")
    commands = volume.add_subparsers(dest="volume_command", metavar="COMMAND", parser_class=type(volume))
    commands.required = True

    create = commands.add_parser("create", help="Create a volume")
    create.add_argument("name", nargs="?", default=None, metavar="VOLUME")
    create.add_argument("-d", "--driver", default="local", help="volume driver name (only 'local')")
    create.add_argument("--label", action="append", default=[], help="set metadata for a volume (key=value)")
    create.add_argument("-o", "--opt", action="append", default=[], help="driver options (type=, device=, o=)")
    create.set_defaults(func=_create)

    ls = commands.add_parser("ls", aliases=["list"], help="List volumes")
    ls.add_argument("-q", "--quiet", action="store_true", help="only display volume names")
    from skiff.cli.filterflags import add_filter_flag

    add_filter_flag(ls, "filter output (name=, label=, driver=, dangling=true|false)")
    ls.add_argument("--format", help="pretty-print volumes using a Go template ('table ...', 'json')")
    ls.set_defaults(func=_ls)

    inspect = commands.add_parser("inspect", help="Display detailed information on one or more volumes")
    inspect.add_argument("-f", "--format", help="format the output using a Go template ('json': the documents)")
    inspect.add_argument("names", nargs="+", metavar="VOLUME")
    inspect.set_defaults(func=_inspect)

    rm = commands.add_parser("rm", aliases=["remove"], help="Remove one or more volumes")
    rm.add_argument("-f", "--force", action="store_true", help="do not fail on volumes that do not exist")
    rm.add_argument("names", nargs="+", metavar="VOLUME")
    rm.set_defaults(func=_rm)

    prune = commands.add_parser("prune", help="Remove unused local volumes")
    # Docker 20.10 prunes every unused local volume; -a is later Docker's (23.0), whose prune
    # without it keeps named volumes: accepted, and changes nothing here.
    prune.add_argument("-a", "--all", action="store_true", help="remove unused named volumes too (always, as 20.10)")
    prune.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    add_filter_flag(prune, "provide filter values (label=, label!=)", short=False)
    prune.set_defaults(func=_prune)


def _key_values(items: list[str], what: str, value_required: bool) -> dict[str, str]:
    from skiff.errors import UsageError

    result = {}
    for item in items:
        key, has_value, value = item.partition("=")
        if not key or (value_required and not has_value):
            raise UsageError(f"invalid {what} '{item}': expected key=value")
        result[key] = value
    return result


def _store(args: argparse.Namespace) -> VolumeStore:
    from skiff.cli.main import paths_from
    from skiff.volume.store import VolumeStore

    return VolumeStore(paths_from(args))


def _users(paths: Paths) -> dict[str, list[str]]:
    from skiff.engine.volumes import volumes_in_use

    return volumes_in_use(paths)


def _create(args: argparse.Namespace) -> int:
    from skiff.errors import VolumeError, VolumeRefused

    store = _store(args)
    labels, options = _key_values(args.label, "label", False), _key_values(args.opt, "driver option", True)
    try:
        volume = store.create(args.name, labels=labels, driver=args.driver, options=options)
    except VolumeError as exc:  # Docker's daemon refuses these, and its client exits 1
        raise VolumeRefused(str(exc)) from None
    print(volume.name)
    return 0


def _ls(args: argparse.Namespace) -> int:
    from skiff.cli.filterflags import filter_args
    from skiff.engine.filters import volume_list_filter

    store = _store(args)
    include = volume_list_filter(filter_args(args), lambda: _users(store.paths))
    volumes = [v for v in store.list() if include(v)]
    if args.format and not (args.quiet and args.format == "table"):
        from skiff.cli import listing

        listing.print_rows(args.format, [listing.volume_row(v) for v in volumes], listing.VOLUME_HEADERS,
                           listing.VOLUME_TABLE, listing.VOLUME_TYPE)
        return 0
    if args.quiet:
        for v in volumes:
            print(v.name)
        return 0
    rows = [("DRIVER", "VOLUME NAME")] + [(v.driver, v.name) for v in volumes]
    width = max(10, max(len(r[0]) for r in rows) + 3)  # Docker's tabwriter: minwidth 10, padding 3
    for driver, name in rows:
        print(driver.ljust(width) + name)
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from skiff.cli.listing import check_template, print_documents
    from skiff.errors import VolumeNotFound

    check_template(args.format)
    store = _store(args)
    found, missing = [], []
    for name in args.names:
        try:
            found.append(store.inspect(name))
        except VolumeNotFound as exc:
            missing.append(exc)
    status = print_documents(found, args.format)
    for error in missing:
        report(error)
    return 1 if missing else status


def _rm(args: argparse.Namespace) -> int:
    from skiff.errors import SkiffError

    store = _store(args)
    users = _users(store.paths)
    status = 0
    for name in args.names:
        try:
            if store.remove(name, users.get(name, []), force=args.force):
                print(name)
        except SkiffError as exc:
            report(exc)
            status = 1
    return status


def _prune(args: argparse.Namespace) -> int:
    from skiff.cli.filterflags import filter_args
    from skiff.cli.format import human_size
    from skiff.engine.filters import volume_prune_filter

    include = volume_prune_filter(filter_args(args, "--filter"))
    if not args.force:
        sys.stdout.write("WARNING! This will remove all local volumes not used by at least one container.\n"
                         "Are you sure you want to continue? [y/N] ")
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    store = _store(args)
    removed, freed = store.prune(_users(store.paths), all=True, include=include)
    if removed:
        print("Deleted Volumes:")
        for name in removed:
            print(name)
        print()
    print(f"Total reclaimed space: {human_size(freed)}")
    return 0
