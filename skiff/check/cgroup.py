"""Cgroups: the mode (v1, v2, hybrid), each controller skiff uses, and the eBPF device filter.

A controller counts when skiff can use it for a container under the cgroup parent: on v1
its hierarchy is mounted; on v2 the kernel offers it at the root of the tree, and each
existing directory down to the parent has it in ``cgroup.subtree_control`` or lets skiff
add it there (not a non-root cgroup holding processes: the kernel's "no internal processes"
rule). ``cgroup.delegation`` says whether this process may write there at all. The layout
itself is skiff.cgroups.detect's.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

from skiff.check import FAIL, OK, WARN, Result
from skiff.check.kernel import strerror

if TYPE_CHECKING:
    from collections.abc import Iterator

    from skiff.cgroups.detect import Setup
    from skiff.check.host import Host

# controller -> what needs it (missing: those flags fail; nothing else does)
V2_USES = {
    "cpu": "--cpus, --cpu-shares, --cpu-period, --cpu-quota",
    "cpuset": "--cpuset-cpus, --cpuset-mems",
    "io": "--blkio-weight, BLOCK I/O in stats",
    "memory": "-m, --memory-swap, --memory-reservation, OOM detection",
    "pids": "--pids-limit",
    "hugetlb": "hugepageLimits of OCI bundles",
}
V1_USES = {
    "cpu": V2_USES["cpu"],
    "cpuacct": "CPU % in stats",
    "cpuset": V2_USES["cpuset"],
    "memory": V2_USES["memory"],
    "devices": "every container's device allow-list",
    "freezer": "pause and unpause",
    "blkio": V2_USES["io"],
    "pids": V2_USES["pids"],
    "hugetlb": V2_USES["hugetlb"],
}
V1_REQUIRED = frozenset({"devices"})
_CONFIG = {"cpu": "CONFIG_CGROUP_SCHED", "cpuacct": "CONFIG_CGROUP_CPUACCT", "cpuset": "CONFIG_CPUSETS",
           "memory": "CONFIG_MEMCG", "devices": "CONFIG_CGROUP_DEVICE", "freezer": "CONFIG_CGROUP_FREEZER",
           "blkio": "CONFIG_BLK_CGROUP", "io": "CONFIG_BLK_CGROUP", "pids": "CONFIG_CGROUP_PIDS",
           "hugetlb": "CONFIG_CGROUP_HUGETLB"}


def cgroups(host: Host) -> Iterator[Result]:
    from skiff.errors import CgroupError

    try:
        setup = host.cgroup_setup()
    except CgroupError:
        yield Result("cgroup.mode", FAIL, "no cgroup filesystem is mounted",
                     "mount -t cgroup2 none /sys/fs/cgroup")
        return
    yield Result("cgroup.mode", OK, _mode_detail(host, setup))
    if setup.mode == "v2":
        assert setup.unified is not None
        for name, uses in V2_USES.items():
            yield _v2_controller(host, setup.unified, name, uses)
    else:
        for name, uses in V1_USES.items():
            yield _v1_controller(host, setup, name, uses)
    yield delegation(host, setup)
    yield device_filter(host, setup.mode)


def delegation(host: Host, setup: Setup) -> Result:
    """Whether this process may make the containers' cgroups under the parent, in every hierarchy a
    container joins (on a hybrid host the v2 tree too): the deepest directory of the parent that
    exists is writable (and, on v2, the subtree_control files skiff may have to add controllers to)."""
    tops = [h.mountpoint for h in setup.v1] + ([setup.unified] if setup.unified else [])  # hybrid: both
    refused = []
    for top in tops:
        existing = [d for d in _chain(top, host.cgroup_parent) if os.path.isdir(d)]
        needed = [existing[-1]] + ([os.path.join(d, "cgroup.subtree_control") for d in existing]
                                   if setup.mode == "v2" else [])
        refused += [host.shown(path) for path in needed if not host.writable(path)]
    where = f"/{host.cgroup_parent}"
    if not refused:
        return Result("cgroup.delegation", OK, f"containers' cgroups can be made under {where}")
    more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
    if host.euid != 0:
        return Result("cgroup.delegation", WARN, f"uid {host.euid} may not write {refused[0]}{more}: not delegated",
                      "run skiff as root")
    return Result("cgroup.delegation", FAIL, f"{refused[0]}{more} is read-only: no container cgroup under {where}",
                  "run skiff on the host, or in a container with a writable cgroup mount (--privileged)")


def _mode_detail(host: Host, setup: Setup) -> str:
    if setup.mode == "v2":
        return f"v2 at {host.shown(setup.unified or '')}"
    if setup.mode == "hybrid":
        return f"hybrid: limits on v1, the v2 tree at {host.shown(setup.unified or '')}"
    return f"v1: {len(setup.v1)} hierarchies"


def kernel_table(host: Host) -> dict[str, tuple[int, bool]]:
    """/proc/cgroups: controller -> (v1 hierarchy id, 0 when on v2 or unmounted; enabled)."""
    table = {}
    for line in (host.read("/proc/cgroups") or "").splitlines():
        fields = line.split()
        if len(fields) == 4 and not line.startswith("#") and fields[1].isdigit():
            table[fields[0]] = (int(fields[1]), fields[3] == "1")
    return table


def _absent_fix(host: Host, name: str, mode: str) -> str:
    """Why the kernel does not offer ``name`` where skiff looks, as the thing to do."""
    entry = kernel_table(host).get("blkio" if name == "io" else name)
    if entry is None:
        return f"a kernel with {_CONFIG.get(name, name)}"
    hierarchy, enabled = entry
    if not enabled:
        return f"boot with cgroup_enable={name} (and without cgroup_disable={name}) on the kernel command line"
    if mode == "v2" and hierarchy:
        return f"unmount the cgroup v1 hierarchy that holds {name}: a controller is in one tree only"
    if mode == "v2":
        return f"have {name} delegated to this cgroup tree (systemd: Delegate=yes)"
    return f"mkdir -p /sys/fs/cgroup/{name} && mount -t cgroup -o {name} cgroup /sys/fs/cgroup/{name}"


def _v1_controller(host: Host, setup: Setup, name: str, uses: str) -> Result:
    required = name in V1_REQUIRED
    mountpoint = setup.v1_mount(name)
    result_name = f"cgroup.{name}"
    if mountpoint is None:
        unified = setup.unified
        in_v2 = unified is not None and name in _words(os.path.join(unified, "cgroup.controllers"))
        where = " (it is in the v2 tree, which holds no limits on a hybrid host)" if in_v2 else ""
        fix = _absent_fix(host, name, setup.mode)
        if unified is not None and name in _words(os.path.join(unified, "cgroup.subtree_control")):
            # the kernel moves a controller to a v1 hierarchy only once no v2 cgroup uses it
            fix = f"echo -{name} > {host.shown(unified)}/cgroup.subtree_control (no cgroup may use it), then {fix}"
        return Result(result_name, FAIL if required else WARN, f"no v1 hierarchy{where}: {uses} fail", fix)
    return Result(result_name, OK, f"mounted at {host.shown(mountpoint)}")


def _v2_controller(host: Host, unified: str, name: str, uses: str) -> Result:
    result_name = f"cgroup.{name}"
    if name not in _words(os.path.join(unified, "cgroup.controllers")):
        return Result(result_name, WARN, f"not offered by the kernel at {host.shown(unified)}: {uses} fail",
                      _absent_fix(host, name, "v2"))
    enables = []
    for directory in _chain(unified, host.cgroup_parent):
        if not os.path.isdir(directory):
            break   # skiff makes it, with the controllers its parent enables
        control = os.path.join(directory, "cgroup.subtree_control")
        if name in _words(control):
            continue
        if _holds_processes(directory):
            shown = host.shown(directory)
            return Result(result_name, WARN, f"not enabled in {shown}/cgroup.subtree_control, and {shown} holds "
                          f"processes, so the kernel refuses to (no internal processes): {uses} fail",
                          f"move them to a child cgroup: mkdir {shown}/init && for p in $(cat {shown}/cgroup.procs); "
                          f"do echo $p > {shown}/init/cgroup.procs; done")
        enables.append(host.shown(control))
    if enables:
        return Result(result_name, OK, f"offered; skiff enables it in {enables[0]}")
    return Result(result_name, OK, "enabled in subtree_control")


def _chain(unified: str, parent: str) -> list[str]:
    """The directories whose subtree_control must hold a controller for a container under ``parent``."""
    chain = [unified]
    for part in parent.split("/"):
        chain.append(os.path.join(chain[-1], part))
    return chain


def _holds_processes(directory: str) -> bool:
    """A non-root cgroup with processes of its own (the root cgroup has no cgroup.type and is exempt)."""
    if not os.path.exists(os.path.join(directory, "cgroup.type")):
        return False
    try:
        with open(os.path.join(directory, "cgroup.procs")) as f:
            return bool(f.read().split())
    except OSError:
        return False


def _words(path: str) -> list[str]:
    try:
        with open(path) as f:
            return f.read().split()
    except OSError:
        return []


def device_filter(host: Host, mode: str) -> Result:
    """The eBPF device program: what confines devices on cgroup v2 (v1 has the devices controller)."""
    needed = mode == "v2"
    code = host.call("device_filter")
    if code == 0:
        return Result("device-filter", OK, "eBPF device programs load" + ("" if needed else
                                                                          " (unused: v1 devices controller)"))
    if code in (errno.EPERM, errno.EACCES) and host.euid != 0:
        return Result("device-filter", WARN, "cannot be probed without root", "run skiff check as root")
    why = f"no eBPF device program ({strerror(code)})"
    if not needed:
        return Result("device-filter", WARN, why + "; unused while devices are a cgroup v1 controller",
                      "a kernel with CONFIG_CGROUP_BPF and CONFIG_BPF_SYSCALL, before moving to cgroup v2")
    return Result("device-filter", FAIL, why + ": cgroup v2 confines each container's devices with one",
                  "a kernel with CONFIG_CGROUP_BPF and CONFIG_BPF_SYSCALL" if code in (errno.ENOSYS, errno.EINVAL)
                  else "run skiff as root outside any sandbox that filters bpf(2)")
