"""`skiff stats` (issue 5) and `skiff port` (issue 6) on real containers."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from tests.conftest import CGROUP_PARENT, Skiff
from tests.e2e.test_lifecycle import detach, lc, wait_for  # noqa: F401 - lc is a fixture


def test_stats_shows_the_memory_limit_and_pids(lc: Skiff) -> None:
    cid = detach(lc, "--name", "limited", "-m", "64m", "busybox", "sh", "-c", "sleep 300 & sleep 300")
    out = lc.ok("stats", "--no-stream", "limited").splitlines()
    assert out[0].split() == ["CONTAINER", "ID", "NAME", "CPU", "%", "MEM", "USAGE", "/", "LIMIT", "MEM", "%",
                              "NET", "I/O", "BLOCK", "I/O", "PIDS"]
    row = out[1]
    assert row.startswith(cid[:12]) and " limited " in row
    assert re.search(r" / 64MiB ", row), row
    assert int(row.split()[-1]) >= 2  # two sleeps (sh execs the last one)
    (entry,) = [json.loads(line) for line in lc.ok("stats", "--no-stream", "--format", "json").splitlines()]
    assert entry["Name"] == "limited" and entry["MemUsage"].endswith("/ 64MiB") and int(entry["PIDs"]) >= 2
    assert entry["CPUPerc"].endswith("%")


SIZE = re.compile(r"^(\d+(?:\.\d+)?)(B|kB|MB|GB)$")


def decimal_bytes(shown: str) -> float:
    """``1.23kB`` -> 1230.0 (Docker's HumanSizeWithPrecision, read back)."""
    match = SIZE.match(shown)
    assert match, shown
    return float(match.group(1)) * 1000 ** ["B", "kB", "MB", "GB"].index(match.group(2))


def io_pair(text: str) -> tuple[float, float]:
    first, slash, second = text.strip().partition(" / ")
    assert slash, text
    return decimal_bytes(first), decimal_bytes(second)


def throttle_rule(cid: str, directory: Path) -> bool:
    """On cgroup v1 the kernel counts a cgroup's block I/O only for a device with a throttle rule:
    give the container one, far above any real rate. False where it cannot be set."""
    blkio = Path(f"/sys/fs/cgroup/blkio/{CGROUP_PARENT}/{cid}")
    if not blkio.is_dir():
        return Path(f"/sys/fs/cgroup/{CGROUP_PARENT}/{cid}/io.stat").exists()  # v2 counts always
    dev = os.stat(directory).st_dev
    try:
        (blkio / "blkio.throttle.write_bps_device").write_text(f"{os.major(dev)}:{os.minor(dev)} {1 << 40}\n")
    except OSError:
        return False
    return True


def test_stats_shows_net_io_and_block_io_as_docker(lc: Skiff, tmp_path: Path) -> None:
    """NET I/O: what the container's interfaces moved, lo not counted (Docker's endpoint
    interfaces); BLOCK I/O: the cgroup's read / written bytes; decimal units, ``1.23kB / 336B``."""
    data = tmp_path / "data"
    data.mkdir()
    cid = lc.ok("run", "-d", "--name", "io", "-v", f"{data}:/data", "busybox", "sh", "-c",
                "ping -c 3 -i 0.2 $(ip route | awk '/^default/ {print $3}'); echo pinged; sleep 300").strip()
    wait_for(lambda: "pinged" in lc.ok("logs", "io"))
    assert "3 packets received" in lc.ok("logs", "io")
    received, sent = io_pair(lc.ok("stats", "--no-stream", "--format", "{{.NetIO}}", "io"))
    assert sent >= 3 * 98 and received >= 3 * 98  # three pings and their replies, 98 bytes on the wire each
    blocked = throttle_rule(cid, data)
    lc.ok("exec", "io", "dd", "if=/dev/zero", "of=/data/f", "bs=1M", "count=2", "oflag=direct")
    (line,) = lc.ok("stats", "--no-stream", "--format", "{{.Name}}|{{.NetIO}}|{{.BlockIO}}", "io").splitlines()
    name, net_io, block_io = line.split("|")
    assert name == "io" and io_pair(net_io)[1] >= sent
    if blocked:
        assert io_pair(block_io)[1] >= 2 * 1024 * 1024, block_io
    else:
        io_pair(block_io)  # Docker's format, whatever the kernel counted
    table = lc.ok("stats", "--no-stream", "io").splitlines()
    assert table[0].split()[11:15] == ["NET", "I/O", "BLOCK", "I/O"]
    assert re.search(r"\s\d+(\.\d+)?(B|kB|MB) / \d+(\.\d+)?(B|kB|MB)\s", table[1]), table
    (entry,) = [json.loads(row) for row in lc.ok("stats", "--no-stream", "--format", "json", "io").splitlines()]
    assert set(entry) == {"BlockIO", "CPUPerc", "Container", "ID", "MemPerc", "MemUsage", "Name", "NetIO", "PIDs"}
    # As Docker: --network none counts only lo (never shown); the host's network has no endpoint.
    detach(lc, "--name", "alone", "busybox", "sh", "-c", "ping -c 2 -i 0.2 127.0.0.1; sleep 300")
    lc.ok("run", "-d", "--name", "onhost", "--network", "host", "busybox", "sleep", "300")
    wait_for(lambda: "2 packets received" in lc.ok("logs", "alone"))
    shown = lc.ok("stats", "--no-stream", "--format", "{{.Name}} {{.NetIO}}", "io", "alone", "onhost")
    assert shown.splitlines()[1:] == ["alone 0B / 0B", "onhost 0B / 0B"]


def test_stats_of_an_unknown_container_fails(lc: Skiff) -> None:
    proc = lc("stats", "--no-stream", "nope")
    assert proc.returncode == 1 and "No such container: nope" in proc.stderr


def test_port_lists_published_ports(lc: Skiff) -> None:
    cid = lc.ok("run", "-d", "-p", "127.0.0.1::80", "busybox", "sleep", "300").strip()
    (line,) = lc.ok("port", cid).splitlines()
    match = re.fullmatch(r"80/tcp -> 127\.0\.0\.1:(\d+)", line)
    assert match and int(match.group(1)) > 0, line
    assert lc.ok("port", cid, "80") == f"127.0.0.1:{match.group(1)}\n"
    assert lc.ok("port", cid, "80/tcp") == f"127.0.0.1:{match.group(1)}\n"
    proc = lc("port", cid, "81")
    assert proc.returncode != 0 and "No public port '81/tcp'" in proc.stderr
