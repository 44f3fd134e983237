"""``skiff pull``: resolve a reference to a manifest, fetch config and layers, record the image.

Layers are fetched by a small pool of threads: each streams its blob through a
``BlobReader`` (size and digest checked on the fly) into
``ImageStore.add_layer``, which unpacks it while other layers still download.
A layer whose diff_id is already unpacked is never fetched again. Nothing
becomes visible in the store before every digest has matched.
"""

from __future__ import annotations

import json
import sys
import threading
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, TextIO

from skiff.errors import ImageNotFound, InvalidArgument, RegistryError, SkiffError
from skiff.image.reference import Reference, parse_reference, parse_reference_raw
from skiff.image.store import Image, ImageStore, LayerInfo
from skiff.paths import Paths
from skiff.registry import auth
from skiff.registry import manifest as mf
from skiff.registry.client import BlobReader, RegistryClient
from skiff.registry.config import DOCKER_HUB, RegistryConfig
from skiff.registry.progress import Reporter, reporter_for

PARALLEL_LAYERS = 3
PULL_POLICIES = ("missing", "always", "never")


@dataclass
class Endpoint:
    host: str                  # the registry host spoken to
    base_url: str | None       # set for mirrors, else found by ping
    is_mirror: bool = False


def pull(paths: Paths, ref: str, platform: str | None = None, quiet: bool = False,
         out: TextIO | None = None, reporter: Reporter | None = None,
         credentials: auth.Credentials | None = None) -> Image:
    """Pull ``ref`` into the local store and print Docker's report to ``out``; returns the image.

    With ``reporter`` (the Engine API's), the progress goes there only, as Docker's daemon sends
    it: the default-tag note and the reference at the end are its client's lines, not the daemon's.
    ``credentials``: the registry's (the API client's X-Registry-Auth), instead of the stored ones.
    """
    out = sys.stdout if out is None else out
    raw = parse_reference_raw(ref)
    client_lines = reporter is None and not quiet
    reporter = reporter_for(out, quiet) if reporter is None else reporter
    if not raw.tag and not raw.digest and client_lines:
        reporter.line(f"Using default tag: {raw.with_default_tag().tag}")
    reference = raw.with_default_tag()
    wanted = mf.parse_platform(platform) if platform else mf.host_platform()
    config = RegistryConfig.load()
    try:
        image, status = _pull_from_endpoints(paths, reference, wanted, platform is not None, config, reporter,
                                             credentials)
    finally:
        reporter.close()
    reporter.line(f"Digest: {status.digest}")
    verdict = "Image is up to date for" if status.up_to_date else "Downloaded newer image for"
    reporter.line(f"Status: {verdict} {reference.familiar}")
    if client_lines or quiet:
        print(str(reference), file=out, flush=True)
    from skiff.image.store import emit_image_event

    # Docker's pull event: the reference pulled as its ID, the repository as its name.
    emit_image_event(paths, "pull", reference.familiar, reference.familiar_name)
    return image


def ensure_image(paths: Paths, ref: str, policy: str = "missing", platform: str | None = None,
                 quiet: bool = False, out: TextIO | None = None) -> Image:
    """The image ``skiff run`` needs, pulled according to ``--pull missing|always|never``."""
    out = sys.stderr if out is None else out
    if policy not in PULL_POLICIES:
        raise InvalidArgument(f"invalid pull policy {policy!r}: use one of {', '.join(PULL_POLICIES)}")
    store = ImageStore(paths)
    if policy != "always" and store.exists(ref):
        return store.get(ref)
    try:
        familiar = parse_reference(ref).familiar
    except SkiffError:
        raise ImageNotFound(f"No such image: {ref}") from None
    if policy == "never":
        raise ImageNotFound(f"Unable to find image '{familiar}' locally", hint="--pull never forbids pulling")
    if policy == "missing" and not quiet:
        print(f"Unable to find image '{familiar}' locally", file=out, flush=True)
    return pull(paths, ref, platform=platform, quiet=quiet, out=out)


# --- orchestration ----------------------------------------------------------------


@dataclass
class _Outcome:
    digest: str
    up_to_date: bool


def _endpoints(reference: Reference, config: RegistryConfig) -> list[Endpoint]:
    main = Endpoint(config.endpoint_host(reference.domain), None)
    if reference.domain != DOCKER_HUB:
        return [main]
    import httpx

    mirrors = [Endpoint(httpx.URL(m).netloc.decode(), m, True) for m in config.mirrors]
    return [*mirrors, main]


def _pull_from_endpoints(paths: Paths, reference: Reference, wanted: mf.Platform, explicit_platform: bool,
                         config: RegistryConfig, reporter: Reporter,
                         credentials: auth.Credentials | None = None) -> tuple[Image, _Outcome]:
    endpoints = _endpoints(reference, config)
    for endpoint in endpoints:
        # Given credentials are the registry's own, never a mirror's.
        creds = credentials if credentials is not None and not endpoint.is_mirror else \
            auth.lookup(reference.domain if not endpoint.is_mirror else endpoint.host)
        with RegistryClient(endpoint.host, config, creds, base_url=endpoint.base_url) as client:
            try:
                return _Pull(ImageStore(paths), client, reference, wanted, explicit_platform, reporter).run()
            except RegistryError:
                # A mirror that fails is skipped, as Docker does; the last endpoint's error is the user's.
                if endpoint is endpoints[-1]:
                    raise
    raise AssertionError("unreachable")


class _Pull:
    def __init__(self, store: ImageStore, client: RegistryClient, reference: Reference, wanted: mf.Platform,
                 explicit_platform: bool, reporter: Reporter) -> None:
        self.store = store
        self.client = client
        self.reference = reference
        self.repository = reference.path
        self.wanted = wanted
        self.explicit_platform = explicit_platform
        self.reporter = reporter
        self.where = f"{reference.domain}/{reference.path}"
        self.abort = threading.Event()
        self.downloaded_any = False

    def run(self) -> tuple[Image, _Outcome]:
        previous = self._current_id()
        digest, manifest_json, manifest_blobs = self._resolve_manifest()
        # After the manifest, as Docker: a missing image fails before any progress (the API's 404).
        self.reporter.pulling(self.reference.tag or self.reference.digest or "", self.reference.path)
        image_manifest = mf.image_manifest(manifest_json, self.where)
        config_bytes = self.client.get_blob_bytes(self.repository, image_manifest.config.digest,
                                                  image_manifest.config.size)
        diff_ids = self._diff_ids(config_bytes, len(image_manifest.layers))
        layers = self._fetch_layers(image_manifest.layers, diff_ids)
        extra = [self.store.put_blob(blob) for blob in manifest_blobs]
        tags = [self.reference] if self.reference.tag else []
        image = self.store.add_image(config_bytes, layers, tags, extra_blobs=extra,
                                     repo_digests=[f"{self.reference.name}@{digest}"])
        return image, _Outcome(digest, previous == image.id and not self.downloaded_any)

    def _current_id(self) -> str | None:
        try:
            return self.store.get(str(self.reference)).id
        except SkiffError:
            return None

    def _resolve_manifest(self) -> tuple[str, dict[str, Any], list[bytes]]:
        """(digest of what the reference names, the image manifest, the manifest blobs to keep)."""
        name = self.reference.digest or self.reference.tag or "latest"
        body, media_type, digest = self.client.get_manifest(self.repository, name, mf.ACCEPT)
        if self.reference.digest and digest != self.reference.digest:
            raise RegistryError(f"manifest of {self.where}@{self.reference.digest} does not match its digest: "
                                f"it hashes to {digest}")
        data = mf.decode(body, media_type, f"{self.where}:{name}")
        if data["mediaType"] not in mf.INDEX_TYPES:
            return digest, data, [body]
        chosen = mf.choose(data, self.wanted, f"{self.where}:{name}")
        sub_body, sub_type, sub_digest = self.client.get_manifest(self.repository, chosen.digest, mf.ACCEPT)
        if sub_digest != chosen.digest:
            raise RegistryError(f"manifest {chosen.digest} of {self.where} does not match its digest: "
                                f"it hashes to {sub_digest}")
        sub = mf.decode(sub_body, sub_type or chosen.media_type, f"{self.where}@{chosen.digest}")
        if sub["mediaType"] in mf.INDEX_TYPES:
            raise RegistryError(f"{self.where}@{chosen.digest}: nested manifest lists are not supported")
        return digest, sub, [body, sub_body]

    def _diff_ids(self, config_bytes: bytes, layer_count: int) -> list[str]:
        try:
            config = json.loads(config_bytes)
            diff_ids = list(config["rootfs"]["diff_ids"])
        except (ValueError, KeyError, TypeError):
            raise RegistryError(f"{self.where}: the image config is not valid JSON with rootfs.diff_ids") from None
        if len(diff_ids) != layer_count:
            raise RegistryError(f"{self.where}: the manifest has {layer_count} layers but the config lists "
                                f"{len(diff_ids)} diff_ids")
        if self.explicit_platform:
            found = mf.Platform(str(config.get("os", "")), str(config.get("architecture", "")),
                                config.get("variant") or None)
            if (found.os, found.architecture) != (self.wanted.os, self.wanted.architecture):
                raise RegistryError(f"image {self.where} is for {found}, not the requested platform {self.wanted}")
        return diff_ids

    # --- layers -----------------------------------------------------------------

    def _fetch_layers(self, descriptors: list[mf.Descriptor], diff_ids: list[str]) -> list[LayerInfo]:
        for desc in descriptors:
            self.reporter.layer_waiting(_short(desc.digest), desc.size)
        # Largest blobs first: the pull lasts as long as its slowest layer, so that one must not
        # wait for a free worker behind small ones. Results stay in manifest order.
        order = sorted(range(len(descriptors)), key=lambda i: descriptors[i].size, reverse=True)
        with ThreadPoolExecutor(max_workers=PARALLEL_LAYERS, thread_name_prefix="layer") as pool:
            submitted = {i: pool.submit(self._fetch_layer, descriptors[i], diff_ids[i]) for i in order}
            futures: list[Future[LayerInfo]] = [submitted[i] for i in range(len(descriptors))]
            try:
                done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            except BaseException:
                # Ctrl-C: stop the other downloads at their next chunk instead of waiting for them.
                self.abort.set()
                for future in futures:
                    future.cancel()
                raise
            failed = [f for f in done if f.exception() is not None]
            if failed:
                self.abort.set()
                for future in futures:
                    future.cancel()
                wait(futures)
                # The first layer that failed for its own reason, not one stopped by the abort.
                errors = [f.exception() for f in futures if not f.cancelled() and f.exception() is not None]
                real = [e for e in errors if not isinstance(e, _Aborted)]
                raise (real or errors)[0]  # type: ignore[misc]
            return [f.result() for f in futures]

    def _fetch_layer(self, desc: mf.Descriptor, diff_id: str) -> LayerInfo:
        short = _short(desc.digest)
        present = self.store.find_layer(diff_id, desc.digest)
        if present is not None:
            self.reporter.layer_status(short, "Already exists", final=True)
            return present
        self.downloaded_any = True

        received = 0

        def progress(count: int) -> None:
            nonlocal received
            if self.abort.is_set():
                raise _Aborted("pull aborted: another layer failed")
            received += count
            self.reporter.layer_bytes(short, count)
            if received == desc.size:
                self.reporter.layer_status(short, "Extracting")

        reader = BlobReader(self.client, self.repository, desc.digest, desc.size, progress)
        try:
            info = self.store.add_layer(reader, expected_digest=desc.digest, expected_diff_id=diff_id,
                                        media_type=desc.media_type)
        except SkiffError as exc:
            if isinstance(exc, RegistryError):
                raise
            raise RegistryError(f"layer {desc.digest} of {self.where}: {exc}") from None
        finally:
            reader.close()
        self.reporter.layer_status(short, "Pull complete", final=True)
        return info


class _Aborted(RegistryError):
    """A layer download stopped because another one failed."""


def _short(digest: str) -> str:
    return digest.partition(":")[2][:12]
