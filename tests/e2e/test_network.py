"""Networking through the real CLI: ``skiff run`` (foreground and -d), ``skiff network``, ``skiff port``.

Traffic goes only to loopback, to the test's own bridge (checked with ``ip route get``
before anything is sent) and to namespaces the test creates. Every test runs with
private names (bridge, veth prefix, nft table, subnet: see tests/conftest.py), and
the ``net`` fixture checks that nothing of them is left: no container, veth, lease,
netns pin, resolver, nft table or iptables chain.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from tests.conftest import Skiff
from tests.network.conftest import (free_subnet, links_with, peer_seen_by_upstream, resolvers_for, route_dev,
                                    upstream_host)
from tests.network.helpers import fetch, free_port, occupied_port, tcp_listener

HTTPD = ["sh", "-c", "echo hello from skiff > /tmp/index.html && exec httpd -f -p 80 -h /tmp"]


class Net:
    """The CLI plus this test's network names."""

    def __init__(self, skiff: Skiff) -> None:
        self.skiff = skiff
        self.config = json.loads((skiff.root / "network" / "config.json").read_text())
        self.bridge = self.config["default_bridge"]
        subnet = ipaddress.IPv4Network(self.config["subnet_candidates"][0])
        self.subnet = str(subnet)
        self.gateway = str(subnet.network_address + 1)

    def ip_of(self, name: str, network: str = "bridge") -> str:
        data = json.loads(self.skiff.ok("inspect", name))[0]
        return data["NetworkSettings"]["Networks"][network]["IPAddress"]

    def veths(self) -> list[str]:
        return links_with(self.config["veth_prefix"])

    def no_veths(self, timeout: float = 3) -> bool:
        """Whether the veths are gone: the kernel removes them with their namespace, in the background."""
        deadline = time.monotonic() + timeout
        while self.veths():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def leases(self) -> list[str]:
        records = self.skiff.root / "network" / "networks"
        return [cid for p in records.glob("*.json") for cid in json.loads(p.read_text())["Containers"]]

    def netns_pins(self) -> list[str]:
        pins = self.skiff.run_root / "netns"
        return [p.name for p in pins.glob("*") if not p.name.startswith(".")] if pins.is_dir() else []

    def ruleset(self) -> str:
        return subprocess.run(["nft", "list", "table", "ip", self.config["nft_table"]],
                              capture_output=True, text=True).stdout

    def wait_http(self, url: str, timeout: float = 5) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                return fetch(url, timeout=2)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


@pytest.fixture
def net(skiff: Skiff, busybox_image: str) -> Iterator[Net]:
    n = Net(skiff)
    yield n
    ids = skiff("ps", "-aq").stdout.split()
    if ids:
        skiff("rm", "-f", *ids)
    skiff("network", "prune", "-f")
    leaks = {"veths": [] if n.no_veths() else n.veths(), "leases": n.leases(), "netns pins": n.netns_pins(),
             "resolvers": resolvers_for(skiff.root)}
    assert not any(leaks.values()), f"left behind: {leaks}"


def start_bridge(net: Net) -> None:
    """The default bridge is made by the first container and stays: make it, check the route."""
    net.skiff.ok("run", "--rm", "busybox", "true")
    assert route_dev(net.gateway) == net.bridge or route_dev(net.gateway) == "lo"


# --- the default bridge ---------------------------------------------------------


def test_default_bridge_is_listed_and_inspected_before_it_is_made(net: Net) -> None:
    """Docker's ``bridge`` always exists: ``ls`` and ``inspect`` show it from the start, yet no
    bridge device, nft table or record is made until a container needs it, and then it has
    the id and subnet that were shown."""
    rows = [json.loads(line) for line in net.skiff.ok("network", "ls", "--no-trunc", "--format", "{{json .}}").splitlines()]
    listed = {row["Name"]: row["ID"] for row in rows}
    shown = json.loads(net.skiff.ok("network", "inspect", "bridge"))[0]
    assert (shown["Name"], shown["Driver"], shown["Id"]) == ("bridge", "bridge", listed["bridge"])
    assert shown["IPAM"]["Config"] == [{"Subnet": net.subnet, "Gateway": net.gateway}]
    assert shown["Options"]["com.docker.network.bridge.name"] == net.bridge
    assert json.loads(net.skiff.ok("network", "inspect", listed["bridge"][:12]))[0]["Id"] == shown["Id"]
    assert net.bridge not in links_with(net.bridge) and not net.ruleset()
    assert not (net.skiff.root / "network" / "networks" / "bridge.json").exists()
    removal = net.skiff("network", "rm", "bridge")
    assert (removal.returncode, removal.stderr) == (1, "skiff: bridge is a pre-defined network and cannot be removed\n")
    start_bridge(net)
    made = json.loads(net.skiff.ok("network", "inspect", "bridge"))[0]
    assert (made["Id"], made["IPAM"]["Config"]) == (shown["Id"], shown["IPAM"]["Config"])
    assert net.bridge in links_with(net.bridge)


def test_container_reaches_gateway_by_ping_and_tcp(net: Net) -> None:
    start_bridge(net)
    with tcp_listener(net.gateway) as (port, seen):
        out = net.skiff.ok("run", "--rm", "busybox", "sh", "-c",
                           f"ping -c1 -W2 {net.gateway} >/dev/null && echo ping-ok && "
                           f"echo hi | nc -w 2 {net.gateway} {port}")
    assert "ping-ok" in out
    assert seen and seen[0][1] == b"hi\n" and ipaddress.ip_address(seen[0][0]) in ipaddress.ip_network(net.subnet)


def test_host_reaches_detached_httpd_by_address_and_published_port(net: Net) -> None:
    host_port = free_port()
    net.skiff.ok("run", "-d", "--name", "web", "-p", f"{host_port}:80", "busybox", *HTTPD)
    address = net.ip_of("web")
    assert route_dev(address) == net.bridge
    assert net.wait_http(f"http://{address}/") == "hello from skiff\n"
    assert route_dev(net.gateway) in (net.bridge, "lo")
    assert fetch(f"http://127.0.0.1:{host_port}/") == "hello from skiff\n"
    assert fetch(f"http://{net.gateway}:{host_port}/") == "hello from skiff\n"
    assert net.skiff.ok("port", "web").strip() == f"80/tcp -> 0.0.0.0:{host_port}"
    assert f"dport {host_port}" in net.ruleset()
    net.skiff.ok("rm", "-f", "web")
    assert net.no_veths() and not net.leases() and not net.netns_pins()
    assert f"dport {host_port}" not in net.ruleset()


def test_container_reaches_container_on_one_bridge(net: Net) -> None:
    net.skiff.ok("run", "-d", "--name", "web", "busybox", *HTTPD)
    address = net.ip_of("web")
    net.wait_http(f"http://{address}/")
    out = net.skiff.ok("run", "--rm", "busybox", "wget", "-qO-", f"http://{address}/")
    assert out == "hello from skiff\n"


def test_requested_ip(net: Net) -> None:
    wanted = str(ipaddress.ip_network(net.subnet).network_address + 77)
    net.skiff.ok("run", "-d", "--name", "fixed", "--ip", wanted, "busybox", "sleep", "60")
    assert net.ip_of("fixed") == wanted
    inside = net.skiff.ok("run", "--rm", "--network", "container:fixed", "busybox", "ip", "-4", "addr", "show", "eth0")
    assert f"inet {wanted}/" in inside


def test_twenty_parallel_runs_get_distinct_addresses(net: Net) -> None:
    start_bridge(net)
    procs = [subprocess.Popen([sys.executable, "-m", "skiff", "run", "-d", "--name", f"p{i}", "busybox",
                               "sleep", "60"], env=net.skiff.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(20)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
    for p in procs:
        p.stdout.close()  # type: ignore[union-attr]
        p.stderr.close()  # type: ignore[union-attr]
    assert all(rc == 0 for rc, _ in results), results
    addresses = {net.ip_of(f"p{i}") for i in range(20)}
    assert len(addresses) == 20
    assert len(net.veths()) == 20


# --- other modes ------------------------------------------------------------------------


def test_network_none_has_only_lo(net: Net) -> None:
    out = net.skiff.ok("run", "--rm", "--network", "none", "busybox", "ip", "-o", "link")
    assert [line.split(":")[1].strip() for line in out.splitlines()] == ["lo"]
    assert "UP" in out.split("<")[1].split(">")[0].split(",")
    assert not net.veths()


def test_network_host_sees_the_hosts_interfaces(net: Net) -> None:
    out = net.skiff.ok("run", "--rm", "--network", "host", "busybox", "ip", "-o", "link")
    inside = {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}
    host = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    outside = {line.split(":")[1].strip().split("@")[0] for line in host.splitlines()}
    assert len(inside) > 1 and inside <= outside | {"lo"}


def test_network_container_shares_the_namespace(net: Net) -> None:
    net.skiff.ok("run", "-d", "--name", "owner", "busybox", "sleep", "60")
    address = net.ip_of("owner")
    out = net.skiff.ok("run", "--rm", "--network", "container:owner", "busybox", "ip", "-4", "-o", "addr")
    assert f"inet {address}/" in out
    assert len(net.veths()) == 1


# --- user networks -----------------------------------------------------------------


@contextlib.contextmanager
def fake_dns(address: str, answer: str) -> Iterator[None]:
    """A UDP DNS server on the host answering every A query with ``answer``."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind((address, 53))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                query, client = server.recvfrom(512)
            except OSError:
                continue
            end = query.index(b"\0", 12) + 5
            header = query[:2] + b"\x81\x80" + b"\x00\x01\x00\x01\x00\x00\x00\x00"
            record = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x00\x00\x04" + socket.inet_aton(answer)
            server.sendto(header + query[12:end] + record, client)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


def test_names_on_a_user_network_and_dns_forwarding(net: Net) -> None:
    subnet = free_subnet(used={net.subnet})
    net.skiff.ok("network", "create", "--subnet", subnet, "front")
    gateway = str(ipaddress.ip_network(subnet).network_address + 1)
    net.skiff.ok("run", "-d", "--name", "web", "--network", "front", "busybox", *HTTPD)
    net.skiff.ok("run", "-d", "--name", "client", "--network", "front", "busybox", "sleep", "60")
    web = net.ip_of("web", "front")
    assert route_dev(web) == json.loads(net.skiff.ok("network", "inspect", "front"))[0]["Options"][
        "com.docker.network.bridge.name"]
    lookup = net.skiff.ok("exec", "client", "nslookup", "web")
    assert f"Address: {web}" in lookup
    assert f"({web})" in net.skiff.ok("exec", "client", "ping", "-c1", "-W2", "web")
    net.wait_http(f"http://{web}/")
    assert net.skiff.ok("exec", "client", "wget", "-qO-", "http://web/") == "hello from skiff\n"
    inspect = json.loads(net.skiff.ok("network", "inspect", "front"))[0]
    assert {c["Name"] for c in inspect["Containers"].values()} == {"web", "client"}
    assert "front" in net.skiff.ok("network", "ls")
    # --dns: container names still resolve, other names go to the --dns server (the default
    # bridge's gateway here: a host address the resolver reaches locally).
    start_bridge(net)
    with fake_dns(net.gateway, "10.9.8.7"):
        out = net.skiff.ok("run", "--rm", "--network", "front", "--dns", net.gateway, "busybox", "sh", "-c",
                           "cat /etc/resolv.conf; nslookup web; nslookup elsewhere.test")
    assert f"nameserver {gateway}\n" in out
    assert f"Address: {web}" in out and "Address: 10.9.8.7" in out
    result = net.skiff("network", "rm", "front")
    assert result.returncode != 0 and "active endpoints" in result.stderr
    net.skiff.ok("rm", "-f", "web", "client")
    net.skiff.ok("network", "rm", "front")
    assert "front" not in net.skiff.ok("network", "ls")


def test_connect_and_disconnect(net: Net) -> None:
    subnet = free_subnet(used={net.subnet})
    net.skiff.ok("network", "create", "--subnet", subnet, "back")
    net.skiff.ok("run", "-d", "--name", "box", "busybox", "sleep", "60")
    net.skiff.ok("network", "connect", "back", "box")
    assert "eth1" in net.skiff.ok("exec", "box", "ip", "-o", "link")
    net.skiff.ok("network", "disconnect", "back", "box")
    assert "eth1" not in net.skiff.ok("exec", "box", "ip", "-o", "link")
    net.skiff.ok("network", "rm", "back")


def test_connect_and_disconnect_a_created_container(net: Net) -> None:
    """As compose does: a created container leaves its network and joins it again with an alias;
    only its record changes (no address yet), and its start attaches what the record says."""
    subnet = free_subnet(used={net.subnet})
    net.skiff.ok("network", "create", "--subnet", subnet, "front")
    net.skiff.ok("create", "--name", "web", "--network", "front", "busybox", *HTTPD)
    net.skiff.ok("network", "disconnect", "front", "web")
    assert json.loads(net.skiff.ok("inspect", "web"))[0]["NetworkSettings"]["Networks"] == {}
    again = net.skiff("network", "disconnect", "front", "web")
    assert again.returncode == 1 and "is not connected to the network front" in again.stderr
    net.skiff.ok("network", "connect", "--alias", "site", "front", "web")
    net.skiff.ok("network", "connect", "--alias", "site", "front", "web")  # again: Docker replaces the settings
    web = json.loads(net.skiff.ok("inspect", "web"))[0]
    endpoint = web["NetworkSettings"]["Networks"]["front"]
    assert endpoint["IPAddress"] == "" and endpoint["Aliases"] == ["site", web["Id"][:12]]
    assert endpoint["IPAMConfig"] == {} and web["HostConfig"]["NetworkMode"] == "front"
    net.skiff.ok("start", "web")
    web = net.ip_of("web", "front")
    net.wait_http(f"http://{web}/")
    out = net.skiff.ok("run", "--rm", "--network", "front", "busybox", "wget", "-qO-", "http://site/")
    assert out == "hello from skiff\n"


def test_connect_and_disconnect_a_stopped_container(net: Net) -> None:
    """Networks connected while it ran stay for its next start; one disconnected from all of them
    starts with its loopback only, as Docker's."""
    subnet = free_subnet(used={net.subnet})
    net.skiff.ok("network", "create", "--subnet", subnet, "back")
    net.skiff.ok("run", "-d", "--name", "box", "busybox", "sleep", "60")
    net.skiff.ok("network", "connect", "back", "box")
    net.skiff.ok("stop", "-t", "0", "box")
    net.skiff.ok("start", "box")
    links = net.skiff.ok("exec", "box", "ip", "-o", "link")
    assert "eth0" in links and "eth1" in links
    net.skiff.ok("stop", "-t", "0", "box")
    net.skiff.ok("network", "disconnect", "bridge", "box")
    net.skiff.ok("network", "disconnect", "back", "box")
    net.skiff.ok("start", "box")
    assert "eth" not in net.skiff.ok("exec", "box", "ip", "-o", "link")
    assert json.loads(net.skiff.ok("inspect", "box"))[0]["NetworkSettings"]["Networks"] == {}


@pytest.fixture
def upstream(net: Net) -> Iterator[tuple[str, str, str]]:
    with upstream_host(net.config["bridge_prefix"]) as host:
        yield host


def seen_by_upstream(net: Net, upstream: tuple[str, str, str], *run_args: str) -> str | None:
    upstream_ns, _, far_side = upstream
    return peer_seen_by_upstream(upstream_ns, far_side,
                                 lambda line: net.skiff("run", "--rm", *run_args, "busybox", "sh", "-c", line))


def test_outbound_nat_and_internal_network(net: Net, upstream: tuple[str, str, str]) -> None:
    assert seen_by_upstream(net, upstream) == upstream[1]
    subnet = free_subnet(used={net.subnet})
    net.skiff.ok("network", "create", "--internal", "--subnet", subnet, "inside")
    assert f"ip saddr {subnet} oifname != " not in net.ruleset()  # no outbound masquerade
    assert seen_by_upstream(net, upstream, "--network", "inside") is None
    net.skiff.ok("network", "rm", "inside")


# --- bad input and cleanup -----------------------------------------------------------


@pytest.mark.parametrize("case", ["unknown-network", "bad-publish", "ip-outside", "ip-taken", "port-taken"])
def test_bad_input_is_one_line_125_and_leaves_nothing(net: Net, case: str) -> None:
    start_bridge(net)
    taken_ip = str(ipaddress.ip_network(net.subnet).network_address + 50)
    if case == "ip-taken":
        net.skiff.ok("run", "-d", "--name", "holder", "--ip", taken_ip, "busybox", "sleep", "60")
    before_veths, before_rules = net.veths(), net.ruleset()
    with occupied_port() as busy:
        args = {"unknown-network": ["--network", "nosuchnet"], "bad-publish": ["-p", "80:abc"],
                "ip-outside": ["--ip", "192.0.2.200"], "ip-taken": ["--ip", taken_ip],
                "port-taken": ["-p", f"{busy}:80"]}[case]
        result = net.skiff("run", "--rm", "--name", "bad", *args, "busybox", "true")
    assert result.returncode == 125, result
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "bad" not in net.skiff.ok("ps", "-a", "--format", "{{.Names}}").split()
    deadline = time.monotonic() + 3  # a veth made before the error goes with its namespace, in the background
    while net.veths() != before_veths and time.monotonic() < deadline:
        time.sleep(0.02)
    assert net.veths() == before_veths and net.ruleset() == before_rules


def test_sigkill_of_foreground_skiff_is_reconciled(net: Net) -> None:
    host_port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "skiff", "run", "--name", "fg", "-p", f"{host_port}:80",
                             "busybox", "sleep", "60"], env=net.skiff.env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not net.veths() or f"dport {host_port}" not in net.ruleset():
            assert time.monotonic() < deadline, "the container never got its network"
            time.sleep(0.05)
        while "running" not in net.skiff("inspect", "-f", "{{.State.Status}}", "fg").stdout:
            assert time.monotonic() < deadline, "the container never ran"
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    net.skiff.ok("ps", "-a")  # any command reconciles
    assert net.no_veths() and not net.leases() and not net.netns_pins()
    assert f"dport {host_port}" not in net.ruleset()


# --- the iptables backend ----------------------------------------------------------


def iptables_rules(table: str) -> str:
    return subprocess.run(["iptables", "-t", table, "-S"], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def iptables_tables_restored() -> Iterator[None]:
    """iptables-nft makes its nat and filter tables on first use, even to list them: the ones this
    test brought into being go again (only when empty: another tool may have started using them)."""
    before = _nft_tables()
    yield
    for family, name in _nft_tables() - before:
        listing = subprocess.run(["nft", "list", "table", family, name], capture_output=True, text=True).stdout
        if not any(line.strip().startswith(("ip ", "meta ", "counter", "jump", "-", "tcp", "udp", "oif", "iif"))
                   for line in listing.splitlines()):
            subprocess.run(["nft", "delete", "table", family, name], capture_output=True)


def _nft_tables() -> set[tuple[str, str]]:
    out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    return {(parts[1], parts[2]) for parts in (line.split() for line in out.splitlines()) if len(parts) == 3}


def test_iptables_backend_when_forced(net: Net, upstream: tuple[str, str, str],
                                      iptables_tables_restored: None) -> None:
    config_path = net.skiff.root / "network" / "config.json"
    config_path.write_text(json.dumps({**net.config, "firewall": "iptables"}))
    chain = net.config["nft_table"].upper()
    others_nat = [line for line in iptables_rules("nat").splitlines() if chain not in line]
    host_port = free_port()
    net.skiff.ok("run", "-d", "--name", "web", "-p", f"{host_port}:80", "busybox", *HTTPD)
    try:
        nat = iptables_rules("nat")
        assert f"-A {chain}-PORTS -p tcp -m tcp --dport {host_port} -j DNAT" in nat
        assert f"-A POSTROUTING -j {chain}-POST" in nat
        assert f"-s {net.subnet} ! -o {net.bridge} -j MASQUERADE" in nat
        assert f"-A FORWARD -j {chain}-FWD" in iptables_rules("filter")
        assert not net.ruleset(), "the nft table must not be used"
        assert net.wait_http(f"http://127.0.0.1:{host_port}/") == "hello from skiff\n"
        assert seen_by_upstream(net, upstream) == upstream[1]
    finally:
        net.skiff.ok("rm", "-f", "web")
        net.skiff.ok("network", "prune", "-f")
    assert chain not in iptables_rules("nat") and chain not in iptables_rules("filter")
    assert [line for line in iptables_rules("nat").splitlines() if chain not in line] == others_nat
