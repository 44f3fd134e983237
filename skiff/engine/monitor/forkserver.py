"""A fork server for monitors: containers started from a threaded process (the Engine API server)
without a fresh interpreter each time.

A child forked from a threaded process must not run Python: another thread may have held a lock
(the import lock, stdio, logging) at the fork, which then stays held forever in the child. So
``start_detached`` execs a fresh interpreter in that case, about 30 ms per start. The fork server
is one process forked while its parent is still single-threaded (``start()``, before the server
starts its threads): it stays single-threaded, with skiff already imported, and forks each monitor
on request, exactly as the CLI's ``start_detached`` forks it.

A request is one datagram on a socket pair only the parent holds the other end of: the paths and
the container's id, with the write end of the start's report pipe passed along (SCM_RIGHTS). The
fork server double-forks the monitor (which writes its one-line report to that pipe, as always)
and reaps the first child; the parent reads the report as it does after its own fork. The fork
server exits when the parent's end closes (the parent exited, or was killed).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading

MAX_REQUEST = 8192
IGNORED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class ForkServer:
    """The parent's handle: ``launch`` asks for one monitor; False when the fork server is gone."""

    def __init__(self, sock: socket.socket, pid: int) -> None:
        self.sock = sock
        self.pid = pid
        self.lock = threading.Lock()

    def launch(self, root: str, run_root: str, cid: str, report_w: int, expect_attach: bool) -> bool:
        request = json.dumps([root, run_root, cid, expect_attach]).encode()
        try:
            with self.lock:  # one request at a time: the fork server answers them in order
                socket.send_fds(self.sock, [request], [report_w])
                answer = self.sock.recv(16)
        except OSError:
            return False
        return answer == b"forked"

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


_server: ForkServer | None = None


def start() -> ForkServer:
    """Fork the fork server; call it while this process has a single thread (checked)."""
    global _server
    if threading.active_count() > 1:
        raise RuntimeError("the fork server must be started before any other thread")
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        try:
            ours.close()
            _serve(theirs)
        finally:
            os._exit(0)
    theirs.close()
    _server = ForkServer(ours, pid)
    return _server


def current() -> ForkServer | None:
    return _server


def _serve(sock: socket.socket) -> None:
    """In the fork server: fork a monitor for each request until the parent's end closes."""
    from pathlib import Path

    from skiff.engine.monitor.launch import detach_and_launch
    from skiff.paths import Paths

    for signum in IGNORED:  # the service's ^C is not ours: it ends us by closing its end
        signal.signal(signum, signal.SIG_IGN)
    while True:
        try:
            data, fds, _flags, _address = socket.recv_fds(sock, MAX_REQUEST, 1)
        except OSError:
            return
        if not data:
            return  # the parent is gone
        report_w = fds[0] if fds else -1
        try:
            root, run_root, cid, expect_attach = json.loads(data)
            child = os.fork()
        except (ValueError, OSError):
            child = -1
        if child == 0:
            try:
                sock.close()
                for signum in IGNORED:  # as a fork of the service would have them (an ignored one survives exec)
                    signal.signal(signum, signal.SIG_DFL)
                detach_and_launch(Paths(Path(root), Path(run_root)), cid, report_w, bool(expect_attach))
            finally:
                os._exit(125)
        for fd in fds:
            os.close(fd)
        if child > 0:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(child, 0)  # it exits once the monitor is forked (nobody's child then)
        try:
            sock.send(b"forked" if child > 0 else b"failed")
        except OSError:
            return
