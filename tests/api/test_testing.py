"""skiff.testing: a throwaway service for a block, and the pytest fixture built on it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

import skiff
import skiff.testing

REPO = Path(__file__).resolve().parents[2]
HTTPD = "mkdir -p /www && echo served > /www/index.html && exec httpd -f -p 80 -h /www"


def _get(port: int) -> bytes:
    # No proxy: urlopen's shared opener keeps the proxy of the environment it was first used in.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{port}/index.html", timeout=5) as answer:
        return answer.read()


def test_container_publishes_a_reachable_port_and_is_gone_after(client: skiff.Client, busybox: str) -> None:
    with skiff.testing.container(busybox, ["sh", "-c", HTTPD], ports={80: None}, client=client) as web:
        assert web.status == "running"
        port = web.host_port(80)
        assert web.ports["80/tcp"][0]["HostPort"] == str(port)
        assert _get(port) == b"served\n"  # listening already: the helper waited for it
        name = web.name
    with pytest.raises(skiff.errors.NotFound):
        client.containers.get(name)
    assert client.containers.list(all=True) == []


def test_container_is_removed_after_an_exception_too(client: skiff.Client, busybox: str) -> None:
    with pytest.raises(RuntimeError, match="the test failed"):
        with skiff.testing.container(busybox, "sleep 600", client=client, network="none",
                                     volumes=["/scratch"]) as box:
            volume = box.attrs["Mounts"][0]["Name"]
            raise RuntimeError("the test failed")
    assert client.containers.list(all=True) == []
    assert client.volumes.list() == []  # its anonymous volume went with it
    assert volume


def test_a_service_that_dies_fails_fast(client: skiff.Client, busybox: str) -> None:
    with pytest.raises(skiff.errors.ContainerNotRunning, match="stopped"):
        with skiff.testing.container(busybox, "true", ports={80: None}, client=client):
            pass
    assert client.containers.list(all=True) == []


def test_the_pytest_fixture(client: skiff.Client, busybox: str, skiff_env: dict[str, str], tmp_path: Path) -> None:
    """A project's test suite using the plugin, run by pytest in a subprocess: one test
    passes, one fails on purpose; neither leaves a container."""
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text('pytest_plugins = ["skiff.testing.pytest_plugin"]\n')
    (suite / "test_service.py").write_text(textwrap.dedent(f'''
        import urllib.request

        def test_web(skiff_container):
            web = skiff_container("{busybox}", ["sh", "-c", {HTTPD!r}], ports={{80: None}})
            with urllib.request.urlopen(f"http://127.0.0.1:{{web.host_port(80)}}/index.html", timeout=5) as r:
                assert r.read() == b"served\\n"

        def test_fails_on_purpose(skiff_container):
            skiff_container("{busybox}", "sleep 600", network="none")
            assert False, "on purpose"
    '''))
    env = dict(skiff_env, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(suite)], env=env,
                          cwd=suite, capture_output=True, text=True, timeout=120)
    assert "1 failed, 1 passed" in done.stdout, done.stdout + done.stderr
    assert client.containers.list(all=True) == []
    assert os.environ.get("SKIFF_ROOT") != skiff_env["SKIFF_ROOT"]  # the subprocess had its own
