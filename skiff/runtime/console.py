"""The container's terminal: a pty made inside it, its master handed out over --console-socket.

The caller (containerd, podman, a test) listens on a unix socket; the runtime
connects to it before the container's init leaves the host's mount namespace,
and the init sends the pty master over it with SCM_RIGHTS, as runc does.
"""

from __future__ import annotations

import errno
import fcntl  # imported here: the terminal is made after pivot_root
import os
import socket
import struct  # noqa: F401 - used by linux.open_pty after pivot_root

from skiff import linux
from skiff.errors import InvalidArgument, SyscallError


def connect(path: str) -> socket.socket:
    """A connection to the console socket at ``path`` (made in the runtime's own namespaces)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        raise InvalidArgument(f"cannot connect to console socket {path}: {exc.strerror}") from None
    return sock


def setup_terminal(console_fd: int, bind_console: bool) -> None:
    """Make a pty, send its master over ``console_fd``, and make the slave our stdio and ctty.

    Runs in the container's mount namespace with /dev/pts a fresh devpts
    instance, so the pty belongs to the container. ``bind_console`` binds the
    slave onto /dev/console too (for the container's init, not for exec).
    """
    master, slave, slave_path = linux.open_pty()
    try:
        if bind_console:
            _bind_dev_console(slave_path)
        with socket.socket(fileno=os.dup(console_fd)) as sock:
            socket.send_fds(sock, [slave_path.encode()], [master])
        for target in (0, 1, 2):
            os.dup2(slave, target, inheritable=True)
        fcntl.ioctl(0, linux.TIOCSCTTY, 0)
    except OSError as exc:
        raise SyscallError("console", exc.errno or errno.EIO, slave_path) from None
    finally:
        os.close(master)
        os.close(slave)
        os.close(console_fd)


def _bind_dev_console(slave_path: str) -> None:
    try:
        os.close(os.open("/dev/console", os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666))
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise
    linux.mount(slave_path, "/dev/console", None, linux.MS_BIND)
