"""The server's side of RFC 6455 (WebSocket), as much as Docker's ``attach/ws`` needs: the handshake's
accept token, frames written unmasked, and the client's masked frames parsed incrementally.

Pure functions over bytes (tests/unit/test_websocket.py); the attach endpoint does the I/O. A well-kept
library would bring its own HTTP handshake parsing (the request is already http.server's here) or
an event loop; the framing is this small.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from typing import NamedTuple

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455, 1.3
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
DATA_OPCODES = (CONTINUATION, TEXT, BINARY)
CONTROL_OPCODES = (CLOSE, PING, PONG)
MAX_PAYLOAD = 16 << 20   # one frame of a client's stdin: more is refused (1009), never buffered
PROTOCOL_ERROR, TOO_BIG, NORMAL = 1002, 1009, 1000


class ProtocolError(Exception):
    """The client broke the protocol; ``code`` is the close status to answer with."""

    def __init__(self, message: str, code: int = PROTOCOL_ERROR) -> None:
        super().__init__(message)
        self.code = code


class Frame(NamedTuple):
    opcode: int
    payload: bytes
    fin: bool = True


def accept_token(key: str) -> str:
    """``Sec-WebSocket-Accept`` for the client's ``Sec-WebSocket-Key``."""
    return base64.b64encode(hashlib.sha1((key + GUID).encode("ascii")).digest()).decode("ascii")


def valid_key(key: str) -> bool:
    """A key is 16 random bytes in base64 (RFC 6455, 4.1)."""
    try:
        return len(base64.b64decode(key.encode("ascii"), validate=True)) == 16
    except (ValueError, UnicodeEncodeError):
        return False


def encode(opcode: int, payload: bytes = b"", mask: bytes | None = None) -> bytes:
    """One final frame; the server's are unmasked, a client's (``mask``: 4 bytes) masked."""
    length = len(payload)
    head = bytes([0x80 | opcode])
    mask_bit = 0x80 if mask is not None else 0
    if length < 126:
        head += bytes([mask_bit | length])
    elif length < 1 << 16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", length)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", length)
    if mask is None:
        return head + payload
    return head + mask + _unmask(payload, mask)


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()[:123]


def _unmask(data: bytes, mask: bytes) -> bytes:
    """XOR with the 4-byte key repeated, as one big integer (fast for any size)."""
    if not data:
        return b""
    key = (mask * (len(data) // 4 + 1))[:len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(len(data), "big")


class FrameReader:
    """The client's frames from the bytes as they arrive (``feed``): each complete one, unmasked.

    A data frame's fragments come out as they are (stdin is a byte stream: no reassembly needed);
    the rules a server must enforce are: every client frame masked, no reserved bits, control
    frames final and at most 125 bytes, continuations only inside a fragmented message.
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        self.buffer = bytearray()
        self.max_payload = max_payload
        self.in_message = False  # a fragmented data message is open: continuations expected

    def feed(self, data: bytes) -> list[Frame]:
        self.buffer += data
        frames: list[Frame] = []
        while True:
            frame = self._next()
            if frame is None:
                return frames
            frames.append(frame)

    def _next(self) -> Frame | None:
        buf = self.buffer
        if len(buf) < 2:
            return None
        first, second = buf[0], buf[1]
        fin, opcode = bool(first & 0x80), first & 0x0F
        if first & 0x70:
            raise ProtocolError("reserved bits set (no extension was negotiated)")
        if not second & 0x80:
            raise ProtocolError("a client's frame must be masked")
        if opcode not in DATA_OPCODES + CONTROL_OPCODES:
            raise ProtocolError(f"unknown opcode {opcode:#x}")
        length, offset = second & 0x7F, 2
        if length == 126:
            if len(buf) < 4:
                return None
            length, offset = struct.unpack_from("!H", buf, 2)[0], 4
        elif length == 127:
            if len(buf) < 10:
                return None
            length, offset = struct.unpack_from("!Q", buf, 2)[0], 10
        if opcode in CONTROL_OPCODES and (length > 125 or not fin):
            raise ProtocolError("a control frame must be final and at most 125 bytes")
        if length > self.max_payload:
            raise ProtocolError(f"a frame of {length} bytes is more than {self.max_payload}", TOO_BIG)
        end = offset + 4 + length
        if len(buf) < end:
            return None
        mask = bytes(buf[offset:offset + 4])
        payload = _unmask(bytes(buf[offset + 4:end]), mask)
        del buf[:end]
        if opcode in DATA_OPCODES:
            if (opcode == CONTINUATION) != self.in_message:
                raise ProtocolError("a continuation outside a message" if opcode == CONTINUATION
                                    else "a new message inside a fragmented one")
            self.in_message = not fin
        return Frame(opcode, payload, fin)
