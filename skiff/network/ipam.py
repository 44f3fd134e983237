"""Address management: subnets that do not clash with the host's routes, addresses leased once.

Leases live in the network record (``Containers`` maps a container id to its
address), written with write_json under the network lock, so an address is
handed out once even when many ``skiff run`` start together, and survives a
crash until reconcile releases it.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterable
from pathlib import Path

from skiff.errors import AddressInUse, InvalidArgument, NetworkError

Net = ipaddress.IPv4Network
Addr = ipaddress.IPv4Address


def host_routes(route_table: Path = Path("/proc/net/route")) -> list[tuple[str, Net]]:
    """(interface, destination) of every IPv4 route in the main table, the default route left out."""
    routes = []
    for line in route_table.read_text().splitlines()[1:]:
        fields = line.split()
        dest, mask = (socket.inet_ntoa(struct.pack("<I", int(v, 16))) for v in (fields[1], fields[7]))
        network = Net(f"{dest}/{mask}", strict=False)
        if network.prefixlen:
            routes.append((fields[0], network))
    return routes


def overlap(subnet: Net, taken: Iterable[tuple[str, Net]]) -> str | None:
    """The first (owner, network) that overlaps ``subnet``, described, or None."""
    for owner, network in taken:
        if subnet.overlaps(network):
            return f"{network} ({owner})"
    return None


def parse_subnet(text: str) -> Net:
    try:
        subnet = Net(text, strict=False)
    except ValueError:
        raise InvalidArgument(f"invalid subnet {text!r}", hint="use CIDR notation like 10.231.0.0/24") from None
    if subnet.is_loopback or subnet.is_multicast or subnet.is_link_local or subnet.is_unspecified:
        raise InvalidArgument(f"subnet {subnet} is reserved (loopback, multicast, link-local or unspecified)",
                              hint="use a private range like 10.0.0.0/8 or 172.16.0.0/12")
    if subnet.prefixlen > 30:
        raise InvalidArgument(f"subnet {subnet} is too small", hint="use a /30 or larger")
    return subnet


def choose_subnet(candidates: Iterable[str], taken: list[tuple[str, Net]]) -> Net:
    """The first candidate that overlaps neither a host route nor another skiff network."""
    for text in candidates:
        subnet = Net(text)
        if not overlap(subnet, taken):
            return subnet
    raise NetworkError("no free subnet for a skiff network: every candidate overlaps a route",
                       hint="give one with --subnet, or set subnet_candidates in the network config")


def check_subnet(subnet: Net, taken: list[tuple[str, Net]]) -> None:
    clash = overlap(subnet, taken)
    if clash:
        raise NetworkError(f"subnet {subnet} overlaps {clash}",
                           hint="choose a subnet that no host route or skiff network uses")


def default_gateway(subnet: Net) -> Addr:
    return subnet.network_address + 1


def check_gateway(subnet: Net, text: str) -> Addr:
    try:
        gateway = Addr(text)
    except ValueError:
        raise InvalidArgument(f"invalid gateway address {text!r}") from None
    if gateway not in subnet or gateway in (subnet.network_address, subnet.broadcast_address):
        raise InvalidArgument(f"gateway {gateway} is not a host address of subnet {subnet}")
    return gateway


def allocate(subnet: Net, gateway: Addr, leased: set[str], requested: str | None = None) -> Addr:
    """A free host address of ``subnet``: the one requested (checked), else the lowest free."""
    reserved = {subnet.network_address, subnet.broadcast_address, gateway}
    if requested:
        try:
            address = Addr(requested)
        except ValueError:
            raise InvalidArgument(f"invalid IPv4 address for --ip: {requested!r}") from None
        if address not in subnet or address in reserved:
            raise InvalidArgument(f"--ip {address} is not a free host address of subnet {subnet}",
                                  hint=f"the gateway is {gateway}; pick another address inside {subnet}")
        if str(address) in leased:
            raise AddressInUse(f"Address already in use: {address}", hint="another container holds it")
        return address
    for address in subnet.hosts():
        if address not in reserved and str(address) not in leased:
            return address
    raise NetworkError(f"no free address left in subnet {subnet}", hint="remove containers or use a larger subnet")


def mac_for(address: Addr) -> str:
    """Docker's scheme: 02:42 then the four address bytes, unique per lease."""
    return "02:42:" + ":".join(f"{b:02x}" for b in address.packed)
