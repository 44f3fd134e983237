"""Throwaway containers for a project's tests, with no daemon.

    import skiff.testing

    with skiff.testing.container("busybox", "httpd -f -p 80", ports={80: None}) as web:
        url = f"http://127.0.0.1:{web.host_port(80)}/"
        ...                                   # the server answers on url
    # here the container is gone (killed and removed, its anonymous volumes too)

The container is removed when the block ends, also when the block raises. For
pytest, ``skiff.testing.pytest_plugin`` has fixtures built on this (see
docs/python-api.md).
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator, Sequence
from typing import Any

from skiff.client import Client, Container
from skiff.engine.state import Status


@contextlib.contextmanager
def container(image: str, command: str | Sequence[str] | None = None, *, client: Client | None = None,
              ready_timeout: float = 30.0, **kwargs: Any) -> Iterator[Container]:
    """A container of ``image`` running ``command`` (keywords as ``client.containers.run``'s),
    for the time of the block; then it is removed (force, volumes), whatever happened.

    Each TCP port published (``ports=``) is waited for until it accepts a connection on
    127.0.0.1, for at most ``ready_timeout`` seconds (0: no wait), so the service is up
    when the block starts; ``c.host_port(80)`` says where it listens.
    """
    client = client or Client()
    kwargs.pop("detach", None)
    started = client.containers.run(image, command, detach=True, **kwargs)
    assert isinstance(started, Container)  # detached: a Container, never output
    try:
        if ready_timeout > 0:
            for key in started.ports:
                if key.endswith("/tcp"):
                    wait_for_port(started, key, timeout=ready_timeout)
        yield started
    finally:
        remove_quietly(started)


def wait_for_port(target: Container, port: int | str, timeout: float = 30.0) -> int:
    """Wait until the host port that ``port`` of ``target`` is published on accepts a TCP
    connection on 127.0.0.1; return that host port. TimeoutError after ``timeout`` seconds,
    and an error at once if the container has stopped."""
    from skiff.errors import ContainerNotRunning

    host_port = target.host_port(port)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", host_port), timeout=1.0):
                return host_port
        except OSError:
            pass
        target.reload()
        if target.status not in (Status.RUNNING, Status.RESTARTING):
            raise ContainerNotRunning(f"container {target.name} stopped ({target.status}) before port {port} "
                                      f"accepted a connection", hint="see its output: container.logs()")
        if time.monotonic() > deadline:
            raise TimeoutError(f"port {port} of container {target.name} (127.0.0.1:{host_port}) accepted no "
                               f"connection within {timeout:g} s")
        time.sleep(0.05)


def remove_quietly(target: Container) -> None:
    """Kill and remove ``target`` and its anonymous volumes; one already gone is no error."""
    from skiff.errors import NotFound

    with contextlib.suppress(NotFound):
        target.remove(force=True, v=True)
