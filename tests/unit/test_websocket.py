"""skiff/api/websocket.py: RFC 6455's accept token, frames both ways, and the rules a server enforces."""

from __future__ import annotations

import os

import pytest

from skiff.api import websocket as ws
from skiff.api.websocket import Frame, FrameReader, ProtocolError

MASK = b"\x37\xfa\x21\x3d"


def test_accept_token_is_the_rfcs_example() -> None:
    assert ws.accept_token("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455, 1.3
    assert ws.valid_key("dGhlIHNhbXBsZSBub25jZQ==")
    assert not ws.valid_key("short") and not ws.valid_key("")


def test_rfc_examples_of_frames() -> None:
    assert ws.encode(ws.TEXT, b"Hello") == b"\x81\x05\x48\x65\x6c\x6c\x6f"  # RFC 6455, 5.7
    assert ws.encode(ws.TEXT, b"Hello", MASK) == b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"
    assert FrameReader().feed(b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58") == [Frame(ws.TEXT, b"Hello")]


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 200_000])
def test_lengths_round_trip_byte_by_byte_and_at_once(size: int) -> None:
    payload = os.urandom(size)
    data = ws.encode(ws.BINARY, payload, MASK)
    assert FrameReader().feed(data) == [Frame(ws.BINARY, payload)]
    if size < 300:
        reader = FrameReader()
        frames = [frame for i in range(len(data)) for frame in reader.feed(data[i:i + 1])]
        assert frames == [Frame(ws.BINARY, payload)]
    header = ws.encode(ws.BINARY, payload)[:10]
    assert header[1] == (size if size < 126 else 126 if size < 65536 else 127)  # the server's: unmasked


def test_fragments_pings_and_close() -> None:
    first = bytes([0x02, 0x80 | 3]) + MASK + bytes(b ^ MASK[i % 4] for i, b in enumerate(b"abc"))
    data = first + ws.encode(ws.PING, b"p", MASK) + ws.encode(ws.CONTINUATION, b"def", MASK)
    data += ws.encode(ws.CLOSE, ws.close_payload(1000), MASK)
    assert FrameReader().feed(data) == [Frame(ws.BINARY, b"abc", False), Frame(ws.PING, b"p"),
                                        Frame(ws.CONTINUATION, b"def"), Frame(ws.CLOSE, b"\x03\xe8")]


@pytest.mark.parametrize("data, code", [
    (ws.encode(ws.TEXT, b"x"), 1002),                                       # unmasked
    (bytes([0xC1, 0x80]) + MASK, 1002),                                     # RSV1 without an extension
    (bytes([0x83, 0x80]) + MASK, 1002),                                     # opcode 3
    (ws.encode(ws.PING, b"x" * 126, MASK), 1002),                           # control frame too long
    (bytes([0x09, 0x80]) + MASK, 1002),                                     # fragmented control frame
    (ws.encode(ws.CONTINUATION, b"x", MASK), 1002),                         # continuation of nothing
    (bytes([0x82, 0xFF]) + (1 << 40).to_bytes(8, "big") + MASK, 1009),      # more than the limit
])
def test_protocol_errors(data: bytes, code: int) -> None:
    with pytest.raises(ProtocolError) as caught:
        FrameReader().feed(data)
    assert caught.value.code == code


def test_new_message_inside_a_fragmented_one_is_refused() -> None:
    reader = FrameReader()
    reader.feed(bytes([0x01, 0x80]) + MASK)
    with pytest.raises(ProtocolError):
        reader.feed(ws.encode(ws.TEXT, b"x", MASK))
