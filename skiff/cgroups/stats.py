"""Resource usage of one container as its cgroup counts it.

``skiff stats`` computes its columns from two samples (the engine's ``stats``: CPU %, the memory
limit shown) and the CLI prints them.
"""

from __future__ import annotations

from collections import namedtuple

# A v1 limit at or above this is the kernel's "unlimited" (PAGE_COUNTER_MAX rounded to pages).
UNLIMITED_THRESHOLD = 1 << 62


# Named tuples rather than dataclasses keep ``import skiff.cgroups`` cheap (see detect.py).
class Stats(namedtuple("Stats", "cpu_usage_ns memory_usage memory_limit pids_current pids_limit taken_ns "
                               "block_read block_write", defaults=(0, 0))):
    """One sample of a container's usage.

    ``cpu_usage_ns``: CPU time used so far; ``memory_usage``: bytes, without
    inactive page cache, as ``docker stats`` shows it; ``memory_limit`` and
    ``pids_limit``: None when unlimited; ``taken_ns``: time.monotonic_ns() of
    the sample, for CPU %; ``block_read``/``block_write``: bytes the cgroup's
    block I/O counters hold (see ``blkio_v1_bytes``).
    """

    __slots__ = ()
    cpu_usage_ns: int
    memory_usage: int
    memory_limit: int | None
    pids_current: int
    pids_limit: int | None
    taken_ns: int
    block_read: int
    block_write: int


def blkio_v1_bytes(texts: list[str]) -> tuple[int, int]:
    """(read, write) bytes summed over the devices of v1 ``blkio.*io_service_bytes*`` files.

    Docker adds every ``Read`` and ``Write`` entry it is given (its containerd reads CFQ's
    ``blkio.io_service_bytes_recursive`` where the kernel has CFQ, and always
    ``blkio.throttle.io_service_bytes``). The throttle counters only move for a device
    with a throttle rule on recent kernels, so, as Docker's, they often read 0.
    """
    read = write = 0
    for text in texts:
        for line in text.splitlines():
            fields = line.split()
            if len(fields) != 3 or not fields[2].isdigit():
                continue  # "Total N"
            if fields[1][:1] in ("R", "r"):
                read += int(fields[2])
            elif fields[1][:1] in ("W", "w"):
                write += int(fields[2])
    return read, write


def io_stat_bytes(text: str) -> tuple[int, int]:
    """(read, write) bytes summed over the devices of v2 ``io.stat`` (``rbytes=``/``wbytes=``)."""
    read = write = 0
    for line in text.splitlines():
        for field in line.split()[1:]:
            key, _, value = field.partition("=")
            if key == "rbytes" and value.isdigit():
                read += int(value)
            elif key == "wbytes" and value.isdigit():
                write += int(value)
    return read, write

