"""``Engine``: run, list and remove containers.

The flow of a foreground ``skiff run``: resolve the image and validate every
flag first (nothing is created for bad input); reserve a record; mount the
overlay rootfs; plan volumes and the network; write the OCI bundle; hand it to
the runtime core; record the exit; tear everything down in reverse order. Every
step registers its undo on an ExitStack, so a failure at any point leaves
nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

from skiff.engine import containers as records
from skiff.engine.containers import Container
from skiff.engine.options import RunOptions
from skiff.errors import ContainerConflict, ImageNotFound, SkiffError
from skiff.paths import Paths
from skiff.store import FileLock, write_json


def now_rfc3339() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


class Engine:
    def __init__(self, paths: Paths) -> None:
        self.paths = paths

    # --- run -----------------------------------------------------------------
    def run(self, opts: RunOptions) -> int:
        """Run a container in the foreground; return its exit status as Docker does."""
        self.reconcile()
        image = self._image(opts.image)
        plan = self._plan(image, opts)
        with contextlib.ExitStack() as undo:
            container = self._create_record(opts, image, plan)
            undo.callback(records.remove_record, container)
            bundle = self._prepare(container, image, plan, undo)
            status = self._run_bundle(container, bundle)
            undo.pop_all()  # the container ran: from here on, teardown is the normal path
        self._finish(container, status, remove=opts.remove)
        return status

    def _image(self, ref: str) -> Any:
        from skiff.image.store import ImageStore

        try:
            return ImageStore(self.paths).get(ref)
        except ImageNotFound:
            from skiff.image.reference import parse_reference

            raise ImageNotFound(f"Unable to find image '{parse_reference(ref).familiar}' locally") from None

    def _plan(self, image: Any, opts: RunOptions) -> "RunPlan":
        """Check every flag before anything is created."""
        from skiff.engine.plan import RunPlan

        return RunPlan.make(self.paths, image, opts)

    def _create_record(self, opts: RunOptions, image: Any, plan: "RunPlan") -> Container:
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
                "State": {"Status": "created", "Running": False, "Pid": 0, "ExitCode": 0, "OOMKilled": False,
                          "StartedAt": "0001-01-01T00:00:00Z", "FinishedAt": "0001-01-01T00:00:00Z",
                          "Error": ""},
                "Mounts": [],
                "NetworkSettings": {},
            })
            container.dir.mkdir(parents=True, mode=0o700)
            container.save()
        return container

    def _prepare(self, container: Container, image: Any, plan: "RunPlan", undo: contextlib.ExitStack) -> Path:
        """Rootfs, volumes, network and the bundle: everything the runtime needs."""
        from skiff.storage.overlay import mount_rootfs, unmount_rootfs

        rootfs = mount_rootfs(image.layer_dirs, container.bundle)
        undo.callback(unmount_rootfs, container.bundle)
        spec = plan.build_spec(container, rootfs, undo)
        container.data["Mounts"] = plan.mount_records()
        container.data["NetworkSettings"] = plan.network_settings()
        container.save()
        write_json(container.bundle / "config.json", spec)
        return container.bundle

    def _run_bundle(self, container: Container, bundle: Path) -> int:
        from skiff.runtime import Runtime

        def started(pid: int) -> None:
            container.state.update(Status="running", Running=True, Pid=pid, StartedAt=now_rfc3339(),
                                   MonitorPid=os.getpid(), MonitorStart=_start_time(os.getpid()))
            container.save()

        runtime = Runtime(self.paths.runtime_state)

        def exited(status: int) -> None:
            container.state["OOMKilled"] = runtime.oom_killed(container.id)

        stdin = sys.stdin.fileno() if container.data["Config"].get("OpenStdin") else _devnull()
        return runtime.run(container.id, bundle, stdio=(stdin, 1, 2), on_created=started, on_exited=exited)

    def _finish(self, container: Container, status: int, remove: bool) -> None:
        state = container.state
        state.update(Status="exited", Running=False, Pid=0, ExitCode=status, FinishedAt=now_rfc3339())
        state.pop("MonitorPid", None)
        state.pop("MonitorStart", None)
        container.save()
        self._teardown(container, remove_anonymous=remove)
        if remove:
            records.remove_record(container)

    def _teardown(self, container: Container, remove_anonymous: bool) -> None:
        """Release what a stopped container holds; safe to call more than once."""
        from skiff.engine.plan import release_resources
        from skiff.storage.overlay import unmount_rootfs

        release_resources(self.paths, container, remove_anonymous)
        unmount_rootfs(container.bundle)

    # --- listing and removal ------------------------------------------------
    def containers(self, all_: bool = False) -> list[Container]:
        self.reconcile()
        found = [c for c in records.all_containers(self.paths) if all_ or c.running]
        return sorted(found, key=lambda c: c.data["Created"], reverse=True)

    def remove_container(self, ref: str, force: bool = False, volumes: bool = False) -> str:
        self.reconcile()
        container = records.find_container(self.paths, ref)
        if container.running:
            if not force:
                raise ContainerConflict(
                    f"cannot remove container \"/{container.name}\": container is running: "
                    "stop the container before removing or force remove")
            self._kill(container)
        self._teardown(container, remove_anonymous=volumes)
        records.remove_record(container)
        return ref

    def _kill(self, container: Container) -> None:
        from skiff.runtime import Runtime

        with contextlib.suppress(SkiffError, OSError):
            Runtime(self.paths.runtime_state).delete(container.id, force=True)
        _wait_gone(container.state.get("Pid", 0))

    # --- crash recovery -------------------------------------------------------
    def reconcile(self) -> None:
        """Finish containers whose skiff process died (SIGKILL, crash): kill, record, release.

        A running record names the process that holds the container; if that
        process is gone (or its pid was reused: the start time differs), nobody
        will ever record the exit, so this command does.
        """
        for container in records.all_containers(self.paths):
            if not container.running or _alive(container.state):
                continue
            self._kill(container)
            container.state.update(Status="exited", Running=False, Pid=0, ExitCode=137,
                                   FinishedAt=now_rfc3339(), Error="skiff process exited unexpectedly")
            container.save()
            self._teardown(container, remove_anonymous=bool(container.data["HostConfig"].get("AutoRemove")))
            if container.data["HostConfig"].get("AutoRemove"):
                records.remove_record(container)


def _devnull() -> int:
    return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)


def _start_time(pid: int) -> int:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return -1
    return int(stat.rsplit(b")", 1)[1].split()[19])


def _alive(state: dict[str, Any]) -> bool:
    pid = int(state.get("MonitorPid") or 0)
    return pid > 0 and _start_time(pid) == state.get("MonitorStart")


def _wait_gone(pid: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while pid > 0 and os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.01)
