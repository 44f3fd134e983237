"""Create fields through the real docker CLI 20.10 and docker-py: ``--security-opt``, ``--ulimit``,
``--cgroup-parent``, ``--link`` (default bridge and a user network), ``--privileged`` (run and exec),
and the IPv6 fields skiff refuses with Docker's status code."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api_server.conftest import Service


def _own_bounding_set() -> int:
    """Every capability this machine lets a process hold (a VM may drop some from every bounding set)."""
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("CapBnd:")).split()[1], 16)


FULL = _own_bounding_set()


def _cap_eff(status: str) -> int:
    return int(next(line for line in status.splitlines() if line.startswith("CapEff:")).split()[1], 16)


def test_security_opt_no_new_privileges_and_seccomp_unconfined(service: Service) -> None:
    out = service.docker("run", "--rm", "--security-opt", "no-new-privileges", "--security-opt", "seccomp=unconfined",
                         "busybox", "grep", "-E", "^(NoNewPrivs|Seccomp):", "/proc/self/status").stdout
    assert out.split() == ["NoNewPrivs:", "1", "Seccomp:", "0"]
    default = service.docker("run", "--rm", "busybox", "grep", "-E", "^(NoNewPrivs|Seccomp):",
                             "/proc/self/status").stdout
    assert default.split() == ["NoNewPrivs:", "0", "Seccomp:", "2"]


def test_security_opt_seccomp_profile_file_and_inspect(service: Service, tmp_path: os.PathLike[str]) -> None:
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
    path = os.path.join(tmp_path, "profile.json")
    with open(path, "w") as f:
        json.dump(profile, f)
    cid = service.docker("create", "--security-opt", f"seccomp={path}", "--security-opt", "label=disable",
                         "busybox", "mkdir", "/x").stdout.strip()
    try:
        opts = json.loads(service.docker("inspect", "--format", "{{json .HostConfig.SecurityOpt}}", cid).stdout)
        assert opts[1] == "label=disable" and json.loads(opts[0].partition("=")[2]) == profile
        proc = service.docker("start", "-a", cid, check=False)
        assert proc.returncode == 1 and "Operation not permitted" in proc.stderr
    finally:
        service.docker("rm", "-f", cid, check=False)


def test_security_opt_refused_as_dockerd(service: Service) -> None:
    proc = service.docker("create", "--security-opt", "apparmor=docker-custom", "busybox", check=False)
    assert proc.returncode == 1 and "apparmor" in proc.stderr.lower()
    proc = service.docker("create", "--security-opt", "seccomp=nosuchfile.json", "busybox", check=False)
    assert proc.returncode == 125  # the client reads the file: nothing reaches the server


def test_ulimits(service: Service) -> None:
    out = service.docker("run", "--rm", "--ulimit", "nofile=1024:2048", "--ulimit", "nproc=77", "busybox", "sh",
                         "-c", "ulimit -n; ulimit -Hn; ulimit -u").stdout
    assert out.split() == ["1024", "2048", "77"]
    status, _, body = service.request("POST", "/v1.41/containers/create", {  # the client checks it too
        "Image": "busybox", "HostConfig": {"Ulimits": [{"Name": "nofile", "Soft": 20, "Hard": 10}]}})
    assert status == 400 and b"ulimit soft limit must be less than or equal to hard limit" in body


@pytest.fixture
def cgroup_parent() -> Iterator[str]:
    parent = f"skiff-test-parent-{secrets.token_hex(3)}"
    yield parent
    for hierarchy in sorted(glob.glob(f"/sys/fs/cgroup/*/{parent}") + glob.glob(f"/sys/fs/cgroup/{parent}")):
        for below in sorted(glob.glob(f"{hierarchy}/**/", recursive=True), key=len, reverse=True):
            with contextlib.suppress(OSError):
                os.rmdir(below)
    assert not glob.glob(f"/sys/fs/cgroup/*/{parent}") + glob.glob(f"/sys/fs/cgroup/{parent}")


def test_cgroup_parent(service: Service, cgroup_parent: str) -> None:
    cid = service.docker("run", "-d", "--cgroup-parent", f"{cgroup_parent}/sub", "busybox", "sleep", "60").stdout.strip()
    try:
        cgroups = service.docker("exec", cid, "cat", "/proc/1/cgroup").stdout
        inspect = service.docker("inspect", "--format", "{{.HostConfig.CgroupParent}}", cid).stdout.strip()
        assert inspect == f"{cgroup_parent}/sub"
        on_host = open(f"/proc/{_pid(service, cid)}/cgroup").read()
        assert f"/{cgroup_parent}/sub/{cid}" in on_host, on_host
        assert cgroups  # inside, its own namespace may hide the path; the host sees where it lives
    finally:
        service.docker("rm", "-f", cid)
    proc = service.docker("create", "--cgroup-parent", "../../escape", "busybox", check=False)
    assert proc.returncode == 1 and "CgroupParent" in proc.stderr


def _pid(service: Service, cid: str) -> int:
    return int(service.docker("inspect", "--format", "{{.State.Pid}}", cid).stdout)


def test_links_on_the_default_bridge(service: Service) -> None:
    web = service.docker("run", "-d", "--name", "api-linked", "--expose", "80", "--expose", "53/udp",
                         "-e", "SECRET=s3", "busybox", "sleep", "60").stdout.strip()
    try:
        ip = service.docker("inspect", "--format", "{{.NetworkSettings.IPAddress}}", web).stdout.strip()
        out = service.docker("run", "--rm", "--name", "api-linker", "--link", "api-linked:db", "busybox", "sh", "-c",
                             "grep -w db /etc/hosts; env | grep ^DB_ | sort").stdout.splitlines()
        assert out[0] == f"{ip}\tdb {web[:12]} api-linked"
        assert sorted(out[1:]) == sorted([
            f"DB_PORT=udp://{ip}:53", f"DB_PORT_53_UDP=udp://{ip}:53", f"DB_PORT_53_UDP_ADDR={ip}",
            "DB_PORT_53_UDP_PORT=53", "DB_PORT_53_UDP_PROTO=udp",
            f"DB_PORT_80_TCP=tcp://{ip}:80", f"DB_PORT_80_TCP_ADDR={ip}", "DB_PORT_80_TCP_PORT=80",
            "DB_PORT_80_TCP_PROTO=tcp", "DB_NAME=/api-linker/db", "DB_ENV_SECRET=s3"])
        linker = service.docker("run", "-d", "--name", "api-linker3", "--link", "api-linked:db", "-e", "OWN=1",
                                "busybox", "sleep", "60").stdout.strip()
        try:  # as Docker's exec: the link variables again, between HOSTNAME and the container's own
            env = service.docker("exec", "-e", "EX=2", linker, "env").stdout.splitlines()
            assert env[2:4] == [f"DB_PORT=udp://{ip}:53", f"DB_PORT_53_UDP=udp://{ip}:53"], env
            assert env.index("DB_ENV_SECRET=s3") < env.index("OWN=1") < env.index("EX=2")
            service.docker("stop", "-t", "0", web)
            proc = service.docker("exec", linker, "true", check=False)
            assert proc.returncode == 1
            assert "Cannot link to a non running container: /api-linked AS /api-linker3/db" in proc.stderr
        finally:
            service.docker("rm", "-f", linker)
        cid = service.docker("create", "--name", "api-linker2", "--link", "api-linked", "busybox").stdout.strip()
        links = service.docker("inspect", "--format", "{{json .HostConfig.Links}}", cid).stdout
        assert json.loads(links) == ["/api-linked:/api-linker2/api-linked"]
        service.docker("rm", cid)
    finally:
        service.docker("rm", "-f", web)
    proc = service.docker("create", "--link", "nosuchbox:db", "busybox", check=False)
    assert proc.returncode == 1 and "could not get container for nosuchbox" in proc.stderr


def test_links_on_a_user_network_and_a_stopped_target(service: Service) -> None:
    service.docker("network", "create", "--subnet", _free_subnet(service), "api-linknet")
    try:
        target = service.docker("run", "-d", "--name", "api-ltarget", "--network", "api-linknet", "busybox",
                                "sleep", "60").stdout.strip()
        ip = service.docker("inspect", "--format", '{{(index .NetworkSettings.Networks "api-linknet").IPAddress}}',
                            target).stdout.strip()
        out = service.docker("run", "--rm", "--network", "api-linknet", "--link", "api-ltarget:al", "busybox", "sh",
                             "-c", "ping -c1 -W5 al >/dev/null && echo reached; env | grep -c ^AL_; true").stdout.split()
        assert out == ["reached", "0"]  # resolved; no link variables on a user network, as Docker
        service.docker("stop", "-t", "0", target)
        proc = service.docker("run", "--rm", "--network", "api-linknet", "--link", "api-ltarget:al", "busybox",
                              "true", check=False)
        assert proc.returncode == 126 or proc.returncode == 125
        assert "Cannot link to a non running container: /api-ltarget AS" in proc.stderr
        assert ip
    finally:
        service.docker("rm", "-f", "api-ltarget", check=False)
        service.docker("network", "rm", "api-linknet")


def _free_subnet(service: Service) -> str:
    from tests.network.conftest import free_subnet

    config = json.loads((Path(service.env["SKIFF_ROOT"]) / "network" / "config.json").read_text())
    return str(free_subnet(used=set(config["subnet_candidates"])))


def test_privileged_run_and_exec(service: Service) -> None:
    full = FULL
    out = service.docker("run", "--rm", "--privileged", "busybox", "cat", "/proc/self/status").stdout
    assert _cap_eff(out) == full
    cid = service.docker("run", "-d", "busybox", "sleep", "60").stdout.strip()
    try:
        plain = _cap_eff(service.docker("exec", cid, "cat", "/proc/self/status").stdout)
        privileged = _cap_eff(service.docker("exec", "--privileged", cid, "cat", "/proc/self/status").stdout)
        assert plain != full and privileged == full
        detached = service.docker("exec", "-d", "--privileged", cid, "sh", "-c",
                                  "grep CapEff /proc/self/status > /tmp/caps").returncode
        assert detached == 0
    finally:
        service.docker("rm", "-f", cid)


def test_ipv6_is_refused_with_dockers_status(service: Service) -> None:
    status, _, body = service.request("POST", "/v1.41/networks/create", {"Name": "api-v6", "EnableIPv6": True})
    assert status == 501 and b"IPv4 only" in body
    proc = service.docker("network", "create", "--ipv6", "--subnet", "fd00:1::/64", "api-v6", check=False)
    assert proc.returncode == 1 and "IPv4 only" in proc.stderr
    service.docker("network", "create", "--subnet", _free_subnet(service), "api-v4")
    try:
        proc = service.docker("create", "--network", "api-v4", "--ip6", "fd00::5", "busybox", check=False)
        assert proc.returncode == 1
        assert "user specified IP address is supported only when connecting to networks with user configured " \
               "subnets" in proc.stderr
        proc = service.docker("create", "--network", "api-v4", "--ip6", "10.1.2.3", "busybox", check=False)
        assert proc.returncode == 1 and "invalid IPv6 address: 10.1.2.3" in proc.stderr
        # docker-py sends the output fields empty: ignored, as dockerd ignores them
        status, _, body = service.request("POST", "/v1.41/containers/create", {
            "Image": "busybox", "HostConfig": {"NetworkMode": "api-v4"},
            "NetworkingConfig": {"EndpointsConfig": {"api-v4": {"GlobalIPv6Address": "", "IPv6Gateway": ""}}}})
        assert status == 201, body
        service.docker("rm", json.loads(body)["Id"])
    finally:
        service.docker("network", "rm", "api-v4")


def test_docker_py_fields(service: Service) -> None:
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=f"unix://{service.socket}")
    try:
        out = client.containers.run("busybox", ["sh", "-c", "ulimit -n; grep NoNewPrivs /proc/self/status"],
                                    ulimits=[docker.types.Ulimit(name="nofile", soft=99, hard=100)],
                                    security_opt=["no-new-privileges"], remove=True)
        assert out.decode().split() == ["99", "NoNewPrivs:", "1"]
        box = client.containers.run("busybox", "sleep 60", detach=True)
        try:
            code, output = box.exec_run("grep CapEff /proc/self/status", privileged=True)
            assert code == 0 and int(output.split()[1], 16) == FULL
        finally:
            box.remove(force=True)
    finally:
        client.close()
