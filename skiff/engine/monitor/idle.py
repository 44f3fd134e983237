"""The idle monitor loop: copy the container's output into its log, wait for it to end.

Run as ``python -I -S idle.py ARGS``, importing only the standard library, so
an idle monitor stays small. When the container's init has been reaped and its
output drained, it runs the command that ends its arguments (``skiff.engine.monitor.after``,
started as ``skiff.pychild`` says) to record the exit: in this same interpreter (``run_after``).

Log format: Docker's json-file driver, one JSON object per line,
``{"log": "...", "stream": "stdout"|"stderr", "time": RFC3339Nano}``, rotated
by size into ``LOG.1`` .. ``LOG.<max_file-1>``.

Attach: the loop also serves ``skiff attach`` clients on ``attach.sock`` in the
container dir (``Hub``). Both directions carry frames: one type byte, a 4-byte
big-endian length, the payload. To a client: ``1`` stdout, ``2`` stderr, ``x``
the exit status (ASCII). From a client: ``0`` stdin, ``r`` a window size
(``"ROWS COLS"``), ``c`` close stdin. With a terminal (``-t``) the loop holds the
pty master: output and input both go through it. ``_socket``, not ``socket``:
the wrapper module would cost the idle monitor a megabyte.

Health checks: with a test configured, the loop's poll timeout is also the timer
of the container's health checks (``HealthTimer``): ``interval`` after the start,
and after each probe has ended, it spawns one probe process (``skiff.engine.monitor.health``,
which execs the test in the container and records the result), watches it through
a pidfd and reaps it. No thread, and nothing of skiff in this process.
"""

import _socket
import os
import select
import sys
import time

CHUNK = 65536
DRAIN_SECONDS = 2.0
QUIET_MS = 500  # no event for this long after the start: the loop is idle (trim.py)


def rfc3339_nano(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + f".{ns % 1_000_000_000:09d}Z"


# The json module pulls in re; an idle monitor must stay small, so strings are escaped here.
_ESCAPES = {i: f"\\u{i:04x}" for i in range(32)}
_ESCAPES.update({ord("\\"): "\\\\", ord('"'): '\\"', ord("\n"): "\\n", ord("\t"): "\\t", ord("\r"): "\\r",
                 0x7f: "\\u007f", 0x2028: "\\u2028", 0x2029: "\\u2029"})


def json_string(text: str) -> str:
    return text.translate(_ESCAPES)


def _json_entry(stream: str, text: bytes) -> bytes:
    return (f'{{"log":"{json_string(text.decode("utf-8", "replace"))}","stream":"{stream}",'
            f'"time":"{rfc3339_nano(time.time_ns())}"}}\n').encode()


class Log:
    """Append-only json-file log with size-based rotation; output is dropped, never fatal, when space runs out.

    A full filesystem must not take the container (or the rest of skiff's root) down
    with it: the log stops growing while less than ``reserve`` bytes are free (so the
    records that ``stop`` and ``rm`` write still fit), or when a write fails (ENOSPC,
    EDQUOT...). An entry is written whole or not at all. What is dropped is counted, and
    once there is room again one entry on stderr says how much was lost. (Docker's
    json-file driver returns the error and loses the output without a trace.)
    """

    def __init__(self, path: str, max_size: int, max_file: int) -> None:
        self.path = path
        self.max_size = max_size
        self.max_file = max(1, max_file)
        self.partial = {"stdout": b"", "stderr": b""}
        self.dropped = 0        # bytes of output lost since the log last had room
        self.full = False       # no room for the log at the last check
        self.next_check = 0.0   # when (monotonic) to look at the free space again ...
        self.unchecked = 0      # ... or once this many bytes have been written since
        self.fd = -1
        self.size = 0
        self.reserve = 1 << 20
        try:
            self._open(0)
            st = os.fstatvfs(self.fd)
            self.reserve = min(64 << 20, max(1 << 20, st.f_blocks * st.f_frsize // 50))
        except OSError:
            pass  # no room even for an empty file: every entry counts as dropped until there is

    def _open(self, flags: int) -> None:
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | flags, 0o640)
        self.size = os.fstat(self.fd).st_size

    def write(self, stream: str, data: bytes) -> None:
        """One entry per line, as Docker: a partial line waits for its end (or for 16 KiB)."""
        data = self.partial[stream] + data
        lines = data.split(b"\n")
        self.partial[stream] = lines.pop()
        for line in lines:
            self._entry(stream, line + b"\n")
        if len(self.partial[stream]) >= 16384:
            self.flush(stream)

    def flush(self, stream: str) -> None:
        if self.partial[stream]:
            self._entry(stream, self.partial[stream])
            self.partial[stream] = b""

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def _entry(self, stream: str, text: bytes) -> None:
        if not self._room():
            self.dropped += len(text)
            return
        note = b""
        if self.dropped:  # written with the entry, whole or not at all
            note = _json_entry("stderr", f"skiff: {self.dropped} bytes of the container's output were dropped: "
                                         f"no space left for its log {self.path}\n".encode())
        entry = note + _json_entry(stream, text)
        try:
            if self.fd < 0:
                self._open(0)
            if self.max_size and self.size and self.size + len(entry) > self.max_size:
                self._rotate()
            self._append(entry)
            self.dropped = 0
        except OSError:
            self.dropped += len(text)
            self.full = True
            self.next_check = time.monotonic() + 1.0

    def _room(self) -> bool:
        """Whether the log may grow: the free space is looked at every 0.1 s or quarter of the
        reserve written, and once a second while there is no room."""
        now = time.monotonic()
        if now < self.next_check and self.unchecked < self.reserve // 4:
            return not self.full
        try:
            st = os.fstatvfs(self.fd) if self.fd >= 0 else os.statvfs(os.path.dirname(self.path))
            self.full = st.f_bavail * st.f_frsize <= self.reserve
        except OSError:
            self.full = True
        self.next_check = now + (1.0 if self.full else 0.1)
        self.unchecked = 0
        return not self.full

    def _append(self, data: bytes) -> None:
        """All of ``data`` or nothing: a short write is undone, so the file holds whole lines only."""
        written = os.write(self.fd, data)
        if written < len(data):
            os.ftruncate(self.fd, self.size)
            raise OSError(28, "No space left on device", self.path)
        self.size += written
        self.unchecked += written

    def _rotate(self) -> None:
        os.close(self.fd)
        self.fd = -1
        if self.max_file > 1:
            for n in range(self.max_file - 1, 1, -1):
                if os.path.exists(f"{self.path}.{n - 1}"):
                    os.replace(f"{self.path}.{n - 1}", f"{self.path}.{n}")
            os.replace(self.path, f"{self.path}.1")
        else:
            os.truncate(self.path, 0)
        self._open(os.O_TRUNC)


def read_report(fd: int, helper_pid: int) -> tuple[int, str]:
    """The helper's one line: ``ok PID MONITOR`` or ``error MONITOR CODE TYPE MESSAGE``; (-125, message) if it died silently.

    The wait ends when the helper has exited, not only at end of file: an init it
    forked before it was killed holds a copy of the pipe until someone kills it.
    """
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    pidfd = os.pidfd_open(helper_pid)
    poller.register(pidfd, select.POLLIN)
    data = b""
    while True:
        ready = dict(poller.poll())
        if fd not in ready:  # the helper is gone: take what it wrote, if anything
            os.set_blocking(fd, False)
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            chunk = b""
        if not chunk:
            break
        data += chunk
    os.close(pidfd)
    os.close(fd)
    words = data.decode(errors="replace").strip().split(" ", 4)
    if len(words) >= 2 and words[0] == "ok":
        return int(words[1]), ""
    if len(words) >= 3 and words[0] == "error":
        return -int(words[2]), words[4] if len(words) > 4 else "container failed to start"
    return -125, "the container's helper process died before reporting"


def wait_status(pid: int) -> int:
    while True:
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            return 255  # not ours: the exit code cannot be known
        except InterruptedError:
            continue
        if os.WIFEXITED(status):
            return os.WEXITSTATUS(status)
        if os.WIFSIGNALED(status):
            return 128 + os.WTERMSIG(status)


def wait_init(init_pid: int) -> int:
    """The init's exit status, reaping every other child that ends meanwhile.

    The init of a pid namespace finishes exiting only once every process of the
    namespace has been reaped, and a health check's test whose probe was killed is
    reparented to us (a subreaper): waiting for the init alone would wait forever.
    """
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 255  # not ours: the exit code cannot be known
        except InterruptedError:
            continue
        if pid != init_pid:
            continue
        if os.WIFEXITED(status):
            return os.WEXITSTATUS(status)
        if os.WIFSIGNALED(status):
            return 128 + os.WTERMSIG(status)


def pump(log: Log, streams: dict[int, str], init_pid: int, hub: "Hub", checks: "HealthTimer") -> int:
    """Copy output until the init has exited; then drain what is left. Returns the exit status."""
    poller = select.poll()
    for fd in streams:
        poller.register(fd, select.POLLIN)
    pidfd = os.pidfd_open(init_pid)
    poller.register(pidfd, select.POLLIN)
    hub.register(poller)
    checks.start(poller, init_pid)
    status = None
    deadline = None
    trimmed = False
    while streams:
        timeout = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
        if hub.stdin_pending:
            timeout = 50 if timeout is None else min(timeout, 50)  # retry input the container has not read
        if not trimmed:
            timeout = QUIET_MS if timeout is None else min(timeout, QUIET_MS)
        timeout = checks.timeout_ms(timeout)
        events = poller.poll(timeout)
        checks.tick()
        hub.write_stdin(b"")
        if not events and deadline is not None and time.monotonic() >= deadline:
            break
        if not events and not trimmed:
            trimmed = give_back_startup_pages()
        for fd, event in events:
            if checks.event(fd):
                continue
            if fd == pidfd:
                poller.unregister(pidfd)
                os.close(pidfd)
                checks.stop()  # the container is gone: no probe outlives it
                status = wait_init(init_pid)
                deadline = time.monotonic() + DRAIN_SECONDS  # a leaked writer must not hold us forever
                continue
            if fd not in streams:
                hub.event(fd, event)
                continue
            try:
                data = os.read(fd, CHUNK)
            except OSError:  # EIO: every end of the container's terminal is closed
                data = b""
            if data:
                log.write(streams[fd], data)
                hub.output(streams[fd], data)
            else:
                poller.unregister(fd)
                hub.stream_closed(fd)
                os.close(fd)
                log.flush(streams.pop(fd))
    checks.stop()
    if status is None:
        status = wait_init(init_pid)
    for stream in ("stdout", "stderr"):
        log.flush(stream)
    return status


class HealthTimer:
    """The container's health checks: one probe process at a time, ``interval`` after the last one ended.

    As Docker's monitor: the first probe runs one interval after the start, the next
    one interval after the previous one finished. The probe kills its test at the
    timeout itself; a probe still running ``GRACE_SECONDS`` after that (stuck before it
    could exec) is killed here.
    """

    GRACE_SECONDS = 5.0
    poller: "select.poll"  # the loop's, set by start: only a started timer spawns probes

    def __init__(self, interval_ns: int, timeout_ns: int, argv: list[str]) -> None:
        self.argv = argv  # empty: the container has no health check
        self.interval = interval_ns / 1e9
        self.limit = timeout_ns / 1e9 + self.GRACE_SECONDS
        self.due: "float | None" = None  # monotonic time of the next probe
        self.probe = 0        # pid of the probe running now
        self.pidfd = -1
        self.kill_at = 0.0
        self.init_pid = 0

    def start(self, poller: "select.poll", init_pid: int) -> None:
        if self.argv:
            self.poller = poller
            self.init_pid = init_pid
            self.argv = self.argv + [str(init_pid)]
            self.due = time.monotonic() + self.interval

    def timeout_ms(self, timeout: "int | None") -> "int | None":
        """The loop's poll timeout, shortened to wake up for the next probe (or to kill a stuck one)."""
        wake = self.kill_at if self.probe else self.due
        if wake is None:
            return timeout
        ms = max(0, int((wake - time.monotonic()) * 1000) + 1)
        return ms if timeout is None else min(timeout, ms)

    def tick(self) -> None:
        now = time.monotonic()
        if self.probe and now >= self.kill_at:
            os.kill(self.probe, 9)  # SIGKILL (the signal module would import enum); its pidfd then fires
            self.kill_at = now + 3600
        elif not self.probe and self.due is not None and now >= self.due:
            self._spawn()

    def _spawn(self) -> None:
        try:  # posix_spawn: no copy of this process; its fds are close-on-exec (main)
            self.probe = os.posix_spawn(self.argv[0], self.argv, os.environ)
            self.pidfd = os.pidfd_open(self.probe)
        except OSError:
            if self.probe:
                wait_status(self.probe)
            self.probe = 0
            self.due = time.monotonic() + self.interval
            return
        self.poller.register(self.pidfd, select.POLLIN)
        self.kill_at = time.monotonic() + self.limit

    def event(self, fd: int) -> bool:
        """True if ``fd`` was the probe's pidfd: it has ended, reap it and set the next one."""
        if fd != self.pidfd or self.pidfd < 0:
            return False
        self._reap()
        # Spawning touched interpreter pages the quiet loop does not need: give them back
        # again (the next spawn faults them in from the page cache, about a millisecond).
        give_back_startup_pages()
        self.due = time.monotonic() + self.interval
        return True

    def stop(self) -> None:
        """No more probes; one running now is killed (the container it probes is gone)."""
        self.due = None
        if self.probe:
            try:
                os.kill(self.probe, 9)
            except OSError:
                pass
            self._reap()

    def _reap(self) -> None:
        self.poller.unregister(self.pidfd)
        os.close(self.pidfd)
        self.pidfd = -1
        wait_status(self.probe)
        self.probe = 0
        self._reap_strays()

    def _reap_strays(self) -> None:
        """Tests of probes killed here were reparented to us (a subreaper): reap those that ended.

        Only peeks (WNOWAIT) at the init, whose end the loop handles through its pidfd.
        """
        while True:
            try:
                ended = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if ended is None or ended.si_pid == self.init_pid:
                return
            try:
                os.waitpid(ended.si_pid, 0)
            except ChildProcessError:
                return


def give_back_startup_pages() -> bool:
    """The loop has gone quiet: give back the pages only its start needed (trim.py)."""
    try:
        # beside this file, first on the loop's sys.path (as a top-level module only there)
        from trim import release_startup_pages  # type: ignore[import-not-found]
    except ImportError:
        return True
    release_startup_pages()
    return True


def reap_others() -> None:
    """Orphans reparented to us (we are a subreaper) must not stay zombies."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def main(argv: list[str]) -> None:
    (root, run_root, cid, log_path, max_size, max_file, out_arg, err_arg, report_arg,
     helper_arg, stdin_arg, console_arg, listen_arg, attach_path, expect_attach,
     health_interval, health_timeout, health_code), after = argv[:18], argv[18:]
    out_fd, err_fd, report_fd, helper_pid = int(out_arg), int(err_arg), int(report_arg), int(helper_arg)
    console_fd = int(console_arg)
    close_on_exec_all()
    probe_argv = [after[0], "-I", "-S", "-c", health_code, root, run_root, cid] if health_code else []
    checks = HealthTimer(int(health_interval), int(health_timeout), probe_argv)
    streams = {console_fd: "stdout"} if console_fd >= 0 else {out_fd: "stdout", err_fd: "stderr"}
    streams.pop(-1, None)
    hub = Hub(int(listen_arg), console_fd if console_fd >= 0 else int(stdin_arg), console_fd >= 0,
              expect_attach == "1")
    log = Log(log_path, int(max_size), int(max_file))
    init_pid, error = read_report(report_fd, helper_pid)
    wait_status(helper_pid)
    if init_pid > 0:
        status = pump(log, streams, init_pid, hub, checks)
    else:
        pump_until_eof(log, streams, hub)
        status = -init_pid
    log.close()
    hub.finish(status, attach_path)
    if hub.stdin_fd >= 0 and hub.stdin_fd != console_fd:  # -1 once a client closed it (stdin once)
        os.close(hub.stdin_fd)
    reap_others()
    started = "1" if init_pid > 0 else "0"
    run_after(after, [root, run_root, cid, str(status), started, error])


def run_after(after: list[str], args: list[str]) -> None:
    """Record the exit: run ``after`` (``python -I -S -c CODE``) with ``args`` in this process.

    This interpreter already runs with the flags the exec of ``after`` would start one with:
    starting a fresh one (and tearing it down at the end) adds about ten milliseconds to every
    container's end, which ``docker run --rm`` waits for (its wait answers once this process,
    the record's MonitorPid, is gone). The process and its pid are the same either way, so the
    crash-safety story (``Engine.reconcile``) is unchanged. Any other command line is exec'd.
    """
    if len(after) != 5 or after[1:4] != ["-I", "-S", "-c"] or \
            os.path.realpath(after[0]) != os.path.realpath(sys.executable):
        os.execv(after[0], after + args)
    sys.argv = ["-c"] + args
    exec(compile(after[4], "<string>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(0)  # nothing else to finish: the interpreter's teardown would only delay the wait


def close_on_exec_all() -> None:
    """Every fd we hold (ours, passed through our exec, or the starting command's) stays out of the probes."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass  # the directory's own fd, closed by now


def pump_until_eof(log: Log, streams: dict[int, str], hub: "Hub") -> None:
    """The container never started: keep what its init wrote (an exec error) in the log."""
    for fd, stream in streams.items():
        os.set_blocking(fd, False)
        try:
            data = os.read(fd, CHUNK)
        except OSError:  # nothing there (EAGAIN), or a terminal nobody opened (EIO)
            data = b""
        if data:
            log.write(stream, data)
            hub.output(stream, data)
        log.flush(stream)
        hub.stream_closed(fd)
        os.close(fd)


REPLAY_LIMIT = 1 << 20
SEND_LIMIT = 4 << 20
FIRST_CLIENT_SECONDS = 10.0
STREAM_TYPES = {"stdout": b"1", "stderr": b"2"}


def frame(kind: bytes, payload: bytes) -> bytes:
    return kind + len(payload).to_bytes(4, "big") + payload


def split_frames(buffer: bytearray) -> list[tuple[bytes, bytes]]:
    """Take the complete frames off the front of ``buffer``."""
    frames = []
    while len(buffer) >= 5:
        size = int.from_bytes(buffer[1:5], "big")
        if len(buffer) < 5 + size:
            break
        frames.append((bytes(buffer[:1]), bytes(buffer[5:5 + size])))
        del buffer[:5 + size]
    return frames


class Hub:
    """The attach clients: output to each of them, their input to the container.

    ``expect_attach`` (``run -it``, ``start -a``): the skiff command that started
    the container attaches right after; what the container writes before it
    connects is kept for it, and the loop waits for it before finishing.
    """

    def __init__(self, listen_fd: int, stdin_fd: int, tty: bool, expect_attach: bool) -> None:
        self.listen = _socket.socket(fileno=listen_fd) if listen_fd >= 0 else None
        if self.listen is not None:
            self.listen.setblocking(False)
        self.stdin_fd = stdin_fd
        if stdin_fd >= 0:
            os.set_blocking(stdin_fd, False)
        self.tty = tty
        self.replay = bytearray() if expect_attach else None
        self.clients: dict[int, tuple[bytearray, bytearray]] = {}  # fd -> (input, pending output)
        self.stdin_pending = bytearray()
        self.poller: "select.poll | None" = None

    def register(self, poller: "select.poll") -> None:
        self.poller = poller
        if self.listen is not None:
            poller.register(self.listen.fileno(), select.POLLIN)

    def event(self, fd: int, event: int) -> None:
        if self.listen is not None and fd == self.listen.fileno():
            self._accept()
        elif fd in self.clients:
            if event & select.POLLOUT:
                self._send(fd)
            if event & (select.POLLIN | select.POLLHUP | select.POLLERR) and fd in self.clients:
                self._receive(fd)

    def _accept(self) -> None:
        if self.listen is None:
            return
        try:
            fd, _ = self.listen._accept()  # type: ignore[attr-defined]  # the C accept: a bare fd
        except OSError:
            return
        os.set_blocking(fd, False)
        self.clients[fd] = (bytearray(), bytearray())
        if self.poller is not None:
            self.poller.register(fd, select.POLLIN)
        if self.replay is not None:  # the first client is the one that started the container
            self._queue(fd, bytes(self.replay))
            self.replay = None

    def _receive(self, fd: int) -> None:
        try:
            data = os.read(fd, CHUNK)
        except OSError:
            data = b""
        if not data:
            self._drop(fd)
            return
        buffer = self.clients[fd][0]
        buffer += data
        for kind, payload in split_frames(buffer):
            if kind == b"0":
                self.write_stdin(payload)
            elif kind == b"r" and self.tty:
                self._resize(payload)
            elif kind == b"c" and self.stdin_fd >= 0 and not self.tty:
                os.close(self.stdin_fd)  # stdin once: the container reads EOF
                self.stdin_fd = -1
                self.stdin_pending.clear()

    def _resize(self, payload: bytes) -> None:
        import termios

        try:
            rows, cols = (int(n) for n in payload.split())
            termios.tcsetwinsize(self.stdin_fd, (rows, cols))  # the kernel sends SIGWINCH to the container
        except (ValueError, OSError, termios.error):
            pass

    def write_stdin(self, data: bytes) -> None:
        """Input, without ever blocking the loop: what the container has not read yet waits."""
        if self.stdin_fd < 0:
            return
        self.stdin_pending += data
        while self.stdin_pending:
            try:
                written = os.write(self.stdin_fd, self.stdin_pending)
            except BlockingIOError:
                return
            except OSError:
                self.stdin_pending.clear()
                return
            del self.stdin_pending[:written]

    def output(self, stream: str, data: bytes) -> None:
        message = frame(STREAM_TYPES[stream], data)
        if self.replay is not None and len(self.replay) < REPLAY_LIMIT:
            self.replay += message
        for fd in list(self.clients):
            self._queue(fd, message)

    def _queue(self, fd: int, data: bytes) -> None:
        pending = self.clients[fd][1]
        pending += data
        if len(pending) > SEND_LIMIT:  # a client that stopped reading must not hold the container
            self._drop(fd)
            return
        self._send(fd)

    def _send(self, fd: int) -> None:
        pending = self.clients[fd][1]
        try:
            while pending:
                del pending[:os.write(fd, pending)]
        except BlockingIOError:
            pass
        except OSError:
            self._drop(fd)
            return
        if self.poller is not None:
            self.poller.modify(fd, select.POLLIN | (select.POLLOUT if pending else 0))

    def _drop(self, fd: int) -> None:
        self.clients.pop(fd, None)
        try:
            if self.poller is not None:
                self.poller.unregister(fd)
        except KeyError:
            pass
        os.close(fd)

    def stream_closed(self, fd: int) -> None:
        if fd == self.stdin_fd:  # the terminal: input has nowhere to go any more
            self.stdin_fd = -1

    def finish(self, status: int, attach_path: str) -> None:
        """Tell every client the exit status; the one expected gets it even if it comes late."""
        if self.listen is None:
            return
        if self.replay is not None:
            self.listen.setblocking(True)
            self.listen.settimeout(FIRST_CLIENT_SECONDS)
            self._accept()
        exit_frame = frame(b"x", str(status).encode())
        for fd, (_, pending) in list(self.clients.items()):
            client = _socket.socket(fileno=fd)
            client.settimeout(2.0)  # a client that stopped reading gets no more than this
            try:
                client.sendall(bytes(pending) + exit_frame)
            except OSError:
                pass
            client.close()
        self.clients.clear()
        try:
            os.unlink(attach_path)
        except OSError:
            pass
        self.listen.close()


if __name__ == "__main__":
    main(sys.argv[1:])
