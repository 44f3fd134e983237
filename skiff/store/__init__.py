"""Atomic JSON records and file locks: the only way skiff writes metadata.

A record is written to ``.<name>.<pid>.<hex>`` beside it and renamed over it, so
readers see the old or the new record, never a mix. A command killed between the
two leaves only that temporary file; the next write into the same directory
removes the temporary files of processes that no longer exist. A record that is
unreadable all the same (a disk fault, a hand edit) is reported by the reader
with ``warn_broken`` and skipped, so one bad record never stops the others.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

from skiff.errors import StateError


def write_atomic(path: Path, data: bytes, mode: int = 0o644, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, never a mix.

    Write to a temporary file in the same directory and rename it over the target.
    ``durable`` also fsyncs the file and the directory, so the new content survives
    a crash of the machine; state that dies with the machine anyway (runtime state,
    a bundle written just before it is run) can skip the two disk flushes.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(fd, mode)  # exactly ``mode``, whatever the umask
            f.write(data)
            if durable:
                f.flush()
                os.fsync(fd)
        os.rename(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename in (None, str(tmp)):
            exc.filename = str(path)  # "No space left on device: '<the record>'", not a temporary name
        raise
    if durable:
        fsync_dir(path.parent)
    sweep_temp_files(path.parent)


def sweep_temp_files(directory: Path) -> list[str]:
    """Remove the temporary files of atomic writes whose writer is dead; returns their names.

    A writer killed between its write and its rename (SIGKILL, a crash) leaves
    its temporary file for good. One whose pid still runs may be writing right
    now and is left alone (a pid reused meanwhile only delays the sweep).
    """
    removed: list[str] = []
    try:
        entries = os.scandir(directory)
    except OSError:
        return removed
    with entries:
        for entry in entries:
            pid = _temp_writer(entry.name)
            if pid is None or _pid_alive(pid):
                continue
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                os.unlink(entry.path)
                removed.append(entry.name)
    return removed


def _temp_writer(name: str) -> int | None:
    """The writer's pid if ``name`` is ``.<record>.<pid>.<8 hex>``, the name ``write_atomic`` uses."""
    if not name.startswith("."):
        return None
    parts = name[1:].rsplit(".", 2)
    if len(parts) != 3 or not parts[0] or not parts[1].isdigit() or len(parts[2]) != 8:
        return None
    if any(c not in "0123456789abcdef" for c in parts[2]):
        return None
    return int(parts[1])


def _pid_alive(pid: int) -> bool:
    """Whether the writer may still be writing (a name holds its pid only, not its start time)."""
    from skiff import proc

    return pid == os.getpid() or not proc.gone(pid)


def problem_of(exc: BaseException) -> str:
    """What is wrong with a record, from the error reading it, without repeating its path.

    Errors about a record read ``... <path>: <problem>``; the problem is the part after the path.
    """
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    text = getattr(exc, "message", None) or str(exc)
    head, sep, problem = text.partition(": ")
    if not sep:
        return text
    return f"corrupt JSON ({problem})" if head.startswith(_CORRUPT) else problem


_CORRUPT = "corrupt state file "
_warned: set[str] = set()


def warn_broken(path: Path, problem: str, hint: str = "") -> None:
    """Report a record that cannot be used, once per file and command, in one line on stderr.

    Listings skip such a record instead of failing: the others stay usable, and
    the user learns which file is broken and what to do about it.
    """
    if str(path) in _warned:
        return
    _warned.add(str(path))
    advice = f"; {hint}" if hint else ""
    print(f"skiff: warning: skipping broken record {path}: {problem}{advice}", file=sys.stderr)


def fsync_dir(directory: Path) -> None:
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def write_json(path: Path, obj: Any, mode: int = 0o644, durable: bool = True) -> None:
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=True).encode() + b"\n", mode, durable)


def read_json(path: str | os.PathLike[str], default: Any = None) -> Any:
    """Read a JSON record; a missing file gives ``default``, a corrupt one is an error."""
    raw = read_bytes(path)
    return default if raw is None else parse_json(raw, path)


def read_bytes(path: str | os.PathLike[str]) -> bytes | None:
    """A record's bytes; None when it does not exist."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def parse_json(raw: bytes, path: str | os.PathLike[str]) -> Any:
    """A record's bytes as JSON; corrupt ones are an error naming the record's ``path``."""
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StateError(f"{_CORRUPT}{path}: {exc}") from None


class FileLock:
    """An exclusive ``flock`` on a file, held for the ``with`` block.

    flock locks belong to the open file description, so they vanish with the
    process: a skiff command killed with SIGKILL never leaves a stale lock.
    """

    def __init__(self, path: Path, shared: bool = False) -> None:
        self.path = path
        self.shared = shared
        self._fd: int | None = None

    def __enter__(self) -> "FileLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._fd is not None:
            # Unlocked explicitly, not by the close alone: a child forked meanwhile by another thread
            # (the API server's threads start monitors) holds a copy of the fd until it execs.
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

