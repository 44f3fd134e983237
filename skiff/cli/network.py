"""`skiff network` commands: create, ls, inspect, rm, connect, disconnect, prune."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from skiff.cli.errors import report

if TYPE_CHECKING:
    from skiff.network import NetworkManager


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the top-level parser."""
    network = sub.add_parser("network", help="manage networks")
    commands = network.add_subparsers(dest="network_command", metavar="COMMAND")
    commands.required = True

    create = commands.add_parser("create", help="create a network")
    create.add_argument("--subnet", help="subnet in CIDR form (default: the first free candidate)")
    create.add_argument("--gateway", help="gateway address inside the subnet (default: the first host)")
    create.add_argument("--internal", action="store_true", help="no outbound access (no NAT)")
    create.add_argument("-d", "--driver", default="bridge", help="only bridge is supported")
    create.add_argument("--label", action="append", default=[], help="KEY=VALUE metadata")
    create.add_argument("-o", "--opt", action="append", default=[], metavar="KEY=VALUE",
                        help="driver options (com.docker.network.driver.mtu=1500: the bridge's and veths' MTU)")
    create.add_argument("name")
    create.set_defaults(func=_create)

    ls = commands.add_parser("ls", aliases=["list"], help="list networks")
    ls.add_argument("-q", "--quiet", action="store_true", help="only show ids")
    ls.add_argument("--no-trunc", action="store_true", help="do not truncate the output")
    ls.add_argument("--format", help="pretty-print networks using a Go template ('table ...', 'json')")
    from skiff.cli.filterflags import add_filter_flag

    add_filter_flag(ls, "provide filter values (driver=, id=, label=, name=, scope=, type=custom|builtin, "
                        "dangling=)")
    ls.set_defaults(func=_ls)

    inspect = commands.add_parser("inspect", help="show networks in detail (JSON)")
    inspect.add_argument("-f", "--format", help="format the output using a Go template ('json': the documents)")
    inspect.add_argument("networks", nargs="+")
    inspect.set_defaults(func=_inspect)

    rm = commands.add_parser("rm", aliases=["remove"], help="remove networks")
    rm.add_argument("networks", nargs="+")
    rm.set_defaults(func=_rm)

    connect = commands.add_parser("connect", help="connect a container to a network")
    connect.add_argument("--ip", help="IPv4 address for the container on this network")
    connect.add_argument("--alias", action="append", default=[], help="extra name on this network")
    connect.add_argument("network")
    connect.add_argument("container")
    connect.set_defaults(func=_connect)

    disconnect = commands.add_parser("disconnect", help="disconnect a container from a network")
    disconnect.add_argument("-f", "--force", action="store_true", help="accepted for Docker compatibility")
    disconnect.add_argument("network")
    disconnect.add_argument("container")
    disconnect.set_defaults(func=_disconnect)

    prune = commands.add_parser("prune", help="remove unused networks")
    prune.add_argument("-f", "--force", action="store_true", help="do not ask (skiff never asks)")
    prune.set_defaults(func=_prune)


def _manager(args: argparse.Namespace) -> NetworkManager:
    from skiff.cli.main import paths_from
    from skiff.network import NetworkManager

    return NetworkManager(paths_from(args))


def _container_id(args: argparse.Namespace) -> str:
    """A container name or id prefix to its id, through the engine's records when there are any."""
    from skiff.cli.main import paths_from

    from skiff.errors import ContainerNotFound

    try:
        from skiff.engine.containers import find_container

        return find_container(paths_from(args), args.container).id
    except (ImportError, ContainerNotFound):
        return args.container  # the network's own records may still know it


def _create(args: argparse.Namespace) -> int:
    from skiff.engine.network import check_network_driver

    check_network_driver(args.driver)
    labels = dict(label.partition("=")[::2] for label in args.label)
    options = dict(opt.partition("=")[::2] for opt in args.opt)
    record = _manager(args).create_network(args.name, subnet=args.subnet, gateway=args.gateway,
                                           internal=args.internal, labels=labels, options=options)
    print(record["Id"])
    return 0


def _ls(args: argparse.Namespace) -> int:
    from skiff.cli.filterflags import filter_args
    from skiff.engine.filters import network_list_filter

    include = network_list_filter(filter_args(args))
    networks = [n for n in _manager(args).list_networks() if include(n)]
    if args.format and not (args.quiet and args.format == "table"):
        from skiff.cli import listing

        listing.print_rows(args.format, [listing.network_row(n, args.no_trunc) for n in networks],
                           listing.NETWORK_HEADERS, listing.NETWORK_TABLE, listing.NETWORK_TYPE)
        return 0
    if args.quiet:
        for n in networks:
            print(n["Id"][:12] or n["Name"])
        return 0
    print(f"{'NETWORK ID':<15}{'NAME':<20}{'DRIVER':<10}SCOPE")
    for n in networks:
        print(f"{n['Id'][:12] or '-':<15}{n['Name']:<20}{n['Driver']:<10}{n['Scope']}")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from skiff.cli.listing import check_template, print_documents
    from skiff.errors import NetworkNotFound

    check_template(args.format)
    manager = _manager(args)
    found, status = [], 0
    for ref in args.networks:
        try:
            found.append(manager.inspect_network(ref, members=_members(args, ref)))
        except NetworkNotFound as exc:
            report(exc)
            status = 1
    return print_documents(found, args.format) or status


def _members(args: argparse.Namespace, ref: str) -> dict[str, str] | None:
    """Id -> name of the running containers on ``none`` or ``host``: the engine's records know them."""
    from skiff.cli.main import paths_from
    from skiff.engine.network import predefined_members

    return predefined_members(paths_from(args), ref)


def _rm(args: argparse.Namespace) -> int:
    from skiff.errors import SkiffError

    manager = _manager(args)
    status = 0
    for ref in args.networks:
        try:
            print(manager.remove_network(ref))
        except SkiffError as exc:
            report(exc)
            status = exc.exit_code
    return status


def _connect(args: argparse.Namespace) -> int:
    from skiff.cli.main import paths_from
    from skiff.engine.network import connect

    connect(paths_from(args), _container_id(args), args.network, ip=args.ip, aliases=args.alias)
    return 0


def _disconnect(args: argparse.Namespace) -> int:
    from skiff.cli.main import paths_from
    from skiff.engine.network import disconnect

    disconnect(paths_from(args), _container_id(args), args.network)
    return 0


def _prune(args: argparse.Namespace) -> int:
    from skiff.cli.main import paths_from
    from skiff.engine import Engine

    manager = _manager(args)
    Engine(paths_from(args)).release_orphaned_networks(manager)  # a killed run's lease must not pin the bridge
    removed = manager.prune_networks()
    if removed:
        print("Deleted Networks:")
        print("\n".join(removed))
    return 0
