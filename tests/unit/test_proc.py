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
