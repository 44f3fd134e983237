"""A command on a pseudo-terminal of its own, as in an interactive shell: the test types into the
master side and reads what comes back (tests/e2e/test_terminal.py drives skiff, tests/api_server
the docker CLI through skiff's socket)."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import termios
import time
from collections.abc import Iterator, Mapping, Sequence


class PtyCommand:
    def __init__(self, argv: Sequence[str], env: Mapping[str, str], rows: int, cols: int) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.before = termios.tcgetattr(slave)
        self.slave = slave
        self.pid = os.fork()
        if self.pid == 0:
            os.setsid()
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
            for fd in (0, 1, 2):
                os.dup2(slave, fd)
            os.execve(argv[0], list(argv), dict(env))
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

    def drain(self, seconds: float) -> None:
        """Read whatever comes for ``seconds``."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if select.select([self.master], [], [], left)[0]:
                try:
                    self.output += os.read(self.master, 4096)
                except OSError:
                    return

    def wait(self, timeout: float = 20) -> int:
        deadline = time.monotonic() + timeout
        while True:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            assert time.monotonic() < deadline, f"the command did not exit: {self.output!r}"
            if select.select([self.master], [], [], 0.05)[0]:
                try:
                    self.output += os.read(self.master, 4096)
                except OSError:
                    pass

    def restored(self) -> bool:
        """The terminal's modes are what they were before the command put it in raw mode."""
        return termios.tcgetattr(self.slave) == self.before

    def close(self) -> None:
        for fd in (self.master, self.slave):
            os.close(fd)


def killed_at_the_end(made: list[PtyCommand]) -> Iterator[list[PtyCommand]]:
    """For a fixture: the commands a test opened are killed and their terminals closed after it."""
    yield made
    for command in made:
        try:
            os.kill(command.pid, 9)
            os.waitpid(command.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        command.close()
