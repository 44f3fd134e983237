"""The OCI runtime lifecycle over a bundle: create, start, state, kill, delete, run.

State lives in ``<state_root>/<id>/``: ``state.json`` (written atomically) and,
while the container is *created*, the exec fifo its init blocks on. The status
is never stored: it is derived from the init's pid (checked against its start
time, so a reused pid is not mistaken for the container) and the fifo.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from pathlib import Path
from typing import Any, Callable

from skiff import errors
from skiff.errors import ContainerConflict, ContainerNotFound, ContainerNotRunning, InvalidArgument
from skiff.runtime import init as container_init
from skiff.runtime.spec import NAMESPACE_FLAGS, load_config, state_dict

_VALID_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
STATE_FILE = "state.json"


class Runtime:
    """An OCI runtime whose containers keep their state under ``state_root``."""

    def __init__(self, state_root: str | os.PathLike[str]) -> None:
        self.state_root = Path(state_root)

    # --- lifecycle -----------------------------------------------------------

    def create(self, cid: str, bundle: str | os.PathLike[str], stdio: tuple[int, int, int] = (0, 1, 2)) -> int:
        """Make the container's init, fully set up and blocked before exec; return its pid.

        The caller becomes the init's parent (and must reap it). On any failure
        nothing is left: the init is killed, its cgroup and state removed.
        """
        bundle_path = Path(bundle).absolute()
        config = load_config(bundle_path)
        state_dir = self._new_state_dir(cid)
        pid = 0
        cgroups: list[Any] = []
        try:
            os.mkfifo(state_dir / container_init.EXEC_FIFO, 0o600)
            pid, sock = self._fork_init(config, bundle_path, state_dir, stdio)
            with sock:
                self._handshake(cid, pid, sock, config, cgroups)
            self._write_state(state_dir, {
                **state_dict(cid, "created", pid, str(bundle_path), config.get("annotations", {})),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "starttime": _start_time(pid),
                "rootfs": config["root"]["path"],
                "cgroupsPath": _cgroups_path(cid, config),
            })
            return pid
        except BaseException:
            if pid:
                _kill_and_reap(pid)
            for cgroup in cgroups:
                cgroup.destroy()
            _remove_tree(state_dir)
            raise

    def start(self, cid: str) -> None:
        """Release a created container: its init execs the user's process."""
        record = self._record(cid)
        status = self._status(cid, record)
        if status != "created":
            raise ContainerConflict(f"cannot start container {cid}: it is {status}, not created")
        fifo = self._dir(cid) / container_init.EXEC_FIFO
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            self._read_start_byte(cid, fd, record)
        finally:
            os.close(fd)
            fifo.unlink(missing_ok=True)

    def state(self, cid: str) -> dict[str, Any]:
        """The OCI state of the container (status derived now, not stored)."""
        record = self._record(cid)
        status = self._status(cid, record)
        return {**{k: record[k] for k in ("ociVersion", "id", "bundle", "annotations")},
                "status": status, "pid": record["pid"] if status != "stopped" else 0,
                "created": record.get("created"), "rootfs": record.get("rootfs")}

    def kill(self, cid: str, sig: int = signal.SIGTERM) -> None:
        """Send ``sig`` to the container's init (created or running)."""
        record = self._record(cid)
        pidfd = self._pidfd(record)
        if pidfd is None:
            raise ContainerNotRunning(f"container {cid} is not running")
        try:
            signal.pidfd_send_signal(pidfd, sig)
        except ProcessLookupError:
            raise ContainerNotRunning(f"container {cid} is not running") from None
        finally:
            os.close(pidfd)

    def delete(self, cid: str, force: bool = False) -> None:
        """Remove a stopped (or created) container's state; ``force`` kills a running one first."""
        record = self._record(cid)
        status = self._status(cid, record)
        if status == "running" and not force:
            raise ContainerConflict(f"cannot delete container {cid}: it is running",
                                    hint="stop it first or force the deletion")
        pidfd = self._pidfd(record)
        if pidfd is not None:
            try:
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                _wait_pidfd(pidfd)
            except ProcessLookupError:
                pass
            finally:
                os.close(pidfd)
        _reap_if_child(record["pid"])
        if record.get("cgroupsPath"):
            from skiff.cgroups import open as open_cgroup

            open_cgroup(record["cgroupsPath"]).destroy()
        _remove_tree(self._dir(cid))

    def wait(self, cid: str) -> int:
        """Wait for the init (the caller must be its parent); exit code, or 128+N if killed by N."""
        record = self._record(cid)
        return _wait_status(record["pid"])

    def run(self, cid: str, bundle: str | os.PathLike[str], stdio: tuple[int, int, int] = (0, 1, 2),
            on_created: Callable[[int], None] | None = None,
            on_exited: Callable[[int], None] | None = None) -> int:
        """create + start + wait, forwarding signals to the container; its state is deleted at the end.

        ``on_created(pid)`` runs before the process is released, ``on_exited(status)``
        after it ended but before its cgroup is gone (the moment to ask ``oom_killed``).
        """
        relay = _SignalRelay()  # installed first: a signal during create is held, not lost or fatal
        try:
            relay.pid = self.create(cid, bundle, stdio)
            try:
                if on_created:
                    on_created(relay.pid)
                relay.flush()
                self.start(cid)
                status = _wait_status(relay.pid)
                if on_exited:
                    on_exited(status)
                return status
            finally:
                self.delete(cid, force=True)
        finally:
            relay.restore()

    def oom_killed(self, cid: str) -> bool:
        """Whether the kernel's OOM killer struck in the container's cgroup (before delete)."""
        path = self._record(cid).get("cgroupsPath")
        if not path:
            return False
        from skiff.cgroups import open as open_cgroup

        return open_cgroup(path).oom_killed()

    # --- internals -----------------------------------------------------------

    def _dir(self, cid: str) -> Path:
        if not _VALID_ID.match(cid):
            raise InvalidArgument(f"invalid container id {cid!r}: use letters, digits, '_', '.' and '-'")
        return self.state_root / cid

    def _new_state_dir(self, cid: str) -> Path:
        state_dir = self._dir(cid)
        self.state_root.mkdir(parents=True, exist_ok=True, mode=0o711)
        try:
            state_dir.mkdir(mode=0o711)
        except FileExistsError:
            raise ContainerConflict(f"container {cid} already exists in {self.state_root}") from None
        return state_dir

    def _record(self, cid: str) -> dict[str, Any]:
        from skiff.store import read_json

        state_dir = self._dir(cid)
        record = read_json(state_dir / STATE_FILE)
        if record is None:
            raise ContainerNotFound(f"no such container: {cid} (no state in {state_dir})")
        return record

    @staticmethod
    def _write_state(state_dir: Path, record: dict[str, Any]) -> None:
        from skiff.store import write_json

        write_json(state_dir / STATE_FILE, record)

    def _status(self, cid: str, record: dict[str, Any]) -> str:
        if _start_time(record["pid"]) != record.get("starttime"):
            return "stopped"
        return "created" if (self._dir(cid) / container_init.EXEC_FIFO).exists() else "running"

    def _pidfd(self, record: dict[str, Any]) -> int | None:
        """A pidfd of the init if it is still the same process, else None."""
        try:
            pidfd = os.pidfd_open(record["pid"])
        except ProcessLookupError:
            return None
        if _start_time(record["pid"]) != record.get("starttime"):  # checked after opening: no race
            os.close(pidfd)
            return None
        return pidfd

    def _fork_init(self, config: dict[str, Any], bundle: Path, state_dir: Path,
                   stdio: tuple[int, int, int]) -> tuple[int, socket.socket]:
        """Fork the init so that it is PID 1 of the container's pid namespace."""
        from skiff import linux

        parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        state_dir_fd = os.open(state_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        pid_ns = next((ns for ns in config["linux"]["namespaces"] if ns["type"] == "pid"), None)
        own_pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC) if pid_ns else -1
        try:
            if pid_ns is not None:
                _enter_pid_namespace_for_children(pid_ns)
            pid = os.fork()
            if pid == 0:
                parent_sock.close()
                container_init.main(container_init.InitContext(
                    config, str(bundle), child_sock, state_dir_fd, stdio))
        finally:
            if own_pid_ns >= 0:
                # Later forks of this process (helpers, the next container) stay in our namespace.
                linux.setns(own_pid_ns, linux.CLONE_NEWPID, "/proc/self/ns/pid")
                os.close(own_pid_ns)
            os.close(state_dir_fd)
            child_sock.close()
        return pid, parent_sock

    def _handshake(self, cid: str, pid: int, sock: socket.socket, config: dict[str, Any],
                   cgroups: list[Any]) -> None:
        """Answer the init until it is created; a cgroup made on the way is appended to ``cgroups``."""
        message = container_init.receive(sock)
        if message and message["type"] == "ready":
            path = _cgroups_path(cid, config)
            if path:
                from skiff.cgroups import open as open_cgroup

                cgroup = open_cgroup(path)
                cgroups.append(cgroup)
                cgroup.create(config["linux"].get("resources") or {})
                cgroup.add(pid)
            container_init.send(sock, {"type": "go"})
            message = container_init.receive(sock)
        if not message or message["type"] != "created":
            raise _error_from(message, pid)

    def _read_start_byte(self, cid: str, fd: int, record: dict[str, Any]) -> None:
        import select

        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while True:
            if poller.poll(100) and os.read(fd, 1) == b"0":
                return
            if self._status(cid, record) == "stopped":
                raise ContainerNotRunning(f"container {cid} exited before it could be started")


def _enter_pid_namespace_for_children(pid_ns: dict[str, Any]) -> None:
    from skiff import linux

    if not pid_ns.get("path"):
        linux.unshare(linux.CLONE_NEWPID)
        return
    try:
        fd = os.open(pid_ns["path"], os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise errors.BundleError(f"cannot open pid namespace {pid_ns['path']}: {exc.strerror}") from None
    try:
        linux.setns(fd, NAMESPACE_FLAGS["pid"], pid_ns["path"])
    finally:
        os.close(fd)


def _error_from(message: dict[str, Any] | None, pid: int) -> errors.SkiffError:
    """Rebuild the init's typed error in the parent."""
    if not message:
        status = _kill_and_reap(pid)
        return errors.RuntimeError_(f"container init (pid {pid}) died before it was created "
                                    f"(wait status {status})")
    if message.get("type") != "error":
        return errors.RuntimeError_(f"unexpected message from container init: {message!r}")
    if message.get("class") == "SyscallError":
        return errors.SyscallError(message["call"], message["errno"], message.get("target", ""),
                                   hint=message.get("hint"))
    cls = getattr(errors, message.get("class", ""), None)
    if not (isinstance(cls, type) and issubclass(cls, errors.SkiffError)):
        cls = errors.RuntimeError_
    return cls(message.get("message", "container init failed"), hint=message.get("hint"))


def _cgroups_path(cid: str, config: dict[str, Any]) -> str | None:
    linux_cfg = config.get("linux", {})
    if linux_cfg.get("cgroupsPath"):
        return str(linux_cfg["cgroupsPath"])
    if linux_cfg.get("resources"):
        return f"/skiff/{cid}"
    return None


def _start_time(pid: int) -> int | None:
    """The process's start time (clock ticks after boot), or None if gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _kill_and_reap(pid: int) -> int | None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:
        return None


def _reap_if_child(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _wait_pidfd(pidfd: int) -> None:
    import select

    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    poller.poll()


def _wait_status(pid: int) -> int:
    while True:
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            raise errors.RuntimeError_(f"container init {pid} is not a child of this process") from None
        if os.WIFEXITED(status):
            return os.WEXITSTATUS(status)
        if os.WIFSIGNALED(status):
            return 128 + os.WTERMSIG(status)


class _SignalRelay:
    """Relays the usual signals to the container's init once its pid is known.

    Python lets only the main thread install handlers; elsewhere nothing is relayed.
    """

    def __init__(self) -> None:
        import threading

        self.pid: int | None = None
        self._pending: list[int] = []
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            self._previous = {signum: signal.signal(signum, self._relay)
                              for signum in container_init.FORWARDED_SIGNALS}

    def _relay(self, signum: int, _frame: object) -> None:
        if self.pid is None:
            self._pending.append(signum)
            return
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            pass

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        for signum in pending:
            self._relay(signum, None)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


__all__ = ["Runtime"]
