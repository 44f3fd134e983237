"""The container's /etc/hosts and /etc/resolv.conf, as Docker writes them."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from pathlib import Path

from skiff.errors import InvalidArgument

HOST_RESOLV_CONF = Path("/etc/resolv.conf")
# Where systemd-resolved keeps the real upstream servers behind its 127.0.0.53 stub.
RESOLVED_UPSTREAM = Path("/run/systemd/resolve/resolv.conf")
DEFAULT_NAMESERVERS = ("8.8.8.8", "8.8.4.4")  # Docker's fallback when the host has only loopback ones

_LOCALHOST_LINES = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)


def parse_add_host(spec: str, host_gateway: str | None) -> tuple[str, str]:
    """``--add-host name:ip`` (or ``name=ip``; ``host-gateway`` for the gateway) -> (name, ip)."""
    sep = "=" if "=" in spec else ":"
    name, _, address = spec.partition(sep)
    if not name or not address:
        raise InvalidArgument(f"invalid argument \"{spec}\" for \"--add-host\" flag: bad format for add-host",
                              hint="use NAME:IP or NAME:host-gateway")
    if address == "host-gateway":
        if not host_gateway:
            raise InvalidArgument(f"--add-host {spec}: this network has no gateway for host-gateway")
        address = host_gateway
    try:
        ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        raise InvalidArgument(f"invalid IP address in add-host: \"{address}\"", hint=f"--add-host {spec}") from None
    return name, address.strip("[]")


def hosts_file(hostname: str, address: str | None, extra: Iterable[tuple[str, str]] = (),
               aliases: Iterable[str] = ()) -> str:
    """/etc/hosts: localhost lines, ``--add-host`` entries, then the container's own address."""
    text = _LOCALHOST_LINES
    text += "".join(f"{ip}\t{name}\n" for name, ip in extra)
    if address:
        names = " ".join(dict.fromkeys([hostname, *aliases]))
        text += f"{address}\t{names}\n"
    return text


def _read_resolv(path: Path) -> tuple[list[str], list[str], list[str]]:
    servers: list[str] = []
    search: list[str] = []
    options: list[str] = []
    try:
        lines = path.read_text().splitlines()
    except (FileNotFoundError, PermissionError):
        return servers, search, options
    for line in lines:
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2:
            continue
        if fields[0] == "nameserver":
            servers.append(fields[1])
        elif fields[0] in ("search", "domain"):
            search = fields[1:]
        elif fields[0] == "options":
            options.extend(fields[1:])
    return servers, search, options


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return True  # unreadable: do not hand it to a container


def upstream_nameservers(host_resolv: Path = HOST_RESOLV_CONF) -> list[str]:
    """The host's nameservers a container can reach: loopback stubs replaced by the real upstream."""
    servers, _, _ = _read_resolv(host_resolv)
    if servers and all(_is_loopback(s) for s in servers):
        servers, _, _ = _read_resolv(RESOLVED_UPSTREAM)
    usable = [s for s in servers if not _is_loopback(s)]
    return usable or list(DEFAULT_NAMESERVERS)


def resolv_conf(dns: Iterable[str] = (), dns_search: Iterable[str] = (), dns_options: Iterable[str] = (),
                nameservers: Iterable[str] | None = None, host_resolv: Path = HOST_RESOLV_CONF) -> str:
    """/etc/resolv.conf: ``--dns*`` flags win over the host's values, field by field."""
    for server in dns:
        check_nameserver(server)
    _, host_search, host_options = _read_resolv(host_resolv)
    servers = list(dns) or list(nameservers if nameservers is not None else upstream_nameservers(host_resolv))
    search = list(dns_search) or host_search
    options = list(dns_options) or host_options
    lines = [f"nameserver {s}" for s in servers]
    if search and search != ["."]:
        lines.append("search " + " ".join(search))
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


def check_nameserver(server: str) -> None:
    try:
        ipaddress.ip_address(server)
    except ValueError:
        raise InvalidArgument(f"{server} is not an ip address", hint="--dns takes an IP address") from None


def host_resolv_conf(host_resolv: Path = HOST_RESOLV_CONF) -> str:
    """With the host's network a container uses the host's resolver as is, loopback stubs included."""
    try:
        return host_resolv.read_text()
    except FileNotFoundError:
        return "".join(f"nameserver {s}\n" for s in DEFAULT_NAMESERVERS)
