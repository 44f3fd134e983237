"""Raw HTTP over the service's unix socket: Docker's status codes, error bodies, headers and streams;
the socket's permissions; stale, live and non-socket files; TCP without TLS refused; the idle timeout."""

from __future__ import annotations

import json
import os
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

from tests.api_server.conftest import Service, start_service, stop_service, wait_for_socket


def _create(service: Service, name: str, *command: str, **config: object) -> str:
    status, _, body = service.request("POST", f"/v1.41/containers/create?name={name}",
                                      {"Image": "busybox", "Cmd": list(command), **config})
    assert status == 201, body
    document = json.loads(body)
    assert document["Warnings"] == []
    return str(document["Id"])


def test_ping_and_the_headers_clients_negotiate_with(service: Service) -> None:
    for method in ("GET", "HEAD"):
        status, headers, body = service.request(method, "/_ping")
        assert status == 200 and body == (b"OK" if method == "GET" else b"")
        assert headers["Api-Version"] == "1.41"
        assert headers["Docker-Experimental"] == "false" and headers["Ostype"] == "linux"
        assert headers["Server"].startswith("skiff/")


def test_version_prefixes(service: Service) -> None:
    for prefix in ("", "/v1.12", "/v1.24", "/v1.41", "/v1.43"):
        status, _, body = service.request("GET", f"{prefix}/version")
        assert status == 200 and json.loads(body)["ApiVersion"] == "1.41", prefix
    status, _, body = service.request("GET", "/v1.44/version")
    assert status == 400
    assert json.loads(body) == {"message": "client version 1.44 is too new. Maximum supported API version is 1.43"}
    status, _, body = service.request("GET", "/v1.41/nothing/here")
    assert (status, json.loads(body)) == (404, {"message": "page not found"})


def test_unknown_container_is_404_with_dockers_message(service: Service) -> None:
    for method, path in (("GET", "/containers/nosuch/json"), ("POST", "/containers/nosuch/start"),
                         ("POST", "/containers/nosuch/stop"), ("DELETE", "/containers/nosuch"),
                         ("GET", "/containers/nosuch/logs?stdout=1"), ("POST", "/containers/nosuch/wait")):
        status, headers, body = service.request(method, f"/v1.41{path}")
        assert status == 404, (method, path, body)
        assert json.loads(body) == {"message": "No such container: nosuch"}
        assert headers["Content-Type"] == "application/json"


def test_bad_json_and_wrong_types_are_400_and_create_nothing(service: Service) -> None:
    status, _, body = service.request("POST", "/v1.41/containers/create", raw=b'{"Image": "busybox", ')
    assert status == 400 and json.loads(body)["message"].startswith("invalid JSON in the request body")
    status, _, body = service.request("POST", "/v1.41/containers/create", {"Image": "busybox", "Cmd": 5})
    assert (status, json.loads(body)) == (400, {"message": "Cmd must be a list of strings"})
    status, _, body = service.request("POST", "/v1.41/containers/create",
                                      {"Image": "busybox", "HostConfig": {"StorageOpt": {"size": "1G"}}})
    assert status == 501 and "HostConfig.StorageOpt" in json.loads(body)["message"]
    status, _, body = service.request("POST", "/v1.41/containers/create", {"Image": "nosuch:image"})
    assert (status, json.loads(body)) == (404, {"message": "No such image: nosuch:image"})
    assert service.skiff("ps", "-aq") == ""


def test_lifecycle_status_codes(service: Service) -> None:
    cid = _create(service, "api-life", "sh", "-c", "trap 'exit 7' HUP; while :; do sleep 0.1; done")
    assert service.request("POST", f"/v1.41/containers/{cid}/stop")[0] == 304  # created: not running
    assert service.request("POST", f"/v1.41/containers/{cid}/start")[0] == 204
    assert service.request("POST", f"/v1.41/containers/api-life/start")[0] == 304  # already running
    status, _, body = service.request("GET", "/v1.41/containers/json?filters=" + quote(json.dumps({"name": ["api-life"]})))
    [summary] = json.loads(body)
    assert summary["Id"] == cid and summary["Names"] == ["/api-life"] and summary["State"] == "running"
    assert summary["Command"] == "sh -c trap 'exit 7' HUP; while :; do sleep 0.1; done"
    assert summary["Status"].startswith("Up ") and summary["Image"] == "busybox"
    status, _, body = service.request("DELETE", f"/v1.41/containers/{cid}")
    assert status == 409 and "Stop the container before attempting removal" in json.loads(body)["message"]
    status, _, body = service.request("POST", f"/v1.41/containers/{cid}/kill?signal=HUP")
    assert status == 204
    status, _, body = service.request("POST", f"/v1.41/containers/{cid}/wait")
    assert (status, json.loads(body)) == (200, {"Error": None, "StatusCode": 7})
    status, _, body = service.request("POST", f"/v1.41/containers/{cid}/kill")
    assert status == 409 and "is not running" in json.loads(body)["message"]
    assert service.request("POST", f"/v1.41/containers/{cid}/wait?condition=sideways")[0] == 400
    assert service.request("DELETE", f"/v1.41/containers/{cid}?v=1")[0] == 204
    assert service.request("GET", f"/v1.41/containers/{cid}/json")[0] == 404


def test_logs_are_multiplexed_without_a_tty_and_raw_with_one(service: Service) -> None:
    plain = _create(service, "api-frames", "sh", "-c", "echo one; echo two >&2")
    tty = _create(service, "api-tty", "sh", "-c", "echo raw", Tty=True)
    for cid in (plain, tty):
        service.request("POST", f"/containers/{cid}/start")
        assert json.loads(service.request("POST", f"/containers/{cid}/wait")[2])["StatusCode"] == 0
    status, headers, body = service.request("GET", f"/v1.41/containers/{plain}/logs?stdout=1&stderr=1")
    assert status == 200
    frames = []
    while body:
        kind, length = struct.unpack(">BxxxL", body[:8])
        frames.append((kind, body[8:8 + length]))
        body = body[8 + length:]
    assert frames == [(1, b"one\n"), (2, b"two\n")]
    assert service.request("GET", f"/v1.41/containers/{plain}/logs?stderr=1")[2] == struct.pack(">BxxxL", 2, 4) + b"two\n"
    status, _, body = service.request("GET", f"/v1.41/containers/{plain}/logs")
    assert (status, json.loads(body)) == (400, {"message": "Bad parameters: you must choose at least one stream"})
    assert service.request("GET", f"/v1.41/containers/{tty}/logs?stdout=1")[2] == b"raw\r\n"
    for cid in (plain, tty):
        assert service.request("DELETE", f"/containers/{cid}")[0] == 204


def test_a_client_that_hangs_up_on_its_wait_is_no_error_in_the_log(service: Service) -> None:
    """``docker run -d`` asks for the container's wait, then hangs up once it is started: the
    wait's thread ends within its half-second poll, and nothing is logged as failed."""
    logged = service.log.stat().st_size
    cid = service.docker("run", "-d", "busybox", "sleep", "30").stdout.strip()
    try:
        time.sleep(1.5)  # the wait's poll (0.5 s) has seen the client gone, and its answer failed
        assert service.log.read_bytes()[logged:].decode() == ""
    finally:
        service.docker("rm", "-f", cid)


def test_wait_streams_and_does_not_block_others(service: Service) -> None:
    cid = _create(service, "api-wait", "sh", "-c", "sleep 2; exit 3")
    service.request("POST", f"/containers/{cid}/start")
    answer: list[tuple[int, dict[str, str], bytes]] = []
    waiter = threading.Thread(target=lambda: answer.append(service.request("POST", f"/containers/{cid}/wait")))
    waiter.start()
    started = time.monotonic()
    assert service.request("GET", "/_ping")[0] == 200
    assert service.request("GET", f"/containers/{cid}/json")[0] == 200
    assert time.monotonic() - started < 1.5 and not answer  # answered while the wait still waits
    waiter.join(timeout=30)
    assert json.loads(answer[0][2]) == {"Error": None, "StatusCode": 3}
    assert service.request("DELETE", f"/containers/{cid}")[0] == 204


def test_the_socket_is_0660_and_root_owned(service: Service) -> None:
    info = os.lstat(service.socket)
    assert stat.S_ISSOCK(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o660 and info.st_uid == 0
    assert not [p for p in service.socket.parent.iterdir() if p.name.endswith(".tmp")]


def test_a_live_socket_is_refused(service: Service) -> None:
    second = subprocess.run([sys.executable, "-m", "skiff", "system", "service", "--host",
                             f"unix://{service.socket}"], env=service.env, capture_output=True, text=True, timeout=30)
    assert second.returncode == 125
    assert "another server is listening on this socket" in second.stderr
    assert service.request("GET", "/_ping")[0] == 200  # the first one still serves


def test_a_stale_socket_is_replaced_and_the_idle_server_exits(service: Service, tmp_path: Path) -> None:
    path = tmp_path / "stale.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # the file stays, nothing listens: a server that died
    log = tmp_path / "service.log"
    process = start_service(service.env, log, "--host", f"unix://{path}", "--time", "1")
    try:
        wait_for_socket(path, process)
        assert stat.S_IMODE(os.lstat(path).st_mode) == 0o660
        assert process.wait(timeout=15) == 0  # no connection for a second: it exits by itself
    finally:
        if process.poll() is None:
            stop_service(process)
    assert not path.exists()


def test_a_file_that_is_not_a_socket_is_never_replaced(service: Service, tmp_path: Path) -> None:
    path = tmp_path / "docker.sock"
    path.write_text("keep me")
    refused = subprocess.run([sys.executable, "-m", "skiff", "system", "service", "--host", f"unix://{path}"],
                             env=service.env, capture_output=True, text=True, timeout=30)
    assert refused.returncode == 125 and "is not a socket" in refused.stderr
    assert path.read_text() == "keep me"


def test_plain_tcp_is_refused(service: Service) -> None:
    for host in ("tcp://127.0.0.1:23750", "tcp://0.0.0.0:23750"):
        refused = subprocess.run([sys.executable, "-m", "skiff", "system", "service", "--host", host],
                                 env=service.env, capture_output=True, text=True, timeout=30)
        assert refused.returncode == 125, refused.stderr
        assert "without TLS" in refused.stderr
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", 23750)) != 0  # nothing was left listening


def test_tcp_needs_a_client_certificate(service: Service, tmp_path: Path) -> None:
    from tests.registry.servers import make_pki

    pki = make_pki(tmp_path / "pki")
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    process = start_service(service.env, tmp_path / "tls.log", "--host", f"tcp://127.0.0.1:{port}", "--time", "0",
                            "--tlsverify", "--tlscacert", str(pki.ca_cert), "--tlscert", str(pki.cert),
                            "--tlskey", str(pki.key))
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert process.poll() is None, (tmp_path / "tls.log").read_text()
            time.sleep(0.05)
        docker = ["/usr/bin/docker", "-H", f"tcp://127.0.0.1:{port}", "--tlsverify", "--tlscacert", str(pki.ca_cert)]
        env = {**service.env, "DOCKER_CONFIG": str(tmp_path / "docker-config")}
        client = ["--tlscert", str(tmp_path / "pki/client/client.cert"), "--tlskey",
                  str(tmp_path / "pki/client/client.key")]
        served = subprocess.run([*docker, *client, "version", "--format", "{{.Server.APIVersion}}"], env=env,
                                capture_output=True, text=True, timeout=30)
        assert served.stdout.strip() == "1.41", served.stderr
        anonymous = subprocess.run([*docker, "version", "--format", "{{.Server.APIVersion}}"], env=env,
                                   capture_output=True, text=True, timeout=30)
        assert anonymous.returncode != 0 and "1.41" not in anonymous.stdout  # no certificate: no answer
        with socket.create_connection(("127.0.0.1", port), timeout=10) as plain:
            plain.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                answer = plain.recv(4096)
            except ConnectionResetError:
                answer = b""
            assert b"200 OK" not in answer  # plain HTTP on the TLS port: never served
    finally:
        stop_service(process)
    assert process.returncode == 0 and "Traceback" not in (tmp_path / "tls.log").read_text()


def test_many_clients_at_once(service: Service) -> None:
    """Ten `docker run -d` at the same moment (the default bridge, the same records and locks): all succeed."""
    runs = [subprocess.Popen(["/usr/bin/docker", "-H", f"unix://{service.socket}", "run", "-d", "--name",
                              f"api-many-{i}", "busybox", "sleep", "30"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True,
                             env={**service.env, "DOCKER_CONFIG": str(service.socket.parent / "docker-config")})
            for i in range(10)]
    results = [(run.wait(timeout=120), *run.communicate()) for run in runs]
    try:
        assert all(code == 0 and len(out.strip()) == 64 for code, out, _ in results), results
        status, _, body = service.request("GET", "/containers/json?filters=" + quote(json.dumps({"name": ["api-many"]})))
        listed = json.loads(body)
        assert len(listed) == 10 and {c["State"] for c in listed} == {"running"}
        addresses = {c["NetworkSettings"]["Networks"]["bridge"]["IPAddress"] for c in listed}
        assert len(addresses) == 10  # ten leases, none given twice
    finally:
        for i in range(10):
            service.request("DELETE", f"/containers/api-many-{i}?force=1")
    assert service.skiff("ps", "-aq") == ""


def test_containers_outlive_a_killed_server_and_the_next_one_sees_them(service: Service, tmp_path: Path) -> None:
    path = tmp_path / "own.sock"
    first = start_service(service.env, tmp_path / "first.log", "--host", f"unix://{path}", "--time", "0")
    try:
        wait_for_socket(path, first)
        mine = Service(service.env, path, first, tmp_path / "first.log")
        cid = mine.docker("run", "-d", "--name", "api-survivor", "busybox", "sleep", "60").stdout.strip()
    finally:
        first.kill()  # SIGKILL: no clean-up at all; its socket stays, stale
        first.wait()
    assert path.is_socket()
    assert service.skiff("ps", "-q", "--no-trunc").split() == [cid]  # still running, under its monitor
    second = start_service(service.env, tmp_path / "second.log", "--host", f"unix://{path}", "--time", "0")
    try:
        wait_for_socket(path, second)
        again = Service(service.env, path, second, tmp_path / "second.log")
        assert again.docker("ps", "--format", "{{.ID}} {{.Names}}").stdout == f"{cid[:12]} api-survivor\n"
        assert again.docker("rm", "-f", "api-survivor").stdout.strip() == "api-survivor"
    finally:
        stop_service(second)
    assert not path.exists() and service.skiff("ps", "-aq") == ""


def test_restart_pause_unpause_rename(service: Service) -> None:
    cid = _create(service, "api-cycle", "sleep", "60")
    assert service.request("POST", f"/containers/{cid}/pause")[0] == 409  # not running
    assert service.request("POST", f"/containers/{cid}/restart?t=1")[0] == 204  # a created one is started
    assert service.docker("inspect", "api-cycle", "--format", "{{.State.Status}}").stdout.strip() == "running"
    assert service.docker("pause", "api-cycle").stdout.strip() == "api-cycle"
    status, _, body = service.request("POST", f"/containers/{cid}/pause")
    assert status == 409 and "already paused" in json.loads(body)["message"]
    assert service.docker("ps", "--format", "{{.Status}}", "--filter", f"id={cid}").stdout.startswith("Up ")
    assert service.docker("unpause", "api-cycle").stdout.strip() == "api-cycle"
    assert service.request("POST", f"/containers/{cid}/unpause")[0] == 409  # not paused
    started = service.docker("inspect", "api-cycle", "--format", "{{.State.StartedAt}}").stdout
    assert service.docker("restart", "-t", "0", "api-cycle").stdout.strip() == "api-cycle"
    assert service.docker("inspect", "api-cycle", "--format", "{{.State.StartedAt}}").stdout != started
    other = _create(service, "api-other", "true")
    status, _, body = service.request("POST", f"/containers/{cid}/rename?name=api-other")
    assert status == 409 and "is already in use" in json.loads(body)["message"]
    assert service.request("POST", f"/containers/{cid}/rename")[0] == 400
    service.docker("rename", "api-cycle", "api-renamed")
    assert service.skiff("inspect", cid, "--format", "{{.Name}}").strip() == "/api-renamed"
    for ref in (cid, other):
        assert service.request("DELETE", f"/containers/{ref}?force=1")[0] == 204


def test_an_oversize_body_is_refused_before_it_is_read(service: Service) -> None:
    with socket.socket(socket.AF_UNIX) as raw:
        raw.connect(str(service.socket))
        raw.sendall(b"POST /v1.41/containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 1073741824\r\n\r\n{")
        raw.settimeout(10)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.endswith(b"}\n"):
            chunk = raw.recv(4096)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b'{"message":"request body too large: 1073741824 bytes (at most 16777216)"}' in answer
    assert service.skiff("ps", "-aq") == ""
