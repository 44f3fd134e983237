"""The container's /etc/hosts and /etc/resolv.conf, as Docker writes them."""

from __future__ import annotations

import ipaddress
import re
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


def hosts_file(hostname: str, address: str | None, extra: Iterable[tuple[str, str]] = ()) -> str:
    """/etc/hosts as Docker 20.10 writes it: localhost lines, ``--add-host`` entries in their
    order, then the container's own ``IP<TAB>FQDN SHORT`` (``hostname`` may be a FQDN, from
    ``-h a.b`` or ``--domainname``; the short name only when it differs). Its name and aliases
    are the network resolver's, not this file's."""
    text = _LOCALHOST_LINES
    text += "".join(f"{ip}\t{name}\n" for name, ip in extra)
    if address:
        short = hostname.split(".", 1)[0]
        text += f"{address}\t{hostname}{' ' + short if short != hostname else ''}\n"
    return text


def _read_resolv(path: Path) -> tuple[list[str], list[str], list[str]]:
    try:
        text = path.read_text()
    except (FileNotFoundError, PermissionError):
        return [], [], []
    return _read_resolv_text(text)


def _read_resolv_text(text: str) -> tuple[list[str], list[str], list[str]]:
    servers: list[str] = []
    search: list[str] = []
    options: list[str] = []
    for line in text.splitlines():
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
                host_resolv: Path = HOST_RESOLV_CONF) -> str:
    """/etc/resolv.conf as Docker 20.10's libnetwork writes it for a container with no embedded DNS.

    No ``--dns*`` flag: the host's file as it is (systemd-resolved's upstream file behind its
    stub), less its loopback and IPv6 nameservers, with 8.8.8.8 and 8.8.4.4 if none is left.
    Any flag: ``search``, ``nameserver`` and ``options`` lines in that order, each flag
    replacing the host's value of its field.
    """
    dns, dns_search, dns_options = list(dns), list(dns_search), list(dns_options)
    for server in dns:
        check_nameserver(server)
    if not (dns or dns_search or dns_options):
        return _filtered_host_file(host_resolv)
    _, host_search, host_options = _read_resolv(host_resolv)
    return build_resolv_conf(dns or upstream_nameservers(host_resolv), dns_search or host_search,
                             dns_options or host_options)


def embedded_resolv_conf(resolver: str, dns_search: Iterable[str] = (), dns_options: Iterable[str] = (),
                         host_resolv: Path = HOST_RESOLV_CONF) -> str:
    """/etc/resolv.conf on a user network: the network's resolver only (it forwards the rest to
    the container's ``--dns`` servers or the host's), the search and options of the flags or the
    host, and ``ndots:0`` unless an ndots is set, as Docker's embedded DNS adds it."""
    _, host_search, host_options = _read_resolv(_effective_host_file(host_resolv))
    options = list(dns_options) or host_options
    if not any(option.startswith("ndots:") for option in options):
        options.append("ndots:0")
    return build_resolv_conf([resolver], list(dns_search) or host_search, options)


def build_resolv_conf(servers: Iterable[str], search: Iterable[str], options: Iterable[str]) -> str:
    """Docker's resolvconf.Build: search (unless only "."), nameservers, options."""
    search, options = list(search), list(options)
    lines = []
    if search and " ".join(search).strip(" ") != ".":
        lines.append("search " + " ".join(search))
    lines += [f"nameserver {s}" for s in servers]
    if options and " ".join(options).strip(" "):
        lines.append("options " + " ".join(options))
    return "".join(line + "\n" for line in lines)


# Docker's (libnetwork/resolvconf) patterns for the nameserver lines a container cannot use.
_LOCALHOST_NS = re.compile(r"(?m)^\s*nameserver\s*((127\.([0-9]{1,3}\.){2}[0-9]{1,3})|(::1))\s*\n*")
_IPV6_NS = re.compile(r"(?m)^\s*nameserver\s*(([0-9A-Fa-f]{0,4}:){2,7}([0-9A-Fa-f]{0,4})(%\w+)?)\s*\n*")


def _effective_host_file(host_resolv: Path) -> Path:
    """The host's resolv.conf, or systemd-resolved's upstream one when it names only loopback stubs."""
    servers, _, _ = _read_resolv(host_resolv)
    if servers and all(_is_loopback(s) for s in servers) and RESOLVED_UPSTREAM.exists():
        return RESOLVED_UPSTREAM
    return host_resolv


def _filtered_host_file(host_resolv: Path) -> str:
    """Docker's resolvconf.FilterResolvDNS (IPv6 off): the file less the servers a container cannot reach."""
    try:
        text = _effective_host_file(host_resolv).read_text()
    except (FileNotFoundError, PermissionError):
        text = ""
    text = _IPV6_NS.sub("", _LOCALHOST_NS.sub("", text))
    servers, _, _ = _read_resolv_text(text)
    if not servers:
        text += ("" if not text or text.endswith("\n") else "\n") + "".join(
            f"nameserver {s}\n" for s in DEFAULT_NAMESERVERS)
    return text


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
