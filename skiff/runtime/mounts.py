"""Mounts inside the container's root, done so that nothing can redirect them to the host.

Every destination is resolved with openat2(RESOLVE_IN_ROOT) against an fd of the
rootfs, missing components are created relative to fds of their (already
resolved) parents, and the mount is attached to the resulting fd: through
``/proc/self/fd/N`` for new filesystems, with move_mount for bind mounts. A
symlink swapped in between the check and the mount cannot point it elsewhere.
These functions run in the container's init, in its own mount namespace; except
``bind_source`` and ``clone_tree``, which the runtime also uses to prepare idmapped
binds before the init exists (skiff.runtime.idmap): the init only attaches those.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat

from skiff import linux, mountinfo  # mountinfo: read in the init, imported before the fork
from skiff.errors import BundleError, PathEscape, SyscallError

TYPE_CHECKING = False
if TYPE_CHECKING:  # not imported at run time: each skiff-oci command is a process of its own
    from typing import Any

_MAX_SYMLINKS = 40

# mount(8) option -> (flags to set, flags to clear)
_FLAG_OPTIONS: dict[str, tuple[int, int]] = {
    "ro": (linux.MS_RDONLY, 0), "rw": (0, linux.MS_RDONLY),
    "nosuid": (linux.MS_NOSUID, 0), "suid": (0, linux.MS_NOSUID),
    "nodev": (linux.MS_NODEV, 0), "dev": (0, linux.MS_NODEV),
    "noexec": (linux.MS_NOEXEC, 0), "exec": (0, linux.MS_NOEXEC),
    "sync": (linux.MS_SYNCHRONOUS, 0), "async": (0, linux.MS_SYNCHRONOUS),
    "dirsync": (linux.MS_DIRSYNC, 0), "mand": (linux.MS_MANDLOCK, 0), "nomand": (0, linux.MS_MANDLOCK),
    "noatime": (linux.MS_NOATIME, 0), "atime": (0, linux.MS_NOATIME),
    "nodiratime": (linux.MS_NODIRATIME, 0), "diratime": (0, linux.MS_NODIRATIME),
    "relatime": (linux.MS_RELATIME, 0), "norelatime": (0, linux.MS_RELATIME),
    "strictatime": (linux.MS_STRICTATIME, 0), "nostrictatime": (0, linux.MS_STRICTATIME),
    "lazytime": (linux.MS_LAZYTIME, 0), "nolazytime": (0, linux.MS_LAZYTIME),
    "nosymfollow": (linux.MS_NOSYMFOLLOW, 0), "defaults": (0, 0),
}
PROPAGATION: dict[str, int] = {
    "private": linux.MS_PRIVATE, "rprivate": linux.MS_PRIVATE | linux.MS_REC,
    "slave": linux.MS_SLAVE, "rslave": linux.MS_SLAVE | linux.MS_REC,
    "shared": linux.MS_SHARED, "rshared": linux.MS_SHARED | linux.MS_REC,
    "unbindable": linux.MS_UNBINDABLE, "runbindable": linux.MS_UNBINDABLE | linux.MS_REC,
}
# Idmapped binds (runtime-spec 1.2): handled by skiff.runtime.idmap, never passed to mount(2).
IDMAP_OPTIONS = ("idmap", "ridmap")
# Key of a bind entry whose source the runtime already cloned and idmapped: the detached tree's fd,
# inherited by the init across fork (see skiff.runtime.idmap). In-process only, never written out.
PREPARED_TREE = "skiff.preparedTreeFd"
# Key of a bind entry whose source the runtime opened (O_PATH) in the init's mount namespace,
# as host root: in a user namespace the container's root may not be able to reach the source
# (runc opens its mount sources the same way). In-process only, received over the init's socket.
SOURCE_FD = "skiff.sourceFd"
_ATTR_OF_FLAG = {linux.MS_RDONLY: linux.MOUNT_ATTR_RDONLY, linux.MS_NOSUID: linux.MOUNT_ATTR_NOSUID,
                 linux.MS_NODEV: linux.MOUNT_ATTR_NODEV, linux.MS_NOEXEC: linux.MOUNT_ATTR_NOEXEC}


def fd_path(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


# --- resolving paths inside the root ---------------------------------------


def open_in_root(root_fd: int, path: str) -> int:
    """An O_PATH fd of ``path`` resolved as if ``root_fd`` were ``/`` (symlinks included)."""
    return linux.openat2(root_fd, path, os.O_PATH, resolve=linux.RESOLVE_IN_ROOT)


def ensure_in_root(root_fd: int, path: str, directory: bool = True, mode: int = 0o755) -> int:
    """Like ``open_in_root``, creating what is missing (the last component as a dir or a file).

    A dangling symlink is followed the way the kernel would (inside the root) and
    its target created, as runc's securejoin does.
    """
    parts = _components(path)
    for _ in range(_MAX_SYMLINKS):
        try:
            return open_in_root(root_fd, "/".join(parts) or ".")
        except SyscallError as exc:
            if exc.errno != errno.ENOENT:
                raise
        parts = _create_missing(root_fd, parts, directory, mode)
    raise PathEscape(f"too many levels of symbolic links resolving {path} in the container")


def _components(path: str) -> list[str]:
    return [p for p in posixpath.normpath("/" + path).split("/") if p]


def _create_missing(root_fd: int, parts: list[str], directory: bool, mode: int) -> list[str]:
    """Create the first missing component; return the path to resolve next."""
    parent_fd = open_in_root(root_fd, ".")
    try:
        for i, name in enumerate(parts):
            try:
                fd = open_in_root(root_fd, "/".join(parts[: i + 1]))
            except SyscallError as exc:
                if exc.errno != errno.ENOENT:
                    raise
            else:
                os.close(parent_fd)
                parent_fd = fd
                continue
            last = i == len(parts) - 1
            try:
                if last and not directory:
                    # 0755 as runc's mount points (Docker's users see them in a bind-mounted dir)
                    os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_WRONLY | os.O_CLOEXEC,
                                     0o755, dir_fd=parent_fd))
                else:
                    os.mkdir(name, mode, dir_fd=parent_fd)
                return parts
            except FileExistsError:
                # A dangling symlink: continue from its target, resolved relative to its directory.
                target = os.readlink(name, dir_fd=parent_fd)
                base = "/" if target.startswith("/") else "/" + "/".join(parts[:i])
                return _components(posixpath.join(base, target)) + parts[i + 1:]
        return parts
    except OSError as exc:
        raise SyscallError("mkdir", exc.errno or errno.EIO, "/" + "/".join(parts)) from None
    finally:
        os.close(parent_fd)


# --- options ----------------------------------------------------------------


def parse_options(options: list[str]) -> tuple[int, int, str, bool]:
    """-> (flags, propagation flags, filesystem data, recursive read-only)."""
    flags, propagation, data, rro = 0, 0, [], False
    for option in options:
        if option in _FLAG_OPTIONS:
            set_, clear = _FLAG_OPTIONS[option]
            flags = (flags | set_) & ~clear
        elif option in PROPAGATION:
            propagation = PROPAGATION[option]
        elif option == "rro":
            flags |= linux.MS_RDONLY
            rro = True
        elif option in ("bind", "rbind") or option in IDMAP_OPTIONS:
            pass
        else:
            data.append(option)
    return flags, propagation, ",".join(data), rro


# --- the mounts of config.json ---------------------------------------------


# Files under /proc a bind mount may replace (lxcfs's, as runc allows): nothing else under /proc.
PROC_BIND_ALLOWED = frozenset({
    "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps", "/proc/uptime",
    "/proc/loadavg", "/proc/slabinfo", "/proc/net/dev",
})


def check_proc_destination(entry: dict[str, Any]) -> None:
    """Refuse a mount on or under /proc that is not procfs itself (or an lxcfs file).

    A bind over /proc, or over /proc/sys, /proc/self... gives the container
    whatever the source holds where the kernel's own files should be (runc refuses
    them the same way).
    """
    destination = posixpath.normpath("/" + entry["destination"].lstrip("/"))
    if destination != "/proc" and not destination.startswith("/proc/"):
        return
    if destination == "/proc" and entry.get("type") == "proc" and not is_bind(entry):
        return
    if destination in PROC_BIND_ALLOWED and is_bind(entry):
        return
    raise BundleError(f"mount on {destination} refused: only a proc filesystem may be mounted on /proc, "
                      f"and only {', '.join(sorted(PROC_BIND_ALLOWED))} may be bind-mounted under it")


def _open_proc_destination(root_fd: int, destination: str) -> int:
    """/proc in the root, which must be a plain directory: a symlink could aim it anywhere (CVE-2023-27561)."""
    try:
        return linux.openat2(root_fd, destination, os.O_PATH | os.O_DIRECTORY,
                             resolve=linux.RESOLVE_IN_ROOT | linux.RESOLVE_NO_SYMLINKS)
    except SyscallError as exc:
        if exc.errno == errno.ENOENT:
            return ensure_in_root(root_fd, destination)
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise BundleError(f"cannot mount proc on {destination}: it is a symbolic link or not a directory "
                              "in the image", hint="/proc must be a plain directory in the root "
                              "filesystem") from None
        raise


def _check_resolved_target(root_fd: int, target_fd: int, destination: str) -> None:
    """A destination that a symlink in the image sends into /proc is refused like /proc itself."""
    root = os.readlink(fd_path(root_fd)).rstrip("/")
    resolved = os.readlink(fd_path(target_fd))
    if not resolved.startswith(root + "/"):
        return
    inside = resolved[len(root):]
    if (inside == "/proc" or inside.startswith("/proc/")) and inside != posixpath.normpath("/" + destination.lstrip("/")):
        raise BundleError(f"mount on {destination} refused: it resolves to {inside} in the container "
                          "(through a symbolic link in the image)")


def mount_entry(root_fd: int, entry: dict[str, Any], bundle: str) -> None:
    """Perform one entry of config.json's ``mounts`` inside the root."""
    options = list(entry.get("options") or [])
    kind = entry.get("type") or ""
    destination = entry["destination"]
    check_proc_destination(entry)
    if is_bind(entry):
        _bind(root_fd, entry, options, bundle)
    elif kind == "cgroup":
        _cgroup(root_fd, destination, options)
    else:
        if not kind:
            raise BundleError(f"mount {destination}: no type given")
        flags, propagation, data, _ = parse_options(options)
        if kind == "tmpfs":
            data = _tmpfs_data(root_fd, destination, data)
        target_fd = (_open_proc_destination(root_fd, destination) if kind == "proc"
                     else ensure_in_root(root_fd, destination))
        try:
            _check_resolved_target(root_fd, target_fd, destination)
            _mount_new(entry.get("source") or kind, target_fd, kind, flags, data)
        except SyscallError as exc:
            raise SyscallError(f"mount {kind}", exc.errno, destination) from None
        finally:
            os.close(target_fd)
        # New mounts under the private root are private already; only a requested change is applied.
        if propagation:
            mounted_fd = open_in_root(root_fd, destination)
            try:
                _set_propagation(mounted_fd, destination, propagation)
            finally:
                os.close(mounted_fd)


def _tmpfs_data(root_fd: int, destination: str, data: str) -> str:
    """A tmpfs without ``mode=`` takes the mode of the directory it covers, as runc does
    (the kernel's default, 1777, would open e.g. a 0700 directory to everyone)."""
    if any(option.startswith("mode=") for option in data.split(",")):
        return data
    try:
        fd = open_in_root(root_fd, destination)
    except SyscallError:
        return data  # missing: made 0755 and mounted with the kernel's default, as runc does
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    if not stat.S_ISDIR(st.st_mode):
        return data
    return ",".join(filter(None, (data, f"mode={stat.S_IMODE(st.st_mode):o}")))


def _mount_new(source: str, target_fd: int, kind: str, flags: int, data: str) -> None:
    try:
        linux.mount(source, fd_path(target_fd), kind, flags, data or None)
    except SyscallError as exc:
        # In a user namespace devpts refuses a gid= that is not mapped (runc drops it the same way).
        if not (kind == "devpts" and exc.errno == errno.EINVAL and "gid=" in data):
            raise
        data = ",".join(o for o in data.split(",") if not o.startswith("gid="))
        linux.mount(source, fd_path(target_fd), kind, flags, data or None)


def is_bind(entry: dict[str, Any]) -> bool:
    """Whether a ``mounts`` entry is a bind mount (type "bind", or a bind/rbind option, as runc reads it)."""
    options = entry.get("options") or []
    return entry.get("type") == "bind" or "bind" in options or "rbind" in options


def wants_idmap(entry: dict[str, Any]) -> bool:
    """Whether a ``mounts`` entry asks for an idmapped mount."""
    options = entry.get("options") or []
    return any(o in IDMAP_OPTIONS for o in options) or bool(entry.get("uidMappings") or entry.get("gidMappings"))


def source_fd_entries(config: dict[str, Any]) -> list[int]:
    """Indexes of the bind entries whose source the runtime opens for an init in a user namespace
    (all but the idmapped ones, which it prepares whole), at most one message's worth of fds."""
    entries = config.get("mounts") or []
    return [i for i, entry in enumerate(entries) if is_bind(entry) and not wants_idmap(entry)][:253]


def _source_path(entry: dict[str, Any], bundle: str) -> str:
    """The bind entry's source, a relative one taken under the bundle (as runc does)."""
    source = entry.get("source") or ""
    if not source:
        raise BundleError(f"bind mount {entry['destination']}: no source given")
    return source if source.startswith("/") else os.path.join(bundle, source)


def open_source_in(root_fd: int, entry: dict[str, Any], bundle: str) -> int:
    """An O_PATH fd of the entry's source, resolved under ``root_fd`` (the init's root, through
    /proc/PID/root): its mount then belongs to the init's mount namespace, where it can be bound."""
    source = _source_path(entry, bundle)
    try:
        return linux.openat2(root_fd, source, os.O_PATH, resolve=linux.RESOLVE_IN_ROOT)
    except SyscallError as exc:
        raise SyscallError("stat", exc.errno, source, hint=f"source of the bind mount on {entry['destination']}") from None


def bind_source(entry: dict[str, Any], bundle: str) -> str:
    """The entry's source as an absolute path (relative ones are under the bundle); it must exist."""
    destination = entry["destination"]
    source = _source_path(entry, bundle)
    try:
        os.stat(source)
    except OSError as exc:
        raise SyscallError("stat", exc.errno or errno.ENOENT, source,
                           hint=f"source of the bind mount on {destination}") from None
    return source


def clone_tree(source: str, recursive: bool) -> int:
    """A detached copy of the mount at ``source`` (with its submounts if ``recursive``), as an fd."""
    return linux.open_tree(linux.AT_FDCWD, source, linux.OPEN_TREE_CLONE | linux.OPEN_TREE_CLOEXEC
                           | (linux.AT_RECURSIVE if recursive else 0))


def _bind(root_fd: int, entry: dict[str, Any], options: list[str], bundle: str) -> None:
    destination = entry["destination"]
    recursive = "rbind" in options
    flags, propagation, _, rro = parse_options(options)
    tree_fd = entry.pop(PREPARED_TREE, None)
    source_fd = entry.pop(SOURCE_FD, None)
    if tree_fd is not None and source_fd is not None:
        os.close(source_fd)  # never both (idmapped entries get no source fd); nothing may leak
    elif tree_fd is None:
        if wants_idmap(entry):
            # Only the runtime, outside any user namespace, can idmap: never mount it unmapped instead.
            raise BundleError(f"bind mount {destination}: its idmapping was not prepared by the runtime")
        if source_fd is None:
            tree_fd = clone_tree(bind_source(entry, bundle), recursive)
        else:
            try:
                tree_fd = linux.open_tree(source_fd, "", linux.OPEN_TREE_CLONE | linux.OPEN_TREE_CLOEXEC
                                          | linux.AT_EMPTY_PATH | (linux.AT_RECURSIVE if recursive else 0))
            except SyscallError as exc:
                raise SyscallError("open_tree", exc.errno, entry.get("source") or "",
                                   hint=f"source of the bind mount on {destination}") from None
            finally:
                os.close(source_fd)
    try:
        is_dir = stat.S_ISDIR(os.fstat(tree_fd).st_mode)
        attr_set = sum(attr for flag, attr in _ATTR_OF_FLAG.items() if flags & flag)
        if attr_set:
            # A read-only rbind is read-only all the way down, as Docker does for ro volumes.
            deep = rro or (recursive and flags & linux.MS_RDONLY)
            linux.mount_setattr(tree_fd, "", linux.AT_EMPTY_PATH | (linux.AT_RECURSIVE if deep else 0),
                                attr_set=attr_set)
        target_fd = ensure_in_root(root_fd, destination, directory=is_dir)
        try:
            _check_resolved_target(root_fd, target_fd, destination)
            linux.move_mount(tree_fd, "", target_fd, "",
                             linux.MOVE_MOUNT_F_EMPTY_PATH | linux.MOVE_MOUNT_T_EMPTY_PATH, destination)
        finally:
            os.close(target_fd)
        _set_propagation(tree_fd, destination, propagation or (linux.MS_PRIVATE | linux.MS_REC))
    finally:
        os.close(tree_fd)


def _set_propagation(fd: int, destination: str, propagation: int) -> None:
    try:
        linux.mount(None, fd_path(fd), None, propagation)
    except SyscallError as exc:
        raise SyscallError("mount (propagation)", exc.errno, destination) from None


def _cgroup(root_fd: int, destination: str, options: list[str]) -> None:
    """The container's cgroups: cgroup2 on a v2 host, else each v1 hierarchy on a tmpfs.

    Read-only unless the options leave ``ro`` out (Docker's ``--privileged``), the tmpfs
    itself excepted, as with runc. In a cgroup
    namespace a fresh cgroup mount shows the container's own cgroup as its root; without
    one (``--cgroupns host``) a fresh mount would show the host's whole tree, so the
    container's own cgroup directory of each hierarchy is bound instead, as runc does.
    """
    flags = linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC | (linux.MS_RDONLY if "ro" in options else 0)
    hierarchies = host_cgroup_hierarchies()
    own = _own_cgroups()
    target_fd = ensure_in_root(root_fd, destination)
    try:
        _check_resolved_target(root_fd, target_fd, destination)
        if not hierarchies:
            _cgroup_hierarchy(root_fd, destination, "", "cgroup2", "", own.get(""), flags)
            return
        linux.mount("tmpfs", fd_path(target_fd), "tmpfs", flags & ~linux.MS_RDONLY, "mode=755")
    finally:
        os.close(target_fd)
    # The tmpfs stays writable, the hierarchies on it read-only when asked: what runc 1.1 (and so
    # Docker 20.10) shows, tests/oci/test_cgroup_view.py compares.
    for name, fstype, data in hierarchies:
        key = "" if fstype == "cgroup2" else ",".join(sorted(data.split(",")))
        _cgroup_hierarchy(root_fd, posixpath.join(destination, name), name, fstype, data, own.get(key), flags)


def cgroup_source(name: str, own: str | None) -> str | None:
    """The host directory to bind for one hierarchy, or None where a fresh mount is right.

    ``own`` is the container's cgroup in it, as /proc/self/cgroup shows it. "/": in a
    cgroup namespace, where a fresh mount shows that cgroup as its root; a ".." means a
    cgroup outside a joined namespace's root, never to be followed on the host: fresh mount
    too. Anything else is the host's view (no cgroup namespace): only the container's own
    cgroup directory is bound, not the hierarchy's root with its neighbours and release_agent.
    """
    if own in (None, "/") or ".." in own.split("/"):
        return None
    return posixpath.join("/sys/fs/cgroup", name, own.lstrip("/"))


def _cgroup_hierarchy(root_fd: int, destination: str, name: str, fstype: str, data: str, own: str | None,
                      flags: int) -> None:
    """One hierarchy at ``destination``: mounted fresh in a cgroup namespace, else our cgroup bound."""
    sub_fd = ensure_in_root(root_fd, destination)
    try:
        try:
            host = cgroup_source(name, own)
            if host is None:
                linux.mount(fstype, fd_path(sub_fd), fstype, flags, data or None)
            else:
                linux.mount(host, fd_path(sub_fd), None, linux.MS_BIND | linux.MS_REC)
                _bound_flags(root_fd, destination, flags)
        except SyscallError as exc:
            if exc.errno != errno.EPERM or not name:
                raise
            # A user namespace may not mount cgroup v1: show the host's hierarchy instead.
            linux.mount(f"/sys/fs/cgroup/{name}", fd_path(sub_fd), None, linux.MS_BIND | linux.MS_REC)
    except SyscallError as exc:
        raise SyscallError(f"mount {fstype}", exc.errno, destination) from None
    finally:
        os.close(sub_fd)


def _bound_flags(root_fd: int, destination: str, flags: int) -> None:
    """nosuid, nodev, noexec (and ro) on a bind just made: a bind takes them from no option."""
    attrs = linux.MOUNT_ATTR_NOSUID | linux.MOUNT_ATTR_NODEV | linux.MOUNT_ATTR_NOEXEC
    attrs |= linux.MOUNT_ATTR_RDONLY if flags & linux.MS_RDONLY else 0
    fd = open_in_root(root_fd, destination)
    try:
        linux.mount_setattr(fd, "", linux.AT_EMPTY_PATH | linux.AT_RECURSIVE, attr_set=attrs)
    finally:
        os.close(fd)


def _own_cgroups() -> dict[str, str]:
    """Our cgroup in each hierarchy, by its sorted controllers ("" for cgroup2), from /proc/self/cgroup."""
    own: dict[str, str] = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            own[",".join(sorted(controllers.split(","))) if controllers else ""] = path
    return own


def host_cgroup_hierarchies(mounts: list[mountinfo.Mount] | None = None) -> list[tuple[str, str, str]]:
    """[(name under /sys/fs/cgroup, fstype, mount data)] of the v1 hierarchies; empty on a pure
    cgroup2 host. The cgroup2 tree of a hybrid host (``unified``) is left out, as runc leaves it
    (so Docker 20.10's containers have none): its controllers are all v1's."""
    found = []
    for mount in mountinfo.read() if mounts is None else mounts:
        if posixpath.dirname(mount.mount_point) != "/sys/fs/cgroup":
            if mount.mount_point == "/sys/fs/cgroup" and mount.fstype == "cgroup2":
                return []
            continue
        if mount.fstype == "cgroup":
            wanted = [o for o in mount.super_options.split(",") if o not in ("rw", "ro")
                      and not o.startswith(("release_agent", "clone_children", "noprefix", "xattr"))]
            found.append((posixpath.basename(mount.mount_point), "cgroup", ",".join(wanted)))
    return found


# --- /dev --------------------------------------------------------------------

_DEFAULT_DEVICES = [  # name, major, minor
    ("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0),
]
_DEV_LINKS = [("ptmx", "pts/ptmx"), ("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
              ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")]
_DEVICE_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def populate_dev(root_fd: int) -> None:
    """Device nodes and links of a fresh /dev tmpfs, as runc makes them."""
    dev_fd = open_in_root(root_fd, "/dev")
    try:
        for name, major, minor in _DEFAULT_DEVICES:
            _mknod(dev_fd, name, stat.S_IFCHR | 0o666, os.makedev(major, minor), "/dev/" + name)
        for name, target in _DEV_LINKS:
            try:
                os.symlink(target, name, dir_fd=dev_fd)
            except FileExistsError:
                pass
    finally:
        os.close(dev_fd)


def create_device(root_fd: int, device: dict[str, Any]) -> None:
    """One entry of ``linux.devices``: a node at its path inside the root."""
    path = device.get("path", "")
    kind = _DEVICE_TYPES.get(device.get("type", ""))
    # Any absolute path (the runtime-spec does not confine devices to /dev), resolved inside the root.
    absolute = isinstance(path, str) and path.startswith("/")
    clean = posixpath.normpath("/" + path.lstrip("/")) if absolute else ""
    if not absolute or clean == "/" or "\0" in clean or kind is None:
        raise BundleError(f"linux.devices: bad device {device!r} (need an absolute path and type c, b, u or p)")
    parent_fd = ensure_in_root(root_fd, posixpath.dirname(clean))
    name = posixpath.basename(clean)
    try:
        mode = kind | (device.get("fileMode", 0o666) & 0o7777)
        # Under /dev (the runtime's own tmpfs) a node replaces what is there; elsewhere the path may
        # be in the image or a bound host directory: what exists is left alone, as runc does.
        if not clean.startswith("/dev/") and _exists(parent_fd, name):
            return
        _mknod(parent_fd, name, mode, os.makedev(device.get("major", 0), device.get("minor", 0)), clean)
        os.chown(name, device.get("uid", 0), device.get("gid", 0), dir_fd=parent_fd, follow_symlinks=False)
    finally:
        os.close(parent_fd)


def _exists(dir_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _mknod(dir_fd: int, name: str, mode: int, device: int, shown: str) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise SyscallError("unlink", exc.errno or errno.EIO, shown) from None
    try:
        os.mknod(name, mode, device, dir_fd=dir_fd)  # the init runs with umask 0 until exec
    except PermissionError:
        _bind_host_device(dir_fd, name, shown)  # in a user namespace mknod is not allowed
    except OSError as exc:
        raise SyscallError("mknod", exc.errno or errno.EIO, shown) from None


def _bind_host_device(dir_fd: int, name: str, host_path: str) -> None:
    """Bind the host's node onto an empty file, as runc does where mknod is refused."""
    try:
        fd = os.open(name, os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_WRONLY | os.O_CLOEXEC, 0o644, dir_fd=dir_fd)
    except OSError as exc:
        raise SyscallError("create", exc.errno or errno.EIO, host_path) from None
    try:
        linux.mount(host_path, fd_path(fd), None, linux.MS_BIND)
    finally:
        os.close(fd)


# --- masked and read-only paths ---------------------------------------------


def _open_if_present(root_fd: int, path: str) -> int | None:
    """An O_PATH fd of ``path`` resolved inside the root; None when it does not exist."""
    try:
        return linux.openat2(root_fd, path, os.O_PATH | os.O_NOFOLLOW, resolve=linux.RESOLVE_IN_ROOT)
    except SyscallError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise


def mask_path(root_fd: int, path: str) -> None:
    """Hide ``path``: /dev/null over a file, an empty read-only tmpfs over a directory."""
    fd = _open_if_present(root_fd, path)
    if fd is None:
        return
    try:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            linux.mount("tmpfs", fd_path(fd), "tmpfs", linux.MS_RDONLY, None)
        else:
            null_fd = _null_device(root_fd)
            try:
                linux.mount(fd_path(null_fd), fd_path(fd), None, linux.MS_BIND)
            finally:
                os.close(null_fd)
    except SyscallError as exc:
        raise SyscallError("mount (maskedPaths)", exc.errno, path) from None
    finally:
        os.close(fd)


def _null_device(root_fd: int) -> int:
    """An O_PATH fd of a real /dev/null: the container's, else (a bind-mounted /dev) the host's."""
    try:
        fd = open_in_root(root_fd, "/dev/null")
    except SyscallError:
        fd = -1
    if fd >= 0:
        st = os.fstat(fd)
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3):
            return fd
        os.close(fd)
    # Still in the host's view (masking happens before pivot_root): its /dev/null is the kernel's.
    return os.open("/dev/null", os.O_PATH | os.O_CLOEXEC)


def readonly_path(root_fd: int, path: str) -> None:
    """Bind ``path`` on itself and make the bind read-only (recursively)."""
    target_fd = _open_if_present(root_fd, path)
    if target_fd is None:
        return
    try:
        tree_fd = linux.open_tree(target_fd, "", linux.OPEN_TREE_CLONE | linux.OPEN_TREE_CLOEXEC
                                  | linux.AT_RECURSIVE | linux.AT_EMPTY_PATH)
        try:
            linux.mount_setattr(tree_fd, "", linux.AT_EMPTY_PATH | linux.AT_RECURSIVE,
                                attr_set=linux.MOUNT_ATTR_RDONLY | linux.MOUNT_ATTR_NOSUID
                                | linux.MOUNT_ATTR_NODEV | linux.MOUNT_ATTR_NOEXEC)
            linux.move_mount(tree_fd, "", target_fd, "",
                             linux.MOVE_MOUNT_F_EMPTY_PATH | linux.MOVE_MOUNT_T_EMPTY_PATH, path)
        finally:
            os.close(tree_fd)
    finally:
        os.close(target_fd)
