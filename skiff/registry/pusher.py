"""``skiff push``: a local image's blobs and manifest to a registry (the distribution spec's push).

For each blob: ``HEAD`` first (a blob the repository has is ``Layer already exists``); then a
cross-repository mount from a repository of the same registry the image came from or went to
(its ``RepoDigests``: ``Mounted from NAME``); else an upload: one ``PUT`` for a small blob
(monolithic), ``PATCH`` chunks then a ``PUT`` for a large one, where a chunk that fails is
resumed from the offset the registry reports. Requests are retried (skiff.registry.client).

The manifest: the one the image was pulled with when it still describes it (its digest, and
so the image's ``RepoDigests``, stay the same); else one written for the stored layers, OCI when
they are OCI blobs, Docker schema 2 when they are Docker's. A registry that refuses that format
gets the other one (the layers are the same bytes under the other family's media types). An
image pulled from a multi-platform index whose other platforms are in the store too is pushed
as that index: every platform's image, then the index under the tag.
"""

from __future__ import annotations

import hashlib
import json
import sys
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
import os
from collections.abc import Callable, Iterator
from typing import IO, Any, NamedTuple, TextIO

import httpx

from skiff.errors import (ImageNotFound, InvalidReference, RegistryAuthError, RegistryError, SkiffError,
                          UsageError)
from skiff.image.reference import Reference, parse_reference_raw
from skiff.image.store import Image, ImageStore, LayerInfo
from skiff.paths import Paths
from skiff.registry import auth
from skiff.registry import manifest as mf
from skiff.registry.client import Content, RegistryClient, _error_codes
from skiff.registry.config import RegistryConfig
from skiff.registry.progress import Reporter, reporter_for

PARALLEL_UPLOADS = 5            # dockerd's max-concurrent-uploads
MONOLITHIC_MAX = 32 << 20       # a blob up to this size goes in one PUT
CHUNK_SIZE = 32 << 20           # a larger one in PATCH chunks of this size (each streamed from the file)
READ_SIZE = 1 << 20
RESUMES = 4                     # times one upload is resumed after a failed chunk

OCI_CONFIG, DOCKER_CONFIG = mf.CONFIG_TYPES
# The same layer bytes under the other family's media type.
TO_DOCKER = {
    "application/vnd.oci.image.layer.v1.tar": "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip": "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd": "application/vnd.docker.image.rootfs.diff.tar.zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip":
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
}
TO_OCI = {docker: oci for oci, docker in TO_DOCKER.items()}


class Manifest(NamedTuple):
    body: bytes
    media_type: str

    @property
    def digest(self) -> str:
        return f"sha256:{hashlib.sha256(self.body).hexdigest()}"


def push(paths: Paths, ref: str, all_tags: bool = False, quiet: bool = False, out: TextIO | None = None,
         reporter: Reporter | None = None, credentials: auth.Credentials | None = None) -> list[str]:
    """Push ``ref`` (every tag of its repository with ``all_tags``); Docker's report to ``out``
    (the client's lines too) or to ``reporter`` (the Engine API's: the daemon's lines only).
    Returns the digests of the manifests pushed under the tags."""
    out = sys.stdout if out is None else out
    raw = parse_reference_raw(ref)
    if raw.digest:
        raise InvalidReference(f"cannot push a digest reference: {ref}")
    if all_tags and raw.tag:
        raise UsageError("tag can't be used with --all-tags/-a")
    client_lines = reporter is None and not quiet
    if not all_tags and not raw.tag and client_lines:
        print(f"Using default tag: {raw.with_default_tag().tag}", file=out, flush=True)
    reference = raw if all_tags else raw.with_default_tag()
    store = ImageStore(paths)
    reporter = reporter_for(out, quiet) if reporter is None else reporter
    reporter.transfer_status = "Pushing"
    config = RegistryConfig.load()
    creds = credentials if credentials is not None else auth.lookup(reference.domain)
    digests = []
    try:
        # As dockerd: the repository is named first, then the local tags are looked up.
        reporter.header(f"The push refers to repository [{reference.name}]")
        tags = local_tags(store, reference, all_tags)
        with RegistryClient(config.endpoint_host(reference.domain), config, creds) as client:
            for tagged, image in tags:
                pushed = _Push(store, client, tagged, image, reporter).run()
                reporter.pushed(tagged.tag or "", pushed.digest, len(pushed.body))
                _remember(store, image, tagged, pushed.digest)
                digests.append(pushed.digest)
                from skiff.image.store import emit_image_event

                emit_image_event(paths, "push", tagged.familiar, tagged.familiar_name)
    finally:
        reporter.close()
    if quiet:
        print(str(reference), file=out, flush=True)
    return digests


def local_tags(store: ImageStore, reference: Reference, all_tags: bool) -> list[tuple[Reference, Image]]:
    """The tags to push and their images; Docker's words when there is none."""
    every = [(ref, store.get(image_id)) for ref, image_id in store.repository_tags(reference.name)]
    if not every:
        raise ImageNotFound(f"An image does not exist locally with the tag: {reference.familiar_name}")
    if all_tags:
        return every
    if not store.exists(str(reference)):
        raise ImageNotFound(f"tag does not exist: {reference.familiar}")
    return [(reference, store.get(str(reference)))]


def _remember(store: ImageStore, image: Image, tagged: Reference, digest: str) -> None:
    """The pushed manifest's digest joins the image's RepoDigests, as after Docker's push."""
    try:
        store.add_image(store.config_bytes(image.id), image.layers, [], repo_digests=[f"{tagged.name}@{digest}"])
    except SkiffError:
        pass  # the image went away meanwhile: the push itself succeeded


# --- one tag ---------------------------------------------------------------------------------------


class _Push:
    def __init__(self, store: ImageStore, client: RegistryClient, reference: Reference, image: Image,
                 reporter: Reporter) -> None:
        self.store = store
        self.client = client
        self.reference = reference
        self.repository = reference.path
        self.image = image
        self.reporter = reporter
        self.where = reference.name
        self.scope = f"repository:{self.repository}:pull,push"

    def run(self) -> Manifest:
        index = self._local_index()
        if index is None:
            return self._push_image(self.image, self.reference.tag or "latest")
        body, platforms = index
        for image in platforms:
            self._push_image(image, None)
        manifest = Manifest(body, json.loads(body).get("mediaType") or mf.OCI_INDEX)
        self._put_manifest(manifest, self.reference.tag or "latest")
        return manifest

    def _push_image(self, image: Image, tag: str | None) -> Manifest:
        """The image's layers and config, then its manifest (under ``tag``, else by digest)."""
        self._push_layers(image)
        config = self.store.config_bytes(image.id)
        self._push_blob(image.id, len(config), lambda offset, size: config[offset:offset + size], None)
        candidates = manifests_for(image, config, self._stored_manifests(image))
        for number, manifest in enumerate(candidates):
            try:
                self._put_manifest(manifest, tag or manifest.digest)
                return manifest
            except _FormatRefused:
                if number + 1 == len(candidates):
                    raise RegistryError(f"{self.where}: the registry accepts neither an OCI nor a Docker "
                                        f"schema 2 manifest for this image") from None
        raise AssertionError("unreachable")

    # --- layers --------------------------------------------------------------------------------

    def _push_layers(self, image: Image) -> None:
        layers = list(reversed(image.layers))   # Docker lists the top layer first
        for layer in layers:
            self.reporter.layer_waiting(_short(layer.diff_id), layer.blob_size)
        for layer in layers:
            self.reporter.layer_note(_short(layer.diff_id), "Preparing")
        for layer in layers[PARALLEL_UPLOADS:]:
            self.reporter.layer_note(_short(layer.diff_id), "Waiting")
        with ThreadPoolExecutor(max_workers=PARALLEL_UPLOADS, thread_name_prefix="push") as pool:
            futures = [pool.submit(self._push_layer, layer) for layer in layers]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [f for f in done if f.exception() is not None]
            if failed:
                for future in futures:
                    future.cancel()
                raise failed[0].exception()  # type: ignore[misc]

    def _push_layer(self, layer: LayerInfo) -> None:
        short = _short(layer.diff_id)
        path = self.store.blob_path(layer.digest)
        try:
            blob = open(path, "rb")
        except FileNotFoundError:
            raise RegistryError(f"layer {layer.digest} of {self.image.short_id} is missing from the local store; "
                                f"pull or load the image again") from None
        with blob:
            def read(offset: int, size: int) -> Callable[[], Iterator[bytes]]:
                return lambda: _file_range(blob, offset, size)

            status = self._push_blob(layer.digest, layer.blob_size, read, short)
        self.reporter.layer_status(short, status, final=True)

    # --- blobs ---------------------------------------------------------------------------------

    def _push_blob(self, digest: str, size: int, read: Any, short: str | None) -> str:
        """Make the repository hold the blob; the layer's final status (Docker's words)."""
        if self._blob_exists(digest):
            return "Layer already exists"
        location = None
        for source in self._mount_sources():
            mounted, location = self._try_mount(digest, source)
            if mounted:
                return f"Mounted from {source}"
            if location is not None:
                break   # the registry began an upload instead: use it
        if location is None:
            location = self._start_upload()
        if size <= MONOLITHIC_MAX:
            self._finish_upload(location, digest, read(0, size), size, short)
        else:
            self._chunked_upload(location, digest, size, read, short)
        return "Pushed"

    def _blob_exists(self, digest: str) -> bool:
        response = self.client.request("HEAD", f"{self.repository}/blobs/{digest}", self.scope)
        response.close()
        if response.status_code in (401, 403):
            raise self._error(response)
        return response.status_code == 200

    def _mount_sources(self) -> list[str]:
        """Repositories of this registry the image came from or was pushed to, other than this one."""
        sources = []
        for repo_digest in self.image.repo_digests:
            name = repo_digest.partition("@")[0]
            try:
                ref = parse_reference_raw(name)
            except SkiffError:
                continue
            if ref.domain == self.reference.domain and ref.path != self.repository and ref.path not in sources:
                sources.append(ref.path)
        return sources

    def _try_mount(self, digest: str, source: str) -> tuple[bool, str | None]:
        """(mounted, the upload's location when the registry started one instead)."""
        scope = f"{self.scope} repository:{source}:pull"
        path = f"{self.repository}/blobs/uploads/?mount={digest}&from={source}"
        response = self.client.request("POST", path, scope, {"Content-Length": "0"})
        response.close()
        if response.status_code == 201:
            return True, None
        if response.status_code == 202 and response.headers.get("location"):
            return False, self._absolute(response.headers["location"])
        return False, None

    def _start_upload(self) -> str:
        response = self.client.request("POST", f"{self.repository}/blobs/uploads/", self.scope,
                                       {"Content-Length": "0"})
        response.read()
        if response.status_code != 202 or not response.headers.get("location"):
            raise self._error(response)
        return self._absolute(response.headers["location"])

    def _finish_upload(self, location: str, digest: str, data: Content, size: int, short: str | None) -> None:
        """The closing ``PUT ?digest=`` (with the whole blob: a monolithic upload)."""
        url = str(httpx.URL(location).copy_merge_params({"digest": digest}))
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        response = self.client.request_url("PUT", url, self.scope, headers, content=self._counted(data, short))
        response.read()
        if response.status_code not in (201, 204):
            raise self._error(response)

    def _counted(self, data: Content, short: str | None) -> Content:
        """The body, its bytes reported as they go (a layer's bar)."""
        if short is None or not callable(data):
            if short is not None and isinstance(data, bytes) and data:
                self.reporter.layer_bytes(short, len(data))
            return data
        source = data

        def stream() -> Iterator[bytes]:
            for chunk in source():
                self.reporter.layer_bytes(short, len(chunk))
                yield chunk
        return stream

    def _chunked_upload(self, location: str, digest: str, size: int, read: Any, short: str | None) -> None:
        """``PATCH`` chunks with their ``Content-Range``; after a failed one, ask the registry
        how much it holds (``GET`` the upload: its ``Range``) and go on from there."""
        offset, resumes = 0, 0
        while offset < size:
            length = min(CHUNK_SIZE, size - offset)
            chunk = read(offset, length)
            headers = {"Content-Type": "application/octet-stream", "Content-Length": str(length),
                       "Content-Range": f"{offset}-{offset + length - 1}"}
            try:
                response = self.client.request_url("PATCH", location, self.scope, headers,
                                                   content=self._counted(chunk, short))
                response.read()
                if response.status_code != 202:
                    raise self._error(response)
            except RegistryAuthError:
                raise
            except RegistryError:
                resumes += 1
                if resumes > RESUMES:
                    raise
                offset = self._upload_offset(location)
                continue
            location = self._absolute(response.headers.get("location") or location)
            offset += length
        self._finish_upload(location, digest, b"", 0, None)

    def _upload_offset(self, location: str) -> int:
        """How many bytes of the upload the registry holds (its ``Range: 0-N``)."""
        response = self.client.request_url("GET", location, self.scope)
        response.read()
        if response.status_code not in (202, 204):
            raise self._error(response)
        text = response.headers.get("range", "")
        _, _, end = text.partition("-")
        return int(end) + 1 if end.isdigit() else 0

    def _absolute(self, location: str) -> str:
        return str(httpx.URL(self.client.base_url).join(location))

    # --- manifests -----------------------------------------------------------------------------

    def _put_manifest(self, manifest: Manifest, reference: str) -> None:
        response = self.client.request("PUT", f"{self.repository}/manifests/{reference}", self.scope,
                                       {"Content-Type": manifest.media_type}, content=manifest.body)
        response.read()
        if response.status_code in (200, 201):
            return
        codes, _ = _error_codes(response)
        if response.status_code == 415 or (response.status_code == 400 and codes & {"MANIFEST_INVALID",
                                                                                  "UNSUPPORTED"}):
            raise _FormatRefused()
        raise self._error(response)

    def _stored_manifests(self, image: Image) -> list[bytes]:
        found = []
        for digest in self.store.extra_blobs(image.id):
            try:
                found.append(self.store.blob_path(digest).read_bytes())
            except (OSError, SkiffError):
                continue
        return found

    def _local_index(self) -> tuple[bytes, list[Image]] | None:
        """The index the image was pulled from, with the local image of each of its platforms,
        when the store holds every one (else None: the image alone is pushed)."""
        by_manifest: dict[str, Image] = {}
        index_body = None
        for image in self.store.list():
            for body in self._stored_manifests(image):
                digest = f"sha256:{hashlib.sha256(body).hexdigest()}"
                try:
                    data = json.loads(body)
                except ValueError:
                    continue
                if not isinstance(data, dict):
                    continue
                if "manifests" in data:
                    if image.id == self.image.id:
                        index_body = body
                elif describes(data, image):
                    by_manifest[digest] = image
        if index_body is None:
            return None
        entries = json.loads(index_body).get("manifests") or []
        digests = [str(e.get("digest")) for e in entries if isinstance(e, dict)]
        if len(digests) < 2 or any(d not in by_manifest for d in digests):
            return None
        return index_body, [by_manifest[d] for d in digests]

    def _error(self, response: httpx.Response) -> RegistryError:
        codes, text = _error_codes(response)
        status = response.status_code
        if status in (401, 403) or codes & {"DENIED", "UNAUTHORIZED"}:
            if not codes:
                text = "requested access to the resource is denied"
            return RegistryAuthError(text if codes else f"denied: {text}")
        return RegistryError(f"{self.client.host} answered {status} to a push to {self.where}: {text}")


class _FormatRefused(Exception):
    """The registry does not take this manifest's media type."""


# --- which manifest ----------------------------------------------------------------------------


def describes(manifest: dict[str, Any], image: Image) -> bool:
    """Whether a stored manifest is the image's: its config and its layers, in order."""
    config = manifest.get("config")
    layers = manifest.get("layers")
    if not isinstance(config, dict) or not isinstance(layers, list):
        return False
    return config.get("digest") == image.id and \
        [layer.get("digest") for layer in layers if isinstance(layer, dict)] == [l.digest for l in image.layers]


def manifests_for(image: Image, config: bytes, stored: list[bytes]) -> list[Manifest]:
    """The manifests to offer, best first: the one the image came with, then one written in the
    family of its layers' media types, then the other family."""
    offers: list[Manifest] = []
    for body in stored:
        try:
            data = json.loads(body)
        except ValueError:
            continue
        if isinstance(data, dict) and describes(data, image):
            kind = data.get("mediaType") or mf.OCI_MANIFEST
            if kind in mf.IMAGE_TYPES:
                offers.append(Manifest(body, kind))
                break
    docker_layers = all(layer.media_type in TO_OCI for layer in image.layers) and bool(image.layers)
    families = ["docker", "oci"] if docker_layers else ["oci", "docker"]
    for family in families:
        built = build_manifest(image, config, family)
        if built is not None and all(built.body != offer.body for offer in offers):
            offers.append(built)
    return offers


def build_manifest(image: Image, config: bytes, family: str) -> Manifest | None:
    """An image manifest for the stored blobs; None when a layer has no media type in ``family``."""
    convert = TO_DOCKER if family == "docker" else TO_OCI
    layers = []
    for layer in image.layers:
        media = layer.media_type if layer.media_type in convert.values() else convert.get(layer.media_type)
        if media is None:
            return None
        layers.append({"mediaType": media, "size": layer.blob_size, "digest": layer.digest})
    kind = mf.DOCKER_MANIFEST if family == "docker" else mf.OCI_MANIFEST
    document = {"schemaVersion": 2, "mediaType": kind,
                "config": {"mediaType": DOCKER_CONFIG if family == "docker" else OCI_CONFIG,
                           "size": len(config), "digest": image.id},
                "layers": layers}
    # Docker's own manifests are indented by three spaces; any JSON will do, this one is Docker's.
    return Manifest(json.dumps(document, indent=3).encode(), kind)


def _file_range(blob: IO[bytes], offset: int, size: int) -> Iterator[bytes]:
    """``size`` bytes of an open file from ``offset``, read as they are sent."""
    position = offset
    left = size
    while left > 0:
        data = os.pread(blob.fileno(), min(READ_SIZE, left), position)
        if not data:
            raise RegistryError(f"{getattr(blob, 'name', 'a blob')} is shorter than its record says")
        position += len(data)
        left -= len(data)
        yield data


def _short(digest: str) -> str:
    """Docker's push names a layer by its diff_id, cut to 12."""
    return digest.partition(":")[2][:12]
