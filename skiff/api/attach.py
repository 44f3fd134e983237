"""``POST /containers/{id}/attach`` and ``/containers/{id}/resize``: hijacked streams to a container.

The attach is the monitor's (``attach.sock``, as ``skiff attach``'s): the connection's thread
relays between the client's socket and the monitor (skiff.engine.terminal.relay_client).
``docker run`` without ``-d`` attaches to the container it has just created, then starts it:
the attach waits for the start, and the start (``containers.start``) asks the monitor to keep
the container's first output for it (``expects_attach``), so a short ``echo hi`` is not lost.
A resize goes through an open attach's monitor connection when there is one (a new monitor
client before the first attach would take the output kept for that attach).
"""

from __future__ import annotations

import socket
import threading
from typing import Callable

from skiff.api.errors import BadRequest
from skiff.api.messages import Hijack, Request, Response
from skiff.api.server import Context
from skiff.engine.containers import Container
from skiff.engine.state import Status
from skiff.errors import ContainerConflict

RAW_STREAM = "application/vnd.docker.raw-stream"
MULTIPLEXED_STREAM = "application/vnd.docker.multiplexed-stream"
START_POLL_SECONDS = 0.02


class Session:
    """One attach: its monitor connection once the container runs, and a size to send it then."""

    def __init__(self) -> None:
        self.monitor: socket.socket | None = None
        self.size: tuple[int, int] | None = None
        self.lock = threading.Lock()

    def resize(self, rows: int, cols: int) -> None:
        with self.lock:
            self.size = (rows, cols)
            if self.monitor is not None:
                _send_size(self.monitor, self.size)

    def connected(self, monitor: socket.socket) -> None:
        with self.lock:
            self.monitor = monitor
            if self.size:
                _send_size(monitor, self.size)


def _send_size(monitor: socket.socket, size: tuple[int, int]) -> None:
    from skiff.engine.monitor.idle import frame

    monitor.sendall(frame(b"r", f"{size[0]} {size[1]}".encode()))


_sessions: dict[str, list[Session]] = {}
_sessions_lock = threading.Lock()


def _add(cid: str, session: Session) -> None:
    with _sessions_lock:
        _sessions.setdefault(cid, []).append(session)


def _remove(cid: str, session: Session) -> None:
    with _sessions_lock:
        sessions = _sessions.get(cid, [])
        if session in sessions:
            sessions.remove(session)
        if not sessions:
            _sessions.pop(cid, None)


def expects_attach(cid: str) -> bool:
    """Whether an attach waits for this container's start (the start keeps its first output then)."""
    with _sessions_lock:
        return any(session.monitor is None for session in _sessions.get(cid, []))


def attach(context: Context, request: Request) -> Hijack:
    """``stream``, ``stdin``, ``stdout``, ``stderr``, ``logs``, ``detachKeys``; 409 when paused or stopped."""
    serve, tty = _attachment(context, request)
    multiplexed = not tty and request.version is not None and tuple(map(int, request.version.split("."))) >= (1, 42)
    return Hijack(serve, MULTIPLEXED_STREAM if multiplexed else RAW_STREAM)


def attach_ws(context: Context, request: Request) -> Hijack:
    """``GET /containers/{id}/attach/ws``: the same attach over a WebSocket (RFC 6455), as dockerd's.

    The container's output goes out raw (no 8-byte headers: Docker's MuxStreams false), one
    frame per read, binary frames from API 1.28 on and text frames before (dockerd's); only the
    streams asked for (``stdout``, ``stderr``). The payload of the client's data frames is the
    container's input; a close frame or a hang-up ends it (its stdin closed as after a half-close),
    the detach keys too. The bytes go through a socket pair, so the relay is the hijacked attach's.
    """
    from skiff.api import websocket

    headers = request.headers
    key = headers.get("Sec-WebSocket-Key") or ""
    if "websocket" not in (headers.get("Upgrade") or "").lower() or not websocket.valid_key(key):
        raise BadRequest("websocket: the client is not using the websocket protocol "
                         "(Upgrade: websocket and a Sec-WebSocket-Key are required)")
    if (headers.get("Sec-WebSocket-Version") or "") != "13":
        raise BadRequest("websocket: unsupported Sec-WebSocket-Version (13 is)")
    serve, tty = _attachment(context, request)
    wanted = {1: request.flag("stdout"), 2: request.flag("stderr")}
    version = request.version
    binary = version is None or tuple(map(int, version.split("."))) >= (1, 28)

    def serve_ws(client: socket.socket, early: bytes) -> None:
        from skiff.api.wsbridge import bridge

        bridge(client, early, serve, tty, wanted, websocket.BINARY if binary else websocket.TEXT)

    return Hijack(serve_ws, "", websocket={"Upgrade": "websocket", "Connection": "Upgrade",
                                           "Sec-WebSocket-Accept": websocket.accept_token(key)})


def _attachment(context: Context, request: Request) -> tuple[Callable[[socket.socket, bytes], None], bool]:
    """The checks of an attach and what serves its connection; whether the container has a TTY."""
    from skiff.engine.terminal import parse_detach_keys

    engine = context.engine()
    container = engine.find(request.params["id"])
    keys = parse_detach_keys(request.arg("detachKeys"))
    if container.state.can_unpause:
        raise ContainerConflict("You cannot attach to a paused container, unpause it first")
    if container.state.status == Status.EXITED and request.flag("stream"):
        raise ContainerConflict("You cannot attach to a stopped container, start it first")
    config = container.data["Config"]
    tty = bool(config.get("Tty"))
    stdin = request.flag("stdin") and bool(config.get("OpenStdin"))
    stdin_once = bool(config.get("StdinOnce", config.get("AttachStdin")))
    stream = request.flag("stream")
    logs = request.flag("logs")
    session = Session()
    if stream:
        _add(container.id, session)

    def serve(client: socket.socket, early: bytes) -> None:
        try:
            if logs:
                _send_logs(context, container, client, tty)
            if stream:
                _relay(context, container, session, client, early, tty, stdin, keys, stdin_once)
        finally:
            _remove(container.id, session)

    return serve, tty


def _relay(context: Context, container: Container, session: Session, client: socket.socket, early: bytes,
           tty: bool, stdin: bool, keys: bytes, stdin_once: bool) -> None:
    from skiff.engine import events
    from skiff.engine.terminal import relay_client

    engine = context.engine()
    if not _wait_started(container, client):
        return
    monitor = engine.connect_attach(container)
    if monitor is None:
        return
    with monitor:
        session.connected(monitor)
        events.emit_container(context.paths, container.data, "attach")
        result = relay_client(monitor, client, early, tty, stdin, keys, stdin_once)
    if result.detached:
        events.emit_container(context.paths, container.data, "detach")


def _wait_started(container: Container, client: socket.socket) -> bool:
    """Until the container has a monitor (``docker run`` attaches before it starts); False when the
    client hangs up (a half-close is not that: the CLI closes its write side at once without -i)
    or the container is removed first."""
    import select

    poller = select.poll()
    poller.register(client.fileno(), 0)  # POLLHUP and POLLERR only
    while container.state.status in (Status.CREATED, Status.STARTING):
        if poller.poll(START_POLL_SECONDS * 1000):
            return False
        if not container.reload():
            return False
    return True


def _send_logs(context: Context, container: Container, client: socket.socket, tty: bool) -> None:
    """``logs=1``: what the container has written so far, before the live stream (Docker's)."""
    from skiff.engine import logs
    from skiff.engine.terminal import multiplexed_frame

    found, _ = logs.read(container.log_path)
    for stream, text, _stamp in found:
        data = text.encode()
        client.sendall(data if tty else multiplexed_frame(2 if stream == "stderr" else 1, data))


def resize(context: Context, request: Request) -> Response:
    """``h``, ``w``: the size of a TTY container's terminal; 409 when it does not run."""
    rows, cols = request.integer("h", 0) or 0, request.integer("w", 0) or 0
    if rows < 0 or cols < 0:
        raise BadRequest(f"invalid terminal size {rows}x{cols}")
    engine = context.engine()
    container = engine.find(request.params["id"])
    if not container.running:
        raise ContainerConflict(f"Container {container.id} is not running")
    with _sessions_lock:
        sessions = list(_sessions.get(container.id, []))
    if sessions:
        for session in sessions:
            session.resize(rows, cols)
        return Response(200)
    engine.resize(container, rows, cols)
    return Response(200)

