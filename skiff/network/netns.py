"""Network namespaces kept alive by a bind mount of their nsfs file.

A namespace is made by a short-lived *thread*, not a forked child: unshare(2)
with CLONE_NEWNET changes only the calling task, so a thread can enter a new
namespace, bind-mount ``/proc/thread-self/ns/net`` and exit, while the rest of
the process stays in the host's. That avoids fork in a process that may hold
threads and costs a fraction of a millisecond. Work inside a namespace (lo up,
eth0's address and route) runs the same way in a thread that setns(2)es first.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from skiff import linux
from skiff.errors import SyscallError

T = TypeVar("T")


def in_thread(setup: Callable[[], None], work: Callable[[], T]) -> T:
    """Run ``setup`` (which changes the thread's namespace) then ``work`` in a fresh thread."""
    outcome: dict[str, object] = {}

    def body() -> None:
        try:
            setup()
            outcome["value"] = work()
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=body, name="skiff-netns")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def create(path: Path, work: Callable[[], T]) -> T:
    """Create a network namespace pinned at ``path``, then run ``work`` inside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    os.close(fd)

    def enter_new() -> None:
        linux.unshare(linux.CLONE_NEWNET)
        linux.mount("/proc/thread-self/ns/net", path, None, linux.MS_BIND)
        # Private, so the pin never propagates into peers of the mount it sits on.
        linux.mount(None, path, None, linux.MS_PRIVATE)

    try:
        return in_thread(enter_new, work)
    except BaseException:
        remove(path)
        raise


def run_in(path: Path, work: Callable[[], T]) -> T:
    """Run ``work`` in a thread that has joined the namespace pinned at ``path``."""

    def enter() -> None:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            linux.setns(fd, linux.CLONE_NEWNET, str(path))
        finally:
            os.close(fd)

    return in_thread(enter, work)


def remove(path: Path) -> None:
    """Unpin and delete; idempotent. The namespace dies with its last user."""
    with contextlib.suppress(SyscallError):
        linux.umount(path, linux.MNT_DETACH)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def in_use(path: Path) -> bool:
    """Whether a process is still inside the pinned namespace (a scan of /proc: ~1 ms)."""
    try:
        pinned = os.stat(path)
    except FileNotFoundError:
        return False
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            ns = os.stat(f"/proc/{entry.name}/ns/net")
        except OSError:
            continue  # gone meanwhile, or a kernel thread
        if (ns.st_ino, ns.st_dev) == (pinned.st_ino, pinned.st_dev):
            return True
    return False


def is_pinned(path: Path) -> bool:
    """Whether ``path`` is an nsfs mount (a live pin), not a left-over plain file."""
    try:
        return os.stat(path).st_dev != os.stat(path.parent).st_dev
    except FileNotFoundError:
        return False
