"""Several skiff roots on one host: own bridges and tables, shared subnets and ports, veths immune to restarts.

Traffic goes only to loopback (published ports) and to the containers' own
addresses, each checked with ``ip route get`` to leave through the test's bridge.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from skiff.errors import NetworkError
from skiff.network import NetworkManager, NetworkRequest
from skiff.network.config import NetworkConfig, root_names
from skiff.network.registry import REGISTRY_DIR
from skiff.paths import DEFAULT_ROOT, Paths
from tests.conftest import Skiff

from .conftest import TAG_PREFIX, free_subnet, links_gone, links_with, ns, route_dev, tables_named
from .helpers import fetch, free_port

HTTPD = ["sh", "-c", "echo hello from $0 > /tmp/index.html && exec httpd -f -p 80 -h /tmp"]


def cid() -> str:
    return secrets.token_hex(32)


def claims_of(*roots: Path) -> list[str]:
    """Claims in the host-wide registry that name one of these roots."""
    wanted = {os.path.realpath(r) for r in roots}
    found = []
    for path in REGISTRY_DIR.glob("*.json") if REGISTRY_DIR.is_dir() else []:
        try:
            if json.loads(path.read_text()).get("Root") in wanted:
                found.append(path.name)
        except (OSError, ValueError):
            continue
    return found


# --- names ------------------------------------------------------------------------


def test_default_root_keeps_documented_names_others_get_their_own(tmp_path: Path) -> None:
    assert root_names(DEFAULT_ROOT) == {}
    default = NetworkConfig()
    assert (default.default_bridge, default.nft_table) == ("skiff0", "skiff")
    a, b = NetworkConfig.for_root(tmp_path / "a"), NetworkConfig.for_root(tmp_path / "b")
    assert a.default_bridge != b.default_bridge and a.nft_table != b.nft_table
    assert a.default_bridge.startswith("skiff-") and len(a.default_bridge) <= 15
    assert a.nft_table.startswith("skiff_")
    (tmp_path / "a").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "a")
    assert NetworkConfig.for_root(tmp_path / "link") == a  # one root, however it is named
    (tmp_path / "a" / "network").mkdir()
    (tmp_path / "a" / "network" / "config.json").write_text(json.dumps({"nft_table": "mine"}))
    configured = NetworkConfig.for_root(tmp_path / "a")
    assert (configured.default_bridge, configured.nft_table) == (a.default_bridge, "mine")


# --- two roots through the CLI ----------------------------------------------------------


def _root(base: Path, env: dict[str, str], candidates: list[str], busybox_tar: Path) -> Skiff:
    """A root that configures only its candidate subnets: its names are its own defaults."""
    env = {**env, "SKIFF_ROOT": str(base / "root"), "SKIFF_RUN_ROOT": str(base / "run")}
    (base / "root" / "network").mkdir(parents=True, exist_ok=True)
    (base / "root" / "network" / "config.json").write_text(json.dumps({"subnet_candidates": candidates}))
    skiff = Skiff(env)
    skiff.ok("import", str(busybox_tar), "busybox:latest")
    return skiff


def _bridge(skiff: Skiff) -> tuple[str, str]:
    data = json.loads(skiff.ok("network", "inspect", "bridge"))[0]
    return data["Options"]["com.docker.network.bridge.name"], data["IPAM"]["Config"][0]["Subnet"]


def _serves(skiff: Skiff, name: str, port: int, bridge: str) -> str:
    address = json.loads(skiff.ok("inspect", name))[0]["NetworkSettings"]["IPAddress"]
    assert route_dev(address) == bridge  # the container's address is behind this root's bridge
    return fetch(f"http://127.0.0.1:{port}/", timeout=3)


@pytest.fixture
def two_roots(tmp_path: Path, skiff_env: dict[str, str], busybox_tar: Path) -> Iterator[tuple[Skiff, Skiff]]:
    first = free_subnet()
    candidates = [first, free_subnet(used={first})]
    a = _root(tmp_path / "a", skiff_env, candidates, busybox_tar)
    b = _root(tmp_path / "b", skiff_env, candidates, busybox_tar)
    names = [NetworkConfig.for_root(s.root) for s in (a, b)]
    try:
        yield a, b
    finally:
        for skiff in (a, b):
            ids = skiff("ps", "-aq").stdout.split()
            if ids:
                skiff("rm", "-f", *ids)
            skiff("network", "prune", "-f")
        leaks = {"links": [link for c in names for link in links_with(c.default_bridge)],
                 "tables": [t for c in names for t in tables_named(c.nft_table)],
                 "claims": claims_of(a.root, b.root)}
        for c in names:
            subprocess.run(["ip", "link", "del", c.default_bridge], capture_output=True)
            subprocess.run(["nft", "delete", "table", "ip", c.nft_table], capture_output=True)
        assert not any(leaks.values()), f"left behind: {leaks}"


def test_two_roots_publish_and_prune_without_touching_each_other(two_roots: tuple[Skiff, Skiff]) -> None:
    a, b = two_roots
    port_a, port_b = free_port(), free_port()
    a.ok("run", "-d", "--name", "web", "-p", f"{port_a}:80", "busybox", *HTTPD, "root-a")
    b.ok("run", "-d", "--name", "web", "-p", f"{port_b}:80", "busybox", *HTTPD, "root-b")
    (bridge_a, subnet_a), (bridge_b, subnet_b) = _bridge(a), _bridge(b)
    assert bridge_a != bridge_b and subnet_a != subnet_b
    assert _serves(a, "web", port_a, bridge_a) == "hello from root-a\n"  # b's run left a's rules alone
    assert _serves(b, "web", port_b, bridge_b) == "hello from root-b\n"

    # A host port is the host's: another root cannot publish it again.
    taken = b("run", "-d", "-p", f"{port_a}:80", "busybox", "true")
    assert taken.returncode == 125 and "port is already allocated" in taken.stderr

    a.ok("rm", "-f", "web")
    a.ok("network", "prune", "-f")
    assert not links_with(bridge_a) and not tables_named(NetworkConfig.for_root(a.root).nft_table)
    assert _serves(b, "web", port_b, bridge_b) == "hello from root-b\n"
    b.ok("rm", "-f", "web")
    b.ok("network", "prune", "-f")
    assert not links_with(bridge_b)


# --- the registry, through the manager ------------------------------------------------------


def _manager(base: Path, tag: str, candidates: tuple[str, ...], bridge: str | None = None) -> NetworkManager:
    config = NetworkConfig(default_bridge=bridge or f"{TAG_PREFIX}{tag}0", bridge_prefix=f"{TAG_PREFIX}{tag}",
                           veth_prefix=f"sv{tag}", nft_table=f"skiff_test_{tag}", subnet_candidates=candidates)
    return NetworkManager(Paths(base / "root", base / "run"), config)


@pytest.fixture
def managers(tmp_path: Path) -> Iterator[list[NetworkManager]]:
    """Room for two or three managers on private names; afterwards nothing of any may remain."""
    made: list[NetworkManager] = []
    yield made
    for manager in made:
        manager.reconcile(set())
        manager.prune_networks()
    leaks = {"links": [link for m in made for link in links_with(m.config.bridge_prefix)
                       + links_gone(m.config.veth_prefix)],
             "tables": [t for m in made for t in tables_named(m.config.nft_table)],
             "claims": claims_of(*(m.paths.root for m in made))}
    for link in leaks["links"]:
        subprocess.run(["ip", "link", "del", link], capture_output=True)
    assert not any(leaks.values()), f"left behind: {leaks}"


def _ip(manager: NetworkManager, container: str) -> str:
    return manager.attachment(container).settings()["IPAddress"]


def test_a_pruned_default_network_never_takes_back_a_subnet_another_root_got(
        tmp_path: Path, managers: list[NetworkManager]) -> None:
    first = free_subnet()
    candidates = (first, free_subnet(used={first}))
    a = _manager(tmp_path / "a", secrets.token_hex(3), candidates)
    b = _manager(tmp_path / "b", secrets.token_hex(3), candidates)
    managers.extend([a, b])
    c = cid()
    a.attach(c)
    a.detach(c)
    a.prune_networks()  # a's bridge is gone, its record (and subnet) stays
    on_b = b.attach(cid()).container_id
    assert b._load_network("bridge")["Subnet"] == first  # free on the host: b may take it
    on_a = a.attach(cid()).container_id
    assert a._load_network("bridge")["Subnet"] == candidates[1]
    for manager, container in ((a, on_a), (b, on_b)):
        assert route_dev(_ip(manager, container)) == manager.config.default_bridge


def test_a_bridge_another_root_claims_is_refused_and_never_pruned(
        tmp_path: Path, managers: list[NetworkManager]) -> None:
    shared = f"{TAG_PREFIX}{secrets.token_hex(3)}0"
    first = free_subnet()
    candidates = (first, free_subnet(used={first}))
    a = _manager(tmp_path / "a", secrets.token_hex(3), candidates, bridge=shared)
    b = _manager(tmp_path / "b", secrets.token_hex(3), candidates, bridge=shared)
    managers.extend([a, b])
    first_on_b = cid()
    b.attach(first_on_b)
    b.detach(first_on_b)
    b.prune_networks()  # b's bridge and claim go; its record stays
    on_a = a.attach(cid()).container_id  # now the name is a's
    with pytest.raises(NetworkError, match=f"bridge {shared} .*belongs to skiff root"):
        b.attach(cid())
    b.prune_networks()
    assert links_with(shared), "b's prune deleted a's bridge"
    assert route_dev(_ip(a, on_a)) == shared


def test_concurrent_roots_get_distinct_subnets(tmp_path: Path, managers: list[NetworkManager]) -> None:
    used: set[str] = set()
    for _ in range(6):
        used.add(free_subnet(used=used))
    candidates = tuple(sorted(used))
    roots = [_manager(tmp_path / str(n), secrets.token_hex(3), candidates) for n in range(3)]
    managers.extend(roots)
    script = ("import json, sys\n"
              "from skiff.network import NetworkManager\n"
              "from skiff.network.config import NetworkConfig\n"
              "from skiff.paths import Paths\n"
              "config = json.loads(sys.argv[3])\n"
              "config['subnet_candidates'] = tuple(config['subnet_candidates'])\n"
              "nm = NetworkManager(Paths.from_env(sys.argv[1], sys.argv[2]), NetworkConfig(**config))\n"
              "for n in range(2):\n"
              "    nm.create_network(f'n{n}')\n")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(m.paths.root), str(m.paths.run_root),
                               json.dumps(dataclasses.asdict(m.config))],
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
             for m in roots]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    subnets = [n["Subnet"] for m in roots for n in m._all_networks()]
    assert sorted(subnets) == list(candidates)


# --- veths -------------------------------------------------------------------------------


def test_reattach_while_the_old_veth_is_still_going_away(nm: NetworkManager) -> None:
    """A restart: detach, then attach the same id at once, while the kernel still holds the
    old namespace and its veth (here held by an open fd, as its destruction is in the background)."""
    c = cid()
    att = nm.attach(c)
    old_veth = nm._load_network("bridge")["Containers"][c]["Veth"]
    held = os.open(att.netns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        nm.detach(c)
        assert links_with(old_veth), "the old namespace should still hold its veth"
        again = nm.attach(c)
        new_veth = nm._load_network("bridge")["Containers"][c]["Veth"]
        assert new_veth != old_veth
        assert ns(again.netns_path, "ip", "-o", "link", "show", "eth0").returncode == 0
    finally:
        os.close(held)
    nm.detach(c)
    assert not links_gone(old_veth) and not links_gone(new_veth)


def test_a_taken_veth_name_is_retried(nm: NetworkManager, monkeypatch: pytest.MonkeyPatch) -> None:
    taken = f"{nm.config.veth_prefix}x"
    subprocess.run(["ip", "link", "add", taken, "type", "bridge"], check=True)  # any link holds a name
    try:
        names = iter([taken])
        real = nm._veth_name
        monkeypatch.setattr(nm, "_veth_name", lambda c: next(names, None) or real(c))
        c = cid()
        nm.attach(c)
        veth = nm._load_network("bridge")["Containers"][c]["Veth"]
        assert veth != taken and links_with(veth)
        nm.detach(c)
    finally:
        subprocess.run(["ip", "link", "del", taken], check=True)


def test_connect_after_disconnecting_the_first_network_uses_a_free_interface(nm: NetworkManager) -> None:
    nm.create_network("second", subnet=free_subnet())
    att = nm.attach(cid())
    nm.connect(att.container_id, "second")  # eth1
    nm.disconnect(att.container_id, "bridge")  # eth0 goes
    nm.connect(att.container_id, "bridge")
    addrs = ns(att.netns_path, "ip", "-o", "-4", "addr", "show", check=True).stdout
    bridge_ip = nm.attachment(att.container_id).settings()["Networks"]["bridge"]["IPAddress"]
    assert f"eth0    inet {bridge_ip}/" in addrs or f"eth0 inet {bridge_ip}/" in " ".join(addrs.split())


def test_reconcile_releases_a_killed_attach_with_published_ports(nm: NetworkManager) -> None:
    """What the crash-safety path calls: everything of a dead id goes, the port claim too."""
    c = cid()
    nm.attach(c, NetworkRequest(publish=["0:80"]))
    assert nm.registry.holds(c)  # the published port's host-wide claim
    veth = nm._load_network("bridge")["Containers"][c]["Veth"]
    assert nm.reconcile(set()) == [c]
    assert nm.reconcile(set()) == []  # nothing left: a second call finds nothing
    assert not nm.registry.holds(c)
    assert not links_gone(veth) and not (nm.paths.netns / c).exists()
    assert nm._load_network("bridge")["Containers"] == {} and nm.ports(c) == []
