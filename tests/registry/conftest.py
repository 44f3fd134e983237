"""Fixtures for registry tests: real registries in three modes, and skiff configured to use them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import Skiff
from tests.registry import servers
from tests.registry.images import Layout, push


@pytest.fixture
def reg_env(skiff_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """skiff's environment with its registry config, certs.d and credentials in the test's temp dir."""
    env = {k: v for k, v in skiff_env.items() if "proxy" not in k.lower()}
    env["SKIFF_CONFIG_DIR"] = str(tmp_path / "etc-skiff")
    env["SKIFF_AUTH_FILE"] = str(tmp_path / "auth" / "auth.json")
    env["DOCKER_CONFIG"] = str(tmp_path / "docker-config")
    env["HOME"] = str(tmp_path / "home")
    # Anything that would leave the machine over HTTPS goes to a dead loopback port instead.
    env["HTTPS_PROXY"] = "http://127.0.0.1:9"
    env["NO_PROXY"] = "127.0.0.1,localhost"
    (tmp_path / "etc-skiff").mkdir()
    return env


@pytest.fixture
def rskiff(reg_env: dict[str, str]) -> Skiff:
    return Skiff(reg_env)


def write_registries(env: dict[str, str], insecure: list[str] = [], mirrors: list[str] = []) -> None:
    conf = Path(env["SKIFF_CONFIG_DIR"]) / "registries.json"
    conf.write_text(json.dumps({"insecure": insecure, "mirrors": mirrors}))


@pytest.fixture(scope="module")
def http_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.Registry]:
    registry = servers.start_registry(tmp_path_factory.mktemp("registry-http"))
    yield registry
    registry.stop()


@pytest.fixture(scope="module")
def busybox_layout(tmp_path_factory: pytest.TempPathFactory, busybox_tar: Path) -> Layout:
    """An OCI layout with ``busybox`` (one gzip layer, CMD sh)."""
    layout = Layout(tmp_path_factory.mktemp("layout-busybox") / "oci")
    desc, _ = layout.image([busybox_tar.read_bytes()])
    layout.tag("busybox", [desc])
    return layout


@pytest.fixture(scope="module")
def pushed_busybox(http_registry: servers.Registry, busybox_layout: Layout) -> str:
    """``busybox`` pushed to the plain-HTTP registry as OCI; returns ``HOST/busybox:oci``."""
    ref = f"{http_registry.host}/busybox:oci"
    push(busybox_layout.path, "busybox", ref, "--dest-tls-verify=false")
    return ref
