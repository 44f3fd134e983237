"""TLS with a test CA and basic auth (htpasswd); bearer tokens from a test token server."""

from __future__ import annotations

import json
import shutil
import subprocess
import stat
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import Skiff
from tests.registry import servers
from tests.registry.images import Layout, push


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.Registry]:
    directory = tmp_path_factory.mktemp("registry-tls")
    pki = servers.make_pki(directory / "pki")
    htpasswd = servers.write_htpasswd(directory / "htpasswd")
    registry = servers.start_registry(directory, tls=pki, htpasswd=htpasswd)
    yield registry
    registry.stop()


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.Registry]:
    directory = tmp_path_factory.mktemp("registry-token")
    registry = servers.start_registry(directory, token=servers.TokenServer(directory / "token"))
    yield registry
    registry.stop()


def _creds() -> str:
    return f"{servers.USER}:{servers.PASSWORD}"


def _trust(skiff: Skiff, registry: servers.Registry) -> None:
    certs = Path(skiff.env["SKIFF_CONFIG_DIR"]) / "certs.d" / registry.host
    certs.mkdir(parents=True, exist_ok=True)
    assert registry.tls is not None
    shutil.copy(registry.tls.ca_cert, certs / "ca.crt")


def _login(skiff: Skiff, host: str, password: str = servers.PASSWORD) -> "subprocess.CompletedProcess[str]":
    return skiff("login", "-u", servers.USER, "--password-stdin", host, input=password + "\n")


def test_tls_with_test_ca_and_basic_auth(rskiff: Skiff, tls_registry: servers.Registry,
                                         busybox_layout: Layout) -> None:
    assert tls_registry.tls is not None
    host = tls_registry.host
    ref = f"{host}/secure/busybox:1"
    push(busybox_layout.path, "busybox", ref, "--dest-cert-dir", str(tls_registry.tls.ca_cert.parent),
         "--dest-creds", _creds())

    untrusted = rskiff("pull", ref)
    assert untrusted.returncode == 1 and "certificate verify failed" in untrusted.stderr, untrusted.stderr
    _trust(rskiff, tls_registry)
    anonymous = rskiff("pull", ref)
    assert anonymous.returncode == 1 and f"skiff login {host}" in anonymous.stderr, anonymous.stderr

    wrong = _login(rskiff, host, "wrong-password")
    assert wrong.returncode == 1 and "incorrect username or password" in wrong.stderr, wrong.stderr
    auth_file = Path(rskiff.env["SKIFF_AUTH_FILE"])
    assert not auth_file.exists()

    assert _login(rskiff, host).stdout.strip() == "Login Succeeded"
    assert stat.S_IMODE(auth_file.stat().st_mode) == 0o600
    assert host in json.loads(auth_file.read_text())["auths"]
    out = rskiff.ok("pull", ref)
    assert f"Status: Downloaded newer image for {ref}" in out
    assert rskiff.ok("run", "--rm", ref, "echo", "tls") == "tls\n"

    assert rskiff.ok("logout", host).strip() == f"Removing login credentials for {host}"
    assert host not in json.loads(auth_file.read_text())["auths"]
    assert rskiff("pull", ref).returncode == 1


def test_docker_config_credentials_are_read(rskiff: Skiff, tls_registry: servers.Registry,
                                            busybox_layout: Layout) -> None:
    import base64

    assert tls_registry.tls is not None
    ref = f"{tls_registry.host}/secure/docker-creds:1"
    push(busybox_layout.path, "busybox", ref, "--dest-cert-dir", str(tls_registry.tls.ca_cert.parent),
         "--dest-creds", _creds())
    _trust(rskiff, tls_registry)
    docker_config = Path(rskiff.env["DOCKER_CONFIG"])
    docker_config.mkdir()
    token = base64.b64encode(_creds().encode()).decode()
    (docker_config / "config.json").write_text(json.dumps({"auths": {f"https://{tls_registry.host}": {"auth": token}}}))
    assert "Downloaded newer image" in rskiff.ok("pull", ref)


def test_bearer_tokens_anonymous_and_with_login(rskiff: Skiff, token_registry: servers.Registry,
                                                busybox_layout: Layout) -> None:
    host = token_registry.host
    token_server = token_registry.token_server
    assert token_server is not None
    public, private = f"{host}/public/busybox:1", f"{host}/private/busybox:1"
    for ref in (public, private):
        push(busybox_layout.path, "busybox", ref, "--dest-tls-verify=false", "--dest-creds", _creds())
    (Path(rskiff.env["SKIFF_CONFIG_DIR"]) / "registries.json").write_text(json.dumps({"insecure": [host]}))

    token_server.requests.clear()
    assert "Downloaded newer image" in rskiff.ok("pull", public)
    asked = [r for r in token_server.requests if r["scope"] == ["repository:public/busybox:pull"]]
    assert len(asked) == 1 and asked[0]["user"] is None  # one anonymous token, reused for every blob

    denied = rskiff("pull", private)
    assert denied.returncode == 1 and "pull access denied" in denied.stderr, denied.stderr
    assert len(denied.stderr.strip().splitlines()) == 1

    wrong = _login(rskiff, host, "nope")
    assert wrong.returncode == 1 and "incorrect username or password" in wrong.stderr, wrong.stderr
    assert _login(rskiff, host).returncode == 0
    token_server.requests.clear()
    assert "Downloaded newer image" in rskiff.ok("pull", private)
    assert {r["user"] for r in token_server.requests} == {servers.USER}
    assert rskiff.ok("run", "--rm", private, "echo", "token") == "token\n"


def test_client_certificate_from_certs_d(rskiff: Skiff, tmp_path: Path, busybox_layout: Layout) -> None:
    pki = servers.make_pki(tmp_path / "pki")
    registry = servers.start_registry(tmp_path / "registry", tls=pki, require_client_cert=True)
    try:
        ref = f"{registry.host}/mtls:1"
        push_certs = tmp_path / "push-certs"
        push_certs.mkdir()
        for source in (pki.ca_cert, pki.ca_cert.parent.parent / "client" / "client.cert",
                       pki.ca_cert.parent.parent / "client" / "client.key"):
            shutil.copy(source, push_certs / source.name)
        push(busybox_layout.path, "busybox", ref, "--dest-cert-dir", str(push_certs))

        certs = Path(rskiff.env["SKIFF_CONFIG_DIR"]) / "certs.d" / registry.host
        certs.mkdir(parents=True)
        shutil.copy(pki.ca_cert, certs / "ca.crt")
        refused = rskiff("pull", ref)
        assert refused.returncode == 1 and "cannot reach registry" in refused.stderr, refused.stderr
        shutil.copy(push_certs / "client.cert", certs / "client.cert")
        half = rskiff("pull", ref)
        assert half.returncode == 1 and "has no matching key" in half.stderr, half.stderr
        shutil.copy(push_certs / "client.key", certs / "client.key")
        assert "Downloaded newer image" in rskiff.ok("pull", ref)
    finally:
        registry.stop()
