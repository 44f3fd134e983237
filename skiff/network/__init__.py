"""Container networking: bridge, IPAM, veth, NAT, published ports, hosts and resolv.conf.

``NetworkManager`` is the entry point for the engine and the CLI; see
skiff/network/manager.py for the state it keeps and the lifetimes it follows.
"""

from __future__ import annotations

from skiff.network.manager import Attachment, NetworkManager, NetworkRequest
from skiff.network.ports import PortMapping, parse_publish

__all__ = ["Attachment", "NetworkManager", "NetworkRequest", "PortMapping", "parse_publish"]
