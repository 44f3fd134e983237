"""Published ports: ``-p`` parsing with Docker's grammar and messages, host-port checks."""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from skiff.errors import InvalidArgument, PortAllocated

PROTOCOLS = ("tcp", "udp")


@dataclass(frozen=True)
class PortMapping:
    """One host port forwarded to one container port. host_port 0: pick a free one."""

    container_port: int
    protocol: str = "tcp"
    host_ip: str = ""
    host_port: int = 0

    @property
    def key(self) -> str:
        """Docker's key in NetworkSettings.Ports and ExposedPorts: ``80/tcp``."""
        return f"{self.container_port}/{self.protocol}"

    @property
    def shown_ip(self) -> str:
        return self.host_ip or "0.0.0.0"

    def describe(self) -> str:
        """One line of ``skiff port``: ``80/tcp -> 0.0.0.0:8080``."""
        return f"{self.key} -> {self.shown_ip}:{self.host_port}"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> "PortMapping":
        return cls(**data)  # type: ignore[arg-type]


def _port_range(text: str, what: str, spec: str) -> tuple[int, int]:
    low, sep, high = text.partition("-")
    try:
        start = int(low)
        end = int(high) if sep else start
    except ValueError:
        raise InvalidArgument(f"invalid {what}: {text}", hint=f"in -p {spec}") from None
    if not (0 < start <= 65535 and 0 < end <= 65535) or end < start:
        raise InvalidArgument(f"invalid {what}: {text}", hint=f"in -p {spec}; ports are 1-65535")
    return start, end


def _split_ip(spec: str) -> tuple[str, str]:
    """Separate a leading host IP (``1.2.3.4:`` or ``[::1]:``) from the ports."""
    if spec.startswith("["):
        end = spec.find("]")
        if end < 0 or spec[end + 1:end + 2] != ":":
            raise InvalidArgument(f"Invalid ip address: {spec}", hint="write [IPv6]:HOSTPORT:PORT")
        raise InvalidArgument(f"IPv6 host address {spec[1:end]} is not supported by skiff", hint=f"-p {spec}")
    parts = spec.split(":")
    if len(parts) == 3:
        return parts[0], ":".join(parts[1:])
    if len(parts) > 3:
        raise InvalidArgument(f"Invalid port format: {spec}", hint="use [hostip:][hostport:]port[/tcp|/udp]")
    return "", spec


def parse_publish(spec: str) -> list[PortMapping]:
    """``-p [hostip:][hostport:]containerport[/tcp|/udp]`` (ranges allowed) -> mappings."""
    body, _, proto = spec.partition("/")
    proto = proto.lower() or "tcp"
    if proto not in PROTOCOLS:
        raise InvalidArgument(f"invalid proto: {proto}", hint=f"in -p {spec}; use tcp or udp")
    host_ip, ports = _split_ip(body)
    if host_ip:
        try:
            ipaddress.IPv4Address(host_ip)
        except ValueError:
            raise InvalidArgument(f"Invalid ip address: {host_ip}", hint=f"in -p {spec}") from None
    host_text, sep, container_text = ports.rpartition(":")
    if not container_text:
        raise InvalidArgument(f"No port specified: {spec}<empty>", hint="give the container port")
    c_start, c_end = _port_range(container_text, "containerPort", spec)
    if not sep or host_text in ("", "0"):  # no host port, or 0: pick a free one
        return [PortMapping(port, proto, host_ip, 0) for port in range(c_start, c_end + 1)]
    h_start, h_end = _port_range(host_text, "hostPort", spec)
    if h_end - h_start != c_end - c_start:
        raise InvalidArgument(f"Invalid ranges specified for container and host Ports: {spec}",
                              hint="host and container ranges must have the same length")
    return [PortMapping(c_start + i, proto, host_ip, h_start + i) for i in range(c_end - c_start + 1)]


def parse_exposed(exposed: Iterable[str]) -> list[PortMapping]:
    """The image's ExposedPorts keys (``80/tcp``, ``53/udp``, ``8080``), each to a free host port."""
    mappings = []
    for key in exposed:
        port, _, proto = key.partition("/")
        mappings.extend(parse_publish(f"{port}/{proto or 'tcp'}"))
    return mappings


def _socket_type(protocol: str) -> int:
    return socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM


def host_port_free(host_ip: str, port: int, protocol: str) -> bool:
    """Whether a host process could bind this port now (nothing listens on it)."""
    with socket.socket(socket.AF_INET, _socket_type(protocol) | socket.SOCK_CLOEXEC) as probe:
        if protocol == "tcp":
            # As any server would: a port whose last connection lingers in TIME-WAIT is free (a
            # listener still makes bind fail). Not for UDP, where it would share a bound port.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host_ip or "0.0.0.0", port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            if exc.errno == errno.EADDRNOTAVAIL:
                raise InvalidArgument(f"host address {host_ip} in -p is not an address of this host") from None
            raise
    return True


def ephemeral_port(protocol: str, taken: set[tuple[str, int]]) -> int:
    """A port the kernel considers free, which no other container has published either."""
    for _ in range(64):
        with socket.socket(socket.AF_INET, _socket_type(protocol) | socket.SOCK_CLOEXEC) as probe:
            probe.bind(("0.0.0.0", 0))
            port = probe.getsockname()[1]
        if (protocol, port) not in taken:
            return port
    raise PortAllocated("no free host port left to publish on")


def assign_host_ports(requested: list[PortMapping], taken: dict[tuple[str, int], str]) -> list[PortMapping]:
    """Check each fixed host port (skiff's own records, then the kernel), pick the free ones.

    ``taken`` maps (protocol, port) to the container that already published it.
    Raises before anything exists, so a clash leaves nothing to undo.
    """
    assigned: list[PortMapping] = []
    seen: set[tuple[str, int]] = set(taken)
    for mapping in requested:
        if mapping.host_port == 0:
            port = ephemeral_port(mapping.protocol, seen)
            mapping = PortMapping(mapping.container_port, mapping.protocol, mapping.host_ip, port)
        else:
            slot = (mapping.protocol, mapping.host_port)
            if slot in seen or not host_port_free(mapping.host_ip, mapping.host_port, mapping.protocol):
                raise PortAllocated(
                    f"Bind for {mapping.shown_ip}:{mapping.host_port} failed: port is already allocated",
                    hint=f"{mapping.protocol} port {mapping.host_port} is used by "
                         f"{_holder(taken.get(slot))}; choose another host port")
        seen.add((mapping.protocol, mapping.host_port))
        assigned.append(mapping)
    return assigned


def _holder(container_id: str | None) -> str:
    return f"container {container_id[:12]}" if container_id else "another process"
