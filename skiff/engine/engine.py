"""``Engine``: run, list and remove containers.

The flow of a foreground ``skiff run``: resolve the image and validate every
flag first (nothing is created for bad input); reserve a record and make its
volumes (as Docker's create); mount the overlay rootfs; prepare volumes and the
network; write the OCI bundle; hand it to the runtime core; record the exit;
tear everything down in reverse order. Every step registers its undo on an
ExitStack, so a failure at any point leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Sequence

from skiff import crash_point, proc
from skiff.engine import containers as records
from skiff.engine import events, teardown
from skiff.engine.containers import Container
from skiff.engine.state import Owner, State, Status, decide, orphaned
from skiff.engine.options import RunOptions
from skiff.errors import ContainerConflict, ContainerNotRunning, ExecError, InvalidArgument, NotFound, SkiffError
from skiff.paths import Paths
from skiff.timestamps import now as now_rfc3339
from skiff.store import FileLock, write_json

if TYPE_CHECKING:  # the seams' types; their modules load where they are used
    from skiff.cgroups import Cgroup, Stats
    from skiff.engine.documents import ContainerFacts
    from skiff.engine.filters import FilterArgs
    from skiff.engine.listing import ListingCache
    from skiff.engine.plan import RunPlan
    from skiff.engine.runflags import CidFile
    from skiff.engine.stats import StatsRow
    from skiff.engine.update import UpdateRequest
    import socket

    from skiff.image.store import Image
    from skiff.network.manager import NetworkManager


class Engine:
    def __init__(self, paths: Paths, cache: ListingCache | None = None) -> None:
        """``cache``: a long-lived process's (the API server's), kept across its engines' listings."""
        self.paths = paths
        self.cache = cache

    # --- run -----------------------------------------------------------------
    def run(self, opts: RunOptions, detach_keys: str | None = None, output: tuple[int, int] = (1, 2),
            on_create: Callable[[Container], None] | None = None) -> int:
        """Run a container in the foreground; return its exit status as Docker does.

        ``output``: the descriptors that get the container's stdout and stderr (the Python API
        passes its own, to return the output); ``on_create`` is told the container once its
        record exists (the API names it in its ContainerError).

        With ``opts.detach`` the container is left to its monitor: see ``run_detached``.
        With a terminal (``-t``), a restart policy or a health check the container runs under
        its monitor, which holds the terminal, restarts it and runs the checks, and this command attaches
        to it (Docker's model): the detach keys leave it running (status 0).
        Otherwise the runtime core runs it here, which is faster (bench/lifecycle.py).
        """
        if opts.tty or opts.restart != "no":
            from skiff.engine.terminal import parse_detach_keys

            keys = parse_detach_keys(detach_keys)  # bad keys fail before anything is created
            created = self.create(opts)
            if on_create:
                on_create(created)
            return self._run_monitored(created, opts, keys, output)
        if detach_keys:
            from skiff.engine.terminal import parse_detach_keys

            parse_detach_keys(detach_keys)  # a health check runs under the monitor: bad keys fail first
        self.reconcile()
        with _cid_file(opts) as cid_file:
            image = self._image(opts)
            plan = self._plan(image, opts)
            _print_warnings(plan)
            container = self._create_record(opts, image, plan, owned=not plan.healthcheck_active)
            cid_file.write(container.id)
        if on_create:
            on_create(container)
        if plan.healthcheck_active:  # the monitor runs the health checks, as Docker's daemon does
            from skiff.engine.terminal import parse_detach_keys

            return self._run_monitored(container, opts, parse_detach_keys(detach_keys), output)
        with contextlib.ExitStack() as undo:
            undo.callback(records.remove_record, container)
            undo.callback(_remove_anonymous_volumes, plan)  # a failed run keeps no anonymous volume
            events.emit_container(self.paths, container.data, "attach")
            bundle = self._prepare(container, image, plan, undo)
            try:
                status, oom = self._run_bundle(container, bundle, output)
            except ExecError as exc:
                events.emit_released(self.paths, container.data)
                if opts.remove:
                    events.emit_container(self.paths, container.data, "destroy")
                    raise  # the undo removes it all, as Docker's --rm does
                undo.pop_all()
                self._failed_start(container, exc)
                raise
            undo.pop_all()  # the container ran: from here on, teardown is the normal path
        self._finish(container, status, oom, remove=opts.remove)
        return status

    def _run_monitored(self, created: Container, opts: RunOptions, keys: bytes,
                       output: tuple[int, int] = (1, 2)) -> int:
        """A foreground run of a created container under its monitor, attached to it."""
        events.emit_container(self.paths, created.data, "attach")
        container = self.start(created.id, attach=True)  # the record as started: its Pid
        return self._attach(container, opts.interactive, keys, stdin_once=True, output=output) or 0

    def _failed_start(self, container: Container, exc: SkiffError) -> None:
        """As Docker: a command that cannot run leaves the container created, with 126 or 127 recorded."""
        container.state.failed_start(exc.exit_code, str(exc))
        container.save()
        teardown.release(self.paths, container, remove_anonymous=False)

    def run_detached(self, opts: RunOptions) -> str:
        """``run -d``: create, start under a monitor, return the full id once the container runs."""
        container = self.create(opts)
        self.start(container.id)
        return container.id

    def create(self, opts: RunOptions) -> Container:
        """``skiff create``: check everything, write the record; nothing runs or is mounted yet."""

        self.reconcile()
        with _cid_file(opts) as cid_file:  # as Docker's client: made first, removed if no container came
            image = self._image(opts)
            plan = self._plan(image, opts)
            _print_warnings(plan)
            container = self._create_record(opts, image, plan)
            cid_file.write(container.id)
        return container

    def start(self, ref: str, attach: bool = False) -> Container:
        """Start a created or exited container under a new monitor (a running one is left alone).

        ``attach``: the caller attaches next (``start -a``, ``run -it``); the
        monitor keeps what the container writes until it does.
        """
        from skiff.image.store import ImageStore
        from skiff.engine.monitor.launch import start_detached

        self.reconcile()
        container = records.find_container(self.paths, ref)
        _wait_for_owner(container)
        with records.locked(container) as c:
            if not c.state.can_start:
                if c.state.can_unpause:
                    raise ContainerConflict("cannot start a paused container, try unpause instead")
                return c
            # If this command dies before the monitor takes over, reconcile puts the container back.
            c.state.begin_start(Owner.this_process())
            if c.data["Config"].get("Tty"):
                from skiff.engine.terminal import window_size

                c.data["HostConfig"]["ConsoleSize"] = list(window_size() or (0, 0))
        crash_point("starting")
        try:
            opts = _run_options(container)
            # The limits are the record's (`update` may have changed them since the container was
            # created), not the flags parsed again: an update may leave a set no `run` would take.
            recorded = container.data["HostConfig"].get("Resources")
            if isinstance(recorded, dict):
                opts = opts._replace(resources={})
            image = ImageStore(self.paths).get(container.data["Image"])
            plan = self._plan(image, opts)
            if isinstance(recorded, dict):
                plan.resources = dict(recorded)
            _reuse_anonymous_volumes(plan, container)
            with contextlib.ExitStack() as undo:
                self._prepare(container, image, plan, undo)
                undo.pop_all()  # from here the monitor owns the container and its teardown
        except BaseException:
            with records.locked(container) as c:
                c.state.abandon_start()
            raise
        start_detached(self.paths, container.id, expect_attach=attach)
        container.reload()
        return container

    def attach(self, ref: str, stdin: bool = True, detach_keys: str | None = None,
               stdin_once: bool = False, proxy_signals: bool = True) -> int | None:
        """``skiff attach``: the container's live output here, our input to it, until it exits.

        Returns its exit status, or None when the detach keys were typed.
        """
        from skiff.engine.terminal import parse_detach_keys

        keys = parse_detach_keys(detach_keys)
        container = self.find(ref)
        if container.state.can_unpause:
            raise ContainerConflict("You cannot attach to a paused container, unpause it first")
        if not container.state.can_attach:
            raise ContainerConflict("You cannot attach to a stopped container, start it first")
        events.emit_container(self.paths, container.data, "attach")
        return self._attach(container, stdin and bool(container.data["Config"].get("OpenStdin")), keys,
                            stdin_once, proxy_signals)

    def _attach(self, container: Container, stdin: bool, keys: bytes, stdin_once: bool,
                proxy_signals: bool = True, output: tuple[int, int] = (1, 2)) -> int | None:
        from skiff.engine import lifecycle
        from skiff.engine.terminal import attach

        sock = self.connect_attach(container)
        if sock is None:  # it ended before we came: nothing to show live
            return container.state.exit_code

        def forward(signum: int) -> None:
            with contextlib.suppress(SkiffError):
                lifecycle.send_signal(self.paths, container, signum)

        owner = container.state.owner
        monitor = owner.pid if owner else 0
        with sock:
            result = attach(sock, bool(container.data["Config"].get("Tty")), stdin, keys, stdin_once,
                            forward if proxy_signals else None, output)
        if result.detached:
            return None
        self._wait_recorded(container, monitor, container.state.pid)
        if result.status is not None:
            return result.status
        return container.state.exit_code if container.reload() else 0

    def connect_attach(self, container: Container) -> socket.socket | None:
        """A connection to the monitor's ``attach.sock`` (frames: skiff.engine.monitor.idle);
        None when the container has exited before (its exit code is then in ``container.state``)."""
        from skiff.engine.unixsock import connect_unix
        from skiff.engine.monitor.launch import ATTACH_SOCKET

        try:
            return connect_unix(container.dir, ATTACH_SOCKET)
        except OSError:
            container.reload()
            if container.state.status == Status.EXITED:
                return None
            raise ContainerConflict(f"cannot attach to container {container.id}: its monitor does not listen "
                                    f"on {container.dir / ATTACH_SOCKET}") from None

    def resize(self, container: Container, rows: int, cols: int) -> None:
        """The size of a running TTY container's terminal (its monitor holds the pty master)."""
        from skiff.engine.monitor.idle import frame

        sock = self.connect_attach(container)
        if sock is None:
            raise ContainerNotRunning(f"Container {container.id} is not running")
        with sock:
            sock.sendall(frame(b"r", f"{rows} {cols}".encode()))

    def _wait_recorded(self, container: Container, monitor: int, pid: int, timeout: float = 30) -> None:
        """Until the monitor has recorded the exit and released the container (or restarts it)."""
        from skiff.engine import lifecycle

        # With --rm the monitor records the exit (dropping MonitorPid) before it removes the
        # container: as Docker's client, wait for the removal, that is for the monitor to end.
        auto_remove = bool(container.data["HostConfig"].get("AutoRemove"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not container.reload():
                return  # --rm: removed
            state = container.state
            if state.status == Status.RESTARTING or (state.running and state.pid != pid):
                return
            if not state.owner_alive() and state.status != Status.RUNNING:
                if not auto_remove or lifecycle.wait_for_pid(monitor, 0):
                    return
            lifecycle.wait_for_pid(monitor, 0.05)

    def _image(self, opts: RunOptions) -> Image:
        """The image to run, pulled first as ``--pull`` says (no registry code when it is local)."""
        from skiff.registry import ensure_image

        return ensure_image(self.paths, opts.image, policy=opts.pull, platform=opts.platform,
                            out=sys.stderr)

    def _plan(self, image: Image, opts: RunOptions) -> RunPlan:
        """Check every flag before anything is created."""
        from skiff.engine.plan import RunPlan

        return RunPlan.make(self.paths, image, opts)

    def _create_record(self, opts: RunOptions, image: Image, plan: RunPlan, owned: bool = False) -> Container:
        """Reserve the name, write the record, make its volumes; ``owned``: this process goes on to run it.

        An owned record names this process (``MonitorPid`` and its start time) before
        anything is made for the container, and its mounts too, so that if the process
        dies (SIGKILL) at any later step, ``reconcile`` finds the owner gone and knows
        what to release.
        """
        with FileLock(self.paths.lock_file):
            name = opts.name or records.generate_name(self.paths)
            if opts.name:
                records.check_name_free(self.paths, name)
            cid = records.new_id()
            container = Container(self.paths, {
                "Id": cid,
                "Name": f"/{name}",
                "Created": now_rfc3339(),
                "Image": image.id,
                "Path": plan.args[0],
                "Args": plan.args[1:],
                "Config": plan.config_record(cid),
                "HostConfig": plan.host_config_record(),
                "State": State.new(),
                "Mounts": plan.mount_records(),
                "NetworkSettings": {},
                # Complete from its first write: a command killed after it leaves a startable record.
                "SkiffOptions": plan.opts._asdict(),  # container:X resolved to X's id
                "LogPath": str(self.paths.containers / cid / f"{cid}-json.log"),
                "RestartCount": 0,
            })
            if owned:  # "starting" until it runs: `start` leaves it alone, `ps` shows it created
                container.state.begin_start(Owner.this_process())
            container.dir.mkdir(parents=True, mode=0o700)
            container.save(durable=not opts.remove)
        crash_point("recorded")
        self._make_volumes(container, plan)
        events.emit_container(self.paths, container.data, "create")
        crash_point("reserved")
        return container

    def _make_volumes(self, container: Container, plan: RunPlan) -> None:
        """The container's volumes, made as Docker makes them: at create, after the record that
        names them (a command killed in between leaves a startable record, whose ``rm -v`` or
        start finds them). A failure takes the record back out; the volumes made go with it."""
        if plan.mount_plan is None:
            return
        try:
            plan.mount_plan.create_volumes()
        except BaseException:
            records.remove_record(container)
            raise

    def _prepare(self, container: Container, image: Image, plan: RunPlan, undo: contextlib.ExitStack) -> Path:
        """Rootfs, volumes, network and the bundle: everything the runtime needs."""
        from skiff.storage.overlay import mount_rootfs, unmount_rootfs

        if container.data.get("Mounts") != plan.mount_records():
            # A start that makes new anonymous volumes names them before they exist (see reconcile).
            container.data["Mounts"] = plan.mount_records()
            container.save()
        rootfs = mount_rootfs(image.layer_dirs, container.bundle)
        undo.callback(unmount_rootfs, container.bundle)
        crash_point("rootfs")
        spec = plan.build_spec(container, rootfs, undo)
        container.data["Mounts"] = plan.mount_records()
        container.data["NetworkSettings"] = plan.network_settings()
        container.save(durable=not plan.opts.remove)
        events.emit_attached(self.paths, container.data)
        write_json(container.bundle / "config.json", spec, durable=False)  # rewritten at every start
        crash_point("bundle")
        return container.bundle

    def _run_bundle(self, container: Container, bundle: Path,
                    output: tuple[int, int] = (1, 2)) -> tuple[int, bool]:
        """Run the bundle here; its exit status, and whether the kernel's OOM killer ended it.
        ``output``: the descriptors for the container's stdout and stderr."""
        from skiff.runtime import Runtime

        relay = None
        stdout, stderr = output
        if not container.data["HostConfig"].get("AutoRemove"):  # it outlives the run: keep its output
            from skiff.engine.relay import OutputRelay

            relay = OutputRelay(container, output)
            stdout, stderr = relay.container_ends()

        def started(pid: int) -> None:
            if relay:
                relay.close_container_ends()
            container.state.started(pid)
            container.save(durable=False)  # a running state dies with the machine anyway
            events.emit_container(self.paths, container.data, "start")
            crash_point("created")

        runtime = Runtime(self.paths.runtime_state, self.paths.seccomp_cache)
        oom: list[bool] = []

        def exited(status: int) -> None:
            oom.append(runtime.oom_killed(container.id))  # before the runtime deletes the cgroup

        own_stdin = not container.data["Config"].get("OpenStdin")
        stdin = _devnull() if own_stdin else sys.stdin.fileno()
        try:
            return runtime.run(container.id, bundle, stdio=(stdin, stdout, stderr), on_created=started,
                               on_exited=exited), bool(oom and oom[0])
        finally:
            if own_stdin:  # a process that runs many containers (the Python API) must not leak it
                os.close(stdin)
            if relay:
                relay.finish()

    def _finish(self, container: Container, status: int, oom: bool, remove: bool) -> None:
        """Record the exit, release, then let go: the record names us until the teardown is done."""
        state = container.state
        state.exited(status, oom)
        if not remove:  # a --rm container's record is about to go: no point writing it
            container.save()
        events.emit_died(self.paths, container.data, status, oom)
        crash_point("exited")
        teardown.release(self.paths, container, remove_anonymous=remove)
        if remove:
            records.remove_record(container)
            events.emit_container(self.paths, container.data, "destroy")
            return
        state.release_owner()
        container.save(durable=False)  # lost in a crash of the machine: reconcile then lets go for us

    # --- listing and removal ------------------------------------------------
    def containers(self, all_: bool = False) -> list[Container]:
        found = [c for c in self.reconcile() if all_ or c.running]  # the records reconcile read: one scan
        return sorted(found, key=lambda c: c.data["Created"], reverse=True)

    def list_containers(self, filters: "FilterArgs", all_: bool = False, last: int = -1) -> list[Container]:
        """``ps``: the running containers (every one with ``all_``) that ``filters`` accept, newest
        first. As Docker: a ``status`` filter that names a stopped state, and ``last`` (``-n``,
        ``-l``: the newest N), list containers in every state, after the filters."""
        from skiff.engine.filters import container_list_filter

        include, wants_all = container_list_filter(self.paths, filters)
        found = [c for c in self.containers(all_=all_ or wants_all or last > 0) if include(c.data)]
        return found[:last] if last > 0 else found

    def remove_container(self, ref: str, force: bool = False, volumes: bool = False) -> str:
        from skiff.engine import lifecycle

        self.reconcile()
        container = records.find_container(self.paths, ref, broken_ok=force, cache=self.cache)
        if container.data.get("SkiffBroken"):
            return self._remove_broken(container, ref)
        _wait_for_owner(container)
        if container.held:
            if not container.state.can_remove(force):
                raise ContainerConflict(
                    f"You cannot remove a {container.state.status} container {container.id}. "
                    "Stop the container before attempting removal or force remove")
            with contextlib.suppress(OSError):  # a full disk: the record goes anyway, no restart follows
                lifecycle.mark_manual_stop(container)
            events.emit_container(self.paths, container.data, "kill", signal=str(int(signal.SIGKILL)))
            teardown.kill(self.paths, container)
            lifecycle.signal_monitor(container, signal.SIGTERM)  # one waiting to restart
            lifecycle.wait_released(container, timeout=10)
        with FileLock(self.paths.containers / f".{container.id}.lock"):
            pass  # no update of the record is in flight past this point (and none is written: rm needs no space)
        teardown.release(self.paths, container, remove_anonymous=volumes)
        records.remove_record(container)
        events.emit_container(self.paths, container.data, "destroy")
        return ref

    def _remove_broken(self, container: Container, ref: str) -> str:
        """``rm -f`` of a container whose record is broken: release what its id holds, drop the directory."""
        teardown.kill(self.paths, container)  # its runtime state, if a process still runs
        with contextlib.suppress(SkiffError, OSError):
            teardown.release(self.paths, container, remove_anonymous=False)
        records.remove_record(container)
        return ref

    # --- lifecycle ------------------------------------------------------------
    def find(self, ref: str) -> Container:
        self.reconcile()
        return records.find_container(self.paths, ref, cache=self.cache)

    def stop(self, ref: str, timeout: int | None = None, sig: int | None = None) -> Container:
        """The stop signal, then SIGKILL after ``timeout`` seconds (the container's, else 10)."""
        from skiff.engine import lifecycle

        container = self.find(ref)
        if not container.state.can_stop:
            return container
        configured = container.data["Config"].get("StopTimeout")
        wait = lifecycle.parse_timeout(timeout, configured if configured is not None else
                                       lifecycle.DEFAULT_STOP_TIMEOUT)
        lifecycle.mark_manual_stop(container)
        if container.state.status == Status.RESTARTING:
            lifecycle.signal_monitor(container, signal.SIGTERM)
        else:
            self._thaw(container)
            first = sig or lifecycle.stop_signal(container)
            events.emit_container(self.paths, container.data, "kill", signal=str(first))
            with contextlib.suppress(SkiffError):
                lifecycle.send_signal(self.paths, container, first)
            if not lifecycle.wait_for_pid(container.state.pid, wait):
                events.emit_container(self.paths, container.data, "kill", signal=str(int(signal.SIGKILL)))
                with contextlib.suppress(SkiffError):
                    lifecycle.send_signal(self.paths, container, signal.SIGKILL)
        lifecycle.wait_released(container, timeout=30)
        self.reconcile()
        container.reload()
        events.emit_container(self.paths, container.data, "stop")
        return container

    def kill(self, ref: str, sig: int = signal.SIGKILL) -> Container:
        """Send ``sig``; as Docker's, every failure says ``Cannot kill container: REF: ...``."""
        try:
            return self._send_kill(ref, sig)
        except SkiffError as exc:
            raise exc.within(f"Cannot kill container: {ref}") from None

    def _send_kill(self, ref: str, sig: int) -> Container:
        from skiff.engine import lifecycle

        container = self.find(ref)
        if not container.state.can_kill:
            raise ContainerNotRunning(f"Container {container.id} is not running")
        if sig in (signal.SIGKILL, lifecycle.stop_signal(container)):
            lifecycle.mark_manual_stop(container)  # as Docker: a killed container is not restarted
        if sig == signal.SIGKILL:
            self._thaw(container)
        # Recorded before it is sent: the monitor records the die as soon as the signal lands.
        events.emit_container(self.paths, container.data, "kill", signal=str(int(sig)))
        lifecycle.send_signal(self.paths, container, sig)
        if sig == signal.SIGKILL:
            lifecycle.wait_released(container, timeout=10)
        return container

    def restart(self, ref: str, timeout: int | None = None) -> Container:
        container = self.stop(ref, timeout)
        container = self.start(container.id)
        events.emit_container(self.paths, container.data, "restart")
        return container

    def wait(self, ref: str) -> int:
        from skiff.engine import lifecycle

        container = self.find(ref)
        since_ns = time.time_ns()
        while container.held or container.state.status == Status.STARTING:
            lifecycle.wait_released(container)
            self.reconcile()
            if not container.reload():  # removed as it ended (--rm): its die event has the status
                return exit_code_recorded(self.paths, container.id, since_ns, container.state.exit_code)
        return container.state.exit_code

    def pause(self, ref: str, pause: bool = True) -> Container:
        """Freeze (or thaw) every process of the container through its cgroup's freezer."""
        container = self.find(ref)
        with records.locked(container) as c:
            if not (c.state.can_pause if pause else c.state.can_unpause):
                if not c.held:
                    raise ContainerNotRunning(f"Container {c.id} is not running")
                raise ContainerConflict(f"Container {c.id} is {'already paused' if pause else 'not paused'}")
            from skiff.runtime import Runtime

            runtime = Runtime(self.paths.runtime_state)
            if pause:
                runtime.pause(c.id)
                c.state.paused()
            else:
                runtime.resume(c.id)
                c.state.unpaused()
        events.emit_container(self.paths, container.data, "pause" if pause else "unpause")
        return container

    def update(self, ref: str, request: UpdateRequest) -> Container:
        """``skiff update``: new limits (the live cgroup and the record) or restart policy."""
        from skiff.engine.update import update_container

        container = self.find(ref)
        update_container(self.paths, container, request)
        events.emit_container(self.paths, container.data, "update")
        return container

    def _thaw(self, container: Container) -> None:
        """A frozen container cannot act on a signal; stop, kill and rm thaw it first."""
        if container.state.can_unpause:
            from skiff.runtime import Runtime

            with contextlib.suppress(SkiffError, OSError):
                Runtime(self.paths.runtime_state).resume(container.id)
            with contextlib.suppress(SkiffError):
                with records.locked(container) as c:
                    if c.state.can_unpause:
                        c.state.unpaused()

    def exec(self, ref: str, command: list[str], env: Sequence[str] = (), user: str | None = None,
             workdir: str | None = None, interactive: bool = False, tty: bool = False,
             detach: bool = False, output: tuple[int, int] = (1, 2)) -> int:
        """Run ``command`` in the running container: every namespace and its cgroup are joined.

        ``output``: the descriptors for its stdout and stderr when it is neither detached nor on
        a terminal (this process's by default)."""
        from skiff.runtime import Runtime

        container, process = self.exec_process(ref, command, env, user, workdir, tty)
        exec_id = _exec_events(self.paths, container.data, command)
        if tty and not detach:
            from skiff.engine.terminal import relay_exec

            status = relay_exec(*self.exec_console(container, process), interactive)
        else:
            if tty:
                process["terminal"] = False  # exec -dt: nobody would read the terminal; as Docker, it is unused
            stdin = sys.stdin.fileno() if interactive else _devnull()
            stdio = (stdin, os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC),
                     os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)) if detach else (stdin, *output)
            # Ours to close: a process that execs many times (the Python API) must not leak them.
            opened = ([] if interactive else [stdin]) + ([stdio[1], stdio[2]] if detach else [])
            runtime = Runtime(self.paths.runtime_state, self.paths.seccomp_cache)
            try:
                status = runtime.exec(container.id, process, stdio=stdio, detach=detach)
            finally:
                for fd in opened:
                    os.close(fd)
        if not detach:  # a detached exec is nobody's child once started: its end is not seen (no exec_die)
            self.exec_ended(container, exec_id, status)
        return status

    def exec_process(self, ref: str, command: list[str], env: Sequence[str] = (), user: str | None = None,
                     workdir: str | None = None, tty: bool = False,
                     privileged: bool = False) -> tuple[Container, dict[str, Any]]:
        """The running container and the OCI process an exec of ``command`` runs (checked: not paused,
        a command, an absolute working directory, a user the container knows). ``privileged``: every
        capability, as Docker's ``exec --privileged`` (the container's seccomp profile still applies)."""
        from skiff.engine.users import resolve_user
        from skiff.store import read_json

        container = self.find(ref)
        if not container.state.can_exec:
            if container.state.can_unpause:
                raise ContainerConflict(f"Container {ref} is paused, unpause the container before exec")
            raise ContainerNotRunning(f"Container {container.id} is not running")
        if not command:
            raise InvalidArgument("exec requires at least 1 argument: a command to run")
        config = read_json(container.bundle / "config.json") or {}
        process = dict(config.get("process") or {})
        merged = dict(item.partition("=")[::2] for item in self._exec_base_env(container))
        for item in env:
            key, sep, value = item.partition("=")
            if sep:
                merged[key] = value
            elif key in os.environ:
                merged[key] = os.environ[key]
        process["env"] = [f"{k}={v}" for k, v in merged.items()]
        process["args"] = list(command)
        process["terminal"] = tty
        if workdir:
            if not workdir.startswith("/"):
                raise InvalidArgument(f"the working directory '{workdir}' is invalid, it needs to be an absolute path")
            process["cwd"] = workdir
        if user:
            u = resolve_user(container.bundle / "rootfs", user)
            gids = u.additional_gids
            group_add = container.data["HostConfig"].get("GroupAdd")
            if group_add:  # as Docker's exec: the container's --group-add applies to -u USER too
                from skiff.engine.runflags import additional_gids
                from skiff.engine.users import read_in_root

                added = additional_gids(read_in_root(container.bundle / "rootfs", "/etc/group"), group_add)
                gids = [*gids, *(gid for gid in added if gid not in gids)]
            process["user"] = {"uid": u.uid, "gid": u.gid, "additionalGids": gids}
        if privileged:
            from skiff.security.capabilities import available

            process["capabilities"] = {key: available() for key in ("bounding", "effective", "permitted")}
        return container, process

    def _exec_base_env(self, container: Container) -> list[str]:
        """The container's ``Env``, with its links' variables as at its start (Docker's exec computes
        them again: a linked container that no longer runs fails the exec, as in Docker)."""
        env: list[str] = container.data["Config"].get("Env") or []
        saved = container.data.get("SkiffOptions") or {}
        if not saved.get("links") or saved.get("network") != "bridge":
            return env
        from skiff.engine import links

        resolved = links.resolve(self.paths, saved["links"], "bridge", container.name)
        return links.with_environment(env, resolved, container.name)

    def exec_started(self, container: Container, command: list[str]) -> str:
        """The exec_create and exec_start events; the exec's id (Docker's, in its events)."""
        return _exec_events(self.paths, container.data, command)

    def exec_ended(self, container: Container, exec_id: str, status: int) -> None:
        events.emit_container(self.paths, container.data, "exec_die", execID=exec_id, exitCode=str(status))

    def exec_spawn(self, container: Container, process: dict[str, Any], stdio: tuple[int, int, int]) -> int:
        """Start an exec process without a terminal on ``stdio``; its pid (this process is its parent)."""
        from skiff.runtime import Runtime

        return Runtime(self.paths.runtime_state, self.paths.seccomp_cache).exec(container.id, process, stdio=stdio,
                                                                               detach=True)

    def exec_console(self, container: Container, process: dict[str, Any]) -> tuple[int, int]:
        """``exec -t``: the runtime core makes the pty in the container and sends us its master.

        (master, pid); this process is the exec's parent."""
        import secrets
        import socket

        from skiff.engine.unixsock import listen_unix
        from skiff.runtime import Runtime

        env = dict(item.partition("=")[::2] for item in process["env"])
        env.setdefault("TERM", "xterm")
        process["env"] = [f"{k}={v}" for k, v in env.items()]
        process["terminal"] = True
        name = f"exec-{secrets.token_hex(4)}.sock"
        devnull = _devnull()
        dir_fd = os.open(container.dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            with listen_unix(container.dir, name) as listener:
                pid = Runtime(self.paths.runtime_state, self.paths.seccomp_cache).exec(
                    container.id, process, stdio=(devnull, devnull, devnull),
                    console_socket=f"/proc/self/fd/{dir_fd}/{name}", detach=True)
                listener.settimeout(10)
                conn, _ = listener.accept()
                with conn:
                    _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
        finally:
            os.close(dir_fd)
            os.close(devnull)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(container.dir / name)
        if not fds:
            raise SkiffError(f"the exec process in container {container.id} sent no terminal")
        return fds[0], pid

    def rename(self, ref: str, new_name: str) -> None:
        bare = records.check_name(new_name)
        container = self.find(ref)
        with FileLock(self.paths.lock_file):
            try:
                records.check_name_free(self.paths, bare)
            except ContainerConflict as exc:
                raise exc.within("Error when allocating new name") from None
            with records.locked(container) as c:
                old = c.data["Name"]
                c.data["Name"] = "/" + bare
        events.emit_container(self.paths, container.data, "rename", oldName=old)

    def prune(self, include: Callable[[dict[str, Any]], bool] | None = None) -> list[str]:
        """Remove stopped containers (those ``include`` accepts: see skiff.engine.filters)."""
        removed = []
        for container in self.containers(all_=True):
            if container.state.stopped and (include is None or include(container.data)):
                with contextlib.suppress(SkiffError):
                    removed.append(self.remove_container(container.id))
        return removed

    def top(self, ref: str, ps_args: list[str] | None = None) -> tuple[list[str], list[list[str]]]:
        """The host's ``ps ps_args`` (``-ef`` by default) cut to the processes in the container's cgroup."""
        container = self.find(ref)
        if not container.held:
            raise ContainerNotRunning(f"Container {container.id} is not running")
        from skiff.engine.top import process_table
        from skiff.runtime import Runtime

        table = process_table(ps_args or [], Runtime(self.paths.runtime_state).ps(container.id))
        events.emit_container(self.paths, container.data, "top")
        return table

    def stats(self, refs: Sequence[str] = (), all_: bool = False, interval: float = 0.1) -> list[StatsRow]:
        """One row per container (the named ones, else every running one): two samples ``interval`` apart."""
        from skiff import cgroups
        from skiff.engine.stats import StatsRow, network_io

        self.reconcile()
        found = [records.find_container(self.paths, ref, cache=self.cache) for ref in refs] if refs else self.containers(all_)
        groups = {c.id: cgroups.open(f"/{teardown.cgroup_parent_of(c)}/{c.id}") for c in found}
        first = {cid: _sample(cg) for cid, cg in groups.items()}
        time.sleep(interval)
        rows = []
        for c in found:
            current = _sample(groups[c.id])
            pid = c.state.pid if c.state.running else 0
            received, sent = network_io(pid, c.data["HostConfig"].get("NetworkMode") or "bridge")
            rows.append(StatsRow(c.id, c.name, first[c.id], current, received, sent))
        return rows

    def ports(self, ref: str, port: str | None = None) -> list[str]:
        """``skiff port``: ``80/tcp -> 0.0.0.0:8080`` lines, all or those of one private port."""
        from skiff.network import NetworkManager

        container = self.find(ref)
        lines = NetworkManager(self.paths).ports(container.id)
        if port is None:
            return lines
        wanted = port if "/" in port else f"{port}/tcp"
        shown = [line.partition(" -> ")[2] for line in lines if line.partition(" -> ")[0] == wanted]
        if not shown:
            raise NotFound(f"No public port '{wanted}' published for {ref}")  # 1, as Docker
        return shown

    def inspect(self, ref: str, size: bool = False) -> dict[str, Any]:
        """Docker's inspect document (skiff/engine/documents.py builds it from the record)."""
        return self.document(self.find(ref), size)

    def document(self, container: Container, size: bool = False) -> dict[str, Any]:
        """The inspect document of a container already found: a listing reconciles once, not per entry."""
        from skiff.engine.documents import container_document

        return container_document(container.data, self._document_facts(container, size))

    def summaries(self, containers: Sequence[Container], size: bool = False) -> list[dict[str, Any]]:
        """The entries of ``GET /containers/json``, straight from the records (no inspect document
        is built): the networks' ids are read once for the listing, each image once (``size``)."""
        from skiff.engine.summary import container_summary, list_document, status_text
        from skiff.network import NetworkManager

        if not containers:
            return []
        manager = NetworkManager(self.paths)
        lookups = _Lookups(manager, {n["Name"]: n["Id"] for n in manager.list_networks()}, {}, {})
        now = time.time()
        documents = []
        for container in containers:
            network, ids = self._network_facts(container, lookups)
            if self.cache is None:
                document = list_document(container.data, network, ids)
            else:
                document = self.cache.document(list_document, container.data, network, ids)
            if size:
                rw, rootfs = _sizes(container, self._listed_image(container, lookups))
                document = dict(document, SizeRw=rw, SizeRootFs=rootfs)
            documents.append(document)
        if self.cache is None:
            return [container_summary(document, now) for document in documents]
        return [self.cache.entry(document, status_text(document["State"], now),
                                 functools.partial(container_summary, document, now)) for document in documents]

    def _listed_image(self, container: Container, lookups: _Lookups) -> Image | None:
        """The container's image, looked up once per listing."""
        image_id = str(container.data.get("Image", ""))
        if image_id not in lookups.images:
            lookups.images[image_id] = _image_or_none(self.paths, image_id)
        return lookups.images[image_id]

    def _document_facts(self, container: Container, size: bool) -> ContainerFacts:
        """What a container's document needs beyond its record: image, network, overlay, sizes."""
        from skiff.engine.documents import ContainerFacts

        image_id = str(container.data.get("Image", ""))
        image = _image_or_none(self.paths, image_id)
        masked, readonly = _default_masks()
        upper = container.bundle / "upper"
        graph = {}
        if image is not None:
            graph = {"LowerDir": ":".join(str(d) for d in reversed(image.layer_dirs)),
                     "MergedDir": str(container.bundle / "rootfs"), "UpperDir": str(upper),
                     "WorkDir": str(container.bundle / "work")}
        network, ids = self._network_facts(container)
        return ContainerFacts(
            image_config=image.config if image is not None else None, network=network, network_ids=ids,
            graph_driver=graph, etc_files=(container.dir / "hosts").exists(),
            env_file_keys=_env_file_keys((container.data.get("SkiffOptions") or {}).get("env_files") or []),
            masked_paths=masked, readonly_paths=readonly,
            size=_sizes(container, image) if size else None)

    def sizes(self, container: Container) -> tuple[int, int]:
        """Docker's (SizeRw, SizeRootFs) of a container: its writable layer, and that plus its image."""
        return _sizes(container, _image_or_none(self.paths, str(container.data.get("Image", ""))))

    def _network_facts(self, container: Container, lookups: _Lookups | None = None,
                       ) -> tuple[dict[str, Any] | None, dict[str, str]]:
        """The live network settings of a container that holds its network (None: it holds none),
        and the id of each network by name."""
        if lookups is None:
            from skiff.network import NetworkManager

            manager = NetworkManager(self.paths)
            ids, records = {n["Name"]: n["Id"] for n in manager.list_networks()}, None
        else:
            manager, ids, records = lookups.manager, lookups.network_ids, lookups.network_records
        if not container.held:
            return None, ids
        mode = container.data["HostConfig"].get("NetworkMode") or "bridge"
        if mode in ("none", "host") or mode.startswith("container:"):
            return dict(container.data.get("NetworkSettings") or {}), ids
        try:  # the network's records are the truth: they follow `network connect` and `disconnect`
            return manager.settings(container.id, records), ids
        except (SkiffError, OSError):
            return dict(container.data.get("NetworkSettings") or {}), ids

    # --- crash recovery -------------------------------------------------------
    def reconcile(self) -> list[Container]:
        """Finish containers whose owner died (SIGKILL, crash): kill, record, release; the records
        as they are then (a listing uses them rather than reading them all again).

        Every record a process is working on names it (``MonitorPid`` and its start
        time, so a reused pid is not mistaken for it): a foreground ``skiff run`` from
        the moment it reserves the record until its teardown is done, ``skiff start``
        until the monitor takes over, the monitor until it has released the container.
        If that process is gone, nobody will finish the job, so this command does.
        What to record is ``skiff.engine.state.decide``'s (pure, unit-tested); the
        killing, writing and releasing happen here.
        Nothing is written unless an owner died: a command that only reads (or removes)
        never needs a free byte on the disk, and a write that fails here (disk full)
        leaves the repair to a later command rather than failing this one.
        """
        seen = list(records.all_containers(self.paths, self.cache))
        processes = proc if self.cache is None else self.cache.processes
        recovered = False
        for container in seen:
            if orphaned(container.state, processes):
                recovered = True
                with contextlib.suppress(SkiffError, OSError):
                    self._recover(container)
        if recovered:
            seen = list(records.all_containers(self.paths, self.cache))
        if self.cache is None or self.cache.sweep_due():
            self._remove_stale_cgroups(seen)
        return seen

    def _recover(self, container: Container) -> None:
        """Kill what runs, record the truth, release everything, under the container's lock.

        The record goes on naming the dead owner until the release is complete, so a
        command killed while it recovers is recovered in turn by the next one.
        """
        auto_remove = bool(container.data["HostConfig"].get("AutoRemove"))
        with FileLock(self.paths.containers / f".{container.id}.lock"):
            if not container.reload() or not orphaned(container.state):
                return  # removed, finished or taken over meanwhile
            recovery = decide(container.state, proc, _init_of(self.paths, container.id),
                              startable="SkiffOptions" in container.data)
            if recovery.kill:
                teardown.kill(self.paths, container)
                container.state.owner_died(recovery)
                if recovery.died:
                    events.emit_died(self.paths, container.data, container.state.exit_code)
                with contextlib.suppress(OSError):  # disk full: release all the same, record later
                    container.save()
            teardown.release(self.paths, container, remove_anonymous=auto_remove)
            teardown.forget_runtime(self.paths, container)
            if not auto_remove:
                container.state.release_owner()
                container.save()
        if auto_remove:
            records.remove_record(container)
            events.emit_container(self.paths, container.data, "destroy")

    def release_orphaned_networks(self, manager: NetworkManager) -> list[str]:
        """Namespaces, veths, leases and ports held for containers that no live record owns.

        Containers whose owner died are recovered first; then the network's own records
        (endpoints and leases by container id) are checked against the containers that
        may hold a network now. Returns the ids released.
        """
        self.reconcile()

        def live() -> set[str]:
            return {c.id for c in records.all_containers(self.paths)
                    if not c.state.stopped or c.state.owner_alive()}

        return manager.reconcile(live)

    def _remove_stale_cgroups(self, seen: Sequence[Container] = ()) -> None:
        """Cgroups that outlived their container: its skiff was killed before the runtime recorded it.

        Only this root's containers are candidates (other roots and skiff-oci may
        share the parent), and the records are read after the cgroups are listed,
        so a container being created or started right now is never robbed. When every
        cgroup found belongs to a container ``seen`` (just read) as not stopped, none is
        stale and the records are not read again (a listing's common case).
        """
        from skiff.cgroups import cleanup_stale
        from skiff.engine.plan import cgroup_parent

        def live() -> set[str]:
            good, broken = records.scan(self.paths)  # a broken record may still have a live container
            return ({c.id for c in good if c.state.status not in (Status.EXITED, Status.DEAD)}
                    | {b.id for b in broken})

        def owned(cid: str) -> bool:
            return (self.paths.containers / cid).is_dir() or (self.paths.runtime_state / cid).is_dir()

        known = {c.id for c in seen if c.state.status not in (Status.EXITED, Status.DEAD)}
        with contextlib.suppress(SkiffError, OSError):
            cleanup_stale(live, parent=cgroup_parent(), owned=owned, known=known)


def _cid_file(opts: RunOptions) -> CidFile:
    """--cidfile's file, refused if it exists (Docker's message); a no-op without the flag."""
    from skiff.engine.runflags import CidFile

    return CidFile(opts.cidfile)


def _print_warnings(plan: RunPlan) -> None:
    """Docker's create warnings (a discarded limit), once: at create, not at every start."""
    for warning in plan.warnings:
        print(f"WARNING: {warning}", file=sys.stderr)


def _run_options(container: Container) -> RunOptions:
    """The options the container was created with, or a StateError saying how to get rid of it."""
    from skiff.errors import StateError

    saved = container.data.get("SkiffOptions")
    problem = "it has no SkiffOptions (its skiff was killed while creating it)"
    if isinstance(saved, dict):
        try:
            return RunOptions(**saved)
        except TypeError as exc:
            problem = f"its SkiffOptions are malformed ({exc})"
    raise StateError(f"container record {container.dir / records.RECORD} cannot be started: {problem}",
                     hint=f"remove it with 'skiff rm -f {container.name}'")


_MASKS: list[tuple[tuple[str, ...] | None, tuple[str, ...] | None]] = []


def _default_masks() -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
    """The default spec's masked and read-only paths (Docker's inspect shows them), read once."""
    if not _MASKS:
        from skiff.runtime.spec import default_spec

        linux = default_spec()["linux"]
        masked, readonly = linux.get("maskedPaths"), linux.get("readonlyPaths")
        _MASKS.append((tuple(masked) if masked is not None else None,
                       tuple(readonly) if readonly is not None else None))
    return _MASKS[0]


class _Lookups(NamedTuple):
    """What every document of one listing shares: the network manager, the networks' ids, the
    images, the network records (each read once for the listing, by name)."""

    manager: NetworkManager
    network_ids: dict[str, str]
    images: dict[str, Image | None]
    network_records: dict[str, dict[str, Any] | None]


def _image_or_none(paths: Paths, image_id: str) -> Image | None:
    """The container's image, or None when it has been removed since (``rmi -f``)."""
    from skiff.image.store import ImageStore

    try:
        return ImageStore(paths).get(image_id)
    except (SkiffError, OSError):
        return None


def _env_file_keys(files: list[str]) -> frozenset[str]:
    """The variable names the container's --env-file files set (a file gone since sets none)."""
    from skiff.engine.spec import read_env_file

    keys: set[str] = set()
    for path in files:
        with contextlib.suppress(SkiffError):
            keys.update(line.partition("=")[0] for line in read_env_file(path))
    return frozenset(keys)


def _sizes(container: Container, image: Image | None) -> tuple[int, int]:
    from skiff.engine.system import container_size

    size_rw = container_size(container)
    return size_rw, size_rw + (image.size if image is not None else 0)


def _reuse_anonymous_volumes(plan: RunPlan, container: Container) -> None:
    """As Docker: a started container keeps the anonymous volumes made at its create (one its
    create was killed before making is made under the same name by ``prepare``)."""
    if plan.mount_plan is None:
        return
    earlier = {m["Destination"]: m for m in container.data.get("Mounts", [])
               if m.get("Type") == "volume" and m.get("Name")}
    for mount in plan.mount_plan.mounts:
        record = earlier.get(mount.destination)
        if mount.anonymous and not mount.inherited and record:
            mount.name, mount.host_path = record["Name"], record["Source"]


def _remove_anonymous_volumes(plan: RunPlan) -> None:
    """The anonymous volumes made for a container whose foreground run failed (its record goes too)."""
    if plan.mount_plan is not None:
        plan.mount_plan.release(remove_anonymous=True)


def _exec_events(paths: Paths, data: dict[str, Any], command: list[str]) -> str:
    """Docker's ``exec_create: CMD ARGS`` and ``exec_start: CMD ARGS`` (the command is part of the
    action, a space after the program even with no arguments); returns the new exec id."""
    import secrets

    exec_id = secrets.token_hex(32)
    shown = f"{command[0]} {' '.join(command[1:])}"
    for action in ("exec_create", "exec_start"):
        events.emit_container(paths, data, f"{action}: {shown}", execID=exec_id)
    return exec_id


def _sample(cgroup: Cgroup) -> Stats:
    """A stats sample; zeros for a container that is not running (Docker shows 0 too)."""
    from skiff.cgroups import Stats

    try:
        return cgroup.stats()
    except (SkiffError, OSError):
        return Stats(0, 0, None, 0, None, time.monotonic_ns())


def exit_code_recorded(paths: Paths, cid: str, since_ns: int, default: int) -> int:
    """The exit code of the container's last ``die`` event since ``since_ns`` (a removed container's)."""
    from skiff.engine.events import read

    died, _ = read(paths, since_ns, None, lambda e: e.get("Action") == "die" and e.get("id") == cid)
    if not died:
        return default
    attributes = died[-1].get("Actor", {}).get("Attributes", {})
    code = str(attributes.get("exitCode", ""))
    return int(code) if code.lstrip("-").isdigit() else default


def _wait_for_owner(container: Container, timeout: float = 30) -> None:
    """A container that has just ended may still be released by its owner: wait until that is done."""
    from skiff.engine import lifecycle

    state = container.state
    owner = state.owner
    if owner is not None and state.status in (Status.EXITED, Status.CREATED) and state.owner_alive():
        lifecycle.wait_for_pid(owner.pid, timeout)
        container.reload()


def _init_of(paths: Paths, cid: str) -> Owner | None:
    """The container's init as the runtime core recorded it (pid, start time); None if it has no state."""
    from skiff.runtime import Runtime

    try:
        record = Runtime(paths.runtime_state).record(cid)
    except SkiffError:
        return None
    return Owner(int(record.get("pid") or 0), record.get("starttime"))


def _devnull() -> int:
    return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
