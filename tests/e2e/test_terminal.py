"""Terminals end to end: `run -it`, detach keys, `attach`, `exec -it`, `start -a`, through a real pty.

The test is the user: it holds the master side of a pseudo-terminal whose slave
is the skiff command's stdin/stdout, types into it and reads what comes back.
"""

from __future__ import annotations

import fcntl
import os
import struct
import sys
import termios
import time
from collections.abc import Iterator

import pytest

from tests.conftest import Skiff
from tests.e2e.test_lifecycle import inspect, lc  # noqa: F401 - lc is a fixture
from tests.ptyterm import PtyCommand, killed_at_the_end

ROWS, COLS = 33, 111


class Terminal(PtyCommand):
    """A skiff command on a pty of its own, as in an interactive shell."""

    def __init__(self, skiff: Skiff, *args: str) -> None:
        super().__init__([sys.executable, "-m", "skiff", *args], skiff.env, ROWS, COLS)


@pytest.fixture
def terminals() -> Iterator[list[PtyCommand]]:
    yield from killed_at_the_end([])


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
