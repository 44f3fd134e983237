"""``/containers/...``: list, create, inspect, start, stop, kill, restart, pause, unpause, rename, wait,
logs, remove.

Every endpoint is one call into ``skiff.engine.Engine`` (the CLI's), answered in the shape and
with the status codes of Docker 20.10's daemon.
"""

from __future__ import annotations

import json
import struct
import time
from typing import Any, Generator, Iterator

from skiff.api.errors import BadRequest
from skiff.api.messages import Request, Response, Stream
from skiff.api.server import Context
from skiff.errors import ContainerNotFound

WAIT_CONDITIONS = ("not-running", "next-exit", "removed")
# docker run asks for its wait (next-exit, or removed with --rm) before it starts the container: a
# created container is polled until its start, which follows within milliseconds, so a short poll
# (a record read, ~0.1 ms) keeps the start from adding up to a whole interval to every docker run.
UNTIL_STARTED_POLL = 0.02
STDOUT, STDERR = 1, 2


def list_(context: Context, request: Request) -> Response:
    """``GET /containers/json``: ``all``, ``limit`` (the newest N, any state), ``size``, ``filters``."""
    from skiff.engine.filters import FilterArgs

    engine = context.engine()
    size = request.flag("size")
    found = engine.list_containers(FilterArgs(request.filters()), all_=request.flag("all"),
                                   last=request.integer("limit", -1) or -1)
    return Response(200, context.encoded_listing(engine.summaries(found, size)))


def inspect(context: Context, request: Request) -> Response:
    return Response(200, context.engine().inspect(request.params["id"], size=request.flag("size")))


def create(context: Context, request: Request) -> Response:
    """``POST /containers/create?name=``: 201 ``{"Id": ..., "Warnings": []}``."""
    from skiff.api.create import run_options

    from skiff.image.store import ImageStore

    opts = run_options(request.json_object(), request.arg("name"))
    ImageStore(context.paths).get(opts.image)  # Docker's daemon's 404, "No such image: X": its client pulls then
    container = context.engine().create(opts)
    return Response(201, {"Id": container.id, "Warnings": []})


def start(context: Context, request: Request) -> Response:
    """204; 304 when it already runs (Docker's "container already started")."""
    engine = context.engine()
    container = engine.find(request.params["id"])
    if container.running:
        return Response(304)
    from skiff.api.attach import expects_attach

    engine.start(container.id, attach=expects_attach(container.id))  # docker run's attach came first
    return Response(204)


def stop(context: Context, request: Request) -> Response:
    """``t``: seconds before SIGKILL (the container's StopTimeout, else 10); 304 when not running."""
    from skiff.signals import parse_signal

    engine = context.engine()
    container = engine.find(request.params["id"])
    if not container.state.can_stop:
        return Response(304)
    name = request.arg("signal")
    engine.stop(container.id, request.integer("t"), parse_signal(name) if name else None)
    return Response(204)


def kill(context: Context, request: Request) -> Response:
    """``signal``: a name (``SIGHUP``, ``HUP``) or a number; 409 when the container is not running."""
    from skiff.signals import parse_signal

    context.engine().kill(request.params["id"], parse_signal(request.arg("signal") or "SIGKILL"))
    return Response(204)


def restart(context: Context, request: Request) -> Response:
    """``t``: seconds before SIGKILL; a stopped container is just started, as Docker's."""
    context.engine().restart(request.params["id"], request.integer("t"))
    return Response(204)


def pause(context: Context, request: Request) -> Response:
    """409 when it does not run or is paused already."""
    context.engine().pause(request.params["id"], pause=True)
    return Response(204)


def unpause(context: Context, request: Request) -> Response:
    """409 when it is not paused."""
    context.engine().pause(request.params["id"], pause=False)
    return Response(204)


def rename(context: Context, request: Request) -> Response:
    """``name``: the new name; 409 when another container has it."""
    name = request.arg("name")
    if not name:
        raise BadRequest("name is required: give the new name as ?name=")
    context.engine().rename(request.params["id"], name)
    return Response(204)


def remove(context: Context, request: Request) -> Response:
    """``DELETE /containers/{id}``: ``force`` kills a running one, ``v`` removes its anonymous volumes."""
    context.engine().remove_container(request.params["id"], force=request.flag("force"),
                                      volumes=request.flag("v"))
    return Response(204)


def wait(context: Context, request: Request) -> Stream:
    """``POST /containers/{id}/wait?condition=``: the headers at once, ``{"Error": null, "StatusCode": N}``
    when the condition is met. The wait holds only its own connection's thread."""
    condition = request.arg("condition") or "not-running"
    if condition not in WAIT_CONDITIONS:
        raise BadRequest(f"invalid condition: {condition!r} (use {', '.join(WAIT_CONDITIONS)})")
    engine = context.engine()
    container = engine.find(request.params["id"])  # 404 before the headers go out
    since_ns, started_at = time.time_ns(), container.state.started_at

    def result() -> Iterator[bytes]:
        from skiff.engine.engine import exit_code_recorded

        if condition == "removed":  # whatever runs before the removal (docker run --rm waits so, then starts)
            while container.reload():
                if request.client_gone():
                    return
                _until_owner_exits(container)
            status = exit_code_recorded(context.paths, container.id, since_ns, container.state.exit_code)
            yield json.dumps({"Error": None, "StatusCode": status}, separators=(",", ":")).encode() + b"\n"
            return
        if condition == "next-exit" and not _until_running(container, request, started_at):
            return
        if not _until_released(container, request):
            return
        try:
            status = engine.wait(container.id)
        except ContainerNotFound:  # removed as it ended (AutoRemove, rm -f): the status its die event has
            status = exit_code_recorded(context.paths, container.id, since_ns, container.state.exit_code)
        yield json.dumps({"Error": None, "StatusCode": status}, separators=(",", ":")).encode() + b"\n"

    return Stream(result())


def _until_owner_exits(container: Any) -> None:
    """Until the container's holder exits (its monitor removes an ``AutoRemove`` container before
    it exits, so ``docker run --rm``'s wait answers at once, not a poll's interval later), at most
    half a second (the caller looks whether its client is still there); a container nobody holds
    yet (created, its start on the way) is looked at again after a short poll."""
    from skiff.engine import lifecycle

    owner = container.state.owner if container.held else None
    if owner is None or not container.state.owner_alive():
        time.sleep(UNTIL_STARTED_POLL)
        return
    lifecycle.wait_for_pid(owner.pid, 0.5)


def _until_running(container: Any, request: Request, started_at: str) -> bool:
    """``next-exit`` of a container that does not run: wait until it starts (False: the client left).
    A start since the request counts even if it is over already (``docker run``'s ``echo hi``)."""
    while container.reload() and not container.held and container.state.started_at == started_at:
        if request.client_gone():
            return False
        time.sleep(UNTIL_STARTED_POLL)
    return True


def _until_released(container: Any, request: Request) -> bool:
    """Until its holder has finished with it; False as soon as the client has gone (no thread is left
    waiting for a container that runs for days after ``docker run -d`` hung up)."""
    from skiff.engine import lifecycle

    while not lifecycle.wait_released(container, timeout=0.5):
        if request.client_gone():
            return False
    return True


def logs(context: Context, request: Request) -> Stream:
    """``GET /containers/{id}/logs``: Docker's 8-byte frames (stream, 0, 0, 0, length) without a
    TTY, the raw bytes with one; ``follow`` streams until the container stops."""
    from skiff.engine import logs as log_files

    want = {"stdout": request.flag("stdout"), "stderr": request.flag("stderr")}
    if not any(want.values()):
        raise BadRequest("Bad parameters: you must choose at least one stream")
    tail = log_files.tail_lines(request.arg("tail") or "all")
    since = log_files.parse_since(request.arg("since")) if request.arg("since") not in (None, "0") else None
    until = log_files.parse_since(request.arg("until")) if request.arg("until") not in (None, "0") else None
    timestamps, follow = request.flag("timestamps"), request.flag("follow")
    container = context.engine().find(request.params["id"])
    tty = bool(container.data["Config"].get("Tty"))

    def entries() -> Generator[tuple[str, str, str], None, None]:
        found, offset = log_files.read(container.log_path, tail, since)
        yield from found
        if follow and until is None:
            written = log_files.still_written(container)
            yield from log_files.follow(container.log_path, offset, lambda: written() and not request.client_gone())

    def frames() -> Iterator[bytes]:
        source = entries()
        try:
            for stream, text, stamp in source:
                if not want.get(stream) or (until is not None and _epoch(stamp) > until):
                    continue
                payload = (f"{stamp} {text}" if timestamps else text).encode()
                yield payload if tty else struct.pack(">BxxxL", STDERR if stream == "stderr" else STDOUT,
                                                      len(payload)) + payload
        finally:
            source.close()

    content_type = "application/vnd.docker.raw-stream" if tty else "application/vnd.docker.multiplexed-stream"
    return Stream(frames(), content_type)


def _epoch(stamp: str) -> float:
    from skiff.timestamps import parse

    try:
        return parse(stamp)
    except (ValueError, IndexError):
        return 0.0
