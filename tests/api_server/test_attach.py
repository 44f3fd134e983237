"""Attach through ``skiff system service``: ``docker run`` without ``-d`` (create, attach, start, wait),
``run -i`` with stdin, ``run -it`` and ``attach`` with the detach keys on a pseudo-terminal, resize,
and the hijack itself over a raw socket (the ``101 UPGRADED`` handshake, the 8-byte frames,
the half-close that ends a ``StdinOnce`` container's input)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.api_server.conftest import DOCKER, Service
from tests.api_server.terminal import Terminal, terminals  # noqa: F401 - terminals is a fixture

ROWS, COLS = 33, 111


def test_run_rm_echo_prints_and_is_removed(service: Service) -> None:
    proc = service.docker("run", "--rm", "busybox", "echo", "hi")
    assert proc.stdout == "hi\n" and proc.returncode == 0
    assert service.docker("ps", "-aq").stdout == ""


def test_run_foreground_keeps_the_streams_apart_and_passes_the_exit_code(service: Service) -> None:
    proc = service.docker("run", "--name", "api-fg", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3",
                          check=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (3, "out\n", "err\n")
    assert service.docker("inspect", "--format", "{{.State.ExitCode}}", "api-fg").stdout.strip() == "3"
    service.docker("rm", "api-fg")


def test_start_attach_and_attach_to_a_running_one(service: Service) -> None:
    service.docker("create", "--name", "api-sa", "busybox", "sh", "-c", "echo started; exit 6")
    proc = service.docker("start", "-a", "api-sa", check=False)
    assert (proc.returncode, proc.stdout) == (6, "started\n")
    service.docker("rm", "api-sa")
    cid = service.docker("run", "-d", "busybox", "sh", "-c", "sleep 1; echo late; exit 2").stdout.strip()
    proc = service.docker("attach", cid, check=False)
    assert (proc.returncode, proc.stdout) == (2, "late\n")
    service.docker("rm", cid)


def test_run_interactive_reads_stdin_until_its_end(service: Service) -> None:
    env = {k: v for k, v in service.env.items() if not k.startswith("DOCKER_")}
    env["DOCKER_CONFIG"] = str(service.socket.parent / "docker-config")
    proc = subprocess.run([DOCKER, "-H", f"unix://{service.socket}", "run", "-i", "--rm", "busybox", "sh", "-c",
                           "tr a-z A-Z; echo done"], input="hello\nworld\n", env=env, capture_output=True,
                          text=True, timeout=60)
    assert (proc.returncode, proc.stdout) == (0, "HELLO\nWORLD\ndone\n"), proc.stderr


def test_run_it_shell_resize_and_exit_code(service: Service, terminals: list[Terminal]) -> None:
    term = Terminal(service, ROWS, COLS, "run", "-it", "--rm", "busybox", "sh")
    terminals.append(term)
    term.type("echo $((6*7))\r")
    term.read_until("42")
    term.type("stty size\r")
    term.read_until(f"{ROWS} {COLS}")
    term.type("exit 5\r")
    assert term.wait() == 5


def test_attach_detach_keys_leave_it_running(service: Service, terminals: list[Terminal]) -> None:
    cid = service.docker("run", "-dit", "--name", "api-att", "busybox", "sh").stdout.strip()
    term = Terminal(service, ROWS, COLS, "attach", "api-att")
    terminals.append(term)
    term.type("echo attached-$((2+3))\r")
    term.read_until("attached-5")
    term.type("\x10\x11")  # ctrl-p ctrl-q
    assert term.wait() == 1  # the docker CLI reads the keys itself with a TTY, and says so (exit 1)
    assert b"read escape sequence" in term.output
    assert service.docker("inspect", "--format", "{{.State.Running}}", cid).stdout.strip() == "true"
    service.docker("rm", "-f", cid)


def _hijack(service: Service, path: str, early: bytes = b"") -> tuple[socket.socket, bytes]:
    """The request (and ``early``, stdin sent before the answer, in the same write), then the answer's head."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(20)
    sock.connect(str(service.socket))
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
                 "Content-Length: 0\r\n\r\n".encode() + early)
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        assert chunk, head
        head += chunk
    return sock, head


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def _create(service: Service, body: dict[str, object]) -> str:
    status, _, answer = service.request("POST", "/v1.41/containers/create", {"Image": "busybox", **body})
    assert status == 201, answer
    return str(json.loads(answer)["Id"])


def test_raw_hijack_frames_and_half_close(service: Service) -> None:
    cid = _create(service, {"Cmd": ["sh", "-c", "cat; echo bye >&2"], "OpenStdin": True, "StdinOnce": True,
                            "AttachStdin": True})
    sock, head = _hijack(service, f"/v1.41/containers/{cid}/attach?stream=1&stdin=1&stdout=1&stderr=1")
    assert head.startswith(b"HTTP/1.1 101 UPGRADED\r\n")
    assert b"Content-Type: application/vnd.docker.raw-stream\r\n" in head
    assert b"Upgrade: tcp\r\n" in head
    assert service.request("POST", f"/v1.41/containers/{cid}/start")[0] == 204
    sock.sendall(b"hello\n")
    sock.shutdown(socket.SHUT_WR)  # the end of stdin: cat ends
    data = _read_all(sock)
    sock.close()
    assert data == b"\x01\x00\x00\x00\x00\x00\x00\x06hello\n" + b"\x02\x00\x00\x00\x00\x00\x00\x04bye\n"
    status, _, answer = service.request("POST", f"/containers/{cid}/wait")
    assert status == 200 and json.loads(answer)["StatusCode"] == 0
    service.request("DELETE", f"/containers/{cid}")


def test_raw_detach_keys_and_a_later_api_version_s_content_type(service: Service) -> None:
    cid = _create(service, {"Cmd": ["cat"], "OpenStdin": True})
    assert service.request("POST", f"/containers/{cid}/start")[0] == 204
    sock, head = _hijack(service, f"/v1.42/containers/{cid}/attach?stream=1&stdin=1&stdout=1&detachKeys=ctrl-x",
                         early=b"early\n")
    assert b"Content-Type: application/vnd.docker.multiplexed-stream\r\n" in head
    assert sock.recv(64) == b"\x01\x00\x00\x00\x00\x00\x00\x06early\n"
    sock.sendall(b"ping\n")
    assert sock.recv(64) == b"\x01\x00\x00\x00\x00\x00\x00\x05ping\n"
    sock.sendall(b"\x18")
    assert _read_all(sock) == b""  # detached: the server ended the stream
    sock.close()
    time.sleep(0.3)
    status, _, answer = service.request("GET", f"/containers/{cid}/json")
    assert json.loads(answer)["State"]["Running"] is True
    assert service.request("DELETE", f"/containers/{cid}?force=1")[0] == 204


def test_resize_and_refusals(service: Service) -> None:
    cid = _create(service, {"Cmd": ["sh", "-c", "sleep 1; stty size; sleep 60"], "Tty": True, "OpenStdin": True})
    assert service.request("POST", f"/containers/{cid}/resize?h=12&w=34")[0] == 409  # not running
    assert service.request("POST", f"/containers/{cid}/start")[0] == 204
    assert service.request("POST", f"/containers/{cid}/resize?h=12&w=34")[0] == 200
    deadline = time.monotonic() + 10
    while b"12 34" not in service.request("GET", f"/containers/{cid}/logs?stdout=1")[2]:
        assert time.monotonic() < deadline, "the size did not reach the container"
        time.sleep(0.2)
    assert service.request("POST", f"/containers/{cid}/pause")[0] == 204
    assert service.request("POST", f"/containers/{cid}/attach?stream=1&stdout=1")[0] == 409
    assert service.request("POST", f"/containers/{cid}/unpause")[0] == 204
    assert service.request("DELETE", f"/containers/{cid}?force=1")[0] == 204
    assert service.request("POST", "/containers/nope/attach?stream=1")[0] == 404


@pytest.fixture(autouse=True)
def _no_leftover_sessions(service: Service) -> None:
    """Each test starts from no container (a failed one's leftovers do not spoil the next)."""
    left = service.docker("ps", "-aq").stdout.split()
    if left:
        service.docker("rm", "-f", *left)
    assert os.path.exists(service.socket)


def test_many_runs_at_once_while_the_server_logs(service: Service, tmp_path: Path) -> None:
    """The server is threaded and a start forks its monitor: with --debug every request's thread
    writes to the log while others fork. Twenty foreground runs (attach, start, wait) and twenty
    detached ones at once, with ps and pings in between, all succeed with their own output."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.api_server.conftest import stop_service, wait_for_socket

    socket_path = tmp_path / "debug.sock"
    log = tmp_path / "debug.log"
    with open(log, "ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "skiff", "--debug", "system", "service", "--host",
                                    f"unix://{socket_path}", "--time", "0"], env=service.env, stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        wait_for_socket(socket_path, process)
        env = {k: v for k, v in service.env.items() if not k.startswith("DOCKER_")}
        env["DOCKER_CONFIG"] = str(tmp_path / "docker-config")

        def docker(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([DOCKER, "-H", f"unix://{socket_path}", *args], env=env, capture_output=True,
                                  text=True, timeout=120)

        def job(n: int) -> tuple[int, str]:
            if n % 4 == 0:
                proc = docker("run", "--rm", "busybox", "echo", f"run-{n}")
            elif n % 4 == 1:
                proc = docker("run", "-d", "--label", "many=1", "busybox", "true")
            elif n % 4 == 2:
                proc = docker("ps", "-a")
            else:
                proc = docker("run", "--rm", "busybox", "sh", "-c", f"exit {n % 50}")
            return proc.returncode, proc.stdout + proc.stderr

        with ThreadPoolExecutor(max_workers=16) as pool:
            results = list(pool.map(job, range(80)))
        for n, (code, text) in enumerate(results):
            if n % 4 == 0:
                assert (code, text) == (0, f"run-{n}\n"), n
            elif n % 4 == 3:
                assert code == n % 50, (n, text)
            else:
                assert code == 0, (n, text)
        left = docker("ps", "-aq", "--filter", "label=many=1").stdout.split()
        assert len(left) == 20
        docker("rm", "-f", *left)
    finally:
        stop_service(process)
    assert "Traceback" not in log.read_text()


def test_wait_removed_answers_once_an_auto_removed_container_is_gone(service: Service) -> None:
    """``wait?condition=removed`` of a running ``--rm`` container: not before its exit (the wait
    watches the monitor, which removes the record before it exits), then its exit code."""
    cid = service.docker("run", "-d", "--rm", "busybox", "sh", "-c", "sleep 1; exit 4").stdout.strip()
    started = time.monotonic()
    status, _, body = service.request("POST", f"/v1.41/containers/{cid}/wait?condition=removed")
    assert (status, json.loads(body)) == (200, {"Error": None, "StatusCode": 4})
    assert time.monotonic() - started > 0.5
    assert service.docker("ps", "-aq").stdout == ""


def test_run_rm_passes_the_exit_code(service: Service) -> None:
    proc = service.docker("run", "--rm", "busybox", "sh", "-c", "echo bye; exit 5", check=False)
    assert (proc.returncode, proc.stdout) == (5, "bye\n")
    assert service.docker("ps", "-aq").stdout == ""
