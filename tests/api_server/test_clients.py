"""The real clients of the Docker Engine API against ``skiff system service``, unchanged: docker-py
(PyPI's ``docker``), docker-compose 1.29 (Debian's) and testcontainers (PyPI's), as scripts/setup
installs them.

A test that needs an endpoint skiff does not serve yet is marked ``xfail(strict=True)`` with the
endpoint and the slice of issue 15 that adds it: it fails now and turns into an unexpected pass
(a failure, under strict) the day the endpoint lands, when the mark goes. Traffic stays on
127.0.0.1 and in the containers' own namespaces: every published port is bound to 127.0.0.1.
"""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import tarfile
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker  # not skipped when missing: scripts/setup installs every client these tests use
import pytest

from tests.api_server.conftest import Service
from tests.network.conftest import free_subnet

COMPOSE = "/usr/bin/docker-compose"  # Debian's 1.29


@pytest.fixture(scope="module")
def client(service: Service) -> Iterator[Any]:
    api = docker.DockerClient(base_url=f"unix://{service.socket}", timeout=60)
    try:
        yield api
    finally:
        api.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def fetch(url: str, timeout: float = 15) -> bytes:
    """GET ``url`` (on 127.0.0.1) with retries while the server in the container starts."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while True:
        try:
            with opener.open(url, timeout=5) as response:
                return bytes(response.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_docker_py_run_detached_logs_stream_wait_remove(client: Any) -> None:
    container = client.containers.run("busybox", ["sh", "-c", "echo one; echo two >&2; sleep 0.3; echo three"],
                                      detach=True, name="py-detached", environment={"WHO": "py"})
    assert len(container.id) == 64
    assert b"".join(container.logs(stream=True, follow=True)) == b"one\ntwo\nthree\n"
    assert container.wait(timeout=30) == {"Error": None, "StatusCode": 0}
    assert container.logs(stdout=True, stderr=False) == b"one\nthree\n"  # the frames keep the streams apart
    container.reload()
    assert container.status == "exited" and container.attrs["State"]["ExitCode"] == 0
    assert "WHO=py" in container.attrs["Config"]["Env"]
    assert [c.name for c in client.containers.list(all=True, filters={"name": "py-detached"})] == ["py-detached"]
    container.remove(v=True)
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("py-detached")


def test_docker_py_run_in_the_foreground_returns_the_output(client: Any) -> None:
    """Without ``detach`` docker-py follows the logs and waits (no attach): the output, or the exit error."""
    assert client.containers.run("busybox", ["echo", "hello"], remove=True) == b"hello\n"
    with pytest.raises(docker.errors.ContainerError) as failed:
        client.containers.run("busybox", ["sh", "-c", "exit 3"], remove=True)
    assert failed.value.exit_status == 3
    assert client.containers.list(all=True) == []


def test_docker_py_named_volume_outlives_its_writer(client: Any) -> None:
    """docker-py sends each volume twice, in ``Binds`` and in ``Config.Volumes``: one mount, the bind's."""
    volume = client.volumes.create("py-data", labels={"made-by": "py"})
    assert volume.attrs["Labels"] == {"made-by": "py"}
    assert "py-data" in [v.name for v in client.volumes.list()]
    written = client.containers.run("busybox", ["sh", "-c", "echo kept > /data/note"], remove=True,
                                    volumes={"py-data": {"bind": "/data", "mode": "rw"}})
    assert written == b""
    read = client.containers.run("busybox", ["cat", "/data/note"], remove=True,
                                 volumes={"py-data": {"bind": "/data", "mode": "ro"}})
    assert read == b"kept\n"
    volume.remove()
    assert "py-data" not in [v.name for v in client.volumes.list()]


def test_docker_py_mounts(client: Any, tmp_path: Path) -> None:
    """``mounts=`` is ``HostConfig.Mounts``: a named volume, a tmpfs with its size, a read-only bind."""
    (tmp_path / "note").write_text("from the host\n")
    mounts = [docker.types.Mount("/data", "py-mounted", type="volume", labels={"made-by": "py"}),
              docker.types.Mount("/scratch", None, type="tmpfs", tmpfs_size=1 << 20),
              docker.types.Mount("/host", str(tmp_path), type="bind", read_only=True)]
    out = client.containers.run("busybox", ["sh", "-c", "echo in > /data/f && cat /data/f && "
                                            "grep -c ' /scratch tmpfs .*size=1024k' /proc/mounts && "
                                            "cat /host/note && ! touch /host/x 2>/dev/null"],
                                mounts=mounts, remove=True)
    assert out == b"in\n1\nfrom the host\n"
    assert not (tmp_path / "x").exists()
    volume = client.volumes.get("py-mounted")
    assert volume.attrs["Labels"] == {"made-by": "py"}
    volume.remove()


def test_docker_py_healthcheck(client: Any) -> None:
    """``Config.Healthcheck`` in docker-py's exec form (``CMD``): the monitor probes, the state follows."""
    container = client.containers.run("busybox", ["sh", "-c", "touch /ok; exec sleep 60"], detach=True,
                                      healthcheck={"test": ["CMD", "test", "-e", "/ok"], "interval": 100_000_000,
                                                   "retries": 1})
    try:
        container.reload()
        assert container.attrs["Config"]["Healthcheck"]["Test"] == ["CMD", "test", "-e", "/ok"]
        deadline = time.monotonic() + 20
        while container.attrs["State"].get("Health", {}).get("Status") != "healthy":
            assert time.monotonic() < deadline, container.attrs["State"]
            time.sleep(0.1)
            container.reload()
    finally:
        container.remove(force=True)


def test_docker_py_networks(client: Any, service: Service) -> None:
    config = json.loads((Path(service.env["SKIFF_ROOT"]) / "network" / "config.json").read_text())
    subnet = free_subnet(used=set(config["subnet_candidates"]))
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet)])
    network = client.networks.create("py-net", driver="bridge", ipam=ipam, labels={"made-by": "py"})
    try:
        network.reload()
        assert network.attrs["IPAM"]["Config"][0]["Subnet"] == subnet
        assert network.attrs["Options"] == {}  # as dockerd shows it: compose compares it with its file
        assert network.attrs["Labels"] == {"made-by": "py"}
        server = client.containers.run("busybox", ["sh", "-c", "mkdir /w; echo by-name > /w/i; exec httpd -f -h /w"],
                                       detach=True, name="py-server", network="py-net")
        try:
            fetched = client.containers.run("busybox", ["sh", "-c", "for i in $(seq 50); do wget -q -O - "
                                                        "http://py-server/i && exit; sleep 0.1; done; exit 1"],
                                            remove=True, network="py-net")
            assert fetched == b"by-name\n"  # skiff's user-network DNS
            network.reload()
            assert [c.name for c in network.containers] == ["py-server"]
        finally:
            server.remove(force=True)
    finally:
        network.remove()
    assert "py-net" not in [n.name for n in client.networks.list()]


def test_docker_py_images_list_and_get(client: Any) -> None:
    images = client.images.list()
    assert ["busybox:latest"] in [image.tags for image in images]
    busybox = client.images.get("busybox")
    assert busybox.id.startswith("sha256:") and busybox.tags == ["busybox:latest"]
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get("py-no-such-image")


def test_docker_py_exec_run(client: Any) -> None:
    container = client.containers.run("busybox", ["sleep", "60"], detach=True, name="py-exec")
    try:
        result = container.exec_run(["sh", "-c", "echo in $HOSTNAME; exit 4"], environment={"X": "1"})
        assert result.exit_code == 4 and result.output == f"in {container.id[:12]}\n".encode()
    finally:
        container.remove(force=True)


def test_docker_py_put_and_get_archive(client: Any) -> None:
    container = client.containers.create("busybox", ["sleep", "60"], name="py-archive")
    try:
        packed = io.BytesIO()
        with tarfile.open(fileobj=packed, mode="w") as tar:
            info = tarfile.TarInfo("hello.txt")
            info.size = 6
            tar.addfile(info, io.BytesIO(b"hello\n"))
        assert container.put_archive("/tmp", packed.getvalue()) is True
        chunks, stat = container.get_archive("/tmp/hello.txt")
        assert stat["name"] == "hello.txt" and stat["size"] == 6
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            member = tar.extractfile("hello.txt")
            assert member is not None and member.read() == b"hello\n"
    finally:
        container.remove(force=True)


def test_docker_py_stats_one_shot(client: Any) -> None:
    container = client.containers.run("busybox", ["sleep", "60"], detach=True, name="py-stats")
    try:
        stats = container.stats(stream=False)
        assert stats["id"] == container.id and stats["pids_stats"]["current"] >= 1
        assert stats["memory_stats"]["usage"] > 0 and "cpu_usage" in stats["cpu_stats"]
    finally:
        container.remove(force=True)


def compose_file(port: int, subnet: str) -> str:
    """A web service (busybox httpd, a named volume, a port on 127.0.0.1) and a client of it by name."""
    return textwrap.dedent(f"""\
        version: "3.8"
        services:
          web:
            image: busybox
            command: ["sh", "-c", "echo served > /www/index.html && echo web ready && exec httpd -f -v -p 8080 -h /www"]
            ports: ["127.0.0.1:{port}:8080"]
            volumes: ["site:/www"]
          client:
            image: busybox
            depends_on: [web]
            environment:
              TARGET: http://web:8080/index.html
            command: ["sh", "-c", "for i in $$(seq 99); do wget -qO- $$TARGET && break; sleep .1; done; exec sleep 600"]
        volumes:
          site: {{}}
        networks:
          default:
            ipam:
              config: [{{subnet: "{subnet}"}}]
        """)


def test_docker_compose_two_services_up_ps_logs_exec_down(service: Service, tmp_path: Path) -> None:
    config = json.loads((Path(service.env["SKIFF_ROOT"]) / "network" / "config.json").read_text())
    port, subnet = free_port(), free_subnet(used=set(config["subnet_candidates"]))
    (tmp_path / "docker-compose.yml").write_text(compose_file(port, subnet))
    env = {k: v for k, v in service.env.items() if not k.startswith(("DOCKER_", "COMPOSE_"))}
    env.update(DOCKER_HOST=f"unix://{service.socket}", COMPOSE_PROJECT_NAME="pyc",
               DOCKER_CONFIG=str(tmp_path / "docker-config"))

    def compose(*args: str) -> str:
        proc = subprocess.run([COMPOSE, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"docker-compose {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}"
        return proc.stdout

    try:
        compose("up", "-d")
        assert fetch(f"http://127.0.0.1:{port}/index.html") == b"served\n"
        listed = compose("ps")
        assert "pyc_web_1" in listed and "pyc_client_1" in listed and f"127.0.0.1:{port}->8080/tcp" in listed
        deadline = time.monotonic() + 20
        while "served" not in (logs := compose("logs", "--no-color", "client")) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "served" in logs  # the client reached the web service by its name
        assert "web ready" in compose("logs", "--no-color", "web")
        assert compose("exec", "-T", "client", "sh", "-c", "echo $TARGET") == "http://web:8080/index.html\n"
    finally:
        subprocess.run([COMPOSE, "down", "-v"], cwd=tmp_path, env=env, capture_output=True, timeout=120)
    assert service.docker("ps", "-aq").stdout == ""
    assert "pyc_site" not in service.docker("volume", "ls", "-q").stdout.split()
    assert "pyc_default" not in service.docker("network", "ls", "--format", "{{.Name}}").stdout.split()


TESTCONTAINERS_SCRIPT = """
import sys, urllib.request
from testcontainers.core.container import DockerContainer
from testcontainers.core.wait_strategies import LogMessageWaitStrategy

web = (DockerContainer("busybox")
       .with_command(["sh", "-c", "mkdir /w && echo tc-ok > /w/index.html && echo listening && "
                                  "exec httpd -f -p 8080 -h /w"])
       .with_exposed_ports(8080)
       .waiting_for(LogMessageWaitStrategy("listening")))
web.ports[8080] = ("127.0.0.1", None)  # docker-py's spelling: any free port, on loopback only
with web:
    url = f"http://{web.get_container_host_ip()}:{web.get_exposed_port(8080)}/index.html"
    for attempt in range(50):
        try:
            body = urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=5).read()
            break
        except OSError:
            import time; time.sleep(0.1)
    print(url, body.decode().strip())
"""


def test_testcontainers_generic_container_waits_for_a_log_line_and_a_port(service: Service) -> None:
    """testcontainers reads its settings at import: a process of its own, Ryuk off, the host 127.0.0.1."""
    env = {k: v for k, v in service.env.items() if not k.startswith(("DOCKER_", "TESTCONTAINERS_", "TC_"))}
    env.update(DOCKER_HOST=f"unix://{service.socket}", TESTCONTAINERS_RYUK_DISABLED="true",
               TESTCONTAINERS_HOST_OVERRIDE="127.0.0.1", TESTCONTAINERS_CONNECTION_MODE="docker_host",
               DOCKER_CONFIG=str(service.socket.parent / "docker-config"))
    proc = subprocess.run([sys.executable, "-c", TESTCONTAINERS_SCRIPT], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    url, body = proc.stdout.split()
    assert url.startswith("http://127.0.0.1:") and body == "tc-ok"
    assert service.docker("ps", "-aq").stdout == ""  # stopped and removed on leaving the ``with``
