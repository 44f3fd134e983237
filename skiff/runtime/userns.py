"""User namespaces: the uid/gid maps of a new one, written by the runtime from outside."""

from __future__ import annotations

import errno

from skiff.errors import SyscallError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def write_id_maps(pid: int, linux_cfg: dict[str, Any], where: str = "linux") -> None:
    """Write ``linux.uidMappings``/``gidMappings`` for the process ``pid`` (in its new user namespace).

    The runtime is root in the parent namespace with CAP_SETGID, so setgroups
    stays allowed inside (a container may still set additionalGids). ``where``
    names the object holding the mappings in an error (a mount's, for idmapped mounts).
    """
    for key, name in (("uidMappings", "uid_map"), ("gidMappings", "gid_map")):
        lines = "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in linux_cfg.get(key) or [])
        if not lines:
            continue
        path = f"/proc/{pid}/{name}"
        try:
            with open(path, "w") as f:
                f.write(lines)
        except OSError as exc:
            raise SyscallError("write", exc.errno or errno.EIO, path,
                               hint=f"check {where}.{key}: ranges must not overlap") from None


def root_on_host(pid: int) -> tuple[int, int]:
    """The host uid and gid of root in the user namespace of ``pid`` (the overflow id if unmapped)."""
    ids = []
    for name in ("uid_map", "gid_map"):
        with open(f"/proc/{pid}/{name}") as f:
            lines = [line.split() for line in f]
        ids.append(next((int(outside) for inside, outside, _ in lines if inside == "0"), 65534))
    return ids[0], ids[1]
