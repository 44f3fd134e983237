"""The events log: what ``skiff events`` reads, as Docker's daemon reports it.

skiff has no daemon to hold events in memory, so every command that changes an object
appends one JSON line to ``<root>/events.log``: Docker's ``events.Message`` (``status``,
``id``, ``from`` for containers and images; ``Type``, ``Action``, ``Actor.ID``,
``Actor.Attributes``, ``scope``, ``time``, ``timeNano``), so ``--format '{{json .}}'``
prints what Docker prints.

Writes never interleave: each event is one ``write`` on an ``O_APPEND`` descriptor, which
the kernel serializes with every other append to the file. A write that fails (a full
disk) is dropped: an event is never worth failing the command that did the work. The log
is capped: past ``MAX_BYTES`` it is renamed to ``events.log.1`` (the previous one dropped),
so it holds at most twice that; readers read both.

``emit(paths, type_, action, actor_id, attributes)`` is the one way to add an event; ``read``
and ``follow`` give them back, oldest first, within a ``--since``/``--until`` window and
through a filter the caller gives. This module sits beside ``paths`` and imports nothing
of the engine, so image, volume and network stores report their own events; the
container events (their attributes, ``die`` and what follows it) are the engine's
(skiff.engine.events), Docker's ``--filter`` is skiff.engine.filters', the printing
skiff.cli.events'.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

from skiff.paths import Paths

LOG_NAME = "events.log"
MAX_BYTES = 4 << 20  # about 15 000 events per generation; Docker keeps only the last 256 in memory
POLL_SECONDS = 0.1
# Docker's Message has status/id/from only for these types (the older API's fields).
_LEGACY_TYPES = ("container", "image")

Event = dict[str, Any]


def log_path(paths: Paths) -> Path:
    return paths.root / LOG_NAME


def message(type_: str, action: str, actor_id: str, attributes: dict[str, str] | None = None,
            time_ns: int | None = None) -> Event:
    """Docker's events.Message, its keys in Docker's order (``{{json .}}`` prints them so)."""
    stamp = time.time_ns() if time_ns is None else time_ns
    attrs = {str(k): str(v) for k, v in sorted((attributes or {}).items())}  # Go marshals a map sorted
    event: Event = {}
    if type_ in _LEGACY_TYPES:
        event["status"] = action
        event["id"] = actor_id
        if attrs.get("image") and type_ == "container":
            event["from"] = attrs["image"]
    event.update({"Type": type_, "Action": action, "Actor": {"ID": actor_id, "Attributes": attrs},
                  "scope": "local", "time": stamp // 1_000_000_000, "timeNano": stamp})
    return event


def emit(paths: Paths, type_: str, action: str, actor_id: str, attributes: dict[str, str] | None = None) -> None:
    """Append one event; never raises (a lost event must not fail the command that did the work)."""
    line = (json.dumps(message(type_, action, actor_id, attributes), separators=(",", ":")) + "\n").encode()
    path = log_path(paths)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except OSError:
        return  # no root yet, read-only, full: the event is lost, the command goes on
    try:
        os.write(fd, line)  # one write: O_APPEND makes it whole relative to other writers
        if os.fstat(fd).st_size > MAX_BYTES:
            _rotate(fd, path)
    except OSError:
        pass
    finally:
        os.close(fd)


def _rotate(fd: int, path: Path) -> None:
    """Rename the full log to ``.1``; of concurrent writers only the one holding the flock does,
    and only if the file is still the one at ``path`` (another may have rotated it already)."""
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return
    with contextlib.suppress(OSError):
        if os.stat(path).st_ino == os.fstat(fd).st_ino:
            os.replace(path, path.with_name(LOG_NAME + ".1"))


# --- reading --------------------------------------------------------------------------


def _parse_line(line: bytes) -> Event | None:
    """One event, or None for a line a failed write cut short; a whole event that was appended
    after such a cut is found by its opening key."""
    try:
        event = json.loads(line)
    except ValueError:
        starts = [line.rfind(key) for key in (b'{"status":', b'{"Type":')]
        start = max(starts)
        if start <= 0:
            return None
        return _parse_line(line[start:])
    return event if isinstance(event, dict) and "timeNano" in event else None


def _events_in(data: bytes) -> Iterator[Event]:
    for line in data.split(b"\n"):
        if line.strip():
            event = _parse_line(line)
            if event is not None:
                yield event


class Position(NamedTuple):
    """Where a read of the log stopped: the current file (by inode) and the offset in it."""

    inode: int
    offset: int


def _read_file(path: Path) -> tuple[bytes, Position]:
    try:
        with open(path, "rb") as f:
            data = f.read()
            return data, Position(os.fstat(f.fileno()).st_ino, len(data))
    except OSError:
        return b"", Position(0, 0)


Matcher = Callable[[Event], bool]


def read(paths: Paths, since_ns: int | None = None, until_ns: int | None = None,
         include: Matcher | None = None) -> tuple[list[Event], Position]:
    """The recorded events with ``since_ns <= timeNano <= until_ns`` that ``include`` accepts,
    oldest first, and where the read stopped (``follow`` goes on from there, missing nothing)."""
    path = log_path(paths)
    older, _ = _read_file(path.with_name(LOG_NAME + ".1"))
    current, position = _read_file(path)
    whole = current[:current.rfind(b"\n") + 1]  # a line being written now is left to ``follow``
    position = Position(position.inode, len(whole))
    found = [e for e in _events_in(older + whole)
             if _in_window(e, since_ns, until_ns) and (include is None or include(e))]
    found.sort(key=lambda e: int(e.get("timeNano") or 0))  # concurrent writers may append out of order
    return found, position


def _in_window(event: Event, since_ns: int | None, until_ns: int | None) -> bool:
    stamp = int(event.get("timeNano") or 0)
    return (since_ns is None or stamp >= since_ns) and (until_ns is None or stamp <= until_ns)


def follow(paths: Paths, include: Matcher | None = None, until_ns: int | None = None,
           start: Position | None = None, keep_going: Callable[[], bool] | None = None) -> Iterator[Event]:
    """Events appended from now on (or after ``start``, where a ``read`` stopped), as they come; a rotation is followed
    to the new file after the rest of the old one is read. Stops at ``until_ns`` if given, or once
    ``keep_going`` (asked at each poll) says no: an API client that hung up.

    A cheap poll (one stat per ``POLL_SECONDS``) rather than inotify: it works on every
    filesystem and costs nothing measurable while idle.
    """
    path = log_path(paths)
    fd = _open_at(path, start)
    pending = b""
    try:
        while (until_ns is None or time.time_ns() <= until_ns) and (keep_going is None or keep_going()):
            chunk = _read_new(fd) if fd is not None else b""
            if chunk:
                pending += chunk
                data, _, pending = pending.rpartition(b"\n")
                for event in _events_in(data):
                    if include is None or include(event):
                        if until_ns is not None and int(event.get("timeNano") or 0) > until_ns:
                            return
                        yield event
                continue
            if _replaced(fd, path):
                if fd is not None:
                    os.close(fd)
                fd = _open_at(path, Position(0, 0))
                pending = b""
                continue
            time.sleep(POLL_SECONDS)
    finally:
        if fd is not None:
            os.close(fd)


def _open_at(path: Path, start: Position | None) -> int | None:
    """The log open at its end, or at ``start`` if it is still the same file (else at its start:
    it was rotated meanwhile, and all of the new file is news)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    info = os.fstat(fd)
    if start is None:
        position = info.st_size
    elif start.inode == info.st_ino:
        position = min(start.offset, info.st_size)
    else:
        position = 0
    os.lseek(fd, position, os.SEEK_SET)
    return fd


def _read_new(fd: int) -> bytes:
    chunks: list[bytes] = []
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _replaced(fd: int | None, path: Path) -> bool:
    """The log at ``path`` is another file than the one open (rotated, or created since)."""
    try:
        current = os.stat(path).st_ino
    except OSError:
        return False
    return fd is None or os.fstat(fd).st_ino != current
