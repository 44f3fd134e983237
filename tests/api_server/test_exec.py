"""``docker exec`` through ``skiff system service``: the exit code passed through, the streams kept
apart, stdin, ``-d``, ``-it`` on a pseudo-terminal (size, exit code), ``-u``/``-w``/``-e``, the
ExecInspect document, and the refusals (no container, stopped, an exec started twice)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.api_server.conftest import DOCKER, Service
from tests.api_server.terminal import Terminal, terminals  # noqa: F401 - terminals is a fixture

ROWS, COLS = 27, 93


@pytest.fixture
def box(service: Service) -> Iterator[str]:
    cid = service.docker("run", "-d", "--name", "api-exec", "busybox", "sleep", "300").stdout.strip()
    yield cid
    service.docker("rm", "-f", cid, check=False)


def test_exec_exit_code_streams_user_workdir_env(service: Service, box: str) -> None:
    proc = service.docker("exec", "api-exec", "sh", "-c", "echo out; echo err >&2; exit 7", check=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (7, "out\n", "err\n")
    proc = service.docker("exec", "-u", "nobody", "-w", "/tmp", "-e", "WHO=api", "api-exec", "sh", "-c",
                          "id -u; pwd; echo $WHO")
    assert proc.stdout == "65534\n/tmp\napi\n"


def test_exec_interactive_stdin_and_detached(service: Service, box: str) -> None:
    env = {k: v for k, v in service.env.items() if not k.startswith("DOCKER_")}
    env["DOCKER_CONFIG"] = str(service.socket.parent / "docker-config")
    proc = subprocess.run([DOCKER, "-H", f"unix://{service.socket}", "exec", "-i", "api-exec", "tr", "a-z", "A-Z"],
                          input="hello\n", env=env, capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout) == (0, "HELLO\n"), proc.stderr
    assert service.docker("exec", "-d", "api-exec", "sh", "-c", "sleep 0.2; echo bg > /tmp/bg").stdout == ""
    deadline = time.monotonic() + 10
    while service.docker("exec", "api-exec", "cat", "/tmp/bg", check=False).stdout != "bg\n":
        assert time.monotonic() < deadline, "the detached exec did not run"
        time.sleep(0.1)


def test_exec_it_terminal_size_and_exit_code(service: Service, box: str, terminals: list[Terminal]) -> None:
    term = Terminal(service, ROWS, COLS, "exec", "-it", "api-exec", "sh")
    terminals.append(term)
    term.type("stty size\r")
    term.read_until(f"{ROWS} {COLS}")
    term.type("tty; exit 4\r")
    term.read_until("/dev/pts/")
    assert term.wait() == 4


def test_exec_inspect_and_refusals(service: Service, box: str) -> None:
    status, _, body = service.request("POST", "/containers/api-exec/exec",
                                      {"Cmd": ["sh", "-c", "exit 3"], "AttachStdout": True})
    assert status == 201
    exec_id = json.loads(body)["Id"]
    status, _, body = service.request("GET", f"/exec/{exec_id}/json")
    document = json.loads(body)
    assert status == 200 and document["Running"] is False and document["ExitCode"] is None
    assert document["ContainerID"] == box and document["ProcessConfig"]["entrypoint"] == "sh"
    assert document["ProcessConfig"]["arguments"] == ["-c", "exit 3"] and document["OpenStdout"] is True
    assert service.request("POST", f"/exec/{exec_id}/start", {"Detach": True})[0] == 200
    deadline = time.monotonic() + 10
    while json.loads(service.request("GET", f"/exec/{exec_id}/json")[2])["ExitCode"] != 3:
        assert time.monotonic() < deadline, "the exit code was not recorded"
        time.sleep(0.1)
    assert service.request("POST", f"/exec/{exec_id}/start", {"Detach": True})[0] == 409  # ran already
    assert service.request("GET", "/exec/nope/json")[0] == 404
    assert service.request("POST", "/containers/nope/exec", {"Cmd": ["true"]})[0] == 404
    assert service.request("POST", "/containers/api-exec/exec", {"Cmd": []})[0] == 400
    service.docker("stop", "-t", "0", "api-exec")
    status, _, body = service.request("POST", "/containers/api-exec/exec", {"Cmd": ["true"]})
    assert status == 409 and "is not running" in json.loads(body)["message"]
