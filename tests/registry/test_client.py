"""The distribution client against scripted registries (httpx.MockTransport): faults a real one won't produce."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import httpx
import pytest

from skiff.errors import RegistryAuthError, RegistryError
from skiff.paths import Paths
from skiff.registry import auth
from skiff.registry import manifest as mf
from skiff.registry.client import RegistryClient
from skiff.registry.config import RegistryConfig
from skiff.registry.progress import Reporter

Handler = Callable[[httpx.Request], httpx.Response]


def _client(handler: Handler, **kwargs: object) -> RegistryClient:
    config = RegistryConfig(certs_d=Path("/nonexistent"))
    return RegistryClient("registry.test", config, transport=httpx.MockTransport(handler),
                          backoff_s=0.01, **kwargs)  # type: ignore[arg-type]


def _sha(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def test_parse_challenge() -> None:
    c = auth.parse_challenge('Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull,push"')
    assert c == auth.Challenge("bearer", {"realm": "https://auth.example/token", "service": "reg",
                                          "scope": "repository:a/b:pull,push"})
    assert auth.parse_challenge('Basic realm="x"') == auth.Challenge("basic", {"realm": "x"})
    assert auth.parse_challenge("") is None


def test_registry_names_normalise_like_docker() -> None:
    assert auth.normalize_registry("https://index.docker.io/v1/") == "docker.io"
    assert auth.normalize_registry("registry-1.docker.io") == "docker.io"
    assert auth.normalize_registry("https://myhost:5000/v2/") == "myhost:5000"
    assert auth.auth_key("docker.io") == "https://index.docker.io/v1/"


@pytest.mark.parametrize("body, media_type, message", [
    (b"<html>not json</html>", mf.OCI_MANIFEST, "not valid JSON"),
    (b'{"schemaVersion": 1, "fsLayers": []}', "", "schema 1"),
    (b"{}", "application/vnd.docker.distribution.manifest.v1+prettyjws", "schema 1"),
    (b'{"schemaVersion": 2}', "application/vnd.cncf.helm.chart.content.v1.tar+gzip", "unsupported manifest media type"),
])
def test_manifests_skiff_cannot_pull_are_refused(body: bytes, media_type: str, message: str) -> None:
    with pytest.raises(RegistryError, match=message):
        mf.decode(body, media_type, "registry.test/x:1")


def test_artifact_config_and_unknown_layer_types_are_refused() -> None:
    config = {"mediaType": "application/vnd.cncf.helm.config.v1+json", "digest": "sha256:" + "a" * 64, "size": 1}
    with pytest.raises(RegistryError, match="not a container image config"):
        mf.image_manifest({"config": config, "layers": []}, "x")
    config["mediaType"] = mf.CONFIG_TYPES[0]
    layer = {"mediaType": "application/x-weird", "digest": "sha256:" + "b" * 64, "size": 1}
    with pytest.raises(RegistryError, match="unsupported layer media type"):
        mf.image_manifest({"config": config, "layers": [layer]}, "x")


def test_platform_choice_with_variants() -> None:
    def entry(arch: str, variant: str | None = None) -> dict[str, object]:
        platform = {"os": "linux", "architecture": arch, **({"variant": variant} if variant else {})}
        return {"mediaType": mf.OCI_MANIFEST, "digest": _sha(f"{arch}{variant}".encode()), "size": 1,
                "platform": platform}

    index = {"manifests": [entry("amd64"), entry("arm", "v6"), entry("arm", "v7"), entry("arm64")]}
    assert mf.choose(index, mf.Platform("linux", "arm", "v7"), "x").platform == mf.Platform("linux", "arm", "v7")
    assert mf.choose(index, mf.Platform("linux", "arm64", "v8"), "x").platform == mf.Platform("linux", "arm64")
    assert mf.choose(index, mf.parse_platform("linux/amd64"), "x").platform == mf.Platform("linux", "amd64")
    with pytest.raises(RegistryError, match="no matching manifest for linux/arm/v5"):
        mf.choose(index, mf.Platform("linux", "arm", "v5"), "x")
    with pytest.raises(Exception, match="invalid platform"):
        mf.parse_platform("linux")


def test_5xx_and_connection_errors_are_retried() -> None:
    calls = {"n": 0}
    body = json.dumps({"schemaVersion": 2, "mediaType": mf.OCI_MANIFEST}).encode()

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if request.url.path == "/v2/":
            return httpx.Response(200)
        if calls["n"] == 2:
            raise httpx.ConnectError("connection refused")
        if calls["n"] == 3:
            return httpx.Response(503)
        return httpx.Response(200, content=body, headers={"Content-Type": mf.OCI_MANIFEST})

    with _client(handler) as client:
        got, media_type, digest = client.get_manifest("x", "1", mf.ACCEPT)
    assert (got, media_type, digest) == (body, mf.OCI_MANIFEST, _sha(body))
    assert calls["n"] == 4


def test_bearer_tokens_are_cached_per_scope_and_renewed(monkeypatch: pytest.MonkeyPatch) -> None:
    issued: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.test":
            issued.append(request.url.params["scope"])
            return httpx.Response(200, json={"token": f"t{len(issued)}", "expires_in": 60})
        challenge = 'Bearer realm="https://auth.test/token",service="reg"'
        if request.headers.get("authorization", "").startswith("Bearer t"):
            return httpx.Response(200, content=b"{}", headers={"Content-Type": mf.OCI_MANIFEST})
        return httpx.Response(401, headers={"WWW-Authenticate": challenge})

    with _client(handler) as client:
        client.get_manifest("a", "1", mf.ACCEPT)
        client.get_manifest("a", "2", mf.ACCEPT)
        client.get_manifest("b", "1", mf.ACCEPT)
        assert issued == ["repository:a:pull", "repository:b:pull"]
        real_monotonic = time.monotonic
        monkeypatch.setattr(time, "monotonic", lambda: real_monotonic() + 3600)
        client.get_manifest("a", "3", mf.ACCEPT)
    assert issued == ["repository:a:pull", "repository:b:pull", "repository:a:pull"]


def test_denied_scope_and_bad_password_are_auth_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.test":
            if request.headers.get("authorization"):
                return httpx.Response(401, json={"details": "bad password"})
            return httpx.Response(200, json={"token": "anonymous"})
        challenge = 'Bearer realm="https://auth.test/token",service="reg",error="insufficient_scope"'
        return httpx.Response(401, headers={"WWW-Authenticate": challenge},
                              json={"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]})

    with _client(handler) as client, pytest.raises(RegistryAuthError, match="pull access denied for registry.test/x"):
        client.get_manifest("x", "1", mf.ACCEPT)
    with _client(handler, credentials=auth.Credentials("u", "bad")) as client, \
            pytest.raises(RegistryAuthError, match="incorrect username or password"):
        client.get_manifest("x", "1", mf.ACCEPT)


def test_a_manifest_that_is_not_json_stores_nothing(tmp_path: Path) -> None:
    from skiff.image.reference import parse_reference
    from skiff.image.store import ImageStore
    from skiff.registry.puller import _Pull

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/":
            return httpx.Response(200)
        return httpx.Response(200, content=b"garbage{", headers={"Content-Type": mf.OCI_MANIFEST})

    paths = Paths(tmp_path / "root", tmp_path / "run")
    store = ImageStore(paths)
    with _client(handler) as client, pytest.raises(RegistryError, match="not valid JSON"):
        _Pull(store, client, parse_reference("registry.test/x:1"), mf.host_platform(), False, Reporter()).run()
    assert store.list() == []


def test_a_manifest_pulled_by_digest_is_verified(tmp_path: Path) -> None:
    from skiff.image.reference import parse_reference
    from skiff.image.store import ImageStore
    from skiff.registry.puller import _Pull

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/":
            return httpx.Response(200)
        return httpx.Response(200, content=b'{"schemaVersion": 2, "layers": []}',
                              headers={"Content-Type": mf.OCI_MANIFEST})

    ref = parse_reference(f"registry.test/x@sha256:{'1' * 64}")
    paths = Paths(tmp_path / "root", tmp_path / "run")
    with _client(handler) as client, pytest.raises(RegistryError, match="does not match its digest"):
        _Pull(ImageStore(paths), client, ref, mf.host_platform(), False, Reporter()).run()


def test_skiff_run_path_does_not_import_httpx_or_rich(tmp_path: Path, busybox_tar: Path) -> None:
    """ensure_image with a local image (the `skiff run` hot path) stays free of the registry's heavy imports."""
    code = f"""
import sys
from pathlib import Path
from skiff.paths import Paths
from skiff.image.store import ImageStore
paths = Paths(Path({str(tmp_path / 'root')!r}), Path({str(tmp_path / 'run')!r}))
with open({str(busybox_tar)!r}, 'rb') as f:
    ImageStore(paths).import_tarball(f, 'busybox:latest')
for name in [m for m in sys.modules if m.startswith(('httpx', 'rich', 'httpcore'))]:
    del sys.modules[name]
import skiff.registry
image = skiff.registry.ensure_image(paths, 'busybox')
heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('httpx', 'rich', 'httpcore', 'h11'))
print(image.repo_tags, heavy)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['busybox:latest'] []"
