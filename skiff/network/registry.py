"""The host's share of skiff networking: which root holds which subnet, bridge, nft table and host port.

Each skiff root keeps its own records, but subnets, link names, nft tables and
host ports belong to the host. So a root writes a *claim* here, under one
host-wide lock, before it makes a bridge or publishes a port, and removes it
when the bridge or endpoint goes. Allocation reads every root's claims, so two
roots never get one subnet or one host port, and a root never deletes a bridge
that another root claims.

A claim is one file, ``<dir>/<root key>-<id>.json``, naming the record it
stands for (a network's or an endpoint's). It is stale, and dropped when next
seen, once that record is gone or holds another id: a root deleted without
``network prune``, or a skiff killed between the record and the claim. The
directory is under /run because bridges and ports end with a reboot too.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from skiff.errors import StateError
from skiff.store import FileLock, read_json, write_json

REGISTRY_DIR = Path("/run/skiff-netreg")


class Registry:
    """One root's view of the host-wide claims; ``lock()`` guards every read-decide-write."""

    def __init__(self, root: Path, key: str, directory: Path = REGISTRY_DIR) -> None:
        self.root = os.path.realpath(root)
        self.key = key
        self.dir = directory

    def lock(self) -> FileLock:
        return FileLock(self.dir / "lock")

    def _path(self, claim_id: str) -> Path:
        return self.dir / f"{self.key}-{claim_id[:16]}.json"

    def holds(self, claim_id: str) -> bool:
        """Whether this root has the claim (a stat: cheap enough for every attach)."""
        return self._path(claim_id).exists()

    def claim(self, claim_id: str, record: Path, **what: Any) -> None:
        """Write this root's claim for the record at ``record`` (call under ``lock()``)."""
        write_json(self._path(claim_id), {"Root": self.root, "Record": str(record), "Id": claim_id, **what},
                   durable=False)

    def release(self, claim_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(claim_id).unlink()

    def others(self) -> list[dict[str, Any]]:
        """The live claims of other roots, dropping stale ones (call under ``lock()``)."""
        if not self.dir.is_dir():
            return []
        found = []
        for path in self.dir.glob("*.json"):
            try:
                claim = read_json(path)
            except StateError:
                claim = None  # a torn write of a killed skiff: nothing can rely on it
            if not _alive(claim):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            elif claim["Root"] != self.root:
                found.append(claim)
        return found


def _alive(claim: Any) -> bool:
    """Whether the record the claim stands for still exists with the claimed id."""
    if not isinstance(claim, dict) or not all(isinstance(claim.get(k), str) for k in ("Root", "Record", "Id")):
        return False
    try:
        record = read_json(Path(claim["Record"]))
    except (StateError, OSError):
        return True  # unreadable is not proof of absence: keep the claim
    return isinstance(record, dict) and record.get("Id") == claim["Id"]
