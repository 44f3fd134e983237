"""Networking: the firewall skiff writes its NAT and port rules with, and the sysctls it needs.

The backend is skiff.network.firewall's choice (nftables through libnftables, else the
``nft`` binary, else iptables; or the root's ``"firewall"`` setting); "usable" means its
rules can be read here (``list tables``, ``iptables-save``), which changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from skiff.check import FAIL, OK, WARN, Result

if TYPE_CHECKING:
    from collections.abc import Iterator

    from skiff.check.host import Host

LIBNFTABLES = "libnftables.so.1"
NO_FIREWALL_FIX = "apt-get install nftables libnftables1 (or iptables)"


def firewall(host: Host) -> Iterator[Result]:
    has_library = host.library(LIBNFTABLES)
    chosen = host.firewall_backend()
    if chosen == "nftables" and not (has_library or host.command("nft")):
        if host.firewall_preference() == "auto":
            yield Result("firewall", FAIL, "neither nftables nor iptables: no bridge network, NAT or published port",
                         NO_FIREWALL_FIX)
        else:
            yield Result("firewall", FAIL, "the root's network config asks for nftables, which is not installed",
                         "apt-get install nftables libnftables1")
    elif chosen == "iptables" and not host.command("iptables-restore"):
        yield Result("firewall", FAIL, "the root's network config asks for iptables, which is not installed",
                     "apt-get install iptables")
    elif host.euid != 0:   # (libnftables would print its "you must be root" on our stderr)
        yield Result("firewall", WARN, f"{chosen}: its rules cannot be read without root", "run skiff check as root")
    else:
        error = host.firewall_error(chosen)
        if error is None:
            yield Result("firewall", OK, f"{chosen}: rules readable")
        else:
            yield Result("firewall", FAIL, f"{chosen} is installed but refuses: {error.splitlines()[0]}",
                         "modprobe nf_tables (a kernel with CONFIG_NF_TABLES and CONFIG_NFT_NAT)"
                         if chosen == "nftables" else "modprobe ip_tables iptable_nat")
    if has_library:
        yield Result("libnftables", OK, "rules applied in-process (about 1 ms)")
    else:
        yield Result("libnftables", WARN, "missing: skiff runs nft (about 10 ms a change) or iptables instead",
                     "apt-get install libnftables1")


def sysctls(host: Host) -> Iterator[Result]:
    yield _ip_forward(host)
    yield _route_localnet(host)


def _ip_forward(host: Host) -> Result:
    key = "net.ipv4.ip_forward"
    value = host.sysctl(key)
    fix = f"sysctl -w {key}=1 (to keep it: echo {key}=1 > /etc/sysctl.d/90-skiff.conf)"
    if value is None:
        return Result(key, FAIL, "the kernel has no IPv4 forwarding knob", "a kernel with CONFIG_INET")
    if value == "1":
        return Result(key, OK, "on")
    if host.writable(host.path("/proc/sys/net/ipv4/ip_forward")) or host.euid != 0:
        return Result(key, WARN, "off: skiff turns it on with its first bridge, as Docker does", fix)
    return Result(key, FAIL, "off, and /proc/sys is read-only here: bridge containers reach nothing outside",
                  fix + ", on the host")


def _route_localnet(host: Host) -> Result:
    """skiff sets route_localnet on each bridge it makes: published ports answer on 127.0.0.1 (DNAT)."""
    key = "route_localnet"
    if host.sysctl("net.ipv4.conf.default.route_localnet") is None:
        return Result(key, FAIL, "the kernel has no route_localnet: ports published on 127.0.0.1 cannot work",
                      "Linux 3.6 or later")
    if host.writable(host.path("/proc/sys/net/ipv4/conf/default/route_localnet")):
        return Result(key, OK, "skiff sets it on its bridges: ports published on 127.0.0.1 answer")
    if host.euid != 0:
        return Result(key, WARN, "only root may set it on skiff's bridges", "run skiff check as root")
    return Result(key, FAIL, "/proc/sys is read-only here: skiff cannot set it on its bridges",
                  "run skiff where /proc/sys is writable (on the host, as root)")
