"""What a long-lived process (the API server) keeps from one container listing to the next.

A CLI command lists once and exits; the server answers ``docker ps`` again and again over the
same records, and parsing them, then shaping each into its list entry, was most of every
answer. Here the parse and the entry's document are kept while the record's bytes stay the
same: the bytes decide, never the file's inode or times (an inode is reused and a time can
repeat within one clock tick, so either could return a stale record). The records are still
read whenever one may have changed: inotify watches the containers' directory and each
container's (``RecordWatch``), and while it has seen no record renamed, written or removed and
no container made or removed, a listing takes the last scan's records without reading any
file. Whether each owner still runs is asked at every listing, of pidfds held between listings
(skiff.proc.PidfdTable) rather than of /proc.

A kept record is shared by every listing that finds it unchanged: it is read-only. Every
writer already re-reads a record under its lock (``skiff.engine.containers.locked``), so a
listed container is never the one written.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

from skiff import linux
from skiff.errors import SyscallError
from skiff.proc import PidfdTable

if TYPE_CHECKING:
    from skiff.engine.containers import BrokenRecord, Container

# Stale cgroups come from a killed skiff or a failed teardown, rarely: a server listing many
# times a second sweeps for them at most this often (a CLI command sweeps at every listing).
STALE_SWEEP_INTERVAL = 1.0


class ListingCache:
    """Parsed records and list-entry documents by container id, for one process's listings.

    Threads share it (one per connection): the last scan is kept and handed out under a lock
    (a scan begun before a change is never kept); the rest are single dict operations, where a
    race costs at most a parse done twice or dropped.
    """

    def __init__(self) -> None:
        self._records: dict[str, tuple[bytes, Any]] = {}
        self._documents: dict[str, tuple[Any, Any, dict[str, str], dict[str, Any]]] = {}
        self._entries: dict[str, tuple[dict[str, Any], str, dict[str, Any]]] = {}
        self._swept_at: float | None = None
        # The owners' liveness, which every listing checks (skiff.engine.state.orphaned).
        self.processes = PidfdTable()
        self.watch = RecordWatch()
        self._scan: list[dict[str, Any]] | None = None  # the last full scan's records, while unchanged
        self._generation = 0  # counts the changes seen: a scan begun before one is not kept
        self._lock = threading.Lock()

    def unchanged_scan(self, directory: str | os.PathLike[str]) -> tuple[list[dict[str, Any]] | None, int]:
        """The records of the last full scan of ``directory`` if none has changed since (None: scan
        it now, it is watched from now on), and the generation of that scan (for ``scanned``)."""
        with self._lock:
            if self.watch.changed():
                self._generation += 1
                self._scan = None
            if self._scan is None:
                self.watch.watch_top(directory)  # before the scan: what changes during it is seen next time
            return self._scan, self._generation

    def scanned(self, generation: int, good: list[Container], broken: list[BrokenRecord]) -> None:
        """Keep a full scan's records, begun at ``generation``, if nothing changed meanwhile, every
        directory it read is watched, and no record was broken (those are read every time)."""
        with self._lock:
            if generation == self._generation and not broken and self.watch.complete:
                self._scan = [c.data for c in good]

    def record(self, cid: str, raw: bytes, parse: Callable[[bytes], Any]) -> Any:
        """The record of ``cid`` read as ``raw``: the last parse when the bytes are the same."""
        kept = self._records.get(cid)
        if kept is not None and kept[0] == raw:
            return kept[1]
        data = parse(raw)
        self._records[cid] = (raw, data)
        return data

    def document(self, build: Callable[[Any, Any, dict[str, str]], dict[str, Any]], record: Any, network: Any,
                 network_ids: dict[str, str]) -> dict[str, Any]:
        """``build(record, network, network_ids)``, kept while the record is the same object (a kept
        record: same bytes) and the network facts are equal."""
        cid = record["Id"]
        kept = self._documents.get(cid)
        if kept is not None and kept[0] is record and kept[1] == network and kept[2] == network_ids:
            return kept[3]
        document = build(record, network, network_ids)
        self._documents[cid] = (record, network, network_ids, document)
        return document

    def entry(self, document: dict[str, Any], status: str, build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """``build()``: a container's list entry, the very entry of the last listing while its
        document is the same (a kept one) and so is its ``Status`` text. Only the entries that
        changed are made again (and encoded again: skiff.api keeps each entry's encoding), so
        ``Up 5 seconds`` turning ``Up 6 seconds`` costs one entry, not the listing."""
        cid = document["Id"]
        kept = self._entries.get(cid)
        if kept is not None and kept[0] is document and kept[1] == status:
            return kept[2]
        entry = build()
        self._entries[cid] = (document, status, entry)
        return entry

    def close(self) -> None:
        """Let go of the inotify descriptor and the pidfds (a process that ends need not)."""
        self.watch.close()
        self.processes.close()

    def retain(self, found: list[Container]) -> None:
        """Forget the containers a full scan no longer found (removed), and stop watching the
        processes that own none of those found."""
        ids = {c.id for c in found}
        for kept in (self._records, self._documents, self._entries):
            for cid in kept.keys() - ids:
                kept.pop(cid, None)  # another listing may have dropped it
        self.processes.retain({owner.pid for owner in (c.state.owner for c in found) if owner is not None})

    def sweep_due(self) -> bool:
        """Whether the stale-cgroup sweep should run now (then it counts as run)."""
        now = time.monotonic()
        if self._swept_at is not None and now - self._swept_at < STALE_SWEEP_INTERVAL:
            return False
        self._swept_at = now
        return True


# The containers' directory: a container made or removed (a lock file too: told apart by its name).
TOP_MASK = (linux.IN_CREATE | linux.IN_DELETE | linux.IN_MOVED_FROM | linux.IN_MOVED_TO
            | linux.IN_DELETE_SELF | linux.IN_MOVE_SELF | linux.IN_ONLYDIR)
# A container's directory: its record replaced (renamed into place), made, removed, or written in
# place and closed. Not IN_MODIFY: the container's log in the same directory is written line by
# line, and each line would be an event to read; skiff never writes a record in place, and
# whoever does closes it.
CONTAINER_MASK = (linux.IN_CREATE | linux.IN_DELETE | linux.IN_CLOSE_WRITE | linux.IN_MOVED_FROM
                  | linux.IN_MOVED_TO | linux.IN_DELETE_SELF | linux.IN_MOVE_SELF | linux.IN_ONLYDIR)


class RecordWatch:
    """Whether any container record may have changed since the last look, from inotify.

    The containers' directory is watched for containers made and removed, each container's
    directory for its record renamed into place (every write: skiff.store.write_atomic),
    written in place or removed. Unlike file times, which repeat within a clock tick, the
    kernel reports every change; an overflowed queue counts as a change. Where a watch cannot
    be added (the user's watches are used up), ``complete`` is false and every listing scans.
    """

    def __init__(self) -> None:
        self._fd: int | None = None
        self._top: int | None = None
        self.complete = False

    def watch_top(self, directory: str | os.PathLike[str]) -> None:
        """Watch the containers' directory (before it is scanned)."""
        try:
            if self._fd is None:
                self._fd = linux.inotify_init()
            self._top = linux.inotify_add_watch(self._fd, directory, TOP_MASK)
            self.complete = True
        except SyscallError:
            self.complete = False

    def watch_container(self, directory: str) -> None:
        """Watch a container's directory (before its record is read)."""
        if self._fd is None or not self.complete:
            return
        try:
            linux.inotify_add_watch(self._fd, directory, CONTAINER_MASK)
        except SyscallError:
            self.complete = False  # removed meanwhile (seen as a change), or out of watches

    def changed(self) -> bool:
        """Whether a record may have changed since the last call (True before any watch)."""
        from skiff.engine.containers import RECORD  # that module imports this one's types

        if self._fd is None or not self.complete:
            return True
        changed = False
        for wd, mask, name in linux.inotify_events(self._fd):
            if mask & (linux.IN_Q_OVERFLOW | linux.IN_DELETE_SELF | linux.IN_MOVE_SELF):
                changed = True
            elif mask & linux.IN_IGNORED:
                continue  # a watch removed with its directory: the removal was an event of its own
            elif wd == self._top:
                changed = changed or not name.startswith(".")  # not a lock file
            else:
                changed = changed or name == RECORD
        return changed

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self.complete = False
