"""``skiff-oci update`` with runc's resource flags: on this host's cgroup v1 beside runc, and on
the fake cgroup2 tree (tests/cgroups/fake_cgroupfs.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import skiff.cgroups as cgroups
from skiff.oci.update_flags import resources_from_flags
from tests.cgroups.fake_cgroupfs import FakeKernel, installed_fake_v2
from tests.oci.test_runc_behaviours import Runtimes, runtimes  # noqa: F401 - the fixture

V1 = Path("/sys/fs/cgroup")
FLAGS = ["--memory", "512m", "--memory-reservation", "256m", "--memory-swap", "1g", "--cpu-share", "512",
         "--cpu-period", "200000", "--cpu-quota", "100000", "--cpuset-cpus", "0", "--cpuset-mems", "0",
         "--pids-limit", "50", "--cpu-rt-period", "500000"]
FILES = {"memory": ["memory.limit_in_bytes", "memory.soft_limit_in_bytes", "memory.memsw.limit_in_bytes"],
         "cpu": ["cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.rt_period_us"],
         "cpuset": ["cpuset.cpus", "cpuset.mems"], "pids": ["pids.max"]}


def _limits(name: str) -> dict[str, str]:
    path = f"{os.environ['SKIFF_CGROUP_PARENT']}/{name}-c1"
    return {file: (V1 / controller / path / file).read_text().strip()
            for controller, files in FILES.items() for file in files}


pytestmark = pytest.mark.skipif(not (V1 / "memory" / "memory.memsw.limit_in_bytes").exists()
                                or not (V1 / "cpu" / "cpu.rt_period_us").exists(),
                                reason="needs cgroup v1 memory (with swap accounting) and rt cpu files")


def test_update_flags_write_what_runcs_write(runtimes: Runtimes) -> None:
    runtimes.create(runtimes.spec(["sleep", "30"]))
    for name in ("runc", "skiff"):
        result = runtimes.command(name, "update", *FLAGS, f"{name}-c1")
        assert result.returncode == 0, (name, result.stderr)
    ours, theirs = _limits("skiff"), _limits("runc")
    assert ours == theirs
    assert ours["memory.limit_in_bytes"] == str(512 << 20) and ours["cpu.shares"] == "512"
    assert ours["memory.memsw.limit_in_bytes"] == str(1 << 30) and ours["pids.max"] == "50"
    assert ours["cpu.rt_period_us"] == "500000"
    # Docker's spelling of --cpu-share; -1 lifts the memory limit (memory+swap with it), as runc's.
    for name in ("runc", "skiff"):
        args = ["--cpu-shares" if name == "skiff" else "--cpu-share", "256", "--memory", "-1", "--pids-limit", "-1"]
        result = runtimes.command(name, "update", *args, f"{name}-c1")
        assert result.returncode == 0, (name, result.stderr)
    ours, theirs = _limits("skiff"), _limits("runc")
    assert ours == theirs and ours["cpu.shares"] == "256" and ours["pids.max"] == "max"


@pytest.mark.parametrize("flag, value", [("--l3-cache-schema", "L3:0=f"), ("--mem-bw-schema", "MB:0=70")])
def test_rdt_schemas_are_refused_where_the_host_has_no_resctrl(runtimes: Runtimes, flag: str, value: str) -> None:
    if Path("/sys/fs/resctrl/info").exists():
        pytest.skip("this host has resctrl")
    runtimes.create(runtimes.spec(["sleep", "30"]))
    results = {name: runtimes.command(name, "update", flag, value, f"{name}-c1") for name in ("runc", "skiff")}
    assert {name: r.returncode for name, r in results.items()} == {"runc": 1, "skiff": 1}
    words = "l3 cache schema is not enabled" if "l3" in flag else "memory bandwidth schema is not enabled"
    assert words in results["runc"].stderr and words in results["skiff"].stderr, results["skiff"].stderr


def test_a_bad_size_is_refused_like_runc(runtimes: Runtimes) -> None:
    runtimes.create(runtimes.spec(["sleep", "30"]))
    results = {name: runtimes.command(name, "update", "--memory", "12x", f"{name}-c1") for name in ("runc", "skiff")}
    assert {name: r.returncode for name, r in results.items()} == {"runc": 1, "skiff": 1}
    assert "invalid value for memory: invalid size: '12x'" in results["skiff"].stderr, results["skiff"].stderr


def test_update_flags_on_cgroup_v2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kernel: FakeKernel = installed_fake_v2(tmp_path / "cgroup", monkeypatch)
    cgroup = cgroups.open("/skiff/c1", root=kernel.root)
    cgroup.create({})
    cgroup.update(resources_from_flags({"memory": "512m", "memory-swap": "1g", "memory-reservation": "128m",
                                        "cpu-quota": "50000", "cpu-period": "100000", "cpuset-cpus": "0-1",
                                        "pids-limit": "7"}))
    directory = kernel.root / "skiff" / "c1"
    assert (directory / "memory.max").read_text().strip() == str(512 << 20)
    assert (directory / "memory.swap.max").read_text().strip() == str(512 << 20)  # v2's swap is swap alone
    assert (directory / "memory.low").read_text().strip() == str(128 << 20)
    assert (directory / "cpu.max").read_text().strip() == "50000 100000"
    assert (directory / "cpuset.cpus").read_text().strip() == "0-1"
    assert (directory / "pids.max").read_text().strip() == "7"
    with pytest.raises(Exception, match="not supported on cgroup v2"):
        cgroup.update(resources_from_flags({"cpu-rt-runtime": "1000"}))
