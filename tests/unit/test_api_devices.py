"""The Engine API's create: HostConfig.Devices, DeviceCgroupRules and DeviceRequests as the run flags'."""

from __future__ import annotations

import pytest

from skiff.api.create import run_options
from skiff.api.errors import BadRequest


def test_devices_rules_and_requests_become_run_options() -> None:
    body = {"Image": "busybox", "HostConfig": {
        "Devices": [{"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rwm"},
                    {"PathOnHost": "/dev/sda", "PathInContainer": "", "CgroupPermissions": ""}],
        "DeviceCgroupRules": ["c 195:* rwm"],
        "DeviceRequests": [{"Driver": "", "Count": -1, "Capabilities": [["gpu"]]},
                           {"Driver": "cdi", "DeviceIDs": ["vendor.com/dev=a"]}],
    }}
    opts = run_options(body, None)
    assert opts.devices == ["/dev/fuse:/dev/fuse:rwm", "/dev/sda:/dev/sda:rwm"]
    assert opts.device_cgroup_rules == ["c 195:* rwm"]
    assert opts.device_requests == [
        {"Driver": "", "Count": -1, "DeviceIDs": None, "Capabilities": [["gpu"]], "Options": {}},
        {"Driver": "cdi", "Count": 0, "DeviceIDs": ["vendor.com/dev=a"], "Capabilities": None, "Options": {}}]


def test_malformed_device_fields_are_bad_requests() -> None:
    with pytest.raises(BadRequest, match="HostConfig.Devices must be a list of objects"):
        run_options({"Image": "i", "HostConfig": {"Devices": ["/dev/fuse"]}}, None)
    with pytest.raises(BadRequest, match="HostConfig.DeviceRequests must be a list of objects"):
        run_options({"Image": "i", "HostConfig": {"DeviceRequests": {"Driver": "cdi"}}}, None)


def test_docker_py_keywords_for_devices() -> None:
    from skiff.client.options import run_options as client_run_options

    request = {"Driver": "", "Count": -1, "DeviceIDs": None, "Capabilities": [["gpu"]], "Options": {}}
    opts = client_run_options("busybox", "true", devices=["/dev/fuse:/dev/fuse:rwm"],
                              device_cgroup_rules=["c 195:* rwm"], device_requests=[request])
    assert opts.devices == ["/dev/fuse:/dev/fuse:rwm"] and opts.device_cgroup_rules == ["c 195:* rwm"]
    assert opts.device_requests == [request]
