"""``/containers/{id}/archive`` (GET, HEAD, PUT: ``docker cp`` both ways), ``export``, ``changes``.

HTTP only: the copying, and every check that keeps a path inside the container, is
skiff.engine.archive's (the code a ``skiff cp`` will share).
"""

from __future__ import annotations

import base64
import json
from typing import IO, Iterator

from skiff.api.errors import BadRequest
from skiff.api.messages import Request, Response, Stream
from skiff.api.server import Context

TAR = "application/x-tar"
STAT_HEADER = "X-Docker-Container-Path-Stat"
ERROR_DRAIN = 256 << 10   # Go's net/http reads this much of an unread body before it answers and closes


def _path(request: Request) -> str:
    path = request.arg("path")
    if not path:
        raise BadRequest("bad parameter: path cannot be empty")
    return path


def _stat_header(document: dict[str, object]) -> dict[str, str]:
    """Docker's header: the stat's JSON in base64's URL alphabet (what its client decodes)."""
    text = json.dumps(document, separators=(",", ":")).encode()
    return {STAT_HEADER: base64.urlsafe_b64encode(text).decode()}


def stat(context: Context, request: Request) -> Response:
    """``HEAD``: the path's stat in the header only; 404 with Docker's words when it is missing."""
    from skiff.engine import archive

    ref, path = request.params["id"], _path(request)
    container = context.engine().find(ref)
    with archive.opened(container, ref) as fs:
        found = archive.path_stat(fs, path)
    return Response(200, headers=_stat_header(found.document()))


def get(context: Context, request: Request) -> Stream:
    """``GET``: the path as a tar (its top entry named as Docker's), streamed; the stat in the header."""
    from skiff.engine import archive

    ref, path = request.params["id"], _path(request)
    container = context.engine().find(ref)
    stack = archive.opened(container, ref)
    fs = stack.__enter__()
    try:
        header = _stat_header(archive.path_stat(fs, path).document())  # a 404 before the headers go out
    except BaseException:
        stack.__exit__(None, None, None)
        raise

    def chunks() -> Iterator[bytes]:
        try:
            yield from archive.stream_tar(lambda out: archive.write_path(fs, path, out))
        finally:
            stack.__exit__(None, None, None)

    return Stream(chunks(), TAR, headers=header)


def put(context: Context, request: Request) -> Response:
    """``PUT``: unpack the body's tar into the directory ``path`` (``noOverwriteDirNonDir``,
    ``copyUIDGID``: every entry owned by the container's user)."""
    from skiff.engine import archive

    body = request.upload()  # read from the connection as the tar is unpacked
    try:
        ref, path = request.params["id"], _path(request)
        container = context.engine().find(ref)
        archive.check_writable(container, path)
        with archive.opened(container, ref, writable=True) as fs:
            owner = archive.copy_owner(fs, container.data["Config"].get("User") or "") if request.flag("copyUIDGID") else None
            archive.extract(fs, path, body, archive.Extraction(request.flag("noOverwriteDirNonDir"), owner))
    except Exception:
        _drain(body, ERROR_DRAIN)  # as Go's server: a client still sending gets the answer, not a reset
        raise
    _drain(body, None)  # the tar's end padding: the connection stays usable
    return Response(200)


def _drain(body: IO[bytes], limit: int | None) -> None:
    """Read what is left of the body (at most ``limit`` bytes; past it the connection is closed)."""
    left = limit
    while left is None or left > 0:
        chunk = body.read(1 << 16 if left is None else min(1 << 16, left))
        if not chunk:
            return
        if left is not None:
            left -= len(chunk)


def export(context: Context, request: Request) -> Stream:
    """``GET /containers/{id}/export``: the container's filesystem as a tar, streamed."""
    from skiff.engine import archive

    container = context.engine().find(request.params["id"])
    return Stream(archive.stream_tar(lambda out: archive.export(container, out)), TAR)


def changes(context: Context, request: Request) -> Response:
    """``GET /containers/{id}/changes``: ``[{"Path", "Kind"}]`` (0 modified, 1 added, 2 deleted)."""
    from skiff.engine import archive

    container = context.engine().find(request.params["id"])
    return Response(200, archive.changes(container))
