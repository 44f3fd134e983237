"""The v2 code against a fake cgroup2 tree: exactly what is written, and where."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

import skiff.cgroups as cgroups
from skiff.cgroups import fs
from skiff.cgroups.v2 import V2Cgroup, blkio_to_io_weight, shares_to_weight
from skiff.engine.resources import resources_from_flags
from skiff.errors import CgroupError, DeviceFilterError

from .fake_cgroupfs import FakeKernel, installed_fake_v2

MiB = 1 << 20


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeKernel:
    return installed_fake_v2(tmp_path / "cgroup", monkeypatch)


def test_fake_tree_is_detected_as_v2(kernel: FakeKernel) -> None:
    setup = cgroups.detect(kernel.root)
    assert setup.mode == "v2" and setup.unified == str(kernel.root) and setup.v1 == ()
    assert isinstance(cgroups.open("/skiff/abc", root=kernel.root), V2Cgroup)


def test_create_enables_controllers_and_writes_every_limit(kernel: FakeKernel) -> None:
    cg = cgroups.open("/skiff/c1", root=kernel.root)
    devices = resources_from_flags()["devices"]
    cg.create({
        "memory": {"limit": 64 * MiB, "swap": 96 * MiB, "reservation": 32 * MiB},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 5},
        "blockIO": {"weight": 500},
        "devices": devices,
    })
    assert kernel.device_filters == {str(kernel.root / "skiff/c1"): [devices]}
    expected_subtree = "+cpuset +cpu +io +memory +pids +hugetlb"
    assert kernel.read("cgroup.subtree_control") == expected_subtree
    assert kernel.read("skiff/cgroup.subtree_control") == expected_subtree
    # The container's own cgroup holds processes: nothing may be enabled below it.
    assert kernel.read("skiff/c1/cgroup.subtree_control") == ""
    assert kernel.read("skiff/c1/memory.max") == str(64 * MiB)
    assert kernel.read("skiff/c1/memory.swap.max") == str(32 * MiB)
    assert kernel.read("skiff/c1/memory.low") == str(32 * MiB)
    assert kernel.read("skiff/c1/cpu.weight") == str(1 + (510 * 9999) // 262142) == "20"
    assert kernel.read("skiff/c1/cpu.max") == "50000 100000"
    assert kernel.read("skiff/c1/cpuset.cpus") == "0"
    assert kernel.read("skiff/c1/cpuset.mems") == "0"
    assert kernel.read("skiff/c1/pids.max") == "5"
    assert kernel.read("skiff/c1/io.weight") == "default 4950"   # 1 + (500-10)*9999//990, as runc
    assert kernel.mkdirs == [str(kernel.root / "skiff"), str(kernel.root / "skiff/c1")]


def test_unlimited_values_are_written_as_max(kernel: FakeKernel) -> None:
    cg = cgroups.open("/skiff/c2", root=kernel.root)
    cg.create({"memory": {"limit": -1, "swap": -1}, "cpu": {"quota": -1, "period": 50000}, "pids": {"limit": 0}})
    assert kernel.read("skiff/c2/memory.max") == "max"
    assert kernel.read("skiff/c2/memory.swap.max") == "max"
    assert kernel.read("skiff/c2/cpu.max") == "max 50000"
    assert kernel.read("skiff/c2/pids.max") == "max"


def test_nothing_is_written_when_nothing_is_asked(kernel: FakeKernel) -> None:
    cg = cgroups.open("/skiff/c3", root=kernel.root)
    cg.create({})
    assert kernel.read("skiff/c3/memory.max") == "max\n"
    assert kernel.read("skiff/c3/cpu.max") == "max 100000\n"


def test_controllers_already_enabled_are_not_written_again(kernel: FakeKernel) -> None:
    kernel.set("cgroup.subtree_control", "cpuset cpu io memory pids hugetlb\n")
    os.chmod(kernel.root / "cgroup.subtree_control", 0o444)
    try:
        cgroups.open("/skiff/c4", root=kernel.root).create({})
    finally:
        os.chmod(kernel.root / "cgroup.subtree_control", 0o644)
    assert kernel.read("skiff/cgroup.subtree_control") == "+cpuset +cpu +io +memory +pids +hugetlb"


def test_shares_convert_to_weight_as_runc() -> None:
    assert shares_to_weight(2) == 1
    assert shares_to_weight(1024) == 39
    assert shares_to_weight(262144) == 10000
    assert (blkio_to_io_weight(10), blkio_to_io_weight(1000)) == (1, 10000)


def test_add_pids_stats_oom_and_destroy(kernel: FakeKernel) -> None:
    cg = cgroups.open("/skiff/c5", root=kernel.root)
    cg.create({"memory": {"limit": 64 * MiB}})
    cg.add(4242)
    assert kernel.read("skiff/c5/cgroup.procs") == "4242"
    assert cg.pids() == [4242]
    kernel.set("skiff/c5/cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n")
    kernel.set("skiff/c5/memory.current", "10485760\n")
    kernel.set("skiff/c5/memory.stat", "anon 8388608\nfile 2097152\ninactive_file 1048576\n")
    kernel.set("skiff/c5/pids.current", "3\n")
    stats = cg.stats()
    assert (stats.cpu_usage_ns, stats.memory_usage, stats.memory_limit, stats.pids_current, stats.pids_limit) == \
        (1_500_000, 9 * MiB, 64 * MiB, 3, None)
    assert cg.oom_killed() is False
    kernel.set("skiff/c5/memory.events", "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\noom_group_kill 0\n")
    assert cg.oom_killed() is True
    # Busy until the process leaves: destroy waits, then gives up naming the pid.
    with pytest.raises(CgroupError, match=r"cannot remove cgroup .*/skiff/c5: Device or resource busy.*4242"):
        cg.destroy(timeout=0.05)
    threading.Timer(0.05, kernel.set, ("skiff/c5/cgroup.procs", "")).start()
    cg.destroy()
    assert not (kernel.root / "skiff/c5").exists()
    assert (kernel.root / "skiff").is_dir()
    cg.destroy()  # idempotent


def test_freeze_and_thaw_wait_for_the_kernel(kernel: FakeKernel) -> None:
    cg = cgroups.open("/skiff/c6", root=kernel.root)
    cg.create({})
    threading.Timer(0.02, kernel.set, ("skiff/c6/cgroup.events", "populated 1\nfrozen 1\n")).start()
    started = time.monotonic()
    cg.freeze()
    assert time.monotonic() - started >= 0.015
    assert kernel.read("skiff/c6/cgroup.freeze") == "1"
    kernel.set("skiff/c6/cgroup.events", "populated 1\nfrozen 0\n")
    cg.thaw()
    assert kernel.read("skiff/c6/cgroup.freeze") == "0"


def test_update_rewrites_only_what_is_given(kernel: FakeKernel) -> None:
    cg = cgroups.open("/skiff/c7", root=kernel.root)
    cg.create({"memory": {"limit": 64 * MiB}, "pids": {"limit": 10}})
    cg.update({"pids": {"limit": 20}})
    assert kernel.read("skiff/c7/pids.max") == "20"
    assert kernel.read("skiff/c7/memory.max") == str(64 * MiB)


@pytest.mark.parametrize("resources, message", [
    ({"memory": {"limit": "64m"}}, "linux.resources.memory.limit: expected an integer, got '64m'"),
    ({"memory": {"limit": -5}}, "linux.resources.memory.limit: -5 is negative (use -1 for no limit)"),
    ({"cpu": {"shares": -1}}, "linux.resources.cpu.shares: -1 is negative"),
    ({"cpu": {"cpus": "0-x"}}, "linux.resources.cpu.cpus: invalid list '0-x' (expected e.g. 0-3,5)"),
    ({"blockIO": {"weight": 5}}, "linux.resources.blockIO.weight: 5 is outside 10-1000"),
    ({"devices": [{"allow": True, "type": "c", "major": -3, "access": "rwm"}]},
     "linux.resources.devices: invalid major -3 in {'allow': True, 'type': 'c', 'major': -3, 'access': 'rwm'} "
     "(a device number, or -1 for any)"),
    ({"memory": {"swap": 64 * MiB}}, "linux.resources.memory.swap 67108864 needs a memory limit as well"),
])
def test_invalid_resources_create_nothing(kernel: FakeKernel, resources: dict, message: str) -> None:
    cg = cgroups.open("/skiff/bad", root=kernel.root)
    with pytest.raises(CgroupError) as caught:
        cg.create(resources)
    assert str(caught.value) == message
    assert not (kernel.root / "skiff" / "bad").exists()
    assert not (kernel.root / "skiff").exists() or kernel.mkdirs


def test_a_failed_write_removes_what_create_made(kernel: FakeKernel, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = fs.write

    def refuse_memory_max(path: str, value: str | int) -> None:
        if path.endswith("/memory.max"):
            os.unlink(path)   # the write then fails as the kernel's would: the file is not there
        real_write(path, value)

    monkeypatch.setattr(fs, "write", refuse_memory_max)
    cg = cgroups.open("/skiff/nomem", root=kernel.root)
    with pytest.raises(CgroupError, match=r"cannot open .*/skiff/nomem/memory.max to write"):
        cg.create({"memory": {"limit": 64 * MiB}})
    assert not (kernel.root / "skiff").exists()


def test_device_rules_become_the_filter_on_create_and_update(kernel: FakeKernel) -> None:
    cg = cgroups.open("/skiff/dev", root=kernel.root)
    disk = [{"allow": False, "access": "rwm"}, {"allow": True, "type": "b", "major": 8, "minor": 0, "access": "rw"}]
    cg.create({"devices": disk, "pids": {"limit": 5}})
    directory = str(kernel.root / "skiff/dev")
    assert kernel.device_filters == {directory: [disk]}
    cg.update({"pids": {"limit": 6}})   # no "devices": the filter stays as it is
    assert kernel.device_filters == {directory: [disk]}
    cg.update({"devices": []})          # an empty allowlist: nothing allowed
    assert kernel.device_filters == {directory: [disk, []]}
    cg.destroy()
    assert kernel.device_filters == {}


def test_no_device_rules_attach_no_filter(kernel: FakeKernel) -> None:
    cgroups.open("/skiff/nodev", root=kernel.root).create({"pids": {"limit": 5}})
    assert kernel.device_filters == {}


def test_a_refused_device_filter_removes_what_create_made(kernel: FakeKernel,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(directory: str, rules: list[dict]) -> None:
        raise DeviceFilterError(f"cannot attach the eBPF device filter to {directory}: Operation not permitted")

    cg = V2Cgroup(str(kernel.root), "/skiff/refused", device_filter=refuse)
    with pytest.raises(DeviceFilterError, match="Operation not permitted"):
        cg.create({"devices": [{"allow": True, "access": "rwm"}]})
    assert not (kernel.root / "skiff").exists()


@pytest.mark.parametrize("resources, field, controller", [
    ({"memory": {"limit": 64 * MiB}}, "memory", "memory"),
    ({"network": {"classID": 1048577}}, "network.classID", "net_cls"),
    ({"network": {"priorities": [{"name": "eth0", "priority": 1}]}}, "network.priorities", "net_prio"),
    ({"hugepageLimits": [{"pageSize": "2MB", "limit": 0}]}, "hugepageLimits", "hugetlb"),
])
def test_limits_of_an_unavailable_controller_are_refused(kernel: FakeKernel, resources: dict, field: str,
                                                         controller: str) -> None:
    kernel.set("cgroup.controllers", "cpu pids\n")   # this "host" offers only cpu and pids
    cg = cgroups.open("/skiff/missing", root=kernel.root)
    with pytest.raises(CgroupError) as caught:
        cg.create(resources)
    assert str(caught.value).startswith(f"linux.resources.{field} needs the {controller} cgroup controller, "
                                        "which is not available on this host")
    assert not (kernel.root / "skiff").exists()


def test_empty_sections_ask_for_no_controller(kernel: FakeKernel) -> None:
    kernel.set("cgroup.controllers", "cpu pids\n")
    cg = cgroups.open("/skiff/empty", root=kernel.root)
    cg.create({"memory": {}, "network": {}, "hugepageLimits": [], "blockIO": {"weight": 0}, "pids": {"limit": 5}})
    assert kernel.read("skiff/empty/pids.max") == "5"
    cg.destroy()


def test_hugetlb_limits_are_written(kernel: FakeKernel) -> None:
    cg = cgroups.open("/skiff/huge", root=kernel.root)
    original_mkdir = kernel.mkdir

    def mkdir_with_hugetlb(path: str) -> bool:
        made = original_mkdir(path)
        (Path(path) / "hugetlb.2MB.max").write_text("max\n")
        return made

    fs.mkdir = mkdir_with_hugetlb   # restored by the fixture's monkeypatch
    cg.create({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MiB}]})
    assert kernel.read("skiff/huge/hugetlb.2MB.max") == str(4 * MiB)


@pytest.mark.parametrize("path", ["/skiff/../../etc", "skiff/./x", "/", "", "system.slice:skiff:abc"])
def test_paths_that_could_escape_are_refused(kernel: FakeKernel, path: str) -> None:
    with pytest.raises(CgroupError, match="invalid cgroupsPath"):
        cgroups.open(path, root=kernel.root)


def test_cleanup_stale_removes_only_dead_containers(kernel: FakeKernel) -> None:
    for cid in ("alive", "dead1", "dead2"):
        cgroups.open(f"/skiff/{cid}", root=kernel.root).create({})
    assert cgroups.cleanup_stale({"alive"}, root=kernel.root) == ["dead1", "dead2"]
    assert sorted(os.listdir(kernel.root / "skiff")) == sorted(
        [name for name in os.listdir(kernel.root / "skiff") if not name.startswith("dead")])
    assert (kernel.root / "skiff/alive").is_dir()
    assert not (kernel.root / "skiff/dead1").exists()


def test_cleanup_stale_asks_for_the_live_ids_after_the_scan(kernel: FakeKernel) -> None:
    """A container that makes its cgroup while the scan runs is not in the scan: it cannot be robbed."""
    cgroups.open("/skiff/dead", root=kernel.root).create({})

    def live_ids() -> set[str]:
        cgroups.open("/skiff/new", root=kernel.root).create({})   # made after the scan, not yet recorded
        return set()

    assert cgroups.cleanup_stale(live_ids, root=kernel.root) == ["dead"]
    assert (kernel.root / "skiff/new").is_dir()


def test_cleanup_stale_leaves_what_it_does_not_own(kernel: FakeKernel) -> None:
    for cid in ("mine", "other"):
        cgroups.open(f"/skiff/{cid}", root=kernel.root).create({})
    assert cgroups.cleanup_stale(set(), root=kernel.root, owned=lambda cid: cid == "mine") == ["mine"]
    assert (kernel.root / "skiff/other").is_dir()


def test_cleanup_stale_skips_the_records_when_every_cgroup_is_known_live(kernel: FakeKernel) -> None:
    """A listing has just read the records: when every cgroup is one of its live containers, nothing
    is stale and the records are not read again; one unknown cgroup makes it ask, as before."""
    for cid in ("a", "b"):
        cgroups.open(f"/skiff/{cid}", root=kernel.root).create({})
    asked: list[bool] = []

    def live_ids() -> set[str]:
        asked.append(True)
        return {"a"}

    assert cgroups.cleanup_stale(live_ids, root=kernel.root, known={"a", "b", "c"}) == []
    assert not asked
    assert cgroups.cleanup_stale(live_ids, root=kernel.root, known={"a"}) == ["b"]
    assert asked
