"""A fake cgroup2 filesystem in a temporary directory, faithful where skiff looks.

Plain directories cannot act like cgroupfs by themselves, so ``FakeKernel``
stands in for the two calls where cgroupfs differs: ``mkdir`` populates the new
cgroup with the interface files of the controllers its parent enables in
``cgroup.subtree_control`` (values as a fresh kernel cgroup has them), and
``rmdir`` refuses a cgroup with processes or children (EBUSY / ENOTEMPTY) and
removes the interface files with the directory. Writes land in the files
verbatim, so tests read back exactly what skiff wrote. Device filters (eBPF
programs, which a plain directory cannot take) are recorded per directory by
``attach_device_filter``, the fake for ``V2Cgroup``'s ``device_filter`` seam.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

CORE_FILES = {
    "cgroup.procs": "", "cgroup.threads": "", "cgroup.subtree_control": "", "cgroup.type": "domain\n",
    "cgroup.events": "populated 0\nfrozen 0\n", "cgroup.freeze": "0\n", "cgroup.kill": "",
    "cgroup.max.depth": "max\n", "cgroup.max.descendants": "max\n", "cgroup.stat": "nr_descendants 0\n",
    "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\n",
}
CONTROLLER_FILES = {
    "memory": {"memory.max": "max\n", "memory.low": "0\n", "memory.high": "max\n", "memory.min": "0\n",
               "memory.current": "0\n", "memory.swap.max": "max\n", "memory.swap.current": "0\n",
               "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
               "memory.stat": "anon 0\nfile 0\ninactive_file 0\n"},
    "cpu": {"cpu.max": "max 100000\n", "cpu.weight": "100\n", "cpu.weight.nice": "0\n"},
    "cpuset": {"cpuset.cpus": "\n", "cpuset.mems": "\n", "cpuset.cpus.effective": "0-1\n",
               "cpuset.mems.effective": "0\n"},
    "pids": {"pids.max": "max\n", "pids.current": "0\n", "pids.events": "max 0\n"},
    "io": {"io.weight": "default 100\n", "io.max": "", "io.stat": ""},
}
ROOT_CONTROLLERS = "cpuset cpu io memory hugetlb pids rdma misc"


class FakeKernel:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        (root / "cgroup.controllers").write_text(ROOT_CONTROLLERS + "\n")
        for name in ("cgroup.procs", "cgroup.subtree_control", "cgroup.threads", "cgroup.stat",
                     "cpu.stat", "cgroup.max.depth"):
            (root / name).write_text(CORE_FILES.get(name, ""))
        self.mkdirs: list[str] = []
        self.device_filters: dict[str, list[list[dict]]] = {}   # directory -> rule lists, in attach order

    def attach_device_filter(self, directory: str, rules: list[dict]) -> None:
        if not Path(directory).is_dir():   # the real one opens the directory first
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), directory)
        self.device_filters.setdefault(directory, []).append([dict(rule) for rule in rules])

    def mkdir(self, path: str) -> bool:
        directory = Path(path)
        if directory.exists():
            return False
        subtree = self.enabled(directory.parent)
        directory.mkdir()
        self.mkdirs.append(path)
        (directory / "cgroup.controllers").write_text(" ".join(subtree) + "\n")
        for name, content in CORE_FILES.items():
            (directory / name).write_text(content)
        for controller in subtree:
            for name, content in CONTROLLER_FILES.get(controller, {}).items():
                (directory / name).write_text(content)
        return True

    @staticmethod
    def enabled(directory: Path) -> list[str]:
        """Controllers enabled in ``directory``: the kernel applies "+x -y" writes; here they are replayed."""
        enabled: list[str] = []
        for token in (directory / "cgroup.subtree_control").read_text().split():
            name = token.lstrip("+-")
            if token.startswith("-"):
                enabled = [c for c in enabled if c != name]
            elif name not in enabled:
                enabled.append(name)
        return enabled

    def rmdir(self, path: str) -> None:
        directory = Path(path)
        if not directory.is_dir():
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        if any(child.is_dir() for child in directory.iterdir()):
            raise OSError(errno.ENOTEMPTY, os.strerror(errno.ENOTEMPTY), path)
        if (directory / "cgroup.procs").read_text().split():
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), path)
        shutil.rmtree(directory)
        self.device_filters.pop(path, None)   # the kernel frees a cgroup's programs with it

    def read(self, path: str) -> str:
        return (self.root / path).read_text()

    def set(self, path: str, content: str) -> None:
        (self.root / path).write_text(content)


def installed_fake_v2(root: Path, monkeypatch: "pytest.MonkeyPatch") -> FakeKernel:
    """A fake v2 tree at ``root`` that skiff's cgroup code writes to: mkdir, rmdir and the
    device filter go to the fake kernel for the rest of the test."""
    from skiff.cgroups import fs, v2

    fake = FakeKernel(root)
    monkeypatch.setattr(fs, "mkdir", fake.mkdir)
    monkeypatch.setattr(fs, "rmdir", fake.rmdir)
    monkeypatch.setattr(v2, "attach_device_filter", fake.attach_device_filter)
    return fake
