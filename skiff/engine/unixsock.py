"""Unix stream sockets at paths of any length (a container's attach and console sockets).

A unix socket path is limited to 107 bytes, and a container's directory under a
long ``--root`` can be longer: the path goes through an fd of the directory.
Kept apart from skiff.engine.terminal so that ``run -d`` imports only this.
"""

from __future__ import annotations

import contextlib
import os
import socket

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


def connect_unix(directory: os.PathLike[str], name: str) -> socket.socket:
    """A stream socket connected to ``directory/name``, whatever the path's length."""
    return _unix_socket(directory, name, lambda sock, path: sock.connect(path))


def listen_unix(directory: os.PathLike[str], name: str) -> socket.socket:
    """A listening unix socket ``directory/name`` (replacing a stale one), whatever the path's length."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(directory, name))

    def bind_and_listen(sock: socket.socket, path: str) -> None:
        sock.bind(path)
        sock.listen(16)

    return _unix_socket(directory, name, bind_and_listen)


def _unix_socket(directory: os.PathLike[str], name: str, use: Callable[[socket.socket, str], None]) -> socket.socket:
    """A unix stream socket on which ``use`` binds or connects to ``directory/name``."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dir_fd = os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        use(sock, f"/proc/self/fd/{dir_fd}/{name}")
    except BaseException:
        sock.close()
        raise
    finally:
        os.close(dir_fd)
    return sock
