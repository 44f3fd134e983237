"""The probes that need the kernel itself: each makes the call skiff makes, and leaves nothing.

Each returns 0 when the call works as skiff uses it, else the errno it failed with
(ENOSYS: the kernel lacks it; EPERM: no privilege, or a seccomp filter or LSM refuses it).
What they touch dies with them: an fd closed at once, a detached mount (made by
``open_tree(OPEN_TREE_CLONE)`` and attached nowhere, it dissolves when its fd is closed), a
user namespace held only by an fd, a child process that exits, an empty temporary directory
removed afterwards, an eBPF program loaded and attached to nothing.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING, Callable

from skiff.errors import SkiffError, SyscallError

if TYPE_CHECKING:
    from skiff.check.host import Host

# A range of ids for the probes' user namespaces (never entered by any process).
_PROBE_MAP = ((0, 100000, 65536),)


def _errno(exc: SkiffError) -> int:
    return exc.errno if isinstance(exc, SyscallError) and exc.errno else errno.EINVAL


def openat2(host: Host) -> int:
    """openat2 with RESOLVE_IN_ROOT, as skiff opens paths inside images and containers."""
    from skiff import linux

    try:
        fd = linux.openat2(linux.AT_FDCWD, "/", os.O_PATH | os.O_DIRECTORY, resolve=linux.RESOLVE_IN_ROOT)
    except SyscallError as exc:
        return _errno(exc)
    os.close(fd)
    return 0


def mount_setattr(host: Host) -> int:
    """A read-only flag set with mount_setattr on a detached copy of the mount holding the skiff
    root, as skiff makes read-only binds (and the container's read-only cgroup mount)."""
    from skiff import linux
    from skiff.check.host import existing_ancestor
    from skiff.runtime.mounts import clone_tree

    try:
        tree = clone_tree(existing_ancestor(host.skiff_root), recursive=False)
    except SyscallError as exc:
        return _errno(exc)
    try:
        linux.mount_setattr(tree, "", linux.AT_EMPTY_PATH, attr_set=linux.MOUNT_ATTR_RDONLY)
    except SyscallError as exc:
        return _errno(exc)
    finally:
        os.close(tree)
    return 0


def idmapped_mounts(host: Host) -> int:
    """An idmapped copy of the mount holding the skiff root, as the runtime prepares idmapped binds
    (skiff.runtime.idmap): EINVAL when that filesystem cannot be idmapped."""
    from skiff import linux
    from skiff.check.host import existing_ancestor
    from skiff.runtime.idmap import userns_with_maps
    from skiff.runtime.mounts import clone_tree

    try:
        tree = clone_tree(existing_ancestor(host.skiff_root), recursive=False)
    except SyscallError as exc:
        return _errno(exc)
    try:
        userns = userns_with_maps(_PROBE_MAP, _PROBE_MAP, "skiff check")
        try:
            linux.mount_setattr(tree, "", linux.AT_EMPTY_PATH, attr_set=linux.MOUNT_ATTR_IDMAP, userns_fd=userns)
        finally:
            os.close(userns)
    except SkiffError as exc:
        return _errno(exc)
    finally:
        os.close(tree)
    return 0


def device_filter(host: Host) -> int:
    """skiff's default eBPF device program loaded into the kernel (and freed: attached to nothing)."""
    from skiff.cgroups.bpf_devices import can_load

    return can_load()


def overlay_in_userns(host: Host) -> int:
    """A read-only overlay (two empty lower directories) made in a new user and mount namespace,
    by a child that exits: what rootless engines mount (Linux 5.11)."""
    import tempfile

    scratch = tempfile.mkdtemp(prefix="skiff-check-")
    lower = [os.path.join(scratch, name) for name in ("a", "b")]
    try:
        for path in lower:
            os.mkdir(path)
        pid = os.fork()
        if pid == 0:
            os._exit(_overlay_child(":".join(lower)))
        status = os.waitpid(pid, 0)[1]
        return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else errno.EINTR
    finally:
        for path in lower:
            try:
                os.rmdir(path)
            except FileNotFoundError:
                pass
        os.rmdir(scratch)


def _overlay_child(lowerdir: str) -> int:
    """In the child: own user namespace (us as its root), own mount namespace, overlay superblock."""
    try:
        from skiff import linux

        uid, gid = os.geteuid(), os.getegid()
        linux.unshare(linux.CLONE_NEWUSER | linux.CLONE_NEWNS)
        for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
        fs_fd = linux.fsopen("overlay")
        linux.fsconfig_string(fs_fd, "lowerdir", lowerdir)
        linux.fsconfig_create(fs_fd)   # the superblock: where the kernel decides whether we may
        return 0
    except SyscallError as exc:
        return _errno(exc) & 0xFF or errno.EINVAL
    except OSError as exc:
        return (exc.errno or errno.EINVAL) & 0xFF
    except BaseException:
        return errno.EINVAL


PROBES: dict[str, Callable[[Host], int]] = {
    "openat2": openat2, "mount_setattr": mount_setattr, "idmapped_mounts": idmapped_mounts,
    "device_filter": device_filter, "overlay_in_userns": overlay_in_userns,
}


def firewall_error(backend: str) -> str | None:
    """None when ``backend``'s rules can be read (nftables: ``list tables``; iptables:
    ``iptables-save -t nat``), else the tool's error. Reading changes nothing."""
    import subprocess

    if backend == "nftables":
        from skiff.network.firewall import run_nft

        try:
            error = run_nft("list tables")
        except SkiffError as exc:
            return str(exc)
        return None if error is None else error.strip() or "nft failed"
    from skiff.network import iptables

    if not iptables.available():
        return "iptables-restore not found"
    try:
        proc = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True, timeout=30,
                              env={**os.environ, "PATH": os.environ.get("PATH", "") + ":/usr/sbin:/sbin"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None if proc.returncode == 0 else proc.stderr.strip() or f"iptables-save exited {proc.returncode}"
