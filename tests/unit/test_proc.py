"""skiff.proc: process start times and liveness, the one place they are read (no root needed)."""

from __future__ import annotations

import os
import time

from skiff import proc


def test_this_process_is_alive_with_its_start_time() -> None:
    start = proc.start_time(os.getpid())
    assert isinstance(start, int) and start > 0
    assert proc.alive(os.getpid(), start)
    assert not proc.gone(os.getpid())


def test_the_same_pid_with_another_start_time_is_another_process() -> None:
    start = proc.start_time(os.getpid())
    assert start is not None
    assert not proc.alive(os.getpid(), start + 1)
    assert not proc.alive(os.getpid(), None)


def test_no_such_process() -> None:
    assert proc.start_time(0) is None and proc.start_time(-1) is None
    assert proc.start_time(2**22 + 1) is None  # above pid_max's ceiling
    assert proc.gone(2**22 + 1)


def test_a_zombie_counts_as_gone() -> None:
    child = os.fork()
    if child == 0:
        os._exit(0)
    try:
        deadline = time.monotonic() + 5
        while proc.start_time(child) is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert os.path.exists(f"/proc/{child}")  # not reaped yet: a zombie
        assert proc.start_time(child) is None and proc.gone(child)
    finally:
        os.waitpid(child, 0)


def test_children_lists_ours() -> None:
    child = os.fork()
    if child == 0:
        time.sleep(5)
        os._exit(0)
    try:
        assert child in proc.children().get(os.getpid(), [])
    finally:
        os.kill(child, 9)
        os.waitpid(child, 0)


def _open_fds() -> set[int]:
    listed = os.listdir("/proc/self/fd")  # it holds one of its own while it reads: closed now
    return {int(fd) for fd in listed if os.path.exists(f"/proc/self/fd/{fd}")}


def _unreaped_child() -> int:
    """A child that sleeps until killed (then a zombie until waited for)."""
    child = os.fork()
    if child == 0:
        time.sleep(60)
        os._exit(0)
    return child


def test_the_pidfd_table_answers_as_proc_and_holds_one_pidfd_per_live_process() -> None:
    table = proc.PidfdTable()
    child = _unreaped_child()
    try:
        before = _open_fds()
        start = proc.start_time(child)
        assert start is not None
        assert table.start_time(child) == start
        held = _open_fds() - before
        assert len(held) == 1 and os.readlink(f"/proc/self/fd/{held.pop()}") == "anon_inode:[pidfd]"
        assert table.start_time(child) == start  # from the pidfd now: no second one
        assert len(_open_fds() - before) == 1
        os.kill(child, 9)
        deadline = time.monotonic() + 5
        while table.start_time(child) is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert os.path.exists(f"/proc/{child}")  # a zombie, gone as for proc.start_time
        assert table.start_time(child) is None
        assert _open_fds() == before  # its pidfd closed once it was seen gone
    finally:
        os.kill(child, 9)
        os.waitpid(child, 0)
        table.close()


def test_the_pidfd_table_lets_go_of_processes_not_retained_and_holds_at_most_its_limit() -> None:
    children = [_unreaped_child() for _ in range(3)]
    table, unwatched = proc.PidfdTable(limit=2), proc.PidfdTable(limit=0)
    try:
        before = _open_fds()
        assert all(table.start_time(pid) == proc.start_time(pid) for pid in children)
        assert len(_open_fds() - before) == 2  # the third is answered from /proc
        assert all(unwatched.start_time(pid) == proc.start_time(pid) for pid in children)
        assert len(_open_fds() - before) == 2
        table.retain({children[0]})
        assert len(_open_fds() - before) == 1
        table.close()
        assert _open_fds() == before
        assert table.start_time(2**22 + 1) is None and _open_fds() == before
    finally:
        for pid in children:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        table.close()
