"""Removing cgroups that outlived their container (a killed skiff, a crash)."""

from __future__ import annotations

import os

from skiff.errors import CgroupError

TYPE_CHECKING = False   # typing.TYPE_CHECKING without importing typing on the hot path (reconcile)
if TYPE_CHECKING:
    from collections.abc import Callable


def cleanup_stale(live_ids: set[str] | Callable[[], set[str]], parent: str = "skiff",
                  root: str | os.PathLike[str] | None = None,
                  owned: Callable[[str], bool] | None = None, known: set[str] | None = None) -> list[str]:
    """Kill and remove every ``/<parent>/<id>`` cgroup whose id is not in ``live_ids``.

    ``live_ids`` must hold every container that may still own a cgroup, those
    being created too. Given as a callable it is asked only after the scan, so
    a container that makes its cgroup meanwhile is never among those removed.
    ``owned``, if given, limits the removal to the ids it accepts: other skiff
    roots (and skiff-oci) may keep containers under the same parent. ``known``: ids
    the caller has just read as live; when every cgroup found is one of them, nothing
    is stale and ``live_ids`` is not asked. Returns the ids removed; a cgroup that
    cannot be removed now is left for the next call.
    """
    from skiff.cgroups import open as open_cgroup
    from skiff.cgroups.detect import detect

    setup = detect(root)
    mounts = [h.mountpoint for h in setup.v1] + ([setup.unified] if setup.unified else [])
    found: set[str] = set()
    for mount in mounts:
        try:
            entries = os.scandir(os.path.join(mount, parent))
        except (FileNotFoundError, NotADirectoryError):
            continue
        with entries:
            found.update(e.name for e in entries if e.is_dir(follow_symlinks=False))
    if not found or (known is not None and found <= known):
        return []
    live = live_ids() if callable(live_ids) else live_ids
    removed = []
    for cid in sorted(found - live):
        if owned is not None and not owned(cid):
            continue
        cgroup = open_cgroup(f"/{parent}/{cid}", root=root)
        try:
            cgroup.kill()
            cgroup.destroy()
        except CgroupError:
            continue
        removed.append(cid)
    return removed
