"""Atomic JSON records and file locks: the only way skiff writes metadata."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
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


def fsync_dir(directory: Path) -> None:
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def write_json(path: Path, obj: Any, mode: int = 0o644, durable: bool = True) -> None:
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=True).encode() + b"\n", mode, durable)


def read_json(path: Path, default: Any = None) -> Any:
    """Read a JSON record; a missing file gives ``default``, a corrupt one is an error."""
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except FileNotFoundError:
        return default
    except (ValueError, UnicodeDecodeError) as exc:
        raise StateError(f"corrupt state file {path}: {exc}") from None


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
            os.close(self._fd)  # closing releases the lock
            self._fd = None

