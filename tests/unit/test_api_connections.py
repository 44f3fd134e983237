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


def exchange(connection: socket.socket, request: bytes) -> tuple[bytes, bytes]:
    """Send a request; its answer's status line and body (by Content-Length)."""
    connection.sendall(request)
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = connection.recv(4096)
        assert chunk, answer
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = next((int(line.split(b":")[1]) for line in lines if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = connection.recv(4096)
        assert chunk, body
        body += chunk
    return lines[0], body


def closed(connection: socket.socket) -> bool:
    return connection.recv(4096) == b""


def test_an_unknown_endpoints_body_is_read_so_the_connection_stays_in_step(
        listening: tuple[server.APIServer, Path]) -> None:
    _, path = listening
    body = b'{"Image": "busybox"}'
    with connect(path) as connection:
        status, answer = exchange(connection, b"POST /v1.41/nowhere HTTP/1.1\r\nhost: docker\r\n"
                                  b"content-length: %d\r\n\r\n%s" % (len(body), body))
        assert status == b"HTTP/1.1 404 Not Found"
        assert b"page not found" in answer
        assert ping(connection) == b"HTTP/1.1 200 OK"  # not the body's bytes taken for a request


@pytest.mark.parametrize("request_head", [
    b"GET /_ping HTTP/1.1\r\nCONNECTION: Close\r\n\r\n",
    b"GET /_ping HTTP/1.0\r\n\r\n",
])
def test_a_client_that_asks_for_close_is_answered_then_closed(
        listening: tuple[server.APIServer, Path], request_head: bytes) -> None:
    _, path = listening
    with connect(path) as connection:
        assert exchange(connection, request_head) == (b"HTTP/1.1 200 OK", b"OK")
        assert closed(connection)


def test_a_keep_alive_http_1_0_client_keeps_its_connection(listening: tuple[server.APIServer, Path]) -> None:
    _, path = listening
    with connect(path) as connection:
        for _ in range(2):
            assert exchange(connection, b"GET /_ping HTTP/1.0\r\nConnection: keep-alive\r\n\r\n") == (
                b"HTTP/1.1 200 OK", b"OK")


@pytest.mark.parametrize("request_head, status", [
    (b"GET /_ping HTTP/1.1\r\nno colon\r\n\r\n", b"400"),
    (b"GET /_ping HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % n for n in range(101)) + b"\r\n", b"431"),
    (b"GET /_ping HTTP/2.0\r\n\r\n", b"505"),
    (b"GET /_ping\r\n\r\n", b"400"),
    (b"GET /_ping HTTP/1.1 extra\r\n\r\n", b"400"),
])
def test_a_request_head_not_served_is_refused_and_closed(
        listening: tuple[server.APIServer, Path], request_head: bytes, status: bytes) -> None:
    _, path = listening
    with connect(path) as connection:
        line, _ = exchange(connection, request_head)
        assert line.split(b" ")[1] == status
        assert closed(connection)
