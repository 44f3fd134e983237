"""User networks: names through the embedded resolver, connect/disconnect, the CLI."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from skiff.errors import NetworkInUse, NetworkNotFound
from skiff.network import NetworkManager, NetworkRequest
from skiff.network.ipam import host_routes
from skiff.paths import Paths

from .conftest import free_subnet, ns, resolvers_for
from .helpers import http_get_from, http_server


def cid() -> str:
    return secrets.token_hex(32)


def test_containers_reach_each_other_by_name(nm: NetworkManager, tmp_path: Path) -> None:
    nm.create_network("appnet", subnet=free_subnet())
    web = nm.attach(cid(), NetworkRequest(network="appnet", aliases=["www"]), name="web")
    client = nm.attach(cid(), NetworkRequest(network="appnet"), name="client")
    gateway = web.settings()["Gateway"]
    assert f"nameserver {gateway}\n" in client.resolv_conf  # after the host's search line, if any
    for name in ("web", "www", web.container_id[:12]):
        answer = ns(client.netns_path, "busybox", "nslookup", name, gateway)
        assert web.settings()["IPAddress"] in answer.stdout.split("Name:")[-1], answer.stdout + answer.stderr
    missing = ns(client.netns_path, "busybox", "nslookup", "nosuchcontainer.invalid", gateway)
    assert web.settings()["IPAddress"] not in missing.stdout
    with http_server(web.netns_path, 8080, tmp_path / "www"):
        address = ns(client.netns_path, "busybox", "nslookup", "web", gateway).stdout.split("Address:")[-1].split()[0]
        assert http_get_from(client.netns_path, address, 8080) == "hello from skiff\n"
    assert len(resolvers_for(nm.paths.root)) == 1
    nm.detach(web.container_id)
    nm.detach(client.container_id)
    assert resolvers_for(nm.paths.root) == []  # stopped with the network's last container


def test_rm_refused_while_in_use_then_allowed(nm: NetworkManager) -> None:
    nm.create_network("busy", subnet=free_subnet())
    att = nm.attach(cid(), NetworkRequest(network="busy"), name="c1")
    with pytest.raises(NetworkInUse) as info:
        nm.remove_network("busy")
    assert "active endpoints" in str(info.value) and "c1" in str(info.value)
    nm.detach(att.container_id)
    assert nm.remove_network("busy") == "busy"
    with pytest.raises(NetworkNotFound):
        nm.inspect_network("busy")


def test_connect_and_disconnect_a_second_network(nm: NetworkManager, monkeypatch: pytest.MonkeyPatch) -> None:
    nm.create_network("second", subnet=free_subnet())
    att = nm.attach(cid())
    connected = nm.connect(att.container_id, "second")
    assert set(connected.settings()["Networks"]) == {"bridge", "second"}
    second_ip = connected.settings()["Networks"]["second"]["IPAddress"]
    # What a listing or an inspect shows, without building the /etc files: the same document,
    # and with a listing's memo each network record is read once for all its containers.
    other = nm.attach(cid())
    records: dict[str, Any] = {}
    read: list[str] = []
    load = nm._load_network
    monkeypatch.setattr(nm, "_load_network", lambda name: read.append(name) or load(name))
    assert nm.settings(att.container_id, records) == connected.settings()
    assert nm.settings(other.container_id, records) == other.settings()
    assert sorted(read) == ["bridge", "second"] and set(records) == {"bridge", "second"}
    nm.detach(other.container_id)
    addrs = ns(att.netns_path, "ip", "-o", "-4", "addr", "show", "eth1", check=True).stdout
    assert f"inet {second_ip}/" in addrs
    assert att.container_id in nm.inspect_network("second")["Containers"]
    nm.disconnect(att.container_id, "second")
    assert ns(att.netns_path, "ip", "link", "show", "eth1").returncode != 0
    assert nm.inspect_network("second")["Containers"] == {}
    assert set(nm.attachment(att.container_id).settings()["Networks"]) == {"bridge"}


def _cli(paths: Paths, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "skiff", "--root", str(paths.root), "--run-root",
                           str(paths.run_root), "network", *args], capture_output=True, text=True, timeout=60)


def test_cli_create_ls_inspect_rm(nm: NetworkManager) -> None:
    subnet = free_subnet()
    created = _cli(nm.paths, "create", "--subnet", subnet, "--internal", "clinet")
    assert created.returncode == 0, created.stderr
    net_id = created.stdout.strip()
    assert len(net_id) == 64
    listing = _cli(nm.paths, "ls").stdout
    assert "clinet" in listing and net_id[:12] in listing and "bridge" in listing
    info = json.loads(_cli(nm.paths, "inspect", "clinet").stdout)[0]
    assert info["Internal"] is True and info["IPAM"]["Config"][0]["Subnet"] == subnet
    clash = _cli(nm.paths, "create", "--subnet", subnet, "other")
    assert clash.returncode == 125 and "overlaps" in clash.stderr
    _, routed = host_routes()[0]  # a subnet the host already routes somewhere
    route_clash = _cli(nm.paths, "create", "--subnet", str(routed), "routed-net")
    assert route_clash.returncode == 125 and "overlaps" in route_clash.stderr
    loopback = _cli(nm.paths, "create", "--subnet", "127.0.0.0/8", "lo-net")
    assert loopback.returncode == 125 and "reserved" in loopback.stderr
    att = nm.attach(cid(), NetworkRequest(network="clinet"), name="user")
    in_use = _cli(nm.paths, "rm", "clinet")
    assert in_use.returncode == 1 and "active endpoints" in in_use.stderr
    nm.detach(att.container_id)
    assert _cli(nm.paths, "rm", "clinet").returncode == 0
    missing = _cli(nm.paths, "rm", "clinet")
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_cli_connect_disconnect_prune(nm: NetworkManager) -> None:
    assert _cli(nm.paths, "create", "--subnet", free_subnet(), "spare").returncode == 0
    att = nm.attach(cid())
    assert _cli(nm.paths, "connect", "spare", att.container_id).returncode == 0
    assert "spare" in nm.attachment(att.container_id).settings()["Networks"]
    # In use: kept. (Through the manager: `skiff network prune` also releases what no container
    # record owns, and this attachment, made by the test, has none.)
    assert nm.prune_networks() == []
    assert _cli(nm.paths, "disconnect", "spare", att.container_id).returncode == 0
    pruned = _cli(nm.paths, "prune")
    assert pruned.stdout == "Deleted Networks:\nspare\n"


def test_run_on_unknown_network_is_a_125(nm: NetworkManager) -> None:
    from skiff.errors import NetworkError

    with pytest.raises(NetworkError) as info:
        nm.attach(cid(), NetworkRequest(network="nosuch"))
    assert info.value.exit_code == 125 and "network nosuch not found" in str(info.value)
