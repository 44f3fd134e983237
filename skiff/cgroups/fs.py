"""Reading and writing cgroupfs files, with errors that name the file.

Plain ``os`` calls (no buffered file objects) keep ``create`` + ``add`` cheap.
``mkdir`` and ``rmdir`` are looked up through this module (``fs.mkdir``) so the
tests' fake kernel can stand in for cgroupfs, which populates a new directory
with its interface files and refuses to remove a populated one.
"""

from __future__ import annotations

import errno
import os
import time

from skiff import explain
from skiff.errors import CgroupError

TYPE_CHECKING = False   # typing.TYPE_CHECKING without importing typing (or collections) on the hot path
if TYPE_CHECKING:
    from collections.abc import Iterable


def write(path: str, value: str | int) -> None:
    data = str(value).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    except OSError as exc:
        raise _error(f"cannot open {path} to write {str(value)!r}", exc) from None
    try:
        os.write(fd, data)
    except OSError as exc:
        raise _error(f"cannot write {str(value)!r} to {path}", exc) from None
    finally:
        os.close(fd)
    if explain.on:
        explain.step(explain.CGROUPS, f"{os.path.basename(path)} = {value}", "write", {"path": path, "value": str(value)})


def read(path: str) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise _error(f"cannot read {path}", exc) from None
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks).decode()
    finally:
        os.close(fd)


def read_int(path: str, unlimited: str = "max") -> int | None:
    """An integer file; ``None`` for the kernel's word for no limit."""
    text = read(path).strip()
    return None if text == unlimited else int(text)


def read_keyed(path: str) -> dict[str, int]:
    """Files of ``key value`` lines (memory.stat, cpu.stat, memory.events, oom_control)."""
    out: dict[str, int] = {}
    for line in read(path).splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[key] = int(value)
    return out


def read_pids(path: str) -> list[int]:
    try:
        return [int(line) for line in read(path).split()]
    except CgroupError:
        if not os.path.exists(path):
            return []
        raise


def mkdir(path: str) -> bool:
    """Create one cgroup directory; False if it already existed."""
    try:
        os.mkdir(path, 0o755)
        if explain.on:
            explain.step(explain.CGROUPS, "make a cgroup: a directory in the cgroup filesystem", "mkdir", {"path": path})
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        raise _error(f"cannot create cgroup {path}", exc) from None


def rmdir(path: str) -> None:
    os.rmdir(path)


def remove_trees(paths: Iterable[str], deadline: float) -> None:
    """Undo a half-made cgroup: remove what was created, deepest first."""
    for path in paths:
        remove_tree(path, deadline)


def remove_tree(path: str, deadline: float) -> None:
    """Remove a cgroup and any children, deepest first, retrying EBUSY until ``deadline``.

    A cgroup stays busy for a moment after its last process exits (the exiting
    task is unlinked asynchronously), hence the retry with a short backoff.
    """
    if not os.path.isdir(path):
        return
    children = [entry.path for entry in os.scandir(path) if entry.is_dir(follow_symlinks=False)]
    for child in children:
        remove_tree(child, deadline)
    delay = 0.0005
    while True:
        try:
            rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() >= deadline:
                pids = read_pids(os.path.join(path, "cgroup.procs"))
                hint = f"processes still inside: {' '.join(map(str, pids))}" if pids else None
                raise _error(f"cannot remove cgroup {path}", exc, hint=hint) from None
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


def _error(message: str, exc: OSError, hint: str | None = None) -> CgroupError:
    error = CgroupError(f"{message}: {os.strerror(exc.errno or 0)}", hint=hint)
    error.errno = exc.errno  # type: ignore[attr-defined]
    return error
