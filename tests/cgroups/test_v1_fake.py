"""The v1 code against a fake tree of v1 hierarchies: controllers the host lacks are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

import skiff.cgroups as cgroups
from skiff.cgroups import fs
from skiff.cgroups.v1 import V1Cgroup
from skiff.errors import CgroupError

# Interface files a fresh v1 cgroup has, per hierarchy (only those the tests look at).
HIERARCHY_FILES = {
    "memory": {"memory.limit_in_bytes": "9223372036854771712\n", "memory.soft_limit_in_bytes": "0\n"},
    "pids": {"pids.max": "max\n"},
    "net_cls,net_prio": {"net_cls.classid": "0\n", "net_prio.ifpriomap": "lo 0\n"},
}


def fake_v1(root: Path, hierarchies: list[str], monkeypatch: pytest.MonkeyPatch) -> Path:
    """A /sys/fs/cgroup of the named v1 hierarchies; new cgroups get their interface files."""
    for name in hierarchies:
        (root / name).mkdir(parents=True)
        (root / name / "cgroup.procs").write_text("")

    def mkdir(path: str) -> bool:
        directory = Path(path)
        if directory.exists():
            return False
        directory.mkdir()
        (directory / "cgroup.procs").write_text("")
        for name, content in HIERARCHY_FILES.get(directory.relative_to(root).parts[0], {}).items():
            (directory / name).write_text(content)
        return True

    monkeypatch.setattr(fs, "mkdir", mkdir)
    return root


def test_network_limits_without_net_cls_or_net_prio_are_refused(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    root = fake_v1(tmp_path / "cgroup", ["memory", "pids"], monkeypatch)
    cg = cgroups.open("/skiff/net", root=root)
    assert isinstance(cg, V1Cgroup)
    with pytest.raises(CgroupError, match=r"^linux.resources.network.classID needs the net_cls cgroup controller, "
                                          r"which is not available on this host \(no v1 hierarchy carries it\)"):
        cg.create({"pids": {"limit": 5}, "network": {"classID": 1048577}})
    with pytest.raises(CgroupError, match="linux.resources.network.priorities needs the net_prio"):
        cg.create({"network": {"priorities": [{"name": "eth0", "priority": 5}]}})
    assert not (root / "memory" / "skiff").exists() and not (root / "pids" / "skiff").exists()


def test_network_limits_are_written_where_the_controllers_exist(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    root = fake_v1(tmp_path / "cgroup", ["memory", "net_cls,net_prio"], monkeypatch)
    cg = cgroups.open("/skiff/net", root=root)
    cg.create({"memory": {"limit": 64 << 20},
               "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]}})
    assert (root / "memory/skiff/net/memory.limit_in_bytes").read_text() == str(64 << 20)
    assert (root / "net_cls,net_prio/skiff/net/net_cls.classid").read_text() == "1048577"
    assert (root / "net_cls,net_prio/skiff/net/net_prio.ifpriomap").read_text() == "eth0 5"
