"""``client.networks`` and the ``Network`` model, over skiff's NetworkManager (as ``skiff network``)."""

from __future__ import annotations

import builtins

from typing import TYPE_CHECKING, Any

from skiff.client.models import Model, filter_args

if TYPE_CHECKING:
    from skiff.client import Client
    from skiff.network import NetworkManager


class Network(Model):
    @property
    def name(self) -> str:
        return str(self.attrs.get("Name", ""))

    @property
    def containers(self) -> list[Any]:
        """The Container models attached to it (as of the last ``reload``)."""
        return [self.client.containers.get(cid) for cid in self.attrs.get("Containers") or {}]

    def reload(self) -> None:
        self.attrs = self.client.networks.get(self.id).attrs

    def connect(self, container: Any, aliases: list[str] | None = None, ipv4_address: str | None = None) -> None:
        """Connect a container (a Container, or its id or name): ``skiff network connect``. A running one
        gets the interface now; a created or stopped one at its next start, as in Docker."""
        from skiff.engine.network import connect

        connect(self.client.paths, _container_id(self.client, container), self.name, ip=ipv4_address,
                aliases=aliases or ())

    def disconnect(self, container: Any) -> None:
        """``skiff network disconnect``: now from a running container, from the record of a stopped one."""
        from skiff.engine.network import disconnect

        disconnect(self.client.paths, _container_id(self.client, container), self.name)

    def remove(self) -> None:
        self.client.networks.remove(self.id)


class NetworkCollection:
    def __init__(self, client: "Client") -> None:
        self.client = client

    def _manager(self) -> "NetworkManager":
        from skiff.network import NetworkManager

        return NetworkManager(self.client.paths)

    def create(self, name: str, driver: str | None = None, options: dict[str, str] | None = None,
               ipam: dict[str, Any] | None = None, internal: bool = False,
               labels: dict[str, str] | None = None) -> Network:
        """A bridge network; ``ipam`` as docker-py's (``{"Config": [{"Subnet": ..., "Gateway": ...}]}``)."""
        from skiff.engine.network import check_network_driver
        from skiff.errors import InvalidArgument

        check_network_driver(driver)
        pools = (ipam or {}).get("Config") or [{}]
        if len(pools) > 1:
            raise InvalidArgument("one IPAM pool per network is supported")
        pool = {key.lower(): value for key, value in pools[0].items()}
        record = self._manager().create_network(name, subnet=pool.get("subnet"), gateway=pool.get("gateway"),
                                                internal=internal, labels=labels, options=options)
        return self.get(record["Id"])

    def get(self, network_id: str) -> Network:
        from skiff.engine.network import predefined_members

        document = self._manager().inspect_network(network_id, predefined_members(self.client.paths, network_id))
        return Network(self.client, document)

    def list(self, names: builtins.list[str] | None = None, ids: builtins.list[str] | None = None,
             filters: dict[str, Any] | None = None) -> builtins.list[Network]:
        from skiff.engine.filters import network_list_filter

        filters = dict(filters or {})
        if names:
            filters["name"] = list(names)
        if ids:
            filters["id"] = list(ids)
        include = network_list_filter(filter_args(filters))
        return [self.get(n["Id"] or n["Name"]) for n in self._manager().list_networks() if include(n)]

    def remove(self, network_id: str) -> None:
        self._manager().remove_network(network_id)

    def prune(self, filters: dict[str, Any] | None = None) -> dict[str, Any]:
        """Remove unused networks: ``{"NetworksDeleted": [names]}``."""
        from skiff.engine.filters import network_prune_filter

        manager = self._manager()
        self.client.engine.release_orphaned_networks(manager)  # a killed run's lease must not pin the bridge
        include = network_prune_filter(filter_args(filters)) if filters else None
        return {"NetworksDeleted": manager.prune_networks(include) or None}


def _container_id(client: "Client", container: Any) -> str:
    return container.id if hasattr(container, "id") else client.engine.find(str(container)).id
