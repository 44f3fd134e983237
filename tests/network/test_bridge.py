"""Bridge networking against the real kernel: namespaces, veths, addresses, routes, DNAT, NAT."""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from skiff.errors import AddressInUse, InvalidArgument, NetworkError, PortAllocated, SkiffError
from skiff.network import NetworkManager, NetworkRequest

from .conftest import free_subnet, links_gone, ns, peer_seen_by_upstream, route_dev, upstream_host
from .helpers import fetch, free_port, http_get_from, http_server, occupied_port, tcp_listener


def cid() -> str:
    return secrets.token_hex(32)


def test_none_has_only_lo_and_it_is_up(nm: NetworkManager) -> None:
    att = nm.attach(cid(), NetworkRequest(network="none"))
    links = ns(att.netns_path, "ip", "-o", "link", "show", check=True).stdout.splitlines()
    assert len(links) == 1 and links[0].split(":")[1].strip() == "lo"
    assert "UP" in links[0].split("<")[1].split(">")[0].split(",")
    assert ns(att.netns_path, "ip", "-o", "route", "show", check=True).stdout == ""
    assert att.settings()["Networks"] == {}


def test_host_mode_has_no_namespace(nm: NetworkManager) -> None:
    att = nm.attach(cid(), NetworkRequest(network="host"))
    assert att.netns_path is None
    assert "localhost" in att.hosts


def test_bridge_attach_wires_eth0_lo_and_default_route(nm: NetworkManager) -> None:
    c = cid()
    att = nm.attach(c, NetworkRequest(hostname="web"), name="web")
    net = att.settings()["Networks"]["bridge"]
    assert net["IPAddress"].startswith(nm.config.subnet_candidates[0].rsplit(".", 2)[0])
    assert net["MacAddress"].startswith("02:42:")
    addrs = ns(att.netns_path, "ip", "-o", "-4", "addr", "show", check=True).stdout
    assert f"eth0    inet {net['IPAddress']}/{net['IPPrefixLen']}" in " ".join(addrs.split("\n")).replace(
        "   ", " ") or f"inet {net['IPAddress']}/{net['IPPrefixLen']}" in addrs
    assert "127.0.0.1/8" in addrs
    routes = ns(att.netns_path, "ip", "route", "show", "default", check=True).stdout
    assert routes.split()[:5] == ["default", "via", net["Gateway"], "dev", "eth0"]
    assert f"{net['IPAddress']}\tweb\n" in att.hosts
    # One veth pair per container, host end on the bridge.
    veth = nm._load_network("bridge")["Containers"][c]["Veth"]
    master = subprocess.run(["ip", "-o", "link", "show", veth], capture_output=True, text=True, check=True).stdout
    assert f"master {nm.config.default_bridge}" in master
    nm.detach(c)
    assert not links_gone(veth)
    assert not att.netns_path.exists()
    nm.detach(c)  # idempotent


def test_container_reaches_gateway_by_ping_and_tcp(nm: NetworkManager) -> None:
    att = nm.attach(cid())
    gateway = att.settings()["Gateway"]
    assert route_dev(att.settings()["IPAddress"]) == nm.config.default_bridge
    ping = ns(att.netns_path, "busybox", "ping", "-c", "1", "-W", "2", gateway)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    with tcp_listener(gateway) as (port, seen):
        sent = ns(att.netns_path, "sh", "-c", f"echo tcp-ok | busybox nc -w 2 {gateway} {port}")
        assert sent.returncode == 0, sent.stderr
    assert seen == [(att.settings()["IPAddress"], b"tcp-ok\n")]


def test_host_reaches_container_and_containers_reach_each_other(nm: NetworkManager, tmp_path: Path) -> None:
    a = nm.attach(cid())
    b = nm.attach(cid())
    a_ip, b_ip = a.settings()["IPAddress"], b.settings()["IPAddress"]
    assert a_ip != b_ip
    assert route_dev(a_ip) == nm.config.default_bridge
    with http_server(a.netns_path, 8080, tmp_path / "www"):
        assert fetch(f"http://{a_ip}:8080/") == "hello from skiff\n"
        assert http_get_from(b.netns_path, a_ip, 8080) == "hello from skiff\n"


def test_published_port_from_localhost_and_bridge_address(nm: NetworkManager, tmp_path: Path) -> None:
    c = cid()
    host_port = free_port()
    att = nm.attach(c, NetworkRequest(publish=[f"{host_port}:8080"]))
    assert nm.ports(c) == [f"8080/tcp -> 0.0.0.0:{host_port}"]
    assert att.settings()["Ports"] == {"8080/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(host_port)}]}
    gateway = att.settings()["Gateway"]
    assert route_dev(gateway) == "lo"  # the bridge address is local: DNAT sends it to the container
    with http_server(att.netns_path, 8080, tmp_path / "www"):
        assert fetch(f"http://127.0.0.1:{host_port}/") == "hello from skiff\n"
        assert fetch(f"http://{gateway}:{host_port}/") == "hello from skiff\n"
    nm.detach(c)
    assert nm.ports(c) == []
    table = subprocess.run(["nft", "list", "table", "ip", nm.config.nft_table], capture_output=True, text=True)
    assert f"dport {host_port}" not in table.stdout
    with pytest.raises(OSError):
        fetch(f"http://127.0.0.1:{host_port}/", timeout=2)


def test_publish_all_maps_exposed_ports_to_free_host_ports(nm: NetworkManager) -> None:
    c = cid()
    att = nm.attach(c, NetworkRequest(publish_all=True, exposed_ports=["80/tcp", "53/udp"]))
    ports = att.settings()["Ports"]
    assert set(ports) == {"80/tcp", "53/udp"}
    assert all(int(m[0]["HostPort"]) > 1024 for m in ports.values())
    assert len(nm.ports(c)) == 2


def test_taken_host_port_fails_before_anything_exists(nm: NetworkManager) -> None:
    c = cid()
    with occupied_port() as port:
        with pytest.raises(PortAllocated) as info:
            nm.attach(c, NetworkRequest(publish=[f"{port}:80"]))
    assert info.value.exit_code == 125
    assert "port is already allocated" in str(info.value)
    first = nm.attach(cid(), NetworkRequest(publish=[f"{port}:80"]))
    with pytest.raises(PortAllocated):
        nm.attach(c, NetworkRequest(publish=[f"{port}:81"]))  # taken by a container now
    assert c not in nm._load_network("bridge")["Containers"]
    assert not (nm.paths.netns / c).exists()
    assert first.settings()["Ports"]


@pytest.mark.parametrize("request_, error", [
    (NetworkRequest(network="nosuchnet"), NetworkError),
    (NetworkRequest(publish=["80:abc"]), InvalidArgument),
    (NetworkRequest(ip="10.99.99.99"), InvalidArgument),
])
def test_bad_input_exits_125_and_leaves_nothing(nm: NetworkManager, request_: NetworkRequest,
                                                error: type[SkiffError]) -> None:
    c = cid()
    with pytest.raises(error) as info:
        nm.attach(c, request_)
    assert info.value.exit_code == 125
    assert not (nm.paths.netns / c).exists()
    assert nm._load_endpoint(c) is None


def test_requested_ip_is_given_and_never_twice(nm: NetworkManager) -> None:
    subnet = nm.config.subnet_candidates[0]
    wanted = subnet.rsplit(".", 1)[0] + ".77"
    att = nm.attach(cid(), NetworkRequest(ip=wanted))
    assert att.settings()["IPAddress"] == wanted
    c = cid()
    with pytest.raises(AddressInUse) as info:
        nm.attach(c, NetworkRequest(ip=wanted))
    assert info.value.exit_code == 125
    assert not (nm.paths.netns / c).exists()


def test_twenty_parallel_attaches_get_distinct_addresses(nm: NetworkManager) -> None:
    ids = [cid() for _ in range(20)]
    script = textwrap.dedent(f"""
        import sys
        from skiff.network import NetworkManager
        from skiff.paths import Paths
        att = NetworkManager(Paths.from_env({str(nm.paths.root)!r}, {str(nm.paths.run_root)!r})).attach(sys.argv[1])
        print(att.settings()["IPAddress"])
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, c], stdout=subprocess.PIPE, text=True)
             for c in ids]
    addresses = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len(set(addresses)) == 20 and all(addresses)
    leases = nm._load_network("bridge")["Containers"]
    assert sorted(leases[c]["IPAddress"] for c in ids) == sorted(addresses)
    for c in ids:
        nm.detach(c)
    assert nm._load_network("bridge")["Containers"] == {}


def test_reconcile_after_sigkill_of_skiff_releases_everything(nm: NetworkManager) -> None:
    c = cid()
    script = textwrap.dedent(f"""
        import os, signal
        from skiff.network import NetworkManager, NetworkRequest
        from skiff.paths import Paths
        nm = NetworkManager(Paths.from_env({str(nm.paths.root)!r}, {str(nm.paths.run_root)!r}))
        nm.attach({c!r}, NetworkRequest(publish=["0:80"]))
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script])
    assert proc.returncode == -signal.SIGKILL
    veth = nm._load_network("bridge")["Containers"][c]["Veth"]
    assert subprocess.run(["ip", "link", "show", veth], capture_output=True).returncode == 0
    live = nm.attach(cid())
    assert nm.reconcile({live.container_id}) == [c]
    assert not links_gone(veth)
    assert c not in nm._load_network("bridge")["Containers"]
    assert not (nm.paths.netns / c).exists()
    assert nm.ports(c) == []
    assert live.container_id in nm._load_network("bridge")["Containers"]


def test_files_for_names_and_dns(nm: NetworkManager) -> None:
    att = nm.attach(cid(), NetworkRequest(hostname="box", add_hosts=["db:10.1.2.3", "gw:host-gateway"],
                                          dns=["10.0.0.53"], dns_search=["example.test"],
                                          dns_options=["ndots:2"]))
    gateway = att.settings()["Gateway"]
    assert att.hosts.startswith("127.0.0.1\tlocalhost\n")
    assert "10.1.2.3\tdb\n" in att.hosts and f"{gateway}\tgw\n" in att.hosts
    assert f"{att.settings()['IPAddress']}\tbox\n" in att.hosts
    assert att.resolv_conf == "search example.test\nnameserver 10.0.0.53\noptions ndots:2\n"  # Docker's order


@pytest.fixture
def upstream(nm: NetworkManager) -> Iterator[tuple[str, str, str]]:
    with upstream_host(nm.config.bridge_prefix) as host:
        yield host


def _shell_in(netns: Path) -> Callable[[str], object]:
    return lambda line: ns(netns, "sh", "-c", line)


def test_outbound_nat_upstream_sees_the_host_address(nm: NetworkManager, upstream) -> None:
    upstream_ns, host_side, far_side = upstream
    att = nm.attach(cid())
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == "1"
    assert peer_seen_by_upstream(upstream_ns, far_side, _shell_in(att.netns_path)) == host_side


def test_internal_network_cannot_reach_upstream(nm: NetworkManager, upstream) -> None:
    upstream_ns, _, far_side = upstream
    nm.create_network("inside", subnet=free_subnet(), internal=True)
    att = nm.attach(cid(), NetworkRequest(network="inside"))
    assert peer_seen_by_upstream(upstream_ns, far_side, _shell_in(att.netns_path)) is None
    assert f"nameserver {att.settings()['Gateway']}\n" in att.resolv_conf


def test_published_port_from_another_host(nm: NetworkManager, upstream, tmp_path: Path) -> None:
    """The upstream namespace stands in for another machine: it reaches the host's address."""
    upstream_ns, host_side, _ = upstream
    host_port = free_port()
    att = nm.attach(cid(), NetworkRequest(publish=[f"{host_port}:8080"]))
    with http_server(att.netns_path, 8080, tmp_path / "www"):
        assert http_get_from(upstream_ns, host_side, host_port) == "hello from skiff\n"


def test_outbound_tcp_mss_is_clamped_to_the_upstream_link(nm: NetworkManager, upstream) -> None:
    """The bridge's 64 KiB MTU must not leak out.

    The upstream believes in a 9000-byte MTU while the host's end of that link takes
    1500 (a silent black hole for big packets, as behind a misconfigured router): a
    download works only if the container's SYN had its MSS clamped to the 1500 route.
    """
    upstream_ns, _, far_side = upstream
    subprocess.run(["nsenter", f"--net={upstream_ns}", "ip", "link", "set", "up0", "mtu", "9000"], check=True)
    att = nm.attach(cid())
    server = subprocess.Popen(["nsenter", f"--net={upstream_ns}", sys.executable, "-c", textwrap.dedent(f"""
        import socket
        s = socket.socket(); s.bind(({far_side!r}, 9101)); s.listen(1); s.settimeout(10)
        print("ready", flush=True)
        c, _ = s.accept()
        c.sendall(bytes(2_000_000)); c.close()
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline() == "ready\n"
        got = ns(att.netns_path, "sh", "-c", f"busybox nc -w 3 {far_side} 9101 | wc -c", timeout=20)
    finally:
        server.kill()
        server.wait()
    assert got.stdout.strip() == "2000000", got.stdout + got.stderr
