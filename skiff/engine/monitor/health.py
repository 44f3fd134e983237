"""One health-check probe of a running container: exec the test in it, record the result.

Started by the idle monitor (``idle.HealthTimer``) as ``skiff.pychild.module_argv
("skiff.engine.monitor.health")`` plus ``ROOT RUN_ROOT ID INIT_PID``, once per interval,
so that the idle loop itself imports nothing of skiff and stays small. The test
runs as ``skiff exec`` runs a command: through the runtime core, joining the
container's namespaces and cgroup with its process settings (user, working
directory, capabilities, seccomp, no fd of ours but its stdio); its stdout and
stderr go to one pipe of which the first 4096 bytes are kept. Past the timeout
the test is killed (Docker 20.10 leaves it running: moby#37184) and the result is
Docker's ``Health check exceeded timeout (30s)`` with exit code -1.

The result goes into ``State.Health`` under the container's lock, unless the
container has stopped or been restarted meanwhile (its init pid changed).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import time
from pathlib import Path
from typing import Any

from skiff.engine import containers as records
from skiff.engine import health
from skiff.engine.state import State, Status
from skiff.errors import ContainerNotFound, SkiffError
from skiff.paths import Paths

NO_EXIT_CODE = -1  # Docker's ExitCode for a test that did not finish, or could not start


def main(argv: list[str]) -> None:
    root, run_root, cid, init_pid = argv[:4]
    os.chdir("/")
    from skiff import linux

    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)  # the monitor gone, no probe outlives it
    probe(Paths(Path(root), Path(run_root)), cid, int(init_pid))


def probe(paths: Paths, cid: str, init_pid: int) -> None:
    """Run the container's health test once and record the result (nothing if it is not running)."""
    from skiff import goduration, timestamps

    container = records.Container(paths, {"Id": cid})
    if not container.reload() or not _current(container.state, init_pid):
        return
    config = container.data["Config"].get("Healthcheck") or {}
    command = health.probe_command(config, container.data["Config"].get("Shell"))
    if command is None:
        return
    started = time.time()
    start_stamp = timestamps.now()
    timeout_ns = health.timeout(config)
    try:
        code, output = run_test(paths, container, command, timeout_ns / 1e9)
    except SkiffError as exc:  # it could not be started: Docker records the error, exit code -1
        code, output = NO_EXIT_CODE, str(exc)
    if code is None:
        code, output = NO_EXIT_CODE, f"Health check exceeded timeout ({goduration.format(timeout_ns)})"
    result = {"Start": start_stamp, "End": timestamps.now(), "ExitCode": code, "Output": output}
    with contextlib.suppress(ContainerNotFound):
        record(container, init_pid, result, started)


def record(container: records.Container, init_pid: int, result: dict[str, Any], probe_start: float) -> None:
    """The result into the record, under the container's lock, if it is still the run it was made for.

    Not fsynced: a health state means nothing once the machine has restarted (Docker
    keeps it in memory between its checkpoints).
    """
    from skiff.store import FileLock
    from skiff.timestamps import parse

    with FileLock(container.paths.containers / f".{container.id}.lock"):
        if not container.reload() or not _current(container.state, init_pid):
            return
        try:
            started_at = parse(container.state.get("StartedAt", ""))
        except ValueError:
            started_at = probe_start
        changed = health.record_result(container.data, result, started_at, probe_start)
        container.save(durable=False)
    if changed:
        health.health_status_changed(container, changed)


def _current(state: State, init_pid: int) -> bool:
    """Running, and the same run: a paused container is not probed (its test would only freeze)."""
    return state.status == Status.RUNNING and state.pid == init_pid


def run_test(paths: Paths, container: records.Container, command: list[str],
             timeout_s: float) -> tuple[int | None, str]:
    """(exit code, output) of ``command`` run in the container; (None, "") past the timeout."""
    from skiff.runtime import Runtime
    from skiff.store import read_json

    deadline = time.monotonic() + timeout_s
    bundle_process = (read_json(container.bundle / "config.json") or {}).get("process") or {}
    process = {**bundle_process, "args": command, "terminal": False,
               "env": list(container.data["Config"].get("Env") or bundle_process.get("env") or [])}
    read_fd, write_fd = os.pipe()  # close-on-exec: the test gets them as its stdout and stderr only
    devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    try:
        pid = Runtime(paths.runtime_state, paths.seccomp_cache).exec(
            container.id, process, stdio=(devnull, write_fd, write_fd), detach=True)
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
        os.close(devnull)
    try:
        output, truncated, status = _collect(read_fd, pid, deadline)
    finally:
        os.close(read_fd)
    if status is None:
        return None, ""
    return status, health.capped_output(output, truncated)


def _collect(read_fd: int, pid: int, deadline: float) -> tuple[bytes, bool, int | None]:
    """The test's output (its first 4096 bytes, and whether there was more) and its exit status.

    Once the test has exited, what it wrote is taken without waiting for the end of
    the pipe: a process it left in the background may hold its stdout (Docker's exec
    waits for that too; the next probe must not). Past the deadline it is killed: None.
    """
    from skiff.linux import kill_and_reap

    output = bytearray()
    truncated = False
    pidfd = os.pidfd_open(pid)
    poller = select.poll()
    poller.register(read_fd, select.POLLIN)
    poller.register(pidfd, select.POLLIN)
    pipe_open, exited = True, False
    try:
        while not exited:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                kill_and_reap(pid)
                return bytes(output), truncated, None
            for fd, _ in poller.poll(max(1, int(remaining * 1000))):
                if fd == pidfd:
                    exited = True
                    continue
                data = os.read(read_fd, 65536)
                if not data:
                    pipe_open = False
                    poller.unregister(read_fd)
                truncated = _keep(output, data) or truncated
        if pipe_open:
            os.set_blocking(read_fd, False)
            with contextlib.suppress(BlockingIOError):
                while data := os.read(read_fd, 65536):
                    truncated = _keep(output, data) or truncated
    finally:
        os.close(pidfd)
    return bytes(output), truncated, _wait_status(pid)


def _keep(output: bytearray, data: bytes) -> bool:
    """Append what still fits in Docker's 4096 bytes; True if some of ``data`` was dropped."""
    room = health.MAX_OUTPUT_LEN - len(output)
    output += data[:max(0, room)]
    return len(data) > room


def _wait_status(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


if __name__ == "__main__":
    main(sys.argv[1:])
