"""A WebSocket client bridged to an attach's relay (``attach/ws``), through a socket pair.

The attach's ``serve`` (skiff.api.attach) runs in the connection's thread on one end of the pair
as it runs on a hijacked connection; a pump thread moves bytes between the other end and the
WebSocket: the client's data frames become the relay's input, the relay's output (Docker's 8-byte
frames without a TTY, taken apart here; raw with one) becomes one WebSocket frame per read.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time
from typing import Callable, Mapping

from skiff.api import websocket

CHUNK = 65536
CLOSE_WAIT_SECONDS = 2.0  # for the client's answer to our close frame, as RFC 6455 asks; then we close


def bridge(client: socket.socket, early: bytes, serve: Callable[[socket.socket, bytes], None], tty: bool,
           wanted: Mapping[int, bool], opcode: int) -> None:
    """Serve one WebSocket attach until the relay ends, then close the WebSocket properly."""
    relay_end, pump_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pump = threading.Thread(target=_pump, args=(client, early, pump_end, tty, wanted, opcode), daemon=True,
                            name="attach-ws")
    pump.start()
    try:
        with contextlib.suppress(OSError):  # the pump hung up on the relay: the client is gone
            serve(relay_end, b"")
    finally:
        relay_end.close()
        pump.join()
        pump_end.close()


def _pump(client: socket.socket, early: bytes, relay: socket.socket, tty: bool, wanted: Mapping[int, bool],
          opcode: int) -> None:
    reader = websocket.FrameReader()
    output = _Demux(tty, wanted)
    try:
        if early and not _from_client(client, reader, early, relay):
            return
        poller = select.poll()
        poller.register(client.fileno(), select.POLLIN)
        poller.register(relay.fileno(), select.POLLIN)
        while True:
            for fd, _event in poller.poll():
                if fd == relay.fileno():
                    data = relay.recv(CHUNK)
                    if not data:  # the relay is over: the container ended, or the detach keys
                        _close(client, reader, websocket.NORMAL)
                        return
                    for payload in output.feed(data):
                        client.sendall(websocket.encode(opcode, payload))
                    continue
                data = client.recv(CHUNK)
                if not data or not _from_client(client, reader, data, relay):
                    return
    except OSError:
        return  # the client's connection broke
    finally:
        with contextlib.suppress(OSError):
            relay.shutdown(socket.SHUT_RDWR)  # the relay sees its client gone (its stdin closed first)


def _from_client(client: socket.socket, reader: websocket.FrameReader, data: bytes, relay: socket.socket) -> bool:
    """The client's frames: data to the relay, pings answered; False once the WebSocket is closing."""
    try:
        frames = reader.feed(data)
    except websocket.ProtocolError as exc:
        client.sendall(websocket.encode(websocket.CLOSE, websocket.close_payload(exc.code, str(exc))))
        return False
    for frame in frames:
        if frame.opcode in websocket.DATA_OPCODES:
            if frame.payload:
                relay.sendall(frame.payload)
        elif frame.opcode == websocket.PING:
            client.sendall(websocket.encode(websocket.PONG, frame.payload))
        elif frame.opcode == websocket.CLOSE:  # answered with its status, as RFC 6455 5.5.1
            client.sendall(websocket.encode(websocket.CLOSE, frame.payload[:2]))
            return False
    return True


def _close(client: socket.socket, reader: websocket.FrameReader, code: int) -> None:
    """Our close frame, then the client's answer (or a short wait for it) before the TCP close."""
    client.sendall(websocket.encode(websocket.CLOSE, websocket.close_payload(code)))
    poller = select.poll()
    poller.register(client.fileno(), select.POLLIN)
    deadline = time.monotonic() + CLOSE_WAIT_SECONDS
    while (left := deadline - time.monotonic()) > 0 and poller.poll(left * 1000):
        data = client.recv(CHUNK)
        if not data:
            return
        try:
            if any(frame.opcode == websocket.CLOSE for frame in reader.feed(data)):
                return
        except websocket.ProtocolError:
            return


class _Demux:
    """The relay's output as the payloads to send: Docker's frames taken apart (without a TTY),
    keeping only the streams asked for; with a TTY every byte is stdout's."""

    def __init__(self, tty: bool, wanted: Mapping[int, bool]) -> None:
        self.tty = tty
        self.wanted = wanted
        self.buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        if self.tty:
            return [data] if self.wanted.get(1) else []
        self.buffer += data
        out = []
        while len(self.buffer) >= 8:
            stream, length = self.buffer[0], struct.unpack_from(">I", self.buffer, 4)[0]
            if len(self.buffer) < 8 + length:
                break
            payload = bytes(self.buffer[8:8 + length])
            del self.buffer[:8 + length]
            if self.wanted.get(stream) and payload:
                out.append(payload)
        return out
