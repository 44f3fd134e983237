"""``--privileged``: what Docker 20.10 gives up for such a container, written into its OCI config.

Every capability (see ``capabilities.effective``), every device of the host (a node
for each in the container's own /dev, and a device cgroup that allows all), no
seccomp filter, no masked or read-only paths, /sys and the cgroup mounts read-write.
Docker also runs it unconfined by AppArmor; skiff applies no AppArmor profile at all.
A privileged container can do anything root on the host can: see docs/security.md.
"""

from __future__ import annotations

import os
import stat
from typing import Any

# What runc's devices.HostDevices leaves out: these are the container's own (a devpts
# instance, its shm and mqueue, /proc/self/fd) or runtime bookkeeping, not devices.
_SKIPPED_DIRS = frozenset({"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"})
# /dev/console is the container's terminal (or none); /dev/ptmx stays the link to its
# own devpts instance, as runc leaves it.
_SKIPPED_NODES = frozenset({"/dev/console", "/dev/ptmx"})
_TYPES = {stat.S_IFCHR: "c", stat.S_IFBLK: "b", stat.S_IFIFO: "p"}


def host_devices(top: str = "/dev") -> list[dict[str, Any]]:
    """The host's device nodes as OCI ``linux.devices`` entries (links are not followed).

    Only names and ``lstat`` results are read: no device is opened, so nothing of the
    host's is held or passed on; the runtime makes new nodes inside the container's /dev.
    """
    devices: list[dict[str, Any]] = []
    try:
        entries = sorted(os.scandir(top), key=lambda e: e.name)
    except OSError:
        return devices
    for entry in entries:
        path = f"{top}/{entry.name}"
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue  # gone meanwhile (a hot-unplugged device)
        if stat.S_ISDIR(st.st_mode):
            if entry.name not in _SKIPPED_DIRS:
                devices += host_devices(path)
            continue
        kind = _TYPES.get(stat.S_IFMT(st.st_mode))
        if kind is None or path in _SKIPPED_NODES:
            continue
        devices.append({"path": path, "type": kind, "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
                        "fileMode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid})
    return devices


def apply(spec: dict[str, Any]) -> None:
    """Open up an OCI config as Docker does for ``--privileged`` (capabilities are set apart)."""
    linux = spec["linux"]
    linux["devices"] = [*(linux.get("devices") or []), *host_devices()]
    linux.setdefault("resources", {})["devices"] = [{"allow": True, "access": "rwm"}]
    linux.pop("seccomp", None)
    linux["maskedPaths"] = []
    linux["readonlyPaths"] = []
    for mount in spec["mounts"]:
        if mount.get("type") in ("sysfs", "cgroup"):
            mount["options"] = [o for o in mount.get("options", []) if o != "ro"]
