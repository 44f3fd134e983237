"""Container networking: bridge, IPAM, veth, NAT, published ports, hosts and resolv.conf.

``NetworkManager`` is the entry point for the engine and the CLI; see
skiff/network/manager.py for the state it keeps and the lifetimes it follows. The
names below load on first use, so ``skiff.network.names`` (all a ``--network
none`` run needs) comes without the manager's imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["Attachment", "NetworkManager", "NetworkRequest", "PortMapping", "parse_publish"]
_HOME = {"Attachment": "manager", "NetworkManager": "manager", "NetworkRequest": "manager",
         "PortMapping": "ports", "parse_publish": "ports"}


if TYPE_CHECKING:  # the real types for checkers; at run time __getattr__ imports them on first use
    from skiff.network.manager import Attachment, NetworkManager, NetworkRequest
    from skiff.network.ports import PortMapping, parse_publish


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'skiff.network' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"skiff.network.{_HOME[name]}"), name)
    globals()[name] = value  # kept: the next lookup of the name finds it without calling here
    return value
