"""Real-cgroup fixtures: a unique parent per test session, removed even on failure."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import skiff.cgroups as cgroups
from skiff.cgroups import Cgroup

CGROUP_ROOT = Path("/sys/fs/cgroup")


@pytest.fixture(scope="session")
def test_parent() -> Iterator[str]:
    """``skiff-test-<random>``: never a real ``skiff`` tree; removed from every hierarchy at the end."""
    parent = f"skiff-test-{secrets.token_hex(4)}"
    yield parent
    setup = cgroups.detect()
    mounts = [h.mountpoint for h in setup.v1] + ([setup.unified] if setup.unified else [])
    for mount in mounts:
        try:
            os.rmdir(os.path.join(mount, parent))
        except FileNotFoundError:
            pass


class RealCgroups:
    """Makes cgroups under the test parent and tears every one down, processes included."""

    def __init__(self, parent: str) -> None:
        self.parent = parent
        self.made: list[Cgroup] = []
        self.children: list[subprocess.Popen[bytes]] = []

    def open(self, name: str | None = None) -> Cgroup:
        cg = cgroups.open(f"/{self.parent}/{name or secrets.token_hex(6)}")
        self.made.append(cg)
        return cg

    def child(self, code: str) -> subprocess.Popen[bytes]:
        """A Python child that runs ``code`` only after ``release``: it is in its cgroup first."""
        prelude = "import sys\nsys.stdin.buffer.read(1)\n"
        proc = subprocess.Popen([sys.executable, "-c", prelude + code], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.children.append(proc)
        return proc

    @staticmethod
    def release(proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdin is not None
        proc.stdin.write(b"x")
        proc.stdin.flush()

    def teardown(self) -> None:
        for proc in self.children:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.communicate()
        for cg in self.made:
            cg.kill()
            cg.destroy()


@pytest.fixture
def real(test_parent: str) -> Iterator[RealCgroups]:
    if cgroups.detect().mode == "v2" and "memory" not in (CGROUP_ROOT / "cgroup.controllers").read_text():
        pytest.skip("no usable cgroup controllers on this host")
    helper = RealCgroups(test_parent)
    try:
        yield helper
    finally:
        helper.teardown()
