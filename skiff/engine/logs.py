"""Read a container's json-file log (written by its monitor): ``skiff logs``."""

from __future__ import annotations

import json
import os
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from skiff import timestamps
from skiff.errors import InvalidArgument

if TYPE_CHECKING:
    from skiff.engine.containers import Container

Entry = tuple[str, str, str]  # (stream, text, RFC3339Nano time)


def log_files(log_path: Path) -> list[Path]:
    """Rotated files oldest first (``LOG.N`` .. ``LOG.1``), then the live one."""
    rotated = sorted((p for p in log_path.parent.glob(log_path.name + ".*") if p.suffix[1:].isdigit()),
                     key=lambda p: int(p.suffix[1:]), reverse=True)
    return rotated + [log_path]


def parse_since(text: str | None) -> float | None:
    """Docker's --since: a Unix time, an RFC 3339 date, or a duration ago (10s, 5m, 2h)."""
    if not text:
        return None
    units = {"s": 1, "m": 60, "h": 3600}
    if text[-1:] in units and text[:-1].replace(".", "", 1).isdigit():
        return time.time() - float(text[:-1]) * units[text[-1]]
    if text.replace(".", "", 1).isdigit():
        return float(text)
    try:
        return timestamps.parse(text)
    except (ValueError, IndexError):
        raise InvalidArgument(f"invalid value for --since: {text!r}: use a duration (10m), "
                              "a Unix time or an RFC 3339 date") from None


def _entries(data: bytes) -> Iterator[Entry]:
    for line in data.splitlines():
        try:
            e = json.loads(line)
            yield e["stream"], e["log"], e["time"]
        except (ValueError, KeyError):
            continue


def read(log_path: Path, tail: int | None = None, since: float | None = None) -> tuple[list[Entry], int]:
    """The entries so far, and the offset in the live file where following continues."""
    entries: deque[Entry] | list[Entry] = deque(maxlen=tail) if tail is not None else []
    offset = 0
    for path in log_files(log_path):
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        if path == log_path:
            data = data[:data.rfind(b"\n") + 1]
            offset = len(data)
        for entry in _entries(data):
            if since is None or _epoch(entry[2]) >= since:
                entries.append(entry)
    return list(entries), offset


def follow(log_path: Path, offset: int, still_running: Callable[[], bool]) -> Iterator[Entry]:
    """New entries as the monitor appends them, until the container has stopped (rotation aware)."""
    fd = _open(log_path)
    try:
        inode = os.fstat(fd).st_ino if fd is not None else None
        if fd is not None:
            os.lseek(fd, offset, os.SEEK_SET)
        buffer = b""
        while True:
            running = still_running()
            chunk = os.read(fd, 65536) if fd is not None else b""
            if chunk:
                buffer += chunk
                complete, _, buffer = buffer.rpartition(b"\n")
                yield from _entries(complete)
                continue
            rotated = _inode(log_path) != inode
            if rotated:
                if fd is not None:
                    os.close(fd)
                    fd = None
                fd = _open(log_path)
                inode = os.fstat(fd).st_ino if fd is not None else None
                buffer = b""
                continue
            if not running:
                break
            time.sleep(0.05)
    finally:  # also when the reader stops early (an API client gone): the generator is closed
        if fd is not None:
            os.close(fd)


def _open(path: Path) -> int | None:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


def _epoch(rfc3339: str) -> float:
    try:
        return timestamps.parse(rfc3339)
    except (ValueError, IndexError):
        return 0.0


def tail_lines(value: str) -> int | None:
    """As Docker 20.10's daemon: a ``tail`` that is not a number, or is negative, means all lines."""
    try:
        lines = int(value)
    except ValueError:
        return None
    return lines if lines >= 0 else None


def still_written(container: Container) -> Callable[[], bool]:
    """For ``follow``: whether the container's monitor may still append to its log (the
    container is held, or being started), read afresh at each call. A container removed
    meanwhile (``--rm``, or ``rm`` right after its wait) writes no more: its last state read
    may still say it runs, and a follower trusting it would never end."""

    def check() -> bool:
        return container.reload() and not container.state.can_start

    return check
