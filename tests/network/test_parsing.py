"""Pure parsing and file rendering: -p specs, /etc/hosts, /etc/resolv.conf, IPAM arithmetic."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from skiff.errors import AddressInUse, InvalidArgument
from skiff.network import PortMapping, parse_publish
from skiff.network import ipam, names
from skiff.network.firewall import BridgeRules, PortRule, render


@pytest.mark.parametrize("spec, expected", [
    ("80", [PortMapping(80, "tcp", "", 0)]),
    ("8080:80", [PortMapping(80, "tcp", "", 8080)]),
    ("127.0.0.1:8080:80/udp", [PortMapping(80, "udp", "127.0.0.1", 8080)]),
    ("127.0.0.1::80", [PortMapping(80, "tcp", "127.0.0.1", 0)]),
    ("0:80", [PortMapping(80, "tcp", "", 0)]),
    ("8000-8001:80-81/tcp", [PortMapping(80, "tcp", "", 8000), PortMapping(81, "tcp", "", 8001)]),
    ("53-54/udp", [PortMapping(53, "udp", "", 0), PortMapping(54, "udp", "", 0)]),
])
def test_parse_publish(spec: str, expected: list[PortMapping]) -> None:
    assert parse_publish(spec) == expected


@pytest.mark.parametrize("spec, message", [
    ("abc", "invalid containerPort: abc"),
    ("80:abc", "invalid containerPort: abc"),
    ("x:80", "invalid hostPort: x"),
    ("70000:80", "invalid hostPort: 70000"),
    ("80/sctpx", "invalid proto: sctpx"),
    ("1.2.3:80:80", "Invalid ip address: 1.2.3"),
    ("8000-8002:80-81", "Invalid ranges specified"),
    ("80:", "No port specified"),
    ("[::1]:80:80", "IPv6"),
])
def test_parse_publish_rejects_with_dockers_messages(spec: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_publish(spec)
    assert message in str(info.value) and info.value.exit_code == 125


def test_describe_for_skiff_port() -> None:
    assert PortMapping(80, "tcp", "", 8080).describe() == "80/tcp -> 0.0.0.0:8080"


def test_allocate_lowest_free_and_requested() -> None:
    subnet = ipaddress.IPv4Network("10.0.0.0/29")
    gw = ipam.default_gateway(subnet)
    assert str(ipam.allocate(subnet, gw, set())) == "10.0.0.2"
    assert str(ipam.allocate(subnet, gw, {"10.0.0.2", "10.0.0.3"})) == "10.0.0.4"
    assert str(ipam.allocate(subnet, gw, set(), "10.0.0.5")) == "10.0.0.5"
    with pytest.raises(InvalidArgument, match="not a free host address"):
        ipam.allocate(subnet, gw, set(), "10.0.0.1")  # the gateway
    with pytest.raises(InvalidArgument, match="not a free host address"):
        ipam.allocate(subnet, gw, set(), "10.0.1.5")
    with pytest.raises(AddressInUse):
        ipam.allocate(subnet, gw, {"10.0.0.5"}, "10.0.0.5")
    full = {f"10.0.0.{i}" for i in range(2, 7)}
    with pytest.raises(Exception, match="no free address"):
        ipam.allocate(subnet, gw, full)


def test_choose_subnet_skips_routes() -> None:
    taken = [("eth0", ipaddress.IPv4Network("172.17.0.0/16"))]
    assert str(ipam.choose_subnet(["172.17.0.0/16", "172.18.0.0/16"], taken)) == "172.18.0.0/16"


def test_resolv_conf_replaces_loopback_servers(tmp_path: Path) -> None:
    host = tmp_path / "resolv.conf"
    host.write_text("nameserver 127.0.0.53\nsearch corp.test\noptions edns0\n")
    assert names.upstream_nameservers(host) == list(names.DEFAULT_NAMESERVERS) or \
        all(not s.startswith("127.") for s in names.upstream_nameservers(host))
    text = names.resolv_conf(host_resolv=host)
    assert "127.0.0.53" not in text and "search corp.test\n" in text and "options edns0\n" in text
    host.write_text("nameserver 10.9.9.9\nnameserver ::1\n")
    assert names.resolv_conf(host_resolv=host) == "nameserver 10.9.9.9\n"
    with pytest.raises(InvalidArgument):
        names.resolv_conf(dns=["not-an-ip"], host_resolv=host)


def test_add_host_forms() -> None:
    assert names.parse_add_host("db:10.0.0.9", None) == ("db", "10.0.0.9")
    assert names.parse_add_host("gw:host-gateway", "172.17.0.1") == ("gw", "172.17.0.1")
    assert names.parse_add_host("v6:[::1]", None) == ("v6", "::1")
    with pytest.raises(InvalidArgument):
        names.parse_add_host("db:notanip", None)


def test_ruleset_masquerades_outbound_but_not_internal() -> None:
    text = render("t", [BridgeRules("br0", "10.1.0.0/24", False), BridgeRules("br1", "10.2.0.0/24", True)],
                  [PortRule("", 8080, "tcp", "10.1.0.2", 80)])
    assert 'ip saddr 10.1.0.0/24 oifname != "br0" masquerade' in text
    assert 'ip saddr 10.2.0.0/24 oifname != "br1" masquerade' not in text
    assert 'iifname "br1" oifname != "br1" drop' in text
    assert "tcp dport 8080 dnat to 10.1.0.2:80" in text
    assert render("t", [], []) == ""
