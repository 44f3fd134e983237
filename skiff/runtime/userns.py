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


