"""Fixtures of the escape tests: host canaries, a loop device, skiff-oci over a bundle."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from skiff.runtime import default_spec
from tests.conftest import Skiff


@pytest.fixture
def sk(skiff: Skiff, busybox_image: str) -> Iterator[Skiff]:
    """The CLI over the test's root, with every container removed afterwards."""
    yield skiff
    ids = skiff("ps", "-aq", "--no-trunc").stdout.split()
    if ids:
        skiff("rm", "-f", *ids)


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    """A host file no container may read or change."""
    path = tmp_path / "canary"
    path.write_text("HOST-CANARY-7f3a\n")
    return path


class Oci:
    """skiff-oci with a private --root and one bundle over a copy of the busybox rootfs."""

    def __init__(self, tmp_path: Path, busybox_rootfs: Path) -> None:
        self.root = tmp_path / "oci-state"
        self.bundle = tmp_path / "oci-bundle"
        self.tmp = tmp_path
        shutil.copytree(busybox_rootfs, self.bundle / "rootfs", symlinks=True)
        self.spec: dict[str, Any] = default_spec()

    def write(self, args: list[str], cwd: str = "/") -> None:
        self.spec["process"]["args"] = args
        self.spec["process"]["cwd"] = cwd
        (self.bundle / "config.json").write_text(json.dumps(self.spec))

    def __call__(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "skiff.oci.main", "--root", str(self.root), *args]
        # A created container keeps its stdio: files, never pipes the test would wait on.
        with open(self.tmp / "oci.out", "w+") as out, open(self.tmp / "oci.err", "w+") as err:
            proc = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=timeout)
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(command, proc.returncode, out.read(), err.read())

    def cleanup(self) -> None:
        for entry in list(self.root.iterdir()) if self.root.exists() else []:
            self("delete", "--force", entry.name)


@pytest.fixture
def oci(tmp_path: Path, busybox_rootfs: Path) -> Iterator[Oci]:
    runner = Oci(tmp_path, busybox_rootfs)
    yield runner
    left = list(runner.root.iterdir()) if runner.root.exists() else []
    runner.cleanup()
    assert not left, f"skiff-oci containers left behind: {left}"
