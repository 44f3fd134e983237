"""Docker 20.10's ``network inspect`` document, built from a network record.

The record keeps what skiff needs (subnet, gateway, bridge name, leases); Docker's document
has every field of its NetworkResource, in its order, with Docker's zero values. Only the
IPAM configuration the user gave shows (a gateway skiff chose for a subnet the user gave does
not), as Docker shows it; a subnet and gateway both chosen by skiff show, as Docker's do.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Mapping

ZERO_TIME = "0001-01-01T00:00:00Z"
PREDEFINED_DRIVERS = {"none": "null", "host": "host", "bridge": "bridge"}


def network_document(record: Mapping[str, Any], mtu: int) -> dict[str, Any]:
    """A bridge network (the default one or a user network) as Docker shows it."""
    prefix = ipaddress.IPv4Network(record["Subnet"]).prefixlen
    options = dict(record.get("Options") or {})
    options["com.docker.network.bridge.name"] = record["Bridge"]  # skiff names the bridge itself
    if record["Name"] == "bridge":  # what dockerd sets on docker0
        options = {"com.docker.network.bridge.default_bridge": "true",
                   "com.docker.network.bridge.enable_icc": "true",
                   "com.docker.network.bridge.enable_ip_masquerade": "true",
                   "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0", **options,
                   "com.docker.network.driver.mtu": str(mtu)}
    containers = {cid: endpoint_resource(c.get("Name", ""), c.get("Veth", ""), c.get("MacAddress", ""),
                                         f"{c['IPAddress']}/{prefix}")
                  for cid, c in record["Containers"].items()}
    return _document(record["Name"], record["Id"], record["Created"], "bridge", bool(record["Internal"]),
                     {"Driver": "default", "Options": {}, "Config": ipam_config(record)},
                     containers, options, dict(record.get("Labels") or {}))


def predefined_document(name: str, network_id: str, created: str,
                        containers: Mapping[str, str]) -> dict[str, Any]:
    """``none`` and ``host``: no addresses, Docker's drivers ``null`` and ``host``.

    ``containers``: id -> name of the running containers on it (the engine knows them).
    """
    members = {cid: endpoint_resource(cname, "", "", "") for cid, cname in containers.items()}
    return _document(name, network_id, created, PREDEFINED_DRIVERS[name], False,
                     {"Driver": "default", "Options": None, "Config": []}, members, {}, {})


def ipam_config(record: Mapping[str, Any]) -> list[dict[str, str]]:
    """IPAM.Config as Docker shows it: what the user gave, or the subnet and gateway chosen."""
    given = record.get("IPAMConfig")
    if isinstance(given, list):  # in Docker's field order (the record's keys are sorted)
        return [{k: c[k] for k in ("Subnet", "IPRange", "Gateway", "AuxiliaryAddresses") if k in c} for c in given]
    return [{"Subnet": record["Subnet"], "Gateway": record["Gateway"]}]  # chosen by skiff, or an older record


def endpoint_resource(name: str, endpoint_id: str, mac: str, ipv4: str) -> dict[str, str]:
    return {"Name": name, "EndpointID": endpoint_id, "MacAddress": mac, "IPv4Address": ipv4, "IPv6Address": ""}


def _document(name: str, network_id: str, created: str, driver: str, internal: bool, ipam: dict[str, Any],
              containers: dict[str, Any], options: dict[str, str], labels: dict[str, str]) -> dict[str, Any]:
    return {
        "Name": name, "Id": network_id, "Created": created or ZERO_TIME, "Scope": "local", "Driver": driver,
        "EnableIPv6": False, "IPAM": ipam, "Internal": internal, "Attachable": False, "Ingress": False,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": containers, "Options": options,
        "Labels": labels,
    }
