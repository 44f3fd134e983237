"""The iptables backend of skiff's firewall, for hosts without nftables (no libnftables, no ``nft``).

The same rules as skiff's nft table (firewall.py), in chains of skiff's own,
named after the configured table (``skiff`` -> ``SKIFF-PORTS``, ``SKIFF-POST``,
``SKIFF-FWD``), each reached by one jump from a built-in chain. Every change is
one ``iptables-restore --noflush`` per table, so each table changes atomically
and no other rule or chain is touched: declaring ``:CHAIN`` flushes only that
chain. When no rule is needed, skiff's jumps and chains are deleted.

Works with either flavour of the binaries (iptables-nft or iptables-legacy):
whichever ``iptables-restore`` the host's alternatives select.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import TYPE_CHECKING

from skiff.errors import NetworkError

if TYPE_CHECKING:
    from skiff.network.firewall import BridgeRules, PortRule

WAIT_SECONDS = "10"  # for the xtables lock that other iptables users may hold


def chain_prefix(table: str) -> str:
    # iptables chain names hold at most 28 characters; the suffixes add 6.
    return table.upper()[:20]


def jumps(prefix: str) -> dict[str, list[tuple[str, str]]]:
    """Per table: (built-in chain, match) -> skiff's chain jumped to, as iptables-save prints them."""
    local = "-m addrtype --dst-type LOCAL "
    return {
        "nat": [("PREROUTING", f"{local}-j {prefix}-PORTS"), ("OUTPUT", f"{local}-j {prefix}-PORTS"),
                ("POSTROUTING", f"-j {prefix}-POST")],
        "filter": [("FORWARD", f"-j {prefix}-FWD")],
    }


def chains(prefix: str) -> dict[str, list[str]]:
    return {"nat": [f"{prefix}-PORTS", f"{prefix}-POST"], "filter": [f"{prefix}-FWD"]}


def render_rules(prefix: str, bridges: list[BridgeRules], ports: list[PortRule]) -> dict[str, list[str]]:
    """The rules of skiff's chains, per table (``-A CHAIN ...`` lines)."""
    post, fwd, dnat = f"{prefix}-POST", f"{prefix}-FWD", f"{prefix}-PORTS"
    nat: list[str] = []
    filter_: list[str] = []
    for b in bridges:
        nat.append(f"-A {post} -s 127.0.0.0/8 -o {b.bridge} -j MASQUERADE")
        nat.append(f"-A {post} -s {b.subnet} -o {b.bridge} -m conntrack --ctstate DNAT -j MASQUERADE")
        if b.internal:
            filter_.append(f"-A {fwd} -i {b.bridge} ! -o {b.bridge} -j DROP")
            filter_.append(f"-A {fwd} -o {b.bridge} ! -i {b.bridge} -j DROP")
        else:
            nat.append(f"-A {post} -s {b.subnet} ! -o {b.bridge} -j MASQUERADE")
            filter_.append(f"-A {fwd} -i {b.bridge} ! -o {b.bridge} -p tcp -m tcp --tcp-flags SYN,RST SYN "
                           "-j TCPMSS --clamp-mss-to-pmtu")
    for p in sorted(ports, key=lambda r: (r.protocol, r.host_port, r.host_ip)):
        match = f"-d {p.host_ip}/32 " if p.host_ip and p.host_ip != "0.0.0.0" else ""
        nat.append(f"-A {dnat} {match}-p {p.protocol} -m {p.protocol} --dport {p.host_port} "
                   f"-j DNAT --to-destination {p.container_ip}:{p.container_port}")
    return {"nat": nat, "filter": filter_}


def apply(table: str, bridges: list[BridgeRules], ports: list[PortRule]) -> None:
    """Bring skiff's chains to what the records say; remove them (and their jumps) when unused."""
    prefix = chain_prefix(table)
    wanted = bool(bridges or ports)
    rules = render_rules(prefix, bridges, ports)
    for name in ("nat", "filter"):
        current = _save(name)
        existing_chains = {line[1:].split()[0] for line in current if line.startswith(":")}
        present = {line for line in current if line.startswith("-A ")}
        own = [c for c in chains(prefix)[name]]
        if wanted:
            lines = [f":{c} - [0:0]" for c in own] + rules[name]
            lines += [f"-I {builtin} 1 {match}" for builtin, match in jumps(prefix)[name]
                      if f"-A {builtin} {match}" not in present]
        else:
            if not any(c in existing_chains for c in own):
                continue
            lines = [f"-D {builtin} {match}" for builtin, match in jumps(prefix)[name]
                     if f"-A {builtin} {match}" in present]
            lines += [f":{c} - [0:0]" for c in own if c in existing_chains]
            lines += [f"-X {c}" for c in own if c in existing_chains]
        _restore(name, lines)


def _binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        raise NetworkError(f"{name} not found: skiff needs nftables or iptables for NAT and published ports",
                           hint="apt-get install nftables (or iptables)")
    return found


def available() -> bool:
    return shutil.which("iptables-restore", path="/usr/sbin:/sbin:/usr/bin:/bin") is not None


def _save(table: str) -> list[str]:
    proc = subprocess.run([_binary("iptables-save"), "-t", table], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise NetworkError(f"iptables-save -t {table} failed: {proc.stderr.strip()}")
    return proc.stdout.splitlines()


def _restore(table: str, lines: list[str]) -> None:
    script = "\n".join([f"*{table}", *lines, "COMMIT", ""])
    proc = subprocess.run([_binary("iptables-restore"), "--noflush", "--wait", WAIT_SECONDS],
                          input=script, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise NetworkError(f"iptables could not apply skiff's {table} rules: {proc.stderr.strip()}")
