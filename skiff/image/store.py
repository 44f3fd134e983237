"""The local image store: blobs by digest, image records, tags, and unpacked layers.

On disk, under ``paths.images``::

    blobs/sha256/<hex>        configs, manifests and layer blobs, verified, immutable
    images/<hex>.json         one record per image id (the config digest)
    repositories.json         full reference name:tag -> image id

and under ``paths.layers``::

    <hex>/diff                a layer unpacked once, keyed by its diff_id, shared by images
    <hex>/layer.json          its diff_id, uncompressed size and short link name
    l/<short> -> ../<hex>/diff  short names, so overlay mount options fit in one page

Blobs and layers are written into temporary names and renamed into place only
when complete and verified, so a crash or a bad digest leaves nothing behind
that looks valid. Records and the index change only under ``FileLock(paths.lock_file)``.

A broken record (truncated JSON, say) stops nothing else: listings skip it with
one warning naming the file. A broken ``repositories.json`` is read for the tags
that can still be recovered from it; the next change of a tag sets the broken
file aside (``repositories.json.corrupt-<time>``) and writes a whole one.
"""

from __future__ import annotations

import builtins  # ImageStore.list hides the builtin in the class's annotations
import contextlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Iterator, Mapping, NamedTuple, Sequence

from skiff.errors import (DigestMismatch, ImageInUse, ImageNotFound, InvalidReference, LayerError, StateError,
                          TagReferenceError)
from skiff.image.reference import Reference, is_image_id, parse_reference, parse_reference_raw
from skiff.paths import Paths
from skiff.store import FileLock, fsync_dir, problem_of, read_json, warn_broken, write_json

if TYPE_CHECKING:
    from skiff.image.unpack import Readable

CHUNK = 1 << 20
LINK_DIR = "l"
SHORT_LINK_LEN = 12

MEDIA_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
LAYER_MEDIA_BY_COMPRESSION = {"none": MEDIA_LAYER_TAR, "gzip": MEDIA_LAYER_GZIP, "zstd": MEDIA_LAYER_ZSTD}


class LayerInfo(NamedTuple):
    """One layer of an image: its content (diff_id) and the blob it came in."""

    diff_id: str
    digest: str        # digest of the blob as stored (compressed or not)
    blob_size: int
    size: int          # uncompressed tar size
    media_type: str

    def to_json(self) -> dict[str, Any]:
        return {"diff_id": self.diff_id, "digest": self.digest, "blob_size": self.blob_size,
                "size": self.size, "media_type": self.media_type}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "LayerInfo":
        return cls(data["diff_id"], data["digest"], data["blob_size"], data["size"], data["media_type"])


class Image(NamedTuple):
    """An image in the local store."""

    id: str                          # "sha256:<hex of the config blob>"
    repo_tags: list[str]             # familiar names, e.g. "busybox:latest"
    config: dict[str, Any]           # the image config's "config" object (Env, Cmd, ...)
    created: str                     # RFC 3339
    layer_dirs: list[Path]           # unpacked layer contents, bottom first
    size: int                        # bytes of uncompressed layer content
    layers: list[LayerInfo]
    image_config: dict[str, Any]     # the whole OCI image config
    repo_digests: list[str]

    @property
    def short_id(self) -> str:
        return self.id.removeprefix("sha256:")[:12]

    @property
    def diff_ids(self) -> list[str]:
        return [layer.diff_id for layer in self.layers]


def sha256_hex(digest: str) -> str:
    """The hex part of a ``sha256:<hex>`` digest, refusing anything else (it becomes a file name)."""
    algorithm, _, hex_ = digest.partition(":")
    if algorithm != "sha256" or len(hex_) != 64 or any(c not in "0123456789abcdef" for c in hex_):
        raise DigestMismatch(f"unsupported or malformed digest {digest!r}: expected sha256:<64 hex>")
    return hex_


class ImageStore:
    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self.root = paths.images
        self.blobs = paths.images / "blobs" / "sha256"
        self.records = paths.images / "images"
        self.repositories_file = paths.images / "repositories.json"
        self.layers_root = paths.layers
        self._repositories_broken = False  # set when the file was read and found broken

    # --- lookups ----------------------------------------------------------------

    def get(self, ref: str) -> Image:
        """The image named by a reference, a full id or a unique id prefix."""
        return self._image(self.resolve(ref)[0])

    def exists(self, ref: str) -> bool:
        try:
            self.resolve(ref)
        except (ImageNotFound, InvalidReference):
            return False
        return True

    def list(self) -> list[Image]:
        """Every image, newest first."""
        images = []
        for path in self._record_files():
            try:
                images.append(self._image(f"sha256:{path.stem}"))
            except (StateError, ImageNotFound, LayerError, OSError) as exc:
                warn_broken(path, problem_of(exc), "remove it with 'skiff rmi -f " + path.stem[:12] + "'")
        return sorted(images, key=lambda img: img.created, reverse=True)

    def inspect(self, ref: str) -> dict[str, Any]:
        """Docker's ``image inspect`` object (skiff/image/documents.py)."""
        from skiff.image.documents import image_document

        return image_document(self.get(ref))

    def config_bytes(self, image_id: str) -> bytes:
        return self.blob_path(image_id).read_bytes()

    def blob_path(self, digest: str) -> Path:
        return self.blobs / sha256_hex(digest)

    def extra_blobs(self, image_id: str) -> builtins.list[str]:
        """The manifests (and indexes) an image came with: what ``push`` may send unchanged."""
        return [d for d in self._record(image_id).get("extra_blobs", []) if isinstance(d, str)]

    def repository_tags(self, name: str) -> builtins.list[tuple[Reference, str]]:
        """(reference, image id) of every tag of the repository ``name`` (``push --all-tags``)."""
        found = []
        for text, image_id in sorted(self._repositories().items()):
            ref = parse_reference(text)
            if ref.name == name and ref.tag:
                found.append((ref, image_id))
        return found

    # --- tags -----------------------------------------------------------------

    def tag(self, src: str, dst: str) -> None:
        """Point ``dst`` (a name with an optional tag) at the image ``src``."""
        if not is_image_id(src):
            _parse_tag_reference(src)
        target = _parse_tag_reference(dst)
        if target.digest:
            raise TagReferenceError("refusing to create a tag with a digest reference")
        with self.lock():
            image_id = self.resolve(src)[0]
            self._set_tag(target.with_default_tag(), image_id)
        emit_image_event(self.paths, "tag", image_id, target.with_default_tag().familiar)

    def _set_tag(self, ref: Reference, image_id: str) -> None:
        """Must be called under the lock."""
        repos = self._repositories()
        repos[str(ref)] = image_id
        self._write_repositories(repos)

    # --- removal ----------------------------------------------------------------

    def remove(self, ref: str, users: Mapping[str, Sequence[str]], force: bool = False) -> builtins.list[str]:
        """``docker rmi``: untag, and delete the image when nothing else names or uses it.

        ``users``: image id -> ids of the containers created from it, which the caller reads
        from its container records: the store knows images, not containers.
        Returns Docker's report lines (``Untagged: ...``, ``Deleted: sha256:...``).
        """
        with self.lock():
            image_id, named = self.resolve(ref)
            repos = self._repositories()
            tags = sorted(name for name, target in repos.items() if target == image_id)
            using = list(users.get(image_id, ()))
            short = image_id.removeprefix("sha256:")[:12]
            report: list[str] = []
            if named is not None:
                familiar = parse_reference(named).familiar
                if using and not force and len(tags) <= 1:
                    raise ImageInUse(f'conflict: unable to remove repository reference "{familiar}" (must force) '
                                     f"- container {using[0][:12]} is using its referenced image {short}")
                untag = [named]
            else:
                if len(tags) > 1 and not force:
                    raise ImageInUse(f"conflict: unable to delete {short} (must be forced) - image is "
                                     f"referenced in multiple repositories")
                if using and not force:
                    raise ImageInUse(f"conflict: unable to delete {short} (must be forced) - image is being "
                                     f"used by container {using[0][:12]}")
                untag = tags
            for name in untag:
                repos.pop(name, None)
                report.append(f"Untagged: {parse_reference(name).familiar}")
            self._write_repositories(repos)
            for _ in untag:  # as Docker 20.10: each untag event names the image by its id
                emit_image_event(self.paths, "untag", image_id, image_id)
            still_named = any(target == image_id for target in repos.values())
            if not still_named and not using:
                self._delete_image(image_id)
                report.append(f"Deleted: {image_id}")
                emit_image_event(self.paths, "delete", image_id, image_id)
            return report

    def _delete_image(self, image_id: str) -> None:
        """Drop the record, then every layer and blob no remaining record refers to. Under the lock."""
        try:
            record = self._record(image_id)
        except StateError:
            record = {}  # broken: its layers are unknown, so only the record and its config go
        (self.records / f"{sha256_hex(image_id)}.json").unlink()
        keep_layers: set[str] = set()
        keep_blobs: set[str] = set()
        for path in self._record_files():
            other = self._read_record_file(path)
            if other is None:  # broken: what it uses is unknown, so keep every layer
                keep_layers.update(layer.get("diff_id", "") for layer in record.get("layers", []))
                keep_blobs.update(layer.get("digest", "") for layer in record.get("layers", []))
                continue
            keep_blobs.add(other.get("id", ""))
            keep_blobs.update(other.get("extra_blobs", []))
            for layer in other.get("layers", []):
                keep_layers.add(layer["diff_id"])
                keep_blobs.add(layer["digest"])
        for layer in record.get("layers", []):
            if layer["diff_id"] not in keep_layers:
                self._delete_layer(layer["diff_id"])
            if layer["digest"] not in keep_blobs:
                self._unlink_blob(layer["digest"])
        for digest in [image_id, *record.get("extra_blobs", [])]:
            if digest not in keep_blobs:
                self._unlink_blob(digest)

    def _delete_layer(self, diff_id: str) -> None:
        layer_dir = self.layers_root / sha256_hex(diff_id)
        info = read_json(layer_dir / "layer.json", {})
        # Rename first: the layer vanishes at once, and a crash mid-rmtree leaves only a temp dir.
        import shutil
        import tempfile

        doomed = Path(tempfile.mkdtemp(prefix=".del-", dir=self.layers_root))
        try:
            os.rename(layer_dir, doomed / "layer")
        except FileNotFoundError:
            pass
        if info.get("link"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.layers_root / LINK_DIR / info["link"])
        shutil.rmtree(doomed, ignore_errors=True)

    def _unlink_blob(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.blob_path(digest).unlink()

    # --- writing images -----------------------------------------------------------

    def add_image(self, config_bytes: bytes, layers: builtins.list[LayerInfo], tags: builtins.list[Reference],
                  extra_blobs: builtins.list[str] | None = None,
                  repo_digests: builtins.list[str] | None = None) -> Image:
        """Record an image whose layers are already in the store, and tag it. Returns it.

        ``repo_digests`` (``registry/name@sha256:...``, the manifest digests it was
        pulled by) are added to those the image already has.
        """
        import json

        config = json.loads(config_bytes)
        diff_ids = list(config.get("rootfs", {}).get("diff_ids", []))
        if diff_ids != [layer.diff_id for layer in layers]:
            raise DigestMismatch(f"image config lists diff_ids {diff_ids}, the layers have "
                                 f"{[layer.diff_id for layer in layers]}")
        image_id = self.put_blob(config_bytes)
        record: dict[str, Any] = {
            "id": image_id,
            "created": config.get("created") or "1970-01-01T00:00:00Z",
            "layers": [layer.to_json() for layer in layers],
            "size": sum(layer.size for layer in layers),
            "extra_blobs": extra_blobs or [],
        }
        with self.lock():
            try:
                old = read_json(self.records / f"{sha256_hex(image_id)}.json", {}) or {}
            except StateError:
                old = {}  # a broken record of this very image: the one written now replaces it
            known = list(old.get("repo_digests", []))
            record["repo_digests"] = known + [d for d in repo_digests or [] if d not in known]
            record["extra_blobs"] = sorted(set(old.get("extra_blobs", [])) | set(record["extra_blobs"]))
            for layer in layers:
                if not (self.layers_root / sha256_hex(layer.diff_id) / "diff").is_dir():
                    raise LayerError(f"layer {layer.diff_id} was removed while the image was being added; "
                                     f"run the command again")
            write_json(self.records / f"{sha256_hex(image_id)}.json", record)
            for ref in tags:
                self._set_tag(ref, image_id)
        return self._image(image_id)

    def put_blob(self, data: bytes) -> str:
        """Store ``data`` by its digest; returns ``sha256:<hex>``."""
        import hashlib

        digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
        path = self.blob_path(digest)
        if not path.exists():
            with self._temp_blob() as (fd, tmp):
                _write_all(fd, data)
                os.fsync(fd)
                self._commit_blob(tmp, path)
        return digest

    def add_layer(self, stream: Readable, expected_digest: str | None = None,
                  expected_diff_id: str | None = None, media_type: str | None = None) -> LayerInfo:
        """Store a layer blob and unpack it once, keyed by its diff_id.

        ``stream`` is read once: each chunk is hashed and written to a temporary
        blob file as it is decompressed, hashed again and unpacked into a temporary
        directory, so unpacking overlaps the download. Both are renamed into place
        only when every digest given matches. On any error nothing is stored.
        """
        from skiff.image.unpack import unpack_layer, uncompressed_digest

        with self._temp_blob() as (fd, tmp):
            blob = _TeeReader(stream, fd)
            existing = self._layer_info(expected_diff_id) if expected_diff_id else None
            staging: Path | None = None
            try:
                try:
                    if existing is not None:
                        # Unpacked already: only check that this blob really holds that content.
                        diff_id, size = uncompressed_digest(blob)
                        if diff_id != expected_diff_id:
                            raise DigestMismatch(f"layer content has digest {diff_id}, "
                                                 f"expected {expected_diff_id}")
                    else:
                        staging = self._staging_dir()
                        result = unpack_layer(blob, staging / "diff", expected_diff_id)
                        diff_id, size = result.diff_id, result.size
                    blob.drain()
                except LayerError:
                    # A blob that is not what was asked for is reported as such, even when its
                    # content failed to unpack first (and the source may have its own verdict).
                    blob.drain()
                    _check_digest(blob, expected_digest)
                    raise
                _check_digest(blob, expected_digest)
                os.fsync(fd)
                if staging is not None:
                    size = self._commit_layer(staging, diff_id, size)
            finally:
                if staging is not None:
                    _remove_tree(staging)  # gone already when committed
            media = media_type or LAYER_MEDIA_BY_COMPRESSION[blob.compression]
            self._commit_blob(tmp, self.blob_path(blob.digest))
        return LayerInfo(diff_id, blob.digest, blob.size, size, media)

    def _staging_dir(self) -> Path:
        import tempfile

        self.layers_root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.layers_root))
        (staging / "diff").mkdir()
        return staging

    def _commit_layer(self, staging: Path, diff_id: str, size: int) -> int:
        """Rename a verified, unpacked ``staging`` into place; the size of the layer kept."""
        hex_ = sha256_hex(diff_id)
        final = self.layers_root / hex_
        if (final / "diff").is_dir():
            return int(self._layer_info(diff_id)["size"])  # type: ignore[index]
        link = self._make_link(hex_)
        write_json(staging / "layer.json", {"diff_id": diff_id, "size": size, "link": link})
        fsync_dir(staging)
        try:
            os.rename(staging, final)
        except OSError:
            if not (final / "diff").is_dir():  # someone else won the race: theirs is equal
                raise
        return size

    def _make_link(self, hex_: str) -> str:
        """A short name ``l/<name> -> ../<hex>/diff`` for overlay's lowerdir option."""
        links = self.layers_root / LINK_DIR
        links.mkdir(exist_ok=True)
        target = f"../{hex_}/diff"
        for length in range(SHORT_LINK_LEN, len(hex_) + 1):
            name = hex_[:length]
            try:
                os.symlink(target, links / name)
                return name
            except FileExistsError:
                if os.readlink(links / name) == target:
                    return name
        raise LayerError(f"cannot make a short link for layer {hex_} in {links}")

    def find_layer(self, diff_id: str, digest: str) -> LayerInfo | None:
        """A layer already unpacked with this content, as some image records it, or None.

        Prefers the record of the blob ``digest`` itself; otherwise any blob with the
        same content will do, so a layer is never fetched twice whatever its compression.
        """
        info = self._layer_info(diff_id)
        if info is None:
            return None
        candidates: list[LayerInfo] = []
        for path in self._record_files():
            for layer in (self._read_record_file(path) or {}).get("layers", []):
                if layer.get("diff_id") == diff_id:
                    candidates.append(LayerInfo.from_json(layer))
        candidates.sort(key=lambda layer: layer.digest != digest)
        for layer in candidates:
            if self.blob_path(layer.digest).exists():
                return layer
        return None

    def prune(self, users: Mapping[str, Sequence[str]], all_images: bool = False,
              include: Callable[[Image], bool] | None = None) -> tuple[builtins.list[str], int]:
        """``docker image prune``: remove untagged images (every unused one with ``all_images``),
        those ``include`` accepts (an Image -> bool: Docker's filters, which the caller builds).
        ``users``: image id -> ids of the containers created from it, as for ``remove``.

        Returns the ids removed and the bytes of unpacked layers reclaimed.
        """
        deleted: list[str] = []
        reclaimed = 0
        with self.lock():
            tagged = set(self._repositories().values())
            if self._repositories_broken:
                # Tags lost with the broken part would make tagged images look dangling.
                raise StateError(f"refusing to prune: {self.repositories_file} is broken",
                                 hint="tag the images to keep (that rewrites it), then prune again")
            for path in self._record_files():
                image_id = f"sha256:{path.stem}"
                if image_id in users or (image_id in tagged and not all_images):
                    continue
                if include is not None and not include(self._image(image_id)):
                    continue
                before = self._layers_size()
                repos = self._repositories()
                for name in [n for n, target in repos.items() if target == image_id]:
                    del repos[name]
                self._write_repositories(repos)
                self._delete_image(image_id)
                emit_image_event(self.paths, "delete", image_id, image_id)
                reclaimed += before - self._layers_size()
                deleted.append(image_id)
        return deleted, reclaimed

    def _layers_size(self) -> int:
        total = 0
        for layer_dir in self.layers_root.iterdir() if self.layers_root.is_dir() else []:
            info = read_json(layer_dir / "layer.json", {}) if layer_dir.name != LINK_DIR else {}
            total += int((info or {}).get("size", 0))
        return total

    def _layer_info(self, diff_id: str) -> dict[str, Any] | None:
        layer_dir = self.layers_root / sha256_hex(diff_id)
        if not (layer_dir / "diff").is_dir():
            return None
        return read_json(layer_dir / "layer.json")

    @contextlib.contextmanager
    def _temp_blob(self) -> Iterator[tuple[int, str]]:
        self.blobs.mkdir(parents=True, exist_ok=True)
        import tempfile

        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.blobs)
        try:
            yield fd, tmp
        finally:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def _commit_blob(self, tmp: str, path: Path) -> None:
        if path.exists():
            return
        os.chmod(tmp, 0o644)
        os.rename(tmp, path)
        fsync_dir(path.parent)

    # --- records --------------------------------------------------------------------

    def lock(self) -> FileLock:
        return FileLock(self.paths.lock_file)

    def _repositories(self) -> dict[str, str]:
        """Reference -> image id. A broken file gives the entries still readable in it, with a warning."""
        try:
            repos = read_json(self.repositories_file, {})
            problem = "" if _is_tag_map(repos) else "not a JSON object of reference -> image id"
        except (StateError, OSError) as exc:
            repos, problem = {}, problem_of(exc)
        if not problem:
            return repos
        self._repositories_broken = True
        recovered = self._salvage_tags()
        warn_broken(self.repositories_file, problem,
                    f"{len(recovered)} tag(s) recovered from it; the next tag change rewrites it")
        return recovered

    def _salvage_tags(self) -> dict[str, str]:
        """The ``"name:tag": "sha256:..."`` pairs of a broken index whose image still exists."""
        import re

        try:
            text = self.repositories_file.read_text(errors="replace")
        except OSError:
            return {}
        found: dict[str, str] = {}
        for name, image_id in re.findall(r'"([^"\\\s]+)"\s*:\s*"(sha256:[0-9a-f]{64})"', text):
            try:
                ref = parse_reference(name)
            except InvalidReference:
                continue
            if not ref.digest and (self.records / f"{sha256_hex(image_id)}.json").exists():
                found[str(ref)] = image_id
        return found

    def _write_repositories(self, repos: dict[str, str]) -> None:
        """Write the tag index (under the lock); a broken one is kept aside first, for the record."""
        if self._repositories_broken and self.repositories_file.exists():
            import time

            aside = self.repositories_file.with_name(f"repositories.json.corrupt-{int(time.time())}")
            os.rename(self.repositories_file, aside)
            self._repositories_broken = False
        write_json(self.repositories_file, repos)

    def _read_record_file(self, path: Path) -> dict[str, Any] | None:
        """An image record for a scan over all of them; a broken one is reported and skipped."""
        try:
            record = read_json(path, {})
        except (StateError, OSError) as exc:
            warn_broken(path, problem_of(exc), "remove it with 'skiff rmi -f " + path.stem[:12] + "'")
            return None
        return record if isinstance(record, dict) else None

    def _record_files(self) -> builtins.list[Path]:
        try:
            return [p for p in self.records.iterdir() if p.suffix == ".json" and not p.name.startswith(".")]
        except FileNotFoundError:
            return []

    def _record(self, image_id: str) -> dict[str, Any]:
        path = self.records / f"{sha256_hex(image_id)}.json"
        record = read_json(path)
        if record is None:
            raise ImageNotFound(f"No such image: {image_id}")
        if not (isinstance(record, dict) and isinstance(record.get("layers"), list)
                and isinstance(record.get("created"), str) and isinstance(record.get("size"), int)):
            raise StateError(f"image record {path}: incomplete or malformed",
                             hint=f"remove it with 'skiff rmi -f {path.stem[:12]}'")
        return record

    def _image(self, image_id: str) -> Image:
        import json

        record = self._record(image_id)
        image_config = json.loads(self.config_bytes(image_id))
        layers = [LayerInfo.from_json(layer) for layer in record["layers"]]
        tags = sorted(parse_reference(name).familiar
                      for name, target in self._repositories().items() if target == image_id)
        return Image(
            id=image_id,
            repo_tags=tags,
            config=image_config.get("config") or {},
            created=record["created"],
            layer_dirs=[self.layers_root / sha256_hex(layer.diff_id) / "diff" for layer in layers],
            size=record["size"],
            layers=layers,
            image_config=image_config,
            repo_digests=sorted(_familiar_digest(name) for name in record.get("repo_digests", [])),
        )

    def resolve(self, ref: str) -> tuple[str, str | None]:
        """(image id, the full ``name:tag`` it was found by, or None when found by id)."""
        text = ref.strip()
        if is_image_id(text):
            image_id = f"sha256:{text.removeprefix('sha256:')}"
            if (self.records / f"{sha256_hex(image_id)}.json").exists():
                return image_id, None
            raise ImageNotFound(f"No such image: {text}")
        parsed: Reference | None = None
        with contextlib.suppress(InvalidReference):
            parsed = parse_reference(text)
        if parsed is not None and not parsed.digest:
            tagged = self._repositories().get(str(parsed))
            if tagged and (self.records / f"{sha256_hex(tagged)}.json").exists():
                return tagged, str(parsed)
        if parsed is not None and parsed.digest:
            for path in self._record_files():
                if f"{parsed.name}@{parsed.digest}" in (self._read_record_file(path) or {}).get("repo_digests", []):
                    return f"sha256:{path.stem}", None
        prefix = text.removeprefix("sha256:")
        if prefix and all(c in "0123456789abcdef" for c in prefix):
            matches = [p.stem for p in self._record_files() if p.stem.startswith(prefix)]
            if len(matches) == 1:
                return f"sha256:{matches[0]}", None
        raise ImageNotFound(f"No such image: {parsed.familiar if parsed else text}")

    # --- archives (see skiff.image.archive) -------------------------------------------

    def import_tarball(self, fileobj: BinaryIO, ref: str | None = None, changes: builtins.list[str] | None = None,
                       message: str = "", source: str = "-") -> Image:
        from skiff.image.archive import import_tarball

        image = import_tarball(self, fileobj, ref, changes or [], message, source)
        if ref:
            emit_image_event(self.paths, "tag", image.id, parse_reference_raw(ref).with_default_tag().familiar)
        emit_image_event(self.paths, "import", image.id, image.id)
        return image

    def load(self, fileobj: BinaryIO) -> builtins.list[str]:
        from skiff.image.archive import load_archive

        lines = load_archive(self, fileobj)
        for image_id in dict.fromkeys(self.resolve(line)[0] for line in lines):
            emit_image_event(self.paths, "load", image_id, image_id)
        return lines

    def save(self, refs: builtins.list[str], out_path: str | os.PathLike[str] | None) -> None:
        """Write an OCI archive (with Docker's manifest.json too); ``None`` or ``-`` is stdout."""
        from skiff.image.archive import save_archive

        save_archive(self, refs, None if out_path is None or out_path == "-" else Path(out_path))
        for image_id in dict.fromkeys(self.resolve(ref)[0] for ref in refs):
            emit_image_event(self.paths, "save", image_id, image_id)


def _parse_tag_reference(text: str) -> Reference:
    """A ``tag`` argument as a reference, refused in Docker 20.10's client words."""
    try:
        return parse_reference_raw(text)
    except InvalidReference as exc:
        raise TagReferenceError(f"Error parsing reference: {json.dumps(text)} is not a valid repository/tag: "
                                f"{exc.message}") from None


def _is_tag_map(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())


def emit_image_event(paths: Paths, action: str, actor_id: str, name: str) -> None:
    """An image event in the root's events log (``skiff events``)."""
    from skiff.events import emit

    emit(paths, "image", action, actor_id, {"name": name})


def _familiar_digest(name_at_digest: str) -> str:
    """``docker.io/library/alpine@sha256:..`` -> ``alpine@sha256:..``, as Docker shows RepoDigests."""
    try:
        return parse_reference_raw(name_at_digest).familiar
    except InvalidReference:
        return name_at_digest


class _TeeReader:
    """Reads ``source`` while writing every byte to ``fd`` and hashing it: the blob as it passes."""

    def __init__(self, source: Readable, fd: int) -> None:
        import hashlib

        self._source = source
        self._fd = fd
        self._hash = hashlib.sha256()
        self.size = 0
        self.head = b""

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(CHUNK if size is None or size < 0 else size)
        if data:
            if len(self.head) < 8:
                self.head += data[:8 - len(self.head)]
            self._hash.update(data)
            self.size += len(data)
            _write_all(self._fd, data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    @property
    def digest(self) -> str:
        return f"sha256:{self._hash.hexdigest()}"

    @property
    def compression(self) -> str:
        from skiff.image.unpack import compression_of

        return compression_of(self.head)


def _check_digest(blob: _TeeReader, expected: str | None) -> None:
    if expected is not None and blob.digest != expected:
        raise DigestMismatch(f"layer blob has digest {blob.digest}, expected {expected}")


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
