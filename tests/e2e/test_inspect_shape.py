"""skiff's inspect documents have Docker 20.10's shape: the same keys, in the same order, with
the same JSON types (null vs "" vs {} vs []) at every level.

The reference documents in tests/e2e/docker20/ were recorded from a private dockerd 20.10
(tests/e2e/docker20/record.py) for the same scenarios these tests run on skiff: a container
run with many flags on ``none`` (inspected with ``--size``), one on ``host``, one on a user
network then connected to another, a created and an exited one, volumes, networks, the image.
The container on the default bridge (which the recording dockerd, run with ``--bridge none``,
does not have) is compared with the user-network document, Aliases excepted (Docker has
none on the default bridge), as the Engine API 1.41 reference documents it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Skiff
from tests.e2e.docker20.full_container import full_container_args
from tests.e2e.test_lifecycle import lc  # noqa: F401 - a fixture: every container removed afterwards
from tests.network.conftest import free_subnet

DOCKER20 = Path(__file__).parent / "docker20"
# Dicts that are Go maps (keys are data, not fields): their values are compared, not their keys.
FREE_FORM = {"Labels", "Options", "ExposedPorts", "Volumes", "Ports", "PortBindings", "Networks", "Containers",
             "Sysctls", "Data", "DriverOpts", "Tmpfs", "StorageOpt", "LogConfig.Config"}


def recorded(name: str) -> Any:
    return json.loads((DOCKER20 / f"{name}.json").read_text())


def _kind(value: Any) -> str:
    return {bool: "bool", int: "number", float: "number", str: "string", list: "array", dict: "object",
            type(None): "null"}[type(value)]


def shape_differences(docker: Any, ours: Any, path: str = "") -> list[str]:
    """Where ``ours`` differs from ``docker`` in keys, key order or JSON type, one line each."""
    if _kind(docker) != _kind(ours):
        return [f"{path or '.'}: Docker has {_kind(docker)} ({json.dumps(docker)[:40]}), skiff {_kind(ours)} "
                f"({json.dumps(ours)[:40]})"]
    found: list[str] = []
    if isinstance(docker, dict):
        free = path.rpartition(".")[2] in FREE_FORM or path.endswith("LogConfig.Config")
        if free:  # a map: each of our values against one of Docker's, when both have one
            if docker and ours:
                sample = next(iter(docker.values()))
                for key, value in ours.items():
                    found += shape_differences(docker.get(key, sample), value, f"{path}[{key}]")
            return found
        if list(docker) != list(ours):
            missing = [k for k in docker if k not in ours]
            extra = [k for k in ours if k not in docker]
            found.append(f"{path or '.'}: keys differ: missing {missing}, extra {extra}"
                         if missing or extra else f"{path or '.'}: key order differs: {list(ours)}")
        for key in docker:
            if key in ours:
                found += shape_differences(docker[key], ours[key], f"{path}.{key}")
    elif isinstance(docker, list) and docker and ours:
        for i, value in enumerate(ours):
            found += shape_differences(_counterpart(docker, value, i), value, f"{path}[{i}]")
    return found


def _counterpart(docker: list[Any], value: Any, i: int) -> Any:
    """The element of Docker's list to compare ours with: a mount of the same destination and type
    (Docker lists mounts in no fixed order), else the one at the same place."""
    if isinstance(value, dict):
        for key in ("Destination", "Target"):
            same = [d for d in docker if isinstance(d, dict) and key in value and d.get(key) == value[key]
                    and d.get("Type") == value.get("Type")]
            if same:
                return same[0]
    return docker[min(i, len(docker) - 1)]


def assert_same_shape(docker: Any, ours: Any) -> None:
    differences = shape_differences(docker, ours)
    assert not differences, "\n".join(differences)


def inspect(skiff: Skiff, *args: str) -> Any:
    return json.loads(skiff.ok(*args))[0]


def subnets(skiff: Skiff, count: int) -> list[str]:
    """``count`` free /24s, all made skiff's candidates (the test's config has one)."""
    config_file = skiff.root / "network" / "config.json"
    config = json.loads(config_file.read_text())
    candidates = config["subnet_candidates"]
    while len(candidates) < count:
        candidates.append(free_subnet(used=set(candidates)))
    config_file.write_text(json.dumps(config))
    return candidates


@pytest.fixture
def scenario(lc: Skiff, tmp_path: Path) -> Skiff:  # noqa: F811
    """The recorded scenarios, on skiff (tests/e2e/docker20/record.py runs them on dockerd)."""
    skiff = lc
    skiff.ok("volume", "create", "plain")
    skiff.ok("volume", "create", "--label", "a=b", "--opt", "type=tmpfs", "--opt", "device=tmpfs",
             "--opt", "o=size=1m", "withopts")
    bind = tmp_path / "bind"
    bind.mkdir()
    skiff.ok("run", *full_container_args(bind, blkio_weight=False))
    return skiff


def test_container_with_many_flags_has_dockers_shape(scenario: Skiff) -> None:
    doc = inspect(scenario, "inspect", "--size", "full")
    assert_same_shape(recorded("container_full"), doc)
    host = doc["HostConfig"]
    # the values Docker derives from the flags
    assert (host["Memory"], host["MemorySwap"], host["MemoryReservation"]) == (64 << 20, 128 << 20, 32 << 20)
    assert (host["NanoCpus"], host["CpuPeriod"], host["CpuQuota"], host["CpuShares"]) == (500_000_000, 0, 0, 512)
    assert (host["CpusetCpus"], host["PidsLimit"]) == ("0", 100)
    assert host["Ulimits"] == [{"Name": "nofile", "Hard": 2048, "Soft": 1024}]
    assert host["Tmpfs"] == {"/run": "size=1m"}
    assert host["Mounts"][0] == {"Type": "tmpfs", "Target": "/mnt/t", "TmpfsOptions": {"SizeBytes": 1 << 20}}
    assert host["Mounts"][1] == {"Type": "volume", "Source": "v2", "Target": "/v2"}
    assert host["Binds"][0] == "plain:/data" and host["LogConfig"]["Config"] == {"max-size": "1m"}
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    # --tmpfs mounts are HostConfig.Tmpfs only; volumes have Docker's default mode "z"
    assert sorted(m["Destination"] for m in doc["Mounts"]) == ["/b", "/data", "/hostdir", "/mnt/t", "/v2"]
    assert {m["Mode"] for m in doc["Mounts"] if m["Type"] == "volume"} == {"z"}
    config = doc["Config"]
    assert config["Entrypoint"] is None and config["Cmd"] == ["sleep", "1000"] and config["Env"] == ["A=1"]
    assert (config["WorkingDir"], config["StopSignal"], config["StopTimeout"]) == ("/tmp", "SIGINT", 5)
    settings = doc["NetworkSettings"]
    assert settings["IPAddress"] == "" and list(settings["Networks"]) == ["none"]
    assert doc["SizeRw"] >= 0 and doc["SizeRootFs"] >= doc["SizeRw"]
    assert "SizeRw" not in inspect(scenario, "inspect", "full")  # only with --size, as Docker


def test_host_created_and_exited_containers_have_dockers_shape(scenario: Skiff, busybox_image: str) -> None:
    scenario.ok("run", "-d", "--name", "onhost", "--network", "host", busybox_image, "sleep", "1000")
    scenario.ok("create", "--name", "created", busybox_image)
    scenario.ok("run", "--name", "exited", "--network", "none", busybox_image, "true")
    onhost = inspect(scenario, "inspect", "onhost")
    assert_same_shape(recorded("container_host"), onhost)
    assert list(onhost["NetworkSettings"]["Networks"]) == ["host"] and onhost["NetworkSettings"]["IPAddress"] == ""
    assert_same_shape(recorded("container_created"), inspect(scenario, "inspect", "created"))
    assert_same_shape(recorded("container_exited"), inspect(scenario, "inspect", "exited"))


def test_containers_on_networks_have_dockers_shape(scenario: Skiff, busybox_image: str) -> None:
    subnet = subnets(scenario, 3)[0]  # given; then one for chosen, one for the default bridge
    scenario.ok("network", "create", "--subnet", subnet, "given")
    scenario.ok("network", "create", "chosen")
    scenario.ok("run", "-d", "--name", "onuser", "--network", "given", "-p", "80", busybox_image, "sleep", "1000")
    scenario.ok("network", "connect", "chosen", "onuser")
    doc = inspect(scenario, "inspect", "onuser")
    assert_same_shape(recorded("container_user_network"), doc)
    settings = doc["NetworkSettings"]
    assert list(settings["Networks"]) == ["chosen", "given"]  # the connected one at once; sorted, a Go map
    assert settings["IPAddress"] == "" and settings["Networks"]["given"]["Aliases"] == [doc["Id"][:12]]
    assert doc["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": ""}]}
    assert list(doc["Config"]["ExposedPorts"]) == ["80/tcp"]

    scenario.ok("run", "-d", "--name", "onbridge", busybox_image, "sleep", "1000")
    bridge = inspect(scenario, "inspect", "onbridge")
    reference = recorded("container_user_network")
    endpoint = {**reference["NetworkSettings"]["Networks"]["given"], "Aliases": None}
    reference["NetworkSettings"]["Networks"] = {"bridge": endpoint}
    del reference["Config"]["ExposedPorts"]
    reference["HostConfig"]["PortBindings"] = {}
    assert_same_shape(reference, bridge)
    network = bridge["NetworkSettings"]["Networks"]["bridge"]
    assert bridge["NetworkSettings"]["IPAddress"] == network["IPAddress"] != ""  # the top level is bridge's
    assert network["Aliases"] is None and network["NetworkID"] == inspect(scenario, "network", "inspect", "bridge")["Id"]


def test_volume_network_and_image_documents_have_dockers_shape(scenario: Skiff, busybox_image: str) -> None:
    subnet = subnets(scenario, 1)[0]
    scenario.ok("network", "create", "--subnet", subnet, "given")
    scenario.ok("run", "-d", "--name", "onuser", "--network", "given", busybox_image, "sleep", "1000")
    assert_same_shape(recorded("volume_plain"), inspect(scenario, "volume", "inspect", "plain"))
    assert inspect(scenario, "volume", "inspect", "plain")["Labels"] == {}
    assert_same_shape(recorded("volume_options"), inspect(scenario, "volume", "inspect", "withopts"))
    given = inspect(scenario, "network", "inspect", "given")
    assert_same_shape(recorded("network_given_subnet"), given)
    assert given["IPAM"]["Config"] == [{"Subnet": subnet}]  # no gateway the user did not give, as Docker
    none = inspect(scenario, "network", "inspect", "none")
    assert_same_shape(recorded("network_none"), none)
    assert none["Driver"] == "null" and list(none["Containers"].values())[0]["Name"] == "full"
    assert_same_shape(recorded("network_host"), inspect(scenario, "network", "inspect", "host"))
    assert_same_shape(recorded("image"), inspect(scenario, "image", "inspect", busybox_image))


def test_user_network_with_chosen_subnet_or_given_gateway_has_dockers_shape(skiff: Skiff) -> None:
    subnet = subnets(skiff, 1)[0]
    gateway = subnet.rpartition(".")[0] + ".254"
    skiff.ok("network", "create", "--subnet", subnet, "--gateway", gateway, "--label", "x=y", "--internal", "withgw")
    doc = inspect(skiff, "network", "inspect", "withgw")
    assert_same_shape(recorded("network_given_gateway"), doc)
    assert doc["IPAM"]["Config"] == [{"Subnet": subnet, "Gateway": gateway}]
    skiff.ok("network", "rm", "withgw")
    skiff.ok("network", "create", "chosen")
    chosen = inspect(skiff, "network", "inspect", "chosen")
    assert_same_shape(recorded("network_chosen_subnet"), chosen)
    assert list(chosen["IPAM"]["Config"][0]) == ["Subnet", "Gateway"]  # both chosen by skiff: both shown
