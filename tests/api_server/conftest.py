"""A ``skiff system service`` per test module, on a socket in a temporary directory, over a private
skiff root (tests/conftest.py's private_skiff_env); the real docker CLI 20.10 and raw HTTP drive it.

At the end the server is stopped with SIGTERM and must be gone, its socket removed, and every
container it made removed (the root's network objects are checked by private_skiff_env).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import private_skiff_env

DOCKER = "/usr/bin/docker"  # Debian's docker.io 20.10 (/usr/local/bin/docker may be a later one)


class Service:
    """A running ``skiff system service`` and ways to talk to it."""

    def __init__(self, env: dict[str, str], socket_path: Path, process: subprocess.Popen[bytes], log: Path) -> None:
        self.log = log
        self.env = env
        self.socket = socket_path
        self.process = process

    def docker(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in self.env.items() if not k.startswith("DOCKER_")}
        env["DOCKER_CONFIG"] = str(self.socket.parent / "docker-config")  # no user's config or contexts
        proc = subprocess.run([DOCKER, "-H", f"unix://{self.socket}", *args], env=env, capture_output=True,
                              text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def skiff(self, *args: str, check: bool = True) -> str:
        proc = subprocess.run([sys.executable, "-m", "skiff", *args], env=self.env, capture_output=True, text=True,
                              timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError(f"skiff {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
        return proc.stdout

    def request(self, method: str, path: str, body: Any = None, raw: bytes | None = None,
                ) -> tuple[int, dict[str, str], bytes]:
        """One HTTP request over the unix socket: status, headers, body."""
        connection = UnixHTTPConnection(str(self.socket))
        try:
            data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
            headers = {"Content-Type": "application/json"} if data is not None else {}
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 60) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def start_service(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    """The service with its output in ``log`` (a file, so a chatty server never blocks on a pipe)."""
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "skiff", "system", "service", *args], env=env,
                                stdout=out, stderr=subprocess.STDOUT)


def wait_for_socket(path: Path, process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the service exited {process.returncode}")
        if path.is_socket():
            with socket.socket(socket.AF_UNIX) as probe:
                try:
                    probe.connect(str(path))
                    return
                except OSError:
                    pass
        time.sleep(0.05)
    raise AssertionError(f"no socket at {path} after {timeout}s")


def stop_service(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=20)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, busybox_tar: Path) -> Iterator[Service]:
    base = tmp_path_factory.mktemp("api")
    with private_skiff_env(base) as env:
        subprocess.run([sys.executable, "-m", "skiff", "import", str(busybox_tar), "busybox:latest", "--change",
                        'CMD ["sh"]'], env=env, check=True, capture_output=True)
        socket_path = base / "sock" / "docker.sock"
        log = base / "service.log"
        process = start_service(env, log, "--host", f"unix://{socket_path}", "--time", "0")
        try:
            wait_for_socket(socket_path, process)
            yield Service(env, socket_path, process, log)
        finally:
            stop_service(process)
            left = subprocess.run([sys.executable, "-m", "skiff", "ps", "-aq", "--no-trunc"], env=env,
                                  capture_output=True, text=True).stdout.split()
            if left:
                subprocess.run([sys.executable, "-m", "skiff", "rm", "-f", "-v", *left], env=env, capture_output=True)
            subprocess.run([sys.executable, "-m", "skiff", "volume", "prune", "-f"], env=env, capture_output=True)
            assert process.returncode == 0, log.read_text()
            assert "Traceback" not in log.read_text()
            assert not socket_path.exists(), "the service left its socket behind"
            assert not os.path.exists(f"/proc/{process.pid}"), "the service is still running"
