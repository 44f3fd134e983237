"""The monitor once its container has ended: record the exit, then restart or release.

Run as ``skiff.pychild.module_argv("skiff.engine.monitor.after")`` plus ``ROOT RUN_ROOT
ID STATUS STARTED ERROR`` by the idle loop, in its own interpreter (``idle.run_after``: same
process, same pid, so the record's MonitorPid stays true).

Restart policies as Docker's: ``no``; ``on-failure[:N]`` (a non-zero exit, at
most N restarts); ``always`` and ``unless-stopped`` (any exit). A stop or kill
by the user (``ManualStop`` in the state) is never followed by a restart. The
delay doubles from 100 ms on each restart, to at most a minute, and starts
over once a run lasted 10 s.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

from skiff.engine import containers as records
from skiff.engine.state import State
from skiff.engine import events, teardown
from skiff.errors import ContainerNotFound, SkiffError
from skiff.paths import Paths

FIRST_DELAY_MS = 100
MAX_DELAY_MS = 60_000
RESET_AFTER_S = 10


def should_restart(policy: dict, exit_code: int, restart_count: int, manual_stop: bool) -> bool:
    name = (policy or {}).get("Name") or "no"
    if manual_stop or name == "no":
        return False
    if name == "on-failure":
        limit = int(policy.get("MaximumRetryCount") or 0)
        return exit_code != 0 and (limit == 0 or restart_count < limit)
    return name in ("always", "unless-stopped")


def next_delay_ms(previous_ms: int, ran_seconds: float) -> int:
    if not previous_ms or ran_seconds >= RESET_AFTER_S:
        return FIRST_DELAY_MS
    return min(previous_ms * 2, MAX_DELAY_MS)


def finish(paths: Paths, cid: str, status: int, started: bool, error: str) -> None:
    from skiff.runtime import Runtime

    runtime = Runtime(paths.runtime_state)
    oom = False
    with contextlib.suppress(SkiffError, OSError):
        oom = runtime.oom_killed(cid)
    with contextlib.suppress(SkiffError, OSError):
        runtime.delete(cid, force=True)
    container = records.Container(paths, {"Id": cid})
    try:
        with records.locked(container) as c:
            state = c.state
            ran = time.time() - _started(state)
            restart = started and should_restart(c.data["HostConfig"].get("RestartPolicy", {}), status,
                                                 int(c.data.get("RestartCount", 0)), state.manual_stop)
            # this monitor stays named until ``release`` is done (see Engine.reconcile)
            state.init_ended(status, oom=oom, error=error, ran=started, restart=restart)
            if restart:
                delay = next_delay_ms(int(c.data.get("RestartDelayMs", 0)), ran)
                c.data["RestartDelayMs"] = delay
        if started:
            events.emit_died(paths, c.data, status, oom, released=not restart)
        else:  # as Docker: a container whose command never ran did not die
            events.emit_released(paths, c.data)
    except ContainerNotFound:
        return  # removed meanwhile (rm -f): whoever removed it released its resources
    except OSError:  # the record cannot be written (disk full): release anyway; reconcile records it later
        restart = False
    if restart and _sleep_unless_stopped(delay / 1000):
        with contextlib.suppress(ContainerNotFound):
            with records.locked(container) as c:
                if not c.state.manual_stop:
                    c.data["RestartCount"] = int(c.data.get("RestartCount", 0)) + 1
                    restart_now = True
                else:
                    restart_now = False
            if restart_now:
                from skiff.engine.monitor.launch import launch

                launch(paths, cid, None)
    if restart:  # stopped while waiting to restart
        with contextlib.suppress(ContainerNotFound):
            with records.locked(container) as c:
                c.state.restart_cancelled()
    release(paths, container)


def release(paths: Paths, container: records.Container) -> None:
    """Release what the container holds, then let go of the record (or remove it, ``--rm``)."""
    if not container.reload():
        return
    auto_remove = bool(container.data["HostConfig"].get("AutoRemove"))
    teardown.release(paths, container, remove_anonymous=auto_remove)
    teardown.forget_runtime(paths, container)  # a helper killed inside create leaves an init the runtime cannot name
    if auto_remove:
        records.remove_record(container)
        events.emit_container(paths, container.data, "destroy")
        return
    with contextlib.suppress(ContainerNotFound, OSError):
        with records.locked(container) as c:
            c.state.release_owner(only=os.getpid())


def _sleep_unless_stopped(seconds: float) -> bool:
    """Sleep; False if SIGTERM came first (``skiff stop`` while restarting)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        return signal.sigtimedwait({signal.SIGTERM}, seconds) is None
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})  # the next container must not inherit it


def main(argv: list[str]) -> None:
    root, run_root, cid, status, started, error = (argv + [""])[:6]
    os.chdir("/")
    finish(Paths(Path(root), Path(run_root)), cid, int(status), started == "1", error)


def _started(state: State) -> float:
    from skiff import timestamps

    try:
        return timestamps.parse(state.get("StartedAt", ""))
    except ValueError:
        return time.time()


if __name__ == "__main__":
    main(sys.argv[1:])
