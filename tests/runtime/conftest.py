"""Fixtures for the runtime core: hand-written bundles over a copy of the busybox rootfs."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from skiff.runtime import Runtime, default_spec


@dataclass
class Result:
    code: int
    out: str
    err: str


class BundleFactory:
    """One bundle (config.json + rootfs copy) and a runtime with a private state root."""

    def __init__(self, tmp_path: Path, busybox_rootfs: Path) -> None:
        self.tmp = tmp_path
        self.path = tmp_path / "bundle"
        self.rootfs = self.path / "rootfs"
        shutil.copytree(busybox_rootfs, self.rootfs, symlinks=True)
        self.state_root = tmp_path / "state"
        self.runtime = Runtime(self.state_root)
        self.spec: dict[str, Any] = default_spec()

    def write(self, args: list[str] | None = None, **changes: Any) -> Path:
        if args is not None:
            self.spec["process"]["args"] = args
        for key, value in changes.items():
            self.spec[key] = value
        (self.path / "config.json").write_text(json.dumps(self.spec))
        return self.path

    def stdio(self, name: str = "io") -> tuple[tuple[int, int, int], Path, Path]:
        out, err = self.tmp / f"{name}.out", self.tmp / f"{name}.err"
        fds = (os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC),
               os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644),
               os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644))
        return fds, out, err

    def run(self, args: list[str] | None = None, cid: str = "c1", **changes: Any) -> Result:
        self.write(args, **changes)
        fds, out, err = self.stdio()
        try:
            code = self.runtime.run(cid, self.path, stdio=fds)
        finally:
            for fd in fds:
                os.close(fd)
        return Result(code, out.read_text(), err.read_text())

    def sh(self, script: str, **changes: Any) -> Result:
        return self.run(["sh", "-c", script], **changes)


@pytest.fixture
def bundle(tmp_path: Path, busybox_rootfs: Path) -> BundleFactory:
    factory = BundleFactory(tmp_path, busybox_rootfs)
    yield factory
    # Every test must leave its state root empty: no half-made or forgotten container.
    leftovers = list(factory.state_root.iterdir()) if factory.state_root.exists() else []
    for entry in leftovers:
        try:
            factory.runtime.delete(entry.name, force=True)
        except Exception:  # noqa: BLE001 - cleaning up after a failed test
            pass
    assert not leftovers, f"runtime state left behind: {leftovers}"


def _mount_table(tmp_path: Path) -> list[str]:
    """The host's mounts, minus those other suites running beside this one make and remove.

    A mount leaked by a container would show under its rootfs (in tmp_path) or on a host
    path (/proc, /sys, /dev, /etc...), never in another test's temporary directory; and the
    runtime makes no nsfs mounts (those are the network tests' namespaces).
    """
    lines = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mountpoint, fstype = fields[4], fields[fields.index("-") + 1]
            if fstype == "nsfs" or mountpoint.startswith("/run/netns/"):
                continue
            if mountpoint.startswith("/tmp/") and not mountpoint.startswith(str(tmp_path)):
                continue
            lines.append(line)
    return sorted(lines)


@pytest.fixture(autouse=True)
def host_mounts_unchanged(tmp_path: Path) -> object:
    before = _mount_table(tmp_path)
    yield
    assert _mount_table(tmp_path) == before, "the host's mount table changed"
