"""``skiff stats``' rows: two cgroup samples of a container, and the bytes of its network;
what Docker computes from them (CPU %, the memory limit shown), and the host's memory."""

from __future__ import annotations

from collections import namedtuple
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from skiff.cgroups.stats import Stats


class StatsRow(namedtuple("StatsRow", "container_id name previous current net_rx net_tx", defaults=(0, 0))):
    """One container: two samples of its cgroup (for CPU %), and what its interfaces moved."""

    __slots__ = ()
    container_id: str
    name: str
    previous: Stats
    current: Stats
    net_rx: int
    net_tx: int


def network_io(pid: int, network_mode: str) -> tuple[int, int]:
    """(received, sent) bytes of the container's interfaces, as Docker's NET I/O sums them.

    Docker counts the interfaces of the container's network endpoints, so ``lo`` never, and a
    container on the host's network shows nothing. They are read from the network namespace
    of its init (``/proc/PID/net/dev``); a ``container:X`` one shares X's, and shows X's counts,
    as Docker does.
    """
    if not pid or network_mode == "host":
        return 0, 0
    try:
        with open(f"/proc/{pid}/net/dev", encoding="ascii") as f:
            lines = f.read().splitlines()[2:]
    except OSError:
        return 0, 0  # ended meanwhile
    received = sent = 0
    for line in lines:
        name, _, counters = line.partition(":")
        fields = counters.split()
        if name.strip() == "lo" or len(fields) < 9:
            continue
        received += int(fields[0])
        sent += int(fields[8])
    return received, sent


def cpu_percent(previous: Stats, current: Stats) -> float:
    """Share of one CPU used between the samples, as Docker computes it.

    Docker divides the container's CPU time by the host's (all CPUs) and
    multiplies by the CPU count; over the same interval that equals CPU time over
    wall time, which is what is measured here.
    """
    wall = current.taken_ns - previous.taken_ns
    used = current.cpu_usage_ns - previous.cpu_usage_ns
    if wall <= 0 or used < 0:
        return 0.0
    return used / wall * 100.0


def memory_limit_shown(stats: Stats, host_memory: int) -> int:
    """Docker's LIMIT: the cgroup's limit, or the host's memory when that is less (or none is set)."""
    if stats.memory_limit is None or stats.memory_limit >= host_memory:
        return host_memory
    return stats.memory_limit


def host_memory_bytes() -> int:
    """MemTotal of /proc/meminfo in bytes (``info``'s MemTotal, ``stats``' limit); 0 if unreadable."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024  # the kernel writes kB, meaning KiB
    except OSError:
        pass
    return 0


def api_document(row: StatsRow) -> dict[str, Any]:
    """One row in the shape of Docker's stats API (``GET /containers/ID/stats``): what docker-py's
    ``Container.stats()`` returns and the docker CLI's ``stats`` computes its columns from.

    ``system_cpu_usage`` is the host's CPU time (/proc/stat) at the second sample, and the first
    sample's is that less the wall time between them times the CPUs: Docker's CPU % (container
    delta / system delta x CPUs) then equals skiff's (CPU time over wall time).
    """
    import os

    from skiff.timestamps import now

    previous, current = row.previous, row.current
    cpus = os.cpu_count() or 1
    system = host_cpu_ns()
    wall = max(current.taken_ns - previous.taken_ns, 0)
    read = now()
    return {
        "read": read,
        "preread": _before(read, wall),
        "id": row.container_id,
        "name": f"/{row.name}",
        "num_procs": 0,
        "cpu_stats": _cpu_stats(current, system, cpus),
        "precpu_stats": _cpu_stats(previous, max(system - wall * cpus, 0), cpus),
        # skiff's own: the CPU % ``skiff stats`` shows, over the two samples 0.1 s apart
        "cpu_percent": _cpu_percent(previous, current),
        "memory_stats": {"usage": current.memory_usage,
                         "limit": memory_limit_shown(current, host_memory_bytes()), "stats": {}},
        "pids_stats": {"current": current.pids_current,
                       **({"limit": current.pids_limit} if current.pids_limit is not None else {})},
        "blkio_stats": {"io_service_bytes_recursive": [
            {"major": 0, "minor": 0, "op": "read", "value": current.block_read},
            {"major": 0, "minor": 0, "op": "write", "value": current.block_write}]},
        "storage_stats": {},
        "networks": {"eth0": {"rx_bytes": row.net_rx, "rx_packets": 0, "rx_errors": 0, "rx_dropped": 0,
                              "tx_bytes": row.net_tx, "tx_packets": 0, "tx_errors": 0, "tx_dropped": 0}},
    }


def _cpu_stats(sample: Stats, system: int, cpus: int) -> dict[str, Any]:
    return {"cpu_usage": {"total_usage": sample.cpu_usage_ns, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "system_cpu_usage": system, "online_cpus": cpus,
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}


def host_cpu_ns() -> int:
    """The host's CPU time in ns, as Docker's getSystemCPUUsage: /proc/stat's first line, in ticks."""
    import os

    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()[1:8]
    except OSError:
        return 0
    return sum(int(v) for v in fields) * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def _before(stamp: str, nanos: int) -> str:
    """The RFC 3339 time ``nanos`` before ``stamp`` (the first sample's ``preread``)."""
    import time

    from skiff.timestamps import parse

    total = int(parse(stamp)) * 1_000_000_000 + int(stamp.rpartition(".")[2].rstrip("Z") or 0) - nanos
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(total // 1_000_000_000))
    return f"{seconds}.{total % 1_000_000_000:09d}Z"


def _cpu_percent(previous: Stats, current: Stats) -> float:
    return round(cpu_percent(previous, current), 2)
