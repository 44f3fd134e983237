"""The build cache: ``<root>/builder/cache/<key>`` names the image a step made (skiff.build.builder);
``builder prune`` removes the steps' images (those no tag or container holds) and the index."""

from __future__ import annotations

import contextlib
import shutil

from skiff.paths import Paths


def prune(paths: Paths) -> tuple[list[str], int]:
    """Remove every build step image not in use; (their ids, bytes of layers reclaimed)."""
    from skiff.engine import Engine
    from skiff.image.store import ImageStore

    store = ImageStore(paths)
    used = {str(c.data.get("Image", "")) for c in Engine(paths).containers(all_=True)}
    before = store._layers_size()
    removed = []
    for image_id in store.build_cache_ids():
        if image_id not in used and store.remove_build_cache(image_id):
            removed.append(image_id)
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(paths.root / "builder" / "cache")
    return removed, max(0, before - store._layers_size())
