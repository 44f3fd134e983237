"""The user's side of a container's stdio: attach clients, raw terminals, detach keys.

``attach`` talks to a container's monitor over ``attach.sock`` (frames, see
``skiff.engine.monitor.idle``); ``relay_exec`` copies between the user's terminal and
the pty master of an ``exec -t`` process. Both put the user's terminal in raw
mode when they forward input to a container's terminal, restore it on every
way out (return, exception, signal), forward window size changes, and relay the
usual signals to the container (Docker's ``--sig-proxy``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from skiff.errors import InvalidArgument

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"
# What a foreground container gets from its skiff command (as Docker's sig-proxy); SIGINT
# only without a terminal: with one, ^C is a byte the container's terminal turns into SIGINT.
PROXIED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
CHUNK = 65536


def parse_detach_keys(text: str | None) -> bytes:
    """Docker's ``--detach-keys``: comma-separated ``ctrl-<x>`` or single characters."""
    text = text or DEFAULT_DETACH_KEYS
    specials = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}
    keys = bytearray()
    for key in text.split(","):
        lowered = key.lower()
        if len(key) == 1:
            keys.append(ord(key))
        elif lowered.startswith("ctrl-") and len(key) == 6 and ("a" <= lowered[5] <= "z"):
            keys.append(ord(lowered[5]) - ord("a") + 1)
        elif lowered.startswith("ctrl-") and len(key) == 6 and key[5] in specials:
            keys.append(specials[key[5]])
        else:
            raise InvalidArgument(f"invalid detach keys {text!r}: {key!r} is not a key",
                                  hint="use a letter, or ctrl-<value> with a-z, @, ^, [, \\, ], _; "
                                       "comma separated, e.g. ctrl-p,ctrl-q")
    return bytes(keys)


class DetachKeys:
    """Spots the detach sequence in input; a prefix is held back until it turns out not to be one."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.matched = 0

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(input to pass on, whether the sequence was completed)."""
        out = bytearray()
        for byte in data:
            if self.keys and byte == self.keys[self.matched]:
                self.matched += 1
                if self.matched == len(self.keys):
                    self.matched = 0
                    return bytes(out), True
                continue
            if self.matched:
                out += self.keys[:self.matched]
                self.matched = 0
                if byte == self.keys[0]:
                    self.matched = 1
                    continue
            out.append(byte)
        return bytes(out), False


@contextlib.contextmanager
def raw_terminal(fd: int, enabled: bool) -> Iterator[None]:
    """The terminal at ``fd`` in raw mode for the block (if ``enabled`` and a terminal), then as it was."""
    if not enabled or not os.isatty(fd):
        yield
        return
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd, termios.TCSANOW)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def window_size() -> tuple[int, int] | None:
    """(rows, columns) of the user's terminal, if stdin or stdout is one."""
    for fd in (0, 1):
        with contextlib.suppress(OSError):
            size = os.get_terminal_size(fd)
            if size.lines and size.columns:
                return size.lines, size.columns
    return None


@contextlib.contextmanager
def signal_wakeups(signals: tuple[int, ...]) -> Iterator[int]:
    """A pipe that receives the number of each of ``signals`` as it arrives; handlers restored after."""
    read_end, write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    previous = {signum: signal.signal(signum, lambda *_: None) for signum in signals}
    old_wakeup = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    try:
        yield read_end
    finally:
        signal.set_wakeup_fd(old_wakeup)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        os.close(read_end)
        os.close(write_end)


def _pending_signals(fd: int) -> list[int]:
    try:
        return list(os.read(fd, 256))
    except BlockingIOError:
        return []


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            select.select([], [fd], [])


@dataclass
class AttachResult:
    """How an attach ended: the exit status, or detached by the keys, or the monitor went away."""

    status: int | None = None
    detached: bool = False


def attach(sock: socket.socket, tty: bool, stdin: bool, detach_keys: bytes, stdin_once: bool,
           forward_signal: Callable[[int], None] | None, output: tuple[int, int] = (1, 2)) -> AttachResult:
    """Copy between the user's stdio and a container's monitor until the container exits or we detach.

    ``output``: the descriptors for the container's stdout and stderr (this process's by default)."""
    from skiff.engine.monitor.idle import frame, split_frames

    sock_fd = sock.fileno()
    keys = DetachKeys(detach_keys)
    proxied = tuple(s for s in PROXIED_SIGNALS if not (tty and stdin and s == signal.SIGINT)) \
        if forward_signal else ()
    with signal_wakeups((signal.SIGWINCH, *proxied)) as wakeups, raw_terminal(0, tty and stdin):
        if tty:
            size = window_size()
            if size:
                write_all(sock_fd, frame(b"r", f"{size[0]} {size[1]}".encode()))
        poller = select.poll()
        poller.register(sock_fd, select.POLLIN)
        poller.register(wakeups, select.POLLIN)
        if stdin:
            poller.register(0, select.POLLIN)
        buffer = bytearray()
        while True:
            for fd, _ in poller.poll():
                if fd == wakeups:
                    for signum in _pending_signals(wakeups):
                        if signum == signal.SIGWINCH and tty:
                            size = window_size()
                            if size:
                                write_all(sock_fd, frame(b"r", f"{size[0]} {size[1]}".encode()))
                        elif signum != signal.SIGWINCH and forward_signal:
                            forward_signal(signum)
                elif fd == 0:
                    data = _read(0)
                    if not data:
                        poller.unregister(0)
                        if stdin_once:
                            write_all(sock_fd, frame(b"c", b""))
                        continue
                    passed, detached = keys.feed(data)
                    if passed:
                        write_all(sock_fd, frame(b"0", passed))
                    if detached:
                        return AttachResult(detached=True)
                else:
                    data = _read(sock_fd)
                    if not data:
                        return AttachResult()
                    buffer += data
                    for kind, payload in split_frames(buffer):
                        if kind == b"x":
                            return AttachResult(status=int(payload or b"255"))
                        write_all(output[1] if kind == b"2" else output[0], payload)


def multiplexed_frame(stream: int, payload: bytes) -> bytes:
    """Docker's stdcopy frame: the stream (0 stdin, 1 stdout, 2 stderr), three zero bytes, the
    payload's length (4 bytes, big-endian), the payload."""
    return bytes((stream, 0, 0, 0)) + len(payload).to_bytes(4, "big") + payload


def relay_client(monitor: socket.socket, client: socket.socket, early: bytes, tty: bool, stdin: bool,
                 detach_keys: bytes, stdin_once: bool) -> AttachResult:
    """An Engine API attach: copy between a client's socket and a container's monitor.

    Output goes to the client raw with a terminal, in Docker's 8-byte frames without one; the
    client's bytes are the container's input (when ``stdin``) until the detach keys. The
    client's half-close is the end of its input (``stdin_once``: the container's stdin is
    closed, as Docker's StdinOnce); its hang-up or the container's exit end the relay, and
    the detach keys end it with the container left running.
    """
    from skiff.engine.monitor.idle import frame, split_frames

    keys = DetachKeys(detach_keys)
    client.setblocking(True)
    client_fd, monitor_fd = client.fileno(), monitor.fileno()
    poller = select.poll()
    poller.register(monitor_fd, select.POLLIN)
    poller.register(client_fd, select.POLLIN)
    buffer = bytearray()

    def take_input(data: bytes) -> bool:
        """Pass the client's bytes on; True once the detach keys were typed."""
        if not stdin:
            return False
        passed, detached = keys.feed(data)
        if passed:
            monitor.sendall(frame(b"0", passed))
        return detached

    if early and take_input(early):
        return AttachResult(detached=True)
    while True:
        for fd, event in poller.poll():
            if fd == client_fd:
                if event & select.POLLIN:
                    data = client.recv(CHUNK)
                    if data:
                        if take_input(data):
                            return AttachResult(detached=True)
                        continue
                    poller.modify(client_fd, 0)  # half-closed: only its hang-up is watched from now on
                    if stdin and stdin_once:
                        monitor.sendall(frame(b"c", b""))
                    continue
                return AttachResult()  # POLLHUP, POLLERR: the client is gone
            data = _read(monitor_fd)
            if not data:
                return AttachResult()
            buffer += data
            for kind, payload in split_frames(buffer):
                if kind == b"x":
                    return AttachResult(status=int(payload or b"255"))
                if kind in (b"1", b"2") and payload:
                    client.sendall(payload if tty else multiplexed_frame(int(kind), payload))


def relay_process(client: socket.socket, early: bytes, stdin_fd: int, outputs: dict[int, int], tty: bool,
                  detach_keys: bytes) -> bool:
    """An Engine API exec: copy between a client's socket and a process's pipes or pty master.

    ``outputs``: descriptor -> Docker stream number (1, 2; 0: read and dropped); with a terminal the master is both
    ``stdin_fd`` and the one output, sent raw; without, each output goes in 8-byte frames.
    ``stdin_fd`` -1: the client's bytes are not read. The client's half-close closes the
    process's stdin (a pipe: the process reads EOF). Ends when every output is at its end
    (the process and its children closed them), the client hangs up, or the detach keys come
    (True: the process goes on). Without a terminal, ``stdin_fd`` is the relay's to close.
    """
    keys = DetachKeys(detach_keys)
    client.setblocking(True)
    client_fd = client.fileno()
    poller = select.poll()
    poller.register(client_fd, select.POLLIN if stdin_fd >= 0 else 0)
    for fd in outputs:
        poller.register(fd, select.POLLIN)
    open_outputs = set(outputs)

    def take_input(data: bytes) -> bool:
        passed, detached = keys.feed(data)
        if passed and stdin_fd >= 0:
            with contextlib.suppress(OSError):
                write_all(stdin_fd, passed)
        return detached

    try:
        if early and stdin_fd >= 0 and take_input(early):
            return True
        while open_outputs:
            for fd, event in poller.poll():
                if fd == client_fd:
                    if not event & select.POLLIN:
                        return False  # POLLHUP, POLLERR: the client is gone
                    data = client.recv(CHUNK)
                    if data:
                        if take_input(data):
                            return True
                        continue
                    poller.modify(client_fd, 0)
                    if not tty and stdin_fd >= 0:
                        os.close(stdin_fd)  # the process reads EOF
                        stdin_fd = -1
                    continue
                data = _read(fd)
                if not data:
                    poller.unregister(fd)
                    open_outputs.discard(fd)
                    continue
                if outputs[fd]:
                    client.sendall(data if tty else multiplexed_frame(outputs[fd], data))
        return False
    finally:
        if not tty and stdin_fd >= 0:
            os.close(stdin_fd)


def relay_exec(master: int, pid: int, stdin: bool) -> int:
    """``exec -t``: copy between the user's terminal and the process's pty; its exit status."""
    import termios

    from skiff.engine.monitor.idle import wait_status

    def resize() -> None:
        size = window_size()
        if size:
            with contextlib.suppress(OSError, termios.error):
                termios.tcsetwinsize(master, size)

    proxied = tuple(s for s in PROXIED_SIGNALS if not (stdin and s == signal.SIGINT))
    with signal_wakeups((signal.SIGWINCH, *proxied)) as wakeups, raw_terminal(0, stdin):
        resize()
        poller = select.poll()
        poller.register(master, select.POLLIN)
        poller.register(wakeups, select.POLLIN)
        if stdin:
            poller.register(0, select.POLLIN)
        output_open = True
        while output_open:
            for fd, _ in poller.poll():
                if fd == wakeups:
                    for signum in _pending_signals(wakeups):
                        if signum == signal.SIGWINCH:
                            resize()
                        else:
                            with contextlib.suppress(ProcessLookupError):
                                os.kill(pid, signum)
                elif fd == 0:
                    data = _read(0)
                    if data:
                        write_all(master, data)
                    else:
                        poller.unregister(0)
                else:
                    data = _read(master)
                    if data:
                        write_all(1, data)
                    else:
                        output_open = False  # EIO: the process and all it started closed the terminal
                        break
        os.close(master)
        return wait_status(pid)


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, CHUNK)
    except OSError as exc:
        if exc.errno in (errno.EIO, errno.ECONNRESET):  # EIO: a pty whose other side is all closed
            return b""
        raise
