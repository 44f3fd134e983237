"""Idmapped bind mounts: a mount's ``uidMappings``/``gidMappings`` and the ``idmap``/``ridmap`` options.

An idmapped mount shows a file whose owner on disk is ``containerID + n`` as
owned by ``hostID + n`` (both ranges of one mapping entry); inside a container
with a user namespace, that host id then reads through the container's own maps.

Why the runtime prepares them, not the container's init: setting MOUNT_ATTR_IDMAP
needs CAP_SYS_ADMIN in the user namespace that owns the source's superblock (the
initial one, for host filesystems), which an init in its own user namespace does
not have. So ``prepare_idmapped_mounts`` runs in the runtime, before the init is
forked, and for each idmapped bind:

1. clones the source as a detached mount tree (open_tree OPEN_TREE_CLONE, with its
   submounts for ``rbind``), resolved in the runtime's mount namespace;
2. gets a user namespace carrying the mapping: a namespace joined by path is used
   as it is; otherwise a helper process is forked straight into a new user
   namespace, its maps are written from here, its namespace is opened, and it is
   killed and reaped at once (the open fd keeps the namespace alive; identical
   mappings share one helper);
3. idmaps the tree with mount_setattr(MOUNT_ATTR_IDMAP), AT_RECURSIVE for ``ridmap``.

The tree's fd is recorded in the entry (``mounts.PREPARED_TREE``). The forked init
inherits it and attaches it with move_mount when that entry's turn comes, so the
order of the mounts and every other option (ro, propagation) work as for any
bind. The runtime closes its copies after the fork (``release_idmapped_mounts``);
the init closes its copy once attached, and every other fd above 2 before exec.
Before the fork, because forking the helper after entering the container's new
pid namespace would make the helper that namespace's pid 1.

What is refused (runtime-spec 1.2, config.md "idmap"/"ridmap"): idmapping on a
mount that is not a bind; only one of uidMappings/gidMappings, or an empty or
malformed one; ``idmap`` without mappings when the container has no user namespace
to take them from; a source whose filesystem does not support idmapped mounts.
Mappings without either option are applied as ``idmap`` (the spec says the options
SHOULD accompany them; runc accepts them alone too).
"""

from __future__ import annotations

import _signal as signal  # the C module: signal.py's enums cost milliseconds of every create
import errno
import os

from skiff import linux
from skiff.errors import BundleError, SyscallError
from skiff.runtime.mounts import PREPARED_TREE, bind_source, clone_tree, is_bind, wants_idmap

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

_MAX_ID = 2**32 - 1
_MAX_MAP_LINES = 340  # the kernel's limit for one uid_map or gid_map


def prepare_idmapped_mounts(config: dict[str, Any], bundle: str) -> None:
    """Clone and idmap the source of every idmapped bind of ``config["mounts"]``; see the module doc.

    Every request is checked before anything is made; on any failure nothing is
    left open (trees, namespaces) and every helper process has been reaped.
    """
    requests = []
    for index, entry in enumerate(config.get("mounts") or []):
        if wants_idmap(entry):
            where = f"mounts[{index}] ({entry.get('destination')})"
            requests.append((entry, where, _userns_source(entry, where, config["linux"])))
    namespaces = {ns["type"] for ns in config["linux"].get("namespaces") or []}
    if not requests or "mount" not in namespaces:  # without a mount namespace the init mounts nothing
        return
    userns_fds: dict[tuple[Any, ...], int] = {}
    try:
        for entry, where, userns in requests:
            source = bind_source(entry, bundle)
            options = entry.get("options") or []
            tree_fd = clone_tree(source, "rbind" in options)
            entry[PREPARED_TREE] = tree_fd  # from here release_idmapped_mounts closes it
            if userns not in userns_fds:
                userns_fds[userns] = _open_userns(userns, where)
            _idmap_tree(tree_fd, userns_fds[userns], "ridmap" in options, source, entry["destination"])
    except BaseException:
        release_idmapped_mounts(config)
        raise
    finally:
        for fd in userns_fds.values():
            os.close(fd)  # each idmapped tree holds its own reference to its namespace


def release_idmapped_mounts(config: dict[str, Any]) -> None:
    """Close the runtime's copies of the prepared trees (after the fork, or on failure)."""
    for entry in config.get("mounts") or []:
        fd = entry.pop(PREPARED_TREE, None)
        if fd is not None:
            os.close(fd)


# --- checking a request ----------------------------------------------------------


def _userns_source(entry: dict[str, Any], where: str, linux_cfg: dict[str, Any]) -> tuple[Any, ...]:
    """Where the mount's mapping comes from: ("maps", uid maps, gid maps) or ("path", a userns path)."""
    if not is_bind(entry):
        raise BundleError(f"{where}: idmapped mounts are only supported for bind mounts",
                          hint="add the bind or rbind option, or drop idmap/ridmap and uidMappings/gidMappings")
    has_uid, has_gid = bool(entry.get("uidMappings")), bool(entry.get("gidMappings"))  # [] or null: not given
    if has_uid or has_gid:
        if not (has_uid and has_gid):
            raise BundleError(f"{where}: uidMappings and gidMappings must be given together")
        return ("maps", _checked_maps(entry["uidMappings"], f"{where}.uidMappings"),
                _checked_maps(entry["gidMappings"], f"{where}.gidMappings"))
    user_ns = next((ns for ns in linux_cfg.get("namespaces") or [] if ns.get("type") == "user"), None)
    if user_ns is None:
        raise BundleError(f"{where}: idmap without uidMappings and gidMappings needs a container user namespace "
                          "to take the mapping from", hint="give the mount uidMappings and gidMappings")
    if user_ns.get("path"):
        return ("path", user_ns["path"])
    return ("maps", _checked_maps(linux_cfg.get("uidMappings"), "linux.uidMappings"),
            _checked_maps(linux_cfg.get("gidMappings"), "linux.gidMappings"))


def _checked_maps(mappings: Any, where: str) -> tuple[tuple[int, int, int], ...]:
    """Mappings as (containerID, hostID, size) tuples, refused here rather than by a bare EINVAL later."""
    if not isinstance(mappings, list) or not mappings:
        raise BundleError(f"{where} must be a non-empty list of {{containerID, hostID, size}}")
    if len(mappings) > _MAX_MAP_LINES:
        raise BundleError(f"{where}: at most {_MAX_MAP_LINES} ranges are allowed, not {len(mappings)}")
    checked = []
    for m in mappings:
        values = [m.get(k) if isinstance(m, dict) else None for k in ("containerID", "hostID", "size")]
        numbers = [v for v in values if isinstance(v, int) and not isinstance(v, bool) and v >= 0]
        if len(numbers) != len(values):
            raise BundleError(f"{where}: {m!r} needs non-negative integer containerID, hostID and size")
        container_id, host_id, size = numbers
        if size == 0:
            raise BundleError(f"{where}: {m!r} has size 0; a range must map at least one id")
        if container_id + size - 1 >= _MAX_ID or host_id + size - 1 >= _MAX_ID:
            raise BundleError(f"{where}: {m!r} runs past the largest id ({_MAX_ID - 1})")
        checked.append((container_id, host_id, size))
    return tuple(checked)


# --- making it ---------------------------------------------------------------------


def _open_userns(userns: tuple[Any, ...], where: str) -> int:
    if userns[0] == "path":
        try:
            return os.open(userns[1], os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise BundleError(f"{where}: cannot open user namespace {userns[1]}: {exc.strerror}") from None
    _, uid_maps, gid_maps = userns
    return userns_with_maps(uid_maps, gid_maps, where)


def userns_with_maps(uid_maps: tuple[tuple[int, int, int], ...], gid_maps: tuple[tuple[int, int, int], ...],
                     where: str = "mount") -> int:
    """An fd of a new user namespace with these (containerID, hostID, size) maps.

    Made by a helper process forked into the namespace and reaped before this
    returns, whatever happens; the fd alone keeps the namespace alive.
    """
    from skiff.runtime.userns import write_id_maps

    pid = linux.fork_with_namespaces(linux.CLONE_NEWUSER)
    if pid == 0:
        _helper()
    try:
        as_dicts = {key: [{"containerID": c, "hostID": h, "size": s} for c, h, s in maps]
                    for key, maps in (("uidMappings", uid_maps), ("gidMappings", gid_maps))}
        write_id_maps(pid, as_dicts, where)
        path = f"/proc/{pid}/ns/user"
        try:
            return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise SyscallError("open", exc.errno or errno.EIO, path) from None
    finally:
        linux.kill_and_reap(pid)


def _helper() -> NoReturn:
    """The helper's whole life: wait to be killed (or to follow its parent), never back into the caller."""
    try:
        linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
        while True:
            signal.pause()
    finally:
        os._exit(0)


def _idmap_tree(tree_fd: int, userns_fd: int, recursive: bool, source: str, destination: str) -> None:
    try:
        linux.mount_setattr(tree_fd, "", linux.AT_EMPTY_PATH | (linux.AT_RECURSIVE if recursive else 0),
                            attr_set=linux.MOUNT_ATTR_IDMAP, userns_fd=userns_fd)
    except SyscallError as exc:
        if exc.errno == errno.EINVAL:
            under = " (or of a mount under it, with ridmap)" if recursive else ""
            raise BundleError(f"mount {destination}: the filesystem of {source} ({_fstype(source)}){under} "
                              "does not support idmapped mounts",
                              hint="use a source on a filesystem that supports them, such as ext4, xfs, btrfs, "
                                   "tmpfs or overlayfs, or drop idmap/ridmap and uidMappings/gidMappings") from None
        raise SyscallError("mount_setattr MOUNT_ATTR_IDMAP", exc.errno, source,
                           hint=f"idmapping the bind mount on {destination} needs CAP_SYS_ADMIN in the "
                                "initial user namespace") from None


def _fstype(path: str) -> str:
    """The type of the filesystem mounted deepest above ``path`` (for an error message)."""
    from skiff import mountinfo

    try:
        mount = mountinfo.containing(path)
    except OSError:
        return "unknown type"
    return mount.fstype if mount is not None else "unknown type"


__all__ = ["prepare_idmapped_mounts", "release_idmapped_mounts", "userns_with_maps"]
