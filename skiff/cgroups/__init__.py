"""Cgroups v1, v2 and hybrid behind one interface; applies OCI ``linux.resources``.

The runtime core, between forking the container's init and releasing it::

    cg = cgroups.open("/skiff/<id>")       # detects v2, v1 or hybrid
    cg.create(resources)                   # validates, makes the directories, writes the limits
    cg.add(pid)                            # before the container execs
    ...
    cg.oom_killed(); cg.stats(); cg.destroy()

Only cgroups live here: the engine turns Docker's flags into ``linux.resources`` (its
``resources`` module) and ``--ulimit`` into ``process.rlimits`` (``ulimits``), and computes
``skiff stats``' columns (``stats``) from the ``Stats`` samples taken here.
``cleanup_stale`` removes what a killed skiff left.
"""

from __future__ import annotations

import os

from skiff.cgroups.base import Cgroup, relative_path
from skiff.cgroups.detect import Hierarchy, Setup, detect

TYPE_CHECKING = False
if TYPE_CHECKING:  # the real types for checkers; at run time __getattr__ imports them on first use
    from skiff.cgroups.stale import cleanup_stale
    from skiff.cgroups.stats import Stats

__all__ = ["Cgroup", "Hierarchy", "Setup", "Stats", "cleanup_stale", "detect", "open", "relative_path"]


def open(cgroups_path: str, root: str | os.PathLike[str] | None = None) -> Cgroup:  # noqa: A001
    """The container's cgroup at ``cgroups_path`` (OCI linux.cgroupsPath, e.g. ``/skiff/<id>``).

    ``root`` replaces /sys/fs/cgroup with a fake tree (tests). Nothing is created
    until ``create``.
    """
    setup = detect(root)
    if setup.mode == "v2":
        from skiff.cgroups.v2 import V2Cgroup
        assert setup.unified is not None
        return V2Cgroup(setup.unified, cgroups_path)
    from skiff.cgroups.v1 import V1Cgroup
    return V1Cgroup(setup, cgroups_path)


def __getattr__(name: str) -> object:
    """``Stats`` and ``cleanup_stale``, imported on first use.

    The runtime path of ``skiff run`` (and skiff-oci's create) does not pay for their
    imports (stats' namedtuples load ``collections``, about a millisecond).
    """
    if name == "Stats":
        from skiff.cgroups.stats import Stats
        return Stats
    if name == "cleanup_stale":
        from skiff.cgroups.stale import cleanup_stale
        return cleanup_stale
    raise AttributeError(f"module 'skiff.cgroups' has no attribute {name!r}")
