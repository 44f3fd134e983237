"""Prunes, ``system df`` and network connect/disconnect through the Engine API: the real docker
CLI 20.10 and raw HTTP for the documents and status codes."""

from __future__ import annotations

import json

from tests.api_server.conftest import Service


def test_container_prune(service: Service) -> None:
    stopped = service.docker("create", "--label", "keep=no", "busybox", "true").stdout.strip()
    kept = service.docker("create", "--label", "keep=yes", "busybox", "true").stdout.strip()
    status, _, body = service.request("POST", '/containers/prune?filters={"label":["keep=no"]}')
    assert status == 200 and json.loads(body) == {"ContainersDeleted": [stopped], "SpaceReclaimed": 0}
    out = service.docker("container", "prune", "-f").stdout
    assert out.startswith("Deleted Containers:\n" + kept) and "Total reclaimed space:" in out
    assert service.skiff("ps", "-aq") == ""
    status, _, body = service.request("POST", "/containers/prune")
    assert status == 200 and json.loads(body) == {"ContainersDeleted": None, "SpaceReclaimed": 0}
    assert service.request("POST", '/containers/prune?filters={"color":["red"]}')[0] == 400


def test_volume_prune_keeps_volumes_in_use(service: Service) -> None:
    service.docker("volume", "create", "unused")
    service.docker("volume", "create", "used")
    user = service.docker("create", "-v", "used:/data", "busybox", "true").stdout.strip()
    try:
        out = service.docker("volume", "prune", "-f").stdout
        assert out.startswith("Deleted Volumes:\nunused\n") and "used\n" not in out.split("\n", 2)[2]
        status, _, body = service.request("POST", "/volumes/prune")
        assert status == 200 and json.loads(body) == {"VolumesDeleted": [], "SpaceReclaimed": 0}
    finally:
        service.docker("rm", user)
    status, _, body = service.request("POST", "/volumes/prune")
    assert json.loads(body)["VolumesDeleted"] == ["used"]


def test_network_prune(service: Service) -> None:
    service.docker("network", "create", "--subnet", "10.231.5.0/24", "--label", "tier=a", "prune-a")
    service.docker("network", "create", "--subnet", "10.231.6.0/24", "prune-b")
    status, _, body = service.request("POST", '/networks/prune?filters={"label":["tier=a"]}')
    assert status == 200 and json.loads(body) == {"NetworksDeleted": ["prune-a"]}
    out = service.docker("network", "prune", "-f").stdout
    assert out.startswith("Deleted Networks:\nprune-b")
    assert "prune-b" not in service.skiff("network", "ls")


def test_system_df(service: Service) -> None:
    service.docker("volume", "create", "dfvol")
    container = service.docker("create", "-v", "dfvol:/data", "busybox", "true").stdout.strip()
    try:
        status, _, body = service.request("GET", "/system/df")
        assert status == 200
        usage = json.loads(body)
        assert set(usage) == {"LayersSize", "Images", "Containers", "Volumes", "BuildCache", "BuilderSize"}
        assert usage["LayersSize"] > 500_000
        busybox = next(i for i in usage["Images"] if "busybox:latest" in i["RepoTags"])
        assert busybox["Containers"] == 1 and busybox["Size"] > 500_000
        assert [c["Id"] for c in usage["Containers"]] == [container] and usage["Containers"][0]["SizeRw"] >= 0
        assert usage["Containers"][0]["SizeRootFs"] >= busybox["Size"]
        volume = next(v for v in usage["Volumes"] if v["Name"] == "dfvol")
        assert volume["UsageData"] == {"RefCount": 1, "Size": 0}
        rows = {line.split()[0]: line.split() for line in service.docker("system", "df").stdout.splitlines()[1:]}
        assert rows["Images"][1:3] == [str(len(usage["Images"])), "1"]
        assert rows["Containers"][1:3] == ["1", "0"]
        assert rows["Local"][2:4] == ["1", "1"]
        verbose = service.docker("system", "df", "-v").stdout
        assert "dfvol" in verbose and container[:12] in verbose and "busybox" in verbose
    finally:
        service.docker("rm", "-v", container)
        service.docker("volume", "rm", "dfvol")


def test_network_connect_and_disconnect(service: Service) -> None:
    service.docker("network", "create", "--subnet", "10.231.7.0/24", "conn-net")
    container = service.docker("run", "-d", "--name", "conn-box", "busybox", "sleep", "60").stdout.strip()
    try:
        service.docker("network", "connect", "--alias", "web", "--ip", "10.231.7.9", "conn-net", "conn-box")
        networks = json.loads(service.docker("inspect", "conn-box").stdout)[0]["NetworkSettings"]["Networks"]
        assert networks["conn-net"]["IPAddress"] == "10.231.7.9" and "web" in networks["conn-net"]["Aliases"]
        addresses = service.skiff("exec", "conn-box", "ip", "-4", "addr")
        assert "10.231.7.9/24" in addresses
        status, _, body = service.request("POST", "/networks/conn-net/connect", {"Container": "conn-box"})
        assert status == 409, body
        status, _, body = service.request("POST", "/networks/conn-net/connect", {"Container": "no-such-box"})
        assert status == 404
        service.docker("network", "disconnect", "conn-net", "conn-box")
        assert "10.231.7.9" not in service.skiff("exec", "conn-box", "ip", "-4", "addr")
        status, _, body = service.request("POST", "/networks/conn-net/disconnect", {"Container": "conn-box"})
        assert status == 409, body
        status, _, body = service.request("POST", "/networks/conn-net/disconnect",
                                          {"Container": "conn-box", "Force": True})
        assert status == 200, body
    finally:
        service.docker("rm", "-f", container)
        service.docker("network", "rm", "conn-net")


def test_create_with_endpoint_aliases_and_address(service: Service) -> None:
    service.docker("network", "create", "--subnet", "10.231.8.0/24", "alias-net")
    try:
        service.docker("run", "-d", "--name", "server", "--network", "alias-net", "--network-alias", "db",
                       "--ip", "10.231.8.20", "busybox", "sleep", "60")
        networks = json.loads(service.docker("inspect", "server").stdout)[0]["NetworkSettings"]["Networks"]
        assert networks["alias-net"]["IPAddress"] == "10.231.8.20" and "db" in networks["alias-net"]["Aliases"]
        out = service.docker("run", "-d", "--network", "alias-net", "busybox", "nslookup", "db").stdout.strip()
        assert service.docker("wait", out).stdout.strip() == "0", service.docker("logs", out).stdout
        assert "10.231.8.20" in service.docker("logs", out).stdout
        service.docker("rm", out)
        status, _, body = service.request("POST", "/containers/create", {
            "Image": "busybox", "HostConfig": {"NetworkMode": "bridge"},
            "NetworkingConfig": {"EndpointsConfig": {"bridge": {"Aliases": ["x"]}}}})
        assert status == 400 and "user defined networks" in json.loads(body)["message"]
        status, _, body = service.request("POST", "/containers/create", {
            "Image": "busybox", "NetworkingConfig": {"EndpointsConfig": {"alias-net": {}, "bridge": {}}}})
        assert status == 400, body
    finally:
        service.docker("rm", "-f", "server")
        service.docker("network", "rm", "alias-net")
