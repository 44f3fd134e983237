"""`skiff stats` (issue 5) and `skiff port` (issue 6) on real containers."""

from __future__ import annotations

import json
import re

from tests.conftest import Skiff
from tests.e2e.test_lifecycle import detach, lc  # noqa: F401 - lc is a fixture


def test_stats_shows_the_memory_limit_and_pids(lc: Skiff) -> None:
    cid = detach(lc, "--name", "limited", "-m", "64m", "busybox", "sh", "-c", "sleep 300 & sleep 300")
    out = lc.ok("stats", "--no-stream", "limited").splitlines()
    assert out[0].split() == ["CONTAINER", "ID", "NAME", "CPU", "%", "MEM", "USAGE", "/", "LIMIT", "MEM", "%",
                              "PIDS"]
    row = out[1]
    assert row.startswith(cid[:12]) and " limited " in row
    assert re.search(r" / 64MiB ", row), row
    assert int(row.split()[-1]) >= 2  # two sleeps (sh execs the last one)
    (entry,) = [json.loads(line) for line in lc.ok("stats", "--no-stream", "--format", "json").splitlines()]
    assert entry["Name"] == "limited" and entry["MemUsage"].endswith("/ 64MiB") and int(entry["PIDs"]) >= 2
    assert entry["CPUPerc"].endswith("%")


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
