"""The engine's side of images: removal and prune, told which images containers use.

The image store knows images, not containers; the engine's records say which containers
were created from which image, so ``rmi`` and ``image prune`` go through here.
"""

from __future__ import annotations

from typing import Any, Callable

from skiff.engine import containers as records
from skiff.paths import Paths


def remove(paths: Paths, ref: str, force: bool = False) -> list[str]:
    """``docker rmi REF``: Docker's report lines (``Untagged: ...``, ``Deleted: sha256:...``)."""
    from skiff.image.store import ImageStore

    return ImageStore(paths).remove(ref, records.image_users(paths), force=force)


def prune(paths: Paths, all_images: bool = False,
          include: Callable[[Any], bool] | None = None) -> tuple[list[str], int]:
    """``docker image prune``: the ids removed and the bytes reclaimed (see ImageStore.prune)."""
    from skiff.image.store import ImageStore

    return ImageStore(paths).prune(records.image_users(paths), all_images=all_images, include=include)


def history(paths: Paths, ref: str) -> list[dict[str, Any]]:
    """``docker history REF``: the Engine API's ``/images/{name}/history`` document (newest
    first; the top entry carries the image's id and tags, the others ``<missing>``: skiff keeps
    no intermediate images, as Docker for a pulled image)."""
    import json

    from skiff.image.store import ImageStore

    store = ImageStore(paths)
    image = store.get(ref)
    config = json.loads(store.config_bytes(image.id))
    return history_document(image.id, image.repo_tags, config, [layer.size for layer in image.layers])


def history_document(image_id: str, tags: list[str], config: dict[str, Any], sizes: list[int]) -> list[dict[str, Any]]:
    """The config's ``history`` entries as Docker's HistoryResponseItem, each non-empty one with
    its layer's size."""
    from skiff.timestamps import parse

    entries = config.get("history") or [{"created": config.get("created") or "", "created_by": ""}]
    layers = iter(sizes)
    rows = []
    for entry in entries:
        size = 0 if entry.get("empty_layer") else next(layers, 0)
        created = entry.get("created") or ""
        rows.append({"Comment": entry.get("comment") or "", "Created": int(parse(created)) if created else 0,
                     "CreatedBy": entry.get("created_by") or "", "Id": "<missing>", "Size": size, "Tags": None})
    rows.reverse()
    rows[0]["Id"], rows[0]["Tags"] = image_id, tags or None
    return rows
