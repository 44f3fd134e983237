"""Removing cgroups that outlived their container (a killed skiff, a crash)."""

from __future__ import annotations

import os

from skiff.errors import CgroupError


def cleanup_stale(live_ids: set[str], parent: str = "skiff", root: str | os.PathLike[str] | None = None) -> list[str]:
    """Kill and remove every ``/<parent>/<id>`` cgroup whose id is not in ``live_ids``.

    ``live_ids`` must hold every container that may still own a cgroup, those
    being created too. Returns the ids removed; a cgroup that cannot be removed
    now is left for the next call.
    """
    from skiff.cgroups import open as open_cgroup
    from skiff.cgroups.detect import detect

    setup = detect(root)
    mounts = [h.mountpoint for h in setup.v1] + ([setup.unified] if setup.unified else [])
    stale: set[str] = set()
    for mount in mounts:
        try:
            entries = os.scandir(os.path.join(mount, parent))
        except (FileNotFoundError, NotADirectoryError):
            continue
        with entries:
            stale.update(e.name for e in entries if e.is_dir(follow_symlinks=False) and e.name not in live_ids)
    removed = []
    for cid in sorted(stale):
        cgroup = open_cgroup(f"/{parent}/{cid}", root=root)
        try:
            cgroup.kill()
            cgroup.destroy()
        except CgroupError:
            continue
        removed.append(cid)
    return removed
