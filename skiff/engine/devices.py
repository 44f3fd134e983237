"""``--device``, ``--device-cgroup-rule`` and ``--gpus``: Docker's flags, and what they add to a config.

The flag values are checked as Docker 20.10's client checks them (bad input exits 125 before
anything is created). At each start, as Docker's daemon does, a host device (or a directory of
them) becomes nodes in ``linux.devices`` with the host's type and numbers and allow rules with the
flag's permissions in ``linux.resources.devices``; a cgroup rule becomes an allow rule. A CDI name
(``vendor.com/class=name``, which Docker 25's client sends as a ``cdi`` device request) and a GPU
request (``--gpus``, Docker's ``nvidia`` device request) are resolved to CDI devices whose
``containerEdits`` skiff.cdi applies.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from typing import Any, Iterable, Mapping, Sequence

from skiff.errors import DeviceError, InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from skiff.cdi.registry import Registry

# Docker's client's rule syntax (opts.ValidateDeviceCgroupRule) and the daemon's parse of it.
_CGROUP_RULE = re.compile(r"([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})")
# The capabilities Docker 20.10's nvidia device driver serves (daemon/nvidia_linux.go).
NVIDIA_CAPABILITIES = frozenset({"gpu", "nvidia", "compute", "compat32", "graphics", "utility", "video", "display"})
GPU_KIND = "nvidia.com/gpu"


# --- the flags, as Docker's client checks them ----------------------------------------------

def _valid_mode(mode: str) -> bool:
    return bool(mode) and set(mode) <= set("rwm") and len(set(mode)) == len(mode)


def check_device_flag(value: str) -> None:
    """Docker's validateDevice (validateLinuxPath with device modes); a CDI name passes as in Docker 25.

    Docker's client checks --device values after parsing the flags: its messages are the bare reason."""
    from skiff.cdi.spec import is_qualified_name

    if is_qualified_name(value):
        return
    if value.count(":") > 2 or value.split(":", 1)[0] == "":
        raise InvalidArgument(f"bad format for path: {value}")
    parts = value.split(":")
    container_path = parts[0]
    if len(parts) == 2 and not _valid_mode(parts[1]):
        container_path = parts[1]
    elif len(parts) == 3:
        container_path = parts[1]
        if not _valid_mode(parts[2]):
            raise InvalidArgument(f"bad mode specified: {parts[2]}")
    if not container_path.startswith("/"):
        raise InvalidArgument(f"{container_path} is not an absolute path")


def device_mapping(value: str) -> dict[str, str]:
    """Docker's parseLinuxDevice: HostConfig.Devices' entry for ``HOST[:CONTAINER][:PERMS]``."""
    parts = value.split(":")
    source, target, permissions = parts[0], "", "rwm"
    if len(parts) == 3:
        permissions = parts[2]
    if len(parts) >= 2:
        if _valid_mode(parts[1]):
            permissions = parts[1]
        else:
            target = parts[1]
    return {"PathOnHost": source, "PathInContainer": target or source, "CgroupPermissions": permissions}


def check_cgroup_rule(value: str) -> None:
    if not _CGROUP_RULE.fullmatch(value):
        raise InvalidArgument(f'invalid argument "{value}" for "--device-cgroup-rule" flag: '
                              f"invalid device cgroup format '{value}'")


def parse_gpus(value: str) -> dict[str, Any]:
    """``--gpus`` as Docker 20.10's client reads it (opts.GpuOpts.Set) into a DeviceRequest."""
    import csv

    def fail(reason: str) -> InvalidArgument:
        return InvalidArgument(f'invalid argument "{value}" for "--gpus" flag: {reason}')

    def count(text: str) -> int:
        if text == "all":
            return -1
        if not re.fullmatch(r"[+-]?[0-9]+", text):   # Go's strconv.Atoi: no spaces, no underscores
            raise fail(f'count must be an integer: strconv.Atoi: parsing "{text}": invalid syntax')
        return int(text)

    try:
        fields = next(csv.reader([value]))
    except (csv.Error, StopIteration) as exc:
        raise fail(str(exc) or "empty value") from None
    request: dict[str, Any] = {"Driver": "", "Count": 0, "DeviceIDs": None, "Capabilities": None, "Options": None}
    seen: set[str] = set()
    for field in fields:
        key, eq, text = field.partition("=")
        if key in seen:
            raise fail(f"gpu request key '{key}' can be specified only once")
        seen.add(key)
        if not eq:
            seen.add("count")
            request["Count"] = count(key)
        elif key == "driver":
            request["Driver"] = text
        elif key == "count":
            request["Count"] = count(text)
        elif key == "device":
            request["DeviceIDs"] = text.split(",")
        elif key == "capabilities":
            request["Capabilities"] = [[*text.split(","), "gpu"]]
        elif key == "options":
            options = next(csv.reader([text]), [])
            request["Options"] = dict(item.partition("=")[::2] for item in options)
        else:
            raise fail(f"unexpected key '{key}' in '{field}'")
    if "count" not in seen and request["DeviceIDs"] is None:
        request["Count"] = 1
    request["Options"] = request["Options"] or {}
    request["Capabilities"] = request["Capabilities"] or [["gpu"]]
    return request


def split_devices(values: Iterable[str]) -> tuple[list[str], list[str]]:
    """--device values -> (host device specs, CDI names)."""
    from skiff.cdi.spec import is_qualified_name

    paths: list[str] = []
    names: list[str] = []
    for value in values:
        (names if is_qualified_name(value) else paths).append(value)
    return paths, names


def device_requests(devices: Sequence[str], requests: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """HostConfig.DeviceRequests: the requests given (``--gpus``), then one ``cdi`` request for the
    CDI names among ``--device`` values, as Docker 25's client sends them."""
    _, names = split_devices(devices)
    found = [dict(r) for r in requests]
    if names:
        found.append({"Driver": "cdi", "Count": 0, "DeviceIDs": names, "Capabilities": None, "Options": {}})
    return found


def check_requests(requests: Iterable[Mapping[str, Any]]) -> None:
    """What Docker's daemon refuses in a device request before it looks for devices."""
    from skiff.cdi.spec import parse_qualified_name

    for request in requests:
        driver = str(request.get("Driver") or "")
        ids = request.get("DeviceIDs") or []
        if request.get("Count") and ids:
            raise InvalidArgument("cannot set both Count and DeviceIDs on device request")
        if driver == "cdi":
            for name in ids:
                parse_qualified_name(name)
        elif not _nvidia_request(request):
            caps = request.get("Capabilities")
            raise DeviceError(f'could not select device driver "{driver}" with capabilities: {_go_caps(caps)}')


def _nvidia_request(request: Mapping[str, Any]) -> bool:
    """Docker's driver selection: driver "" or nvidia, and one capability set the driver serves."""
    if str(request.get("Driver") or "") not in ("", "nvidia"):
        return False
    sets = request.get("Capabilities") or [[]]
    return any(set(caps) <= NVIDIA_CAPABILITIES for caps in sets)


def _go_caps(caps: Any) -> str:
    return "[" + " ".join("[" + " ".join(c) + "]" for c in caps or []) + "]"


# --- at start: what the container gets ---------------------------------------------------------

def apply(config: dict[str, Any], devices: Sequence[str], rules: Sequence[str],
          requests: Sequence[Mapping[str, Any]]) -> list[str]:
    """Add the devices to ``config``; return the CDI devices given (qualified names)."""
    paths, names = split_devices(devices)
    linux = config.setdefault("linux", {})
    resources = linux.setdefault("resources", {})
    nodes, allowed = [], []
    for value in paths:
        mapping = device_mapping(value)
        found, found_rules = devices_from_path(mapping["PathOnHost"], mapping["PathInContainer"],
                                               mapping["CgroupPermissions"])
        nodes += found
        allowed += found_rules
    allowed += [cgroup_rule(rule) for rule in rules]
    if nodes:
        taken = {n["path"] for n in nodes}
        linux["devices"] = [d for d in linux.get("devices") or [] if d.get("path") not in taken] + nodes
    if allowed:
        resources["devices"] = [*(resources.get("devices") or []), *allowed]
    names += [n for r in requests if r.get("Driver") == "cdi" for n in r.get("DeviceIDs") or []]
    gpu_requests = [r for r in requests if r.get("Driver") != "cdi"]
    if not (names or gpu_requests):
        return []
    from skiff.cdi import edits
    from skiff.cdi.registry import Registry

    registry = Registry()
    names += gpu_device_names(gpu_requests, registry)
    chosen = registry.resolve(list(dict.fromkeys(names)))
    edits.apply(config, chosen)
    return [d.qualified_name for d in chosen]


def devices_from_path(host: str, target: str, permissions: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Docker's oci.DevicesFromPath: one node, or every node under a directory, with its rules."""
    resolved = os.path.realpath(host) if os.path.islink(host) else host
    try:
        return [_node(resolved, target)], [_rule(resolved, permissions)]
    except DeviceError as exc:
        error = exc
    except OSError as exc:
        error = DeviceError((exc.strerror or str(exc)).lower())
    nodes, rules = [], []
    if os.path.isdir(resolved):
        for directory, _, files in os.walk(resolved):
            for name in sorted(files):
                path = os.path.join(directory, name)
                try:
                    nodes.append(_node(path, target + path[len(resolved):]))
                    rules.append(_rule(path, permissions))
                except (DeviceError, OSError):
                    continue  # as Docker: what is not a device is left out
    if nodes:
        return nodes, rules
    raise DeviceError(f'error gathering device information while adding custom device "{host}": {error.message}')


def _device_stat(path: str) -> os.stat_result:
    st = os.lstat(path)
    if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)):
        raise DeviceError("not a device node")
    return st


def _node(host: str, target: str) -> dict[str, Any]:
    st = _device_stat(host)
    return {"path": posixpath.normpath(target), "type": "c" if stat.S_ISCHR(st.st_mode) else "b",
            "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev), "fileMode": stat.S_IMODE(st.st_mode),
            "uid": st.st_uid, "gid": st.st_gid}


def _rule(host: str, permissions: str) -> dict[str, Any]:
    st = _device_stat(host)
    return {"allow": True, "type": "c" if stat.S_ISCHR(st.st_mode) else "b",
            "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev), "access": permissions}


def cgroup_rule(text: str) -> dict[str, Any]:
    """``c 195:* rwm`` as an OCI allow rule (a wildcard number left out)."""
    match = _CGROUP_RULE.fullmatch(text)
    if match is None:
        raise InvalidArgument(f"invalid device cgroup rule format: '{text}'")
    kind, major, minor, access = match.groups()
    rule: dict[str, Any] = {"allow": True, "type": kind, "access": access}
    if major != "*":
        rule["major"] = int(major)
    if minor != "*":
        rule["minor"] = int(minor)
    return rule


def gpu_device_names(requests: Sequence[Mapping[str, Any]], registry: Registry) -> list[str]:
    """The nvidia.com/gpu CDI devices the ``--gpus`` requests select (a spec generated for the
    run when the host has the driver but no spec)."""
    if not requests:
        return []
    if GPU_KIND not in registry.kinds():
        from skiff.cdi import nvidia

        registry.specs.append(nvidia.in_memory_spec(registry.dirs))
    available = {d.name for d in registry.devices() if d.spec.kind == GPU_KIND}
    names: list[str] = []
    for request in requests:
        count, ids = int(request.get("Count") or 0), list(request.get("DeviceIDs") or [])
        indices = sorted((n for n in available if n.isdigit()), key=int)
        if ids:
            unknown = [i for i in ids if i not in available]
            if unknown:
                raise DeviceError(f"no NVIDIA GPU {', '.join(unknown)} on this host "
                                  f"(GPUs: {', '.join(sorted(available)) or 'none'})")
            names += ids
        elif count < 0:
            names += indices or (["all"] if "all" in available else [])
        elif count > len(indices):
            raise DeviceError(f"{count} GPUs requested, but this host has {len(indices)}")
        else:
            names += indices[:count]
    return [f"{GPU_KIND}={name}" for name in names]
