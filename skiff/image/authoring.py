"""New images on top of others: the config Docker writes for ``commit`` and its builder's steps.

An image made here is its parent's layers plus at most one new layer, and its parent's history
plus one entry: ``created_by`` (the command or instruction), ``empty_layer`` when the step added no
layer, as Docker 20.10 writes them, and the config fields Docker's daemon adds (``container``,
``container_config``, ``author``). With ``SOURCE_DATE_EPOCH`` every ``created`` is that time, so
two builds of the same steps give the same image id.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, NamedTuple, Sequence

from skiff import timestamps

if TYPE_CHECKING:
    from skiff.image.reference import Reference
    from skiff.image.store import Image, ImageStore, LayerInfo


class Step(NamedTuple):
    """What one step adds to its parent image."""

    config: dict[str, Any]                 # the new image's whole ``config`` object
    created_by: str                        # the history entry's command
    layer: LayerInfo | None = None         # None: an empty_layer step
    comment: str = ""
    author: str = ""
    container: str = ""                    # the container it was committed from, if any
    container_config: dict[str, Any] | None = None


def created_time(epoch: int | None) -> str:
    """Now, or ``SOURCE_DATE_EPOCH`` as RFC 3339 when it is set."""
    if epoch is None:
        return timestamps.now()
    import datetime

    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def image_config(parent: Image | None, step: Step, epoch: int | None = None,
                 platform: tuple[str, str, str] | None = None) -> dict[str, Any]:
    """The OCI/Docker image config of the parent plus this step (keys as Docker writes them)."""
    from skiff.image.archive import host_architecture

    created = created_time(epoch)
    raw = parent.image_config if parent is not None else {}
    history = list(raw.get("history") or [])
    entry: dict[str, Any] = {"created": created, "created_by": step.created_by}
    if step.author:
        entry["author"] = step.author
    if step.comment:
        entry["comment"] = step.comment
    if step.layer is None:
        entry["empty_layer"] = True
    history.append(entry)
    diff_ids = list(parent.diff_ids if parent is not None else [])
    if step.layer is not None:
        diff_ids.append(step.layer.diff_id)
    os_name, arch, variant = platform or (str(raw.get("os") or "linux"),
                                          str(raw.get("architecture") or host_architecture()),
                                          str(raw.get("variant") or ""))
    config: dict[str, Any] = {"architecture": arch}
    if variant:
        config["variant"] = variant
    if step.author:
        config["author"] = step.author
    config["config"] = step.config
    if step.container:
        config["container"] = step.container
    if step.container_config is not None:
        config["container_config"] = step.container_config
    config.update({"created": created, "history": history, "os": os_name,
                   "rootfs": {"type": "layers", "diff_ids": diff_ids}})
    return config


def add_step(store: ImageStore, parent: Image | None, step: Step, tags: Sequence[Reference] = (),
             epoch: int | None = None, platform: tuple[str, str, str] | None = None) -> Image:
    """Store the image ``parent`` + ``step`` and tag it; returns it."""
    config = image_config(parent, step, epoch, platform)
    layers = list(parent.layers if parent is not None else [])
    if step.layer is not None:
        layers.append(step.layer)
    data = json.dumps(config, separators=(",", ":")).encode()
    return store.add_image(data, layers, list(tags))
