"""Find the host's cgroup hierarchies: pure v2, pure v1, or hybrid.

One pass over /proc/self/mountinfo, cached: ``skiff run`` asks once per process.
A ``root`` directory can stand in for /sys/fs/cgroup (the tests' fake trees): a
directory holding ``cgroup.controllers`` is a v2 tree; otherwise each
subdirectory holding ``cgroup.procs`` is a v1 hierarchy named after it, and a
``unified`` subdirectory with ``cgroup.controllers`` is the v2 half of a hybrid.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False   # typing.TYPE_CHECKING without importing typing (skiff-oci runs under python -S)
if TYPE_CHECKING:
    from collections.abc import Iterable

    from skiff.mountinfo import Mount

V1_SUBSYSTEMS = frozenset({
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls", "blkio",
    "perf_event", "net_prio", "hugetlb", "pids", "rdma", "misc",
})


# Tuples with named fields, written out: collections.namedtuple imports ``collections``
# (about a millisecond of every skiff-oci create, which runs under ``python -S``), and
# dataclasses cost more still.
class Hierarchy(tuple):
    """One mounted v1 hierarchy: ``mountpoint`` (str) and ``controllers``
    (frozenset, e.g. {"cpu", "cpuacct"} or {"name=systemd"})."""

    __slots__ = ()

    def __new__(cls, mountpoint: str, controllers: frozenset[str]) -> Hierarchy:
        return tuple.__new__(cls, (mountpoint, controllers))

    @property
    def mountpoint(self) -> str:
        return self[0]

    @property
    def controllers(self) -> frozenset[str]:
        return self[1]

    def __repr__(self) -> str:
        return f"Hierarchy(mountpoint={self[0]!r}, controllers={self[1]!r})"


class Setup(tuple):
    """The cgroup layout of this host (or of a fake tree under ``root``).

    ``mode``: "v2", "v1" or "hybrid"; ``v1``: tuple of Hierarchy, empty on a
    pure v2 host; ``unified``: the cgroup2 mountpoint, None on a pure v1 host.
    """

    __slots__ = ()

    def __new__(cls, mode: str, v1: tuple[Hierarchy, ...], unified: str | None) -> Setup:
        return tuple.__new__(cls, (mode, v1, unified))

    @property
    def mode(self) -> str:
        return self[0]

    @property
    def v1(self) -> tuple[Hierarchy, ...]:
        return self[1]

    @property
    def unified(self) -> str | None:
        return self[2]

    def __repr__(self) -> str:
        return f"Setup(mode={self[0]!r}, v1={self[1]!r}, unified={self[2]!r})"

    def v1_mount(self, controller: str) -> str | None:
        for hierarchy in self.v1:
            if controller in hierarchy.controllers:
                return hierarchy.mountpoint
        return None


def detect(root: str | os.PathLike[str] | None = None) -> Setup:
    """Describe the cgroup setup; ``root`` points at a fake tree instead of the host's."""
    return _detect_cached(os.fspath(root) if root is not None else None)


_DETECTED: dict[str | None, Setup] = {}  # per process: mounts under /sys/fs/cgroup do not move


def _detect_cached(root: str | None) -> Setup:
    setup = _DETECTED.get(root)
    if setup is None:
        if root is None:
            from skiff import mountinfo

            setup = setup_from_mounts(mountinfo.read())
        else:
            setup = _setup_from_tree(root)
        if len(_DETECTED) >= 16:  # fake trees of tests: keep the cache small, as lru_cache(16) did
            _DETECTED.clear()
        _DETECTED[root] = setup
    return setup


def setup_from_mountinfo(text: str) -> Setup:
    """The setup a mountinfo text describes."""
    from skiff import mountinfo

    return setup_from_mounts(mountinfo.parse(text))


def setup_from_mounts(mounts: Iterable[Mount]) -> Setup:
    hierarchies: list[Hierarchy] = []
    seen: set[frozenset[str]] = set()
    unified: str | None = None
    for mount in mounts:
        if mount.fstype == "cgroup2" and unified is None:
            unified = mount.mount_point
        elif mount.fstype == "cgroup":
            controllers = frozenset(opt for opt in mount.super_options.split(",")
                                    if opt in V1_SUBSYSTEMS or opt.startswith("name="))
            # A hierarchy bind-mounted twice is still one hierarchy: keep its first mount.
            if controllers and controllers not in seen:
                seen.add(controllers)
                hierarchies.append(Hierarchy(mount.mount_point, controllers))
    return _setup(tuple(hierarchies), unified)


def _setup_from_tree(root: str) -> Setup:
    if os.path.exists(os.path.join(root, "cgroup.controllers")):
        return Setup("v2", (), root)
    hierarchies: list[Hierarchy] = []
    unified: str | None = None
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name)
        if os.path.exists(os.path.join(path, "cgroup.controllers")):
            unified = path
        elif os.path.exists(os.path.join(path, "cgroup.procs")):
            controllers = frozenset(c if c in V1_SUBSYSTEMS else f"name={c}" for c in name.split(","))
            hierarchies.append(Hierarchy(path, controllers))
    return _setup(tuple(hierarchies), unified)


def _setup(hierarchies: tuple[Hierarchy, ...], unified: str | None) -> Setup:
    has_v1_controllers = any(not c.startswith("name=") for h in hierarchies for c in h.controllers)
    if not has_v1_controllers:
        if unified is None:
            from skiff.errors import CgroupError
            raise CgroupError("no cgroup filesystem is mounted (looked in /proc/self/mountinfo)",
                              hint="mount cgroup2 on /sys/fs/cgroup")
        return Setup("v2", (), unified)
    return Setup("hybrid" if unified else "v1", hierarchies, unified)


def memory_features(root: str | os.PathLike[str] | None = None) -> tuple[bool, bool]:
    """Whether the memory controller has memory.swappiness and memory.oom_control: v1's only
    (Docker's sysinfo MemorySwappiness and OomKillDisable). ``root``: a fake tree (tests)."""
    mountpoint = detect(root).v1_mount("memory")
    if mountpoint is None:
        return False, False
    return (os.path.exists(f"{mountpoint}/memory.swappiness"),
            os.path.exists(f"{mountpoint}/memory.oom_control"))
