"""``skiff ps``, ``top``, ``stats`` and ``port``: commands that list containers and what runs
in them, with Docker's columns."""

from __future__ import annotations

import argparse
import sys

from skiff.cli.commands import Command, add_commands
from skiff.cli.main import engine_from


def register(sub: argparse._SubParsersAction) -> None:
    add_commands(sub, COMMANDS)


def add_ps_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="show all containers (default shows just running)")
    p.add_argument("-q", "--quiet", action="store_true", help="only display container IDs")
    p.add_argument("--no-trunc", action="store_true", help="don't truncate output")
    p.add_argument("-n", "--last", type=int, default=-1, help="show n last created containers (includes all states)")
    p.add_argument("-l", "--latest", action="store_true",
                   help="show the latest created container (includes all states)")
    p.add_argument("-s", "--size", action="store_true", help="display total file sizes")
    from skiff.cli.filterflags import add_filter_flag

    add_filter_flag(p, "filter output: id, name, label, exited, status, ancestor, before, since, volume, network, "
                       "publish, expose, health, isolation, is-task")
    p.add_argument("--format", help="pretty-print containers using a Go template ('table ...', 'json')")
    p.set_defaults(func=cmd_ps)


def cmd_ps(args: argparse.Namespace) -> int:
    from skiff.cli.filterflags import filter_args
    from skiff.cli.format import table
    from skiff.cli.main import paths_from
    from skiff.engine import Engine

    engine = Engine(paths_from(args))
    found = engine.list_containers(filter_args(args), all_=args.all, last=1 if args.latest else args.last)
    sized = not args.quiet and _wants_size(args)
    sizes = [size_text(*engine.sizes(c)) if sized else "0B" for c in found]
    if args.format and not (args.quiet and args.format == "table"):
        from skiff.cli import listing
        from skiff.errors import TemplateError

        rows = [listing.container_row(c.data, args.no_trunc, size) for c, size in zip(found, sizes)]
        default = listing.CONTAINER_TABLE + ("\t{{.Size}}" if args.size else "")
        try:
            listing.print_rows(args.format, rows, listing.CONTAINER_HEADERS, default, listing.CONTAINER_TYPE)
        except TemplateError as exc:  # Docker 20.10's ps words its template errors itself
            raise exc.worded("failed to parse template" if exc.parse else "failed to execute template") from None
        return 0
    if args.quiet:
        for c in found:
            print(c.id if args.no_trunc else c.id[:12])
        return 0
    headers = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    cells = [ps_row(c.data, args.no_trunc) + ([size] if sized else []) for c, size in zip(found, sizes)]
    print(table(headers + (["SIZE"] if sized else []), cells))
    return 0


def _wants_size(args: argparse.Namespace) -> bool:
    """As Docker 20.10's client: -s, or a --format that uses .Size (``{{json .}}`` uses every field)."""
    import re

    fmt = args.format or ""
    return args.size or ".Size" in fmt or bool(re.search(r"json\s+\.\s*}}", fmt)) or fmt == "json"


def size_text(size_rw: int, size_root_fs: int) -> str:
    """Docker's SIZE column: '2B (virtual 1.23MB)'; the bare writable size when there is no image."""
    from skiff.cli.format import human_size

    if size_root_fs > 0:
        return f"{human_size(size_rw)} (virtual {human_size(size_root_fs)})"
    return human_size(size_rw)


def ps_row(data: dict, no_trunc: bool = False) -> list[str]:
    from skiff.cli.format import time_ago

    command = " ".join([data.get("Path", ""), *data.get("Args", [])])
    if not no_trunc and len(command) > 20:
        command = command[:19] + "…"
    return [
        data["Id"] if no_trunc else data["Id"][:12],
        data["Config"].get("Image", ""),
        f'"{command}"',
        time_ago(data["Created"]),
        status_text(data["State"]),
        ports_text(data.get("NetworkSettings", {})),
        str(data["Name"]).lstrip("/"),
    ]


def status_text(state: dict) -> str:
    """Docker's STATUS column: 'Up 3 minutes', 'Exited (0) 2 seconds ago', 'Created' (the engine's text)."""
    from skiff.engine.summary import status_text as engine_status_text

    return engine_status_text(state)


def ports_text(settings: dict) -> str:
    ports = settings.get("Ports") or {}
    shown = []
    for port, bindings in ports.items():
        for b in bindings or []:
            shown.append(f"{b.get('HostIp') or '0.0.0.0'}:{b.get('HostPort')}->{port}")
        if not bindings:
            shown.append(port)
    return ", ".join(shown)



def add_top_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("ps_options", nargs=argparse.REMAINDER, metavar="[ps OPTIONS]")
    p.dashdash_after_first_positional = True  # type: ignore[attr-defined]  # the rest is ps's
    p.set_defaults(func=cmd_top)


def cmd_top(args: argparse.Namespace) -> int:
    from skiff.cli.format import table

    header, rows = engine_from(args).top(args.container, args.ps_options)
    print(table(header, rows, min_width=20))  # Docker's client: tabwriter.NewWriter(out, 20, 1, 3, ' ', 0)
    return 0



def add_stats_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="show all containers (default shows just running)")
    p.add_argument("--no-stream", action="store_true", help="print one sample and exit")
    p.add_argument("--no-trunc", action="store_true", help="don't truncate output")
    p.add_argument("--format", help="pretty-print stats using a Go template ('table ...', 'json')")
    p.add_argument("containers", nargs="*", metavar="CONTAINER")
    p.set_defaults(func=cmd_stats)


def cmd_stats(args: argparse.Namespace) -> int:
    import time

    engine = engine_from(args)
    first = True
    while True:
        rows = engine.stats(args.containers, all_=args.all)
        if args.format and args.format != "table":
            from skiff.cli import listing
            from skiff.cli.stats import stats_fields

            if not args.no_stream and sys.stdout.isatty():
                print("\033[2J\033[H", end="")
            # .Container: the name or id as given on the command line, else the short id
            given = args.containers if len(args.containers) == len(rows) else [r.container_id[:12] for r in rows]
            listing.print_rows(args.format, [listing.stats_row(stats_fields(row), name)
                                             for row, name in zip(rows, given)],
                               listing.STATS_HEADERS, listing.STATS_TABLE, listing.STATS_TYPE)
        else:
            from skiff.cli.stats import format_stats

            if not args.no_stream and sys.stdout.isatty():
                print("\033[2J\033[H", end="")  # as Docker: redraw in place
            elif not first:
                print()
            print(format_stats(rows), end="")
        sys.stdout.flush()
        if args.no_stream:
            return 0
        first = False
        time.sleep(1)



def add_port_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("port", nargs="?", metavar="PRIVATE_PORT[/PROTO]")
    p.set_defaults(func=cmd_port)


def cmd_port(args: argparse.Namespace) -> int:
    for line in engine_from(args).ports(args.container, args.port):
        print(line)
    return 0


COMMANDS = (
    Command("ps", add_ps_flags, "list containers"),
    Command("top", add_top_flags, "display the running processes of a container"),
    Command("stats", add_stats_flags, "display a live stream of container(s) resource usage statistics"),
    Command("port", add_port_flags, "list port mappings or a specific mapping for the container"),
)
