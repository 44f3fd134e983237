"""Processes as /proc shows them: start time and liveness, read in this one place.

A pid alone names a process only until it exits: the kernel hands the number out
again. So wherever skiff records a process to find it later (a container's owner in
its record, ``MonitorPid``/``MonitorStart``; the init in the runtime core's
``state.json``; the skiff that mounted a driver volume), it records the pair (pid,
start time), and asks ``alive(pid, start)``: the same pid with another start time is
another process.

A zombie counts as gone (``start_time`` is None): it has exited and will do nothing
more, only its parent's ``wait`` is pending. An owner killed while its parent shell
has not reaped it yet is therefore already gone for ``reconcile``, and the runtime
core sees its init stopped as soon as it has exited.

Standard library only, and outside ``skiff.linux`` (whose package loads libc through
ctypes, 4-7 ms): every command's ``reconcile`` reads start times.
"""

from __future__ import annotations

import os


def start_time(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks after boot (field 22 of /proc/PID/stat).

    None if there is no such process, or it is a zombie (state Z or X).
    """
    if pid <= 0:
        return None
    fields = _stat_fields(pid)
    if fields is None or fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def alive(pid: int, start: int | None) -> bool:
    """Whether the process recorded as (``pid``, ``start``) still runs (not a reused pid, not a zombie)."""
    return start is not None and start_time(pid) == start


def gone(pid: int) -> bool:
    """Whether ``pid`` has exited (it may still wait, a zombie, for its parent to reap it)."""
    return start_time(pid) is None


def children() -> dict[int, list[int]]:
    """Every process's children: parent pid -> pids, from one scan of /proc."""
    found: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None:
                found.setdefault(int(fields[1]), []).append(int(entry))
    return found


def _stat_fields(pid: int) -> list[bytes] | None:
    """The fields of /proc/PID/stat after the command name (which may hold spaces and parentheses)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields if len(fields) > 19 else None


class PidfdTable:
    """``start_time`` for a long-lived process that asks about the same processes again and again.

    The API server checks every container's owner at every listing; reading /proc/PID/stat
    for each was a third of the listing's time. A pidfd names one process and never a later
    one given the same pid: a process seen alive (its start time read again once its pidfd
    is open, so that the pidfd is that process's) is then checked with one poll of its pidfd,
    readable once it has exited (a zombie too, as ``start_time`` counts it). At most
    ``limit`` pidfds are held; past that, /proc answers. Threads share a table: a lock
    keeps a pidfd from being closed while another thread polls it.
    """

    def __init__(self, limit: int = 512) -> None:
        import threading

        self._held: dict[int, tuple[int, int]] = {}  # pid -> (start time, pidfd)
        self._lock = threading.Lock()
        self._limit = limit

    def start_time(self, pid: int) -> int | None:
        with self._lock:
            held = self._held.get(pid)
            if held is not None:
                if not _readable(held[1]):
                    return held[0]
                self._close(pid)
                return None
            start = start_time(pid)
            if start is not None and len(self._held) < self._limit:
                self._watch(pid, start)
            return start

    def retain(self, pids: set[int]) -> None:
        """Close the pidfds of processes not in ``pids`` (no record names them any more)."""
        with self._lock:
            for pid in self._held.keys() - pids:
                self._close(pid)

    def close(self) -> None:
        self.retain(set())

    def _watch(self, pid: int, start: int) -> None:
        try:
            fd = os.pidfd_open(pid)  # close-on-exec, as every pidfd
        except OSError:
            return  # gone meanwhile, or no pidfds here (Linux < 5.3): /proc answers next time
        if start_time(pid) == start:
            self._held[pid] = (start, fd)
        else:
            os.close(fd)  # the pid was reused between the two reads: this pidfd is another process's

    def _close(self, pid: int) -> None:
        os.close(self._held.pop(pid)[1])


def _readable(fd: int) -> bool:
    import select

    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))
