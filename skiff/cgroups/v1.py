"""cgroup v1 (and hybrid): one directory per mounted hierarchy, limits in the v1 files.

On a hybrid host the container also gets a directory in the v2 tree, which it
joins, though no limit is written there (the v1 hierarchies own the
controllers): with a cgroup namespace the container then sees its own cgroup as
``/`` in every hierarchy, and a cgroup2 mount inside shows only its subtree
rather than the host's whole v2 tree. Named hierarchies (``name=systemd``) are
joined for the same reason, as runc does.
"""

from __future__ import annotations

import os
import time

from skiff.cgroups import fs
from skiff.cgroups.base import DESTROY_TIMEOUT_S, Cgroup
from skiff.cgroups.detect import Setup
from skiff.cgroups.resources import check_controllers, device_rule_line, rdma_line, section
from skiff.errors import CgroupError

TYPE_CHECKING = False   # typing.TYPE_CHECKING without importing typing on the hot path
if TYPE_CHECKING:  # nor collections (collections.abc, the stats' namedtuples): create needs neither
    from collections.abc import Mapping
    from typing import Any

    from skiff.cgroups.stats import Stats


class V1Cgroup(Cgroup):
    version = 1

    def __init__(self, setup: Setup, path: str) -> None:
        super().__init__(path)
        self._mounts: list[str] = [h.mountpoint for h in setup.v1]
        self._by_controller: dict[str, str] = {
            c: os.path.join(h.mountpoint, self.path) for h in setup.v1 for c in h.controllers}
        if setup.unified:
            self._mounts.append(setup.unified)
        self.dirs = [os.path.join(mount, self.path) for mount in self._mounts]

    def _make_dirs(self, created: list[str]) -> None:
        for mount in self._mounts:
            self._make(mount, created)
        self._init_cpuset()

    def stats(self) -> Stats:
        from skiff.cgroups.stats import UNLIMITED_THRESHOLD, Stats, blkio_v1_bytes

        memory = self._need("memory")
        usage = int(fs.read(f"{memory}/memory.usage_in_bytes"))
        inactive = fs.read_keyed(f"{memory}/memory.stat").get("total_inactive_file", 0)
        limit = int(fs.read(f"{memory}/memory.limit_in_bytes"))
        cpuacct = self._dir("cpuacct")
        pids = self._dir("pids")
        block_read, block_write = blkio_v1_bytes(self._blkio_texts())
        return Stats(
            block_read=block_read, block_write=block_write,
            taken_ns=time.monotonic_ns(),
            cpu_usage_ns=int(fs.read(f"{cpuacct}/cpuacct.usage")) if cpuacct else 0,
            memory_usage=usage - inactive if inactive < usage else usage,
            memory_limit=None if limit >= UNLIMITED_THRESHOLD else limit,
            pids_current=int(fs.read(f"{pids}/pids.current")) if pids else len(self.pids()),
            pids_limit=fs.read_int(f"{pids}/pids.max") if pids else None,
        )

    def _blkio_texts(self) -> list[str]:
        """The byte counters Docker's containerd reads: CFQ's where the kernel has CFQ, and throttle's."""
        blkio = self._dir("blkio")
        if blkio is None:
            return []
        names = ["blkio.throttle.io_service_bytes"]
        if os.path.exists(f"{blkio}/blkio.io_serviced_recursive"):
            names.insert(0, "blkio.io_service_bytes_recursive")
        return [fs.read(f"{blkio}/{name}") for name in names if os.path.exists(f"{blkio}/{name}")]

    def oom_killed(self) -> bool:
        memory = self._dir("memory")
        if memory is None or not os.path.isdir(memory):
            return False
        control = fs.read_keyed(f"{memory}/memory.oom_control")
        if "oom_kill" in control:
            return control["oom_kill"] > 0
        # Kernels before 4.13 have no kill counter: hitting the limit is the best sign left.
        return int(fs.read(f"{memory}/memory.failcnt")) > 0

    def freeze(self) -> None:
        self._set_freezer("FROZEN")

    def thaw(self) -> None:
        if self._dir("freezer") and os.path.isdir(self._need("freezer")):
            self._set_freezer("THAWED")

    # --- creation -------------------------------------------------------------
    def _make(self, mount: str, created: list[str]) -> None:
        current = mount
        for part in self.path.split("/"):
            current = os.path.join(current, part)
            if fs.mkdir(current):
                created.append(current)

    def _init_cpuset(self) -> None:
        """A new v1 cpuset has no CPUs or memory nodes: no process may join until set.

        Each level from the hierarchy's root down inherits its parent's when empty.
        """
        if self._dir("cpuset") is None:
            return
        parent = self._root_of("cpuset")
        for part in self.path.split("/"):
            current = os.path.join(parent, part)
            for name in ("cpuset.cpus", "cpuset.mems"):
                if not fs.read(f"{current}/{name}").strip():
                    fs.write(f"{current}/{name}", fs.read(f"{parent}/{name}").strip())
            parent = current

    def _check_supported(self, resources: Mapping[str, Any] | None) -> None:
        check_controllers(resources, 1, self._by_controller.keys())
        if section(resources, "blockIO").get("weight"):
            blkio = self._dir("blkio")
            if blkio is None or not os.path.exists(os.path.join(self._root_of("blkio"), "blkio.weight")):
                raise CgroupError("--blkio-weight is not supported on this host: the blkio cgroup has no "
                                  "blkio.weight file (the kernel's I/O scheduler does not do weights)")

    def _root_of(self, controller: str) -> str:
        """The mountpoint of the hierarchy carrying ``controller``."""
        return self._need(controller)[: -len(self.path) - 1]

    # --- limits ---------------------------------------------------------------
    def _apply(self, resources: Mapping[str, Any]) -> None:
        self._apply_memory(section(resources, "memory"))
        self._apply_cpu(section(resources, "cpu"))
        pids_limit = section(resources, "pids").get("limit")
        if pids_limit is not None:
            fs.write(f"{self._need('pids')}/pids.max", pids_limit if pids_limit > 0 else "max")
        weight = section(resources, "blockIO").get("weight")
        if weight:
            fs.write(f"{self._need('blkio')}/blkio.weight", weight)
        if resources.get("devices") is not None:
            self._apply_devices(resources["devices"])
        self._apply_network(section(resources, "network"))
        for limit in resources.get("hugepageLimits") or []:
            fs.write(f"{self._need('hugetlb')}/hugetlb.{limit['pageSize']}.limit_in_bytes", limit["limit"])
        for device, limits in (resources.get("rdma") or {}).items():
            fs.write(f"{self._need('rdma')}/rdma.max", rdma_line(device, limits))

    def _apply_network(self, network: Mapping[str, Any]) -> None:
        if network.get("classID") is not None:
            fs.write(f"{self._need('net_cls')}/net_cls.classid", network["classID"])
        for priority in network.get("priorities") or []:
            # One "interface priority" pair per write: the kernel parses a single line.
            fs.write(f"{self._need('net_prio')}/net_prio.ifpriomap", f"{priority['name']} {priority['priority']}")

    def _apply_memory(self, memory: Mapping[str, Any]) -> None:
        if not memory:
            return
        directory = self._need("memory")
        limit, swap = memory.get("limit"), memory.get("swap")
        memsw = f"{directory}/memory.memsw.limit_in_bytes"
        if swap is not None and not os.path.exists(memsw):
            self.warnings.append("Your kernel does not support swap limit capabilities or the cgroup is not "
                                 "mounted. Memory limited without swap.")
            swap = None
        if swap is not None:
            # memsw must stay >= limit at every step: raise memsw first when it grows.
            current_memsw = int(fs.read(memsw))
            if swap == -1 or swap >= current_memsw:
                fs.write(memsw, swap)
                if limit is not None:
                    fs.write(f"{directory}/memory.limit_in_bytes", limit)
            else:
                if limit is not None:
                    fs.write(f"{directory}/memory.limit_in_bytes", limit)
                fs.write(memsw, swap)
        elif limit is not None:
            fs.write(f"{directory}/memory.limit_in_bytes", limit)
        if memory.get("reservation") is not None:
            fs.write(f"{directory}/memory.soft_limit_in_bytes", memory["reservation"])
        if memory.get("swappiness") is not None:
            fs.write(f"{directory}/memory.swappiness", memory["swappiness"])
        if memory.get("disableOOMKiller"):
            fs.write(f"{directory}/memory.oom_control", 1)
        # "kernel" and "kernelTCP" are ignored: kernels since 5.16 no longer honour them.

    def _apply_cpu(self, cpu: Mapping[str, Any]) -> None:
        if not cpu:
            return
        if cpu.get("shares"):
            fs.write(f"{self._need('cpu')}/cpu.shares", cpu["shares"])
        if cpu.get("period"):
            fs.write(f"{self._need('cpu')}/cpu.cfs_period_us", cpu["period"])
        if cpu.get("quota") is not None and cpu["quota"] != 0:
            fs.write(f"{self._need('cpu')}/cpu.cfs_quota_us", cpu["quota"] if cpu["quota"] > 0 else -1)
        # Real-time bandwidth, period first (runc's order); the kernel refuses more runtime than
        # the parent cgroup grants, and the files exist only with CONFIG_RT_GROUP_SCHED.
        for key, name in (("realtimePeriod", "cpu.rt_period_us"), ("realtimeRuntime", "cpu.rt_runtime_us")):
            if cpu.get(key):
                path = f"{self._need('cpu')}/{name}"
                if not os.path.exists(path):
                    raise CgroupError(f"linux.resources.cpu.{key} is not supported on this host: {path} does not "
                                      "exist (the kernel has no real-time group scheduling)")
                fs.write(path, cpu[key])
        if cpu.get("cpus"):
            fs.write(f"{self._need('cpuset')}/cpuset.cpus", cpu["cpus"])
        if cpu.get("mems"):
            fs.write(f"{self._need('cpuset')}/cpuset.mems", cpu["mems"])

    def _apply_devices(self, rules: list[Mapping[str, Any]]) -> None:
        directory = self._need("devices")
        for rule in rules:
            target = "devices.allow" if rule["allow"] else "devices.deny"
            fs.write(f"{directory}/{target}", device_rule_line(rule))

    def _set_freezer(self, state: str) -> None:
        path = f"{self._need('freezer')}/freezer.state"
        fs.write(path, state)
        deadline = time.monotonic() + DESTROY_TIMEOUT_S
        while fs.read(path).strip() != state:
            if time.monotonic() >= deadline:
                raise CgroupError(f"{path} did not reach {state} within {DESTROY_TIMEOUT_S:.0f}s")
            time.sleep(0.001)
            fs.write(path, state)

    # --- lookup ---------------------------------------------------------------
    def _dir(self, controller: str) -> str | None:
        return self._by_controller.get(controller)

    def _need(self, controller: str) -> str:
        directory = self._by_controller.get(controller)
        if directory is None:
            raise CgroupError(f"the {controller} cgroup controller is not mounted on this host "
                              "(no v1 hierarchy carries it)")
        return directory

    def _procs_dir(self) -> str:
        return self._dir("pids") or self._dir("memory") or self.dirs[0]
