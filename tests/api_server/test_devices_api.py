"""Devices through the Engine API with Docker 20.10's own client: ``docker run --device``,
``--device-cgroup-rule`` and ``--gpus`` against ``skiff system service`` (HostConfig.Devices,
DeviceCgroupRules, DeviceRequests), each read back with ``docker inspect`` and from inside."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tests.api_server.conftest import Service


@pytest.fixture
def kmsg_standin(tmp_path: Path) -> Path:
    path = tmp_path / "kmsg0"
    os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 11))   # not in the default allow list
    return path


def test_docker_run_with_a_device_and_a_rule(service: Service, kmsg_standin: Path) -> None:
    out = service.docker("run", "--rm", "--network", "none", "--device", f"{kmsg_standin}:/dev/k:w", "busybox",
                         "sh", "-c", "stat -c '%t:%T' /dev/k; true > /dev/k && echo opened").stdout
    assert out == "1:b\nopened\n"
    out = service.docker("run", "--rm", "--network", "none", "-v", f"{kmsg_standin}:/dev/k", "--device-cgroup-rule",
                         "c 1:11 w", "busybox", "sh", "-c", "true > /dev/k && echo opened").stdout
    assert out == "opened\n"


def test_docker_inspect_shows_the_requests(service: Service, kmsg_standin: Path) -> None:
    cid = service.docker("create", "--network", "none", "--device", f"{kmsg_standin}:/dev/k:rw",
                         "--device-cgroup-rule", "c 195:* rwm", "--gpus", "all", "busybox", "true").stdout.strip()
    try:
        host = json.loads(service.docker("inspect", cid).stdout)[0]["HostConfig"]
        assert host["Devices"] == [{"PathOnHost": str(kmsg_standin), "PathInContainer": "/dev/k",
                                    "CgroupPermissions": "rw"}]
        assert host["DeviceCgroupRules"] == ["c 195:* rwm"]
        assert host["DeviceRequests"] == [{"Driver": "", "Count": -1, "DeviceIDs": None,
                                           "Capabilities": [["gpu"]], "Options": {}}]
    finally:
        service.docker("rm", cid)
