"""Fixtures for network tests: private names for every kernel object, and a check that none is left.

Each test gets its own bridge name, veth prefix, nft table and a /24 in
10.231.0.0/16 that no host route uses, all carrying a random tag, so nothing
can collide with a real skiff or another test, and the leak check can look for
exactly that tag.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import secrets
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from skiff.network import NetworkManager
from skiff.network.config import NetworkConfig
from skiff.network.ipam import host_routes
from skiff.paths import Paths

TAG_PREFIX = "skt"


def free_subnet(prefix: str = "10.231", used: set[str] | None = None) -> str:
    routes = [net for _, net in host_routes()]
    for _ in range(100):
        candidate = ipaddress.IPv4Network(f"{prefix}.{secrets.randbelow(256)}.0/24")
        if not any(candidate.overlaps(r) for r in routes) and str(candidate) not in (used or set()):
            return str(candidate)
    raise RuntimeError("no free test subnet")


def links_with(tag: str) -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if tag in line]


def links_gone(tag: str, timeout: float = 3) -> list[str]:
    """The links named with ``tag`` still there after ``timeout``: a veth whose namespace was
    released goes with it, but the kernel destroys namespaces in the background."""
    deadline = time.monotonic() + timeout
    while (left := links_with(tag)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left


def tables_named(name: str) -> list[str]:
    out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line.split()[-1:] == [name]]


def resolvers_for(root: Path) -> list[str]:
    """Resolver processes serving a network under this skiff root."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if any(b"skiff.network.resolver" in a for a in args) and any(str(root).encode() in a for a in args):
            found.append(cmdline.parent.name)
    return found


@pytest.fixture
def net_config(tmp_path: Path) -> NetworkConfig:
    tag = secrets.token_hex(3)
    return NetworkConfig(default_bridge=f"{TAG_PREFIX}{tag}0", bridge_prefix=f"{TAG_PREFIX}{tag}",
                         veth_prefix=f"sv{tag}", nft_table=f"skiff_test_{tag}",
                         subnet_candidates=(free_subnet(),))


@pytest.fixture
def net_paths(tmp_path: Path, net_config: NetworkConfig) -> Paths:
    paths = Paths(tmp_path / "root", tmp_path / "run")
    config = {"default_bridge": net_config.default_bridge, "bridge_prefix": net_config.bridge_prefix,
              "veth_prefix": net_config.veth_prefix, "nft_table": net_config.nft_table,
              "subnet_candidates": list(net_config.subnet_candidates)}
    paths.networks.mkdir(parents=True)
    (paths.networks / "config.json").write_text(json.dumps(config))
    return paths


@pytest.fixture
def nm(net_paths: Paths, net_config: NetworkConfig) -> Iterator[NetworkManager]:
    """A NetworkManager on private names; afterwards nothing of it may remain in the kernel."""
    manager = NetworkManager(net_paths)
    yield manager
    manager.reconcile(set())
    manager.prune_networks()
    tag = net_config.bridge_prefix
    leaks = {
        "links": links_with(tag) + links_gone(net_config.veth_prefix),
        "nft tables": tables_named(net_config.nft_table),
        "netns pins": [p.name for p in net_paths.netns.glob("*") if not p.name.startswith(".")]
        if net_paths.netns.is_dir() else [],
        "resolvers": resolvers_for(net_paths.root),
        "leases": [cid for n in manager._all_networks() for cid in n["Containers"]],
        "host-wide claims": [n["Id"] for n in manager._all_networks() if manager.registry.holds(n["Id"])],
    }
    # Clean what leaked before failing, so one failure does not poison the host.
    for link in leaks["links"]:
        subprocess.run(["ip", "link", "del", link], capture_output=True)
    if leaks["nft tables"]:
        subprocess.run(["nft", "delete", "table", "ip", net_config.nft_table], capture_output=True)
    assert not any(leaks.values()), f"left behind: {leaks}"


def ns(netns_path: Path | str, *cmd: str, timeout: float = 10, check: bool = False,
       ) -> subprocess.CompletedProcess[str]:
    """Run a command in a container's network namespace (only the network namespace)."""
    return subprocess.run(["nsenter", f"--net={netns_path}", *cmd], capture_output=True, text=True,
                          timeout=timeout, check=check)


def route_dev(address: str) -> str:
    """The interface the host would send ``address`` out of: checked before any traffic is sent."""
    out = subprocess.run(["ip", "route", "get", address], capture_output=True, text=True, check=True).stdout
    fields = out.split()
    return fields[fields.index("dev") + 1]


@contextlib.contextmanager
def upstream_host(tag: str) -> Iterator[tuple[str, str, str]]:
    """A fake upstream host in its own namespace behind the host, on a /30 routed only to it.

    Yields (its netns path, the host's address on that link, the upstream's address).
    """
    name = f"{tag}up"
    base = free_subnet("10.232").rsplit(".", 1)[0]
    host_side, far_side = f"{base}.1", f"{base}.2"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "link", "add", f"{tag}h", "type", "veth", "peer", "name", "up0", "netns", name],
                       check=True)
        subprocess.run(["ip", "addr", "add", f"{host_side}/30", "dev", f"{tag}h"], check=True)
        subprocess.run(["ip", "link", "set", f"{tag}h", "up"], check=True)
        for cmd in (["ip", "addr", "add", f"{far_side}/30", "dev", "up0"], ["ip", "link", "set", "up0", "up"],
                    ["ip", "link", "set", "lo", "up"]):
            subprocess.run(["ip", "netns", "exec", name, *cmd], check=True)
        assert route_dev(far_side) == f"{tag}h"
        yield f"/run/netns/{name}", host_side, far_side
    finally:
        subprocess.run(["ip", "link", "del", f"{tag}h"], capture_output=True)
        subprocess.run(["ip", "netns", "del", name], check=True)


def peer_seen_by_upstream(upstream_ns: str, far_side: str, send: Callable[[str], object]) -> str | None:
    """The source address the fake upstream host sees when ``send(command)`` runs ``command``
    (a shell line that connects to it) from a container; None when nothing arrives."""
    server = subprocess.Popen(["nsenter", f"--net={upstream_ns}", sys.executable, "-c", textwrap.dedent(f"""
        import socket
        s = socket.socket(); s.bind(({far_side!r}, 9100)); s.listen(1); s.settimeout(5)
        print("ready", flush=True)
        try:
            c, peer = s.accept(); print(peer[0], flush=True)
        except OSError:
            print("none", flush=True)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline() == "ready\n"
        send(f"echo x | busybox nc -w 2 {far_side} 9100")
        seen = server.stdout.readline().strip()
    finally:
        server.kill()
        server.wait()
    return None if seen in ("", "none") else seen
