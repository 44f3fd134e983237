"""--memory-swappiness and --oom-kill-disable on cgroup v1 and v2 (the fake trees).

cgroup v1's memory controller has memory.swappiness and memory.oom_control;
cgroup v2 has neither, and Docker 20.10's daemon then discards both flags with
a warning (and records them as null). A plan made on a v2 host must do the same
and the v2 cgroup must be written without them; on v1 they reach the files.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import skiff.cgroups as cgroups
from skiff.cgroups.detect import memory_features
from skiff.engine.resources import discard_unsupported, resources_from_flags
from skiff.engine.options import RunOptions
from skiff.engine.plan import RunPlan
from skiff.errors import InvalidArgument
from skiff.paths import Paths

from .fake_cgroupfs import FakeKernel, installed_fake_v2
from .test_v1_fake import fake_v1

SWAPPINESS_WARNING = ("Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. "
                      "Memory swappiness discarded.")
OOM_WARNING = "Your kernel does not support OomKillDisable. OomKillDisable discarded."
NO_LIMIT_WARNING = ("OOM killer is disabled for the container, but no memory limit is set, this can result in "
                    "the system running out of resources.")


@pytest.fixture
def v2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeKernel:
    return installed_fake_v2(tmp_path / "cgroup", monkeypatch)


def test_flags_become_oci_memory_fields() -> None:
    resources = resources_from_flags(memory="64m", memory_swappiness="0", oom_kill_disable=True)
    assert resources["memory"] == {"limit": 64 << 20, "swap": 128 << 20, "swappiness": 0, "disableOOMKiller": True}
    assert "memory" not in resources_from_flags(memory_swappiness="-1")   # Docker's "not set"


@pytest.mark.parametrize("value, message", [
    ("101", "invalid value: 101. Valid memory swappiness range is 0-100"),
    ("-2", "invalid value: -2. Valid memory swappiness range is 0-100"),
    ("1.5", 'invalid argument "1.5" for "--memory-swappiness" flag: strconv.ParseInt: parsing "1.5": invalid syntax'),
])
def test_bad_swappiness(value: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        resources_from_flags(memory_swappiness=value)
    assert str(info.value) == message


def test_v2_has_neither_and_both_are_discarded_with_dockers_warnings(v2: FakeKernel) -> None:
    assert memory_features(str(v2.root)) == (False, False)
    resources = resources_from_flags(memory="64m", memory_swappiness="10", oom_kill_disable=True)
    assert discard_unsupported(resources, str(v2.root)) == [SWAPPINESS_WARNING, OOM_WARNING]
    assert resources["memory"] == {"limit": 64 << 20, "swap": 128 << 20}
    alone = resources_from_flags(memory_swappiness="10")
    assert discard_unsupported(alone, str(v2.root)) == [SWAPPINESS_WARNING]
    assert "memory" not in alone   # nothing left to ask of the memory controller
    cg = cgroups.open("/skiff/c1", root=v2.root)
    cg.create(resources)
    assert v2.read("skiff/c1/memory.max") == str(64 << 20)
    assert not list(v2.root.glob("skiff/c1/memory.swappiness")) and not list(v2.root.glob("skiff/c1/*oom_control"))
    cg.destroy()


def test_v1_memory_controller_keeps_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = fake_v1(tmp_path / "cgroup", ["memory", "pids"], monkeypatch)
    (root / "memory" / "memory.swappiness").write_text("60\n")
    (root / "memory" / "memory.oom_control").write_text("oom_kill_disable 0\n")
    resources = resources_from_flags(memory_swappiness="10", oom_kill_disable=True)
    assert discard_unsupported(resources, str(root)) == [NO_LIMIT_WARNING]
    assert resources["memory"] == {"swappiness": 10, "disableOOMKiller": True}


def test_v1_without_the_files_discards_as_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = fake_v1(tmp_path / "cgroup", ["memory", "pids"], monkeypatch)
    resources = resources_from_flags(memory="64m", memory_swappiness="10", oom_kill_disable=True)
    assert discard_unsupported(resources, str(root)) == [SWAPPINESS_WARNING, OOM_WARNING]


def plan_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, root: Path, **resources: object) -> RunPlan:
    """A RunPlan made as on a host whose /sys/fs/cgroup is the fake tree ``root``."""
    detect = sys.modules["skiff.cgroups.detect"]   # the package's ``detect`` is the function
    monkeypatch.setitem(detect._DETECTED, None, detect.detect(root))
    image = SimpleNamespace(config={"Cmd": ["true"]})
    opts = RunOptions(image="busybox", network="none", resources=resources)
    return RunPlan.make(Paths(tmp_path / "root", tmp_path / "run"), image, opts)


def test_a_plan_on_v2_warns_and_records_null(v2: FakeKernel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = plan_on(monkeypatch, tmp_path, v2.root, memory="64m", memory_swappiness="10", oom_kill_disable=True)
    assert plan.warnings == [SWAPPINESS_WARNING, OOM_WARNING]
    host = plan.host_config_record()
    assert (host["MemorySwappiness"], host["OomKillDisable"]) == (None, None)
    plain = plan_on(monkeypatch, tmp_path, v2.root).host_config_record()
    assert (plain["MemorySwappiness"], plain["OomKillDisable"]) == (None, None)


def test_a_plan_on_v1_records_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = fake_v1(tmp_path / "cgroup", ["memory", "pids"], monkeypatch)
    (root / "memory" / "memory.swappiness").write_text("60\n")
    (root / "memory" / "memory.oom_control").write_text("oom_kill_disable 0\n")
    plan = plan_on(monkeypatch, tmp_path, root, memory="64m", memory_swappiness="10", oom_kill_disable=True)
    assert plan.warnings == []
    host = plan.host_config_record()
    assert (host["MemorySwappiness"], host["OomKillDisable"]) == (10, True)
    plain = plan_on(monkeypatch, tmp_path, root).host_config_record()
    assert (plain["MemorySwappiness"], plain["OomKillDisable"]) == (None, False)
