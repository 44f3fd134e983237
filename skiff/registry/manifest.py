"""Manifests: media types, parsing, and choosing the host's platform from an index."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from skiff.errors import RegistryError

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v1+prettyjws")
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
IMAGE_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
ACCEPT = ", ".join([OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST])

CONFIG_TYPES = ("application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json")
LAYER_TYPES = {
    "application/vnd.oci.image.layer.v1.tar": "none",
    "application/vnd.oci.image.layer.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd": "zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar": "none",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": "zstd",
    "application/vnd.docker.image.rootfs.diff.tar": "none",
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": "gzip",
    "application/vnd.docker.image.rootfs.diff.tar.zstd": "zstd",
}

_MACHINE_TO_PLATFORM = {
    "x86_64": ("amd64", None), "amd64": ("amd64", None),
    "aarch64": ("arm64", "v8"), "arm64": ("arm64", "v8"),
    "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"),
    "i386": ("386", None), "i686": ("386", None),
    "ppc64le": ("ppc64le", None), "s390x": ("s390x", None), "riscv64": ("riscv64", None),
}


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None

    @classmethod
    def from_json(cls, data: Any, where: str) -> "Descriptor":
        if not isinstance(data, dict):
            raise RegistryError(f"{where}: a descriptor is not a JSON object")
        digest, size = data.get("digest"), data.get("size")
        if not isinstance(digest, str) or not isinstance(size, int) or size < 0:
            raise RegistryError(f"{where}: descriptor without a valid digest and size: {data!r}")
        platform = None
        if isinstance(data.get("platform"), dict):
            p = data["platform"]
            platform = Platform(str(p.get("os", "")), str(p.get("architecture", "")), p.get("variant") or None)
        return cls(str(data.get("mediaType", "")), digest, size, platform)


@dataclass(frozen=True)
class ImageManifest:
    config: Descriptor
    layers: list[Descriptor]


def host_platform() -> Platform:
    import platform as stdlib_platform

    machine = stdlib_platform.machine()
    arch, variant = _MACHINE_TO_PLATFORM.get(machine, (machine, None))
    return Platform("linux", arch, variant)


def parse_platform(text: str) -> Platform:
    """``os/arch[/variant]`` as ``--platform`` takes it."""
    parts = text.strip().lower().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        from skiff.errors import InvalidArgument

        raise InvalidArgument(f"invalid platform {text!r}: expected os/arch[/variant], e.g. linux/arm64")
    return Platform(parts[0], parts[1], parts[2] if len(parts) == 3 else None)


def decode(body: bytes, media_type: str, where: str) -> dict[str, Any]:
    """The manifest as JSON, refusing what skiff cannot pull with a line saying why."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise RegistryError(f"{where}: the registry sent a manifest that is not valid JSON") from None
    if not isinstance(data, dict):
        raise RegistryError(f"{where}: the manifest is not a JSON object")
    kind = media_type or data.get("mediaType", "")
    if data.get("schemaVersion") == 1 or kind in DOCKER_SCHEMA1:
        raise RegistryError(f"{where}: Docker image manifest schema 1 is deprecated and not supported; "
                            f"push the image again with a current client")
    if not kind:
        # An OCI manifest may omit mediaType: tell an index from an image by its fields.
        kind = OCI_INDEX if "manifests" in data else OCI_MANIFEST
    if kind not in INDEX_TYPES + IMAGE_TYPES:
        raise RegistryError(f"{where}: unsupported manifest media type {kind!r}: not a container image")
    data["mediaType"] = kind
    return data


def choose(index: dict[str, Any], wanted: Platform, where: str) -> Descriptor:
    """The manifest for ``wanted`` in an index; a missing variant matches the closest one."""
    candidates = [Descriptor.from_json(m, where) for m in index.get("manifests") or []]
    fitting = [d for d in candidates if d.platform and d.platform.os == wanted.os
               and d.platform.architecture == wanted.architecture and d.media_type not in INDEX_TYPES]
    if wanted.variant:
        exact = [d for d in fitting if d.platform and d.platform.variant == wanted.variant]
        # arm64's only variant is v8: an entry without one fits it too.
        default_ok = wanted.architecture == "arm64" and wanted.variant == "v8"
        fitting = exact or ([d for d in fitting if d.platform and not d.platform.variant] if default_ok else [])
    if not fitting:
        available = ", ".join(str(d.platform) for d in candidates if d.platform) or "none"
        raise RegistryError(f"{where}: no matching manifest for {wanted} in the manifest list entries "
                            f"(available: {available})")
    return fitting[0]


def image_manifest(data: dict[str, Any], where: str) -> ImageManifest:
    config = Descriptor.from_json(data.get("config"), where)
    if config.media_type and config.media_type not in CONFIG_TYPES:
        raise RegistryError(f"{where}: config media type {config.media_type!r} is not a container image "
                            f"config (an artifact, not an image?)")
    layers = [Descriptor.from_json(layer, where) for layer in data.get("layers") or []]
    for layer in layers:
        if layer.media_type not in LAYER_TYPES:
            raise RegistryError(f"{where}: unsupported layer media type {layer.media_type!r} in layer {layer.digest}")
    return ImageManifest(config, layers)
