"""``client.images`` and the ``Image`` model, over skiff's ImageStore and registry client
(the same calls ``skiff pull``, ``load``, ``import``, ``images``, ``tag`` and ``rmi`` make)."""

from __future__ import annotations

import builtins

import io
import os
from typing import IO, TYPE_CHECKING, Any, BinaryIO, cast

from skiff.client.models import Model, filter_args

if TYPE_CHECKING:
    from skiff.client import Client
    from skiff.image.store import ImageStore


class Image(Model):
    @property
    def short_id(self) -> str:
        """``sha256:`` and 10 hex digits, as docker-py's."""
        return self.id[:17] if self.id.startswith("sha256:") else self.id[:10]

    @property
    def tags(self) -> list[str]:
        return [tag for tag in self.attrs.get("RepoTags") or [] if tag != "<none>:<none>"]

    @property
    def labels(self) -> dict[str, str]:
        return dict((self.attrs.get("Config") or {}).get("Labels") or {})

    def reload(self) -> None:
        self.attrs = self.client.images._store().inspect(self.id)

    def tag(self, repository: str, tag: str | None = None) -> bool:
        """Give the image the name ``repository:tag`` (``latest`` when no tag is given)."""
        return self.client.images.tag(self.id, repository, tag)

    def remove(self, force: bool = False) -> list[dict[str, str]]:
        return self.client.images.remove(self.id, force=force)


class ImageCollection:
    def __init__(self, client: "Client") -> None:
        self.client = client

    def _store(self) -> "ImageStore":
        from skiff.image.store import ImageStore

        return ImageStore(self.client.paths)

    def get(self, name: str) -> Image:
        """The image by name, id or unique id prefix; ImageNotFound if there is none."""
        return Image(self.client, self._store().inspect(name))

    def list(self, name: str | None = None, all: bool = False, filters: dict[str, Any] | None = None) -> builtins.list[Image]:
        """Every image (newest first), or those ``name`` (a reference pattern) and ``filters`` select."""
        from skiff.engine.filters import image_list_filter

        args = filter_args(filters)
        if name:  # as `skiff images NAME`: a reference filter
            args.fields.setdefault("reference", []).append(name)
        store = self._store()
        listed = image_list_filter(self.client.paths, args)
        return [Image(self.client, store.inspect(image.id)) for image in store.list() if listed(image) is not None]

    def pull(self, repository: str, tag: str | None = None, platform: str | None = None) -> Image:
        """Pull ``repository`` (``tag``, or ``latest``) from its registry: ``skiff pull``."""
        from skiff.registry import pull

        reference = repository
        if tag:
            reference += f"@{tag}" if tag.startswith("sha256:") else f":{tag}"
        image = pull(self.client.paths, reference, platform=platform, quiet=True, out=io.StringIO())
        return self.get(image.id)

    def load(self, data: bytes | IO[bytes]) -> builtins.list[Image]:
        """Images from a ``docker save`` or OCI archive (its bytes, or a binary file)."""
        store = self._store()
        stream = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else cast(BinaryIO, data)
        names: builtins.list[str] = store.load(stream)
        return [self.get(loaded) for loaded in dict.fromkeys(names)]

    def import_(self, src: str | os.PathLike[str] | bytes | IO[bytes], repository: str | None = None,
                tag: str | None = None, changes: builtins.list[str] | None = None, message: str = "") -> Image:
        """An image of one layer from a root filesystem tarball (a path, its bytes or a binary
        file): ``skiff import``; ``changes`` as ``--change`` (``['CMD ["sh"]']``)."""
        reference = f"{repository}:{tag}" if repository and tag else repository
        store = self._store()
        if isinstance(src, (bytes, bytearray)):
            image = store.import_tarball(io.BytesIO(src), reference, list(changes or []), message, "-")
        elif isinstance(src, (str, os.PathLike)):
            with open(src, "rb") as f:
                image = store.import_tarball(f, reference, list(changes or []), message, os.fspath(src))
        else:
            image = store.import_tarball(cast(BinaryIO, src), reference, list(changes or []), message, "-")
        return self.get(image.id)

    def tag(self, image: str, repository: str, tag: str | None = None) -> bool:
        """Name ``image`` ``repository:tag`` (``latest`` when no tag is given): ``skiff tag``."""
        self._store().tag(image, f"{repository}:{tag}" if tag else repository)
        return True

    def remove(self, image: str, force: bool = False) -> builtins.list[dict[str, str]]:
        """``skiff rmi``: ``[{"Untagged": name}, {"Deleted": id}, ...]``, as Docker's API."""
        from skiff.engine.images import remove

        return [dict([line.split(": ", 1)]) for line in remove(self.client.paths, image, force=force)]

    def prune(self, filters: dict[str, Any] | None = None) -> dict[str, Any]:
        """Remove dangling images (every unused one with ``filters={"dangling": False}``)."""
        from skiff.engine.filters import image_prune_filter
        from skiff.engine.images import prune

        include, all_images = image_prune_filter(filter_args(filters), False)
        deleted, reclaimed = prune(self.client.paths, all_images=all_images, include=include)
        return {"ImagesDeleted": [{"Deleted": image_id} for image_id in deleted] or None,
                "SpaceReclaimed": reclaimed}
