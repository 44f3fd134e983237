"""The engine's side of networking: from run flags to an attached network namespace."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skiff.engine import containers as records
from skiff.engine.containers import Container
from skiff.engine.options import RunOptions
from skiff.errors import Conflict, ContainerNotRunning, InvalidArgument, NetworkError
from skiff.paths import Paths

if TYPE_CHECKING:
    from skiff.image.store import Image
    from skiff.network.manager import Attachment, NetworkRequest


def request_from(opts: RunOptions, image: Image, hostname: str, name: str = "") -> NetworkRequest:
    from skiff.engine.runflags import exposed_ports, mac_address
    from skiff.network import NetworkRequest

    # The image's ports, -p's and --expose's: -P publishes them all, as Docker's.
    exposed = exposed_ports(opts.expose, opts.publish, image.config.get("ExposedPorts"))
    return NetworkRequest(
        network=opts.network, ip=opts.ip, publish=list(opts.publish), publish_all=opts.publish_all,
        # The FQDN, as Docker's /etc/hosts names the container: "box.example.com box".
        exposed_ports=sorted(exposed), hostname=f"{hostname}.{opts.domainname}" if opts.domainname else hostname,
        dns=list(opts.dns), dns_search=list(opts.dns_search), dns_options=list(opts.dns_options),
        add_hosts=list(opts.add_hosts), aliases=[*([name] if name else []), *opts.network_aliases],
        mac_address=mac_address(opts.mac_address, opts.network))


def check_request(paths: Paths, opts: RunOptions, image: Image) -> None:
    """Refuse a bad -p, --ip or network name before anything is created."""
    from skiff.network import parse_publish

    if opts.network.startswith("container:"):
        if opts.publish or opts.publish_all:
            raise InvalidArgument("conflicting options: port publishing and the container type network mode")
        _shared_netns(paths, opts.network)
        return
    if opts.network in ("none", "host"):
        for spec in opts.publish:  # still checked; they are discarded, as Docker does
            parse_publish(spec)
        return
    for spec in opts.publish:
        parse_publish(spec)
    if opts.network != "bridge":
        from skiff.network import NetworkManager

        NetworkManager(paths).inspect_network(opts.network)  # NetworkNotFound for an unknown name


def attach(paths: Paths, container: Container, opts: RunOptions, image: Image,
           undo: contextlib.ExitStack) -> Attachment | SharedNetwork:
    """Wire the container's network namespace; the undo detaches it if the run fails."""
    from skiff.network import NetworkManager

    if opts.network.startswith("container:"):
        return SharedNetwork(_shared_netns(paths, opts.network))
    manager = NetworkManager(paths)
    request = request_from(opts, image, container.data["Config"]["Hostname"], container.name)
    if opts.links:  # after --add-host's lines, as Docker writes them
        from skiff.engine import links

        request.add_hosts += links.hosts(links.resolve(paths, opts.links, opts.network, container.name))
    wanted = container.data.get(WANTED)
    if wanted is None:
        undo.callback(manager.detach, container.id)
        return manager.attach(container.id, request, name=container.name)
    # `network connect`/`disconnect` changed its networks: the first is its namespace's first
    # interface (and default route), the others are connected next, as Docker's start does.
    entries = list(wanted.items())
    if entries:
        first, settings = entries[0]
        request.network, request.ip = first, settings.get("IPv4Address")
        request.aliases = [*([container.name] if container.name else []), *settings.get("Aliases", [])]
    else:  # disconnected from all: Docker starts it with its loopback only
        request.network, request.ip, request.publish, request.publish_all = "none", None, [], False
    if request.network != opts.network:
        request.mac_address = None  # --mac-address belongs to the network it was given for
    undo.callback(manager.detach, container.id)
    attachment = manager.attach(container.id, request, name=container.name)
    for name, settings in entries[1:]:
        attachment = manager.connect(container.id, name, ip=settings.get("IPv4Address"),
                                     aliases=settings.get("Aliases", []))
    return attachment


def detach(paths: Paths, container: Container) -> None:
    if container.data["HostConfig"].get("NetworkMode", "").startswith("container:"):
        return
    from skiff.network import NetworkManager

    NetworkManager(paths).detach(container.id)


# The container record's key for the networks it was connected to while it was not running, in
# order: name -> {"Aliases", "IPv4Address"}. Absent: the one network its flags asked for.
WANTED = "SkiffNetworks"

# Docker 20.10's messages (runconfig/errors.go) for networks a container cannot join or leave.
CONFLICT_HOST = "container cannot be disconnected from host network or connected to host network"
CONFLICT_SHARED = ("container sharing network namespace with another container or host cannot be "
                   "connected to any other network")
CONFLICT_NONE = "container cannot be connected to multiple networks with one of the networks in private (none) mode"


def connect(paths: Paths, container_id: str, network: str, ip: str | None = None,
            aliases: list[str] | tuple[str, ...] = ()) -> None:
    """``network connect``: a running container gets the interface now; a created or stopped one
    only in its record (Docker's behaviour), and every network in the record at its next start."""
    from skiff.network import NetworkManager

    manager = NetworkManager(paths)
    container = _record_of(paths, container_id)
    if container is None:  # no engine record: the network's own records may still know the id
        manager.connect(container_id, network, ip=ip, aliases=aliases)
        return
    name = str(manager.inspect_network(network)["Name"])  # NetworkNotFound first, as Docker
    _check_connectable(container, name)
    wanted = _wanted(container)
    if container.held:
        manager.connect(container.id, name, ip=ip, aliases=aliases)
    # Not running and connected already: Docker 20.10 replaces the settings, no error.
    wanted[name] = {"Aliases": list(aliases), "IPv4Address": ip}
    _record(container, wanted)


def disconnect(paths: Paths, container_id: str, network: str) -> None:
    """``network disconnect``: from a running container's namespace now; from a created or stopped
    container's record (what its next start attaches)."""
    from skiff.network import NetworkManager

    manager = NetworkManager(paths)
    container = _record_of(paths, container_id)
    if container is None:
        manager.disconnect(container_id, network)
        return
    name = str(manager.inspect_network(network)["Name"])
    mode = container.data["HostConfig"].get("NetworkMode") or "bridge"
    if mode == "host" and name == "host":
        raise Conflict(CONFLICT_HOST)
    wanted = _wanted(container)
    if container.held:
        manager.disconnect(container.id, name)
    elif name not in wanted:
        raise Conflict(f"container {container.id} is not connected to the network {name}")
    wanted.pop(name, None)
    _record(container, wanted)


def _record_of(paths: Paths, container_id: str) -> Container | None:
    from skiff.errors import ContainerNotFound

    try:
        return records.find_container(paths, container_id)
    except ContainerNotFound:
        return None


def _check_connectable(container: Container, network: str) -> None:
    mode = container.data["HostConfig"].get("NetworkMode") or "bridge"
    if mode == "host" or network == "host":
        raise Conflict(CONFLICT_HOST)
    if mode.startswith("container:"):
        raise Conflict(CONFLICT_SHARED)
    if mode == "none" or network == "none":
        raise Conflict(CONFLICT_NONE)


def _wanted(container: Container) -> dict[str, dict[str, Any]]:
    """The networks its next start attaches, in order."""
    recorded = container.data.get(WANTED)
    if recorded is not None:
        return dict(recorded)
    mode = container.data["HostConfig"].get("NetworkMode") or "bridge"
    options = container.data.get("SkiffOptions") or {}
    return {mode: {"Aliases": list(options.get("network_aliases") or []), "IPv4Address": options.get("ip")}}


def _record(container: Container, wanted: dict[str, dict[str, Any]]) -> None:
    """Keep the networks for the next start; a container that holds none shows them in inspect."""
    container.reload()
    container.data[WANTED] = wanted
    if not container.held:  # as Docker shows them: a user network's aliases end with the short id
        container.data.setdefault("NetworkSettings", {})["Networks"] = {
            name: {"Aliases": [*settings["Aliases"], container.id[:12]] if name not in ("bridge",) else None,
                   "IPAMConfig": {"IPv4Address": settings["IPv4Address"]} if settings["IPv4Address"] else {}}
            for name, settings in wanted.items()}
    container.save()


class SharedNetwork:
    """``--network container:X``: X's namespace, joined by path; X owns it."""

    def __init__(self, netns_path: Path) -> None:
        self.netns_path = netns_path
        self.hosts = ""  # none of its own: the container makes its files from its flags
        self.resolv_conf = ""

    def settings(self) -> dict[str, Any]:
        return {"SandboxKey": str(self.netns_path), "Networks": {}}


def _shared_netns(paths: Paths, mode: str) -> Path:
    other = records.find_container(paths, mode.partition(":")[2])
    if not other.running:
        raise ContainerNotRunning(f"cannot join network of a non running container: {other.id}")
    sandbox = other.data.get("NetworkSettings", {}).get("SandboxKey")
    if sandbox:
        return Path(sandbox)
    if other.data["HostConfig"].get("NetworkMode") == "host":
        raise NetworkError("cannot join the network of a container that uses the host's network")
    return Path(f"/proc/{other.state['Pid']}/ns/net")


def predefined_members(paths: Paths, ref: str) -> dict[str, str] | None:
    """Id -> name of the running containers on ``none`` or ``host`` (the network package keeps
    no record of those, the engine's records know them); None for any other network."""
    if ref not in ("none", "host"):
        return None
    from skiff.engine.engine import Engine

    return {c.id: c.name for c in Engine(paths).containers() if c.data["HostConfig"].get("NetworkMode") == ref}


def check_network_driver(driver: str | None) -> None:
    """``network create -d``: skiff makes bridge networks only (None: the default, bridge)."""
    if driver not in (None, "bridge"):
        raise InvalidArgument(f"network driver {driver!r} is not supported", hint="use bridge")
