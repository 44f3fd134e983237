"""Start a detached container under its monitor, and (re)create it from inside the monitor.

``start_detached`` runs in the skiff command: it double-forks the monitor
(new session, no terminal) and waits only for the one-line report of the
helper that created and started the container, so ``run -d`` returns as soon
as the container runs. ``launch`` runs in the monitor; it never returns.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

from typing import NoReturn

from skiff.engine import containers as records
from skiff.errors import SkiffError
from skiff.paths import Paths

IDLE_LOOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "idle.py")


def start_detached(paths: Paths, cid: str) -> int:
    """Fork the monitor of container ``cid`` (bundle ready); return the init's pid once it runs.

    Raises the helper's error (command not found: 127 ...) after the monitor
    has recorded it and released the container's resources.
    """
    report_r, report_w = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(report_r)
            os.setsid()
            if os.fork():
                os._exit(0)
            launch(paths, cid, report_w)
        finally:
            os._exit(125)
    os.close(report_w)
    os.waitpid(child, 0)
    with os.fdopen(report_r, "rb") as f:
        report = f.read().decode(errors="replace").split(" ", 3)
    if report[0] == "ok":
        return int(report[1])
    _wait_process(int(report[1]) if len(report) > 1 and report[1].isdigit() else 0)
    code = int(report[2]) if len(report) > 2 and report[2].isdigit() else 125
    error = SkiffError(report[3] if len(report) > 3 else "the container's monitor died before reporting")
    error.exit_code = code
    raise error


def launch(paths: Paths, cid: str, report_fd: int | None) -> NoReturn:
    """In the monitor: create and start the container in a forked helper, then exec the idle loop.

    The monitor is a child subreaper: when the helper exits, the container's
    init is reparented to the monitor, which can then reap it.
    """
    from skiff import linux

    linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
    for signum in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)  # a stray ^C or hang-up must not orphan the container
    _stdio_to_devnull()
    container = records.Container(paths, {"Id": cid})
    if not container.reload():
        os._exit(1)
    log_config = container.data["HostConfig"].get("LogConfig", {}).get("Config", {})
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    helper_r, helper_w = os.pipe()
    helper = os.fork()
    if helper == 0:
        for fd in (out_r, err_r, helper_r):
            os.close(fd)
        _helper(paths, container, (out_w, err_w), [helper_w] + ([report_fd] if report_fd is not None else []))
    for fd in (out_w, err_w, helper_w) + ((report_fd,) if report_fd is not None else ()):
        os.close(fd)
    for fd in (out_r, err_r, helper_r):
        os.set_inheritable(fd, True)
    python = sys.executable
    # Imported, not run as a script: the cached bytecode spares the compiler's memory; a small
    # environment, as nothing in the monitor needs the caller's.
    loader = f"import sys; sys.path[0] = {os.path.dirname(IDLE_LOOP)!r}; import idle; idle.main(sys.argv[1:])"
    os.execve(python, [python, "-I", "-S", "-c", loader, python, str(paths.root), str(paths.run_root), cid,
                      str(container.log_path), str(log_config.get("max-size", 0)),
                      str(log_config.get("max-file", 1)), str(out_r), str(err_r), str(helper_r), str(helper)],
              {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "MALLOC_TRIM_THRESHOLD_": "0"})


def _helper(paths: Paths, container: records.Container, out_err: tuple[int, int], reports: list[int]) -> NoReturn:
    """Create and start the container; write ``ok PID MONITOR`` or ``error MONITOR CODE MESSAGE``."""
    monitor = os.getppid()
    try:
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # the container must not inherit Python's SIG_IGN
        pid = create_and_start(paths, container, out_err, monitor)
        line = f"ok {pid} {monitor}"
    except SkiffError as exc:
        line = f"error {monitor} {exc.exit_code} {exc}"
    except BaseException as exc:  # noqa: BLE001 - whatever happened must reach the user
        line = f"error {monitor} 125 {exc}"
    for fd in reports:
        with contextlib.suppress(OSError):
            os.write(fd, line.replace("\n", " ").encode())
    os._exit(0)


def create_and_start(paths: Paths, container: records.Container, out_err: tuple[int, int], monitor: int) -> int:
    from skiff.engine.engine import _start_time, now_rfc3339
    from skiff.runtime import Runtime

    runtime = Runtime(paths.runtime_state)
    stdin = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    pid = runtime.create(container.id, container.bundle, stdio=(stdin, *out_err))
    os.close(stdin)
    with records.locked(container) as c:
        c.state.update(Status="running", Running=True, Paused=False, Restarting=False, Pid=pid,
                       StartedAt=now_rfc3339(), Error="", MonitorPid=monitor, MonitorStart=_start_time(monitor))
    runtime.start(container.id)
    return pid


def _stdio_to_devnull() -> None:
    fd = os.open(os.devnull, os.O_RDWR)
    for target in (0, 1, 2):
        os.dup2(fd, target)
    os.close(fd)


def _wait_process(pid: int, timeout: float = 10.0) -> None:
    """Wait for a process that is not our child (the monitor finishing its work)."""
    if pid <= 0:
        return
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return
    import select

    try:
        select.select([pidfd], [], [], timeout)
    finally:
        os.close(pidfd)

