"""A CDI device's ``containerEdits`` applied to an OCI config, as the specification says.

For every spec with a requested device its spec-wide edits apply once, then each device's own:
``env`` (a variable of the same name replaced), ``deviceNodes`` (a node in ``linux.devices``
with the host node's type and numbers where the spec leaves them out, and an allow rule with its
``permissions``, default ``rwm``, in ``linux.resources.devices``), ``mounts`` (a mount at the
same destination replaced), ``hooks`` (the OCI hook of that name, run by the runtime),
``additionalGIDs`` (0 ignored). ``intelRdt`` is refused: skiff has no resctrl support, and a
device that needs it must not run silently without it.
"""

from __future__ import annotations

import os
import stat
from typing import Any, Iterable, Mapping

from skiff.cdi.spec import Device, Spec
from skiff.errors import CDIError

_STAT_TYPES = {stat.S_IFCHR: "c", stat.S_IFBLK: "b", stat.S_IFIFO: "p"}


def apply(config: dict[str, Any], devices: Iterable[Device]) -> None:
    """Edit ``config`` (an OCI config.json object) for ``devices``, in order."""
    applied: set[int] = set()
    for device in devices:
        spec: Spec = device.spec
        if id(spec) not in applied:
            applied.add(id(spec))
            _apply_edits(config, spec.edits, f"{spec.path}: containerEdits")
        _apply_edits(config, device.edits, f"{spec.path}: device {device.qualified_name}: containerEdits")


def _apply_edits(config: dict[str, Any], edits: Mapping[str, Any], where: str) -> None:
    if not edits:
        return
    if edits.get("intelRdt") is not None:
        raise CDIError(f"CDI spec {where}.intelRdt: Intel RDT (resctrl) is not supported by skiff; "
                       "use a spec without it")
    process = config.setdefault("process", {})
    if edits.get("env"):
        process["env"] = _merged_env(process.get("env") or [], edits["env"])
    for i, node in enumerate(edits.get("deviceNodes") or []):
        _add_device_node(config, _filled(node, f"{where}.deviceNodes[{i}]"))
    for mount in edits.get("mounts") or []:
        _add_mount(config, mount)
    for hook in edits.get("hooks") or []:
        entry = {"path": hook["path"], **{k: hook[k] for k in ("args", "env", "timeout") if hook.get(k)}}
        config.setdefault("hooks", {}).setdefault(hook["hookName"], []).append(entry)
    gids = [gid for gid in edits.get("additionalGIDs") or [] if gid]
    if gids:
        user = process.setdefault("user", {"uid": 0, "gid": 0})
        current = list(user.get("additionalGids") or [])
        user["additionalGids"] = current + [gid for gid in dict.fromkeys(gids) if gid not in current]


def _merged_env(env: list[str], added: list[str]) -> list[str]:
    at = {item.partition("=")[0]: i for i, item in enumerate(env)}
    merged = list(env)
    for item in added:
        key = item.partition("=")[0]
        if key in at:
            merged[at[key]] = item
        else:
            at[key] = len(merged)
            merged.append(item)
    return merged


def _filled(node: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The node with what the spec left out taken from the host node (hostPath, else path)."""
    filled = dict(node)
    kind = node.get("type") or ""
    if kind and (node.get("major") or kind == "p"):
        return filled
    host_path = node.get("hostPath") or node["path"]
    try:
        st = os.stat(host_path)
    except OSError as exc:
        raise CDIError(f"CDI spec {where}: host device {host_path}: {exc.strerror}") from None
    host_kind = _STAT_TYPES.get(stat.S_IFMT(st.st_mode))
    if host_kind is None:
        raise CDIError(f"CDI spec {where}: host path {host_path} is not a device node")
    if kind and kind.replace("u", "c") != host_kind:
        raise CDIError(f"CDI spec {where}: type {kind!r} but the host's {host_path} is {host_kind!r}")
    filled["type"] = kind or host_kind
    if host_kind != "p" and not node.get("major"):
        filled["major"], filled["minor"] = os.major(st.st_rdev), os.minor(st.st_rdev)
    if node.get("fileMode") is None:
        filled["fileMode"] = stat.S_IMODE(st.st_mode)
    return filled


def _add_device_node(config: dict[str, Any], node: Mapping[str, Any]) -> None:
    linux = config.setdefault("linux", {})
    entry: dict[str, Any] = {"path": node["path"], "type": node["type"]}
    if node["type"] != "p":
        entry.update(major=node.get("major", 0), minor=node.get("minor", 0))
    for key in ("fileMode", "uid", "gid"):
        if node.get(key) is not None:
            entry[key] = node[key]
    devices = [d for d in linux.get("devices") or [] if d.get("path") != entry["path"]]
    linux["devices"] = [*devices, entry]
    if node["type"] in ("c", "b", "u"):
        rule = {"allow": True, "type": node["type"].replace("u", "c"), "major": entry["major"],
                "minor": entry["minor"], "access": node.get("permissions") or "rwm"}
        linux.setdefault("resources", {}).setdefault("devices", []).append(rule)


def _add_mount(config: dict[str, Any], mount: Mapping[str, Any]) -> None:
    options = list(mount.get("options") or [])
    kind = mount.get("type") or "bind"
    if kind in ("bind", "none") and not {"bind", "rbind"} & set(options):
        options.append("rbind")
    entry = {"destination": mount["containerPath"], "type": kind, "source": mount["hostPath"], "options": options}
    mounts = [m for m in config.get("mounts") or [] if m.get("destination") != entry["destination"]]
    config["mounts"] = [*mounts, entry]
