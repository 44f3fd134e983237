"""Pulls from a plain-HTTP distribution registry: formats, platforms, layers, faults."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import Skiff
from tests.registry import servers
from tests.registry.conftest import write_registries
from tests.registry.images import Layout, entry, hostile_tar, multi_layer_tars, push, tar_bytes


def _insecure(skiff: Skiff, registry: servers.Registry) -> None:
    write_registries(skiff.env, insecure=[registry.host])


def test_pull_oci_prints_docker_report_then_up_to_date(rskiff: Skiff, http_registry: servers.Registry,
                                                        pushed_busybox: str) -> None:
    _insecure(rskiff, http_registry)
    out = rskiff.ok("pull", pushed_busybox).splitlines()
    assert out[0] == "oci: Pulling from busybox"
    assert out[-3].startswith("Digest: sha256:")
    assert out[-2] == f"Status: Downloaded newer image for {pushed_busybox}"
    assert out[-1] == pushed_busybox
    assert any(line.endswith(": Pull complete") for line in out)
    digest = out[-3].removeprefix("Digest: ")

    again = rskiff.ok("pull", pushed_busybox).splitlines()
    assert again[-2] == f"Status: Image is up to date for {pushed_busybox}"
    assert any(line.endswith(": Already exists") for line in again)

    info = json.loads(rskiff.ok("image", "inspect", pushed_busybox))[0]
    assert info["RepoDigests"] == [f"{http_registry.host}/busybox@{digest}"]
    assert info["Config"]["Cmd"] == ["sh"]
    assert digest in rskiff.ok("images", "--digests")
    assert rskiff.ok("pull", "-q", f"{http_registry.host}/busybox@{digest}").strip() == \
        f"{http_registry.host}/busybox@{digest}"
    assert rskiff.ok("run", "--rm", pushed_busybox, "echo", "pulled and ran").strip() == "pulled and ran"


def test_pull_docker_schema2_and_zstd_layers(rskiff: Skiff, http_registry: servers.Registry,
                                              busybox_layout: Layout, busybox_tar: Path, tmp_path: Path) -> None:
    _insecure(rskiff, http_registry)
    v2s2 = f"{http_registry.host}/busybox:v2s2"
    zstd = f"{http_registry.host}/busybox:zstd"
    push(busybox_layout.path, "busybox", v2s2, "--dest-tls-verify=false", "--format", "v2s2")
    layout = Layout(tmp_path / "zstd")
    desc, _ = layout.image([busybox_tar.read_bytes(), tar_bytes([entry("plain", data=b"uncompressed\n")])],
                           compression="zstd")
    layout.tag("zstd", [desc])
    push(layout.path, "zstd", zstd, "--dest-tls-verify=false", "--format", "oci")
    manifest = json.loads(_registry_manifest(http_registry, "busybox", "zstd"))
    assert manifest["layers"][0]["mediaType"].endswith("+zstd")
    assert json.loads(_registry_manifest(http_registry, "busybox", "v2s2"))["mediaType"].endswith("manifest.v2+json")

    rskiff.ok("pull", v2s2)
    assert rskiff.ok("run", "--rm", v2s2, "busybox", "true") == ""
    # A fresh store, so that the zstd blob is really fetched and unpacked.
    fresh = Skiff({**rskiff.env, "SKIFF_ROOT": str(tmp_path / "root2")})
    out = fresh.ok("pull", zstd)
    assert "Pull complete" in out
    info = json.loads(fresh.ok("image", "inspect", zstd))[0]
    assert info["RootFS"]["Layers"][0] == json.loads(rskiff.ok("image", "inspect", v2s2))[0]["RootFS"]["Layers"][0]
    # This root has no test network config: --network none keeps the host's default bridge untouched.
    assert fresh.ok("run", "--rm", "--network", "none", zstd, "cat", "/plain") == "uncompressed\n"


def test_multi_arch_index_chooses_platform(rskiff: Skiff, http_registry: servers.Registry, busybox_tar: Path,
                                           tmp_path: Path) -> None:
    _insecure(rskiff, http_registry)
    layout = Layout(tmp_path / "multi")
    amd64, amd = layout.image([busybox_tar.read_bytes(), tar_bytes([entry("arch", data=b"amd64\n")])])
    arm64, arm = layout.image([tar_bytes([entry("arch", data=b"arm64\n")])], arch="arm64", variant="v8")
    layout.tag("multi", [amd64, arm64], as_index=True)
    ref = f"{http_registry.host}/multi:latest"
    push(layout.path, "multi", ref, "--dest-tls-verify=false", all_images=True)

    rskiff.ok("pull", "--platform", "linux/arm64", ref)
    assert json.loads(rskiff.ok("image", "inspect", ref))[0]["Architecture"] == "arm64"
    bad = rskiff("pull", "--platform", "linux/s390x", ref)
    assert bad.returncode == 1 and "no matching manifest for linux/s390x" in bad.stderr
    if os.uname().machine == "x86_64":
        rskiff.ok("pull", ref)
        assert json.loads(rskiff.ok("image", "inspect", ref))[0]["Id"] == amd.config_digest
        assert rskiff.ok("run", "--rm", ref, "cat", "/arch") == "amd64\n"
    assert arm.config_digest != amd.config_digest


def test_multi_layer_image_with_whiteouts_links_and_owners(rskiff: Skiff, http_registry: servers.Registry,
                                                           busybox_tar: Path, tmp_path: Path) -> None:
    _insecure(rskiff, http_registry)
    layout = Layout(tmp_path / "layers")
    desc, _ = layout.image([busybox_tar.read_bytes(), *multi_layer_tars()])
    layout.tag("layers", [desc])
    ref = f"{http_registry.host}/layers:1"
    push(layout.path, "layers", ref, "--dest-tls-verify=false", "--format", "v2s2")
    rskiff.ok("pull", ref)

    script = ("echo $(ls /data); echo $(ls /data/replaced); stat -c '%u:%g %a' /data/owned; readlink /data/link;"
              " stat -c %i /data/owned /data/hard")
    out = rskiff.ok("run", "--rm", ref, "sh", "-c", script).splitlines()
    assert out[0].split() == ["hard", "link", "owned", "replaced"]
    assert out[1] == "new"
    assert out[2] == "1000:1000 640"
    assert out[3] == "owned"
    assert out[4] == out[5]


def test_hostile_image_is_refused_and_nothing_escapes(rskiff: Skiff, http_registry: servers.Registry,
                                                      tmp_path: Path) -> None:
    _insecure(rskiff, http_registry)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("host secret\n")
    before = sorted(p.name for p in outside.iterdir())
    layout = Layout(tmp_path / "hostile")
    desc, _ = layout.image([hostile_tar(outside)])
    layout.tag("hostile", [desc])
    ref = f"{http_registry.host}/hostile:1"
    push(layout.path, "hostile", ref, "--dest-tls-verify=false")

    proc = rskiff("pull", ref)
    assert sorted(p.name for p in outside.iterdir()) == before
    assert (outside / "secret").read_text() == "host secret\n"
    if proc.returncode == 0:  # contained: every entry landed inside the layer
        info = json.loads(rskiff.ok("image", "inspect", ref))[0]
        assert info["RootFS"]["Layers"]
    else:
        assert proc.returncode == 1 and "refusing" in proc.stderr, proc.stderr
        assert rskiff("image", "inspect", ref).returncode == 1
        _assert_nothing_stored(rskiff)


def test_corrupt_blob_is_rejected_and_nothing_stored(rskiff: Skiff, tmp_path: Path, busybox_tar: Path) -> None:
    registry = servers.start_registry(tmp_path / "registry")
    try:
        write_registries(rskiff.env, insecure=[registry.host])
        layout = Layout(tmp_path / "oci")
        desc, built = layout.image([busybox_tar.read_bytes()])
        layout.tag("bb", [desc])
        ref = f"{registry.host}/corrupt:1"
        push(layout.path, "bb", ref, "--dest-tls-verify=false")
        manifest = json.loads(_registry_manifest(registry, "corrupt", "1"))
        blob = registry.blob_file(manifest["layers"][0]["digest"])
        data = bytearray(blob.read_bytes())
        data[len(data) // 2] ^= 0xFF
        blob.write_bytes(bytes(data))

        proc = rskiff("pull", ref)
        assert proc.returncode == 1
        assert "does not match its digest" in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
        _assert_nothing_stored(rskiff)

        blob.write_bytes(bytes(data[: len(data) // 3]))
        proc = rskiff("pull", ref)
        assert proc.returncode == 1 and "truncated" in proc.stderr, proc.stderr
        _assert_nothing_stored(rskiff)
    finally:
        registry.stop()


def test_proxy_is_used_cut_downloads_resume_and_flipped_bytes_are_rejected(
        rskiff: Skiff, http_registry: servers.Registry, pushed_busybox: str) -> None:
    _insecure(rskiff, http_registry)
    env = {**rskiff.env, "HTTP_PROXY": "", "NO_PROXY": ""}
    proxy = servers.Proxy(cut_after=100_000).start()
    try:
        env["HTTP_PROXY"] = proxy.url
        out = Skiff(env).ok("pull", pushed_busybox)
        assert "Downloaded newer image" in out
        assert any("/blobs/" in path for path in proxy.seen)
        # The cut transfer was resumed where it stopped, not restarted.
        assert proxy.ranges and all(0 < int(r.removeprefix("bytes=").rstrip("-")) <= 100_000
                                    for r in proxy.ranges), proxy.ranges
    finally:
        proxy.stop()

    def flip(path: str, body: bytes) -> bytes:
        return body[:-1] + bytes([body[-1] ^ 1]) if len(body) > 1000 else body

    fresh_root = Path(env["SKIFF_ROOT"]).parent / "root-flip"
    proxy = servers.Proxy(mangle=flip).start()
    try:
        env.update(HTTP_PROXY=proxy.url, SKIFF_ROOT=str(fresh_root))
        proc = Skiff(env)("pull", pushed_busybox)
        assert proc.returncode == 1 and "does not match its digest" in proc.stderr, proc.stderr
        _assert_nothing_stored(Skiff(env))
    finally:
        proxy.stop()


def test_bad_references_and_unreachable_registry(rskiff: Skiff, http_registry: servers.Registry,
                                                 pushed_busybox: str) -> None:
    _insecure(rskiff, http_registry)
    host = http_registry.host
    cases = {
        f"{host}/no-such-repo:1": "not found",
        f"{host}/busybox:no-such-tag": "manifest for",
        f"{host}/busybox@sha256:{'0' * 64}": "not found",
        f"127.0.0.1:{servers.free_port()}/busybox:1": "cannot reach registry",
    }
    for ref, message in cases.items():
        proc = rskiff("pull", ref)
        assert proc.returncode == 1, (ref, proc.stderr)
        assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, (ref, proc.stderr)
    proc = rskiff("pull", "Not/A Reference")
    assert proc.returncode == 1 and "invalid reference format" in proc.stderr
    # Not insecure: HTTPS to a plain-HTTP registry fails with a clear line.
    write_registries(rskiff.env)
    proc = rskiff("pull", pushed_busybox)
    assert proc.returncode == 1 and "cannot reach registry" in proc.stderr
    _assert_nothing_stored(rskiff)


def test_docker_hub_references_go_to_the_configured_mirror(rskiff: Skiff, http_registry: servers.Registry,
                                                           busybox_layout: Layout) -> None:
    push(busybox_layout.path, "busybox", f"{http_registry.host}/library/mirrored:latest", "--dest-tls-verify=false")
    write_registries(rskiff.env, insecure=[http_registry.host], mirrors=[f"http://{http_registry.host}"])
    out = rskiff.ok("pull", "mirrored").splitlines()
    assert out[0] == "Using default tag: latest"
    assert out[1] == "latest: Pulling from library/mirrored"
    assert out[-2] == "Status: Downloaded newer image for mirrored:latest"
    assert out[-1] == "docker.io/library/mirrored:latest"
    assert "mirrored" in rskiff.ok("images")


def test_run_pull_policies(rskiff: Skiff, http_registry: servers.Registry, pushed_busybox: str) -> None:
    _insecure(rskiff, http_registry)
    never = rskiff("run", "--rm", "--pull", "never", pushed_busybox, "true")
    assert never.returncode == 125
    assert "Unable to find image" in never.stderr or "No such image" in never.stderr
    missing = rskiff("run", "--rm", pushed_busybox, "echo", "hi")
    assert missing.returncode == 0, missing.stderr
    assert missing.stdout == "hi\n"
    assert f"Unable to find image '{pushed_busybox}' locally" in missing.stderr
    assert "Status: Downloaded newer image" in missing.stderr


def _registry_manifest(registry: servers.Registry, repo: str, tag: str) -> bytes:
    import httpx

    accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
    with httpx.Client(trust_env=False) as client:
        return client.get(f"http://{registry.host}/v2/{repo}/manifests/{tag}", headers={"Accept": accept}).content


def _assert_nothing_stored(skiff: Skiff) -> None:
    images = skiff.root / "image"
    records = list((images / "images").glob("*.json")) if (images / "images").exists() else []
    assert records == []
    blobs = images / "blobs" / "sha256"
    leftovers = [p.name for p in blobs.iterdir()] if blobs.exists() else []
    # A config blob may be kept only if it was verified; a layer blob never is, nor a temp file.
    assert not [name for name in leftovers if name.startswith(".tmp")]
    layers = skiff.root / "overlay"
    assert not [p for p in layers.iterdir() if p.name not in ("l",)] if layers.exists() else True


def test_shared_layers_are_not_fetched_again_and_prune(rskiff: Skiff, http_registry: servers.Registry,
                                                       pushed_busybox: str, busybox_tar: Path,
                                                       tmp_path: Path) -> None:
    _insecure(rskiff, http_registry)
    layout = Layout(tmp_path / "shared")
    desc, _ = layout.image([busybox_tar.read_bytes(), tar_bytes([entry("extra", data=b"x\n")])])
    layout.tag("shared", [desc])
    other = f"{http_registry.host}/shared:1"
    push(layout.path, "shared", other, "--dest-tls-verify=false")

    rskiff.ok("pull", pushed_busybox)
    out = rskiff.ok("pull", other)
    assert out.count(": Already exists") == 1 and out.count(": Pull complete") == 1, out

    digest = out.splitlines()[-3].removeprefix("Digest: ")
    rskiff.ok("rmi", other)
    rskiff.ok("pull", f"{http_registry.host}/shared@{digest}")   # by digest only: no tag, dangling
    listing = rskiff.ok("images", "--digests")
    rows = [line.split()[:3] for line in listing.splitlines()[1:]]
    assert [f"{http_registry.host}/shared", "<none>", digest] in rows, listing
    pruned = rskiff.ok("image", "prune", "-f")
    assert pruned.startswith("Deleted Images:\ndeleted: sha256:") and "Total reclaimed space" in pruned
    assert rskiff.ok("images", "-q").strip() == json.loads(rskiff.ok("image", "inspect", pushed_busybox))[0]["Id"][7:19]
    rskiff.ok("image", "prune", "-a", "-f")
    assert rskiff.ok("images", "-q") == ""
    assert list((rskiff.root / "overlay").iterdir()) in ([], [rskiff.root / "overlay" / "l"])


def test_ensure_image_policies(reg_env: dict[str, str], http_registry: servers.Registry, pushed_busybox: str,
                               monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The engine's entry point for `skiff run --pull missing|always|never`."""
    import io

    from skiff.errors import ImageNotFound, InvalidArgument
    from skiff.paths import Paths
    from skiff.registry import ensure_image

    for key in [k for k in os.environ if "proxy" in k.lower()]:
        monkeypatch.delenv(key)
    for key in ("SKIFF_CONFIG_DIR", "SKIFF_AUTH_FILE", "DOCKER_CONFIG"):
        monkeypatch.setenv(key, reg_env[key])
    write_registries(reg_env, insecure=[http_registry.host])
    paths = Paths(tmp_path / "lib-root", tmp_path / "lib-run")

    with pytest.raises(ImageNotFound, match=f"Unable to find image '{pushed_busybox}' locally"):
        ensure_image(paths, pushed_busybox, policy="never")
    with pytest.raises(InvalidArgument, match="invalid pull policy"):
        ensure_image(paths, pushed_busybox, policy="sometimes")
    out = io.StringIO()
    image = ensure_image(paths, pushed_busybox, out=out)
    assert out.getvalue().startswith(f"Unable to find image '{pushed_busybox}' locally\n")
    assert f"Status: Downloaded newer image for {pushed_busybox}" in out.getvalue()
    quiet = io.StringIO()
    assert ensure_image(paths, pushed_busybox, out=quiet).id == image.id and quiet.getvalue() == ""
    assert ensure_image(paths, pushed_busybox, policy="never").id == image.id
    always = io.StringIO()
    ensure_image(paths, pushed_busybox, policy="always", out=always)
    assert f"Status: Image is up to date for {pushed_busybox}" in always.getvalue()
