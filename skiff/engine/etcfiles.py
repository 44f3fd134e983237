"""/etc/resolv.conf, /etc/hostname and /etc/hosts: the engine's files, bind-mounted as Docker does.

Docker 20.10 mounts them after every volume, bind and tmpfs mount (so one over /etc still
gets them), read-only with ``--read-only``, and leaves out any of them the user mounts
something on. Its "init layer" also puts an empty file (mode 0755) at each of them between
the image and the container's own layer; ``make_mountpoints`` does the same in the
container's rootfs, so that a new volume at /etc receives them in its copy-up as Docker's
does (and a read-only one already holds the mount points), and so that an image's
``/etc/resolv.conf`` symlink is masked as Docker masks it rather than followed. The init
layer's /etc/mtab, a symlink to /proc/mounts, is made here the same way.

Only names are created here, by file descriptor: ``/etc`` is opened inside the rootfs with
openat2(RESOLVE_IN_ROOT) and every entry below it is touched without following a link. The
runtime resolves each mount's destination inside the root again when it mounts, so a
volume whose ``hosts`` is a symlink to a host path or into /proc redirects nothing.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from skiff import explain, linux
from skiff.errors import SyscallError

# The order of Docker's container.NetworkMounts, which is the order they are mounted in.
ETC_FILES = ("resolv.conf", "hostname", "hosts")
# What Docker's init layer creates them with (daemon/initlayer).
MOUNTPOINT_MODE = 0o755
# Docker's init layer also masks /etc/mtab with this link (programs that read mtab see the mounts).
MTAB, MTAB_TARGET = "mtab", "/proc/mounts"


def make_mountpoints(rootfs: Path) -> None:
    """An empty 0755 file at /etc/resolv.conf, /etc/hostname and /etc/hosts of the rootfs, and
    /etc/mtab a link to /proc/mounts, as Docker's init layer.

    A regular file or a symlink the image has there is replaced (Docker's init layer masks
    it); a directory is left for the runtime to refuse. Idempotent: a restart finds them made.
    """
    root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        etc_fd = _open_etc(root_fd)
    finally:
        os.close(root_fd)
    if etc_fd is None:
        return
    try:
        for name in ETC_FILES:
            _make_mountpoint(etc_fd, name)
        _make_mtab_link(etc_fd)
    finally:
        os.close(etc_fd)


def _open_etc(root_fd: int) -> int | None:
    """/etc of the rootfs, resolved inside it (made if missing); None if it is not a directory."""
    for _ in range(2):
        try:
            return linux.openat2(root_fd, "etc", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC,
                                 resolve=linux.RESOLVE_IN_ROOT | linux.RESOLVE_NO_MAGICLINKS)
        except SyscallError as exc:
            if exc.errno in (errno.ENOTDIR, errno.ELOOP):
                return None  # the runtime reports what is wrong with it when it mounts
            if exc.errno != errno.ENOENT:
                raise
        try:
            os.mkdir("etc", 0o755, dir_fd=root_fd)
        except FileExistsError:
            return None  # a dangling symlink: the runtime follows it inside the root
    return None


def _make_mountpoint(etc_fd: int, name: str) -> None:
    try:
        st = os.stat(name, dir_fd=etc_fd, follow_symlinks=False)
    except FileNotFoundError:
        pass
    else:
        if stat.S_ISREG(st.st_mode) and st.st_size == 0 and stat.S_IMODE(st.st_mode) == MOUNTPOINT_MODE:
            return
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
            return
        os.unlink(name, dir_fd=etc_fd)
    try:
        fd = os.open(name, os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_WRONLY | os.O_CLOEXEC,
                     MOUNTPOINT_MODE, dir_fd=etc_fd)
    except FileExistsError:
        return  # made meanwhile: the runtime mounts on whatever is there, inside the root
    try:
        os.fchmod(fd, MOUNTPOINT_MODE)  # whatever the umask
    finally:
        os.close(fd)


def _make_mtab_link(etc_fd: int) -> None:
    """/etc/mtab -> /proc/mounts in place of the image's file or link (a directory is left alone)."""
    try:
        st = os.stat(MTAB, dir_fd=etc_fd, follow_symlinks=False)
    except FileNotFoundError:
        pass
    else:
        if stat.S_ISLNK(st.st_mode) and os.readlink(MTAB, dir_fd=etc_fd) == MTAB_TARGET:
            return
        if stat.S_ISDIR(st.st_mode):
            return
        os.unlink(MTAB, dir_fd=etc_fd)
    try:
        os.symlink(MTAB_TARGET, MTAB, dir_fd=etc_fd)
    except FileExistsError:
        return  # made meanwhile


def etc_mounts(container_dir: Path, contents: dict[str, str], read_only: bool,
               user_destinations: Iterable[str]) -> list[dict[str, Any]]:
    """Write the files into the container's directory; their OCI mounts, in Docker's order.

    ``user_destinations``: where the user's own mounts go; a file mounted there is the user's
    (Docker still writes its own, which ``inspect`` names, but does not mount it).
    """
    taken = set(user_destinations)
    mounts = []
    for name in ETC_FILES:
        path = container_dir / name
        path.write_text(contents[name])
        if explain.on:
            explain.step(explain.NETWORK, f"write the container's /etc/{name} (bind-mounted in later)", "write",
                         {"path": str(path), "lines": contents[name].count("\n")})
        destination = f"/etc/{name}"
        if destination in taken:
            continue
        options = ["rbind", "rprivate"] + (["ro"] if read_only else [])
        mounts.append({"destination": destination, "type": "bind", "source": str(path), "options": options})
    return mounts
