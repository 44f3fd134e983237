"""``client.volumes`` and the ``Volume`` model, over skiff's VolumeStore (as ``skiff volume``)."""

from __future__ import annotations

import builtins

from typing import TYPE_CHECKING, Any

from skiff.client.models import Model, filter_args

if TYPE_CHECKING:
    from skiff.client import Client
    from skiff.volume.store import VolumeStore


class Volume(Model):
    """A volume; its id is its name, as docker-py's."""

    id_attribute = "Name"

    @property
    def name(self) -> str:
        return self.id

    def reload(self) -> None:
        self.attrs = self.client.volumes._store().inspect(self.id)

    def remove(self, force: bool = False) -> None:
        """Remove it; refused (Conflict) while a container uses it; ``force``: no error if it is gone."""
        self.client.volumes.remove(self.id, force=force)


class VolumeCollection:
    def __init__(self, client: "Client") -> None:
        self.client = client

    def _store(self) -> "VolumeStore":
        from skiff.volume.store import VolumeStore

        return VolumeStore(self.client.paths)

    def create(self, name: str | None = None, driver: str | None = None, driver_opts: dict[str, str] | None = None,
               labels: dict[str, str] | None = None) -> Volume:
        """A new volume (a random name when none is given), or the existing one of that name."""
        volume = self._store().create(name, labels=labels, driver=driver or "local", options=driver_opts)
        return Volume(self.client, volume.inspect())

    def get(self, volume_id: str) -> Volume:
        return Volume(self.client, self._store().inspect(volume_id))

    def list(self, filters: dict[str, Any] | None = None) -> builtins.list[Volume]:
        from skiff.engine.filters import volume_list_filter
        from skiff.engine.volumes import volumes_in_use

        include = volume_list_filter(filter_args(filters), lambda: volumes_in_use(self.client.paths))
        return [Volume(self.client, v.inspect()) for v in self._store().list() if include(v)]

    def remove(self, volume_id: str, force: bool = False) -> None:
        from skiff.engine.volumes import volumes_in_use

        self._store().remove(volume_id, volumes_in_use(self.client.paths).get(volume_id, []), force=force)

    def prune(self, filters: dict[str, Any] | None = None) -> dict[str, Any]:
        """Remove every volume no container uses, as ``skiff volume prune``:
        ``{"VolumesDeleted": [names], "SpaceReclaimed": bytes}``."""
        from skiff.engine.filters import volume_prune_filter
        from skiff.engine.volumes import volumes_in_use

        include = volume_prune_filter(filter_args(filters))
        removed, freed = self._store().prune(volumes_in_use(self.client.paths), all=True, include=include)
        return {"VolumesDeleted": removed or None, "SpaceReclaimed": freed}
