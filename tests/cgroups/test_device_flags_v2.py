"""--device, --device-cgroup-rule and CDI device nodes on cgroup v2: the rules the engine writes,
completed as the runtime completes them, become the eBPF device program; checked in the fake
cgroup2 tree (what is attached), in the program's interpreter (what it answers), and on the real
cgroup2 hierarchy when one is mounted (what the kernel lets a process open)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

import skiff.cgroups as cgroups
from skiff.cgroups.bpf_devices import apply_device_filter, compile_rules
from skiff.cdi import edits
from skiff.cdi.spec import parse
from skiff.engine import devices
from skiff.runtime.runtime import _with_default_devices

from .fake_cgroupfs import FakeKernel, installed_fake_v2
from .test_bpf_devices import CHAR, MKNOD, READ, WRITE, Sandbox, run_program, sandbox  # noqa: F401 - a fixture


@pytest.fixture
def kmsg_standin(tmp_path: Path) -> Path:
    path = tmp_path / "kmsg0"
    os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 11))
    return path


def container_rules(device_flags: list[str], rules: list[str],
                    cdi: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The device allow-list a container with these flags gets (engine, then the runtime's defaults)."""
    config: dict[str, Any] = {"linux": {"resources": {}}}
    devices.apply(config, device_flags, rules, [])
    if cdi:
        document = {"cdiVersion": "0.5.0", "kind": "x.com/d",
                    "devices": [{"name": "a", "containerEdits": {"deviceNodes": cdi}}]}
        spec = parse(json.dumps(document).encode(), "/x.json")
        edits.apply(config, [spec.devices["a"]])
    linux = config["linux"]
    return list(_with_default_devices(linux["resources"], linux.get("devices") or [])["devices"])


def answers(rules: list[dict[str, Any]], major: int, minor: int) -> list[int]:
    program = compile_rules(rules)
    return [run_program(program, CHAR, access, major, minor) for access in (READ, WRITE, MKNOD)]


def test_a_cgroup_rule_allows_a_major(kmsg_standin: Path) -> None:
    rules = container_rules([], ["c 195:* rw"])
    assert answers(rules, 195, 0) == [1, 1, 1] and answers(rules, 195, 255) == [1, 1, 1]   # mknod: Docker's c *:* m
    assert answers(rules, 1, 11)[:2] == [0, 0] and answers(rules, 196, 0)[:2] == [0, 0]


def test_a_host_device_is_allowed(kmsg_standin: Path) -> None:
    rules = container_rules([f"{kmsg_standin}:/dev/k"], [])
    assert answers(rules, 1, 11) == [1, 1, 1]
    assert answers(rules, 1, 12)[:2] == [0, 0]


def test_a_cdi_node_gets_its_permissions(kmsg_standin: Path) -> None:
    rules = container_rules([], [], cdi=[{"path": "/dev/k", "hostPath": str(kmsg_standin), "permissions": "w"},
                                         {"path": "/dev/nv", "type": "c", "major": 195, "minor": 3}])
    assert answers(rules, 195, 3) == [1, 1, 1]
    assert answers(rules, 1, 11)[1] == 1


def test_the_fake_v2_tree_gets_the_program(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           kmsg_standin: Path) -> None:
    kernel: FakeKernel = installed_fake_v2(tmp_path / "cgroup", monkeypatch)
    rules = container_rules([f"{kmsg_standin}:/dev/k:rw"], ["c 195:* rwm"])
    cg = cgroups.open("/skiff/dev1", root=kernel.root)
    cg.create({"devices": rules})
    (attached,) = kernel.device_filters[str(kernel.root / "skiff/dev1")]
    assert {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "rw"} in attached
    assert {"allow": True, "type": "c", "major": 195, "access": "rwm"} in attached
    cg.destroy()


def test_the_kernel_follows_the_rules(sandbox: Sandbox, kmsg_standin: Path) -> None:  # noqa: F811
    mem = sandbox.node("mem")
    os.mknod(mem, 0o600 | stat.S_IFCHR, os.makedev(1, 1))
    apply_device_filter(sandbox.dir, container_rules([], ["c 1:11 w"]))
    assert sandbox.probe([["open", str(kmsg_standin), os.O_WRONLY], ["open", mem, os.O_RDONLY],
                          ["open", "/dev/null", os.O_RDWR]]) == ["ok", "EPERM", "ok"]
