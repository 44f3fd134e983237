"""Request bodies that are read as they arrive: image tarballs (``docker load``, ``docker import``),
and the tar ``docker cp`` puts into a container.

Other bodies are read whole before anything is done (and are at most 16 MiB); an image can be
gigabytes, so the endpoints that take one get the body as a file that reads the connection as
it is consumed: ``Content-Length`` bytes, or Go's chunked encoding (Docker's client streams a file
with ``Transfer-Encoding: chunked``).
"""

from __future__ import annotations

import io
from typing import BinaryIO

from skiff.api.errors import BadRequest

# Endpoints ("module.function") whose body is handed over as a stream.
UPLOAD_ENDPOINTS = frozenset({"images.load", "images.create", "archive.put", "build.build"})


class BodyReader(io.RawIOBase):
    """The body of one request on a kept-alive connection: never reads past its end."""

    def __init__(self, rfile: io.BufferedIOBase, length: int | None) -> None:
        """``length``: the Content-Length; None: chunked."""
        self._rfile = rfile
        self._chunked = length is None
        self._left = length or 0  # bytes left of the body (or of the current chunk)
        self.exhausted = length == 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self.exhausted:
            return 0
        if self._chunked and self._left == 0 and not self._next_chunk():
            return 0
        data = self._rfile.read(min(len(buffer), self._left))
        if not data:
            raise BadRequest("the request body ended early")
        buffer[:len(data)] = data
        self._left -= len(data)
        if self._left == 0:
            if self._chunked:
                self._rfile.readline(1024)  # the CRLF after a chunk's data
            else:
                self.exhausted = True
        return len(data)

    def _next_chunk(self) -> bool:
        line = self._rfile.readline(1024)
        try:
            size = int(line.split(b";")[0].strip(), 16)
        except ValueError:
            raise BadRequest("malformed chunked request body") from None
        if size == 0:
            while self._rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            self.exhausted = True
            return False
        self._left = size
        return True


def body_reader(rfile: io.BufferedIOBase, transfer_encoding: str, content_length: str | None) -> BinaryIO:
    """A buffered reader over the body the headers announce."""
    if transfer_encoding.lower() == "chunked":
        raw = BodyReader(rfile, None)
    elif not content_length:
        raw = BodyReader(rfile, 0)
    elif content_length.isdigit():
        raw = BodyReader(rfile, int(content_length))
    else:
        raise BadRequest(f"invalid Content-Length: {content_length!r}")
    return io.BufferedReader(raw, 1 << 16)


def exhausted(reader: BinaryIO) -> bool:
    """Whether the whole body was read (else the connection cannot be kept alive)."""
    raw = getattr(reader, "raw", reader)
    return bool(getattr(raw, "exhausted", True)) and not getattr(reader, "peek", lambda n: b"")(1)
