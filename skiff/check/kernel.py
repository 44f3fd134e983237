"""The kernel: its version, namespaces, user namespaces, overlayfs, the newer system calls, seccomp."""

from __future__ import annotations

import errno
import os
import re
from typing import TYPE_CHECKING

from skiff.check import FAIL, OK, WARN, Result

if TYPE_CHECKING:
    from collections.abc import Iterator

    from skiff.check.host import Host

# mount_setattr (5.12) sets every read-only bind and the container's read-only /sys/fs/cgroup;
# openat2 (5.6), open_tree/move_mount (5.2) come before it.
MIN_KERNEL = (5, 12)
# fchmodat2 (6.6): device nodes copied into a volume keep their set-id bits (docs/security.md).
GOOD_KERNEL = (6, 6)
UPGRADE = "upgrade the kernel (Debian 12's 6.1 has every call skiff needs)"

# /proc/self/ns name -> (what skiff uses it for, required by every container)
NAMESPACES = {
    "mnt": ("the container's mounts and pivot_root", True),
    "uts": ("its hostname", True),
    "ipc": ("its System V IPC and POSIX queues", True),
    "pid": ("its PID 1", True),
    "net": ("its network (the default bridge and --network none)", True),
    "cgroup": ("its own view of /sys/fs/cgroup", True),
    "user": ("user-namespaced containers (skiff-oci) and idmapped mounts", False),
    "time": ("time namespaces in OCI bundles", False),
}
_CONFIG = {"mnt": "CONFIG_NAMESPACES", "uts": "CONFIG_UTS_NS", "ipc": "CONFIG_IPC_NS", "pid": "CONFIG_PID_NS",
           "net": "CONFIG_NET_NS", "cgroup": "CONFIG_CGROUPS", "user": "CONFIG_USER_NS",
           "time": "CONFIG_TIME_NS (Linux 5.6)"}


def parse_release(release: str) -> tuple[int, int, int] | None:
    """``6.1.0-13-amd64`` -> (6, 1, 0); None for a string that is no kernel release."""
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", release.strip())
    if match is None:
        return None
    return int(match[1]), int(match[2]), int(match[3] or 0)


def release(host: Host) -> str:
    return (host.read("/proc/sys/kernel/osrelease") or "").strip()


def kernel_version(host: Host) -> Iterator[Result]:
    text = release(host)
    version = parse_release(text)
    if version is None:
        yield Result("kernel", FAIL, "cannot read the kernel release (/proc/sys/kernel/osrelease)",
                     "mount proc on /proc")
    elif version[:2] < MIN_KERNEL:
        yield Result("kernel", FAIL, f"{text}: skiff needs Linux {_dotted(MIN_KERNEL)} or later", UPGRADE)
    elif version[:2] < GOOD_KERNEL:
        yield Result("kernel", WARN, f"{text}: without fchmodat2 (Linux 6.6) device nodes copied into a volume "
                                     "lose their set-id bits", "upgrade the kernel to 6.6 or later")
    else:
        yield Result("kernel", OK, text)


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


def namespaces(host: Host) -> Iterator[Result]:
    for name, (purpose, required) in NAMESPACES.items():
        if host.exists(f"/proc/self/ns/{name}"):
            yield Result(f"namespace.{name}", OK, purpose)
        else:
            yield Result(f"namespace.{name}", FAIL if required else WARN,
                         f"the kernel has no {name} namespace: {purpose}", f"a kernel built with {_CONFIG[name]}")


def user_namespaces(host: Host) -> Iterator[Result]:
    """The knobs that turn user namespaces off: for everyone, and for users without privileges.

    skiff itself runs as root, so the unprivileged ones only matter to rootless use
    (``skiff-oci`` run by a user): a warning, never a failure."""
    maximum = host.sysctl("user.max_user_namespaces")
    if maximum is not None:
        if maximum == "0":
            yield Result("userns.max_user_namespaces", WARN, "0: no user namespaces at all (user-namespaced "
                         "containers and idmapped mounts fail)", "sysctl -w user.max_user_namespaces=15000")
        else:
            yield Result("userns.max_user_namespaces", OK, maximum)
    clone = host.sysctl("kernel.unprivileged_userns_clone")   # Debian's and Ubuntu's patch
    if clone is not None:
        if clone == "0":
            yield Result("userns.unprivileged_clone", WARN, "0: only root may make user namespaces (no rootless use)",
                         "sysctl -w kernel.unprivileged_userns_clone=1")
        else:
            yield Result("userns.unprivileged_clone", OK, clone)
    apparmor = host.sysctl("kernel.apparmor_restrict_unprivileged_userns")   # Ubuntu 23.10 and later
    if apparmor is not None:
        if apparmor == "1":
            yield Result("userns.apparmor", WARN, "AppArmor keeps unconfined users out of user namespaces "
                         "(no rootless use)", "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, "
                         "or an AppArmor profile with 'userns,' for the program")
        else:
            yield Result("userns.apparmor", OK, f"apparmor_restrict_unprivileged_userns={apparmor}")


def overlay(host: Host) -> Iterator[Result]:
    filesystems = host.read("/proc/filesystems") or ""
    listed = any(line.split()[-1:] == ["overlay"] for line in filesystems.splitlines())
    if listed:
        yield Result("overlay", OK, "in /proc/filesystems")
    elif host.exists(f"/lib/modules/{release(host)}/kernel/fs/overlayfs"):
        yield Result("overlay", WARN, "the overlay module is not loaded (the first mount loads it)",
                     "modprobe overlay; echo overlay > /etc/modules-load.d/overlay.conf")
    else:
        yield Result("overlay", FAIL, "the kernel has no overlay filesystem: no container can get its root",
                     "a kernel with CONFIG_OVERLAY_FS (or its module: modprobe overlay)")
        return
    code = host.call("overlay_in_userns")
    if code == 0:
        yield Result("overlay.userns", OK, "overlay mounts in a user namespace")
    else:
        yield Result("overlay.userns", WARN, f"no overlay in a user namespace ({strerror(code)}): "
                     "rootless engines cannot mount image layers", _userns_overlay_fix(host, code))


def _userns_overlay_fix(host: Host, code: int) -> str:
    version = parse_release(release(host))
    if version is not None and version[:2] < (5, 11):
        return "Linux 5.11 or later"
    if code in (errno.ENOSPC, errno.EPERM, errno.EACCES):
        return "allow user namespaces (see the userns lines)"
    return "Linux 5.11 or later with CONFIG_OVERLAY_FS"


# probe (skiff.check.calls) -> (line name, what skiff uses it for, required, the Linux release that added it)
SYSCALLS = {
    "openat2": ("openat2", "paths inside images and containers resolved in their root", True, "5.6"),
    "mount_setattr": ("mount_setattr", "read-only binds and the read-only /sys/fs/cgroup", True, "5.12"),
    "idmapped_mounts": ("idmapped-mounts", "idmapped binds (OCI idmap/ridmap)", False, "5.12"),
}


def syscalls(host: Host) -> Iterator[Result]:
    for probe, (name, purpose, required, since) in SYSCALLS.items():
        code = host.call(probe)
        if code == 0:
            yield Result(name, OK, purpose)
        elif code in (errno.EPERM, errno.EACCES) and host.euid != 0:
            yield Result(name, WARN, f"cannot be probed without root: {purpose}", "run skiff check as root")
        else:
            yield Result(name, FAIL if required else WARN, f"{strerror(code)}: {purpose}",
                         _syscall_fix(host, probe, code, since))


def _syscall_fix(host: Host, name: str, code: int, since: str) -> str:
    if code == errno.ENOSYS:
        return f"Linux {since} or later"
    if code in (errno.EPERM, errno.EACCES):
        return f"a seccomp filter or LSM refuses {name}: run skiff outside that sandbox (or --privileged)"
    if name == "idmapped_mounts" and code == errno.EINVAL:
        from skiff.check.host import existing_ancestor

        where = host.fstype(existing_ancestor(host.skiff_root)) or "its filesystem"
        return f"put the skiff root on a filesystem with idmapped mounts (ext4, xfs, btrfs, tmpfs; not {where})"
    if name == "idmapped_mounts" and code == errno.ENOSPC:
        return "sysctl -w user.max_user_namespaces=15000"
    return f"Linux {since} or later"


def seccomp(host: Host) -> Iterator[Result]:
    """The kernel's seccomp filter mode: every container gets Docker's default profile."""
    status = host.read("/proc/self/status") or ""
    has_seccomp = any(line.startswith("Seccomp:") for line in status.splitlines())
    actions = host.sysctl("kernel.seccomp.actions_avail")
    if not has_seccomp:
        yield Result("seccomp", FAIL, "the kernel has no seccomp: every container gets Docker's default profile",
                     "a kernel with CONFIG_SECCOMP and CONFIG_SECCOMP_FILTER")
    elif actions is None or "errno" not in actions.split():
        yield Result("seccomp", FAIL, "no seccomp filter mode (/proc/sys/kernel/seccomp/actions_avail)",
                     "a kernel with CONFIG_SECCOMP_FILTER (Linux 4.14 or later)")
    else:
        yield Result("seccomp", OK, "filter mode: Docker's default profile can be loaded")


def strerror(code: int) -> str:
    """``EPERM: Operation not permitted``."""
    name = errno.errorcode.get(code, str(code))
    return f"{name}: {os.strerror(code)}"
