"""Moving images in and out of the store as files.

- ``import_tarball``: a root filesystem tarball becomes a one-layer image (``docker import``).
- ``load_archive``: a docker-archive (``manifest.json``) or an OCI image layout
  (``oci-layout`` + ``index.json``) in a tar, multi-layer, every digest verified.
- ``save_archive``: an OCI archive that also carries Docker's ``manifest.json``, so
  skopeo (``oci-archive:``), podman and ``docker load`` all accept it.

Archives are untrusted input: their member names are only ever looked up in the
tar's own table, never joined to a host path.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import posixpath
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from skiff import timestamps
from skiff.errors import ArchiveError, InvalidReference, LayerError
from skiff.image.reference import Reference, parse_reference, parse_reference_raw
from skiff.image.store import CHUNK, Image, ImageStore, LayerInfo, sha256_hex

MEDIA_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MEDIA_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"
MAX_LINK_HOPS = 16


def host_architecture() -> str:
    """The OCI name of this machine's architecture."""
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine, machine)


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


# --- import -------------------------------------------------------------------


def import_tarball(store: ImageStore, fileobj: BinaryIO, ref: str | None, changes: list[str],
                   message: str = "", source: str = "-") -> Image:
    """``docker import``: one layer from a rootfs tarball (plain, gzip or zstd)."""
    from skiff.image.changes import apply_changes

    tags = [_tag_reference(ref)] if ref else []
    config = apply_changes({}, changes)  # before the slow part: a bad --change fails fast
    with _naming_layer(f"importing {source}" if source != "-" else "importing from stdin"):
        layer = store.add_layer(fileobj)
    created = timestamps.now()
    image_config = {
        "architecture": host_architecture(),
        "os": "linux",
        "created": created,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
        "history": [{"created": created, "comment": message or f"Imported from {source}"}],
    }
    return store.add_image(canonical_json(image_config), [layer], tags)


@contextlib.contextmanager
def _naming_layer(what: str) -> Iterator[None]:
    """Prefix a LayerError with the layer it is about: an archive may hold many."""
    try:
        yield
    except LayerError as exc:
        raise type(exc)(f"{what}: {exc.message}", hint=exc.hint) from None


def _tag_reference(ref: str) -> Reference:
    parsed = parse_reference_raw(ref)
    if parsed.digest:
        raise InvalidReference(f"refusing to create a tag with a digest reference: {ref}")
    return parsed.with_default_tag()


# --- load ---------------------------------------------------------------------


class _ArchiveReader:
    """Random access to the members of an image archive by their (normalised) names."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        self.members: dict[str, tarfile.TarInfo] = {}
        for member in tar:
            name = posixpath.normpath("/" + member.name).lstrip("/")
            self.members[name] = member

    def has(self, name: str) -> bool:
        return self._find(name) is not None

    def _find(self, name: str) -> tarfile.TarInfo | None:
        name = posixpath.normpath("/" + name).lstrip("/")
        for _hop in range(MAX_LINK_HOPS):
            member = self.members.get(name)
            if member is None or member.isreg():
                return member
            if member.issym():
                name = posixpath.normpath("/" + posixpath.join(posixpath.dirname(name), member.linkname)).lstrip("/")
            elif member.islnk():
                name = posixpath.normpath("/" + member.linkname).lstrip("/")
            else:
                return None
        raise ArchiveError(f"too many levels of links for {name!r} in the archive")

    def open(self, name: str) -> BinaryIO:
        member = self._find(name)
        if member is None:
            raise ArchiveError(f"the archive has no file {name!r}")
        stream = self.tar.extractfile(member)
        assert stream is not None
        return stream  # type: ignore[return-value]

    def read_json(self, name: str) -> Any:
        return _parse_json(self.open(name).read(), name)


def _parse_json(data: bytes, name: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:
        raise ArchiveError(f"{name} in the archive is not valid JSON: {exc}") from None


# --- the shape of untrusted documents: one clear line instead of a KeyError or TypeError


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ArchiveError(f"{what} in the archive is not a JSON object")
    return value


def _field_str(document: dict[str, Any], key: str, what: str) -> str:
    value = document.get(key)
    if not isinstance(value, str) or not value:
        raise ArchiveError(f"{what} in the archive has no {key!r} string")
    return value


def _field_list(document: dict[str, Any], key: str, what: str, of: type = str) -> list[Any]:
    """``document[key]``: a list of ``of`` (absent or null: empty)."""
    value = document.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, of) for item in value):
        kind = "strings" if of is str else "objects"
        raise ArchiveError(f"{what} in the archive: {key!r} is not a list of {kind}")
    return value


@contextlib.contextmanager
def _seekable(store: ImageStore, fileobj: BinaryIO) -> Iterator[BinaryIO]:
    """``fileobj`` itself if it can seek, else a temporary copy (stdin, a pipe)."""
    seekable = False
    with contextlib.suppress(OSError, AttributeError, ValueError):
        seekable = fileobj.seekable() and fileobj.seek(0, io.SEEK_CUR) >= 0
    if seekable:
        yield fileobj
        return
    store.paths.tmp.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=store.paths.tmp) as copy:
        shutil.copyfileobj(fileobj, copy, CHUNK)
        copy.seek(0)
        yield copy


def load_archive(store: ImageStore, fileobj: BinaryIO) -> list[str]:
    """Load every image of a docker-archive or OCI archive; returns the names (or ids) loaded."""
    with _seekable(store, fileobj) as seekable:
        start = seekable.tell()
        if not seekable.read(1):
            raise ArchiveError("not an image archive: the file is empty")
        seekable.seek(start)
        try:
            tar = tarfile.open(fileobj=seekable, mode="r:*")
        except tarfile.TarError:
            # tarfile's message lists each decompressor it tried, one line each.
            raise ArchiveError("not an image archive: not a tar file (plain, gzip, bzip2 or xz)") from None
        with tar:
            try:
                archive = _ArchiveReader(tar)
            except (tarfile.TarError, EOFError) as exc:
                raise ArchiveError(f"corrupt image archive: {exc}") from None
            if archive.has("index.json") and archive.has("oci-layout"):
                return _load_oci(store, archive)
            if archive.has("manifest.json"):
                return _load_docker(store, archive)
            raise ArchiveError("not an image archive: it has neither manifest.json (docker-archive) "
                               "nor oci-layout and index.json (OCI)")


def _loaded_lines(image: Image, refs: list[Reference]) -> list[str]:
    """What was loaded: each name (``busybox:latest``), or the id of an image without one."""
    if not refs:
        return [image.id]
    return [ref.familiar for ref in refs]


def _load_docker(store: ImageStore, archive: _ArchiveReader) -> list[str]:
    manifest = archive.read_json("manifest.json")
    if not isinstance(manifest, list) or not all(isinstance(entry, dict) for entry in manifest):
        raise ArchiveError("manifest.json in the archive is not a list of images")
    lines: list[str] = []
    for entry in manifest:
        config_bytes = archive.open(_field_str(entry, "Config", "manifest.json")).read()
        diff_ids = _diff_ids(config_bytes)
        paths = _field_list(entry, "Layers", "manifest.json")
        tags = _field_list(entry, "RepoTags", "manifest.json")
        if len(paths) != len(diff_ids):
            raise ArchiveError(f"manifest.json lists {len(paths)} layers, the image config {len(diff_ids)}")
        refs = [_tag_reference(tag) for tag in tags]  # before the slow part: a bad tag fails fast
        layers = []
        for path, diff_id in zip(paths, diff_ids):
            with _naming_layer(f"layer {path} in the archive"):
                layers.append(store.add_layer(archive.open(path), expected_diff_id=diff_id))
        image = store.add_image(config_bytes, layers, refs)
        lines += _loaded_lines(image, refs)
    return lines


def _load_oci(store: ImageStore, archive: _ArchiveReader) -> list[str]:
    index = _object(archive.read_json("index.json"), "index.json")
    lines: list[str] = []
    loaded: dict[str, Image] = {}   # manifest digest -> image, for several names of one image
    for descriptor in _field_list(index, "manifests", "index.json", dict):
        manifest_digest, manifest = _platform_manifest(archive, descriptor)
        annotations = descriptor.get("annotations") or {}
        ref = _annotated_name(annotations) if isinstance(annotations, dict) else None
        image = loaded.get(manifest_digest)
        if image is None:
            image = _load_oci_image(store, archive, manifest, [ref] if ref else [])
            loaded[manifest_digest] = image
        elif ref:
            store.tag(image.id, str(ref))
        lines += _loaded_lines(image, [ref] if ref else [])
    return lines


def _load_oci_image(store: ImageStore, archive: _ArchiveReader, manifest: dict[str, Any],
                    refs: list[Reference]) -> Image:
    config = _object(manifest.get("config"), "the image manifest's config")
    config_bytes = _read_blob(archive, _field_str(config, "digest", "the image manifest's config"))
    diff_ids = _diff_ids(config_bytes)
    descriptors = _field_list(manifest, "layers", "the image manifest", dict)
    if len(descriptors) != len(diff_ids):
        raise ArchiveError(f"the manifest lists {len(descriptors)} layers, the image config {len(diff_ids)}")
    layers: list[LayerInfo] = []
    for desc, diff_id in zip(descriptors, diff_ids):
        digest = _field_str(desc, "digest", "a layer of the image manifest")
        stream = archive.open(f"blobs/sha256/{sha256_hex(digest)}")
        with _naming_layer(f"layer {digest} in the archive"):
            layers.append(store.add_layer(stream, expected_digest=digest, expected_diff_id=diff_id))
    return store.add_image(config_bytes, layers, refs)


def _platform_manifest(archive: _ArchiveReader, descriptor: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Follow nested indexes down to the manifest for this machine's platform."""
    for _depth in range(MAX_LINK_HOPS):
        digest = _field_str(descriptor, "digest", "an image index entry")
        document = _object(_parse_json(_read_blob(archive, digest), f"blob {digest}"), f"blob {digest}")
        media = document.get("mediaType") or descriptor.get("mediaType")
        if media not in (MEDIA_OCI_INDEX, MEDIA_DOCKER_LIST) and "manifests" not in document:
            return digest, document
        candidates = _field_list(document, "manifests", f"image index {digest}", dict)
        if not candidates:
            raise ArchiveError(f"image index {digest} in the archive lists no manifests")
        arch = host_architecture()
        descriptor = next((m for m in candidates if _platform_of(m) == (arch, "linux")), candidates[0])
    raise ArchiveError("image indexes in the archive are nested too deeply")


def _platform_of(descriptor: dict[str, Any]) -> tuple[Any, Any]:
    platform_ = descriptor.get("platform")
    if not isinstance(platform_, dict):
        return None, None
    return platform_.get("architecture"), platform_.get("os", "linux")


def _annotated_name(annotations: dict[str, str]) -> Reference | None:
    """The image name an index entry carries, if it is a full reference and not just a tag."""
    for key in (ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME):
        value = annotations.get(key, "")
        # A bare "latest" is a tag in the OCI layout's own namespace, not a repository.
        if value and ("/" in value or ":" in value):
            try:
                return _tag_reference(value)
            except InvalidReference:
                continue
    return None


def _read_blob(archive: _ArchiveReader, digest: str) -> bytes:
    import hashlib

    data = archive.open(f"blobs/sha256/{sha256_hex(digest)}").read()
    actual = f"sha256:{hashlib.sha256(data).hexdigest()}"
    if actual != digest:
        from skiff.errors import DigestMismatch

        raise DigestMismatch(f"blob {digest} in the archive has digest {actual}")
    return data


def _diff_ids(config_bytes: bytes) -> list[str]:
    try:
        config = json.loads(config_bytes)
        diff_ids = config["rootfs"]["diff_ids"]
    except (ValueError, KeyError, TypeError):
        raise ArchiveError("the image config in the archive has no rootfs.diff_ids") from None
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
        raise ArchiveError("the image config in the archive: rootfs.diff_ids is not a list of digests")
    for diff_id in diff_ids:
        sha256_hex(diff_id)
    return list(diff_ids)


# --- save -----------------------------------------------------------------------


@dataclass
class _SavedImage:
    image: Image
    names: list[Reference]


def save_archive(store: ImageStore, refs: list[str], out: Path | None) -> None:
    """Write the images named by ``refs`` as one OCI archive to ``out`` (stdout when None)."""
    images = _images_to_save(store, refs)
    if out is None:
        import sys

        _write_archive(store, images, sys.stdout.buffer)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            _write_archive(store, images, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.rename(tmp, out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_archive(store: ImageStore, refs: list[str], out: BinaryIO) -> None:
    """The archive of ``refs`` written to a stream as it is made (the Engine API's ``images/get``)."""
    _write_archive(store, _images_to_save(store, refs), out)


def _images_to_save(store: ImageStore, refs: list[str]) -> list[_SavedImage]:
    by_id: dict[str, _SavedImage] = {}
    for ref in refs:
        image = store.get(ref)
        saved = by_id.setdefault(image.id, _SavedImage(image, []))
        name = _name_of(store, ref)
        if name and name not in saved.names:
            saved.names.append(name)
    return list(by_id.values())


def _name_of(store: ImageStore, ref: str) -> Reference | None:
    """The reference ``ref`` names an image by, or None when it is an id."""
    _image_id, named = store.resolve(ref)
    return parse_reference(named) if named else None


def _write_archive(store: ImageStore, images: list[_SavedImage], out: BinaryIO) -> None:
    index_entries: list[dict[str, Any]] = []
    docker_manifest: list[dict[str, Any]] = []
    blobs: dict[str, Path] = {}
    documents: dict[str, bytes] = {}
    for saved in images:
        image = saved.image
        config_bytes = store.config_bytes(image.id)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": image.id, "size": len(config_bytes)},
            "layers": [{"mediaType": layer.media_type, "digest": layer.digest, "size": layer.blob_size}
                       for layer in image.layers],
        }
        manifest_bytes = canonical_json(manifest)
        import hashlib

        manifest_digest = f"sha256:{hashlib.sha256(manifest_bytes).hexdigest()}"
        documents[manifest_digest] = manifest_bytes
        blobs[image.id] = store.blob_path(image.id)
        for layer in image.layers:
            blobs[layer.digest] = store.blob_path(layer.digest)
        descriptor = {"mediaType": MEDIA_OCI_MANIFEST, "digest": manifest_digest, "size": len(manifest_bytes)}
        if not saved.names:
            index_entries.append(descriptor)
        for name in saved.names:
            index_entries.append({**descriptor, "annotations": {ANNOTATION_CONTAINERD_NAME: str(name),
                                                                ANNOTATION_REF_NAME: str(name)}})
        docker_manifest.append({
            "Config": f"blobs/sha256/{sha256_hex(image.id)}",
            "RepoTags": [name.familiar for name in saved.names],
            "Layers": [f"blobs/sha256/{sha256_hex(layer.digest)}" for layer in image.layers],
        })
    index = {"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": index_entries}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        _add_dir(tar, "blobs")
        _add_dir(tar, "blobs/sha256")
        for digest, path in sorted(blobs.items()):
            _add_file(tar, f"blobs/sha256/{sha256_hex(digest)}", path)
        for digest, data in sorted(documents.items()):
            _add_bytes(tar, f"blobs/sha256/{sha256_hex(digest)}", data)
        _add_bytes(tar, "oci-layout", canonical_json({"imageLayoutVersion": "1.0.0"}))
        _add_bytes(tar, "index.json", canonical_json(index))
        _add_bytes(tar, "manifest.json", canonical_json(docker_manifest))


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    tar.addfile(info)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _add_file(tar: tarfile.TarFile, name: str, path: Path) -> None:
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    with open(path, "rb") as f:
        info.size = os.fstat(f.fileno()).st_size
        tar.addfile(info, f)
