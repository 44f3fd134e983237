"""The real docker CLI 20.10 against ``skiff system service``: the commands it serves so far."""

from __future__ import annotations

import json
import subprocess
import time

from tests.api_server.conftest import DOCKER, Service


def test_version_and_info_are_skiffs_documents(service: Service) -> None:
    assert service.docker("version", "--format", "{{.Server.APIVersion}}").stdout.strip() == "1.41"
    served = json.loads(service.docker("info", "--format", "{{json .}}").stdout)
    local = json.loads(service.skiff("info", "--format", "{{json .}}"))
    for key in ("ID", "Driver", "DockerRootDir", "ServerVersion", "Images", "OperatingSystem"):
        assert served[key] == local[key], key


def test_run_detached_ps_logs_stop_rm(service: Service) -> None:
    cid = service.docker("run", "-d", "--name", "api-web", "-e", "WHO=api", "busybox", "sh", "-c",
                         "echo out $WHO; echo err >&2; exec sleep 60").stdout.strip()
    assert len(cid) == 64
    listed = service.docker("ps", "-a", "--format", "{{.ID}} {{.Names}} {{.Image}} {{.Status}}").stdout
    assert f"{cid[:12]} api-web busybox Up " in listed
    assert service.skiff("ps", "-q", "--no-trunc").split() == [cid]  # the CLI sees the same container
    deadline = time.monotonic() + 10
    while "out api" not in service.docker("logs", "api-web").stdout and time.monotonic() < deadline:
        time.sleep(0.1)
    logs = service.docker("logs", "api-web")
    assert logs.stdout == "out api\n" and logs.stderr == "err\n"  # the frames kept the streams apart
    stamped = service.docker("logs", "-t", "api-web").stdout
    assert stamped.endswith(" out api\n") and stamped[:4].isdigit()
    assert service.docker("stop", "-t", "1", "api-web").stdout.strip() == "api-web"
    status = service.docker("ps", "-a", "--filter", "name=api-web", "--format", "{{.Status}}").stdout
    assert status.startswith("Exited (137)")
    assert service.docker("rm", "-v", "api-web").stdout.strip() == "api-web"
    assert service.docker("ps", "-aq").stdout == ""
    assert service.skiff("ps", "-aq") == ""


def test_the_readmes_volume_scenario(service: Service) -> None:
    """A named volume outlives the container that wrote into it; the next one reads it back."""
    assert service.docker("volume", "create", "api-data").stdout.strip() == "api-data"
    assert "api-data" in service.docker("volume", "ls", "--format", "{{.Name}}").stdout.split()
    service.docker("run", "-d", "--name", "api-writer", "-v", "api-data:/data", "busybox", "sh", "-c",
                   "echo kept > /data/note")
    wait = service.docker("wait", "api-writer", timeout=30)
    assert wait.stdout.strip() == "0"
    service.docker("run", "-d", "--name", "api-reader", "-v", "api-data:/data", "busybox", "cat", "/data/note")
    assert service.docker("wait", "api-reader", timeout=30).stdout.strip() == "0"
    assert service.docker("logs", "api-reader").stdout == "kept\n"
    in_use = service.docker("volume", "rm", "api-data", check=False)
    assert in_use.returncode == 1 and "volume is in use" in in_use.stderr
    service.docker("rm", "api-writer", "api-reader")
    assert service.docker("volume", "rm", "api-data").stdout.strip() == "api-data"
    assert "api-data" not in service.docker("volume", "ls", "--format", "{{.Name}}").stdout.split()


def test_a_followed_log_never_blocks_other_requests(service: Service) -> None:
    service.docker("run", "-d", "--name", "api-ticker", "busybox", "sh", "-c",
                   "while true; do echo tick; sleep 0.2; done")
    follower = subprocess.Popen([DOCKER, "-H", f"unix://{service.socket}", "logs", "-f", "api-ticker"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**service.env, "DOCKER_CONFIG": str(service.socket.parent / "docker-config")})
    try:
        assert follower.stdout is not None
        assert follower.stdout.readline() == b"tick\n"
        started = time.monotonic()
        for _ in range(3):
            assert "api-ticker" in service.docker("ps", "--format", "{{.Names}}").stdout
        assert time.monotonic() - started < 10
        service.docker("stop", "-t", "1", "api-ticker")
        assert follower.wait(timeout=20) == 0  # the stream ends with the container
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
        service.docker("rm", "-f", "api-ticker", check=False)


def test_images_and_networks(service: Service) -> None:
    assert service.docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split() == ["busybox:latest"]
    image_id = service.skiff("image", "inspect", "busybox", "--format", "{{.Id}}").strip()
    assert service.docker("image", "inspect", "busybox", "--format", "{{.Id}}").stdout.strip() == image_id
    from tests.network.conftest import free_subnet

    subnet = free_subnet()
    network_id = service.docker("network", "create", "--subnet", subnet, "api-net").stdout.strip()
    config = service.docker("network", "inspect", "api-net", "--format", "{{range .IPAM.Config}}{{.Subnet}}{{end}}")
    assert config.stdout.strip() == subnet
    assert service.docker("network", "inspect", "api-net", "--format", "{{.Id}}").stdout.strip() == network_id
    names = service.docker("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert {"api-net", "bridge", "host", "none"} <= set(names)
    assert service.docker("network", "rm", "api-net").stdout.strip() == "api-net"
    assert "api-net" not in service.skiff("network", "ls", "--format", "{{.Name}}").split()


def _threads(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("Threads:"))


def test_events_of_the_api_and_the_cli(service: Service) -> None:
    since = f"{time.time() - 1:.3f}"
    service.docker("volume", "create", "api-events")
    service.skiff("volume", "rm", "api-events")  # the CLI's events are the same log's
    until = f"{time.time() + 0.5:.3f}"
    past = service.docker("events", "--since", since, "--until", until, "--filter", "type=volume",
                          "--format", "{{.Type}} {{.Action}} {{.Actor.ID}}", timeout=30).stdout.splitlines()
    assert past == ["volume create api-events", "volume destroy api-events"]

    baseline = _threads(service.process.pid)
    follower = subprocess.Popen([DOCKER, "-H", f"unix://{service.socket}", "events", "--filter", "type=container",
                                 "--format", "{{.Action}} {{.Actor.Attributes.name}}"], stdout=subprocess.PIPE,
                                text=True, env={**service.env, "DOCKER_CONFIG": str(service.socket.parent / "cfg")})
    try:
        time.sleep(0.5)  # its request is in before the container is made
        service.docker("run", "-d", "--name", "api-evented", "busybox", "true")
        assert follower.stdout is not None
        assert follower.stdout.readline() == "create api-evented\n"
        assert follower.stdout.readline() == "start api-evented\n"
    finally:
        follower.kill()
        follower.wait()
        service.docker("rm", "-f", "api-evented")
    deadline = time.monotonic() + 5
    while _threads(service.process.pid) > baseline and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _threads(service.process.pid) <= baseline  # the hung-up stream's thread ended
