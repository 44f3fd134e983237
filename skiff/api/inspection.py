"""``/containers/{id}/top``, ``stats`` (streamed or one document) and ``update``.

Each is the engine's call the CLI makes (``skiff top``, ``skiff stats``, ``skiff update``), in the
shape of Docker 20.10's daemon.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

from skiff.api.errors import BadRequest
from skiff.api.messages import Request, Response, Stream
from skiff.api.server import Context
from skiff.errors import SkiffError

STREAM_INTERVAL = 1.0   # Docker's collector samples every second

# UpdateConfig's resource fields -> ``skiff update``'s flag names (UpdateRequest's keys). A zero
# is Docker's "not given" (its client sends every field).
UPDATE_FIELDS = {
    "Memory": "memory", "MemorySwap": "memory_swap", "MemoryReservation": "memory_reservation",
    "CpuShares": "cpu_shares", "CpuPeriod": "cpu_period", "CpuQuota": "cpu_quota", "CpusetCpus": "cpuset_cpus",
    "CpusetMems": "cpuset_mems", "PidsLimit": "pids_limit", "BlkioWeight": "blkio_weight",
}


def top(context: Context, request: Request) -> Response:
    """``ps_args``: ps's options (``-ef`` when none); 409 when the container does not run."""
    ps_args = request.arg("ps_args")
    titles, processes = context.engine().top(request.params["id"], [ps_args] if ps_args else [])
    return Response(200, {"Titles": titles, "Processes": processes})


def stats(context: Context, request: Request) -> Stream:
    """``stream`` (default true): a document a second until the client leaves or the container is
    removed; false: one, its ``precpu_stats`` from a sample 0.1 s before (``one-shot``: the same)."""
    from skiff.engine.stats import api_document

    engine = context.engine()
    container = engine.find(request.params["id"])  # 404 before the headers
    stream = request.flag("stream", True)

    def documents() -> Iterator[bytes]:
        interval = 0.1
        while True:
            rows = engine.stats([container.id], interval=interval)
            yield json.dumps(api_document(rows[0]), separators=(",", ":")).encode() + b"\n"
            if not stream or request.client_gone() or not container.reload():
                return
            interval = STREAM_INTERVAL

    return Stream(documents())


def update(context: Context, request: Request) -> Response:
    """The resources ``skiff update`` changes, and ``RestartPolicy``: ``{"Warnings": []}``."""
    from skiff.engine.update import UpdateRequest

    body = request.json_object()
    flags = update_flags(body)
    policy = body.get("RestartPolicy") or {}
    if not isinstance(policy, dict):
        raise BadRequest("invalid RestartPolicy: expected an object")
    restart = _restart_text(policy)
    engine = context.engine()
    engine.find(request.params["id"])  # an unknown container is a 404 before the values are checked
    try:
        asked = UpdateRequest(flags, restart)
    except SkiffError as exc:  # Docker's verifyContainerResources: an invalid parameter (400)
        raise BadRequest(str(exc)) from None
    engine.update(request.params["id"], asked)
    return Response(200, {"Warnings": []})


def update_flags(body: dict[str, Any]) -> dict[str, str | None]:
    """UpdateConfig's fields as ``skiff update``'s flag values (NanoCpus as ``--cpus``)."""
    flags: dict[str, str | None] = {}
    for field, key in UPDATE_FIELDS.items():
        value = body.get(field)
        if value in (None, 0, ""):
            continue
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise BadRequest(f"invalid value for {field}: {value!r}")
        flags[key] = str(value)
    nano = body.get("NanoCpus")
    if nano:
        if isinstance(nano, bool) or not isinstance(nano, int):
            raise BadRequest(f"invalid value for NanoCpus: {nano!r}")
        flags["cpus"] = f"{nano / 1e9:g}"
    return flags


def _restart_text(policy: dict[str, Any]) -> str | None:
    name = policy.get("Name") or ""
    if not name:
        return None
    count = policy.get("MaximumRetryCount") or 0
    return f"{name}:{count}" if name == "on-failure" and count else str(name)
