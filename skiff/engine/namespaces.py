"""``--pid``, ``--ipc``, ``--uts``, ``--cgroupns`` and ``--userns``: which namespaces a container shares.

Docker 20.10's rules. A container gets new namespaces unless a flag says otherwise:
``host`` keeps the host's (the namespace is left out of the OCI config),
``container:X`` joins X's by path (``/proc/PID/ns/TYPE`` of X's init). X must exist in
the same skiff root and be running (not restarting); for IPC it must also be
``shareable``, as its /dev/shm is then a tmpfs mounted outside it that the joiner binds.
The defaults are Docker's: IPC ``private``; cgroup ``host`` on a cgroup v1 host,
``private`` on v2. A joined path is resolved again at every start and restart (X's init
may have changed), never replayed from an old config.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, NamedTuple

from skiff.engine.containers import Container
from skiff.engine.options import RunOptions
from skiff.engine.state import Status
from skiff.errors import ContainerNotRunning, InvalidArgument
from skiff.paths import Paths

CONTAINER = "container:"
IPC_MODES = ("private", "shareable", "none", "host")
SHM_DIR = "shm"  # a shareable container's /dev/shm, mounted in its directory on the host


class Modes(NamedTuple):
    """What HostConfig records: Docker's values, container:X with X's full id."""

    pid: str = ""
    ipc: str = "private"
    uts: str = ""
    cgroupns: str = ""
    userns: str = ""


def check_flags(opts: RunOptions) -> None:
    """The client's checks, with Docker's messages."""
    if opts.userns not in ("", "host"):
        raise InvalidArgument("--userns: invalid USER mode",
                              hint="skiff has no user namespace remapping: only --userns host is accepted")
    if not (opts.pid in ("", "host") or _joined(opts.pid)):
        raise InvalidArgument("--pid: invalid PID mode", hint="use host or container:NAME")
    if opts.uts not in ("", "host"):
        raise InvalidArgument("--uts: invalid UTS mode", hint="use host")
    if opts.cgroupns not in ("", "host", "private"):
        raise InvalidArgument("--cgroupns: invalid CGROUP mode", hint="use host or private")
    if not (opts.ipc in ("", *IPC_MODES) or _joined(opts.ipc)):
        raise InvalidArgument(f"Invalid IPC mode: {opts.ipc}",
                              hint="use private, shareable, none, host or container:NAME")
    if opts.uts == "host" and opts.hostname:
        raise InvalidArgument("conflicting options: hostname and the UTS mode")


def resolve(paths: Paths, opts: RunOptions) -> Modes:
    """The daemon's step: defaults filled in, X found and checked, as at ``docker create``."""
    check_flags(opts)
    pid, ipc = opts.pid, opts.ipc or "private"
    if _joined(pid):
        pid = CONTAINER + _donor(paths, pid, "").id
    if _joined(ipc):
        ipc = CONTAINER + _ipc_donor(paths, ipc).id
    return Modes(pid=pid, ipc=ipc, uts=opts.uts, cgroupns=opts.cgroupns or default_cgroupns(),
                 userns=opts.userns)


def default_cgroupns() -> str:
    """Docker 20.10: the host's cgroup namespace on a cgroup v1 (or hybrid) host, a private one on v2."""
    return "private" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "host"


def apply(spec: dict[str, Any], modes: Modes, paths: Paths, container: Container,
          undo: contextlib.ExitStack) -> None:
    """Write the modes into an OCI config whose namespaces and mounts are otherwise complete."""
    namespaces = spec["linux"]["namespaces"]
    for kind, mode in (("pid", modes.pid), ("ipc", modes.ipc), ("uts", modes.uts), ("cgroup", modes.cgroupns)):
        if mode == "host":
            namespaces[:] = [ns for ns in namespaces if ns["type"] != kind]
        elif _joined(mode):
            donor = _donor(paths, mode, "IPC" if kind == "ipc" else "")
            for ns in namespaces:
                if ns["type"] == kind:
                    ns["path"] = f"/proc/{donor.state['Pid']}/ns/{kind}"
    if modes.uts == "host":
        spec.pop("hostname", None)  # it is the host's: the runtime may not set it
    _ipc_shm(spec, modes.ipc, paths, container, undo)


def refresh_joined(paths: Paths, container: Container, spec: dict[str, Any]) -> bool:
    """Point a replayed config (a restart) at the current init of each container it joins.

    False if it joins none. Raises, as a start would, if one of them is no longer running.
    """
    host_config = container.data.get("HostConfig") or {}
    joined = {"pid": host_config.get("PidMode") or "", "ipc": host_config.get("IpcMode") or ""}
    if not any(_joined(mode) for mode in joined.values()):
        return False
    for ns in spec["linux"]["namespaces"]:
        mode = joined.get(ns["type"], "")
        if _joined(mode):
            donor = _donor(paths, mode, "IPC" if ns["type"] == "ipc" else "")
            ns["path"] = f"/proc/{donor.state['Pid']}/ns/{ns['type']}"
    return True


def release(container: Container) -> None:
    """Unmount a shareable container's /dev/shm on the host; fine if it is not mounted."""
    from skiff.storage.overlay import is_mountpoint

    shm = container.dir / SHM_DIR
    if is_mountpoint(shm):
        from skiff import linux

        linux.umount(shm, linux.MNT_DETACH | linux.UMOUNT_NOFOLLOW)


# --- helpers ------------------------------------------------------------------


def _joined(mode: str) -> bool:
    return mode.startswith(CONTAINER) and len(mode) > len(CONTAINER)


def _donor(paths: Paths, mode: str, what: str) -> Container:
    """X of ``container:X``: it must be running and not restarting (Docker's checkContainer)."""
    from skiff.engine import containers as records

    other = records.find_container(paths, mode[len(CONTAINER):])
    prefix = f"can't join {what} of container {other.id}: " if what else ""
    if other.state.status == Status.RESTARTING:
        raise ContainerNotRunning(f"{prefix}container {other.id} is restarting, wait until the container is running")
    if not other.running or not other.state.pid:
        raise ContainerNotRunning(f"{prefix}container {other.id} is not running")
    return other


def _ipc_donor(paths: Paths, mode: str) -> Container:
    other = _donor(paths, mode, "IPC")
    if (other.data.get("HostConfig") or {}).get("IpcMode") not in ("shareable", "host"):
        raise ContainerNotRunning(f"can't join IPC of container {other.id}: non-shareable IPC "
                                  "(hint: use IpcMode:shareable for the donor container)")
    return other


def _ipc_shm(spec: dict[str, Any], mode: str, paths: Paths, container: Container,
             undo: contextlib.ExitStack) -> None:
    """/dev/shm as the IPC mode wants it: its own tmpfs, none, the host's, or one shared."""
    mounts = spec["mounts"]
    index = next((i for i, m in enumerate(mounts) if m["destination"] == "/dev/shm"), None)
    if index is None or mode == "private":
        return
    if mode == "none":
        del mounts[index]
        return
    if mode == "host":
        source = Path("/dev/shm")
    elif mode == "shareable":
        source = _mount_shareable_shm(container, mounts[index], undo)
    else:
        donor = _donor(paths, mode, "IPC")
        source = donor.dir / SHM_DIR
        if (donor.data.get("HostConfig") or {}).get("IpcMode") == "host":
            source = Path("/dev/shm")
    mounts[index] = {"destination": "/dev/shm", "type": "bind", "source": str(source),
                     "options": ["rbind", "rprivate", "nosuid", "nodev", "noexec"]}


def _mount_shareable_shm(container: Container, entry: dict[str, Any], undo: contextlib.ExitStack) -> Path:
    """The tmpfs the spec would mount in the container, mounted on the host for others to bind."""
    from skiff import linux

    shm = container.dir / SHM_DIR
    release(container)  # one left by a start killed before it could undo
    shm.mkdir(mode=0o700, exist_ok=True)
    data = ",".join(o for o in entry.get("options", []) if o.startswith(("mode=", "size=")))
    linux.mount("shm", shm, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC, data or None)
    undo.callback(release, container)
    linux.mount(None, shm, None, linux.MS_PRIVATE)
    return shm
