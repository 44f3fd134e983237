"""``docker cp``'s engine side: a container's paths as tar streams, both ways; ``export``; ``diff``.

Every path is resolved inside the container's root by the kernel (openat2 RESOLVE_IN_ROOT) from a
directory fd, never as a host path string: a symlink in the container that points at ``/etc``
means the container's ``/etc``, and a link swapped in while a copy runs (CVE-2018-15664) can
redirect it only to another place inside the same root. Below the resolved path each entry is
opened relative to its directory's fd with O_NOFOLLOW, so a directory swapped for a link midway is
refused, not followed. Tar entries written into a container are refused when absolute, when they
hold ``..``, or when their directory would be reached through a link.

The root: a running container's is its init's root (``/proc/PID/root``, with its volumes and
bind mounts as the container sees them), checked to be the container's own overlay so a recycled
pid can never hand over another process's root. A stopped container's overlay is mounted with
fsmount(2), attached to no namespace (nothing to unmount, gone with its fd), and a path under
one of its mounts' targets resolves inside that mount's source, as Docker's daemon mounts them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import stat
import tarfile
import threading
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from skiff import linux
from skiff.errors import ArchiveRefused, ContainerPathNotFound, SkiffError, SyscallError

if TYPE_CHECKING:
    from skiff.engine.containers import Container
    from skiff.paths import Paths

IN_ROOT = linux.RESOLVE_IN_ROOT | linux.RESOLVE_NO_MAGICLINKS
# Beneath an extraction point: no link at all on the way, no escape.
BENEATH_NO_LINKS = linux.RESOLVE_BENEATH | linux.RESOLVE_NO_SYMLINKS | linux.RESOLVE_NO_MAGICLINKS
MAX_LINKS = 40      # the kernel's (and Go's FollowSymlinkInScope's) limit on links in one path
CHUNK = 1 << 16

# Go's os.FileMode bits, which Docker's X-Docker-Container-Path-Stat carries.
GO_DIR, GO_SYMLINK, GO_DEVICE, GO_PIPE, GO_SOCKET = 1 << 31, 1 << 27, 1 << 26, 1 << 25, 1 << 24
GO_SETUID, GO_SETGID, GO_CHARDEV, GO_STICKY = 1 << 23, 1 << 22, 1 << 21, 1 << 20

# Changes' kinds, as Docker's: modified, added, deleted.
CHANGE_MODIFY, CHANGE_ADD, CHANGE_DELETE = 0, 1, 2


class ContainerFS(NamedTuple):
    """A container's filesystem as fds: its root and, for a stopped one, its mounts by target."""

    root: int
    mounts: tuple[tuple[str, int], ...]   # (target in the container, fd of its source), longest first
    name: str                             # the container as the client named it (for messages)
    devices: frozenset[int] = frozenset()  # devices of its mounts a directory walk may enter
    any_device: bool = False              # the host's side of ``skiff cp``: a walk enters every mount


class PathStat(NamedTuple):
    name: str
    size: int
    mode: int           # Go's FileMode
    mtime: str
    link_target: str

    def document(self) -> dict[str, Any]:
        """``X-Docker-Container-Path-Stat``'s JSON (docker/api/types.ContainerPathStat)."""
        return {"name": self.name, "size": self.size, "mode": self.mode, "mtime": self.mtime,
                "linkTarget": self.link_target}


# --- the container's root -----------------------------------------------------------------------


@contextlib.contextmanager
def opened(container: Container, name: str, writable: bool = False) -> Iterator[ContainerFS]:
    """The container's filesystem for one copy; every fd is closed at the end.

    A copy into a stopped container holds the container's lock: a ``start`` meanwhile waits, so
    its overlay and this one never share the upper dir at the same time.
    """
    from skiff.errors import ContainerConflict
    from skiff.store import FileLock

    with contextlib.ExitStack() as stack:
        root = _running_root(container)
        mounts: list[tuple[str, int]] = []
        if root is None:
            if writable:
                stack.enter_context(FileLock(container.paths.containers / f".{container.id}.lock"))
                if container.reload() and not container.state.can_start and not container.state.held:
                    raise ContainerConflict(f"container {name} is starting: try again")
                root = _running_root(container)  # started before the lock was ours
        if root is None:
            root = _mount_stopped(container, writable)
            stack.callback(os.close, root)
            for target, source in _mount_sources(container):
                with contextlib.suppress(OSError):
                    fd = os.open(source, os.O_PATH | os.O_CLOEXEC)
                    stack.callback(os.close, fd)
                    mounts.append((target, fd))
        else:
            stack.callback(os.close, root)
        mounts.sort(key=lambda item: len(item[0]), reverse=True)
        yield ContainerFS(root, tuple(mounts), name, _mount_devices(container, root))


def _mount_devices(container: Container, root: int) -> frozenset[int]:
    """The devices of the container's own mounts as a running one sees them (a copy of ``/``
    enters its volumes, never its /proc or /sys)."""
    devices = set()
    for target, _ in _mount_sources(container):
        with contextlib.suppress(SkiffError, OSError):
            fd = linux.openat2(root, target.lstrip("/") or ".", os.O_PATH, resolve=IN_ROOT)
            devices.add(os.fstat(fd).st_dev)
            os.close(fd)
    return frozenset(devices)


def _running_root(container: Container) -> int | None:
    """The root of the container's init, with its mounts; None when it does not run.

    The fd is kept only if it is the container's own overlay root (the same inode as its
    ``rootfs``): a pid that ended and was reused by a host process is never trusted.
    """
    pid = container.state.pid if container.state.running else 0
    if not pid:
        return None
    try:
        fd = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        mine, merged = os.fstat(fd), os.stat(container.bundle / "rootfs")
    except OSError:
        os.close(fd)
        return None
    if (mine.st_dev, mine.st_ino) != (merged.st_dev, merged.st_ino):
        os.close(fd)
        return None
    return fd


def _mount_stopped(container: Container, writable: bool) -> int:
    """A detached overlay of the container's layers and its upper dir (read-only unless writing:
    then the upper dir takes the writes, as at run time)."""
    from skiff.image.store import ImageStore

    image = ImageStore(container.paths).get(str(container.data.get("Image", "")))
    upper = container.bundle / "upper"
    upper.mkdir(parents=True, exist_ok=True)
    lowers = [str(d) for d in reversed(image.layer_dirs)]
    fs_fd = linux.fsopen("overlay")
    try:
        if writable:
            work = container.bundle / "work"
            work.mkdir(parents=True, exist_ok=True)
            linux.fsconfig_string(fs_fd, "upperdir", str(upper))
            linux.fsconfig_string(fs_fd, "workdir", str(work))
        else:
            lowers.insert(0, str(upper))
        for lower in lowers:  # one at a time: no page-size limit on the option string
            linux.fsconfig_string(fs_fd, "lowerdir+", lower)
        linux.fsconfig_string(fs_fd, "index", "off")
        linux.fsconfig_create(fs_fd)
        return linux.fsmount(fs_fd, 0 if writable else linux.MOUNT_ATTR_RDONLY)
    finally:
        os.close(fs_fd)


def _mount_sources(container: Container) -> list[tuple[str, str]]:
    """(target, host source) of the container's volumes and bind mounts, from its record."""
    found = []
    for mount in container.data.get("Mounts") or []:
        target, source = mount.get("Destination"), mount.get("Source")
        if isinstance(target, str) and isinstance(source, str) and target.startswith("/") and source:
            found.append((posixpath.normpath(target), source))
    return found


# --- resolving paths ----------------------------------------------------------------------------


def clean(path: str) -> str:
    """An absolute, lexically clean container path (``..`` cannot rise above ``/``)."""
    return posixpath.normpath("/" + path).replace("//", "/")


def wants_directory(path: str) -> bool:
    """Docker: a path ending in ``/`` or ``/.`` names the directory (a final link is followed)."""
    return path.endswith("/") or path.endswith("/.") or path in (".", "")


def _base(fs: ContainerFS, path: str) -> tuple[int, str]:
    """The fd a clean path resolves from (the root, or the source of the mount it lies under)
    and the path relative to it."""
    for target, fd in fs.mounts:
        if path == target or path.startswith(target + "/"):
            return fd, path[len(target):].lstrip("/") or "."
    return fs.root, path.lstrip("/") or "."


def open_in_root(fs: ContainerFS, path: str, flags: int = os.O_PATH) -> int:
    """An fd of ``path`` (links followed, each inside the root); ContainerPathNotFound if none."""
    base, rel = _base(fs, clean(path))
    try:
        return linux.openat2(base, rel, flags, resolve=IN_ROOT)
    except SyscallError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            raise ContainerPathNotFound(path, fs.name) from None
        raise


def open_parent(fs: ContainerFS, path: str) -> tuple[int, str]:
    """The directory holding ``path`` (links on the way followed inside the root) and the final
    name, which is not followed; ``"."`` for the root itself."""
    whole = clean(path)
    # A stopped container's mount target may not exist in its overlay yet (Docker's daemon makes
    # it when it mounts): the mount's source itself stands for it.
    if wants_directory(path) or whole == "/" or any(whole == target for target, _ in fs.mounts):
        return open_in_root(fs, path, os.O_PATH | os.O_DIRECTORY), "."
    parent, name = posixpath.split(whole)
    return open_in_root(fs, parent, os.O_PATH | os.O_DIRECTORY), name


def follow_in_scope(fs: ContainerFS, path: str) -> str:
    """The path a link resolves to inside the root, as Docker's FollowSymlinkInScope: each link
    read through a parent fd, absolute targets restarting at the container's ``/``."""
    done: list[str] = []
    todo = [part for part in clean(path).split("/") if part]
    links = 0
    while todo:
        part = todo.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        current = "/" + "/".join([*done, part])
        try:
            parent, name = open_parent(fs, current)
        except ContainerPathNotFound:
            done.append(part)
            continue
        try:
            target = os.readlink(name, dir_fd=parent)
        except OSError:
            done.append(part)  # not a link (or gone): kept as written
            continue
        finally:
            os.close(parent)
        links += 1
        if links > MAX_LINKS:
            raise ArchiveRefused(f"too many links in {path}")
        if target.startswith("/"):
            done = []
        todo = [p for p in target.split("/") if p and p != "."] + todo
    return "/" + "/".join(done)


# --- stat, and reading a path as a tar ----------------------------------------------------------


def go_mode(st: os.stat_result) -> int:
    """Go's os.FileMode for a stat (permission bits and Go's type flags)."""
    mode = st.st_mode & 0o777
    kind = stat.S_IFMT(st.st_mode)
    mode |= {stat.S_IFDIR: GO_DIR, stat.S_IFLNK: GO_SYMLINK, stat.S_IFIFO: GO_PIPE, stat.S_IFSOCK: GO_SOCKET,
             stat.S_IFBLK: GO_DEVICE, stat.S_IFCHR: GO_DEVICE | GO_CHARDEV}.get(kind, 0)
    for bit, flag in ((stat.S_ISUID, GO_SETUID), (stat.S_ISGID, GO_SETGID), (stat.S_ISVTX, GO_STICKY)):
        if st.st_mode & bit:
            mode |= flag
    return mode


def _rfc3339(seconds: float, nanos: int) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(seconds))) + (
        f".{nanos % 1_000_000_000:09d}".rstrip("0").rstrip(".") + "Z")


def path_stat(fs: ContainerFS, path: str) -> PathStat:
    """What ``HEAD``/``GET .../archive`` report of ``path`` (the final link itself, not its target)."""
    parent, name = open_parent(fs, path)
    try:
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except OSError:
        raise ContainerPathNotFound(path, fs.name) from None
    finally:
        os.close(parent)
    link = follow_in_scope(fs, path) if stat.S_ISLNK(st.st_mode) else ""
    base = posixpath.basename(clean(path)) or "/"
    return PathStat(base, st.st_size, go_mode(st), _rfc3339(st.st_mtime, st.st_mtime_ns), link)


def tar_name(path: str) -> str:
    """The top entry's name, as Docker's TarResourceRebase: the path's last element (``.`` for
    ``dir/.``: ``./`` then ``./a``, which the client renames to its destination)."""
    if path.endswith("/."):
        return "."
    return posixpath.basename(clean(path)) or "."


def stream_tar(write: Any) -> Iterator[bytes]:
    """The bytes ``write(out)`` puts into a tar as they come: written by a thread into a pipe, so
    a large copy is streamed, never held in memory. An error ends the stream early."""
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    failure: list[BaseException] = []

    def writer() -> None:
        with open(write_fd, "wb", buffering=CHUNK) as out:
            try:
                write(out)
            except BrokenPipeError:
                pass
            except BaseException as exc:  # reported to the reader: the stream stops short
                failure.append(exc)

    thread = threading.Thread(target=writer, name="skiff-tar", daemon=True)
    thread.start()
    with open(read_fd, "rb", buffering=0) as source:
        try:
            while chunk := source.read(CHUNK):
                yield chunk
        finally:
            source.close()
            thread.join()
    if failure:
        raise failure[0]


def write_path(fs: ContainerFS, path: str, out: IO[bytes], top: str | None = None) -> None:
    """The tar of ``path`` (a file, a link or a directory with everything below it); an empty
    one when the path went away since its stat (as an entry that goes during a walk is skipped).
    ``top``: the name of its top entry, when ``skiff cp`` renames it (Docker's RebaseArchiveEntries)."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        try:
            parent, name = open_parent(fs, path)
        except ContainerPathNotFound:
            return
        try:
            _add(tar, parent, name, top or tar_name(path), _crossable(fs, clean(path)))
        finally:
            os.close(parent)


def _crossable(fs: ContainerFS, top: str) -> frozenset[int] | None:
    """Devices a walk may enter: the root's, and the container's mounts' (not /proc, /sys);
    None: every one."""
    if fs.any_device:
        return None
    devices = {os.fstat(fs.root).st_dev, *fs.devices}
    devices.update(os.fstat(fd).st_dev for _, fd in fs.mounts)
    with contextlib.suppress(SkiffError, OSError):
        fd = open_in_root(fs, top)
        devices.add(os.fstat(fd).st_dev)
        os.close(fd)
    return frozenset(devices)


def _add(tar: tarfile.TarFile, dir_fd: int, name: str, arcname: str, devices: frozenset[int] | None) -> None:
    """One entry, opened relative to its directory's fd and never through a link; below a
    directory, its entries in name order. An entry gone meanwhile is skipped."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    info = tarfile.TarInfo(arcname)
    info.mode, info.uid, info.gid, info.mtime = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime
    if stat.S_ISDIR(st.st_mode):
        _add_directory(tar, dir_fd, name, info, devices)
    elif stat.S_ISREG(st.st_mode):
        _add_file(tar, dir_fd, name, info)
    elif stat.S_ISLNK(st.st_mode):
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(name, dir_fd=dir_fd)
        tar.addfile(info)
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISFIFO(st.st_mode):
        info.type = (tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else
                     tarfile.BLKTYPE if stat.S_ISBLK(st.st_mode) else tarfile.FIFOTYPE)
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        tar.addfile(info)
    # sockets: not in a tar, as Docker's archiver


def _add_directory(tar: tarfile.TarFile, dir_fd: int, name: str, info: tarfile.TarInfo,
                   devices: frozenset[int] | None) -> None:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
            return  # gone, or swapped for a link since the stat: never followed
        raise
    try:
        st = os.fstat(fd)
        info.type = tarfile.DIRTYPE
        if info.name:  # "" is export's top: its entries come without a prefix
            tar.addfile(info)
        if devices is not None and st.st_dev not in devices:
            return  # a mount the container's filesystem does not include (its /proc, /sys)
        for entry in sorted(os.listdir(fd)):
            child = f"{info.name}/{entry}" if info.name else entry
            _add(tar, fd, entry, child, devices)
    finally:
        os.close(fd)


def _add_file(tar: tarfile.TarFile, dir_fd: int, name: str, info: tarfile.TarInfo) -> None:
    try:  # O_NONBLOCK: an entry swapped for a FIFO must not hang the copy
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ELOOP):
            return
        raise
    with open(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return  # swapped since the stat
        info.size = st.st_size
        tar.addfile(info, f)


def export(container: Container, out: IO[bytes]) -> None:
    """``export``: the container's filesystem (its overlay, no volumes) as a tar, names relative."""
    fd = _export_root(container)
    try:
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            _add(tar, fd, ".", "", frozenset({os.fstat(fd).st_dev}))
    finally:
        os.close(fd)


def _export_root(container: Container) -> int:
    from skiff.storage.overlay import is_mountpoint

    merged = container.bundle / "rootfs"
    if container.state.running and is_mountpoint(merged):
        return os.open(merged, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    return _mount_stopped(container, writable=False)


# --- writing a tar into a path ------------------------------------------------------------------


def check_writable(container: Container, path: str) -> None:
    """Docker's containerExtractToDir: a copy into a volume or bind mount needs a writable one;
    anywhere else, a root filesystem that is not read-only (``--read-only``)."""
    wanted = clean(path)
    for mount in sorted(container.data.get("Mounts") or [], key=lambda m: -len(str(m.get("Destination") or ""))):
        target = mount.get("Destination")
        if not isinstance(target, str) or not target.startswith("/"):
            continue
        target = clean(target)
        if wanted == target or wanted.startswith(target.rstrip("/") + "/"):
            if not mount.get("RW", True):
                raise ArchiveRefused("mounted volume is marked read-only")
            return
    if (container.data.get("HostConfig") or {}).get("ReadonlyRootfs"):
        raise ArchiveRefused("container rootfs is marked read-only")


def copy_owner(fs: ContainerFS, user: str) -> tuple[int, int] | None:
    """Docker's tarCopyOptions (``cp -a``, ``copyUIDGID``): the container's user, looked up in
    its own passwd and group files; no user: None (the tar's owners are kept)."""
    from pathlib import Path

    from skiff.engine.users import resolve_user

    if not user:
        return None
    found = resolve_user(Path(f"/proc/self/fd/{fs.root}"), user)
    return found.uid, found.gid


class Extraction(NamedTuple):
    no_overwrite_dir_non_dir: bool
    owner: tuple[int, int] | None   # every entry's uid:gid (copyUIDGID with a container user)


def extract(fs: ContainerFS, path: str, source: IO[bytes], how: Extraction) -> None:
    """Unpack the tar ``source`` into the directory ``path`` of the container.

    The directory is resolved inside the root; below it no entry may be absolute, hold ``..``
    or be reached through a link (the whole copy stops at the first such entry: a tar that
    tries is hostile, as Docker's "breakout" check).
    """
    dest = open_in_root(fs, path, os.O_PATH)
    if not stat.S_ISDIR(os.fstat(dest).st_mode):
        os.close(dest)
        raise ArchiveRefused("extraction point is not a directory")
    try:
        with tarfile.open(fileobj=source, mode="r|*") as tar:
            for member in tar:
                _extract_member(tar, dest, member, how)
    except tarfile.TarError as exc:
        raise ArchiveRefused(f"invalid tar stream: {exc}") from None
    finally:
        os.close(dest)


def member_parts(name: str) -> list[str]:
    """A tar entry's path as names below the extraction point; refused if absolute or with ``..``."""
    if name.startswith("/"):
        raise ArchiveRefused(f"refusing the absolute path {name!r} in the archive")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ArchiveRefused(f"refusing {name!r} in the archive: it would leave the destination (..)")
    return parts


def _open_dir_beneath(dest: int, parts: list[str], name: str) -> int:
    if not parts:
        return os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dest)
    try:
        return linux.openat2(dest, "/".join(parts), os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW,
                             resolve=BENEATH_NO_LINKS)
    except SyscallError as exc:
        if exc.errno in (errno.ELOOP, errno.EXDEV, errno.ENOTDIR):
            raise ArchiveRefused(f"refusing {name!r} in the archive: its directory is reached through a link")
        if exc.errno == errno.ENOENT:
            return _make_parents(dest, parts, name)
        raise


def _make_parents(dest: int, parts: list[str], name: str) -> int:
    """Docker's Untar: an entry whose directories the archive lacks gets them (0755), each made
    and opened relative to the one above, never through a link."""
    current = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dest)
    try:
        for part in parts:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o755, dir_fd=current)
            try:
                child = os.open(part, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=current)
            except OSError:
                raise ArchiveRefused(f"refusing {name!r} in the archive: its directory is reached through "
                                     f"a link") from None
            os.close(current)
            current = child
        return current
    except BaseException:
        os.close(current)
        raise


def _extract_member(tar: tarfile.TarFile, dest: int, member: tarfile.TarInfo, how: Extraction) -> None:
    parts = member_parts(member.name)
    if not parts:
        return  # "./": the destination itself
    parent = _open_dir_beneath(dest, parts[:-1], member.name)
    try:
        name = parts[-1]
        if not _make_room(parent, name, member, how):
            return  # an existing directory, kept (its mode and owner are set below)
        if member.isdir():
            os.mkdir(name, 0o700, dir_fd=parent)
        elif member.isreg():
            _write_file(tar, parent, name, member)
        elif member.issym():
            os.symlink(member.linkname, name, dir_fd=parent)  # its text only: never followed here
        elif member.islnk():
            _hard_link(dest, parent, name, member)
        elif member.ischr() or member.isblk() or member.isfifo():
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK if member.isblk() else stat.S_IFIFO
            os.mknod(name, kind | 0o600, os.makedev(member.devmajor, member.devminor), dir_fd=parent)
        else:
            return
        _set_metadata(parent, name, member, how)
    finally:
        os.close(parent)


def _make_room(parent: int, name: str, member: tarfile.TarInfo, how: Extraction) -> bool:
    """Remove what is in the way of the entry (never following it); False: a directory that
    stays (a directory entry over a directory)."""
    try:
        existing = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        return True
    is_dir = stat.S_ISDIR(existing.st_mode)
    if is_dir and member.isdir():
        _set_metadata(parent, name, member, how)
        return False
    if how.no_overwrite_dir_non_dir and is_dir != member.isdir():
        if is_dir:
            raise ArchiveRefused(f"cannot overwrite directory {name!r} with non-directory {member.name!r}")
        raise ArchiveRefused(f"cannot overwrite non-directory {name!r} with directory {member.name!r}")
    if is_dir:
        os.rmdir(name, dir_fd=parent)  # a non-empty one is an error, as for tar
    else:
        os.unlink(name, dir_fd=parent)
    return True


def _write_file(tar: tarfile.TarFile, parent: int, name: str, member: tarfile.TarInfo) -> None:
    data = tar.extractfile(member)
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=parent)
    with open(fd, "wb") as out:
        while data is not None and (chunk := data.read(CHUNK)):
            out.write(chunk)


def _hard_link(dest: int, parent: int, name: str, member: tarfile.TarInfo) -> None:
    target = member_parts(member.linkname)
    source = _open_dir_beneath(dest, target[:-1], member.name)
    try:
        os.link(target[-1], name, src_dir_fd=source, dst_dir_fd=parent, follow_symlinks=False)
    finally:
        os.close(source)


def _set_metadata(parent: int, name: str, member: tarfile.TarInfo, how: Extraction) -> None:
    """Owner, mode and times of the entry just made, set on the entry itself (no link followed)."""
    uid, gid = how.owner if how.owner is not None else (member.uid, member.gid)
    os.chown(name, uid, gid, dir_fd=parent, follow_symlinks=False)
    if member.issym():
        return  # a link's own mode means nothing on Linux; its times are not worth a syscall
    fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    try:
        proc = f"/proc/self/fd/{fd}"   # the entry the fd holds, whatever is at its name now
        os.chmod(proc, member.mode & 0o7777)
        os.utime(proc, (member.mtime, member.mtime))
    finally:
        os.close(fd)


# --- changes ------------------------------------------------------------------------------------


# What the runtime makes in the upper dir for every container (Docker keeps them in its "-init"
# layer, below the container's, so its diff never lists them): mount targets and /etc's files.
INIT_PATHS = frozenset({"/.dockerenv", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/etc/mtab"})
INIT_TREES = ("/dev", "/proc", "/sys")


def changes(container: Container) -> list[dict[str, Any]]:
    """Docker's ``diff``: [{"Path", "Kind"}] from the upper dir against the image's layers, sorted
    by path (Docker's own order varies from call to call): whiteouts are deletions, an entry no
    layer has is added, one a layer has is modified; a directory that is one below too is listed
    as modified when something inside it changed (or its mode did)."""
    from skiff.image.store import ImageStore

    image = ImageStore(container.paths).get(str(container.data.get("Image", "")))
    upper = container.bundle / "upper"
    if not upper.is_dir():
        return []
    layers = [os.open(d, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC) for d in reversed(image.layer_dirs)]
    top = os.open(upper, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        found: dict[str, int] = {}
        for path, st in _walk(top, ""):
            if path in INIT_PATHS or any(path == t or path.startswith(t + "/") for t in INIT_TREES):
                continue
            kind = _change_kind(path, st, layers)
            if kind is None:
                continue
            found[path] = kind
            parent = posixpath.dirname(path)
            while parent != "/" and parent not in found:  # as Docker: the directories it changed
                found[parent] = CHANGE_MODIFY
                parent = posixpath.dirname(parent)
        return [{"Path": path, "Kind": found[path]} for path in sorted(found)]
    finally:
        os.close(top)
        for fd in layers:
            os.close(fd)


def _walk(dir_fd: int, base: str) -> Iterator[tuple[str, os.stat_result]]:
    """Every entry below ``dir_fd``, depth first in name order, opened by fd and never through a link."""
    for entry in sorted(os.listdir(dir_fd)):
        try:
            st = os.stat(entry, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        path = f"{base}/{entry}"
        yield path, st
        if stat.S_ISDIR(st.st_mode):
            try:
                fd = os.open(entry, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
            except OSError:
                continue  # gone or swapped for a link meanwhile
            try:
                yield from _walk(fd, path)
            finally:
                os.close(fd)


def _change_kind(path: str, st: os.stat_result, layers: list[int]) -> int | None:
    """The kind of change an upper-dir entry is; None for a directory only copied up."""
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
        return CHANGE_DELETE   # overlayfs' whiteout
    below = _lower_stat(layers, path)
    if below is None:
        return CHANGE_ADD
    if stat.S_ISDIR(below.st_mode) and stat.S_ISDIR(st.st_mode) and below.st_mode == st.st_mode:
        return None  # listed only if something inside it changed (the runtime's mount targets do not count)
    return CHANGE_MODIFY


def _lower_stat(layers: list[int], path: str) -> os.stat_result | None:
    """The path in the topmost layer that has it (links followed inside that layer), else None."""
    for layer in layers:
        try:
            fd = linux.openat2(layer, path.lstrip("/"), os.O_PATH, resolve=IN_ROOT)
        except SyscallError:
            continue
        try:
            return os.fstat(fd)
        finally:
            os.close(fd)
    return None
