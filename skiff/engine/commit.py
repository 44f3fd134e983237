"""``docker commit``: a container's changes as a new image on top of its own.

The container's overlay upper dir becomes one layer (skiff.image.pack), without what the runtime
puts there for every container (``/etc/hosts`` and the other mount points Docker keeps in its
``-init`` layer); the image config is the container's Config as Docker merges it, with the
``--change`` instructions applied. A running container is paused while its upper dir is read
(Docker's default), unless ``pause`` is False.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Iterator, NamedTuple, Sequence

from skiff.errors import InvalidArgument

if TYPE_CHECKING:
    from skiff.engine.containers import Container
    from skiff.engine.engine import Engine
    from skiff.image.store import Image

# Docker 20.10's validCommitCommands (builder/dockerfile: BuildFromConfig's allow list).
COMMIT_INSTRUCTIONS = frozenset({"CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "USER", "VOLUME",
                                 "WORKDIR"})


class CommitRequest(NamedTuple):
    container: str
    reference: str | None = None     # REPO[:TAG]
    changes: Sequence[str] = ()       # -c, Dockerfile instructions
    message: str = ""                 # -m
    author: str = ""                  # -a
    pause: bool = True
    config: dict[str, Any] | None = None   # the Engine API's body: a container.Config merged over


def commit(engine: Engine, request: CommitRequest) -> Image:
    """Commit the container; returns the new image (tagged when a reference is given)."""
    from skiff.engine import events
    from skiff.image.authoring import Step, add_step
    from skiff.image.pack import source_date_epoch, store_layer
    from skiff.image.store import ImageStore

    tags = [_reference(request.reference)] if request.reference else []
    container = engine.find(request.container)
    store = ImageStore(engine.paths)
    parent = store.get(str(container.data.get("Image", "")))
    config = apply_commit_changes(container_config(container, parent), request.changes)
    if request.config:
        config = merge_config(config, request.config)
    epoch = source_date_epoch()
    with _paused(engine, container, request.pause):
        layer = store_layer(store, _upper(container), epoch=epoch, skip=runtime_made)
    container_cfg = dict(container.data.get("Config") or {})
    step = Step(config=config, created_by=" ".join(container_cfg.get("Cmd") or []), layer=layer,
                comment=request.message, author=request.author, container=container.id,
                container_config=container_cfg)
    image = add_step(store, parent, step, tags, epoch)
    events.emit_container(engine.paths, container.data, "commit")
    if tags:
        from skiff.image.store import emit_image_event

        emit_image_event(engine.paths, "tag", image.id, tags[0].familiar)
    return image


def runtime_made(path: str) -> bool:
    """What the runtime writes in every container's upper dir, never part of a commit."""
    from skiff.engine.archive import INIT_PATHS, INIT_TREES

    return path in INIT_PATHS or any(path == t or path.startswith(t + "/") for t in INIT_TREES)


def container_config(container: Container, image: Image) -> dict[str, Any]:
    """The new image's config: the container's Config as Docker keeps it, without what only the
    running process gets (HOSTNAME, a default HOME): Env is the image's merged with ``-e``."""
    from skiff.engine.options import RunOptions
    from skiff.engine.spec import config_env

    record = dict(container.data.get("Config") or {})
    saved = container.data.get("SkiffOptions") or {}
    opts = RunOptions(**{k: v for k, v in saved.items() if k in RunOptions._fields})
    record["Env"] = config_env(image.config, opts) or None
    for key in ("StopTimeout", "MacAddress"):
        if record.get(key) is None:
            record.pop(key, None)
    if record.get("StopSignal") == "SIGTERM" and not image.config.get("StopSignal"):
        record.pop("StopSignal")  # the default the record spells out, not the user's
    for key in ("OnBuild", "Shell"):
        if image.config.get(key) and key not in record:
            record[key] = image.config[key]
    return record


def apply_commit_changes(config: dict[str, Any], changes: Sequence[str]) -> dict[str, Any]:
    """``-c`` lines, each a Dockerfile instruction Docker's commit accepts."""
    from skiff.image.changes import apply_changes

    result = dict(config)
    for change in changes:
        keyword, _, rest = change.strip().partition(" ")
        if keyword.upper() not in COMMIT_INSTRUCTIONS:
            raise InvalidArgument(f"{keyword.lower()} is not a valid change command")
        if keyword.upper() == "ONBUILD":
            if not rest.strip():
                raise InvalidArgument("ONBUILD requires at least one argument")
            result["OnBuild"] = [*(result.get("OnBuild") or []), rest.strip()]
            continue
        result = apply_changes(result, [change])
    return result


def merge_config(config: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """The API body's Config over the container's, as Docker's commit merges them: set fields win."""
    merged = dict(config)
    for key, value in override.items():
        if value not in (None, "", [], {}, False, 0):
            merged[key] = value
    return merged


def _upper(container: Container) -> Any:
    """The container's upper dir; a container never started has an empty one."""
    upper = container.bundle / "upper"
    upper.mkdir(parents=True, exist_ok=True)
    return upper


@contextlib.contextmanager
def _paused(engine: Engine, container: Container, pause: bool) -> Iterator[None]:
    """Freeze a running container while its changes are read, as ``docker commit`` does."""
    if not pause or not container.state.can_pause:
        yield
        return
    engine.pause(container.id)
    try:
        yield
    finally:
        engine.pause(container.id, pause=False)


def _reference(text: str) -> Any:
    from skiff.errors import InvalidReference
    from skiff.image.reference import parse_reference_raw

    ref = parse_reference_raw(text)
    if ref.digest:
        raise InvalidReference(f"refusing to create a tag with a digest reference: {text}")
    return ref.with_default_tag()
