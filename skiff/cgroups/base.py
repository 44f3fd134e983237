"""What every cgroup flavour shares: the container's path, teardown, killing leftovers."""

from __future__ import annotations

import os
import time

from skiff import explain
from skiff.cgroups import fs
from skiff.cgroups.resources import check
from skiff.errors import CgroupError

TYPE_CHECKING = False   # typing.TYPE_CHECKING without importing typing on the hot path
if TYPE_CHECKING:  # collections.abc imports collections: a millisecond of every create
    from collections.abc import Mapping
    from typing import Any

    from skiff.cgroups.stats import Stats

DESTROY_TIMEOUT_S = 5.0


def relative_path(cgroups_path: str) -> str:
    """OCI ``linux.cgroupsPath`` as a path relative to each hierarchy's root.

    ``..`` and ``.`` are refused so that no path from a bundle can name a cgroup
    outside the hierarchy (or reach a sibling's).
    """
    if not isinstance(cgroups_path, str) or not cgroups_path.strip("/"):
        raise CgroupError(f"invalid cgroupsPath {cgroups_path!r}: expected a path like /skiff/<id>")
    if ":" in cgroups_path:
        raise CgroupError(f"invalid cgroupsPath {cgroups_path!r}: systemd slice notation is not supported",
                          hint="use a path like /skiff/<id>")
    parts = [part for part in cgroups_path.split("/") if part]
    if any(part in (".", "..") or "\0" in part for part in parts):
        raise CgroupError(f"invalid cgroupsPath {cgroups_path!r}: '.' and '..' are not allowed")
    return "/".join(parts)


class Cgroup:
    """One container's cgroup, in every hierarchy the host uses.

    ``create`` validates the OCI ``linux.resources`` and writes the limits;
    ``add`` moves a process in (before it execs its command); ``destroy`` waits
    until the cgroup is empty and removes it, idempotently.
    """

    version: int = 0

    def __init__(self, path: str) -> None:
        self.path = relative_path(path)
        self.dirs: list[str] = []
        self.warnings: list[str] = []   # things the engine may print (e.g. no swap accounting)

    # --- the interface the runtime core uses -------------------------------
    def create(self, resources: Mapping[str, Any] | None = None) -> None:
        """Check ``resources``, make the directories and write the limits; on failure remove what was made."""
        check(resources)
        self._check_supported(resources)
        created: list[str] = []
        try:
            self._make_dirs(created)
            if explain.on:
                explain.step(explain.CGROUPS, f"the container's cgroup (cgroup v{self.version}): each limit is a file "
                             "written in it", "", None)
            self._apply(resources or {})
        except BaseException:
            fs.remove_trees(reversed(created), time.monotonic() + DESTROY_TIMEOUT_S)
            raise

    def update(self, resources: Mapping[str, Any]) -> None:
        check(resources)
        self._check_supported(resources)
        self._apply(resources)

    def add(self, pid: int) -> None:
        for directory in self.dirs:
            fs.write(os.path.join(directory, "cgroup.procs"), pid)

    def pids(self) -> list[int]:
        return fs.read_pids(os.path.join(self._procs_dir(), "cgroup.procs"))

    def stats(self) -> Stats:
        raise NotImplementedError

    def oom_killed(self) -> bool:
        raise NotImplementedError

    def freeze(self) -> None:
        raise NotImplementedError

    def thaw(self) -> None:
        raise NotImplementedError

    def exists(self) -> bool:
        return any(os.path.isdir(directory) for directory in self.dirs)

    def kill(self, timeout: float = DESTROY_TIMEOUT_S) -> None:
        """SIGKILL every process inside until none is left (for leftovers of a dead container).

        Frozen processes cannot die, so the cgroup is thawed first.
        """
        if not self.exists():
            return
        import signal

        deadline = time.monotonic() + timeout
        self.thaw()
        while pids := self.pids():
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if time.monotonic() >= deadline:
                raise CgroupError(f"processes {pids} in cgroup {self.path} survive SIGKILL")
            time.sleep(0.005)

    def destroy(self, timeout: float = DESTROY_TIMEOUT_S) -> None:
        """Remove the cgroup from every hierarchy; waits (EBUSY) up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        for directory in self.dirs:
            fs.remove_tree(directory, deadline)

    # --- what each flavour provides ----------------------------------------------
    def _check_supported(self, resources: Mapping[str, Any] | None) -> None:
        """Refuse a limit whose controller this host does not have."""
        raise NotImplementedError

    def _make_dirs(self, created: list[str]) -> None:
        """Make the cgroup's directories, appending each one made to ``created``."""
        raise NotImplementedError

    def _apply(self, resources: Mapping[str, Any]) -> None:
        raise NotImplementedError

    # --- helpers ------------------------------------------------------------
    def _procs_dir(self) -> str:
        return self.dirs[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r}, dirs={self.dirs!r})"
