"""Copy-up: a new, empty volume first receives the image's content at its mount target.

Everything is walked through file descriptors. The target is opened inside the
container's rootfs with openat2(RESOLVE_IN_ROOT), so an image whose ``/data`` is a
symlink to ``/etc`` gives the container's ``/etc``, never the host's; below it
every entry is opened with O_NOFOLLOW relative to its parent's fd, so no path is
ever re-resolved and a symlink swapped in meanwhile cannot redirect the copy.

A named volume may be in use by a running container while it is filled, and that
container can rename, replace or symlink anything in it at any moment. So every
call that writes in the volume takes a directory fd and one name and does not
follow a symlink there: hard links are made from the first copy's parent reached
with RESOLVE_NO_SYMLINKS, modes of device nodes and FIFOs are set with
fchmodat2(AT_SYMLINK_NOFOLLOW), and a name that appears meanwhile is left alone.
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
            _copy_tree(src, dst, dst, [], {})
            _copy_metadata_fd(src, dst, os.fstat(src))
            return True
        finally:
            os.close(dst)
    finally:
        os.close(src)


# The first copy of each hard-linked inode: its path below the volume root, as components.
_Links = dict[tuple[int, int], list[str]]


def _copy_tree(src_dir: int, dst_dir: int, dst_root: int, rel: list[str], links: _Links) -> None:
    for name in os.listdir(src_dir):
        try:
            st = os.stat(name, dir_fd=src_dir, follow_symlinks=False)
        except FileNotFoundError:
            continue
        path = [*rel, name]
        if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
            first = links.get((st.st_dev, st.st_ino))
            if first is not None and _link_first(dst_root, first, dst_dir, name):
                continue
            links[(st.st_dev, st.st_ino)] = path
        try:
            _copy_entry(src_dir, dst_dir, dst_root, name, st, path, links)
        except FileExistsError:
            # The volume was empty when the copy began: only a container sharing it can have
            # made this name meanwhile. Its entry stays; nothing is written through it.
            continue


def _copy_entry(src_dir: int, dst_dir: int, dst_root: int, name: str, st: os.stat_result, path: list[str],
                links: _Links) -> None:
    if stat.S_ISDIR(st.st_mode):
        _copy_dir(src_dir, dst_dir, dst_root, name, path, links)
    elif stat.S_ISREG(st.st_mode):
        _copy_file(src_dir, dst_dir, name)
    elif stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(name, dir_fd=src_dir), name, dir_fd=dst_dir)
        os.chown(name, st.st_uid, st.st_gid, dir_fd=dst_dir, follow_symlinks=False)
        os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst_dir, follow_symlinks=False)
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISFIFO(st.st_mode):
        _make_node(dst_dir, name, st)
    # sockets are left out: they are meaningless without their listening process


def _link_first(dst_root: int, first: list[str], dst_dir: int, name: str) -> bool:
    """Hard-link ``name`` in ``dst_dir`` to the first copy ``first`` made below ``dst_root``.

    The volume may be shared with a running container that swaps a directory of the
    copy for a symlink meanwhile: the first copy's parent is reached without following
    any symlink (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS) and linked by one name
    relative to that fd, so the link can only ever be to an inode inside the volume.
    False when the first copy is no longer reachable so: the caller copies instead.
    """
    from skiff.linux.fsat import open_beneath

    parent = open_beneath(dst_root, first[:-1])
    if parent is None:
        return False
    try:
        os.link(first[-1], name, src_dir_fd=parent, dst_dir_fd=dst_dir, follow_symlinks=False)
        return True
    except FileNotFoundError:
        return False
    finally:
        os.close(parent)


def _make_node(dst_dir: int, name: str, st: os.stat_result) -> None:
    """A device node or FIFO, with its owner and mode, never touching what a symlink names.

    chmod by name follows a symlink swapped in after mknod; fchmodat2 with
    AT_SYMLINK_NOFOLLOW does not. Without it (Linux < 6.6) the node is made with its
    mode under a zero umask instead, and loses set-id bits to the chown that follows.
    """
    from skiff.linux.fsat import chmod_nofollow, has_fchmodat2

    kind, mode = stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode)
    if has_fchmodat2():
        os.mknod(name, kind | 0o600, st.st_rdev, dir_fd=dst_dir)
        os.chown(name, st.st_uid, st.st_gid, dir_fd=dst_dir, follow_symlinks=False)
        if not chmod_nofollow(dst_dir, name, mode):
            return  # swapped for a symlink meanwhile: leave it, it is the other container's doing
    else:
        old = os.umask(0)
        try:
            os.mknod(name, kind | mode, st.st_rdev, dir_fd=dst_dir)
        finally:
            os.umask(old)
        os.chown(name, st.st_uid, st.st_gid, dir_fd=dst_dir, follow_symlinks=False)
    os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst_dir, follow_symlinks=False)


def _copy_dir(src_dir: int, dst_dir: int, dst_root: int, name: str, path: list[str], links: _Links) -> None:
    try:
        src = os.open(name, _DIR_FLAGS, dir_fd=src_dir)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT):  # swapped or gone meanwhile
            return
        raise
    try:
        os.mkdir(name, 0o700, dir_fd=dst_dir)
        try:
            dst = os.open(name, _DIR_FLAGS, dir_fd=dst_dir)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT):  # swapped by a sharing container
                return
            raise
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
