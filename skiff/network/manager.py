"""NetworkManager: networks, attachments of containers to them, and their cleanup.

Networking is prepared before a container starts, CNI-style: ``attach`` makes
the container's network namespace (pinned under ``paths.netns``), wires a veth
from a bridge into it, and returns its path for the runtime to join, plus the
contents of /etc/hosts and /etc/resolv.conf.

State, all under ``paths.networks`` and one lock:
  networks/<name>.json   network record; ``Containers`` holds the address leases
  endpoints/<id>.json    what one container holds: networks, ports, netns, names
Kernel objects follow the records: ``detach`` and ``reconcile`` remove what a
record says exists, so a SIGKILL of skiff leaves nothing the next command
cannot find.

Several roots on one host: each has its own default bridge and nft table
(config.py), and claims its subnets, bridges and published host ports in the
host-wide registry (registry.py) before it makes them, taking the host lock
after its own. So no root rewrites another's rules, prunes another's bridge or
gets another's subnet or host port.

Lifetimes (the documented rule): a user network's bridge lives as long as the
network. The default network is listed and inspected from the start, as Docker's
``bridge`` (with the id and subnet it will have), but its record and bridge are
made by its first container; the bridge then stays, as docker0 does, because
making and deleting it costs ~15 ms and ~50 ms on every ``skiff run``; ``skiff
network prune`` removes it when no container uses it. skiff's nft table holds rules only while some bridge or published
port needs one, and is deleted when empty. IP forwarding, once switched on for
an outbound network, stays on (as Docker leaves it).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import ipaddress
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from skiff import explain
from skiff.errors import (ContainerNotFound, Conflict, InvalidArgument, NetworkError, NetworkInUse,
                          NetworkNotFound, SyscallError)
from skiff.network import firewall, ipam, names, netns
from skiff.network.config import NetworkConfig, root_key
from skiff.network.netlink import Netlink, link_index
from skiff.network.ports import PortMapping, assign_host_ports, parse_exposed, parse_publish
from skiff.network.registry import Registry
from skiff.paths import Paths
from skiff.store import FileLock, read_json, write_json

DEFAULT_NETWORK = "bridge"
PREDEFINED = ("bridge", "host", "none")
PREDEFINED_DRIVERS = {"bridge": "bridge", "host": "host", "none": "null"}  # Docker calls none's driver "null"
NETWORK_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
VETH_ATTEMPTS = 3
# Docker's driver option for a bridge network's MTU (``network create -o``).
MTU_OPTION = "com.docker.network.driver.mtu"


@dataclass
class NetworkRequest:
    """What ``skiff run`` asks of the network (its flags, and the image's exposed ports)."""

    network: str = DEFAULT_NETWORK          # bridge | none | host | container:NAME|ID | a user network
    ip: str | None = None
    publish: list[str] = field(default_factory=list)
    publish_all: bool = False
    exposed_ports: list[str] = field(default_factory=list)
    hostname: str = ""
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_options: list[str] = field(default_factory=list)
    add_hosts: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    mac_address: str | None = None          # --mac-address: on the first network's interface


@dataclass
class Attachment:
    """A container's place on the network: its netns, its files, its addresses and ports."""

    container_id: str
    mode: str
    netns_path: Path | None
    hosts: str
    resolv_conf: str
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)
    ports: list[PortMapping] = field(default_factory=list)
    exposed: list[str] = field(default_factory=list)

    def settings(self) -> dict[str, Any]:
        """Docker's NetworkSettings for ``inspect``."""
        return network_settings(self.netns_path, self.networks, self.ports, self.exposed)


def network_settings(netns_path: Path | str | None, networks: dict[str, dict[str, Any]], ports: list[PortMapping],
                     exposed: list[str]) -> dict[str, Any]:
    """Docker's NetworkSettings (``inspect``, listings): sandbox, ports, the first network's
    address, and each network's entry."""
    published: dict[str, Any] = {key: None for key in exposed}
    for mapping in ports:
        published.setdefault(mapping.key, None)
        published[mapping.key] = (published[mapping.key] or []) + [
            {"HostIp": mapping.shown_ip, "HostPort": str(mapping.host_port)}]
    first = next(iter(networks.values()), {})
    return {
        "SandboxKey": str(netns_path) if netns_path else "",
        "Ports": published,
        "IPAddress": first.get("IPAddress", ""),
        "IPPrefixLen": first.get("IPPrefixLen", 0),
        "Gateway": first.get("Gateway", ""),
        "MacAddress": first.get("MacAddress", ""),
        "Networks": {name: dict(net) for name, net in networks.items()},
    }


class NetworkManager:
    def __init__(self, paths: Paths, config: NetworkConfig | None = None) -> None:
        self.paths = paths
        self._config = config
        self._records = paths.networks / "networks"
        self._endpoints = paths.networks / "endpoints"
        self._lock = paths.networks / "lock"
        self._stamp = paths.netns / ".ruleset"

    @functools.cached_property
    def registry(self) -> Registry:
        """This root's view of the host-wide claims, made when first needed: listing networks
        needs none (resolving the root's real path, twice, was a tenth of a listing)."""
        return Registry(self.paths.root, root_key(self.paths.root))

    @property
    def config(self) -> NetworkConfig:
        """The root's network config, read when first needed: listing networks needs none of it
        (``docker ps`` through the API lists the networks' ids on every call)."""
        if self._config is None:
            self._config = NetworkConfig.for_root(self.paths.root)
        return self._config

    # --- records ------------------------------------------------------------

    def _network_path(self, name: str) -> Path:
        return self._records / f"{name}.json"

    def _load_network(self, name: str) -> dict[str, Any] | None:
        if not NETWORK_NAME.fullmatch(name):  # '$' alone accepts a final newline
            return None
        return read_json(self._network_path(name))

    def _save_network(self, record: dict[str, Any]) -> None:
        write_json(self._network_path(record["Name"]), record)

    def _all_networks(self) -> list[dict[str, Any]]:
        if not self._records.is_dir():
            return []
        return [read_json(p) for p in sorted(self._records.glob("*.json"))]

    def _find_network(self, ref: str) -> dict[str, Any] | None:
        """By name, else by id or unique id prefix."""
        record = self._load_network(ref)
        if record:
            return record
        matches = [n for n in self._all_networks() if ref and n["Id"].startswith(ref)]
        return matches[0] if len(matches) == 1 else None

    def _endpoint_path(self, cid: str) -> Path:
        return self._endpoints / f"{cid}.json"

    def _load_endpoint(self, cid: str) -> dict[str, Any] | None:
        if not re.match(r"^[A-Za-z0-9_.-]+$", cid):
            raise InvalidArgument(f"invalid container id {cid!r}")
        return read_json(self._endpoint_path(cid))

    def _all_endpoints(self) -> list[dict[str, Any]]:
        if not self._endpoints.is_dir():
            return []
        return [read_json(p) for p in sorted(self._endpoints.glob("*.json"))]

    def _taken_subnets(self, others: list[dict[str, Any]], skip: str = "",
                       ) -> list[tuple[str, ipaddress.IPv4Network]]:
        """Host routes (but this root's own bridges'), this root's networks, other roots' claims."""
        own_bridges = {n["Bridge"] for n in self._all_networks()}
        routes = [(dev, net) for dev, net in ipam.host_routes() if dev not in own_bridges]
        networks = [(f"skiff network {n['Name']}", ipaddress.IPv4Network(n["Subnet"]))
                    for n in self._all_networks() if n["Name"] != skip]
        claimed = [(f"network {c['Name']} of skiff root {c['Root']}", ipaddress.IPv4Network(c["Subnet"]))
                   for c in others if "Subnet" in c]
        return routes + networks + claimed

    def _new_record(self, name: str, subnet: ipaddress.IPv4Network, gateway: ipaddress.IPv4Address,
                    internal: bool, labels: dict[str, str], bridge: str | None = None,
                    ipam_config: list[dict[str, str]] | None = None) -> dict[str, Any]:
        net_id = os.urandom(32).hex()
        record = {
            "Name": name, "Id": net_id, "Driver": "bridge", "Scope": "local", "Internal": internal,
            "Created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "Subnet": str(subnet), "Gateway": str(gateway), "Labels": labels,
            "Bridge": bridge or (self.config.bridge_prefix + net_id)[:15],
            "Containers": {},
        }
        if ipam_config is not None:  # what `network inspect` shows as IPAM.Config, as Docker does
            record["IPAMConfig"] = ipam_config
        return record

    def _default_network(self) -> dict[str, Any]:
        record = self._load_network(DEFAULT_NETWORK)
        if record is None:
            with self.registry.lock():
                others = self.registry.others()
                record = self._unmade_default(self._free_default_subnet(others))
                record["Created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                self._check_names(record, others)
                self._save_network(record)
                self._claim(record)
        return record

    def _free_default_subnet(self, others: list[dict[str, Any]]) -> ipaddress.IPv4Network:
        """The subnet the default network gets if made now (call under the registry's lock)."""
        return ipam.choose_subnet(self.config.subnet_candidates, self._taken_subnets(others))

    def _unmade_default(self, subnet: ipaddress.IPv4Network | None) -> dict[str, Any]:
        """The default network's record before its first container makes it (and writes it).

        Docker's ``bridge`` always exists, so ``ls`` and ``inspect`` show this one from the start,
        with the id it keeps when made and the subnet it would get now (``None``: not asked, for
        ``ls``); no record, bridge, nft rule or host-wide claim exists until a container needs them.
        """
        if subnet is None:
            record = {"Name": DEFAULT_NETWORK, "Driver": "bridge", "Scope": "local", "Internal": False,
                      "Labels": {}, "Containers": {}}
        else:
            record = self._new_record(DEFAULT_NETWORK, subnet, ipam.default_gateway(subnet), False, {},
                                      bridge=self.config.default_bridge)
        record["Id"] = self.predefined_id(DEFAULT_NETWORK)  # stable: what ls showed before it was made
        record["Created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(_mtime(self.paths.networks)))
        return record

    def _names_unmade_default(self, ref: str) -> bool:
        """Whether ``ref`` names the default network (by name or id prefix) before it is made."""
        named = ref == DEFAULT_NETWORK or bool(ref) and self.predefined_id(DEFAULT_NETWORK).startswith(ref)
        return named and self._load_network(DEFAULT_NETWORK) is None

    def _claim(self, record: dict[str, Any]) -> None:
        """This root's host-wide claim on the network's subnet and bridge (under the host lock)."""
        self.registry.claim(record["Id"], self._network_path(record["Name"]), Name=record["Name"],
                            Subnet=record["Subnet"], Bridge=record["Bridge"], Table=self.config.nft_table)

    def _check_names(self, record: dict[str, Any], others: list[dict[str, Any]]) -> None:
        """Refuse a bridge or nft table that another root claims (only a config file can cause it)."""
        for other in others:
            if other.get("Bridge") == record["Bridge"] or other.get("Table") == self.config.nft_table:
                raise NetworkError(
                    f"bridge {record['Bridge']} or nft table {self.config.nft_table} belongs to skiff root "
                    f"{other['Root']}", hint=f"give this root other names in {self.paths.networks}/config.json")

    # --- user networks --------------------------------------------------------

    def create_network(self, name: str, subnet: str | None = None, gateway: str | None = None,
                       internal: bool = False, labels: dict[str, str] | None = None,
                       options: dict[str, str] | None = None) -> dict[str, Any]:
        """A user network; ``options`` are Docker's driver options (``-o``), kept in the record:
        ``com.docker.network.driver.mtu`` sets its bridge's and veths' MTU."""
        if not NETWORK_NAME.fullmatch(name):  # '$' alone accepts a final newline
            raise InvalidArgument(f"invalid network name {name!r}",
                                  hint="use letters, digits, '_', '.', '-', starting with a letter or digit")
        options = dict(options or {})
        if MTU_OPTION in options:
            check_mtu_option(options[MTU_OPTION])
        if name in PREDEFINED:
            raise Conflict(f"network with name {name} already exists", hint="it is predefined")
        with FileLock(self._lock):
            if self._load_network(name):
                raise Conflict(f"network with name {name} already exists")
            with self.registry.lock():
                others = self.registry.others()
                taken = self._taken_subnets(others)
                if subnet:
                    chosen = ipam.parse_subnet(subnet)
                    ipam.check_subnet(chosen, taken)
                else:
                    chosen = ipam.choose_subnet(self.config.subnet_candidates, taken)
                gw = ipam.check_gateway(chosen, gateway) if gateway else ipam.default_gateway(chosen)
                # Docker shows the subnet and gateway it chose, but of a subnet given only what was given.
                shown = {"Subnet": str(chosen)}
                if gateway or not subnet:
                    shown["Gateway"] = str(gw)
                record = self._new_record(name, chosen, gw, internal, labels or {}, ipam_config=[shown])
                record["Options"] = options
                self._check_names(record, others)
                self._save_network(record)
                self._claim(record)
            try:
                self._ensure_bridge(record)
                self._refresh_firewall()
            except BaseException:
                self._delete_bridge(record)
                self._network_path(name).unlink()
                self.registry.release(record["Id"])
                raise
        _emit(self.paths, "create", record)
        return self.inspect_network(name)

    def remove_network(self, ref: str) -> str:
        with FileLock(self._lock):
            record = self._find_network(ref)
            if record is None and self._names_unmade_default(ref):  # refused below all the same
                record = self._unmade_default(None)
            if record is None:
                raise NetworkNotFound(f"network {ref} not found")
            if record["Name"] == DEFAULT_NETWORK:
                raise Conflict(f"{DEFAULT_NETWORK} is a pre-defined network and cannot be removed")
            if record["Containers"]:
                users = ", ".join(c.get("Name") or cid[:12] for cid, c in record["Containers"].items())
                raise NetworkInUse(f"error while removing network: network {record['Name']} id {record['Id']} "
                                   f"has active endpoints", hint=f"attached: {users}")
            _resolver().stop(self._resolver_pidfile(record))
            self._delete_bridge(record)
            self._network_path(record["Name"]).unlink()
            self.registry.release(record["Id"])
            self._refresh_firewall()
        _emit(self.paths, "destroy", record)
        return record["Name"]

    def list_networks(self) -> list[dict[str, Any]]:
        predefined = [{"Name": n, "Id": self.predefined_id(n), "Driver": PREDEFINED_DRIVERS[n], "Scope": "local"}
                      for n in ("host", "none")]
        records = self._all_networks()
        if not any(r["Name"] == DEFAULT_NETWORK for r in records):
            predefined.append(self._unmade_default(None))
        return sorted(records + predefined, key=lambda r: r["Name"])

    def predefined_id(self, name: str) -> str:
        """``none`` and ``host`` have no record, nor ``bridge`` until its first container: an id of
        this root's, the same every time (the default network's record keeps it when made)."""
        return _predefined_id(str(self.paths.root), name)

    def inspect_network(self, ref: str, members: dict[str, str] | None = None) -> dict[str, Any]:
        """Docker's ``network inspect`` document; ``members``: id -> name of the running containers
        on ``none`` or ``host`` (the network package keeps no record of those)."""
        from skiff.network.documents import network_document, predefined_document

        record = None if ref in ("none", "host") else self._find_network(ref)
        if record is None and self._names_unmade_default(ref):
            with self.registry.lock():  # not made yet: shown with the subnet it would get now
                record = self._unmade_default(self._free_default_subnet(self.registry.others()))
        if record is not None:
            return network_document(record, self.config.mtu)
        for name in ("none", "host"):
            if ref == name or ref and self.predefined_id(name).startswith(ref):
                created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(_mtime(self.paths.networks)))
                return predefined_document(name, self.predefined_id(name), created, members or {})
        raise NetworkNotFound(f"network {ref} not found")

    def prune_networks(self, include: Callable[[dict[str, Any]], bool] | None = None) -> list[str]:
        """Remove user networks without containers (those ``include`` accepts, when given: Docker's
        filters, which the caller builds), and the default bridge when unused."""
        with FileLock(self._lock):
            default = self._load_network(DEFAULT_NETWORK)
            if default and not default["Containers"]:
                self._delete_bridge(default)
                self.registry.release(default["Id"])  # the record stays; its subnet is claimed again on use
                self._refresh_firewall()
        removed = []
        for record in self._all_networks():
            if record["Name"] != DEFAULT_NETWORK and not record["Containers"] and (include is None or include(record)):
                with contextlib.suppress(NetworkInUse, NetworkNotFound):
                    removed.append(self.remove_network(record["Name"]))
        return removed

    # --- attach / detach ------------------------------------------------------

    def attach(self, container_id: str, request: NetworkRequest | None = None, *, name: str = "") -> Attachment:
        """Prepare the container's network before it starts; undone completely on any error."""
        request = request or NetworkRequest()
        mode = request.network or DEFAULT_NETWORK
        hostname = request.hostname or container_id[:12]
        if mode == "host":
            return self._attach_host(container_id, name, request, hostname)
        if mode.startswith("container:"):
            return self._attach_joined(container_id, name, mode.partition(":")[2])
        mappings = self._requested_ports(request) if mode != "none" else []
        with FileLock(self._lock):
            if self._load_endpoint(container_id):
                raise Conflict(f"container {container_id[:12]} is already attached to a network",
                               hint="detach it first")
            try:
                return self._attach_namespaced(container_id, name, mode, request, hostname, mappings)
            except BaseException:
                self._release(container_id)
                raise

    def _requested_ports(self, request: NetworkRequest) -> list[PortMapping]:
        mappings: list[PortMapping] = []
        for spec in request.publish:
            mappings.extend(parse_publish(spec))
        if request.publish_all:
            published = {m.key for m in mappings}
            mappings.extend(m for m in parse_exposed(request.exposed_ports) if m.key not in published)
        return mappings

    def _attach_namespaced(self, cid: str, name: str, mode: str, request: NetworkRequest, hostname: str,
                           mappings: list[PortMapping]) -> Attachment:
        record = None
        if mode != "none":
            record = self._default_network() if mode == DEFAULT_NETWORK else self._load_network(mode)
            if record is None:
                raise NetworkError(f"network {mode} not found", hint="see 'skiff network ls'")
        if mode == "none" and (mappings or request.ip):
            raise InvalidArgument("--network none cannot be combined with -p or --ip")
        netns_path = self.paths.netns / cid
        endpoint: dict[str, Any] = {
            "Id": cid, "Name": name, "Mode": mode, "Hostname": hostname, "NetnsPath": str(netns_path),
            "Networks": [], "Ports": [], "Exposed": list(request.exposed_ports),
            "Request": {"dns": request.dns, "dns_search": request.dns_search,
                        "dns_options": request.dns_options, "add_hosts": request.add_hosts},
        }
        # Written before any kernel object exists, so reconcile can find and undo a half-done attach.
        if mappings:
            self._publish(endpoint, mappings)
        else:
            write_json(self._endpoint_path(cid), endpoint)
        netns.create(netns_path, _loopback_up)
        if explain.on:
            explain.step(explain.NETWORK, "a new network namespace, kept alive by a bind mount of its nsfs file "
                         "(the container joins it later); its loopback up", "unshare(CLONE_NEWNET) + mount(MS_BIND)",
                         {"source": "/proc/thread-self/ns/net", "target": str(netns_path)})
        if record is not None:
            self._connect_locked(endpoint, record, request.ip, request.aliases, request.mac_address)
        self._refresh_firewall()
        return self._attachment(endpoint)

    def _publish(self, endpoint: dict[str, Any], mappings: list[PortMapping]) -> None:
        """Pick the host ports among those no container of any root publishes; record and claim them."""
        with self.registry.lock():
            taken = {(m["protocol"], m["host_port"]): ep["Id"]
                     for ep in self._all_endpoints() for m in ep.get("Ports", [])}
            taken.update({(proto, port): other["Id"] for other in self.registry.others()
                          for proto, port in other.get("Ports", [])})
            ports = assign_host_ports(mappings, taken)
            endpoint["Ports"] = [p.to_dict() for p in ports]
            path = self._endpoint_path(endpoint["Id"])
            write_json(path, endpoint)  # before the claim, which is stale without it
            self.registry.claim(endpoint["Id"], path, Ports=[[p.protocol, p.host_port] for p in ports])

    def _connect_locked(self, endpoint: dict[str, Any], record: dict[str, Any], ip: str | None,
                        aliases: Iterable[str], mac: str | None = None) -> None:
        cid = endpoint["Id"]
        self._ensure_bridge(record)  # first: claiming it again may move an unused default network
        subnet = ipaddress.IPv4Network(record["Subnet"])
        gateway = ipaddress.IPv4Address(record["Gateway"])
        leased = {c["IPAddress"] for c in record["Containers"].values()}
        address = ipam.allocate(subnet, gateway, leased, ip)
        interface = self._free_interface(endpoint)
        mac = mac or ipam.mac_for(address)
        entry = {"Name": endpoint["Name"], "IPAddress": str(address), "MacAddress": mac,
                 "Veth": self._veth_name(cid), "Interface": interface, "Aliases": list(aliases)}
        record["Containers"][cid] = entry
        dns = endpoint.get("Request", {}).get("dns")
        if dns:  # the network's resolver forwards this container's other queries there
            entry["Dns"] = list(dns)
        with_route = not endpoint["Networks"] and not record["Internal"]
        endpoint["Networks"].append(record["Name"])
        write_json(self._endpoint_path(cid), endpoint)
        self._save_network(record)  # the lease and the veth's name: persistent before the veth exists
        netns_path = Path(endpoint["NetnsPath"])
        fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            self._add_veth(cid, record, entry, fd)
        finally:
            os.close(fd)
        if explain.on:
            explain.step(explain.NETWORK, f"a veth pair, a virtual cable: {entry['Veth']} plugged into the bridge "
                         f"{record['Bridge']}, its other end created inside the container's namespace as "
                         f"{interface}", "netlink RTM_NEWLINK (veth)",
                         {"host_end": entry["Veth"], "master": record["Bridge"], "peer": interface,
                          "peer_netns": str(netns_path), "mac": mac, "mtu": self._mtu(record)})
        netns.run_in(netns_path, lambda: _configure_inside(
            interface, ipaddress.IPv4Interface(f"{address}/{subnet.prefixlen}"), gateway if with_route else None))
        if record["Name"] != DEFAULT_NETWORK:
            _resolver().ensure(self._resolver_pidfile(record), self._network_path(record["Name"]),
                            record["Gateway"], names.upstream_nameservers())

    def _veth_name(self, cid: str) -> str:
        """The host end's name: the id's start and a random suffix, so it is never the name of a
        veth still going away (the kernel destroys a released namespace's veths in the background)."""
        prefix = self.config.veth_prefix
        return f"{prefix}{cid[:11 - len(prefix)]}{os.urandom(2).hex()}"

    def _add_veth(self, cid: str, record: dict[str, Any], entry: dict[str, Any], netns_fd: int) -> None:
        """Create the pair; a name taken anyway (EEXIST) gets another, recorded before each try."""
        bridge = _require_index(record["Bridge"])
        for attempt in range(VETH_ATTEMPTS):
            try:
                with Netlink() as nl:
                    nl.add_veth(entry["Veth"], bridge, entry["Interface"], netns_fd, entry["MacAddress"],
                                self._mtu(record))
                return
            except SyscallError as exc:
                if exc.errno != errno.EEXIST or attempt == VETH_ATTEMPTS - 1:
                    raise
            entry["Veth"] = self._veth_name(cid)
            self._save_network(record)

    def _free_interface(self, endpoint: dict[str, Any]) -> str:
        """The lowest ethN the container does not have (after a disconnect, not simply eth<count>)."""
        used = set()
        for net_name in endpoint["Networks"]:
            other = self._load_network(net_name)
            if other is not None and endpoint["Id"] in other["Containers"]:
                used.add(other["Containers"][endpoint["Id"]].get("Interface"))
        return next(f"eth{n}" for n in range(len(used) + 1) if f"eth{n}" not in used)

    def _attach_host(self, cid: str, name: str, request: NetworkRequest, hostname: str) -> Attachment:
        extra = [names.parse_add_host(h, "127.0.0.1") for h in request.add_hosts]
        try:
            host_hosts = Path("/etc/hosts").read_text()
        except FileNotFoundError:
            host_hosts = names.hosts_file(hostname, None)
        hosts = host_hosts + "".join(f"{ip}\t{n}\n" for n, ip in extra)
        if request.dns or request.dns_search or request.dns_options:
            resolv = names.resolv_conf(request.dns, request.dns_search, request.dns_options)
        else:
            resolv = names.host_resolv_conf()
        return Attachment(cid, "host", None, hosts, resolv, {"host": {}})

    def _attach_joined(self, cid: str, name: str, target_ref: str) -> Attachment:
        target = self._find_endpoint(target_ref)
        if target is None:
            raise ContainerNotFound(f"No such container: {target_ref}",
                                    hint="--network container: needs a running container with its own network")
        with FileLock(self._lock):
            write_json(self._endpoint_path(cid), {"Id": cid, "Name": name, "Mode": f"container:{target['Id']}",
                                                  "Networks": [], "Ports": []})
        attachment = self._attachment(target)
        return Attachment(cid, f"container:{target['Id']}", attachment.netns_path, attachment.hosts,
                          attachment.resolv_conf, {})

    def _find_endpoint(self, ref: str) -> dict[str, Any] | None:
        endpoints = [e for e in self._all_endpoints() if not e["Mode"].startswith("container:")]
        for ep in endpoints:
            if ep["Id"] == ref or ep.get("Name") == ref:
                return ep
        matches = [e for e in endpoints if e["Id"].startswith(ref)]
        return matches[0] if len(matches) == 1 else None

    def _attachment(self, endpoint: dict[str, Any]) -> Attachment:
        """Rebuild the attachment (files, settings) from an endpoint record."""
        joined = self._joined_records(endpoint)
        networks = _network_entries(endpoint["Id"], joined)
        first_ip, gateway_for_host = next(  # the first network on which the container has an address
            ((address, record["Gateway"]) for record in joined
             if (address := record["Containers"].get(endpoint["Id"], {}).get("IPAddress")) is not None), (None, None))
        on_user_network = next((record for record in joined if record["Name"] != DEFAULT_NETWORK), None)
        req = endpoint.get("Request", {})
        extra = [names.parse_add_host(h, gateway_for_host) for h in req.get("add_hosts", [])]
        hosts = names.hosts_file(endpoint["Hostname"], first_ip, extra)
        # On a user network the gateway runs the network's resolver (container names); it
        # forwards everything else to this container's --dns servers, else the host's upstream.
        if on_user_network:
            for server in req.get("dns", []):
                names.check_nameserver(server)
            resolv = names.embedded_resolv_conf(on_user_network["Gateway"], req.get("dns_search", []),
                                                req.get("dns_options", []))
        else:
            resolv = names.resolv_conf(req.get("dns", []), req.get("dns_search", []),
                                       req.get("dns_options", []))
        return Attachment(endpoint["Id"], endpoint["Mode"], _netns_path(endpoint), hosts, resolv, networks,
                          _ports(endpoint), endpoint.get("Exposed", []))

    def _joined_records(self, endpoint: dict[str, Any],
                        records: dict[str, dict[str, Any] | None] | None = None) -> list[dict[str, Any]]:
        """The records of the networks an endpoint is on, in its order (one removed meanwhile is
        left out); ``records``: those already read, by name, and filled with those read here."""
        joined = []
        for name in endpoint["Networks"]:
            if records is None:
                record = self._load_network(name)
            else:
                if name not in records:
                    records[name] = self._load_network(name)
                record = records[name]
            if record is not None:
                joined.append(record)
        return joined

    def attachment(self, container_id: str) -> Attachment:
        """The current attachment of a container (after connect/disconnect too)."""
        return self._attachment(self._require_endpoint(container_id))

    def settings(self, container_id: str, records: dict[str, dict[str, Any] | None] | None = None) -> dict[str, Any]:
        """A container's current NetworkSettings, from its endpoint and network records alone:
        not its /etc files, which ``attachment`` builds (reading the host's resolv.conf).
        ``records``: the network records already read, by name (a listing reads each network
        once, not once for each of its containers: the default bridge's names them all)."""
        endpoint = self._require_endpoint(container_id)
        networks = _network_entries(endpoint["Id"], self._joined_records(endpoint, records))
        return network_settings(endpoint.get("NetnsPath"), networks, _ports(endpoint), endpoint.get("Exposed", []))

    def _require_endpoint(self, container_id: str) -> dict[str, Any]:
        endpoint = self._load_endpoint(container_id)
        if endpoint is None:
            raise ContainerNotFound(f"container {container_id[:12]} has no network attachment")
        return endpoint

    def detach(self, container_id: str) -> None:
        """Release veths, leases, published ports and the netns pin; idempotent."""
        with FileLock(self._lock):
            self._release(container_id)
            self._refresh_firewall()

    def _release(self, cid: str) -> None:
        endpoint = self._load_endpoint(cid) or {"Networks": [], "Mode": ""}
        netns_path = self.paths.netns / cid
        # Deleting a veth waits 25-50 ms for the kernel's RCU grace periods: more than the
        # whole bridge budget of `skiff run`. When no process is left in the namespace,
        # dropping its pin makes the kernel destroy it, and its veths, in the background.
        by_kernel = (not endpoint["Mode"].startswith("container:") and netns.is_pinned(netns_path)
                     and not netns.in_use(netns_path))
        if by_kernel:
            netns.remove(netns_path)
            if explain.on:
                explain.step(explain.TEARDOWN, "unpin the network namespace: no process is left in it, so the kernel "
                             "destroys it and its veth pair", "umount2(MNT_DETACH) + unlink", {"target": str(netns_path)})
        for record in self._all_networks():
            if cid in record["Containers"]:
                self._drop_from_network(record, cid, delete_veth=not by_kernel)
        if not endpoint["Mode"].startswith("container:"):
            netns.remove(netns_path)
        with contextlib.suppress(FileNotFoundError):
            self._endpoint_path(cid).unlink()
        self.registry.release(cid)  # its published ports' claim, if any

    def _drop_from_network(self, record: dict[str, Any], cid: str, delete_veth: bool = True) -> None:
        entry = record["Containers"].pop(cid)
        if delete_veth:
            with Netlink() as nl:
                nl.delete_link(entry["Veth"])
            if explain.on:
                explain.step(explain.TEARDOWN, f"delete the veth pair {entry['Veth']}", "netlink RTM_DELLINK",
                             {"ifname": entry["Veth"]})
        self._save_network(record)
        if not record["Containers"] and record["Name"] != DEFAULT_NETWORK:
            _resolver().stop(self._resolver_pidfile(record))

    def connect(self, container_id: str, network: str, ip: str | None = None,
                aliases: Iterable[str] = ()) -> Attachment:
        """Add another network to a running container (a new ethN in its namespace)."""
        with FileLock(self._lock):
            endpoint = self._load_endpoint(container_id)
            if endpoint is None or not endpoint.get("NetnsPath"):
                raise ContainerNotFound(f"container {container_id[:12]} has no network namespace of its own",
                                        hint="connect works for containers on bridge or user networks")
            record = self._default_network() if network == DEFAULT_NETWORK else self._find_network(network)
            if record is None:
                raise NetworkNotFound(f"network {network} not found")
            if record["Name"] in endpoint["Networks"]:
                raise Conflict(f"container {container_id[:12]} is already attached to network {record['Name']}")
            try:
                self._connect_locked(endpoint, record, ip, aliases)
            except BaseException:
                if container_id in record["Containers"]:
                    self._drop_from_network(record, container_id)
                if record["Name"] in endpoint["Networks"]:
                    endpoint["Networks"].remove(record["Name"])
                    write_json(self._endpoint_path(container_id), endpoint)
                raise
            self._refresh_firewall()
            _emit(self.paths, "connect", record, container=container_id)
            return self._attachment(endpoint)

    def disconnect(self, container_id: str, network: str) -> None:
        with FileLock(self._lock):
            endpoint = self._load_endpoint(container_id)
            record = self._find_network(network)
            if record is None:
                raise NetworkNotFound(f"network {network} not found")
            if endpoint is None or record["Name"] not in endpoint["Networks"]:
                raise Conflict(f"container {container_id[:12]} is not connected to network {record['Name']}")
            self._drop_from_network(record, container_id)
            endpoint["Networks"].remove(record["Name"])
            write_json(self._endpoint_path(container_id), endpoint)
            self._refresh_firewall()
        _emit(self.paths, "disconnect", record, container=container_id)

    def ports(self, container_id: str) -> list[str]:
        """``skiff port``'s lines: ``80/tcp -> 0.0.0.0:8080``."""
        endpoint = self._load_endpoint(container_id) or {"Ports": []}
        return [PortMapping.from_dict(p).describe() for p in endpoint["Ports"]]

    def reconcile(self, live_container_ids: Iterable[str] | Callable[[], Iterable[str]]) -> list[str]:
        """Release what is held for any container id not in ``live_container_ids``; returns those ids.

        For each such id, as ``detach`` does: the netns pin, veths, leases, the
        endpoint record and the published ports' rules and claim, whether or not
        the container's own record ever got its NetworkSettings. The live set
        must hold every container whose network may be in use, those being
        created right now included: given as a callable, it is asked for under
        the lock, after what is held has been listed, so a container that
        attached before then is among them. Cheap when nothing is stale: one
        lock, a read of the endpoint and network records, no kernel request.
        """
        if not self.paths.networks.is_dir() and not self.paths.netns.is_dir():
            return []  # this root never had a network
        with FileLock(self._lock):
            held = self._held_ids()
            live = set(live_container_ids() if callable(live_container_ids) else live_container_ids)
            stale = sorted(held - live)
            for cid in stale:
                self._release(cid)
            # A resolver whose network lost its last container while skiff was killed.
            for record in self._all_networks():
                if (not record["Containers"] and record["Name"] != DEFAULT_NETWORK
                        and self._resolver_pidfile(record).exists()):
                    _resolver().stop(self._resolver_pidfile(record))
            # Always: a skiff killed between a release and its firewall update left rules; when
            # nothing changed this only compares the rules with the stamp of the last update.
            self._refresh_firewall()
        return stale

    def _held_ids(self) -> set[str]:
        """Every container id that holds an endpoint, a lease or a netns pin."""
        held = {ep["Id"] for ep in self._all_endpoints()}
        for record in self._all_networks():
            held |= set(record["Containers"])
        if self.paths.netns.is_dir():
            held |= {p.name for p in self.paths.netns.iterdir() if not p.name.startswith(".")}
        return held

    # --- kernel objects -----------------------------------------------------

    def _resolver_pidfile(self, record: dict[str, Any]) -> Path:
        return self.paths.netns / f".resolver-{record['Id'][:16]}.pid"

    def _mtu(self, record: dict[str, Any]) -> int:
        """The network's ``-o com.docker.network.driver.mtu``, else the root's ``mtu`` (config.json).
        A bridge takes the smallest MTU of its ports, so one made before a change of ``mtu`` follows."""
        value = record.get("Options", {}).get(MTU_OPTION)
        return int(value) if value else self.config.mtu

    def _ensure_bridge(self, record: dict[str, Any]) -> None:
        bridge = record["Bridge"]
        exists = link_index(bridge) is not None
        if exists and self.registry.holds(record["Id"]):
            return
        with self.registry.lock():
            self._reclaim(record, bridge_exists=exists)
        if exists:
            return
        subnet = ipaddress.IPv4Network(record["Subnet"])
        with Netlink() as nl:
            nl.add_bridge(bridge, self._mtu(record))
            try:
                nl.add_address(_require_index(bridge),
                               ipaddress.IPv4Interface(f"{record['Gateway']}/{subnet.prefixlen}"), bridge)
                # Lets DNAT send 127.0.0.1-sourced packets (published ports reached via localhost) out here.
                firewall.write_sysctl(f"net.ipv4.conf.{bridge}.route_localnet", "1")
            except BaseException:
                nl.delete_link(bridge)
                raise
        if explain.on:
            explain.step(explain.NETWORK, f"make the bridge {bridge} (a virtual switch) with the gateway address "
                         f"{record['Gateway']}/{subnet.prefixlen}", "netlink RTM_NEWLINK (bridge) + RTM_NEWADDR",
                         {"ifname": bridge, "address": f"{record['Gateway']}/{subnet.prefixlen}",
                          f"net.ipv4.conf.{bridge}.route_localnet": 1})
        if not record["Internal"]:
            firewall.write_sysctl("net.ipv4.ip_forward", "1")
            if explain.on:
                explain.step(explain.NETWORK, "let the host route packets between interfaces", "write",
                             {"path": "/proc/sys/net/ipv4/ip_forward", "value": 1})

    def _reclaim(self, record: dict[str, Any], bridge_exists: bool) -> None:
        """Claim a network again before its bridge is made (after a prune or a reboot, /run is new).

        Another root may have taken the subnet meanwhile: the default network,
        with no container on it, then moves to a free one; any other stays and
        the error says why.
        """
        others = self.registry.others()
        self._check_names(record, others)
        clash = ipam.overlap(ipaddress.IPv4Network(record["Subnet"]), self._taken_subnets(others, record["Name"]))
        if clash and record["Name"] == DEFAULT_NETWORK and not record["Containers"] and not bridge_exists:
            subnet = ipam.choose_subnet(self.config.subnet_candidates,
                                        self._taken_subnets(others, DEFAULT_NETWORK))
            record.update(Subnet=str(subnet), Gateway=str(ipam.default_gateway(subnet)))
            self._save_network(record)
        elif clash:
            raise NetworkError(f"subnet {record['Subnet']} of network {record['Name']} overlaps {clash}",
                               hint=f"remove network {record['Name']} and create it again")
        self._claim(record)

    def _delete_bridge(self, record: dict[str, Any]) -> None:
        with self.registry.lock():
            if any(o.get("Bridge") == record["Bridge"] for o in self.registry.others()):
                return  # another root's bridge by now (two roots configured to one name)
            with Netlink() as nl:
                nl.delete_link(record["Bridge"])

    def _refresh_firewall(self, force: bool = False) -> None:
        bridges = [firewall.BridgeRules(r["Bridge"], r["Subnet"], r["Internal"]) for r in self._all_networks()
                   if r["Name"] != DEFAULT_NETWORK or link_index(r["Bridge"]) is not None]
        rules: list[firewall.PortRule] = []
        for ep in self._all_endpoints():
            if not ep.get("Ports") or not ep["Networks"]:
                continue
            record = self._load_network(ep["Networks"][0])
            if record is None or ep["Id"] not in record["Containers"]:
                continue
            address = record["Containers"][ep["Id"]]["IPAddress"]
            rules.extend(firewall.PortRule(p["host_ip"], p["host_port"], p["protocol"], address,
                                           p["container_port"]) for p in ep["Ports"])
        firewall.apply(self.config.nft_table, bridges, rules, self._stamp, force, self.config.firewall)


def _emit(paths: Paths, action: str, record: dict[str, Any], **extra: str) -> None:
    """A network event in the root's events log (``skiff events``)."""
    from skiff.events import emit

    emit(paths, "network", action, record["Id"], {"name": record["Name"], "type": "bridge", **extra})


def _mtime(path: Path) -> float:
    """When ``path`` was last changed; 0 (Go's zero time's stand-in, 1970) when it does not exist."""
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _resolver() -> ModuleType:  # the resolver module pulls in subprocess: only user networks need it
    from skiff.network import resolver

    return resolver


def check_mtu_option(value: str) -> int:
    """``-o com.docker.network.driver.mtu=N``: a number the kernel takes for an Ethernet link."""
    try:
        mtu = int(value)
    except ValueError:
        raise InvalidArgument(f"failed to parse {MTU_OPTION} value: {value}", hint="give a number of bytes") from None
    if not 68 <= mtu <= 65535:
        raise InvalidArgument(f"{MTU_OPTION} must be 68-65535, not {mtu}")
    return mtu


def _require_index(name: str) -> int:
    index = link_index(name)
    if index is None:
        raise NetworkError(f"network interface {name} vanished while skiff was using it")
    return index


def _loopback_up() -> None:
    with Netlink() as nl:
        nl.set_up(1, "lo")


def _configure_inside(interface: str, address: ipaddress.IPv4Interface,
                      gateway: ipaddress.IPv4Address | None) -> None:
    """In the container's namespace: address, link up, default route via the gateway."""
    index = _require_index(interface)
    with Netlink() as nl:
        nl.add_address(index, address, interface)
        nl.set_up(index, interface)
        if gateway is not None:
            nl.add_default_route(gateway, index)
    if explain.on:
        explain.step(explain.NETWORK, f"inside the container's namespace: {interface} gets {address}, goes up"
                     + (f", and the default route goes via {gateway}" if gateway else ""),
                     "setns + netlink RTM_NEWADDR, RTM_NEWLINK, RTM_NEWROUTE",
                     {"ifname": interface, "address": str(address), "gateway": str(gateway or "")})


@functools.lru_cache(maxsize=64)
def _predefined_id(root: str, name: str) -> str:
    """Kept: ``docker ps`` through the API names three networks' ids on every listing."""
    import hashlib

    return hashlib.sha256(f"skiff-network:{root}:{name}".encode()).hexdigest()


def _network_entries(endpoint_id: str, joined: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """NetworkSettings.Networks of an endpoint: each joined network's entry, by name."""
    entries = {}
    for record in joined:
        entry = record["Containers"].get(endpoint_id, {})
        entries[record["Name"]] = {
            "NetworkID": record["Id"], "EndpointID": entry.get("Veth", ""),
            "IPAddress": entry.get("IPAddress", ""),
            "IPPrefixLen": _prefix_length(record["Subnet"]),
            "Gateway": record["Gateway"], "MacAddress": entry.get("MacAddress", ""),
            "Aliases": list(entry.get("Aliases", []))}
    return entries


@functools.lru_cache(maxsize=256)
def _prefix_length(subnet: str) -> int:
    """Kept: a listing asks it of the same few subnets once for every container."""
    return ipaddress.IPv4Network(subnet).prefixlen


def _netns_path(endpoint: dict[str, Any]) -> Path | None:
    return Path(endpoint["NetnsPath"]) if endpoint.get("NetnsPath") else None


def _ports(endpoint: dict[str, Any]) -> list[PortMapping]:
    return [PortMapping.from_dict(p) for p in endpoint.get("Ports", [])]
