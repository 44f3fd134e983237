"""Terminals end to end: `run -it`, detach keys, `attach`, `exec -it`, `start -a`, through a real pty.

The test is the user: it holds the master side of a pseudo-terminal whose slave
is the skiff command's stdin/stdout, types into it and reads what comes back.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import sys
import termios
import time
from collections.abc import Iterator

import pytest

from tests.conftest import Skiff
from tests.e2e.test_lifecycle import inspect, lc  # noqa: F401 - lc is a fixture

ROWS, COLS = 33, 111


class Terminal:
    """A skiff command on a pty of its own, as in an interactive shell."""

    def __init__(self, skiff: Skiff, *args: str) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        self.before = termios.tcgetattr(slave)
        self.slave = slave
        self.pid = os.fork()
        if self.pid == 0:
            os.setsid()
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
            for fd in (0, 1, 2):
                os.dup2(slave, fd)
            os.execve(sys.executable, [sys.executable, "-m", "skiff", *args], skiff.env)
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
            assert time.monotonic() < deadline, "the skiff command did not exit"
            with_data = select.select([self.master], [], [], 0.05)[0]
            if with_data:
                try:
                    self.output += os.read(self.master, 4096)
                except OSError:
                    pass

    def restored(self) -> bool:
        """The terminal's modes are what they were before skiff put it in raw mode."""
        return termios.tcgetattr(self.slave) == self.before

    def close(self) -> None:
        for fd in (self.master, self.slave):
            os.close(fd)


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    made: list[Terminal] = []
    yield made
    for t in made:
        try:
            os.kill(t.pid, 9)
            os.waitpid(t.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        t.close()


def open_terminal(terminals: list[Terminal], skiff: Skiff, *args: str) -> Terminal:
    t = Terminal(skiff, *args)
    terminals.append(t)
    return t


def test_run_it_shell_arithmetic_tty_size_and_exit_code(lc: Skiff, terminals: list[Terminal]) -> None:
    t = open_terminal(terminals, lc, "run", "-it", "--rm", "--network", "none", "--name", "sh1", "busybox", "sh")
    t.read_until("# ")
    assert not t.restored()  # raw while attached
    t.type("echo $((6*7)); tty; stty size; echo $TERM\r")
    out = t.read_until("xterm")
    assert "\r\n42\r\n" in out
    assert "/dev/pts/0" in out or "/dev/console" in out
    assert f"{ROWS} {COLS}" in out
    t.type("exit 3\r")
    assert t.wait() == 3
    assert t.restored()
    assert lc.ok("ps", "-aq") == ""  # --rm: removed once the command returned


def test_window_size_change_reaches_the_container(lc: Skiff, terminals: list[Terminal]) -> None:
    t = open_terminal(terminals, lc, "run", "-it", "--rm", "--network", "none", "busybox", "sh")
    t.read_until("# ")
    fcntl.ioctl(t.slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 90, 0, 0))
    os.killpg(os.getpgid(t.pid), 28)  # SIGWINCH, as the terminal emulator's kernel would send
    deadline = time.monotonic() + 10
    while "40 90" not in t.output.decode(errors="replace"):
        assert time.monotonic() < deadline, t.output
        t.type("stty size\r")
        t.drain(0.3)
    t.type("exit\r")
    assert t.wait() == 0 and t.restored()


def test_detach_keys_then_attach_then_exit(lc: Skiff, terminals: list[Terminal]) -> None:
    t = open_terminal(terminals, lc, "run", "-it", "--network", "none", "--name", "keep", "busybox", "sh")
    t.read_until("# ")
    t.type("echo before\r")
    t.read_until("before\r\n")
    t.type("\x10\x11")  # ctrl-p ctrl-q
    assert t.wait() == 0 and t.restored()
    assert inspect(lc, "keep")["State"]["Status"] == "running"  # detached: the container keeps running

    a = open_terminal(terminals, lc, "attach", "--detach-keys", "ctrl-x,y", "keep")
    a.type("echo $((6*7))\r")
    a.read_until("42")
    a.type("\x18y")
    assert a.wait() == 0 and a.restored()
    assert inspect(lc, "keep")["State"]["Status"] == "running"

    a = open_terminal(terminals, lc, "attach", "keep")
    a.type("\x10x; echo again\r")  # a partial sequence is typed through, not swallowed
    a.read_until("again")
    a.type("exit 4\r")
    assert a.wait() == 4 and a.restored()
    assert inspect(lc, "keep")["State"]["ExitCode"] == 4
    assert lc("attach", "keep").returncode == 1


def test_run_it_detached_then_attach(lc: Skiff, terminals: list[Terminal]) -> None:
    cid = lc.ok("run", "-itd", "--network", "none", "busybox", "sh").strip()
    a = open_terminal(terminals, lc, "attach", cid)
    a.type("tty\r")
    out = a.read_until("/dev/pts/0\r\n")
    a.type("exit 5\r")
    assert a.wait() == 5 and a.restored()
    assert "/dev/pts/0" in out


def test_exec_it(lc: Skiff, terminals: list[Terminal]) -> None:
    cid = lc.ok("run", "-d", "--network", "none", "busybox", "sleep", "300").strip()
    t = open_terminal(terminals, lc, "exec", "-it", cid, "sh")
    t.read_until("# ")
    t.type("echo $((6*7)); tty; stty size\r")
    out = t.read_until(f"{ROWS} {COLS}")
    assert "42" in out and "/dev/pts/" in out
    t.type("exit 6\r")
    assert t.wait() == 6 and t.restored()
    assert inspect(lc, cid)["State"]["Status"] == "running"


def test_start_attach_is_live(lc: Skiff, terminals: list[Terminal]) -> None:
    lc.ok("create", "--network", "none", "--name", "later", "busybox", "sh", "-c",
          "echo one; sleep 1; echo two; exit 2")
    proc = lc("start", "-a", "later", timeout=30)
    assert proc.returncode == 2 and proc.stdout == "one\ntwo\n"
    # Only this run's output, live: the second start does not replay the first.
    proc = lc("start", "-a", "later", timeout=30)
    assert proc.returncode == 2 and proc.stdout == "one\ntwo\n"
    t = open_terminal(terminals, lc, "create", "-it", "--network", "none", "--name", "tt", "busybox", "sh")
    assert t.wait() == 0
    s = open_terminal(terminals, lc, "start", "-ai", "tt")
    s.type("echo $((6*7))\r")
    s.read_until("42")
    s.type("exit 7\r")
    assert s.wait() == 7 and s.restored()


def test_attach_non_tty_stdin(lc: Skiff) -> None:
    cid = lc.ok("run", "-di", "--network", "none", "busybox", "sh", "-c", "read line; echo got $line").strip()
    proc = lc("attach", cid, input="hello\n", timeout=20)
    assert proc.returncode == 0 and proc.stdout == "got hello\n"
    assert lc.ok("logs", cid) == "got hello\n"


def test_command_not_found_with_tty(lc: Skiff, terminals: list[Terminal]) -> None:
    t = open_terminal(terminals, lc, "run", "-it", "--rm", "--network", "none", "busybox", "nosuchcmd")
    assert t.wait() == 127 and t.restored()
