"""A container whose log fills the disk does not take skiff's root down with it.

The skiff root is a 64 MB ext4 filesystem on a loop device made for the test.
``busybox yes`` without ``max-size`` fills it: the monitor stops growing the log
short of the end (and drops output while there is no room), the container keeps
running, and inspect, logs, ps, stop and rm -f all work; rm -f gives the space
back. Then, with the disk truly full (a root-owned filler takes the last block),
commands that only read or remove still work, and one that must write fails
with one line that names the file. The loop device is always detached.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Skiff

DROPPED = b"bytes of the container's output were dropped: no space left for its log"


@pytest.fixture
def small_root(tmp_path: Path, skiff_env: dict[str, str], busybox_tar: Path) -> Iterator[Skiff]:
    """The CLI with its root on a fresh 64 MB ext4 loop mount (busybox imported), all undone after."""
    image, mountpoint = tmp_path / "disk.img", tmp_path / "small-root"
    mountpoint.mkdir()
    with open(image, "wb") as f:
        f.truncate(64 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
    loop = subprocess.run(["losetup", "--find", "--show", str(image)], capture_output=True, text=True,
                          check=True).stdout.strip()
    skiff = None
    try:
        subprocess.run(["mount", loop, str(mountpoint)], check=True)
        env = dict(skiff_env, SKIFF_ROOT=str(mountpoint))
        skiff = Skiff(env)
        skiff.ok("import", str(busybox_tar), "busybox:latest")
        yield skiff
    finally:
        if skiff is not None:
            ids = skiff("ps", "-aq", "--no-trunc").stdout.split()
            if ids:
                skiff("rm", "-f", *ids)
        # With everything below it (a rootfs that a failed rm left mounted); lazily if it is still busy.
        if subprocess.run(["umount", "-R", str(mountpoint)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-R", "-l", str(mountpoint)], capture_output=True)
        subprocess.run(["losetup", "-d", loop], capture_output=True)
        attached = subprocess.run(["losetup", "-j", str(image)], capture_output=True, text=True).stdout
        assert not attached, f"loop device left attached: {attached}"


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def wait_until_log_stops_growing(log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    size, since = -1, time.monotonic()
    while time.monotonic() - since < 2:
        assert time.monotonic() < deadline, f"the log never stopped growing ({size} bytes)"
        now = log.stat().st_size
        if now != size:
            size, since = now, time.monotonic()
        time.sleep(0.1)


def fill_to_the_last_byte(path: Path) -> None:
    """Write as root until not even one more byte fits."""
    with open(path, "wb", buffering=0) as f:
        for size in (1 << 16, 1 << 12, 1 << 9, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError:
                pass
    with open(path, "ab", buffering=0) as f, pytest.raises(OSError):
        f.write(b"\0")
        os.fsync(f.fileno())


def running(skiff: Skiff, name: str) -> int:
    """The container's pid, after checking that ``inspect`` works and says it runs."""
    proc = skiff("inspect", name)
    assert proc.returncode == 0, proc.stderr
    state = json.loads(proc.stdout)[0]["State"]
    assert state["Status"] == "running" and os.path.exists(f"/proc/{state['Pid']}"), state
    return int(state["Pid"])


@pytest.mark.slow
def test_log_filling_the_disk_leaves_the_root_usable(small_root: Skiff) -> None:
    skiff = small_root
    filler = skiff.root / "filler"  # space the test gives back later, to see logging resume
    with open(filler, "wb") as f:
        f.write(b"\0" * (4 << 20))
    skiff.ok("run", "-d", "--network", "none", "--name", "yes", "busybox", "yes")
    log = Path(json.loads(skiff.ok("inspect", "yes"))[0]["LogPath"])
    wait_until_log_stops_growing(log)
    assert free_bytes(skiff.root) < 4 << 20, "the log did not fill the disk"
    pid = running(skiff, "yes")  # the monitor is alive, so is its container

    # Read and write commands on a nearly full disk.
    assert skiff.ok("logs", "--tail", "2", "yes") == "y\ny\n"
    assert "yes" in skiff.ok("ps", "-a")

    # Room again: logging resumes, and one entry says what was lost.
    filler.unlink()
    deadline = time.monotonic() + 10
    while DROPPED not in log.read_bytes()[-(8 << 20):]:
        assert time.monotonic() < deadline, "no entry says that output was dropped"
        time.sleep(0.2)
    wait_until_log_stops_growing(log)
    assert running(skiff, "yes") == pid

    # The disk truly full (root's reserved blocks too): reading and removing need no space.
    fill_to_the_last_byte(skiff.root / "filler")
    assert running(skiff, "yes") == pid
    assert skiff.ok("logs", "--tail", "1", "yes") == "y\n"
    assert "yes" in skiff.ok("ps", "-a")
    failed = skiff("run", "--rm", "--network", "none", "busybox", "true")
    assert failed.returncode == 125 and "No space left on device" in failed.stderr, failed.stderr
    assert str(skiff.root) in failed.stderr and len(failed.stderr.strip().splitlines()) == 1, failed.stderr
    (skiff.root / "filler").unlink()

    proc = skiff("stop", "-t", "1", "yes")
    assert proc.returncode == 0, proc.stderr
    state = json.loads(skiff.ok("inspect", "yes"))[0]["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 137, state
    proc = skiff("rm", "-f", "yes")
    assert proc.returncode == 0, proc.stderr
    assert free_bytes(skiff.root) > 40 << 20, "rm -f did not give the space back"
    assert skiff("run", "--rm", "--network", "none", "busybox", "true").returncode == 0


@pytest.mark.slow
def test_rm_force_on_a_full_disk_frees_it(small_root: Skiff) -> None:
    """rm -f writes nothing before it removes: it works with not one free block."""
    skiff = small_root
    skiff.ok("run", "-d", "--network", "none", "--name", "yes", "busybox", "yes")
    log = Path(json.loads(skiff.ok("inspect", "yes"))[0]["LogPath"])
    wait_until_log_stops_growing(log)
    fill_to_the_last_byte(skiff.root / "filler")
    proc = skiff("rm", "-f", "yes")
    assert proc.returncode == 0, proc.stderr
    assert skiff.ok("ps", "-aq") == ""
    assert not log.exists()
