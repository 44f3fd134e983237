"""``/_ping``, ``/version``, ``/info``: the documents ``skiff version`` and ``skiff info`` print."""

from __future__ import annotations

from skiff.api.messages import Request, Response
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
