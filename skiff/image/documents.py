"""Docker 20.10's ``image inspect`` document, and the field table of its container config.

An image's config (``Config``, ``ContainerConfig``) is Docker's container.Config: every
field present with its zero value, omitempty fields only when set, in Go's order. The
engine's container documents use the same table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

if TYPE_CHECKING:
    from skiff.image.store import Image


class _Omit:
    """An omitempty field of Docker's struct: shown only when it has a value."""

    def __repr__(self) -> str:
        return "OMIT"


OMIT: Any = _Omit()
ZERO_TIME = "0001-01-01T00:00:00Z"

# container.Config of Docker 20.10, fields in Go's order with their zero values as its JSON shows them.
CONFIG_FIELDS: Sequence[tuple[str, Any]] = (
    ("Hostname", ""), ("Domainname", ""), ("User", ""), ("AttachStdin", False), ("AttachStdout", False),
    ("AttachStderr", False), ("ExposedPorts", OMIT), ("Tty", False), ("OpenStdin", False), ("StdinOnce", False),
    ("Env", None), ("Cmd", None), ("Healthcheck", OMIT), ("ArgsEscaped", OMIT), ("Image", ""), ("Volumes", None),
    ("WorkingDir", ""), ("Entrypoint", None), ("NetworkDisabled", OMIT), ("MacAddress", OMIT), ("OnBuild", None),
    ("Labels", None), ("StopSignal", OMIT), ("StopTimeout", OMIT), ("Shell", OMIT),
)
# container.HealthConfig: every field omitempty, in Go's order (skiff's records keep their keys sorted).
HEALTHCHECK_FIELDS: Sequence[str] = ("Test", "Interval", "Timeout", "StartPeriod", "Retries")


def is_empty(value: Any) -> bool:
    """Go's omitempty test: false, 0, "", nil, and empty lists and maps are left out."""
    if value is None or value is OMIT or value is False:
        return True
    if isinstance(value, (str, list, dict, tuple)):
        return len(value) == 0
    return isinstance(value, int) and value == 0


def healthcheck_document(health: Any) -> Any:
    """A ``Healthcheck`` as Docker's HealthConfig struct: its fields in Go's order, zeros left out."""
    if not isinstance(health, Mapping):
        return health
    return {key: health[key] for key in HEALTHCHECK_FIELDS if not is_empty(health.get(key))}


def image_config_document(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """An image config's ``config`` object as Docker's container.Config."""
    config = config or {}
    doc: dict[str, Any] = {}
    for key, zero in CONFIG_FIELDS:
        value = config.get(key, zero)
        if zero is OMIT and is_empty(value):
            continue
        doc[key] = healthcheck_document(value) if key == "Healthcheck" else value
    return doc


def image_document(image: Image) -> dict[str, Any]:
    """``docker image inspect`` for a skiff ``Image`` (skiff/image/store.py)."""
    raw = image.image_config
    history = raw.get("history") or []
    lower = [str(d) for d in reversed(image.layer_dirs[:-1])]
    data = {"LowerDir": ":".join(lower)} if lower else {}
    if image.layer_dirs:
        # overlay2's keys for the top layer, as Docker's: its diff, and the merged and work
        # directories beside it (paths only: an image is never mounted on its own)
        top = image.layer_dirs[-1]
        data.update(MergedDir=str(top.parent / "merged"), UpperDir=str(top), WorkDir=str(top.parent / "work"))
    doc: dict[str, Any] = {
        "Id": image.id,
        "RepoTags": list(image.repo_tags),
        "RepoDigests": list(image.repo_digests),
        "Parent": "",
        "Comment": str(history[-1].get("comment", "")) if history else "",
        "Created": image.created,
        "Container": str(raw.get("container") or ""),
        "ContainerConfig": image_config_document(raw.get("container_config")),
        "DockerVersion": str(raw.get("docker_version") or ""),
        "Author": str(raw.get("author") or ""),
        "Config": image_config_document(image.config),
        "Architecture": str(raw.get("architecture") or ""),
        "Variant": str(raw.get("variant") or ""),
        "Os": str(raw.get("os") or ""),
        "OsVersion": str(raw.get("os.version") or ""),
        "Size": image.size,
        "VirtualSize": image.size,  # no shared parent layers in skiff's accounting: Size again, as Docker's
        "GraphDriver": {"Data": data or None, "Name": "overlay2"},
        "RootFS": {"Type": "layers", "Layers": list(image.diff_ids)},
        # skiff does not record when a tag was set: Go's zero time, as Docker shows for a pulled image.
        "Metadata": {"LastTagTime": ZERO_TIME},
    }
    for key in ("Variant", "OsVersion"):  # omitempty
        if not doc[key]:
            del doc[key]
    return doc
