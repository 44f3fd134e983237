"""`skiff info`, `version` and `system info|df|prune|events`, as Docker 20.10's.

The documents and the work are the engine's (skiff.engine.system);
this module parses the flags and prints what Docker's client prints.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from skiff.engine.system import DiskUsage
    from skiff.paths import Paths

VERSION_TYPE = "system.versionInfo"
INFO_TYPE = "system.info"
DF_TYPE = "*formatter.diskUsageImagesContext"

DF_HEADERS = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
              "Reclaimable": "RECLAIMABLE"}
DF_TABLE = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
DF_IMAGE_HEADERS = {"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "CreatedSince": "CREATED",
                    "VirtualSize": "SIZE", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE",
                    "Containers": "CONTAINERS"}
DF_IMAGE_TABLE = ("table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.VirtualSize}}\t"
                  "{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}")
DF_CONTAINER_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
                        "LocalVolumes": "LOCAL VOLUMES", "Size": "SIZE", "RunningFor": "CREATED",
                        "Status": "STATUS", "Names": "NAMES"}
DF_CONTAINER_TABLE = ("table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t"
                      "{{.Status}}\t{{.Names}}")
DF_VOLUME_HEADERS = {"Name": "VOLUME NAME", "Links": "LINKS", "Size": "SIZE"}
DF_VOLUME_TABLE = "table {{.Name}}\t{{.Links}}\t{{.Size}}"
DF_CACHE_HEADER = "CACHE ID   CACHE TYPE   SIZE      CREATED   LAST USED   USAGE     SHARED"


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the top-level parser."""
    _add_info(sub.add_parser("info", help="display system-wide information"))
    version = sub.add_parser("version", help="show the skiff version information")
    version.add_argument("-f", "--format", help="format the output using a Go template")
    version.set_defaults(func=cmd_version)

    system = sub.add_parser("system", help="manage skiff")
    commands = system.add_subparsers(dest="system_command", metavar="COMMAND", parser_class=type(system))
    commands.required = True
    _add_info(commands.add_parser("info", help="display system-wide information"))
    df = commands.add_parser("df", help="show skiff disk usage")
    df.add_argument("-v", "--verbose", action="store_true", help="show detailed information on space usage")
    df.add_argument("--format", help="pretty-print using a Go template")
    df.set_defaults(func=cmd_df)
    prune = commands.add_parser("prune", help="remove unused data")
    prune.add_argument("-a", "--all", action="store_true", help="remove all unused images not just dangling ones")
    prune.add_argument("--volumes", action="store_true", help="prune volumes")
    prune.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    from skiff.cli.filterflags import add_filter_flag

    add_filter_flag(prune, "provide filter values (e.g. 'label=<key>=<value>')", short=False)
    prune.set_defaults(func=cmd_prune)
    from skiff.cli.events import add_events_flags

    add_events_flags(commands.add_parser("events", help="get real time events from the server"))
    from skiff.cli.service import add_service_flags

    add_service_flags(commands.add_parser("service", help="serve the Docker Engine API on a socket (skiff.api)"))


def _add_info(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--format", help="format the output using a Go template")
    p.set_defaults(func=cmd_info)


def _paths(args: argparse.Namespace) -> Paths:
    from skiff.cli.main import paths_from

    return paths_from(args)


class _GoFields(dict):
    """A document whose Go field names differ from its JSON keys (``APIVersion`` is marshalled
    as ``ApiVersion``): a template may use either, ``{{json .}}`` shows the JSON keys only."""

    ALIASES = {"APIVersion": "ApiVersion", "HTTPProxy": "HttpProxy", "HTTPSProxy": "HttpsProxy"}

    def __contains__(self, key: object) -> bool:
        return super().__contains__(self.ALIASES.get(key, key) if isinstance(key, str) else key)

    def __getitem__(self, key: str) -> Any:
        return super().__getitem__(self.ALIASES.get(key, key))


def _print_template(fmt: str, document: Any, type_name: str) -> None:
    """One document through ``--format`` ('json' is ``{{json .}}``), followed by a newline. A
    template that does not parse exits 64, as Docker's ``version`` and ``info``; one that fails
    on the document prints an empty line and Go's error alone, as theirs."""
    from skiff.cli.gotemplate import render
    from skiff.cli.listing import check_template
    from skiff.errors import TemplateError

    check_template(fmt)
    try:
        text = render("{{json .}}" if fmt == "json" else fmt, document, type_name)
    except TemplateError as exc:
        sys.stdout.write("\n")
        raise exc.worded("") from None
    sys.stdout.write(text + "\n")


# --- version --------------------------------------------------------------------------------


def cmd_version(args: argparse.Namespace) -> int:
    from skiff.engine.system import version_document

    document = version_document()
    if args.format:
        _print_template(args.format, {part: _GoFields(values) for part, values in document.items()}, VERSION_TYPE)
        return 0
    sys.stdout.write(version_text(document))
    return 0


def version_text(document: dict[str, Any]) -> str:
    """Docker's default version template, aligned by its tabwriter (cells of at least 20)."""
    client, server = document["Client"], document["Server"]
    lines = [_platform_line("Client:", client)]
    lines += _cells(" ", [("Version:", client["Version"]), ("API version:", client["ApiVersion"]),
                          ("Go version:", client["GoVersion"]), ("Git commit:", client["GitCommit"]),
                          ("Built:", client["BuildTime"]), ("OS/Arch:", f"{client['Os']}/{client['Arch']}"),
                          ("Context:", client["Context"]), ("Experimental:", _go_bool(client["Experimental"]))])
    lines += ["", _platform_line("Server:", server)]
    for component in server["Components"]:
        details = component["Details"]
        lines.append(f" {component['Name']}:")
        if component["Name"] == "Engine":
            cells = [("Version:", component["Version"]),
                     ("API version:", f"{details['ApiVersion']} (minimum version {details['MinAPIVersion']})"),
                     ("Go version:", details["GoVersion"]), ("Git commit:", details["GitCommit"]),
                     ("Built:", details["BuildTime"]), ("OS/Arch:", f"{details['Os']}/{details['Arch']}"),
                     ("Experimental:", details["Experimental"])]
        else:
            cells = [("Version:", component["Version"]), *((f"{k}:", v) for k, v in details.items())]
        lines += _cells("  ", cells)
    return "\n".join(lines) + "\n"


def _platform_line(title: str, part: dict[str, Any]) -> str:
    name = (part.get("Platform") or {}).get("Name") or ""
    return f"{title} {name}" if name else title


def _cells(indent: str, pairs: list[tuple[str, str]]) -> list[str]:
    return [f"{indent}{label}".ljust(20) + str(value) for label, value in pairs]


def _go_bool(value: bool) -> str:
    return "true" if value else "false"


# --- info -----------------------------------------------------------------------------------


def cmd_info(args: argparse.Namespace) -> int:
    from skiff.engine.system import info_document

    document = info_document(_paths(args))
    document["ClientInfo"] = {"Debug": bool(args.debug), "Context": "default", "Plugins": [], "Warnings": None}
    if args.format:
        _print_template(args.format, _GoFields(document), INFO_TYPE)
        return 0
    sys.stdout.write(info_text(document))
    sys.stdout.flush()
    if document["Warnings"]:
        print("\n".join(document["Warnings"]), file=sys.stderr)
    return 0


def info_text(info: dict[str, Any]) -> str:
    """Docker 20.10's ``info`` layout: the Client section, then the Server's."""
    from skiff.cli.stats import bytes_size

    client = info["ClientInfo"]
    out = ["Client:", f" Context:    {client['Context']}", f" Debug Mode: {_go_bool(client['Debug'])}", "",
           "Server:", f" Containers: {info['Containers']}", f"  Running: {info['ContainersRunning']}",
           f"  Paused: {info['ContainersPaused']}", f"  Stopped: {info['ContainersStopped']}",
           f" Images: {info['Images']}", f" Server Version: {info['ServerVersion']}",
           f" Storage Driver: {info['Driver']}"]
    out += [f"  {key}: {value}" for key, value in info["DriverStatus"]]
    plugins = info["Plugins"]
    out += [f" Logging Driver: {info['LoggingDriver']}", f" Cgroup Driver: {info['CgroupDriver']}",
            f" Cgroup Version: {info['CgroupVersion']}", " Plugins:", f"  Volume: {' '.join(plugins['Volume'])}",
            f"  Network: {' '.join(plugins['Network'])}", f"  Log: {' '.join(plugins['Log'])}",
            f" Swarm: {info['Swarm']['LocalNodeState']}", " Runtimes: " + " ".join(info["Runtimes"]),
            f" Default Runtime: {info['DefaultRuntime']}", f" Init Binary: {info['InitBinary']}"]
    for name, key in (("containerd", "ContainerdCommit"), ("runc", "RuncCommit"), ("init", "InitCommit")):
        commit = info[key]
        expected = f" (expected: {commit['Expected']})" if commit["ID"] != commit["Expected"] else ""
        out.append(f" {name} version: {commit['ID']}{expected}")
    out.append(" Security Options:")
    for option in info["SecurityOptions"]:
        fields = dict(part.partition("=")[::2] for part in option.split(","))
        out.append(f"  {fields.get('name', '')}")
        if "profile" in fields:
            out.append(f"   Profile: {fields['profile']}")
    out += [f" Kernel Version: {info['KernelVersion']}", f" Operating System: {info['OperatingSystem']}",
            f" OSType: {info['OSType']}", f" Architecture: {info['Architecture']}", f" CPUs: {info['NCPU']}",
            f" Total Memory: {bytes_size(info['MemTotal'])}", f" Name: {info['Name']}", f" ID: {info['ID']}",
            f" Docker Root Dir: {info['DockerRootDir']}", f" Debug Mode: {_go_bool(info['Debug'])}"]
    for label, key in (("HTTP Proxy", "HttpProxy"), ("HTTPS Proxy", "HttpsProxy"), ("No Proxy", "NoProxy")):
        if info[key]:
            out.append(f" {label}: {info[key]}")
    out += [f" Registry: {info['IndexServerAddress']}", " Labels:", *(f"  {label}" for label in info["Labels"]),
            f" Experimental: {_go_bool(info['ExperimentalBuild'])}"]
    registries = info["RegistryConfig"]
    out.append(" Insecure Registries:")
    out += [f"  {index['Name']}" for index in registries["IndexConfigs"].values() if not index["Secure"]]
    out += [f"  {cidr}" for cidr in registries["InsecureRegistryCIDRs"]]
    if registries["Mirrors"]:
        out += [" Registry Mirrors:", *(f"  {mirror}" for mirror in registries["Mirrors"])]
    out.append(f" Live Restore Enabled: {_go_bool(info['LiveRestoreEnabled'])}")
    return "\n".join(out) + "\n\n"


# --- system df ------------------------------------------------------------------------------


def cmd_df(args: argparse.Namespace) -> int:
    from skiff.cli.listing import print_rows, wants_template
    from skiff.engine.system import disk_usage

    usage = disk_usage(_paths(args))
    if args.verbose:
        if wants_template(args.format) and not args.format.startswith("table"):
            from skiff.cli.gotemplate import render

            fmt = "{{json .}}" if args.format == "json" else args.format
            sys.stdout.write(render(fmt, verbose_document(usage, full=True), DF_TYPE))  # no newline, as Docker's
            return 0
        sys.stdout.write(verbose_text(usage))
        return 0
    print_rows(args.format or DF_TABLE, summary_rows(usage), DF_HEADERS, DF_TABLE, DF_TYPE)
    return 0


def _human(size: float, precision: int = 4) -> str:
    from skiff.cli.format import human_size

    return human_size(size, precision)


def _reclaimable(reclaimable: int, total: int) -> str:
    """Docker's RECLAIMABLE cell: the size, and its share of the total when there is one."""
    text = _human(reclaimable)
    return f"{text} ({reclaimable * 100 // total}%)" if total > 0 else text


def summary_rows(usage: DiskUsage) -> list[dict[str, str]]:
    """The four rows of ``system df``: Images, Containers, Local Volumes, Build Cache."""
    from skiff.cli.listing import _sorted_row

    images, containers, volumes = usage.images, usage.containers, usage.volumes
    used = sum(i["VirtualSize"] - i["SharedSize"] for i in images if i["Containers"])
    active = [c for c in containers if c["Container"].held]
    container_total = sum(c["SizeRw"] for c in containers)
    volume_total = sum(v["Size"] for v in volumes if v["Size"] != -1)
    volume_free = sum(v["Size"] for v in volumes if v["Size"] != -1 and v["RefCount"] == 0)
    rows = [
        ("Images", len(images), sum(1 for i in images if i["Containers"]), _human(usage.layers_size),
         _reclaimable(usage.layers_size - used, usage.layers_size)),
        ("Containers", len(containers), len(active), _human(container_total),
         _reclaimable(container_total - sum(c["SizeRw"] for c in active), container_total)),
        ("Local Volumes", len(volumes), sum(1 for v in volumes if v["RefCount"]), _human(volume_total),
         _reclaimable(volume_free, volume_total)),
        ("Build Cache", 0, 0, "0B", "0B"),  # skiff does not build images
    ]
    return [_sorted_row({"Type": kind, "TotalCount": str(total), "Active": str(count), "Size": size,
                         "Reclaimable": free}) for kind, total, count, size, free in rows]


def verbose_document(usage: DiskUsage, full: bool) -> dict[str, Any]:
    """``system df -v``'s object: rows of images, containers and volumes (``full``: untruncated ids)."""
    return {"Images": [_image_row(i, full) for i in usage.images],
            "Containers": [_container_row(c, full) for c in usage.containers],
            "Volumes": [_volume_row(v) for v in usage.volumes], "BuildCache": []}


def _image_row(image: dict[str, Any], full: bool) -> dict[str, Any]:
    from skiff.cli.format import time_ago
    from skiff.cli.listing import _sorted_row, go_time

    repository, tag = "<none>", "<none>"
    if image["RepoTags"]:
        repository, _, tag = image["RepoTags"][0].rpartition(":")
    return _sorted_row({
        "ID": image["Id"] if full else image["Id"].removeprefix("sha256:")[:12], "Repository": repository,
        "Tag": tag, "Digest": "", "CreatedSince": time_ago(image["Created"]), "CreatedAt": go_time(image["Created"]),
        "Size": _human(image["Size"], 3), "VirtualSize": _human(image["VirtualSize"]),
        "SharedSize": _human(image["SharedSize"]), "UniqueSize": _human(image["VirtualSize"] - image["SharedSize"]),
        "Containers": str(image["Containers"]),
    })


def _container_row(row: dict[str, Any], full: bool) -> dict[str, Any]:
    from skiff.cli.listing import container_row

    found = container_row(row["Container"].data, no_trunc=full)
    found["Size"] = _human(row["SizeRw"], 3)
    found.pop("Label", None)
    return found


def _volume_row(row: dict[str, Any]) -> dict[str, Any]:
    from skiff.cli.listing import volume_row

    found = volume_row(row["Volume"])
    found.update(Links=str(row["RefCount"]), Size=_human(row["Size"]) if row["Size"] != -1 else "N/A")
    found.pop("Label", None)
    return found


def verbose_text(usage: DiskUsage) -> str:
    from skiff.cli.gotemplate import render_rows

    document = verbose_document(usage, full=False)
    parts = ["Images space usage:\n\n", render_rows(DF_IMAGE_TABLE, document["Images"], DF_IMAGE_HEADERS,
                                                    DF_IMAGE_TABLE),
             "\nContainers space usage:\n\n", render_rows(DF_CONTAINER_TABLE, document["Containers"],
                                                          DF_CONTAINER_HEADERS, DF_CONTAINER_TABLE),
             "\nLocal Volumes space usage:\n\n", render_rows(DF_VOLUME_TABLE, document["Volumes"],
                                                             DF_VOLUME_HEADERS, DF_VOLUME_TABLE),
             "\nBuild cache usage: 0B\n\n", DF_CACHE_HEADER + "\n"]
    return "".join(parts)


# --- system prune ---------------------------------------------------------------------------


def cmd_prune(args: argparse.Namespace) -> int:
    from skiff.cli.filterflags import filter_args
    from skiff.cli.format import human_size
    from skiff.engine.system import prune

    filters = filter_args(args, "--filter")
    if args.volumes and filters.contains("until"):
        print('ERROR: The "until" filter is not supported with "--volumes"', file=sys.stderr)
        return 1
    if not args.force and not _confirmed(prune_warning(args)):
        return 0
    report = prune(_paths(args), all_images=args.all, volumes=args.volumes, args=filters)
    for title, items in (("Deleted Containers:", report.containers), ("Deleted Networks:", report.networks),
                         ("Deleted Volumes:", report.volumes), ("Deleted Images:", report.images)):
        if items:
            print(title)
            print("\n".join(items) + "\n")
    print(f"Total reclaimed space: {human_size(report.reclaimed, 4)}")
    return 0


def prune_warning(args: argparse.Namespace) -> str:
    """Docker's confirmation text, which names what goes and the filters given."""
    warnings = ["all stopped containers", "all networks not used by at least one container"]
    if args.volumes:
        warnings.append("all volumes not used by at least one container")
    warnings.append("all images without at least one container associated to them" if args.all
                    else "all dangling images")
    warnings.append("all build cache" if args.all else "all dangling build cache")
    text = "WARNING! This will remove:\n" + "".join(f"  - {w}\n" for w in warnings)
    shown = sorted(item for item in args.filter if item.partition("=")[0] in ("label", "label!", "until"))
    if shown:
        text += "\n  Items to be pruned will be filtered with:\n" + "".join(f"  - {f}\n" for f in shown)
    return text + "\nAre you sure you want to continue?"


def _confirmed(message: str) -> bool:
    """Docker's prompt: anything but 'y' (end of input included) answers no."""
    sys.stdout.write(f"{message} [y/N] ")
    sys.stdout.flush()
    return sys.stdin.readline().strip().lower() == "y"
