"""``GET /containers/{id}/attach/ws`` through websocket-client (the WebSocket library docker-py uses):
stdin in, stdout and stderr out raw, one stream left out, text frames before API 1.28, a TTY, the
close at the container's exit, the detach keys, and a request that is no WebSocket handshake."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.api_server.conftest import Service

websocket = pytest.importorskip("websocket")


def connect(service: Service, cid: str, query: str, version: str = "v1.41") -> Any:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(service.socket))
    return websocket.create_connection(f"ws://localhost/{version}/containers/{cid}/attach/ws?{query}", socket=sock,
                                       timeout=20)


def received(conn: Any, until: bytes, timeout: float = 20) -> tuple[bytes, set[int]]:
    """The payloads (joined) and their opcodes, until ``until`` is in them."""
    data, opcodes = b"", set()
    deadline = time.monotonic() + timeout
    while until not in data:
        assert time.monotonic() < deadline, data
        opcode, payload = conn.recv_data()
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            break
        data += payload
        opcodes.add(opcode)
    return data, opcodes


@pytest.fixture
def container(service: Service) -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    for cid in made:
        service.docker("rm", "-f", cid, check=False)


def run(service: Service, made: list[str], *args: str) -> str:
    cid = service.docker("run", "-d", *args).stdout.strip()
    made.append(cid)
    return cid


def test_stdin_and_output_raw_and_the_close_at_exit(service: Service, container: list[str]) -> None:
    cid = run(service, container, "-i", "busybox", "sh", "-c", "read x; echo out $x; echo err $x >&2; read y")
    conn = connect(service, cid, "stream=1&stdin=1&stdout=1&stderr=1")
    conn.send_binary(b"hello\n")
    data, opcodes = received(conn, b"err hello\n")
    assert sorted(data.splitlines()) == [b"err hello", b"out hello"]  # raw: no 8-byte headers
    assert opcodes == {websocket.ABNF.OPCODE_BINARY}
    conn.send("bye\n")  # a text frame is input too
    opcode, payload = conn.recv_data(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE and payload[:2] == (1000).to_bytes(2, "big")
    conn.close()
    assert service.docker("wait", cid).stdout.strip() == "0"


def test_only_the_streams_asked_for_and_text_frames_before_1_28(service: Service, container: list[str]) -> None:
    cid = run(service, container, "-i", "busybox", "sh", "-c", "read x; echo err >&2; echo out; read y")
    conn = connect(service, cid, "stream=1&stdin=1&stdout=1", version="v1.27")
    conn.send_binary(b"go\n")
    data, opcodes = received(conn, b"out\n")
    assert data == b"out\n" and opcodes == {websocket.ABNF.OPCODE_TEXT}
    conn.close()  # the WebSocket's close: the container is not ours to stop
    time.sleep(0.3)
    state = service.docker("inspect", "--format", "{{.State.Running}}", cid).stdout.strip()
    assert state == "true"


def test_tty_and_detach_keys(service: Service, container: list[str]) -> None:
    cid = run(service, container, "-it", "busybox", "sh")
    conn = connect(service, cid, "stream=1&stdin=1&stdout=1&stderr=1&detachKeys=ctrl-x")
    conn.send_binary(b"echo $((6*7))\n")
    data, _ = received(conn, b"42")
    assert b"42" in data
    conn.send_binary(b"\x18")  # ctrl-x: detached, the container runs on
    opcode, _payload = conn.recv_data(control_frame=True)
    while opcode != websocket.ABNF.OPCODE_CLOSE:
        opcode, _payload = conn.recv_data(control_frame=True)
    conn.close()
    assert service.docker("inspect", "--format", "{{.State.Running}}", cid).stdout.strip() == "true"


def test_logs_then_the_stream(service: Service, container: list[str]) -> None:
    cid = run(service, container, "-i", "busybox", "sh", "-c", "echo before; read x; echo after $x")
    deadline = time.monotonic() + 10
    while "before" not in service.docker("logs", cid).stdout:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    conn = connect(service, cid, "logs=1&stream=1&stdin=1&stdout=1")
    data, _ = received(conn, b"before\n")
    conn.send_binary(b"x\n")
    more, _ = received(conn, b"after x\n")
    assert data + more == b"before\nafter x\n"
    conn.close()


def test_not_a_websocket_and_unknown_container(service: Service) -> None:
    status, _, body = service.request("GET", "/v1.41/containers/nosuch/attach/ws?stream=1")
    assert status == 400 and b"websocket" in body
    with pytest.raises(websocket.WebSocketBadStatusException) as caught:
        connect(service, "nosuchbox", "stream=1")
    assert caught.value.status_code == 404
