"""Detection from mountinfo text, block I/O counters, and Docker's stats table."""

from __future__ import annotations

from skiff.cgroups import Stats
from skiff.cgroups.detect import setup_from_mountinfo
from skiff.cgroups.stats import blkio_v1_bytes, io_stat_bytes
from skiff.cli.stats import bytes_size, format_stats, human_size
from skiff.engine.stats import StatsRow, cpu_percent

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd,release_agent=/x
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
90 23 0:32 / /mnt/mem\\040copy rw,relatime - cgroup cgroup rw,memory
"""
V2 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"
V1 = "\n".join(line for line in HYBRID.splitlines() if "cgroup2" not in line)


def test_hybrid_v1_and_v2_are_told_apart() -> None:
    hybrid = setup_from_mountinfo(HYBRID)
    assert hybrid.mode == "hybrid" and hybrid.unified == "/sys/fs/cgroup/unified"
    assert [sorted(h.controllers) for h in hybrid.v1] == [["cpu", "cpuacct"], ["cpuset"], ["memory"], ["name=systemd"]]
    assert hybrid.v1_mount("cpuacct") == "/sys/fs/cgroup/cpu,cpuacct"
    assert hybrid.v1_mount("memory") == "/sys/fs/cgroup/memory"   # the second mount of it is ignored
    assert hybrid.v1_mount("pids") is None
    v2 = setup_from_mountinfo(V2)
    assert (v2.mode, v2.unified, v2.v1) == ("v2", "/sys/fs/cgroup", ())
    v1 = setup_from_mountinfo(V1)
    assert (v1.mode, v1.unified) == ("v1", None)


def test_a_named_hierarchy_alone_does_not_make_v1() -> None:
    text = V2 + "40 31 0:37 / /run/systemd rw - cgroup cgroup rw,name=systemd\n"
    assert setup_from_mountinfo(text).mode == "v2"


def test_escaped_mountpoints_are_decoded() -> None:
    text = "32 31 0:29 / /cg\\040one rw - cgroup cgroup rw,pids\n"
    assert setup_from_mountinfo(text).v1[0].mountpoint == "/cg one"


def _sample(cpu_ns: int, t_ns: int, usage: int, limit: int | None, pids: int, block: tuple[int, int] = (0, 0),
            ) -> Stats:
    return Stats(cpu_usage_ns=cpu_ns, memory_usage=usage, memory_limit=limit, pids_current=pids, pids_limit=None,
                 taken_ns=t_ns, block_read=block[0], block_write=block[1])


def test_cpu_percent_is_cpu_time_over_wall_time() -> None:
    assert cpu_percent(_sample(0, 0, 0, None, 1), _sample(500_000_000, 1_000_000_000, 0, None, 1)) == 50.0
    assert cpu_percent(_sample(0, 5, 0, None, 1), _sample(10, 5, 0, None, 1)) == 0.0


def test_bytes_size_matches_docker() -> None:
    assert bytes_size(0) == "0B"
    assert bytes_size(1536) == "1.5KiB"
    assert bytes_size(1_536_000) == "1.465MiB"
    assert bytes_size(8 * 1024**3) == "8GiB"


def test_human_size_is_dockers_decimal_size_with_three_digits() -> None:
    """go-units HumanSizeWithPrecision(size, 3), as docker stats prints NET I/O and BLOCK I/O."""
    assert [human_size(n) for n in (0, 336, 999, 1000, 1110, 1226, 5_242_880, 999_500, 12_345_678_901)] == [
        "0B", "336B", "999B", "1kB", "1.11kB", "1.23kB", "5.24MB", "1e+03kB", "12.3GB"]


def test_block_io_counters_of_v1_and_v2() -> None:
    throttle = "254:0 Read 4096\n254:0 Write 5242880\n254:0 Sync 5242880\n254:0 Async 0\n254:0 Discard 0\n" \
               "254:0 Total 5246976\n8:0 Read 1\n8:0 Write 2\nTotal 5246979\n"
    assert blkio_v1_bytes([throttle]) == (4097, 5242882)
    assert blkio_v1_bytes(["Total 0\n"]) == (0, 0)
    assert blkio_v1_bytes([throttle, throttle]) == (8194, 10485764)  # Docker adds CFQ's and throttle's
    io_stat = "254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n8:16 rbytes=1 wbytes=1 rios=1\n"
    assert io_stat_bytes(io_stat) == (4097, 8193)
    assert io_stat_bytes("") == (0, 0)


def test_format_stats_renders_dockers_table() -> None:
    mib = 1 << 20
    rows = [
        StatsRow("0123456789abcdef0123", "web", _sample(0, 0, 0, None, 1),
                 _sample(250_000_000, 1_000_000_000, 10 * mib, 64 * mib, 3, (0, 5_242_880)), 1110, 336),
        StatsRow("fedcba9876543210", "unlimited-worker", _sample(0, 0, 0, None, 1),
                 _sample(0, 1_000_000_000, 512 * mib, None, 12)),
    ]
    table = format_stats(rows, host_memory=2048 * mib)
    assert table == (
        "CONTAINER ID   NAME               CPU %     MEM USAGE / LIMIT   MEM %     NET I/O         BLOCK I/O     PIDS\n"
        "0123456789ab   web                25.00%    10MiB / 64MiB       15.62%    1.11kB / 336B   0B / 5.24MB   3\n"
        "fedcba987654   unlimited-worker   0.00%     512MiB / 2GiB       25.00%    0B / 0B         0B / 0B       12\n"
    )
