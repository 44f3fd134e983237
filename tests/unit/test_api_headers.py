"""skiff.api.headers: a request's header fields as the server reads them from the connection."""

from __future__ import annotations

import io

import pytest

from skiff.api.headers import MAX_FIELDS, MAX_LINE, HeaderError, read_headers


def read(block: bytes) -> tuple[dict[str, str], bytes]:
    stream = io.BufferedReader(io.BytesIO(block))  # type: ignore[arg-type]  # as the server's rfile
    return dict(read_headers(stream)), stream.read()


def test_names_are_matched_in_any_case_and_values_trimmed() -> None:
    stream = io.BytesIO(b"Content-Type:  application/json \r\nX-Registry-Auth: e30=\r\n\r\nbody")
    headers = read_headers(stream)
    assert headers.get("content-type") == "application/json"
    assert headers["CONTENT-TYPE"] == "application/json"
    assert "x-registry-auth" in headers and "X-Registry-Auth" in headers
    assert headers.get("Content-Length") is None
    assert headers.get("Content-Length", "") == ""
    assert stream.read() == b"body"  # the body is left for the handler, unread


def test_the_first_of_a_repeated_field_stands_with_its_folded_lines() -> None:
    headers, _ = read(b"Host: a\r\nX-Long: one\r\n two\r\n\tthree\r\nhost: b\r\n folded-into-b\r\n\r\n")
    assert headers == {"host": "a", "x-long": "one two three"}


def test_a_content_length_repeated_with_the_same_value_is_one() -> None:
    assert read(b"Content-Length: 5\r\ncontent-length: 5\r\n\r\n12345") == ({"content-length": "5"}, b"12345")


def test_bare_newlines_and_a_stream_that_ends_early_end_the_fields() -> None:
    assert read(b"Host: a\n\nrest") == ({"host": "a"}, b"rest")
    assert read(b"Host: a\r\n") == ({"host": "a"}, b"")


@pytest.mark.parametrize("block, status", [
    (b"no colon here\r\n\r\n", 400),
    (b" folded before any field\r\n\r\n", 400),
    (b"Name : space before the colon\r\n\r\n", 400),
    (b": no name\r\n\r\n", 400),
    (b"Host: a\r\n\r\r\n\r\n", 400),
    (b"Content-Length: 5\r\nContent-Length: 50\r\n\r\n", 400),
    (b"X: " + b"a" * MAX_LINE + b"\r\n\r\n", 431),
    (b"".join(b"X-%d: v\r\n" % n for n in range(MAX_FIELDS + 1)) + b"\r\n", 431),
])
def test_a_malformed_or_oversized_block_is_refused_with_its_status(block: bytes, status: int) -> None:
    with pytest.raises(HeaderError) as raised:
        read(block)
    assert raised.value.status == status


def test_as_many_fields_as_allowed_are_read() -> None:
    headers, rest = read(b"".join(b"X-%d: v\r\n" % n for n in range(MAX_FIELDS)) + b"\r\nbody")
    assert len(headers) == MAX_FIELDS and rest == b"body"
