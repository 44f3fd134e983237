"""Letting go of a container: kill its init, release what it holds, forget the runtime's state.

One place for the three paths that end a container's run: the foreground ``run``
(Engine), its monitor (skiff.engine.monitor.after) and crash recovery (``Engine.reconcile``),
plus ``rm``. Every step is safe to repeat: a command killed half-way through is
finished by the next one's reconcile. Imported by the monitor, so it imports nothing
of ``skiff.engine.engine``.
"""

from __future__ import annotations

import contextlib
import os
import time

from skiff.engine.containers import Container
from skiff.errors import SkiffError
from skiff.paths import Paths


def release(paths: Paths, container: Container, remove_anonymous: bool) -> None:
    """Release what a stopped container holds (volumes, network, rootfs); safe to call more than once."""
    from skiff.storage.overlay import unmount_rootfs

    release_resources(paths, container, remove_anonymous)
    unmount_rootfs(container.bundle)


def release_resources(paths: Paths, container: Container, remove_anonymous: bool) -> None:
    """Undo what ``skiff.engine.plan.build_spec`` set up for a container that is no longer running.

    Here rather than in plan.py: the monitor's exit step calls it, and importing the planner
    (etc files, the spec, the options) would add milliseconds to every container's end.
    """
    from skiff.engine.volumes import release_container_mounts

    release_container_mounts(paths, container, remove_anonymous)
    if container.data["HostConfig"].get("IpcMode") == "shareable":
        from skiff.engine.namespaces import release

        release(container)
    # By mode, not by NetworkSettings: a run killed between the attach and the record that
    # says so holds a namespace, a veth and a lease all the same (the network's own records
    # of them, by container id, are the truth).
    mode = container.data["HostConfig"].get("NetworkMode") or "bridge"
    if container.data.get("NetworkSettings") or (mode not in ("none", "host") and not mode.startswith("container:")):
        from skiff.engine.network import detach

        detach(paths, container)


def kill(paths: Paths, container: Container) -> None:
    """Kill the init (if the runtime core still knows it) and wait, briefly, for it to be gone."""
    from skiff.runtime import Runtime

    with contextlib.suppress(SkiffError, OSError):
        Runtime(paths.runtime_state).delete(container.id, force=True)
    _wait_gone(container.state.pid)


def forget_runtime(paths: Paths, container: Container) -> None:
    """What the runtime core keeps for a container whose creator died before deleting it.

    A creator killed inside ``create`` leaves an init (blocked on its exec fifo) and
    a state directory without state.json, which ``Runtime.delete`` cannot find:
    the init dies with its cgroup, and the directory is removed here.
    """
    import shutil

    from skiff import cgroups

    with contextlib.suppress(SkiffError, OSError):
        cgroup = cgroups.open(f"/{cgroup_parent_of(container)}/{container.id}")
        if cgroup.exists():
            cgroup.kill()
            cgroup.destroy()
    shutil.rmtree(paths.runtime_state / container.id, ignore_errors=True)


def cgroup_parent_of(container: Container) -> str:
    """The parent cgroup the container was started under (its bundle says; else today's default)."""
    from skiff.store import read_json

    config = read_json(container.bundle / "config.json") or {}
    path = str(config.get("linux", {}).get("cgroupsPath") or "")
    if path.endswith("/" + container.id):
        return path.rsplit("/", 1)[0].strip("/")
    from skiff.engine.plan import cgroup_parent  # only then: the monitor's exit step spares the planner's import

    return cgroup_parent()


def _wait_gone(pid: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while pid > 0 and os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.01)
