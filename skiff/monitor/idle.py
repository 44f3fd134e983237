"""The idle monitor loop: copy the container's output into its log, wait for it to end.

Run as ``python -I -S idle.py ARGS``, importing only the standard library, so
an idle monitor stays small. When the container's init has been reaped and its
output drained, it execs ``python -m skiff.monitor.after`` to record the exit.

Log format: Docker's json-file driver, one JSON object per line,
``{"log": "...", "stream": "stdout"|"stderr", "time": RFC3339Nano}``, rotated
by size into ``LOG.1`` .. ``LOG.<max_file-1>``.
"""

import os
import select
import sys
import time

CHUNK = 65536
DRAIN_SECONDS = 2.0


def rfc3339_nano(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + f".{ns % 1_000_000_000:09d}Z"


# The json module pulls in re; an idle monitor must stay small, so strings are escaped here.
_ESCAPES = {i: f"\\u{i:04x}" for i in range(32)}
_ESCAPES.update({ord("\\"): "\\\\", ord('"'): '\\"', ord("\n"): "\\n", ord("\t"): "\\t", ord("\r"): "\\r",
                 0x7f: "\\u007f", 0x2028: "\\u2028", 0x2029: "\\u2029"})


def json_string(text: str) -> str:
    return text.translate(_ESCAPES)


class Log:
    """Append-only json-file log with size-based rotation."""

    def __init__(self, path: str, max_size: int, max_file: int) -> None:
        self.path = path
        self.max_size = max_size
        self.max_file = max(1, max_file)
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self.size = os.fstat(self.fd).st_size
        self.partial = {"stdout": b"", "stderr": b""}

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

    def _entry(self, stream: str, text: bytes) -> None:
        entry = (f'{{"log":"{json_string(text.decode("utf-8", "replace"))}","stream":"{stream}",'
                 f'"time":"{rfc3339_nano(time.time_ns())}"}}\n').encode()
        if self.max_size and self.size and self.size + len(entry) > self.max_size:
            self._rotate()
        os.write(self.fd, entry)
        self.size += len(entry)

    def _rotate(self) -> None:
        os.close(self.fd)
        if self.max_file > 1:
            for n in range(self.max_file - 1, 1, -1):
                if os.path.exists(f"{self.path}.{n - 1}"):
                    os.replace(f"{self.path}.{n - 1}", f"{self.path}.{n}")
            os.replace(self.path, f"{self.path}.1")
        else:
            os.truncate(self.path, 0)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o640)
        self.size = 0


def read_report(fd: int) -> tuple[int, str]:
    """The helper's one line: ``ok PID MONITOR`` or ``error MONITOR CODE MESSAGE``; (0, message) if it died silently."""
    data = b""
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    os.close(fd)
    words = data.decode(errors="replace").strip().split(" ", 3)
    if len(words) >= 2 and words[0] == "ok":
        return int(words[1]), ""
    if len(words) >= 3 and words[0] == "error":
        return -int(words[2]), words[3] if len(words) > 3 else "container failed to start"
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


def pump(log: Log, streams: dict[int, str], init_pid: int) -> int:
    """Copy output until the init has exited; then drain what is left. Returns the exit status."""
    poller = select.poll()
    for fd in streams:
        poller.register(fd, select.POLLIN)
    pidfd = os.pidfd_open(init_pid)
    poller.register(pidfd, select.POLLIN)
    status = None
    deadline = None
    while streams:
        timeout = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
        events = poller.poll(timeout)
        if not events and deadline is not None:
            break
        for fd, _ in events:
            if fd == pidfd:
                poller.unregister(pidfd)
                os.close(pidfd)
                status = wait_status(init_pid)
                deadline = time.monotonic() + DRAIN_SECONDS  # a leaked writer must not hold us forever
                continue
            data = os.read(fd, CHUNK)
            if data:
                log.write(streams[fd], data)
            else:
                poller.unregister(fd)
                os.close(fd)
                log.flush(streams.pop(fd))
    if status is None:
        status = wait_status(init_pid)
    for stream in ("stdout", "stderr"):
        log.flush(stream)
    return status


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
    (python, root, run_root, cid, log_path, max_size, max_file, out_fd, err_fd, report_fd,
     helper_pid) = argv
    out_fd, err_fd, report_fd, helper_pid = int(out_fd), int(err_fd), int(report_fd), int(helper_pid)
    log = Log(log_path, int(max_size), int(max_file))
    init_pid, error = read_report(report_fd)
    wait_status(helper_pid)
    if init_pid > 0:
        status = pump(log, {out_fd: "stdout", err_fd: "stderr"}, init_pid)
    else:
        pump_until_eof(log, {out_fd: "stdout", err_fd: "stderr"})
        status = -init_pid
    os.close(log.fd)
    reap_others()
    started = "1" if init_pid > 0 else "0"
    os.execv(python, [python, "-I", "-m", "skiff.monitor.after", root, run_root, cid, str(status), started,
                      error])


def pump_until_eof(log: Log, streams: dict[int, str]) -> None:
    """The container never started: keep what its init wrote (an exec error) in the log."""
    for fd, stream in streams.items():
        os.set_blocking(fd, False)
        try:
            data = os.read(fd, CHUNK)
        except BlockingIOError:
            data = b""
        if data:
            log.write(stream, data)
        log.flush(stream)
        os.close(fd)


if __name__ == "__main__":
    main(sys.argv[1:])
