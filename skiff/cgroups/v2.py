"""cgroup v2: one directory in the unified tree, controllers enabled down to it.

v2 has no devices controller files: device rules become an eBPF program
attached to the directory (skiff.cgroups.bpf_devices), through the
``device_filter`` seam so that tests on a fake tree can record it instead.
"""

from __future__ import annotations

import os
import time

from skiff.cgroups import fs
from skiff.cgroups.base import DESTROY_TIMEOUT_S, Cgroup
from skiff.cgroups.resources import check_controllers, rdma_line, section
from skiff.errors import CgroupError

TYPE_CHECKING = False   # typing.TYPE_CHECKING without importing typing on the hot path
if TYPE_CHECKING:  # nor collections (collections.abc, the stats' namedtuples): create needs neither
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any

    from skiff.cgroups.stats import Stats

    # (cgroup directory, OCI device rules): makes the rules the cgroup's device filter.
    DeviceFilter = Callable[[str, Sequence[Mapping[str, Any]]], None]

# Enabled in the ancestors' cgroup.subtree_control, where the kernel offers them.
WANTED_CONTROLLERS = ("cpuset", "cpu", "io", "memory", "pids", "hugetlb")
DEFAULT_CPU_PERIOD = 100000


def attach_device_filter(directory: str, rules: Sequence[Mapping[str, Any]]) -> None:
    """The kernel's device filter: an eBPF program, replacing the one skiff attached before."""
    from skiff.cgroups.bpf_devices import apply_device_filter

    apply_device_filter(directory, rules)


def shares_to_weight(shares: int) -> int:
    """cpu.shares (2-262144) to cpu.weight (1-10000), as runc converts them."""
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_to_io_weight(weight: int) -> int:
    """blkio.weight (10-1000) to io.weight (1-10000), as runc converts them."""
    return 1 + ((weight - 10) * 9999) // 990


class V2Cgroup(Cgroup):
    version = 2

    def __init__(self, unified: str, path: str, device_filter: DeviceFilter | None = None) -> None:
        super().__init__(path)
        self.root = unified
        self.dir = os.path.join(unified, self.path)
        self.dirs = [self.dir]
        self.device_filter = device_filter or attach_device_filter

    def _make_dirs(self, created: list[str]) -> None:
        parent = self.root
        for part in self.path.split("/"):
            self._enable_controllers(parent)
            parent = os.path.join(parent, part)
            if fs.mkdir(parent):
                created.append(parent)

    def stats(self) -> Stats:
        from skiff.cgroups.stats import Stats, io_stat_bytes

        cpu = fs.read_keyed(f"{self.dir}/cpu.stat")
        memory_usage = self._optional_int("memory.current") or 0
        inactive = fs.read_keyed(f"{self.dir}/memory.stat").get("inactive_file", 0) \
            if os.path.exists(f"{self.dir}/memory.stat") else 0
        pids_current = self._optional_int("pids.current")
        io_stat = f"{self.dir}/io.stat"
        block_read, block_write = io_stat_bytes(fs.read(io_stat)) if os.path.exists(io_stat) else (0, 0)
        return Stats(
            block_read=block_read, block_write=block_write,
            taken_ns=time.monotonic_ns(),
            cpu_usage_ns=cpu.get("usage_usec", 0) * 1000,
            memory_usage=memory_usage - inactive if inactive < memory_usage else memory_usage,
            memory_limit=self._optional_int("memory.max"),
            pids_current=pids_current if pids_current is not None else len(self.pids()),
            pids_limit=self._optional_int("pids.max"),
        )

    def oom_killed(self) -> bool:
        events = f"{self.dir}/memory.events"
        if not os.path.exists(events):
            return False
        return fs.read_keyed(events).get("oom_kill", 0) > 0

    def freeze(self) -> None:
        self._set_frozen(1)

    def thaw(self) -> None:
        if os.path.isdir(self.dir):
            self._set_frozen(0)

    def kill(self, timeout: float = DESTROY_TIMEOUT_S) -> None:
        # cgroup.kill (5.14+) kills every process at once, frozen ones too, with no pid races.
        if os.path.exists(f"{self.dir}/cgroup.kill") and self.pids():
            fs.write(f"{self.dir}/cgroup.kill", 1)
        super().kill(timeout)

    # --- creation -------------------------------------------------------------
    def _enable_controllers(self, directory: str) -> None:
        available = fs.read(f"{directory}/cgroup.controllers").split()
        enabled = fs.read(f"{directory}/cgroup.subtree_control").split()
        missing = [c for c in WANTED_CONTROLLERS if c in available and c not in enabled]
        if not missing:
            return
        try:
            fs.write(f"{directory}/cgroup.subtree_control", " ".join(f"+{c}" for c in missing))
        except CgroupError:
            # One refusal (cpu with a realtime thread about, say) must not cost the others.
            for controller in missing:
                try:
                    fs.write(f"{directory}/cgroup.subtree_control", f"+{controller}")
                except CgroupError:
                    pass

    def _check_supported(self, resources: Mapping[str, Any] | None) -> None:
        # The root's list is what may be enabled down to the container (delegation from above aside).
        if resources:
            check_controllers(resources, 2, set(fs.read(f"{self.root}/cgroup.controllers").split()))

    # --- limits ---------------------------------------------------------------
    def _apply(self, resources: Mapping[str, Any]) -> None:
        self._apply_memory(section(resources, "memory"))
        self._apply_cpu(section(resources, "cpu"))
        pids_limit = section(resources, "pids").get("limit")
        if pids_limit is not None:
            fs.write(f"{self.dir}/pids.max", pids_limit if pids_limit > 0 else "max")
        weight = section(resources, "blockIO").get("weight")
        if weight:
            if not os.path.exists(f"{self.dir}/io.weight"):
                raise CgroupError(f"--blkio-weight is not supported on this host: {self.dir}/io.weight does not "
                                  "exist (the io controller is unavailable or its scheduler does no weights)")
            fs.write(f"{self.dir}/io.weight", f"default {blkio_to_io_weight(weight)}")
        for limit in resources.get("hugepageLimits") or []:
            fs.write(f"{self.dir}/hugetlb.{limit['pageSize']}.max", _max(limit["limit"]))
        for device, limits in (resources.get("rdma") or {}).items():
            fs.write(f"{self.dir}/rdma.max", rdma_line(device, limits))
        # Absent: the devices stay as they are (update). Present: these rules replace the filter.
        if resources.get("devices") is not None:
            self.device_filter(self.dir, resources["devices"])

    def _apply_memory(self, memory: Mapping[str, Any]) -> None:
        limit, swap = memory.get("limit"), memory.get("swap")
        if limit is not None:
            fs.write(f"{self.dir}/memory.max", _max(limit))
        if swap is not None:
            self._apply_swap(limit, swap)
        if memory.get("reservation") is not None:
            fs.write(f"{self.dir}/memory.low", _max(memory["reservation"]))

    def _apply_swap(self, limit: int | None, swap: int) -> None:
        """OCI's swap is memory+swap (v1's memsw); v2's memory.swap.max is swap alone."""
        path = f"{self.dir}/memory.swap.max"
        if not os.path.exists(path):
            self.warnings.append("Your kernel does not support swap limit capabilities or the cgroup is not "
                                 "mounted. Memory limited without swap.")
            return
        if swap == -1:
            fs.write(path, "max")
            return
        if limit is None or limit <= 0:
            raise CgroupError(f"linux.resources.memory.swap {swap} needs a memory limit as well")
        if swap < limit:
            raise CgroupError(f"linux.resources.memory.swap {swap} is below the memory limit {limit}")
        fs.write(path, swap - limit)

    def _apply_cpu(self, cpu: Mapping[str, Any]) -> None:
        for key in ("realtimePeriod", "realtimeRuntime"):
            if cpu.get(key):  # not silently dropped: the limit asked for would not hold
                raise CgroupError(f"linux.resources.cpu.{key} is not supported on cgroup v2 "
                                  "(it has no real-time bandwidth limits)")
        if cpu.get("shares"):
            fs.write(f"{self.dir}/cpu.weight", shares_to_weight(cpu["shares"]))
        quota, period = cpu.get("quota"), cpu.get("period")
        if quota or period:
            quota_text = str(quota) if quota and quota > 0 else "max"
            fs.write(f"{self.dir}/cpu.max", f"{quota_text} {period or DEFAULT_CPU_PERIOD}")
        if cpu.get("cpus"):
            fs.write(f"{self.dir}/cpuset.cpus", cpu["cpus"])
        if cpu.get("mems"):
            fs.write(f"{self.dir}/cpuset.mems", cpu["mems"])

    def _set_frozen(self, value: int) -> None:
        fs.write(f"{self.dir}/cgroup.freeze", value)
        deadline = time.monotonic() + DESTROY_TIMEOUT_S
        while fs.read_keyed(f"{self.dir}/cgroup.events").get("frozen") != value:
            if time.monotonic() >= deadline:
                raise CgroupError(f"{self.dir} did not {'freeze' if value else 'thaw'} within "
                                  f"{DESTROY_TIMEOUT_S:.0f}s")
            time.sleep(0.001)

    def _optional_int(self, name: str) -> int | None:
        path = f"{self.dir}/{name}"
        if not os.path.exists(path):
            return None
        return fs.read_int(path)


def _max(value: int) -> str | int:
    return "max" if value == -1 else value
