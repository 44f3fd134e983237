"""A request as the endpoints see it, and what they answer: a JSON document, nothing, or a stream."""

from __future__ import annotations

import json
from typing import Any, BinaryIO, Callable, Iterator, Mapping

from skiff.api.errors import BadRequest

_TRUE = ("1", "true", "True", "TRUE", "yes")
_FALSE = ("", "0", "false", "False", "FALSE", "no")


class Request:
    """The method, the unprefixed path, its parameters, the query and the body of one call."""

    def __init__(self, method: str, path: str, params: Mapping[str, str], query: Mapping[str, list[str]],
                 body: bytes = b"", version: str | None = None) -> None:
        self.method = method
        self.path = path
        self.params = params
        self.query = query
        self.body = body
        self.version = version
        # True once the client has closed its end (set by the server): streams stop waiting then.
        self.client_gone: Callable[[], bool] = lambda: False
        # The body of an image upload, read as it is consumed (skiff.api.uploads); else None.
        self.body_file: BinaryIO | None = None
        self.headers: Mapping[str, str] = {}  # the request's headers (set by the server)

    def upload(self) -> BinaryIO:
        """The body as a file: the upload's stream, or the body already read."""
        import io

        return self.body_file if self.body_file is not None else io.BytesIO(self.body)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def flag(self, name: str, default: bool = False) -> bool:
        """A boolean query parameter as Docker's ``httputils.BoolValue``: 1/true/yes, else false."""
        value = self.arg(name)
        if value is None:
            return default
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise BadRequest(f"invalid boolean value for {name!r}: {value!r}")

    def integer(self, name: str, default: int | None = None) -> int | None:
        value = self.arg(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise BadRequest(f"invalid value for {name!r}: {value!r}: not an integer") from None

    def json(self, required: bool = True) -> Any:
        """The body as JSON; empty: ``{}`` unless required. Malformed: 400, as Docker's daemon."""
        if not self.body.strip():
            if required:
                raise BadRequest("request body is empty: a JSON document is required")
            return {}
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(f"invalid JSON in the request body: {exc}") from None

    def json_object(self, required: bool = True) -> dict[str, Any]:
        document = self.json(required)
        if not isinstance(document, dict):
            raise BadRequest("invalid JSON in the request body: expected an object")
        return document

    def filters(self) -> dict[str, list[str]]:
        """Docker's ``filters`` parameter: ``{"key": ["v"]}`` or the older ``{"key": {"v": true}}``."""
        raw = self.arg("filters")
        if not raw:
            return {}
        try:
            document = json.loads(raw)
        except ValueError as exc:
            raise BadRequest(f"invalid filters: {exc}") from None
        if not isinstance(document, dict):
            raise BadRequest("invalid filters: expected an object")
        result: dict[str, list[str]] = {}
        for key, values in document.items():
            if isinstance(values, dict):
                result[key] = [str(v) for v, on in values.items() if on]
            elif isinstance(values, list):
                result[key] = [str(v) for v in values]
            else:
                raise BadRequest(f"invalid filters: the values of {key!r} must be a list")
        return result

    def filter_flags(self) -> list[str]:
        """The filters as the CLI's ``--filter key=value`` strings (what skiff.engine.filters parses)."""
        return [f"{key}={value}" for key, values in self.filters().items() for value in values]


class Response:
    """A complete answer: a status and a JSON document (or no body: 204, 304)."""

    def __init__(self, status: int = 200, document: Any = None, headers: Mapping[str, str] | None = None,
                 content_type: str = "application/json") -> None:
        self.status = status
        self.document = document
        self.headers = dict(headers or {})
        self.content_type = content_type

    def body(self) -> bytes:
        if self.document is None:
            return b""
        if isinstance(self.document, bytes):
            return self.document
        return encode_json(self.document)


def encode_json(document: Any) -> bytes:
    """A JSON body as Docker's daemon writes it: compact, with Go's encoder's final newline."""
    return compact_json(document) + b"\n"


def compact_json(document: Any) -> bytes:
    """JSON without spaces: the elements of a list's ``encode_json``, joined by commas in brackets."""
    return json.dumps(document, separators=(",", ":")).encode()


class Stream:
    """An answer sent as it is produced (chunked): logs that follow, a wait, events.

    ``chunks`` is consumed in the connection's own thread; the headers go out first, so a
    client knows its request was taken before anything happens (Docker's wait flushes them too).
    """

    def __init__(self, chunks: Iterator[bytes], content_type: str = "application/json", status: int = 200,
                 headers: Mapping[str, str] | None = None) -> None:
        self.chunks = chunks
        self.content_type = content_type
        self.status = status
        self.headers = dict(headers or {})


class Hijack:
    """An answer that takes the connection over (attach, exec start): Docker's HTTP hijack.

    The server answers ``101 UPGRADED`` (the client asked for ``Upgrade: tcp``) or ``200 OK``,
    with ``content_type``, then hands the bare socket to ``serve`` (any bytes the client sent
    after its request come as ``early``) and closes the connection when it returns.
    ``websocket``: the handshake's headers instead (``attach/ws``): ``101 Switching Protocols``.
    """

    def __init__(self, serve: Callable[[Any, bytes], None], content_type: str,
                 websocket: Mapping[str, str] | None = None) -> None:
        self.serve = serve
        self.content_type = content_type
        self.websocket = websocket
