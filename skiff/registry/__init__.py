"""Pulling images from OCI distribution registries (Docker Hub, any registry v2).

``pull`` and ``ensure_image`` are imported lazily: ``skiff run`` with a local
image never loads httpx or the progress library. Their module is ``puller``, not
``pull``: importing a submodule binds its name in the package, so a module named
``pull`` would replace this function after the first pull of a process.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from skiff.image.store import Image
    from skiff.paths import Paths
    from skiff.registry.auth import Credentials
    from skiff.registry.progress import Reporter


def pull(paths: "Paths", ref: str, platform: str | None = None, quiet: bool = False,
         out: TextIO = sys.stdout, reporter: "Reporter | None" = None,
         credentials: "Credentials | None" = None) -> "Image":
    """Pull ``ref`` into the store under ``paths``; prints Docker's pull report to ``out``, or
    hands its progress to ``reporter`` (skiff.registry.progress.Reporter: the Engine API's JSON)."""
    from skiff.registry.puller import pull as _pull

    return _pull(paths, ref, platform=platform, quiet=quiet, out=out, reporter=reporter, credentials=credentials)


def ensure_image(paths: "Paths", ref: str, policy: str = "missing", platform: str | None = None,
                 quiet: bool = False, out: TextIO = sys.stderr) -> "Image":
    """The local image for ``ref``, pulled first as ``policy`` (missing, always, never) says."""
    from skiff.image.store import ImageStore

    if policy == "missing":
        store = ImageStore(paths)
        if store.exists(ref):  # the fast path of ``skiff run``: no registry code imported
            return store.get(ref)
    from skiff.registry.puller import ensure_image as _ensure

    return _ensure(paths, ref, policy=policy, platform=platform, quiet=quiet, out=out)


def push(paths: "Paths", ref: str, all_tags: bool = False, quiet: bool = False, out: TextIO = sys.stdout,
         reporter: "Reporter | None" = None, credentials: "Credentials | None" = None) -> list[str]:
    """Push the local image ``ref`` (every tag of its repository with ``all_tags``) to its
    registry; prints Docker's push report to ``out`` or hands it to ``reporter``. Returns the
    manifest digests pushed."""
    from skiff.registry.pusher import push as _push

    return _push(paths, ref, all_tags=all_tags, quiet=quiet, out=out, reporter=reporter, credentials=credentials)
