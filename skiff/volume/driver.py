"""The local driver's options: a tmpfs or a bind device mounted onto ``_data`` while in use.

As Docker's local driver does, a volume created with ``--opt type=tmpfs
--opt device=tmpfs --opt o=size=64m`` (or ``type=none,o=bind,device=/srv/data``)
gets its filesystem mounted onto ``<root>/volumes/NAME/_data`` when the first
container uses it, shared by every container that uses it meanwhile, and
unmounted when the last one ends. The users are counted in
``<run_root>/volumes/NAME.json``: the run root does not outlive a reboot, and
neither do the mounts, so the two always agree. The mount is private, so it
never propagates anywhere; containers bind ``_data`` into their own namespace.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from skiff import linux, proc
from skiff.errors import SyscallError, VolumeError
from skiff.paths import Paths
from skiff.store import read_json, write_json

if TYPE_CHECKING:
    from skiff.volume.store import Volume

# mount(8) option words that are flags, not filesystem data.
_FLAGS = {
    "ro": linux.MS_RDONLY, "rw": 0, "nosuid": linux.MS_NOSUID, "suid": 0, "nodev": linux.MS_NODEV, "dev": 0,
    "noexec": linux.MS_NOEXEC, "exec": 0, "sync": linux.MS_SYNCHRONOUS, "async": 0,
    "dirsync": linux.MS_DIRSYNC, "noatime": linux.MS_NOATIME, "atime": 0, "nodiratime": linux.MS_NODIRATIME,
    "relatime": linux.MS_RELATIME, "strictatime": linux.MS_STRICTATIME, "bind": linux.MS_BIND,
    "rbind": linux.MS_BIND | linux.MS_REC,
}


def _users_file(paths: Paths, name: str) -> Path:
    return paths.run_root / "volumes" / f"{name}.json"


def mount_users(paths: Paths, name: str) -> list[str]:
    """Who holds the driver mount of volume ``name`` now: container ids."""
    return [u["Id"] for u in _read_users(paths, name)]


def _read_users(paths: Paths, name: str) -> list[dict[str, Any]]:
    return list(read_json(_users_file(paths, name), default={}).get("Users", []))


def _this_process() -> dict[str, Any]:
    pid = os.getpid()
    return {"Pid": pid, "Start": str(proc.start_time(pid))}  # a string, as records have always held it


def split_options(o: str) -> tuple[int, str]:
    """``o=size=64m,uid=1000,ro`` -> (MS_RDONLY, "size=64m,uid=1000")."""
    flags, data = 0, []
    for word in filter(None, o.split(",")):
        if word in _FLAGS:
            flags |= _FLAGS[word]
        else:
            data.append(word)
    return flags, ",".join(data)


def acquire(paths: Paths, volume: Volume, user: str) -> None:
    """Count ``user`` in; the first user mounts. Call under the volume store's lock."""
    users = _read_users(paths, volume.name)
    if any(u["Id"] == user for u in users):
        return
    # Recorded before mounting: a crash in between leaves a user to reconcile, never a lost mount.
    _write_users(paths, volume.name, users + [{"Id": user, **_this_process()}])
    if users and os.path.ismount(volume.data):
        return
    try:
        _mount(volume)
    except BaseException:
        _write_users(paths, volume.name, users)
        raise


def release(paths: Paths, volume: Volume, user: str) -> None:
    """Count ``user`` out; the last user unmounts. Call under the volume store's lock."""
    users = _read_users(paths, volume.name)
    remaining = [u for u in users if u["Id"] != user]
    if remaining == users:
        return
    if not remaining:
        unmount(volume.data)
    _write_users(paths, volume.name, remaining)


def _write_users(paths: Paths, name: str, users: list[dict[str, Any]]) -> None:
    path = _users_file(paths, name)
    if users:
        write_json(path, {"Users": users})
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _mount(volume: Volume) -> None:
    fstype = volume.options.get("type", "")
    device = volume.options.get("device", "")
    flags, data = split_options(volume.options.get("o", ""))
    target = volume.data
    try:
        if flags & linux.MS_BIND:
            if not os.path.exists(device):
                raise VolumeError(f"failed to mount local volume {volume.name}: bind device {device} "
                                  "does not exist")
            linux.mount(device, target, None, flags & (linux.MS_BIND | linux.MS_REC))
            if flags & ~(linux.MS_BIND | linux.MS_REC):
                # A bind ignores other flags until it is remounted with them.
                linux.mount(None, target, None, linux.MS_REMOUNT | linux.MS_BIND | flags)
        else:
            linux.mount(device, target, None if fstype == "none" else fstype, flags, data or None)
        linux.mount(None, target, None, linux.MS_PRIVATE)
    except SyscallError as exc:
        if os.path.ismount(target):
            unmount(target)
        raise VolumeError(f"failed to mount local volume {volume.name}: mount {device}:{target} "
                          f"type {fstype} options {volume.options.get('o', '')!r}: {os.strerror(exc.errno)}"
                          ) from None


def unmount(target: Path) -> None:
    """Unmount, retrying while busy, then detach lazily so nothing stays in the mount table."""
    for attempt in range(20):
        try:
            linux.umount(target)
            return
        except SyscallError as exc:
            if exc.errno == errno.EINVAL:  # not a mount point (any more)
                return
            if exc.errno != errno.EBUSY:
                raise
            time.sleep(0.005 * (attempt + 1))
    linux.umount(target, linux.MNT_DETACH)


def _alive(user: dict[str, Any], live: set[str]) -> bool:
    """A user lives while its container runs, or while the skiff that mounted for it still runs
    (it may not have recorded the container as running yet)."""
    if user.get("Id") in live:
        return True
    start = str(user.get("Start") or "")
    return start.isdigit() and proc.alive(int(user.get("Pid", 0)), int(start))


def reconcile(paths: Paths, live_ids: Iterable[str]) -> list[str]:
    """Drop users that no longer exist (a skiff or a container killed with SIGKILL).

    The engine calls this at the start of commands with the ids of containers that are
    still running. A user whose mounting skiff process is still alive is kept too, so a
    ``skiff run`` that is still starting its container is never robbed of its mount. Volumes whose last user is gone are unmounted; returns their names.
    """
    folder = paths.run_root / "volumes"
    try:
        entries = sorted(os.listdir(folder))
    except FileNotFoundError:
        return []
    from skiff.volume.store import VolumeStore

    store = VolumeStore(paths)
    live = set(live_ids)
    released = []
    with store.lock():
        for entry in entries:
            if not entry.endswith(".json") or entry.startswith("."):
                continue
            name = entry[: -len(".json")]
            users = _read_users(paths, name)
            remaining = [u for u in users if _alive(u, live)]
            if remaining == users:
                continue
            if not remaining:
                unmount(paths.volumes / name / "_data")
                released.append(name)
            _write_users(paths, name, remaining)
    return released
