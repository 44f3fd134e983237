"""``client.containers`` and the ``Container`` model: docker-py's nouns over skiff's Engine.

Every call is one or two calls of ``skiff.engine.Engine``, the same ones the CLI
makes; nothing here decides how a container runs. A foreground ``run`` is the
CLI's fast path (the runtime core runs the container in this process, no monitor),
its output written to memory files that are read back once it has exited.
"""

from __future__ import annotations

import builtins

import os
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from skiff.client.models import Model, filter_args

if TYPE_CHECKING:
    from skiff.client import Client
    from skiff.engine.containers import Container as Record


class ExecResult(NamedTuple):
    """``exec_run``'s result, as docker-py's: the exit code (None when detached) and the output."""

    exit_code: int | None
    output: bytes


class Container(Model):
    """A container; ``attrs`` is its inspect document as of the last ``reload``."""

    @property
    def name(self) -> str:
        return str(self.attrs.get("Name", "")).lstrip("/")

    @property
    def status(self) -> str:
        """created, running, paused, restarting, exited... (as of the last ``reload``)."""
        return str(self.attrs.get("State", {}).get("Status", ""))

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.attrs.get("Config", {}).get("Labels") or {})

    @property
    def image(self) -> Any:
        """The container's Image model (None if the image has been removed since)."""
        from skiff.errors import ImageNotFound

        try:
            return self.client.images.get(str(self.attrs.get("Image", "")))
        except ImageNotFound:
            return None

    @property
    def ports(self) -> dict[str, list[dict[str, str]] | None]:
        """``{"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "49153"}]}``, as docker-py's."""
        return dict(self.attrs.get("NetworkSettings", {}).get("Ports") or {})

    def host_port(self, port: int | str, protocol: str = "tcp") -> int:
        """The host port that container port ``port`` is published on (skiff's own helper)."""
        from skiff.errors import NotFound

        key = str(port) if "/" in str(port) else f"{port}/{protocol}"
        for binding in self.ports.get(key) or []:
            if binding.get("HostPort"):
                return int(binding["HostPort"])
        raise NotFound(f"No public port '{key}' published for {self.name}")

    def reload(self) -> None:
        self.attrs = self.client.engine.inspect(self.id)

    def start(self) -> None:
        self.client.engine.start(self.id)
        self.reload()

    def stop(self, timeout: int | None = None) -> None:
        """The stop signal, then SIGKILL after ``timeout`` seconds (the container's, else 10)."""
        self.client.engine.stop(self.id, timeout)
        self.reload()

    def kill(self, signal: int | str | None = None) -> None:
        """Send ``signal`` (a number or a name such as "SIGTERM" or "HUP"), SIGKILL by default."""
        from skiff.signals import parse_signal

        self.client.engine.kill(self.id, parse_signal(str(signal) if signal is not None else "SIGKILL"))
        self.reload()

    def restart(self, timeout: int | None = None) -> None:
        self.client.engine.restart(self.id, timeout)
        self.reload()

    def pause(self) -> None:
        self.client.engine.pause(self.id, True)
        self.reload()

    def unpause(self) -> None:
        self.client.engine.pause(self.id, False)
        self.reload()

    def rename(self, name: str) -> None:
        self.client.engine.rename(self.id, name)
        self.reload()

    def wait(self) -> dict[str, Any]:
        """Block until the container stops: ``{"Error": None, "StatusCode": N}``, as Docker's API."""
        return {"Error": None, "StatusCode": self.client.engine.wait(self.id)}

    def logs(self, stdout: bool = True, stderr: bool = True, stream: bool = False, timestamps: bool = False,
             tail: str | int = "all", since: Any = None, follow: bool | None = None) -> bytes | Iterator[bytes]:
        """What the container wrote (its json-file log), as bytes; ``stream``: an iterator of
        chunks instead, which with ``follow`` (the default when streaming) goes on until the
        container stops. ``since``: a datetime, or a Unix time."""
        from skiff.engine import logs

        record = self._record()
        lines = logs.tail_lines(str(tail))
        entries, offset = logs.read(record.log_path, lines, _unix_time(since))
        wanted = {"stdout"} if stdout else set()
        wanted |= {"stderr"} if stderr else set()
        follow = stream if follow is None else follow

        def chunks() -> Iterator[bytes]:
            yield from _encoded(entries, wanted, timestamps)
            if follow:
                yield from _encoded(logs.follow(record.log_path, offset, logs.still_written(record)),
                                    wanted, timestamps)

        return chunks() if stream else b"".join(chunks())

    def exec_run(self, cmd: str | Sequence[str], stdout: bool = True, stderr: bool = True, user: str = "",
                 detach: bool = False, environment: Any = None, workdir: str | None = None) -> ExecResult:
        """Run ``cmd`` in the running container: ``(exit_code, output)``, stdout and stderr
        together as they came (docker-py's ExecResult); detached: ``(None, b"")``."""
        from skiff.client.options import command_list, environment as env_list

        with _Capture(stdout, stderr) as capture:
            status = self.client.engine.exec(self.id, command_list(cmd), env=env_list(environment),
                                             user=str(user) if user != "" else None, workdir=workdir,
                                             detach=detach, output=capture.fds)
            output = capture.read()[0]
        if detach:
            _reap_later(status)
            return ExecResult(None, b"")
        return ExecResult(status, output)

    def top(self, ps_args: str | None = None) -> dict[str, list[Any]]:
        """The container's processes: ``{"Titles": [...], "Processes": [[...], ...]}``."""
        import shlex

        titles, rows = self.client.engine.top(self.id, shlex.split(ps_args) if ps_args else None)
        return {"Titles": titles, "Processes": rows}

    def stats(self, stream: bool = False, decode: bool | None = None) -> dict[str, Any] | Iterator[dict[str, Any]]:
        """One sample of the container's usage as a dict in the shape of Docker's stats API (the
        fields skiff measures); ``stream=True``: an iterator of samples about a second apart."""
        if not stream:
            return self._stats_sample()

        def samples() -> Iterator[dict[str, Any]]:
            while True:
                yield self._stats_sample()
                time.sleep(0.9)  # each sample takes 0.1 s itself: about one a second, as Docker's

        return samples()

    def _stats_sample(self) -> dict[str, Any]:
        from skiff.engine.stats import api_document

        return api_document(self.client.engine.stats([self.id])[0])

    def remove(self, v: bool = False, force: bool = False) -> None:
        """Remove the container; ``force`` kills a running one, ``v`` removes its anonymous volumes."""
        self.client.engine.remove_container(self.id, force=force, volumes=v)

    def _record(self) -> "Record":
        return self.client.engine.find(self.id)


class ContainerCollection:
    def __init__(self, client: "Client") -> None:
        self.client = client

    def run(self, image: str, command: str | Sequence[str] | None = None, stdout: bool = True,
            stderr: bool = False, remove: bool = False, **kwargs: Any) -> bytes | Container:
        """Run a container, as ``skiff run``; keywords as docker-py's (see docs/python-api.md).

        ``detach=True``: the Container, running under its monitor. Otherwise wait for it to
        exit and return its output (stdout by default; ``stderr=True`` adds stderr, in the
        order written). A non-zero exit raises ContainerError with ``exit_status`` and
        ``stderr``.
        """
        from skiff.client.options import run_options

        opts = run_options(image, command, remove=remove, **kwargs)
        engine = self.client.engine
        if opts.detach:
            return self.get(engine.run_detached(opts))
        if opts.tty or opts.interactive:
            return self._run_attached_later(opts, stdout, stderr)
        created: builtins.list["Record"] = []
        with _Capture(stdout, stderr, keep_stderr=True) as capture:
            status = engine.run(opts, output=capture.fds, on_create=created.append)
            out, err = capture.read()
        if status:
            from skiff.errors import ContainerError

            container = Container(self.client, created[0].data) if created else None
            raise ContainerError(container, status, command, image, err if err is not None else out)
        return out

    def _run_attached_later(self, opts: Any, stdout: bool, stderr: bool) -> bytes:
        """docker-py's own way, for a terminal or an open stdin: create, start under the
        monitor, wait, read the log, remove if asked."""
        from skiff.errors import ContainerError

        engine = self.client.engine
        record = engine.create(opts._replace(remove=False))
        container = Container(self.client, record.data)
        try:
            engine.start(record.id)
            status = engine.wait(record.id)
            out = _bytes(container.logs(stdout=stdout, stderr=stderr))
            if status:
                raise ContainerError(container, status, list(opts.command), opts.image,
                                     _bytes(container.logs(stdout=False, stderr=True)))
        finally:
            if opts.remove:
                engine.remove_container(record.id, force=True, volumes=True)
        return out

    def create(self, image: str, command: str | Sequence[str] | None = None, **kwargs: Any) -> Container:
        """A new container, created (not started): ``skiff create``."""
        from skiff.client.options import run_options

        kwargs.pop("detach", None)
        return self.get(self.client.engine.create(run_options(image, command, **kwargs)).id)

    def get(self, container_id: str) -> Container:
        """The container by id, unique id prefix or name; NotFound if there is none."""
        return Container(self.client, self.client.engine.inspect(container_id))

    def list(self, all: bool = False, filters: dict[str, Any] | None = None, limit: int = -1,
             since: str | None = None, before: str | None = None) -> builtins.list[Container]:
        """Running containers (every one with ``all``), newest first, as ``skiff ps``; ``filters``
        as Docker's (``{"status": "exited", "label": ["a=b"]}``)."""
        from skiff.errors import ContainerNotFound

        found = self.client.engine.list_containers(filter_args(filters, since=since, before=before), all_=all,
                                                   last=limit)
        listed = []
        for record in found:
            try:
                listed.append(self.get(record.id))
            except ContainerNotFound:  # removed since it was listed
                continue
        return listed

    def prune(self, filters: dict[str, Any] | None = None) -> dict[str, Any]:
        """Remove stopped containers: ``{"ContainersDeleted": [ids], "SpaceReclaimed": 0}``."""
        from skiff.engine.filters import container_prune_filter

        removed = self.client.engine.prune(container_prune_filter(filter_args(filters)))
        return {"ContainersDeleted": removed or None, "SpaceReclaimed": 0}


class _Capture:
    """Memory files to be a process's stdout and stderr (one file for both when both are
    wanted, so they keep the order they were written in), /dev/null for a stream nobody wants;
    read back after it exits. Files, not pipes: nothing has to read while the container runs,
    and one that writes much cannot block. ``keep_stderr``: stderr apart even when not wanted
    (for the ContainerError of a failed run)."""

    def __init__(self, stdout: bool, stderr: bool, keep_stderr: bool = False) -> None:
        self._stdout, self._stderr = stdout, stderr
        self._together = stdout and stderr
        self._keep_stderr = keep_stderr or stderr
        self._opened: builtins.list[int] = []
        self.fds: tuple[int, int] = (-1, -1)

    def __enter__(self) -> "_Capture":
        out = self._open(self._stdout)
        self.fds = (out, out if self._together else self._open(self._keep_stderr))
        return self

    def _open(self, wanted: bool) -> int:
        fd = os.memfd_create("skiff-output", os.MFD_CLOEXEC) if wanted else \
            os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        self._opened.append(fd)
        return fd

    def read(self) -> tuple[bytes, bytes | None]:
        """(the output asked for, stderr alone when it was kept apart, else None)."""
        if self._together:
            return _read_all(self.fds[0]), None
        err = _read_all(self.fds[1]) if self._keep_stderr else None
        out = _read_all(self.fds[0]) if self._stdout else (err or b"") if self._stderr else b""
        return out, err

    def __exit__(self, *exc_info: object) -> None:
        for fd in self._opened:
            os.close(fd)
        self._opened = []


def _reap_later(pid: int) -> None:
    """A detached exec is this process's child (the CLI exits at once and leaves it to init):
    it must be reaped when it ends, or its zombie keeps the container's pid namespace, and so
    the container's removal, from ever finishing."""
    import threading

    def reap() -> None:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass

    threading.Thread(target=reap, name=f"skiff-exec-reaper-{pid}", daemon=True).start()


def _bytes(logs: bytes | Iterator[bytes]) -> bytes:
    return logs if isinstance(logs, bytes) else b"".join(logs)


def _read_all(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    return os.pread(fd, size, 0) if size else b""


def _encoded(entries: Any, wanted: set[str], timestamps: bool) -> Iterator[bytes]:
    for stream, text, stamp in entries:
        if stream in wanted:
            yield (f"{stamp} {text}" if timestamps else text).encode()


def _unix_time(value: Any) -> float | None:
    """docker-py's ``since``: a datetime or a Unix time (int or float)."""
    if value is None:
        return None
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    return float(value)
