"""The engine's side of networking: from run flags to an attached network namespace."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skiff.engine import containers as records
from skiff.engine.containers import Container
from skiff.engine.options import RunOptions
from skiff.errors import ContainerNotRunning, InvalidArgument, NetworkError
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
    undo.callback(manager.detach, container.id)
    return manager.attach(container.id, request, name=container.name)


def detach(paths: Paths, container: Container) -> None:
    if container.data["HostConfig"].get("NetworkMode", "").startswith("container:"):
        return
    from skiff.network import NetworkManager

    NetworkManager(paths).detach(container.id)


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
