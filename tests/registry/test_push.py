"""``skiff push`` to real registries: TLS with basic auth, bearer tokens, plain HTTP; blobs the
registry has, cross-repository mounts, chunked uploads of a large layer, a multi-platform index;
what is pushed is pulled back by skopeo, by skiff into a fresh root and by Docker 20.10 (the
tests' private dockerd); and the Engine API's ``POST /images/{name}/push`` through the docker CLI.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PRIVATE_VAR_LIB, Skiff, private_skiff_env
from tests.registry import servers
from tests.registry.conftest import write_registries
from tests.registry.images import Layout, multi_layer_tars, push as skopeo_push, tar_bytes, entry


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.Registry]:
    directory = tmp_path_factory.mktemp("push-tls")
    registry = servers.start_registry(directory, tls=servers.make_pki(directory / "pki"),
                                      htpasswd=servers.write_htpasswd(directory / "htpasswd"))
    yield registry
    registry.stop()


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.Registry]:
    directory = tmp_path_factory.mktemp("push-token")
    registry = servers.start_registry(directory, token=servers.TokenServer(directory / "token"))
    yield registry
    registry.stop()


@pytest.fixture
def busybox(rskiff: Skiff, busybox_tar: Path) -> str:
    rskiff.ok("import", str(busybox_tar), "busybox:latest", "--change", 'CMD ["sh"]')
    return rskiff.ok("images", "-q", "--no-trunc", "busybox").strip()


def _login(skiff: Skiff, host: str) -> None:
    skiff.ok("login", "-u", servers.USER, "--password-stdin", host, input=servers.PASSWORD + "\n")


def _skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return subprocess.run([*PRIVATE_VAR_LIB, "skopeo", *args], capture_output=True, text=True, timeout=120, env=env)


def _fresh_pull_and_run(reg_env: dict[str, str], tmp_path: Path, ref: str, image_id: str) -> None:
    """Pulled by skiff into a root that never saw the image, then run."""
    with private_skiff_env(tmp_path / "fresh") as env:
        fresh = Skiff(_with_registry_config(env, reg_env))
        assert "Downloaded newer image" in fresh.ok("pull", ref)
        assert fresh.ok("images", "-q", "--no-trunc", ref).strip() == image_id
        assert fresh.ok("run", "--rm", "--network", "none", ref, "echo", "pushed") == "pushed\n"


def _with_registry_config(env: dict[str, str], reg_env: dict[str, str]) -> dict[str, str]:
    """A fresh root's environment with the test's registry config, credentials and proxies."""
    keys = ("SKIFF_CONFIG_DIR", "SKIFF_AUTH_FILE", "DOCKER_CONFIG", "HOME", "HTTPS_PROXY", "NO_PROXY")
    fresh = {k: v for k, v in env.items() if "proxy" not in k.lower()}
    return {**fresh, **{k: reg_env[k] for k in keys}}


def test_tls_and_basic_auth(rskiff: Skiff, reg_env: dict[str, str], tls_registry: servers.Registry,
                            busybox: str, tmp_path: Path) -> None:
    host = tls_registry.host
    assert tls_registry.tls is not None
    certs = Path(rskiff.env["SKIFF_CONFIG_DIR"]) / "certs.d" / host
    certs.mkdir(parents=True)
    shutil.copy(tls_registry.tls.ca_cert, certs / "ca.crt")
    ref = f"{host}/team/busybox:1"
    rskiff.ok("tag", "busybox", ref)
    anonymous = rskiff("push", ref)
    assert anonymous.returncode == 1 and f"skiff login {host}" in anonymous.stderr, anonymous.stderr
    _login(rskiff, host)
    out = rskiff.ok("push", ref).splitlines()
    assert out[0] == f"The push refers to repository [{host}/team/busybox]"
    layer = out[1].split(":")[0]
    assert out[1:3] == [f"{layer}: Preparing", f"{layer}: Pushed"]
    tag, _, digest, _, size = out[3].split()
    assert (tag, out[3].split()[1], out[3].split()[3]) == ("1:", "digest:", "size:")
    # skopeo reads it back: the manifest's digest and size, the config is skiff's image
    raw = _skopeo("inspect", "--raw", "--cert-dir", str(certs), "--creds",
                  f"{servers.USER}:{servers.PASSWORD}", f"docker://{ref}")
    assert raw.returncode == 0, raw.stderr
    assert f"sha256:{hashlib.sha256(raw.stdout.encode()).hexdigest()}" == digest
    assert len(raw.stdout.encode()) == int(size)
    manifest = json.loads(raw.stdout)
    assert manifest["config"]["digest"] == busybox and len(manifest["layers"]) == 1
    copied = _skopeo("copy", "--quiet", "--src-cert-dir", str(certs), "--src-creds",
                     f"{servers.USER}:{servers.PASSWORD}", f"docker://{ref}", f"oci:{tmp_path / 'back'}:x")
    assert copied.returncode == 0, copied.stderr
    assert rskiff.ok("inspect", "-f", "{{json .RepoDigests}}", ref).strip() == json.dumps([f"{host}/team/busybox@{digest}"])
    _fresh_pull_and_run(reg_env, tmp_path, ref, busybox)
    again = rskiff.ok("push", ref).splitlines()
    assert again[2] == f"{layer}: Layer already exists" and again[3] == out[3]


def test_bearer_tokens_mounts_and_all_tags(rskiff: Skiff, reg_env: dict[str, str], token_registry: servers.Registry,
                                           busybox: str, tmp_path: Path) -> None:
    host = token_registry.host
    token_server = token_registry.token_server
    assert token_server is not None
    write_registries(rskiff.env, insecure=[host])
    rskiff.ok("tag", "busybox", f"{host}/alice/busybox:1")
    rskiff.ok("tag", "busybox", f"{host}/alice/busybox:2")
    denied = rskiff("push", f"{host}/alice/busybox:1")   # anonymous: the token grants no push
    assert denied.returncode == 1 and "denied" in denied.stderr.lower(), denied.stderr
    _login(rskiff, host)
    out = rskiff.ok("push", "--all-tags", f"{host}/alice/busybox")
    digests = [line.split()[2] for line in out.splitlines() if " digest: " in line]
    assert [line.split(":")[0] for line in out.splitlines() if " digest: " in line] == ["1", "2"]
    assert len(set(digests)) == 1 and "Pushed" in out and "Layer already exists" in out
    assert rskiff("push", "-a", f"{host}/alice/busybox:1").stderr.strip() == \
        "skiff: tag can't be used with --all-tags/-a"
    # another repository of the same registry mounts the blob from the first one
    rskiff.ok("tag", "busybox", f"{host}/bob/busybox")
    token_server.requests.clear()
    mounted = rskiff.ok("push", f"{host}/bob/busybox").splitlines()
    assert mounted[0] == "Using default tag: latest"
    assert mounted[3].endswith(": Mounted from alice/busybox"), mounted
    assert any(sorted(r["scope"]) == ["repository:alice/busybox:pull", "repository:bob/busybox:pull,push"]
               for r in token_server.requests)
    quiet = rskiff.ok("push", "-q", f"{host}/bob/busybox")
    assert quiet == f"{host}/bob/busybox:latest\n"
    _fresh_pull_and_run(reg_env, tmp_path, f"{host}/bob/busybox:latest", busybox)


def test_chunked_upload_of_a_large_layer(rskiff: Skiff, reg_env: dict[str, str], http_registry: servers.Registry,
                                         busybox_tar: Path, tmp_path: Path) -> None:
    """A 40 MB layer of random bytes goes up in PATCH chunks; every byte comes back."""
    write_registries(rskiff.env, insecure=[http_registry.host])
    payload = os.urandom(40 << 20)
    big = tmp_path / "big.tar"
    big.write_bytes(tar_bytes([entry("big.bin", data=payload)]))
    rskiff.ok("import", str(big), "big:1")
    ref = f"{http_registry.host}/big:1"
    rskiff.ok("tag", "big:1", ref)
    out = rskiff.ok("push", ref)
    assert "Pushed" in out
    raw = _skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}")
    layer = json.loads(raw.stdout)["layers"][0]
    blob = http_registry.blob_file(layer["digest"])
    assert blob.stat().st_size == layer["size"] > 40 << 20
    with private_skiff_env(tmp_path / "fresh") as env:
        fresh = Skiff(_with_registry_config(env, reg_env))
        fresh.ok("pull", ref)
        fresh.ok("create", "--name", "big", ref, "true")
        back = subprocess.run([sys.executable, "-m", "skiff", "cp", "big:/big.bin", str(tmp_path / "back.bin")],
                              env=fresh.env, capture_output=True)
        assert back.returncode == 0, back.stderr
        assert (tmp_path / "back.bin").read_bytes() == payload
        fresh.ok("rm", "big")


def test_a_multi_platform_index(rskiff: Skiff, http_registry: servers.Registry, tmp_path: Path) -> None:
    """Both platforms of an index pulled into the store: the push sends both and the index."""
    host = http_registry.host
    write_registries(rskiff.env, insecure=[host])
    layout = Layout(tmp_path / "multi")
    amd, _ = layout.image(multi_layer_tars()[:1], arch="amd64")
    arm, _ = layout.image(multi_layer_tars()[1:2], arch="arm64", variant="v8")
    layout.tag("multi", [amd, arm], as_index=True)
    skopeo_push(layout.path, "multi", f"{host}/src/multi:1", "--dest-tls-verify=false", all_images=True)
    for platform in ("linux/amd64", "linux/arm64"):
        rskiff.ok("pull", "--platform", platform, f"{host}/src/multi:1")
    rskiff.ok("tag", f"{host}/src/multi:1", f"{host}/dst/multi:1")
    out = rskiff.ok("push", f"{host}/dst/multi:1")
    raw = _skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{host}/dst/multi:1")
    index = json.loads(raw.stdout)
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert sorted(m["digest"] for m in index["manifests"]) == sorted([amd["digest"], arm["digest"]])
    assert out.splitlines()[-1].split()[2] == f"sha256:{hashlib.sha256(raw.stdout.encode()).hexdigest()}"
    for platform in ("amd64", "arm64"):
        one = _skopeo("inspect", "--tls-verify=false", "--override-arch", platform, f"docker://{host}/dst/multi:1")
        assert one.returncode == 0 and json.loads(one.stdout)["Architecture"] == platform, one.stderr


def test_docker_pulls_what_skiff_pushed(rskiff: Skiff, http_registry: servers.Registry, busybox: str,
                                        tmp_path: Path) -> None:
    from tests.dockerd import NOT_INSTALLED, docker_installed, private_dockerd

    if not docker_installed():
        pytest.skip(NOT_INSTALLED)
    ref = f"{http_registry.host}/to-docker/busybox:1"
    write_registries(rskiff.env, insecure=[http_registry.host])
    rskiff.ok("tag", "busybox", ref)
    rskiff.ok("push", ref)
    with private_dockerd(tmp_path / "docker") as dockerd:
        pulled = dockerd.docker("pull", ref)
        assert pulled.returncode == 0, pulled.stderr
        assert dockerd.docker("image", "inspect", "-f", "{{.Id}}", ref).stdout.strip() == busybox
        dockerd.docker("rmi", ref)


def test_engine_api_push_through_the_docker_cli(http_registry: servers.Registry, busybox_tar: Path,
                                                tmp_path: Path) -> None:
    from tests.api_server.conftest import Service, start_service, stop_service, wait_for_socket

    host = http_registry.host
    with private_skiff_env(tmp_path / "api") as env:
        env = {**env, "SKIFF_CONFIG_DIR": str(tmp_path / "etc")}
        (tmp_path / "etc").mkdir()
        write_registries(env, insecure=[host])
        subprocess.run([sys.executable, "-m", "skiff", "import", str(busybox_tar), f"{host}/api/busybox:1"],
                       env=env, check=True, capture_output=True)
        socket_path = tmp_path / "sock" / "docker.sock"
        process = start_service(env, tmp_path / "service.log", "--host", f"unix://{socket_path}", "--time", "0")
        try:
            wait_for_socket(socket_path, process)
            service = Service(env, socket_path, process, tmp_path / "service.log")
            out = service.docker("push", f"{host}/api/busybox:1").stdout.splitlines()
            assert out[0] == f"The push refers to repository [{host}/api/busybox]"
            assert out[-1].startswith("1: digest: sha256:") and "Pushed" in out[-2]
            missing = service.docker("push", f"{host}/api/nope:1", check=False)
            assert missing.returncode == 1
            assert "An image does not exist locally with the tag: " + f"{host}/api/nope" in missing.stderr
            status, _, body = service.request("POST", f"/v1.41/images/{host}/api/busybox/push?tag=1")
            messages = [json.loads(line) for line in body.splitlines() if line.strip()]
            assert status == 200 and messages[-1]["aux"]["Tag"] == "1"
            assert {"status": "Layer already exists", "progressDetail": {}, "id": messages[1]["id"]} in messages
        finally:
            stop_service(process)
        assert "Traceback" not in (tmp_path / "service.log").read_text()


BUILT = """\
FROM busybox
ARG WHAT=built
RUN echo "$WHAT by skiff" > /built && rm /bin/vi
COPY note.txt /note.txt
ENV SHIPPED=yes
CMD ["cat", "/built", "/note.txt"]
"""


def test_a_built_image_goes_to_every_registry_and_runs_back(
        rskiff: Skiff, reg_env: dict[str, str], tls_registry: servers.Registry, token_registry: servers.Registry,
        http_registry: servers.Registry, busybox: str, tmp_path: Path) -> None:
    """Issue 16's loop: context -> image -> registry -> another host (a fresh skiff root, skopeo, Docker)."""
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(BUILT)
    (context / "note.txt").write_text("copied\n")
    image = rskiff.ok("build", "-q", "-t", "shipped:1", str(context)).strip()
    expected = "built by skiff\ncopied\n"
    assert rskiff.ok("run", "--rm", "--network", "none", "shipped:1") == expected

    def pull_back_and_run(ref: str) -> None:
        with private_skiff_env(tmp_path / f"fresh-{ref.split('/')[0].replace(':', '-')}") as env:
            fresh = Skiff(_with_registry_config(env, reg_env))
            fresh.ok("pull", ref)
            assert fresh.ok("images", "-q", "--no-trunc", ref).strip() == image
            assert fresh.ok("run", "--rm", "--network", "none", ref) == expected
            assert fresh.ok("run", "--rm", "--network", "none", ref, "sh", "-c", "echo $SHIPPED; ls /bin/vi || true") \
                == "yes\n"   # the RUN's deletion came through as a whiteout

    # TLS with basic auth: skopeo reads the manifest, a fresh root pulls and runs it
    assert tls_registry.tls is not None
    certs = Path(rskiff.env["SKIFF_CONFIG_DIR"]) / "certs.d" / tls_registry.host
    certs.mkdir(parents=True)
    shutil.copy(tls_registry.tls.ca_cert, certs / "ca.crt")
    _login(rskiff, tls_registry.host)
    ref = f"{tls_registry.host}/built/shipped:1"
    rskiff.ok("tag", "shipped:1", ref)
    rskiff.ok("push", ref)
    raw = _skopeo("inspect", "--raw", "--cert-dir", str(certs), "--creds", f"{servers.USER}:{servers.PASSWORD}",
                  f"docker://{ref}")
    assert raw.returncode == 0, raw.stderr
    manifest = json.loads(raw.stdout)
    assert manifest["config"]["digest"] == image and len(manifest["layers"]) == 3   # busybox, RUN, COPY
    pull_back_and_run(ref)

    # bearer tokens
    write_registries(rskiff.env, insecure=[token_registry.host, http_registry.host])
    _login(rskiff, token_registry.host)
    ref = f"{token_registry.host}/alice/shipped:1"
    rskiff.ok("tag", "shipped:1", ref)
    rskiff.ok("push", ref)
    pull_back_and_run(ref)

    # Docker 20.10 (the tests' private dockerd) pulls it from the plain registry and runs it
    from tests.dockerd import docker_installed, private_dockerd

    if not docker_installed():
        return
    ref = f"{http_registry.host}/to-docker/shipped:1"
    rskiff.ok("tag", "shipped:1", ref)
    rskiff.ok("push", ref)
    with private_dockerd(tmp_path / "docker") as dockerd:
        pulled = dockerd.docker("pull", ref)
        assert pulled.returncode == 0, pulled.stderr
        ran = dockerd.docker("run", "--rm", "--network", "none", ref)
        assert ran.returncode == 0 and ran.stdout == expected, ran.stderr
        dockerd.docker("rmi", ref)
