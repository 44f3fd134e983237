"""``skiff stats``' rows: two cgroup samples of a container, and the bytes of its network."""

from __future__ import annotations

from collections import namedtuple
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from skiff.cgroups import Stats


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
