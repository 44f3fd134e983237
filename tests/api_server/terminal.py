"""The docker CLI on a pseudo-terminal of its own, as in an interactive shell (tests/e2e/test_terminal.py's
way with skiff): the test types into the master side and reads what comes back."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import termios
import time
from collections.abc import Iterator

import pytest

from tests.api_server.conftest import DOCKER, Service


class Terminal:
    def __init__(self, service: Service, rows: int, cols: int, *args: str) -> None:
        env = {k: v for k, v in service.env.items() if not k.startswith("DOCKER_")}
        env["DOCKER_CONFIG"] = str(service.socket.parent / "docker-config")
        env["TERM"] = "xterm"
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.pid = os.fork()
        if self.pid == 0:
            os.setsid()
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
            for fd in (0, 1, 2):
                os.dup2(slave, fd)
            os.execve(DOCKER, [DOCKER, "-H", f"unix://{service.socket}", *args], env)
        os.close(slave)
        self.output = b""

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def read_until(self, text: str, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while text.encode() not in self.output:
            left = deadline - time.monotonic()
            assert left > 0, f"{text!r} did not appear in {self.output!r}"
            if select.select([self.master], [], [], min(left, 0.2))[0]:
                try:
                    self.output += os.read(self.master, 4096)
                except OSError:  # EIO: the command has closed the terminal
                    break
        assert text.encode() in self.output, f"{text!r} did not appear in {self.output!r}"
        return self.output.decode(errors="replace")

    def wait(self, timeout: float = 20) -> int:
        deadline = time.monotonic() + timeout
        while True:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            assert time.monotonic() < deadline, f"the docker command did not exit: {self.output!r}"
            if select.select([self.master], [], [], 0.05)[0]:
                try:
                    self.output += os.read(self.master, 4096)
                except OSError:
                    pass


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    made: list[Terminal] = []
    yield made
    for term in made:
        try:
            os.kill(term.pid, 9)
            os.waitpid(term.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(term.master)
