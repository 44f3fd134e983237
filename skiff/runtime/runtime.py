"""The OCI runtime lifecycle over a bundle: create, start, state, kill, delete, run.

State lives in ``<state_root>/<id>/``: ``state.json`` (written atomically) and,
while the container is *created*, the exec fifo its init blocks on. The status
is never stored: it is derived from the init's pid (checked against its start
time, so a reused pid is not mistaken for the container) and the fifo.
"""

from __future__ import annotations

import _signal as signal  # the C module: signal.py builds enums (enum, functools...) at import
import errno
import os
import sys
import time

from skiff import crash_point, errors, explain, proc
from skiff.errors import ContainerConflict, ContainerNotFound, ContainerNotRunning, InvalidArgument

# skiff-oci runs one short process per command: state, start, kill and delete import only os,
# signal, time and json. Everything else (the init, the spec, sockets, pathlib, typing) is
# imported where a container is made, or only for type checkers.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import _socket
    import builtins  # Runtime.list hides the builtin in the class's annotations
    import socket
    from pathlib import Path
    from typing import Any, Callable, NoReturn

    from skiff.cgroups import Cgroup
    from skiff.runtime.seccomp_filter import Program

_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
STATE_FILE = "state.json"
EXEC_FIFO = "exec.fifo"  # the init blocks opening it until start


class Runtime:
    """An OCI runtime whose containers keep their state under ``state_root``."""

    def __init__(self, state_root: str | os.PathLike[str],
                 seccomp_cache: str | os.PathLike[str] | None = None) -> None:
        """``seccomp_cache``: where compiled seccomp filters are kept between containers
        (seccomp_filter.program); without one, each create compiles its filter, as runc does."""
        self._root = os.fspath(state_root)
        self._seccomp_cache = os.fspath(seccomp_cache) if seccomp_cache is not None else None

    @property
    def state_root(self) -> Path:
        from pathlib import Path

        return Path(self._root)

    # --- lifecycle -----------------------------------------------------------

    def create(self, cid: str, bundle: str | os.PathLike[str], stdio: tuple[int, int, int] = (0, 1, 2),
               console_socket: str | None = None, pid_file: str | None = None, preserve_fds: int = 0) -> int:
        """Make the container's init, fully set up and blocked before exec; return its pid.

        The caller becomes the init's parent (and must reap it). With
        ``process.terminal`` the pty master goes to the unix socket ``console_socket``.
        On any failure nothing is left: the init is killed, its cgroup and state removed.
        """
        from skiff.runtime.spec import load_config, state_dict

        bundle_path = os.path.abspath(bundle)
        config = load_config(bundle_path)
        if config["process"].get("terminal") and not console_socket:
            raise InvalidArgument("process.terminal is set: a --console-socket is required")
        state_dir = self._new_state_dir(cid)
        pid = 0
        cgroups: list[Cgroup] = []
        console = None
        try:
            os.mkfifo(os.path.join(state_dir, EXEC_FIFO), 0o600)
            if config["process"].get("terminal"):
                from skiff.runtime.console import connect

                console = connect(str(console_socket))
            if explain.on:
                explain.step(explain.PROCESS, f"the runtime reads the bundle {bundle_path}: config.json says what "
                             "to make", "open + read", {"path": os.path.join(bundle_path, "config.json")})
            pid, sock = self._fork_init(config, bundle_path, state_dir, stdio,
                                        console.fileno() if console else -1, preserve_fds,
                                        self._seccomp_program(config["linux"].get("seccomp")))
            try:
                self._handshake(cid, pid, sock, config, cgroups, bundle_path)
            finally:
                sock.close()
            crash_point("runtime-create")
            self._write_state(state_dir, {
                **state_dict(cid, "created", pid, str(bundle_path), config.get("annotations", {})),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{time.time_ns() % 10**9:09d}Z",
                "starttime": proc.start_time(pid),
                "rootfs": config["root"]["path"],
                "cgroupsPath": _cgroups_path(cid, config),
                # delete removes these directly, without skiff.cgroups (milliseconds of imports)
                "cgroupDirs": list(cgroups[0].dirs) if cgroups else None,
                "config": _config_for_later(config),
            })
            if pid_file:
                _write_pid_file(pid_file, pid)
            return pid
        except BaseException:
            if pid:
                from skiff.linux import kill_and_reap

                kill_and_reap(pid)
            for cgroup in cgroups:
                cgroup.destroy()
            _remove_tree(state_dir)
            raise
        finally:
            if console is not None:
                console.close()

    def start(self, cid: str) -> None:
        """Release a created container: its init execs the user's process."""
        record = self.record(cid)
        status = self._status(cid, record)
        if status != "created":
            raise ContainerConflict(f"cannot start container {cid}: it is {status}, not created")
        fifo = os.path.join(self._dir(cid), EXEC_FIFO)
        try:
            # The init holds the fifo's read end and waits for a byte; no reader: it is gone.
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            raise ContainerConflict(f"cannot start container {cid}: it is already started") from None
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise errors.SyscallError("open", exc.errno or errno.EIO, fifo) from None
            raise ContainerNotRunning(f"container {cid} exited before it could be started") from None
        try:
            if explain.on:  # told first: the init's next steps come as soon as the byte lands
                explain.step(explain.PROCESS, "start: write one byte into the exec fifo the init waits on", "write",
                             {"path": fifo, "data": "0"})
            os.write(fd, b"0")
            self._wait_until_taken(cid, fd, record)
        finally:
            os.close(fd)
            try:
                os.unlink(fifo)
            except FileNotFoundError:
                pass
        hooks = record.get("config", {}).get("hooks")
        if hooks and hooks.get("poststart"):
            from skiff.runtime.hooks import run_hooks

            run_hooks("poststart", hooks, self.state(cid))

    def state(self, cid: str) -> dict[str, Any]:
        """The OCI state of the container (status derived now, not stored)."""
        record = self.record(cid)
        status = self._status(cid, record)
        return {**{k: record[k] for k in ("ociVersion", "id", "bundle", "annotations")},
                "status": status, "pid": record["pid"] if status != "stopped" else 0,
                "created": record.get("created"), "rootfs": record.get("rootfs")}

    def kill(self, cid: str, sig: int = signal.SIGTERM) -> None:
        """Send ``sig`` to the container's init (created or running)."""
        record = self.record(cid)
        pidfd = self._pidfd(record)
        if pidfd is None:
            raise ContainerNotRunning(f"container {cid} is not running")
        try:
            signal.pidfd_send_signal(pidfd, sig)
        except ProcessLookupError:
            raise ContainerNotRunning(f"container {cid} is not running") from None
        finally:
            os.close(pidfd)

    def delete(self, cid: str, force: bool = False, only_stopped: bool = False) -> None:
        """Remove a stopped (or created) container's state; ``force`` kills a running one first.

        ``only_stopped`` (runc's delete without --force) refuses any container not stopped,
        from the same read of its state.
        """
        record = self.record(cid)
        status = self._status(cid, record)
        if only_stopped and status != "stopped" and not force:
            raise ContainerConflict(f"cannot delete container {cid} that is not stopped: {status}")
        if status == "running" and not force:
            raise ContainerConflict(f"cannot delete container {cid}: it is running",
                                    hint="stop it first or force the deletion")
        if record.get("paused") and record.get("cgroupsPath"):
            self._cgroup(cid, record).thaw()  # a frozen process never acts on SIGKILL
        pidfd = self._pidfd(record)
        if pidfd is not None:
            # Our own children in the container (detached execs) must be reaped while we wait:
            # the init of a pid namespace does not finish exiting while zombies remain in it.
            members = self.ps(cid)
            try:
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                _wait_pidfd(pidfd, members)
            except ProcessLookupError:
                pass
            finally:
                os.close(pidfd)
        _reap_if_child(record["pid"])
        if explain.on:
            explain.step(explain.TEARDOWN, f"kill what is left of the container (pid {record['pid']}) and reap it: its "
                         "namespaces, and the mounts in them, go with their last process",
                         "pidfd_send_signal + waitpid", {"pid": record["pid"], "signal": "SIGKILL"})
        if record.get("cgroupsPath") and not _rmdir_all(record.get("cgroupDirs")):
            from skiff.cgroups import open as open_cgroup

            cgroup = open_cgroup(record["cgroupsPath"])
            if cgroup.exists() and cgroup.pids():
                cgroup.kill()  # exec'd processes outside the init's pid namespace, if it shares the host's
            cgroup.destroy()
        hooks = record.get("config", {}).get("hooks")
        if hooks and hooks.get("poststop"):
            from skiff.runtime.hooks import run_hooks

            run_hooks("poststop", hooks, {**self.state(cid), "status": "stopped", "pid": 0})
        if explain.on and record.get("cgroupsPath"):
            explain.step(explain.TEARDOWN, "remove the container's cgroup, now empty", "rmdir",
                         {"paths": record.get("cgroupDirs") or record["cgroupsPath"]})
        _remove_tree(self._dir(cid))
        if explain.on:
            explain.step(explain.TEARDOWN, "forget the runtime's state of the container", "unlink + rmdir",
                         {"path": self._dir(cid)})

    def exec(self, cid: str, process: dict[str, Any], stdio: tuple[int, int, int] = (0, 1, 2),
             console_socket: str | None = None, detach: bool = False, pid_file: str | None = None) -> int:
        """Run ``process`` (an OCI process object) inside the running container ``cid``.

        It joins every namespace and the cgroup of the container's init.
        ``detach=False``: wait and return the exit status (code or 128+N);
        ``detach=True``: return its pid (the caller is its parent).
        """
        from skiff.runtime.spec import check_process, check_security_labels

        record = self.record(cid)
        if self._status(cid, record) != "running":
            raise ContainerNotRunning(f"cannot exec in container {cid}: it is not running")
        check_process(process, "exec process")
        check_security_labels(process, {})
        if process.get("terminal") and not console_socket:
            raise InvalidArgument("process.terminal is set: a --console-socket is required")
        pid = self._fork_exec(cid, record, process, stdio, console_socket)
        if pid_file:
            _write_pid_file(pid_file, pid)
        if detach:
            return pid
        relay = _SignalRelay()
        try:
            relay.pid = pid
            relay.flush()
            return _wait_status(pid)
        finally:
            relay.restore()

    def pause(self, cid: str) -> None:
        """Freeze every process of a running container (its cgroup's freezer)."""
        record = self.record(cid)
        if self._status(cid, record) != "running":
            raise ContainerNotRunning(f"cannot pause container {cid}: it is not running")
        self._cgroup(cid, record).freeze()
        self._write_state(self._dir(cid), {**record, "paused": True})

    def resume(self, cid: str) -> None:
        """Thaw a paused container."""
        record = self.record(cid)
        if self._status(cid, record) != "paused":
            raise ContainerNotRunning(f"cannot resume container {cid}: it is not paused")
        self._cgroup(cid, record).thaw()
        self._write_state(self._dir(cid), {**record, "paused": False})

    def update(self, cid: str, resources: dict[str, Any]) -> None:
        """Change the cgroup limits of a created, running or paused container (OCI linux.resources)."""
        record = self.record(cid)
        if self._status(cid, record) == "stopped":
            raise ContainerNotRunning(f"cannot update container {cid}: it is stopped")
        # New device rules replace the old ones on v2: they get the same defaults as at create.
        devices = record.get("config", {}).get("devices") or []
        self._cgroup(cid, record).update(_with_default_devices(resources, devices, always=False))

    def ps(self, cid: str) -> list[int]:
        """The host pids of the container's processes (its init first)."""
        record = self.record(cid)
        if self._status(cid, record) == "stopped":
            return []
        pids: list[int] = []
        if record.get("cgroupsPath"):
            from skiff.cgroups import open as open_cgroup

            cgroup = open_cgroup(record["cgroupsPath"])
            if cgroup.exists():
                pids = cgroup.pids()
        if not pids:
            pids = _descendants(record["pid"])
        return sorted(set(pids), key=lambda p: (p != record["pid"], p))

    def list(self) -> list[dict[str, Any]]:
        """The OCI state of every container under the state root."""
        if not os.path.isdir(self._root):
            return []
        states = []
        for name in sorted(os.listdir(self._root)):
            try:
                states.append(self.state(name))
            except (ContainerNotFound, InvalidArgument):
                continue
        return states

    def wait(self, cid: str) -> int:
        """Wait for the init (the caller must be its parent); exit code, or 128+N if killed by N."""
        record = self.record(cid)
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
        path = self.record(cid).get("cgroupsPath")
        if not path:
            return False
        from skiff.cgroups import open as open_cgroup

        return open_cgroup(path).oom_killed()

    # --- internals -----------------------------------------------------------

    def _dir(self, cid: str) -> str:
        if not _is_valid_id(cid):
            raise InvalidArgument(f"invalid container id {cid!r}: use letters, digits, '_', '.' and '-'")
        return os.path.join(self._root, cid)

    def _new_state_dir(self, cid: str) -> str:
        state_dir = self._dir(cid)
        os.makedirs(self._root, mode=0o711, exist_ok=True)
        try:
            os.mkdir(state_dir, 0o711)
        except FileExistsError:
            raise ContainerConflict(f"container {cid} already exists in {self._root}") from None
        return state_dir

    def record(self, cid: str) -> dict[str, Any]:
        """The container's state.json as the runtime wrote it: the init's ``pid`` and ``starttime``, its
        ``config`` for later execs, cgroup paths. ContainerNotFound if there is none."""
        from skiff.runtime.jsonlite import loads

        state_file = os.path.join(self._dir(cid), STATE_FILE)
        try:
            with open(state_file, encoding="utf-8") as f:
                return loads(f.read())
        except FileNotFoundError:
            raise ContainerNotFound(f"no such container: {cid} (no state in {os.path.dirname(state_file)})") from None
        except ValueError as exc:
            raise errors.StateError(f"state file {state_file} is corrupt: {exc}") from None

    @staticmethod
    def _write_state(state_dir: str | os.PathLike[str], record: dict[str, Any]) -> None:
        """Atomically (rename), without fsync: the state lives in /run, gone at reboot anyway."""
        from skiff.runtime.jsonlite import dumps

        target = os.path.join(state_dir, STATE_FILE)
        tmp = target + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(dumps(record))
        os.replace(tmp, target)

    def _status(self, cid: str, record: dict[str, Any]) -> str:
        if not proc.alive(record["pid"], record.get("starttime")):
            return "stopped"
        if os.path.exists(os.path.join(self._dir(cid), EXEC_FIFO)):
            return "created"
        return "paused" if record.get("paused") else "running"

    def _cgroup(self, cid: str, record: dict[str, Any]) -> Cgroup:
        if not record.get("cgroupsPath"):
            raise ContainerConflict(f"container {cid} has no cgroup",
                                    hint="give it linux.cgroupsPath or linux.resources")
        from skiff.cgroups import open as open_cgroup

        return open_cgroup(record["cgroupsPath"])

    def _wait_until_taken(self, cid: str, fd: int, record: dict[str, Any]) -> None:
        """Return once the init has read the start byte (it then closes the only read end: POLLERR),
        as runc's start returns once its init has gone past the fifo."""
        import select

        poller = select.poll()
        poller.register(fd, 0)  # POLLERR and POLLHUP are always reported
        while not poller.poll(100):
            if not proc.alive(record["pid"], record.get("starttime")):
                return

    def _pidfd(self, record: dict[str, Any]) -> int | None:
        """A pidfd of the init if it is still the same process, else None."""
        try:
            pidfd = os.pidfd_open(record["pid"])
        except ProcessLookupError:
            return None
        if not proc.alive(record["pid"], record.get("starttime")):  # checked after opening: no race
            os.close(pidfd)
            return None
        return pidfd

    def _seccomp_program(self, seccomp: dict[str, Any] | None) -> Program | None:
        """linux.seccomp compiled (or found compiled) here, before the fork: the child only loads it."""
        if not seccomp:
            return None
        from skiff.runtime.seccomp_filter import program

        compiled = program(seccomp, self._seccomp_cache)
        if explain.on:
            rules = seccomp.get("syscalls") or []
            explain.step(explain.SECURITY, f"compile the seccomp profile: {len(rules)} rules naming "
                         f"{sum(len(r.get('names') or []) for r in rules)} system calls; any other: "
                         f"{seccomp.get('defaultAction')}", "seccomp_export_bpf (libseccomp)",
                         {"rules": len(rules), "defaultAction": seccomp.get("defaultAction"),
                          "instructions": len(compiled.bpf) // 8})
        return compiled

    def _fork_init(self, config: dict[str, Any], bundle: str, state_dir: str, stdio: tuple[int, int, int],
                   console_fd: int = -1, preserve_fds: int = 0,
                   seccomp: Program | None = None) -> tuple[int, _socket.socket]:
        """Fork the init so that it is PID 1 of the container's pid namespace."""
        import _socket  # the C module: socket.py costs selectors and enum (milliseconds of a create)

        from skiff import linux
        from skiff.runtime import init as container_init
        from skiff.runtime.mounts import wants_idmap

        parent_sock, child_sock = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        # The init gets the exec fifo's read end, never a directory: an fd of the host's state
        # dir held across its chdir would put the container's cwd on the host (CVE-2024-21626).
        # Opened here, as host root, it needs no chown for a user namespace's root to use.
        fifo_fd = os.open(os.path.join(state_dir, EXEC_FIFO), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        namespaces = {ns["type"]: ns for ns in config["linux"]["namespaces"]}
        pid_ns, user_ns = namespaces.get("pid"), namespaces.get("user")
        userns = "" if user_ns is None else "joined" if user_ns.get("path") else "cloned"
        # The container's user namespace must own its new pid namespace (or the container
        # cannot mount /proc): the pid namespace comes from the clone that enters the user one.
        pid_ns_by_clone = bool(userns) and pid_ns is not None and not pid_ns.get("path")
        idmapped = any(wants_idmap(entry) for entry in config.get("mounts") or [])
        own_pid_ns = -1
        exe_fd = -1 if userns else _sealed_interpreter_if_needed(_bounding_of(config["process"]), False)
        if pid_ns is not None and not pid_ns_by_clone and exe_fd < 0:
            own_pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        try:
            if idmapped:  # before any fork, outside the container's namespaces: the init inherits the trees
                from skiff.runtime.idmap import prepare_idmapped_mounts

                prepare_idmapped_mounts(config, str(bundle))
            if pid_ns is not None and own_pid_ns >= 0:
                _enter_pid_namespace_for_children(pid_ns)
                if explain.on:
                    explain.step(explain.NAMESPACES, "a new PID namespace for the runtime's next child (the runtime "
                                 "itself stays in its own)", "unshare" if not pid_ns.get("path") else "setns",
                                 {"flags": "CLONE_NEWPID", **({"fd": pid_ns["path"]} if pid_ns.get("path") else {})})
            ctx = container_init.InitContext(config, str(bundle), child_sock, fifo_fd, stdio,
                                             console_fd, preserve_fds, userns, seccomp)
            new_pid_ns = linux.CLONE_NEWPID if pid_ns_by_clone else 0

            def start_init() -> NoReturn:
                parent_sock.close()
                container_init.main(ctx)

            if explain.on:
                explain.step(explain.NAMESPACES, "fork the container's init: it is PID 1 of the new PID namespace "
                             "(non-dumpable from birth)", "clone" if exe_fd < 0 else "execveat (sealed) + clone",
                             {"flags": explain.clone_flags(new_pid_ns) + "|SIGCHLD" if new_pid_ns else "SIGCHLD"})
            with linux.NonDumpable():  # the init is non-dumpable from its first instruction
                if exe_fd >= 0:
                    from skiff.runtime import sealed

                    pid = sealed.spawn(exe_fd, "init", *ctx.payload(), pid_ns=_pid_ns_for_sealed(pid_ns))
                elif userns == "joined" and user_ns is not None:
                    pid = _fork_in_user_namespace(user_ns["path"], new_pid_ns, start_init)
                else:
                    pid = (linux.fork_with_namespaces(linux.CLONE_NEWUSER | new_pid_ns) if userns == "cloned"
                           else os.fork())
                    if pid == 0:
                        start_init()
        finally:
            if own_pid_ns >= 0:
                # Later forks of this process (helpers, the next container) stay in our namespace.
                linux.setns(own_pid_ns, linux.CLONE_NEWPID, "/proc/self/ns/pid")
                os.close(own_pid_ns)
            if idmapped:
                from skiff.runtime.idmap import release_idmapped_mounts

                release_idmapped_mounts(config)  # the init has its own copies
            os.close(fifo_fd)
            child_sock.close()
            if exe_fd >= 0:
                os.close(exe_fd)  # the child's copy goes at its exec: then the detached mount dissolves
        if userns == "cloned":
            try:
                from skiff.runtime.userns import write_id_maps

                write_id_maps(pid, config["linux"])
                container_init.send(parent_sock, {"type": "mapped"})
            except BaseException:
                linux.kill_and_reap(pid)
                parent_sock.close()
                raise
        return pid, parent_sock

    def _handshake(self, cid: str, pid: int, sock: _socket.socket, config: dict[str, Any],
                   cgroups: builtins.list[Cgroup], bundle: str = "") -> None:
        """Answer the init until it is created; a cgroup made on the way is appended to ``cgroups``."""
        from skiff.cgroups import open as open_cgroup
        from skiff.runtime import init as container_init
        from skiff.runtime.spec import state_dict

        # While the init makes its namespaces and mounts (it waits for "go" only where it needs
        # to be in its cgroup): the first cgroup.procs write of a process can take 10-18 ms.
        cgroup = open_cgroup(_cgroups_path(cid, config))
        cgroups.append(cgroup)
        try:
            cgroup.create(_with_default_devices(config["linux"].get("resources") or {},
                                                config["linux"].get("devices") or []))
            cgroup.add(pid)
        except errors.SkiffError:
            early = container_init.receive(sock)  # the init may have failed first: its error says more
            if early and early.get("type") == "error":
                raise _error_from(early, pid) from None
            raise
        message = container_init.receive(sock)
        if message and message["type"] == "ready":
            # runc (and runtime-tools' checks) pass "created" to every hook before start.
            state = state_dict(cid, "created", pid, bundle, config.get("annotations", {}))
            hooks = config.get("hooks")
            if hooks:
                from skiff.runtime.hooks import run_hooks

                run_hooks("prestart", hooks, state)
                run_hooks("createRuntime", hooks, state)
            try:
                container_init.send(sock, {"type": "go", "state": state})
            except BrokenPipeError:
                pass  # the init failed meanwhile: its error is waiting in the socket
            message = container_init.receive(sock)
        if not message or message["type"] != "created":
            raise _error_from(message, pid)

    def _fork_exec(self, cid: str, record: dict[str, Any], process: dict[str, Any],
                   stdio: tuple[int, int, int], console_socket: str | None) -> int:
        import socket

        from skiff import linux
        from skiff.runtime import exec_init
        from skiff.runtime import init as container_init

        init_pid = record["pid"]
        namespace_fds = _namespaces_to_join(init_pid)
        pid_fd = next((fd for kind, fd in namespace_fds if kind == "pid"), None)
        namespace_fds = [(kind, fd) for kind, fd in namespace_fds if kind != "pid"]
        console = None
        if process.get("terminal"):
            from skiff.runtime.console import connect

            console = connect(str(console_socket))
        parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        own_pid_ns = -1
        pid = 0
        exe_fd = -1
        try:
            in_user_ns = any(kind == "user" for kind, _ in namespace_fds)
            exe_fd = _sealed_interpreter_if_needed(_bounding_of(process) | _bounding_of_pid(init_pid), in_user_ns)
            if exe_fd < 0 and _threaded():  # the API server: the child re-execs at once (see _threaded)
                from skiff.runtime import sealed

                exe_fd = sealed.interpreter_fd()
            if pid_fd is not None and exe_fd < 0:
                own_pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
                linux.setns(pid_fd, linux.CLONE_NEWPID, f"/proc/{init_pid}/ns/pid")
            if explain.on:
                explain.step(explain.NAMESPACES, f"fork the new process inside the PID namespace of the container's "
                             f"init (pid {init_pid})", "setns(CLONE_NEWPID) + clone", {"init": init_pid})
            ctx = exec_init.ExecContext(process, child_sock, stdio, namespace_fds,
                                        console.fileno() if console else -1,
                                        self._seccomp_program(record.get("config", {}).get("seccomp")))
            with linux.NonDumpable():  # until its execve: see linux.NonDumpable
                if exe_fd >= 0:
                    from skiff.runtime import sealed

                    pid = sealed.spawn(exe_fd, "exec", *ctx.payload(),
                                       pid_ns=("fd", pid_fd) if pid_fd is not None else None)
                else:
                    pid = os.fork()
                    if pid == 0:
                        parent_sock.close()
                        exec_init.main(ctx)
        finally:
            if own_pid_ns >= 0:
                linux.setns(own_pid_ns, linux.CLONE_NEWPID, "/proc/self/ns/pid")
                os.close(own_pid_ns)
            for _, fd in namespace_fds + ([("pid", pid_fd)] if pid_fd is not None else []):
                os.close(fd)
            child_sock.close()
            if console is not None:
                console.close()
            if exe_fd >= 0:
                os.close(exe_fd)
        with parent_sock:
            try:
                message = container_init.receive(parent_sock)
                if message and message["type"] == "ready":
                    if record.get("cgroupsPath"):
                        from skiff.cgroups import open as open_cgroup

                        open_cgroup(record["cgroupsPath"]).add(pid)
                    container_init.send(parent_sock, {"type": "go"})
                    message = container_init.receive(parent_sock)
                if not message or message["type"] != "created":
                    raise _error_from(message, pid)
            except BaseException:
                linux.kill_and_reap(pid)
                raise
        return pid


def _fork_in_user_namespace(path: str, clone_flags: int, child: Callable[[], NoReturn]) -> int:
    """Run ``child`` in a new process inside the user namespace at ``path``; return its pid.

    Joining a user namespace is for good (and needs a single-threaded process), so an
    intermediate process joins it and clones the child with CLONE_PARENT: the child is
    then ours, as after a plain fork, and any new namespaces in ``clone_flags`` (the pid
    namespace) belong to the joined user namespace, as they must for /proc to mount.
    """
    from skiff import linux

    try:
        ns_fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise errors.BundleError(f"cannot open user namespace {path}: {exc.strerror}") from None
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    try:
        middle = os.fork()
        if middle == 0:
            os.close(read_fd)
            try:
                linux.setns(ns_fd, linux.CLONE_NEWUSER, path)
                pid = linux.fork_with_namespaces(linux.CLONE_PARENT | clone_flags)
                if pid == 0:
                    os.close(write_fd)
                    child()
                os.write(write_fd, f"{pid}".encode())
            except BaseException as exc:  # noqa: BLE001 - reported to the runtime, which raises it
                os.write(write_fd, f"!{exc}".encode(errors="replace"))
            os._exit(0)
        os.close(write_fd)
        write_fd = -1
        report = os.read(read_fd, 4096).decode(errors="replace")
        os.waitpid(middle, 0)
    finally:
        os.close(ns_fd)
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)
    if not report.isdigit():
        raise errors.BundleError(f"cannot enter user namespace {path}: {report.lstrip('!') or 'no report'}")
    return int(report)


def _enter_pid_namespace_for_children(pid_ns: dict[str, Any]) -> None:
    from skiff import linux
    from skiff.runtime.spec import NAMESPACE_FLAGS

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


_JOINABLE_NAMESPACES = (("user", 0x10000000), ("ipc", 0), ("uts", 0), ("net", 0), ("pid", 0),
                        ("cgroup", 0), ("mnt", 0))


def _pid_ns_for_sealed(pid_ns: dict[str, Any] | None) -> tuple[str, Any] | None:
    """The init's pid namespace as skiff.runtime.sealed.spawn enters it."""
    if pid_ns is None:
        return None
    return ("path", pid_ns["path"]) if pid_ns.get("path") else ("unshare", None)


def _bounding_of(process: dict[str, Any]) -> int:
    """The bounding set a process object asks for (no capabilities object: it keeps ours, all)."""
    from skiff.runtime.spec import capability_mask

    caps = process.get("capabilities")
    return ~0 if caps is None else capability_mask(caps.get("bounding") or [])


def _bounding_of_pid(pid: int) -> int:
    """The container's bounding set, from its init: no process in it can hold more."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"CapBnd:"):
                    return int(line.split()[1], 16)
    except OSError:
        pass
    return ~0


def _threaded() -> bool:
    """Whether other threads run in this process (the Engine API server). A child forked then must
    not go on in Python, where a lock another thread held at the fork (stdio, logging, an import)
    stays held forever: the exec child then starts from the sealed interpreter (skiff.runtime.sealed),
    which execs right after the fork. The CLI never imports threading here and pays nothing."""
    threading = sys.modules.get("threading")
    return threading is not None and threading.active_count() > 1


def _sealed_interpreter_if_needed(bounding: int, own_user_namespace: bool) -> int:
    """A read-only interpreter for the child to re-exec from, or -1 (see skiff.runtime.sealed)."""
    from skiff.runtime import sealed

    if not sealed.needed(bounding, own_user_namespace):
        return -1
    return sealed.interpreter_fd()


def _namespaces_to_join(pid: int) -> list[tuple[str, int]]:
    """Fds of the init's namespaces that differ from ours, the user namespace first, mount last."""
    joined = []
    try:
        for kind, _ in _JOINABLE_NAMESPACES:
            theirs = os.stat(f"/proc/{pid}/ns/{kind}").st_ino
            if theirs != os.stat(f"/proc/self/ns/{kind}").st_ino:
                joined.append((kind, os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)))
    except OSError as exc:
        for _, fd in joined:
            os.close(fd)
        raise ContainerNotRunning(f"cannot join the namespaces of pid {pid}: {exc.strerror}") from None
    return joined


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (for a container without a cgroup)."""
    children = proc.children()
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


# The devices every container gets whatever its rules (runtime-spec "Default Devices", runc's list):
# null, zero, full, random, urandom, tty, console, ptmx and the pty slaves.
_DEFAULT_DEVICE_RULES = [{"allow": True, "type": "c", "major": major, "minor": minor, "access": "rwm"}
                         for major, minor in ((1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1),
                                              (5, 2), (136, -1))]
_DENY_ALL_DEVICES = {"allow": False, "access": "rwm"}


def _with_default_devices(resources: dict[str, Any], devices: list[dict[str, Any]],
                          always: bool = True) -> dict[str, Any]:
    """The device allow-list every container gets, as runc builds it.

    Deny everything first (a cgroup starts as ``a *:* rwm`` on v1, and the v2 filter
    allows what no rule decides), then the config's own ``linux.resources.devices``,
    then mknod of any node and the default devices, then each of ``linux.devices``.
    The defaults come after the config's rules, as in runc: a config that begins with
    its own deny-all (``runc spec``'s) must not take /dev/null away. ``always=False``
    (update) leaves a ``resources`` without ``devices`` alone: the filter stays as it is.
    """
    if not always and "devices" not in resources:
        return resources
    rules = [dict(_DENY_ALL_DEVICES), *(resources.get("devices") or [])]
    rules += [{"allow": True, "type": "c", "access": "m"}, {"allow": True, "type": "b", "access": "m"}]
    rules += [{k: v for k, v in rule.items() if not (k == "minor" and v == -1)} for rule in _DEFAULT_DEVICE_RULES]
    rules += [{"allow": True, "type": d["type"], "major": d.get("major", 0), "minor": d.get("minor", 0),
               "access": "rwm"} for d in devices if d.get("type") in ("c", "b")]
    return {**resources, "devices": rules}


def _config_for_later(config: dict[str, Any]) -> dict[str, Any]:
    """What exec and delete need from config.json after create (the bundle may change or go)."""
    return {"hooks": config.get("hooks"), "seccomp": config["linux"].get("seccomp"),
            "process": config["process"], "devices": config["linux"].get("devices")}


def _write_pid_file(path: str, pid: int) -> None:
    """Atomically, as runc does: a reader never sees an empty pid file."""
    target = os.path.abspath(path)
    directory, name = os.path.split(target)
    tmp = os.path.join(directory, f".{name}.tmp")
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.replace(tmp, target)


def _error_from(message: dict[str, Any] | None, pid: int) -> errors.SkiffError:
    """Rebuild the init's typed error in the parent."""
    if not message:
        from skiff.linux import kill_and_reap

        status = kill_and_reap(pid)
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


def _cgroups_path(cid: str, config: dict[str, Any]) -> str:
    """linux.cgroupsPath, else ``/<parent>/<id>``: every container gets a cgroup, as with runc.

    Without one there would be no device allow-list (and no pids to list or kill
    at delete). The parent is SKIFF_CGROUP_PARENT, as for the engine (default ``skiff``).
    """
    path = config.get("linux", {}).get("cgroupsPath")
    if path:
        return str(path)
    parent = os.environ.get("SKIFF_CGROUP_PARENT", "skiff").strip("/") or "skiff"
    return f"/{parent}/{cid}"


def _is_valid_id(cid: str) -> bool:
    return 0 < len(cid) <= 128 and cid[0] not in "_.-" and all(c in _ID_CHARS for c in cid)


def _remove_tree(path: str | os.PathLike[str]) -> None:
    """A state dir holds plain files (shutil, and its compression imports, only for anything else)."""
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return
    for name in names:
        entry = os.path.join(path, name)
        if os.path.isdir(entry) and not os.path.islink(entry):
            import shutil

            shutil.rmtree(entry, ignore_errors=True)
        else:
            try:
                os.unlink(entry)
            except FileNotFoundError:
                pass
    try:
        os.rmdir(path)
    except OSError:
        pass


def _rmdir_all(dirs: list[str] | None) -> bool:
    """Remove an empty container cgroup by its recorded directories: True once none is left.

    The usual delete: the container's processes are gone, its directories empty. Anything
    else (no record of them, processes left inside, child cgroups, the kernel's EBUSY while
    the last task is unlinked) is False: the caller then kills, waits and retries through
    skiff.cgroups, whose import this path saves.
    """
    if not dirs:
        return False
    for directory in dirs:
        try:
            os.rmdir(directory)
        except FileNotFoundError:
            continue
        except OSError:
            return False
    return True


def _reap_if_child(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _wait_pidfd(pidfd: int, reap: list[int] | None = None) -> None:
    import select

    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    while not poller.poll(50 if reap else None):
        for pid in reap or []:
            _reap_if_child(pid)


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
        self.pid: int | None = None
        self._pending: list[int] = []
        self._previous: dict[int, Any] = {}
        from skiff.runtime import init as container_init

        try:
            self._previous = {signum: signal.signal(signum, self._relay)
                              for signum in container_init.FORWARDED_SIGNALS}
        except ValueError:  # not the main thread (asking threading would cost an import on the hot path)
            pass

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
