"""Start a detached container under its monitor, and (re)create it from inside the monitor.

``start_detached`` runs in the skiff command: it double-forks the monitor
(new session, no terminal) and waits only for the one-line report of the
helper that created and started the container, so ``run -d`` returns as soon
as the container runs. ``launch`` runs in the monitor; it never returns.

The monitor listens on ``attach.sock`` in the container dir for attach
clients. With a terminal (``-t``) the helper receives the pty master from the
runtime core (through a console socket, as runc's ``--console-socket``), sizes
it and hands it to the monitor; with ``-i`` and no terminal the monitor holds the
write end of a pipe that is the container's stdin.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
from pathlib import Path
from typing import NoReturn

from skiff import crash_point, proc
from skiff.engine import containers as records
from skiff.engine.state import Owner
from skiff.engine.unixsock import listen_unix
from skiff.errors import SkiffError, revived
from skiff.paths import Paths
from skiff.pychild import module_argv

IDLE_LOOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "idle.py")
ATTACH_SOCKET = "attach.sock"
CONSOLE_SOCKET = "console.sock"


def start_detached(paths: Paths, cid: str, expect_attach: bool = False) -> int:
    """Fork the monitor of container ``cid`` (bundle ready); return the init's pid once it runs.

    ``expect_attach``: the caller attaches next; the monitor keeps the output
    until it does. Raises the helper's error (command not found: 127 ...) after
    the monitor has recorded it and released the container's resources.
    """
    report_r, report_w = os.pipe()
    fresh = _threaded()
    if not (fresh and _fork_server_launched(paths, cid, report_w, expect_attach)):
        argv = module_argv("skiff.engine.monitor.launch", str(paths.root), str(paths.run_root), cid, str(report_w),
                           "1" if expect_attach else "0") if fresh else []
        child = os.fork()
        if child == 0:
            try:
                os.close(report_r)
                if fresh:  # only system calls between the fork and this exec: no lock another thread held
                    os.set_inheritable(report_w, True)
                    os.execv(argv[0], argv)
                detach_and_launch(paths, cid, report_w, expect_attach)
            finally:
                os._exit(125)
        os.waitpid(child, 0)
    os.close(report_w)
    with os.fdopen(report_r, "rb") as f:
        report = f.read().decode(errors="replace").split(" ", 4)
    if report[0] == "ok":
        return int(report[1])
    _wait_process(int(report[1]) if len(report) > 1 and report[1].isdigit() else 0)
    kind = report[3] if len(report) > 3 else "SkiffError"
    raise revived(kind, report[4] if len(report) > 4 else "the container's monitor died before reporting")


def _fork_server_launched(paths: Paths, cid: str, report_w: int, expect_attach: bool) -> bool:
    """The monitor forked by the fork server (skiff.engine.monitor.forkserver), when this threaded
    process started one; False without one, or when it is gone (then a fresh interpreter does it)."""
    forkserver = sys.modules.get("skiff.engine.monitor.forkserver")
    server = forkserver.current() if forkserver is not None else None
    return server is not None and bool(server.launch(str(paths.root), str(paths.run_root), cid, report_w,
                                                      expect_attach))


def _threaded() -> bool:
    """Whether other threads run here (the API server): a forked child must not go on in Python
    then, as a lock one of them held (stdio, logging, the import lock) would stay held forever in
    it. The CLI never imports threading on this path, so it pays nothing for the question."""
    threading = sys.modules.get("threading")
    return threading is not None and threading.active_count() > 1


def detach_and_launch(paths: Paths, cid: str, report_fd: int, expect_attach: bool) -> NoReturn:
    """In the first child: a session of its own, then the monitor as the grandchild (nobody's child
    to wait for once the first child exits)."""
    os.setsid()
    if os.fork():
        os._exit(0)
    launch(paths, cid, report_fd, expect_attach)


def main(argv: list[str]) -> None:
    """``ROOT RUN_ROOT CID REPORT_FD EXPECT_ATTACH``: the launch in a fresh interpreter (``start_detached``
    from a threaded process)."""
    root, run_root, cid, report_fd, expect_attach = argv
    try:
        detach_and_launch(Paths(Path(root), Path(run_root)), cid, int(report_fd), expect_attach == "1")
    finally:
        os._exit(125)


def launch(paths: Paths, cid: str, report_fd: int | None, expect_attach: bool = False) -> NoReturn:
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
    if not _take_over(container):
        os._exit(1)
    log_config = container.data["HostConfig"].get("LogConfig", {}).get("Config", {})
    tty = bool(container.data["Config"].get("Tty"))
    listener = listen_unix(container.dir, ATTACH_SOCKET)
    stdin_r, stdin_w = os.pipe() if container.data["Config"].get("OpenStdin") and not tty else (-1, -1)
    out_r, out_w = os.pipe() if not tty else (-1, -1)
    err_r, err_w = os.pipe() if not tty else (-1, -1)
    console_ours, console_helper = socket.socketpair() if tty else (None, None)
    helper_r, helper_w = os.pipe()
    helper = os.fork()
    if helper == 0:
        for fd in (out_r, err_r, helper_r, stdin_w, listener.detach()):
            if fd >= 0:
                os.close(fd)
        if console_ours is not None:
            console_ours.close()
        _helper(paths, container, (stdin_r, out_w, err_w), [helper_w] + ([report_fd] if report_fd is not None
                                                                          else []), console_helper)
    for fd in (stdin_r, out_w, err_w, helper_w) + ((report_fd,) if report_fd is not None else ()):
        if fd >= 0:
            os.close(fd)
    console = -1
    if console_ours is not None and console_helper is not None:  # both or neither: -t
        console_helper.close()
        console = _receive_console(console_ours)
    listen_fd = listener.detach()
    _create_log(container.log_path)
    report_r, ended = _report_again(helper_r, helper, SHORT_RUN_SECONDS if report_fd is not None else 0.0)
    for fd in (out_r, err_r, report_r, stdin_w, console, listen_fd):
        if fd >= 0:
            os.set_inheritable(fd, True)
    python = sys.executable
    # Imported, not run as a script: the cached bytecode spares the compiler's memory; a small
    # environment, as nothing in the monitor needs the caller's. The idle loop imports nothing
    # of skiff: the command that records the exit comes last, ready to run, from the one helper
    # that knows where this process found skiff.
    from skiff.pychild import module_argv

    interval, timeout, probe_code = _health_arguments(container)
    loader = f"import sys; sys.path[0] = {os.path.dirname(IDLE_LOOP)!r}; import idle; idle.main(sys.argv[1:])"
    arguments = [str(paths.root), str(paths.run_root), cid, str(container.log_path),
                 str(log_config.get("max-size", 0)), str(log_config.get("max-file", 1)), str(out_r), str(err_r),
                 str(report_r), str(helper), str(stdin_w), str(console), str(listen_fd),
                 str(container.dir / ATTACH_SOCKET), "1" if expect_attach else "0", interval, timeout, probe_code,
                 *module_argv("skiff.engine.monitor.after")]
    environment = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "MALLOC_TRIM_THRESHOLD_": "0"}
    # A short run (docker run --rm busybox true): the same loop, here, where skiff is loaded. Not on
    # a restart (no report_fd: the exit step called this): each restart would nest in the last one.
    if ended and report_fd is not None:
        from skiff import explain
        from skiff.engine.monitor import idle

        explain.close()  # as after the exec: the loop and the exit step explain nothing
        os.environ.clear()  # the environment the exec would have given it
        os.environ.update(environment)
        idle.main(arguments)  # the exit step ends the process
        os._exit(0)
    os.execve(python, [python, "-I", "-S", "-c", loader, *arguments], environment)


# How long the monitor waits for a container that has just started to end, before it execs the
# small idle loop. One that ends by then (``true``, ``echo``, a failed start) is seen through to
# its end by this process, which has skiff loaded already: the idle loop's interpreter (several
# ms to start) and the exit step's imports (about 20 ms) are spared, and a container that runs
# on has its output pumped this much later (the pipes and the attach socket's backlog hold it).
SHORT_RUN_SECONDS = 0.025


def _create_log(path: Path) -> None:
    """The log file, before the start is reported: a ``logs --follow`` that comes right after the
    start holds it open from the first byte (docker-py's ``run(remove=True)`` removes the container
    before it reads what it followed). The idle loop opens it the same way (idle.Log)."""
    with contextlib.suppress(OSError):  # no room: the idle loop counts what it cannot keep
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640))


def _report_again(report_fd: int, helper: int, window: float) -> tuple[int, bool]:
    """The helper's report, read here and written again into a new pipe for the idle loop (which
    reads it as it would have the helper's); and whether the container has ended (or never
    started) within ``window`` seconds. The helper is left for the idle loop to reap."""
    import select

    from skiff.engine.monitor import idle

    init_pid, error = idle.read_report(report_fd, helper)
    monitor = os.getpid()
    line = f"ok {init_pid} {monitor}" if init_pid > 0 else f"error {monitor} {-init_pid} SkiffError {error}"
    read_end, write_end = os.pipe()
    os.write(write_end, line.encode())  # a line: far below a pipe's capacity
    os.close(write_end)
    if init_pid <= 0:
        return read_end, True
    try:
        pidfd = os.pidfd_open(init_pid)
    except OSError:
        return read_end, False  # the idle loop finds out what became of it
    try:  # readable once it has exited; it is not reaped here (the loop reaps it and takes its status)
        return read_end, bool(select.select([pidfd], [], [], window)[0])
    finally:
        os.close(pidfd)


def _health_arguments(container: records.Container) -> tuple[str, str, str]:
    """Interval and timeout (ns) of the container's health checks, and the code its probes run ("": none)."""
    from skiff.engine import health

    config = container.data["Config"].get("Healthcheck")
    if not health.active(config):
        return "0", "0", ""
    from skiff.pychild import module_argv

    return str(health.interval(config)), str(health.timeout(config)), module_argv("skiff.engine.monitor.health")[4]


def _helper(paths: Paths, container: records.Container, stdio: tuple[int, int, int], reports: list[int],
            console: socket.socket | None) -> NoReturn:
    """Create and start the container; write ``ok PID MONITOR`` or ``error MONITOR CODE TYPE MESSAGE``."""
    monitor = os.getppid()
    try:
        pid = create_and_start(paths, container, stdio, monitor, console)
        line = f"ok {pid} {monitor}"
    except SkiffError as exc:
        line = f"error {monitor} {exc.exit_code} {type(exc).__name__} {exc}"  # the type: the CLI's status
    except BaseException as exc:  # noqa: BLE001 - whatever happened must reach the user
        line = f"error {monitor} 125 SkiffError {exc}"
    for fd in reports:
        with contextlib.suppress(OSError):
            os.write(fd, line.replace("\n", " ").encode())
    os._exit(0)


def create_and_start(paths: Paths, container: records.Container, stdio: tuple[int, int, int], monitor: int,
                     console: socket.socket | None = None) -> int:
    from skiff.engine import health
    from skiff.runtime import Runtime

    runtime = Runtime(paths.runtime_state, paths.seccomp_cache)
    _refresh_joined_namespaces(paths, container)
    devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    stdio = tuple(fd if fd >= 0 else devnull for fd in stdio)  # type: ignore[assignment]
    if console is None:
        pid = runtime.create(container.id, container.bundle, stdio=stdio)
    else:
        with listen_unix(container.dir, CONSOLE_SOCKET) as listener:
            dir_fd = os.open(container.dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            try:  # a unix socket path is limited to 107 bytes: through our fd of the directory
                pid = runtime.create(container.id, container.bundle, stdio=stdio,
                                     console_socket=f"/proc/self/fd/{dir_fd}/{CONSOLE_SOCKET}")
            finally:
                os.close(dir_fd)
                with contextlib.suppress(OSError):
                    os.unlink(container.dir / CONSOLE_SOCKET)
            _pass_console(listener, console, container.data["HostConfig"].get("ConsoleSize"))
    os.close(devnull)
    with records.locked(container) as c:
        c.state.started(pid, monitor=Owner(monitor, proc.start_time(monitor)))
        health.on_start(c.data)
    crash_point("created")
    runtime.start(container.id)
    from skiff.engine import events

    events.emit_container(paths, container.data, "start")
    return pid


def _refresh_joined_namespaces(paths: Paths, container: records.Container) -> None:
    """A restart replays the bundle: --pid/--ipc container:X must name X's init of now, not of then."""
    host_config = container.data.get("HostConfig") or {}
    if not any(str(host_config.get(key) or "").startswith("container:") for key in ("PidMode", "IpcMode")):
        return
    from skiff.engine.namespaces import refresh_joined
    from skiff.store import read_json, write_json

    config = read_json(container.bundle / "config.json") or {}
    if refresh_joined(paths, container, config):
        write_json(container.bundle / "config.json", config, durable=False)


def _pass_console(listener: socket.socket, monitor: socket.socket, size: list[int] | None) -> None:
    """Take the pty master the container's init sent, size it, and hand it to the monitor."""
    import termios

    listener.settimeout(10)
    conn, _ = listener.accept()
    with conn:
        _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
    if not fds:
        raise SkiffError("the container's init sent no terminal over the console socket")
    try:
        if size and size[0] > 0 and size[1] > 0:
            termios.tcsetwinsize(fds[0], (int(size[0]), int(size[1])))
        socket.send_fds(monitor, [b"console"], fds[:1])
    finally:
        for fd in fds:
            os.close(fd)
        monitor.close()


def _receive_console(sock: socket.socket) -> int:
    """The pty master from the helper, or -1 if it failed before (its report says why)."""
    with sock:
        try:
            _, fds, _, _ = socket.recv_fds(sock, 64, 1)
        except OSError:
            return -1
    return fds[0] if fds else -1


def _take_over(container: records.Container) -> bool:
    """Name this monitor as the container's holder; False if it is no longer ours to start.

    Until now the record names the ``skiff start`` that forked us: if that died,
    reconcile may already have put the container back (it holds the same lock).
    """
    try:
        with records.locked(container) as c:
            if not c.state.can_take_over:
                return False
            c.state.taken_over(Owner.this_process())
    except SkiffError:
        return False
    return True


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

