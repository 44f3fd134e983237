"""``POST /build``: Docker 20.10's classic builder API over skiff.build (what ``docker build`` sends
with ``DOCKER_BUILDKIT=0``): the body is the context as a tar (or a Dockerfile), the query the
build's options, the answer Docker's JSON message stream: ``{"stream": "Step 1/2 : ..."}`` lines,
RUN's output as it comes, ``{"aux": {"ID": "sha256:..."}}``, and an ``errorDetail`` message when
the build fails.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from typing import Any, Iterator

from skiff.api.errors import BadRequest
from skiff.api.images import error_line, json_line
from skiff.api.messages import Request, Stream
from skiff.api.server import Context

_DONE = object()


class _Lines:
    """A text stream whose every write is one ``{"stream": ...}`` message."""

    def __init__(self, send: Any) -> None:
        self.send = send

    def write(self, text: str) -> int:
        if text:
            self.send({"stream": text})
        return len(text)

    def flush(self) -> None:
        pass


def build(context: Context, request: Request) -> Stream:
    from skiff.build.builder import BuildOptions, build as run_build

    if request.arg("remote"):
        raise BadRequest("remote build contexts are not supported: send the context as the request's body")
    opts = BuildOptions(
        context="-", dockerfile=request.arg("dockerfile") or None, tags=request.query.get("t", []),
        build_args=_json_map(request, "buildargs"), target=request.arg("target") or None,
        no_cache=request.flag("nocache"), labels={k: v or "" for k, v in _json_map(request, "labels").items()},
        network=_network(request.arg("networkmode") or "default"), quiet=request.flag("q"),
        pull=request.flag("pull"), platform=request.arg("platform") or None)
    messages: queue.Queue[Any] = queue.Queue()
    failure: list[BaseException] = []
    read_end, write_end = os.pipe2(os.O_CLOEXEC)

    def relay() -> None:
        with os.fdopen(read_end, "rb", buffering=0) as pipe:
            while chunk := pipe.read(1 << 16):
                messages.put({"stream": chunk.decode(errors="replace")})

    def run() -> None:
        relayer = threading.Thread(target=relay, name="build-output", daemon=True)
        relayer.start()
        try:
            image = run_build(context.paths, opts, _Lines(messages.put), request.upload(), run_output=write_end,
                              on_built=lambda built: messages.put({"aux": {"ID": built.id}}))
            if opts.quiet:  # as Docker's daemon: -q's answer is the id alone
                messages.put({"stream": f"{image.id}\n"})
        except BaseException as exc:
            failure.append(exc)
        finally:
            os.close(write_end)
            relayer.join()
            messages.put(_DONE)

    threading.Thread(target=run, name="build", daemon=True).start()

    def stream() -> Iterator[bytes]:
        from skiff.api.errors import message_for

        item = messages.get()
        while item is not _DONE:
            yield json_line(item)
            item = messages.get()
        if failure:
            message = message_for(failure[0])
            yield json_line({"errorDetail": {"code": 1, "message": message}, "error": message}) \
                if failure[0].__class__.__name__ == "BuildError" else error_line(message)

    return Stream(stream())


def _json_map(request: Request, name: str) -> dict[str, str | None]:
    raw = request.arg(name)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"invalid {name}: {exc}") from None
    if not isinstance(value, dict):
        raise BadRequest(f"invalid {name}: expected a JSON object")
    return {str(k): (None if v is None else str(v)) for k, v in value.items()}


def _network(mode: str) -> str:
    return "bridge" if mode == "default" else mode
