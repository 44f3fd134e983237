"""Names skiff gives its kernel objects, and the subnets it may pick, from ``<root>/network/config.json``.

The default root (/var/lib/skiff) uses the documented names: bridge ``skiff0``
and nft table ``skiff``. Any other root (``--root``, ``SKIFF_ROOT``) gets names
of its own derived from its path (``skiff-<hash>``, ``skiff_<hash>``), as a
second Docker daemon with another data root needs its own bridge: otherwise
one root would rewrite the other's table and prune the bridge its containers
use. The subnets themselves are shared among roots through registry.py.
Tests (and hosts where the defaults clash) can set every name and the
candidate subnets in the config file.
"""

from __future__ import annotations

import ipaddress
import os
import re
import zlib
from dataclasses import dataclass, field, fields
from pathlib import Path

from skiff.errors import InvalidArgument, StateError
from skiff.paths import DEFAULT_ROOT
from skiff.store import read_json

DEFAULT_CANDIDATES = tuple(f"172.{n}.0.0/16" for n in range(17, 32)) + ("10.88.0.0/16",)
# Kernel interface names: at most 15 bytes; skiff also keeps them free of dots
# and slashes, which would break sysctl paths.
IFNAME = re.compile(r"^[A-Za-z0-9_-]{1,15}$")


@dataclass(frozen=True)
class NetworkConfig:
    default_bridge: str = "skiff0"
    bridge_prefix: str = "skbr-"
    veth_prefix: str = "veth"
    nft_table: str = "skiff"
    subnet_candidates: tuple[str, ...] = field(default=DEFAULT_CANDIDATES)
    # Docker uses 1500. A 64 KiB MTU on the bridge and veths lets host<->container and
    # container<->container traffic run at loopback speed (measured 0.98-1.02x loopback,
    # against 0.53x at 1500); outbound TCP is MSS-clamped to the route MTU (firewall.py),
    # and PMTU discovery for anything else is answered by this host itself.
    mtu: int = 65535
    # auto: nftables (libnftables, else the nft binary), iptables where neither exists.
    firewall: str = "auto"

    def __post_init__(self) -> None:
        if not IFNAME.match(self.default_bridge) or not IFNAME.match(self.bridge_prefix + "x"):
            raise InvalidArgument(f"invalid bridge name in network config: {self.default_bridge!r}")
        if not IFNAME.match(self.veth_prefix) or len(self.veth_prefix) > 8:
            raise InvalidArgument(f"veth prefix must be 1-8 name characters: {self.veth_prefix!r}")
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", self.nft_table):
            raise InvalidArgument(f"invalid nft table name in network config: {self.nft_table!r}")
        if not 68 <= self.mtu <= 65535:
            raise InvalidArgument(f"mtu in network config must be 68-65535, not {self.mtu}")
        if self.firewall not in ("auto", "nftables", "iptables"):
            raise InvalidArgument(f"firewall in network config must be auto, nftables or iptables, "
                                  f"not {self.firewall!r}")
        for subnet in self.subnet_candidates:
            ipaddress.IPv4Network(subnet)

    @classmethod
    def for_root(cls, root: Path) -> "NetworkConfig":
        """The root's config file, its missing names filled with the root's own defaults."""
        data = {**root_names(root), **_read(root / "network" / "config.json")}
        if "subnet_candidates" in data:
            data["subnet_candidates"] = tuple(data["subnet_candidates"])  # type: ignore[arg-type]
        return cls(**data)  # type: ignore[arg-type]


def root_key(root: Path) -> str:
    """Eight hex digits naming a root on this host (of its real path, so a symlink is the same root)."""
    return f"{zlib.crc32(os.path.realpath(root).encode()):08x}"


def root_names(root: Path) -> dict[str, str]:
    """The default bridge and nft table of a root: the documented ones for /var/lib/skiff only."""
    if os.path.realpath(root) == os.path.realpath(DEFAULT_ROOT):
        return {}
    key = root_key(root)
    return {"default_bridge": f"skiff-{key}", "nft_table": f"skiff_{key}"}


def _read(path: Path) -> dict[str, object]:
    data = read_json(path, default={})
    if not isinstance(data, dict):
        raise StateError(f"{path}: expected a JSON object")
    unknown = set(data) - {f.name for f in fields(NetworkConfig)}
    if unknown:
        raise StateError(f"{path}: unknown keys {sorted(unknown)}")
    return data
