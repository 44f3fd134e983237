"""``/_ping``, ``/version``, ``/info``: the documents ``skiff version`` and ``skiff info`` print;
``/events``: the events log every command (CLI or API) appends to."""

from __future__ import annotations

import json
import time
from typing import Iterator

from skiff.api.errors import BadRequest, NotImplementedYet
from skiff.api.messages import Request, Response, Stream
from skiff.api.server import Context


def ping(context: Context, request: Request) -> Response:
    """``OK``; the headers every answer carries (Api-Version ...) are what clients negotiate with."""
    return Response(200, b"OK", {"Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache"},
                    content_type="text/plain; charset=utf-8")


def version(context: Context, request: Request) -> Response:
    from skiff.engine.system import version_document

    return Response(200, version_document()["Server"])


def info(context: Context, request: Request) -> Response:
    from skiff.engine.system import info_document

    return Response(200, info_document(context.paths))


def events(context: Context, request: Request) -> Stream:
    """``GET /events``: ``since``, ``until`` (Unix times, dates, durations), ``filters`` (container,
    event, image, label, network, type, volume). One JSON message per line, each sent as it is
    recorded, until ``until`` (or the client hangs up)."""
    from skiff.engine.events import stream
    from skiff.engine.filters import FilterArgs, docker_time_ns, event_filter

    include = event_filter(FilterArgs(request.filters()))
    now = time.time()
    try:
        since, until = (docker_time_ns(value, now) if value else None
                        for value in (request.arg("since"), request.arg("until")))
    except ValueError as exc:
        raise BadRequest(str(exc)) from None

    def messages() -> Iterator[bytes]:
        for event in stream(context.paths, include, since, until, lambda: not request.client_gone()):
            yield json.dumps(event, separators=(",", ":")).encode() + b"\n"

    return Stream(messages())


def not_yet(context: Context, request: Request) -> Response:
    """An endpoint of Docker's API that skiff's does not serve yet (501, named)."""
    raise NotImplementedYet(f"{request.method} {request.path} is not served by skiff's Engine API yet "
                            "(docs/engine-api.md lists what is)")
