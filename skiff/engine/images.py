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
