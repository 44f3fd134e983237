"""Copy-up: a new, empty volume first receives the image's content at its mount target.

Everything is walked through file descriptors. The target is opened inside the
container's rootfs with openat2(RESOLVE_IN_ROOT), so an image whose ``/data`` is a
symlink to ``/etc`` gives the container's ``/etc``, never the host's; below it
every entry is opened with O_NOFOLLOW relative to its parent's fd, so no path is
ever re-resolved and a symlink swapped in meanwhile cannot redirect the copy.
Owners, modes, times, extended attributes, symlinks, hard links and device
nodes are kept, as Docker's copy does.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from skiff import linux
from skiff.errors import SyscallError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def open_in_root(rootfs: Path, target: str) -> int | None:
    """An fd on the directory ``target`` names inside ``rootfs``, or None if there is none."""
    root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return linux.openat2(root_fd, target, os.O_RDONLY | os.O_DIRECTORY,
                             resolve=linux.RESOLVE_IN_ROOT | linux.RESOLVE_NO_MAGICLINKS)
    except SyscallError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return None
        raise
    finally:
        os.close(root_fd)


def copy_up(rootfs: Path, target: str, volume_data: Path) -> bool:
    """Copy the rootfs's content at ``target`` into ``volume_data`` if that is empty.

    Returns True when something was copied. The volume's root takes the owner and
    mode of the image's directory, so a service that expects to own it still does.
    """
    src = open_in_root(rootfs, target)
    if src is None:
        return False
    try:
        dst = os.open(volume_data, _DIR_FLAGS)
        try:
            if os.listdir(dst):
                return False
            _copy_tree(src, dst, dst, "", {})
            _copy_metadata_fd(src, dst, os.fstat(src))
            return True
        finally:
            os.close(dst)
    finally:
        os.close(src)


def _copy_tree(src_dir: int, dst_dir: int, dst_root: int, rel: str, links: dict[tuple[int, int], str]) -> None:
    for name in os.listdir(src_dir):
        try:
            st = os.stat(name, dir_fd=src_dir, follow_symlinks=False)
        except FileNotFoundError:
            continue
        path = f"{rel}/{name}" if rel else name
        if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
            first = links.get((st.st_dev, st.st_ino))
            if first is not None:
                os.link(first, name, src_dir_fd=dst_root, dst_dir_fd=dst_dir, follow_symlinks=False)
                continue
            links[(st.st_dev, st.st_ino)] = path
        if stat.S_ISDIR(st.st_mode):
            _copy_dir(src_dir, dst_dir, dst_root, name, path, links)
        elif stat.S_ISREG(st.st_mode):
            _copy_file(src_dir, dst_dir, name)
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(name, dir_fd=src_dir), name, dir_fd=dst_dir)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst_dir, follow_symlinks=False)
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst_dir, follow_symlinks=False)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISFIFO(st.st_mode):
            os.mknod(name, st.st_mode, st.st_rdev, dir_fd=dst_dir)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst_dir, follow_symlinks=False)
            os.chmod(name, stat.S_IMODE(st.st_mode), dir_fd=dst_dir)
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst_dir, follow_symlinks=False)
        # sockets are left out: they are meaningless without their listening process


def _copy_dir(src_dir: int, dst_dir: int, dst_root: int, name: str, path: str,
              links: dict[tuple[int, int], str]) -> None:
    try:
        src = os.open(name, _DIR_FLAGS, dir_fd=src_dir)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT):  # swapped or gone meanwhile
            return
        raise
    try:
        os.mkdir(name, 0o700, dir_fd=dst_dir)
        dst = os.open(name, _DIR_FLAGS, dir_fd=dst_dir)
        try:
            _copy_tree(src, dst, dst_root, path, links)
            _copy_metadata_fd(src, dst, os.fstat(src))
        finally:
            os.close(dst)
    finally:
        os.close(src)


def _copy_file(src_dir: int, dst_dir: int, name: str) -> None:
    try:
        # O_NONBLOCK: a fifo swapped in for the file must not hang the copy.
        src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=src_dir)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOENT, errno.ENXIO):
            return
        raise
    try:
        st = os.fstat(src)
        if not stat.S_ISREG(st.st_mode):
            return
        dst = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                      dir_fd=dst_dir)
        try:
            _copy_bytes(src, dst, st.st_size)
            _copy_metadata_fd(src, dst, st)
        finally:
            os.close(dst)
    finally:
        os.close(src)


def _copy_bytes(src: int, dst: int, size: int) -> None:
    remaining = size
    try:
        while remaining > 0:
            done = os.copy_file_range(src, dst, remaining)
            if done == 0:
                break
            remaining -= done
        return
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
    os.lseek(src, 0, os.SEEK_SET)
    os.lseek(dst, 0, os.SEEK_SET)
    os.ftruncate(dst, 0)
    while chunk := os.read(src, 1 << 20):
        os.write(dst, chunk)


def _copy_metadata_fd(src: int, dst: int, st: os.stat_result) -> None:
    """Owner first (chown clears set-id bits and capabilities), then xattrs, mode, times."""
    os.fchown(dst, st.st_uid, st.st_gid)
    _copy_xattrs(src, dst)
    os.fchmod(dst, stat.S_IMODE(st.st_mode))
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))


def _copy_xattrs(src: int, dst: int) -> None:
    try:
        names = os.listxattr(src)
    except OSError:
        return
    for attr in names:
        try:
            os.setxattr(dst, attr, os.getxattr(src, attr))
        except OSError as exc:
            # Some namespaces (trusted.*, security.selinux) are refused on some filesystems.
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES):
                raise
