"""``skiff stats``' rows: two cgroup samples of a container, and the bytes of its network."""

from __future__ import annotations

from collections import namedtuple
from typing import Any


class StatsRow(namedtuple("StatsRow", "container_id name previous current net_rx net_tx", defaults=(0, 0))):
    """One container: two samples of its cgroup (for CPU %), and what its interfaces moved."""

    __slots__ = ()
    container_id: str
    name: str
    previous: Any  # skiff.cgroups.Stats
    current: Any
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


def api_document(row: StatsRow) -> dict[str, Any]:
    """One row in the shape of Docker's stats API (``GET /containers/ID/stats?stream=0``), with
    the fields skiff measures: what docker-py's ``Container.stats()`` returns."""
    import os

    from skiff.cgroups.stats import host_memory_bytes, memory_limit_shown
    from skiff.timestamps import now

    previous, current = row.previous, row.current
    return {
        "read": now(),
        "id": row.container_id,
        "name": f"/{row.name}",
        "cpu_stats": {"cpu_usage": {"total_usage": current.cpu_usage_ns}, "online_cpus": os.cpu_count() or 1},
        "precpu_stats": {"cpu_usage": {"total_usage": previous.cpu_usage_ns}},
        # skiff's own: the CPU % ``skiff stats`` shows, over the two samples 0.1 s apart
        "cpu_percent": _cpu_percent(previous, current),
        "memory_stats": {"usage": current.memory_usage,
                         "limit": memory_limit_shown(current, host_memory_bytes())},
        "pids_stats": {"current": current.pids_current,
                       **({"limit": current.pids_limit} if current.pids_limit is not None else {})},
        "blkio_stats": {"io_service_bytes_recursive": [
            {"op": "read", "value": current.block_read}, {"op": "write", "value": current.block_write}]},
        "networks": {"eth0": {"rx_bytes": row.net_rx, "tx_bytes": row.net_tx}},
    }


def _cpu_percent(previous: Any, current: Any) -> float:
    from skiff.cgroups.stats import cpu_percent

    return round(cpu_percent(previous, current), 2)
