"""``/containers/{id}/exec`` and ``/exec/{id}/...``: create, start (hijacked), resize, inspect.

An exec instance lives in the server's memory, as Docker's daemon keeps its own (gone when
the server restarts). The process is made by the engine (``Engine.exec_process``, ``exec_spawn``,
``exec_console``: what ``skiff exec`` runs), with this server as its parent: a thread of the
connection relays its pipes or its pty master (skiff.engine.terminal.relay_process) and reaps it,
so ``ExitCode`` is known; a detached one is reaped by a thread of its own.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

from skiff.api.attach import MULTIPLEXED_STREAM, RAW_STREAM
from skiff.api.errors import BadRequest
from skiff.api.fields import boolean, string, strings
from skiff.api.messages import Hijack, Request, Response
from skiff.api.server import Context
from skiff.engine.containers import Container
from skiff.errors import ContainerConflict, NotFound


class ExecNotFound(NotFound):
    pass


@dataclass
class ExecInstance:
    """Docker's exec config and its state (ExecInspect)."""

    id: str
    container_id: str
    command: list[str]
    env: list[str]
    user: str
    workdir: str
    tty: bool
    stdin: bool
    stdout: bool
    stderr: bool
    detach_keys: str
    privileged: bool = False
    started: bool = False
    running: bool = False
    exit_code: int | None = None
    pid: int = 0
    master: int = -1               # the pty master while a TTY exec runs (resize)
    size: tuple[int, int] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def inspect(self) -> dict[str, Any]:
        return {"CanRemove": False, "ContainerID": self.container_id, "DetachKeys": self.detach_keys,
                "ExitCode": self.exit_code, "ID": self.id, "OpenStderr": self.stderr, "OpenStdin": self.stdin,
                "OpenStdout": self.stdout,
                "ProcessConfig": {"arguments": self.command[1:], "entrypoint": self.command[0],
                                  "privileged": self.privileged,
                                  "tty": self.tty, "user": self.user},
                "Running": self.running, "Pid": self.pid}


_instances: dict[str, ExecInstance] = {}
_instances_lock = threading.Lock()


def _find(exec_id: str) -> ExecInstance:
    with _instances_lock:
        instance = _instances.get(exec_id)
    if instance is None:
        raise ExecNotFound(f"No such exec instance: {exec_id}")
    return instance





def create(context: Context, request: Request) -> Response:
    """201 ``{"Id"}``; 404 no container, 409 not running or paused (checked now, as Docker's)."""
    from skiff.engine.terminal import parse_detach_keys

    body = request.json_object()
    command = strings(body, "Cmd")
    if not command:
        raise BadRequest("No exec command specified")
    detach_keys = string(body, "DetachKeys")
    parse_detach_keys(detach_keys or None)
    env, user, workdir, tty = strings(body, "Env"), string(body, "User"), string(body, "WorkingDir"), boolean(body, "Tty")
    privileged = boolean(body, "Privileged")
    container, _ = context.engine().exec_process(request.params["id"], command, env, user or None, workdir or None,
                                                 tty, privileged)
    instance = ExecInstance(secrets.token_hex(32), container.id, command, env, user, workdir, tty,
                            boolean(body, "AttachStdin"), boolean(body, "AttachStdout"), boolean(body, "AttachStderr"),
                            detach_keys, privileged)
    with _instances_lock:
        _instances[instance.id] = instance
    return Response(201, {"Id": instance.id})


def inspect(context: Context, request: Request) -> Response:
    return Response(200, _find(request.params["id"]).inspect())


def resize(context: Context, request: Request) -> Response:
    """``h``, ``w``: the exec's terminal (its pty master, held by the relay while it runs)."""
    import termios

    instance = _find(request.params["id"])
    rows, cols = request.integer("h", 0) or 0, request.integer("w", 0) or 0
    if rows < 0 or cols < 0:
        raise BadRequest(f"invalid terminal size {rows}x{cols}")
    with instance.lock:
        if not instance.tty:
            raise ContainerConflict(f"exec {instance.id} has no terminal to resize")
        instance.size = (rows, cols)
        if instance.master >= 0:
            with contextlib.suppress(OSError, termios.error):
                termios.tcsetwinsize(instance.master, (rows, cols))
    return Response(200)


def start(context: Context, request: Request) -> Response | Hijack:
    """``{"Detach", "Tty"}``: detached, 200 at once; else Docker's hijacked stream until it ends."""
    instance = _find(request.params["id"])
    body = request.json_object(required=False)
    detach = boolean(body, "Detach")
    with instance.lock:
        if instance.started:
            raise ContainerConflict(f"Error: Exec command {instance.id} has already run")
        instance.started = True
    engine = context.engine()
    container, process = engine.exec_process(instance.container_id, instance.command, instance.env,
                                             instance.user or None, instance.workdir or None, instance.tty,
                                             instance.privileged)
    if detach:
        _start_detached(context, instance, container, process)
        return Response(200)

    def serve(client: socket.socket, early: bytes) -> None:
        _run_attached(context, instance, container, process, client, early)

    return Hijack(serve, RAW_STREAM if instance.tty or request.version is None or
                  tuple(map(int, request.version.split("."))) < (1, 42) else MULTIPLEXED_STREAM)


def _start_detached(context: Context, instance: ExecInstance, container: Container, process: dict[str, Any]) -> None:
    engine = context.engine()
    process["terminal"] = False  # as Docker's exec -dt: nobody reads the terminal
    devnull_in = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    devnull_out = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    try:
        exec_id = engine.exec_started(container, instance.command)
        pid = engine.exec_spawn(container, process, (devnull_in, devnull_out, devnull_out))
    finally:
        os.close(devnull_in)
        os.close(devnull_out)
    _running(instance, pid)
    _ended(context, instance, container, exec_id, detached=True)


def _running(instance: ExecInstance, pid: int) -> None:
    with instance.lock:
        instance.pid, instance.running = pid, True


def _reap(context: Context, instance: ExecInstance, container: Container, exec_id: str) -> None:
    from skiff.engine.monitor.idle import wait_status

    status = wait_status(instance.pid)
    with instance.lock:
        instance.running, instance.exit_code, instance.master = False, status, -1
    context.engine().exec_ended(container, exec_id, status)


def _run_attached(context: Context, instance: ExecInstance, container: Container, process: dict[str, Any],
                  client: socket.socket, early: bytes) -> None:
    import termios

    from skiff.engine.terminal import parse_detach_keys, relay_process

    engine = context.engine()
    keys = parse_detach_keys(instance.detach_keys or None)
    exec_id = engine.exec_started(container, instance.command)
    if instance.tty:
        master, pid = engine.exec_console(container, process)
        with instance.lock:
            instance.master = master
            if instance.size:
                with contextlib.suppress(OSError, termios.error):
                    termios.tcsetwinsize(master, instance.size)
        _running(instance, pid)
        try:
            detached = relay_process(client, early, master if instance.stdin else -1, {master: 1}, True, keys)
        finally:
            with instance.lock:
                instance.master = -1
            os.close(master)
        _ended(context, instance, container, exec_id, detached)
        return
    stdin_r, stdin_w = os.pipe2(os.O_CLOEXEC) if instance.stdin else (os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC), -1)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    try:
        pid = engine.exec_spawn(container, process, (stdin_r, out_w, err_w))
    except BaseException:
        for fd in (stdin_w, out_r, err_r):
            if fd >= 0:
                os.close(fd)
        raise
    finally:
        for fd in (stdin_r, out_w, err_w):
            os.close(fd)
    _running(instance, pid)
    # A stream the client did not ask for is read and dropped (stream 0), so the process never blocks on it.
    outputs = {out_r: 1 if instance.stdout else 0, err_r: 2 if instance.stderr else 0}
    try:
        detached = relay_process(client, early, stdin_w, outputs, False, keys)
    finally:
        os.close(out_r)
        os.close(err_r)
    _ended(context, instance, container, exec_id, detached)


def _ended(context: Context, instance: ExecInstance, container: Container, exec_id: str, detached: bool) -> None:
    """Reaped here before the stream closes (the client then reads ExitCode from the inspect), or by a
    thread of its own once the detach keys have left it running."""
    if detached:
        threading.Thread(target=_reap, args=(context, instance, container, exec_id), daemon=True,
                         name=f"exec-{instance.id[:12]}").start()
    else:
        _reap(context, instance, container, exec_id)
