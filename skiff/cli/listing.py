"""``--format`` for listings and inspect: Docker's row objects and the way it prints them.

Each listing turns its objects into rows with Docker's field names (``ps``: ``.ID .Names
.Status`` ...) and calls ``print_rows``; inspect commands call ``print_documents``. The
template engine (skiff.cli.gotemplate) is imported only here, so only when ``--format`` is
given. A command that wants ``--format`` (``version``, ``info``, ``system df``) builds its
object and calls ``print_documents([obj], fmt)`` or ``print_rows(...)``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from skiff.image.store import Image
    from skiff.volume.store import Volume

Row = dict[str, Any]

# Docker's header for each field (the header row of a ``table`` format), and its default table.
CONTAINER_HEADERS = {
    "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE",
    "Names": "NAMES", "Labels": "LABELS", "LocalVolumes": "LOCAL VOLUMES", "Mounts": "MOUNTS",
    "Networks": "NETWORKS",
}
CONTAINER_TABLE = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
IMAGE_HEADERS = {
    "ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
    "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE", "Containers": "CONTAINERS",
    "VirtualSize": "VIRTUAL SIZE", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE",
}
IMAGE_TABLE = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
IMAGE_TABLE_DIGESTS = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
VOLUME_HEADERS = {
    "Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
    "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE",
}
VOLUME_TABLE = "table {{.Driver}}\t{{.Name}}"
NETWORK_HEADERS = {
    "ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv6": "IPV6",
    "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT",
}
NETWORK_TABLE = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
STATS_HEADERS = {
    "Container": "CONTAINER", "Name": "NAME", "ID": "CONTAINER ID", "CPUPerc": "CPU %",
    "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O",
    "PIDs": "PIDS",
}
STATS_TABLE = ("table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t"
               "{{.BlockIO}}\t{{.PIDs}}")

# The Go type Docker's errors name for a missing field of each row.
CONTAINER_TYPE = "*formatter.ContainerContext"
IMAGE_TYPE = "*formatter.imageContext"
VOLUME_TYPE = "*formatter.volumeContext"
NETWORK_TYPE = "*network.networkContext"
STATS_TYPE = "*container.statsContext"


def wants_template(fmt: str | None) -> bool:
    """Whether ``--format`` asks for something other than the plain default table."""
    return bool(fmt) and fmt != "table"


def print_rows(fmt: str, rows: list[Row], headers: dict[str, str], default_table: str, type_name: str) -> None:
    """Print a listing as ``--format`` asks: ``json`` (each row's ``{{json .}}``, as later
    Docker), ``table [TEMPLATE]`` or a template for each row. A template error raises
    TemplateError (exit 1) before anything is printed."""
    from skiff.cli.gotemplate import render_rows

    if fmt == "json":
        fmt = "{{json .}}"
    sys.stdout.write(render_rows(fmt, rows, _header_context(headers), default_table, type_name))


def _header_context(headers: dict[str, str]) -> dict[str, Any]:
    """What a ``table`` format's header row is rendered from: the header names, and Docker's
    ``Label`` for ``{{.Label "com.example.key"}}`` (the key's last part, - and _ as spaces)."""
    from skiff.cli.gotemplate import GoMap

    def label(name: str) -> str:
        return name.split(".")[-1].replace("-", " ").replace("_", " ")

    return GoMap({**headers, "Label": label})


def check_template(fmt: str | None) -> None:
    """Parse an inspect ``--format`` before looking anything up: Docker exits 64 on a bad one."""
    if not fmt or fmt == "json":
        return
    from skiff.cli.gotemplate import parse
    from skiff.errors import InvalidTemplate, TemplateError

    try:
        parse(fmt)
    except TemplateError as exc:
        raise InvalidTemplate(exc.message) from None


def print_documents(documents: list[Any], fmt: str | None) -> int:
    """Inspect's output: a JSON array, or the template for each document, each followed by a
    newline (one empty line when none printed). A document the template fails on prints nothing;
    its error goes to stderr at the end and the exit status is 1, as Docker's."""
    import json

    if not fmt or fmt == "json":
        print(json.dumps(documents, indent=4))
        return 0
    from skiff.cli.gotemplate import render
    from skiff.errors import TemplateError

    errors = []
    printed = False
    for doc in documents:
        try:
            sys.stdout.write(render(fmt, doc) + "\n")
            printed = True
        except TemplateError as exc:
            errors.append(str(exc))
    if not printed:
        sys.stdout.write("\n")  # as Docker's inspector, which flushes an empty buffer as one newline
    sys.stdout.flush()
    for line in errors:
        print(line, file=sys.stderr)
    return 1 if errors else 0


# --- rows -------------------------------------------------------------------------------


def go_time(stamp: str) -> str:
    """Go's time.Time.String() in local time, second precision, as Docker's CreatedAt
    ('2021-03-04 10:11:12 +0000 UTC')."""
    import time

    from skiff.timestamps import parse

    local = time.localtime(int(parse(stamp)))
    return time.strftime("%Y-%m-%d %H:%M:%S %z %Z", local)


def ellipsis(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _labels_text(labels: dict[str, str] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items()))


def _label_getter(labels: dict[str, str] | None) -> Callable[[str], str]:
    """Docker's ``{{.Label "key"}}``: the label's value, "" when unset."""
    found = dict(labels or {})
    return lambda key: found.get(key, "")


def _sorted_row(row: Row) -> Row:
    """Docker marshals a row as a map: ``{{json .}}`` lists its fields sorted by name."""
    return {k: row[k] for k in sorted(row)}


def container_row(data: dict[str, Any], no_trunc: bool = False, size: str = "0B") -> Row:
    """``ps``'s row: Docker's ContainerContext fields for a container record."""
    from skiff.cli.ps import ps_row

    cid, image, command, running_for, status, ports, name = ps_row(data, no_trunc)
    labels = data.get("Config", {}).get("Labels") or {}
    mounts = data.get("Mounts") or []
    networks = sorted((data.get("NetworkSettings") or {}).get("Networks") or {})
    if not networks:
        mode = (data.get("HostConfig") or {}).get("NetworkMode") or ""
        networks = [mode] if mode and not mode.startswith("container:") else []
    row = _sorted_row({
        "ID": cid, "Image": image, "Command": command, "CreatedAt": go_time(data["Created"]),
        "RunningFor": running_for, "Ports": ports, "State": (data.get("State") or {}).get("Status", ""),
        "Status": status, "Size": size, "Names": name, "Labels": _labels_text(labels),
        "LocalVolumes": str(sum(1 for m in mounts if m.get("Driver") == "local")),
        "Mounts": ",".join(_mount_name(m, no_trunc) for m in mounts), "Networks": ",".join(networks),
    })
    row["Label"] = _label_getter(labels)
    return row


def _mount_name(mount: dict[str, Any], no_trunc: bool) -> str:
    name = mount.get("Name") or mount.get("Source") or ""
    return name if no_trunc else ellipsis(name, 15)


def image_row(image: Image, repository: str, tag: str, digest: str, no_trunc: bool = False) -> Row:
    """``images``'s row for one name of an image (skiff.image.store.Image)."""
    from skiff.cli.format import human_size, time_ago

    size = human_size(image.size)
    return _sorted_row({
        "ID": image.id if no_trunc else image.short_id, "Repository": repository, "Tag": tag,
        "Digest": digest, "CreatedSince": time_ago(image.created), "CreatedAt": go_time(image.created),
        "Size": size, "VirtualSize": size, "SharedSize": "N/A", "UniqueSize": "N/A", "Containers": "N/A",
    })


def volume_row(volume: Volume) -> Row:
    """``volume ls``'s row (skiff.volume.store.Volume)."""
    row = _sorted_row({
        "Name": volume.name, "Driver": volume.driver, "Scope": "local", "Mountpoint": str(volume.data),
        "Labels": _labels_text(volume.labels), "Links": "N/A", "Size": "N/A",
    })
    row["Label"] = _label_getter(volume.labels)
    return row


def network_row(network: dict[str, Any], no_trunc: bool = False) -> Row:
    """``network ls``'s row for a network record (or a predefined network)."""
    nid = network.get("Id") or ""
    created = network.get("Created")
    row = _sorted_row({
        "ID": nid if no_trunc else nid[:12], "Name": network["Name"], "Driver": network.get("Driver") or "",
        "Scope": network.get("Scope") or "local", "IPv6": "true" if network.get("EnableIPv6") else "false",
        "Internal": "true" if network.get("Internal") else "false",
        "Labels": _labels_text(network.get("Labels")), "CreatedAt": go_time(created) if created else "",
    })
    row["Label"] = _label_getter(network.get("Labels"))
    return row


def stats_row(fields: dict[str, str], container: str) -> Row:
    """``stats``'s row: the JSON fields of one sample, plus ``.Container`` (the name or id
    as given on the command line)."""
    return _sorted_row({**fields, "Container": container})
