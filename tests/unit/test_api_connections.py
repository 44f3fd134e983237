"""The API server's connection threads (skiff.api.server.APIServer), in this process on a unix
socket in a temporary directory: threads that accept and serve, never one client waiting on
another's connection, a bounded number left waiting, and a shutdown that ends them all."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from skiff.api import server
from skiff.paths import Paths

PING = b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n"


@pytest.fixture
def listening(tmp_path: Path) -> Iterator[tuple[server.APIServer, Path]]:
    path = tmp_path / "api.sock"
    api = server.APIServer(server.listen_unix(path), server.Context(Paths(tmp_path / "root", tmp_path / "run")))
    serving = threading.Thread(target=api.serve_forever, daemon=True)
    serving.start()
    try:
        yield api, path
    finally:
        api.shutdown()
        serving.join(5)
        api.server_close()
        assert not serving.is_alive()


def ping(connection: socket.socket) -> bytes:
    connection.sendall(PING)
    answer = b""
    while not answer.endswith(b"OK"):
        chunk = connection.recv(4096)
        assert chunk, answer
        answer += chunk
    return answer.split(b"\r\n", 1)[0]


def connect(path: Path) -> socket.socket:
    connection = socket.socket(socket.AF_UNIX)
    connection.settimeout(5)
    connection.connect(str(path))
    return connection


def connection_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "connection")


def wait_for_threads(most: int) -> int:
    deadline = time.monotonic() + 5
    while connection_threads() > most and time.monotonic() < deadline:
        time.sleep(0.01)
    return connection_threads()


def test_connections_held_open_never_keep_another_waiting(listening: tuple[server.APIServer, Path]) -> None:
    _, path = listening
    held = [connect(path) for _ in range(server.APIServer.IDLE_WORKERS + 3)]
    try:
        for connection in held:  # each one kept open (keep-alive) holds its own thread
            assert ping(connection) == b"HTTP/1.1 200 OK"
        with connect(path) as another:
            assert ping(another) == b"HTTP/1.1 200 OK"
        assert connection_threads() >= len(held) + 1
    finally:
        for connection in held:
            connection.close()
    # Served, at most IDLE_WORKERS threads stay, waiting in accept(); the rest end.
    assert wait_for_threads(server.APIServer.IDLE_WORKERS) == server.APIServer.IDLE_WORKERS
    for _ in range(20):  # one connection after another: served by the threads that wait
        with connect(path) as connection:
            assert ping(connection) == b"HTTP/1.1 200 OK"
    assert wait_for_threads(server.APIServer.IDLE_WORKERS) == server.APIServer.IDLE_WORKERS


def test_shutdown_ends_the_threads_waiting_to_accept(tmp_path: Path) -> None:
    path = tmp_path / "api.sock"
    api = server.APIServer(server.listen_unix(path), server.Context(Paths(tmp_path / "root", tmp_path / "run")))
    before = connection_threads()
    serving = threading.Thread(target=api.serve_forever, daemon=True)
    serving.start()
    with connect(path) as connection:
        assert ping(connection) == b"HTTP/1.1 200 OK"
    api.shutdown()
    serving.join(5)
    assert not serving.is_alive()
    assert wait_for_threads(before) == before
    api.server_close()
