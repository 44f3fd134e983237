"""Driver-option volumes: tmpfs and bind devices mounted onto _data, shared, counted, released."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from skiff.errors import VolumeError, VolumeInUse
from skiff.paths import Paths
from skiff.volume.driver import mount_users, reconcile, split_options
from skiff.volume.plan import plan_mounts
from skiff.volume.spec import parse_run_mounts
from skiff.volume.store import VolumeStore


def _mounted(path: Path) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == str(path) for line in f)


def _mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if str(path) in line]


@pytest.fixture
def store(tmp_path: Path) -> VolumeStore:
    yield VolumeStore(Paths(tmp_path / "root", tmp_path / "run"))
    assert not _mounts_under(tmp_path), "driver mounts left behind"


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    (tmp_path / "rootfs").mkdir()
    return tmp_path / "rootfs"


def _plan(store: VolumeStore, name: str, cid: str) -> object:
    return plan_mounts(store, parse_run_mounts(volumes=[f"{name}:/v"]), container_id=cid)


def test_split_options() -> None:
    from skiff import linux

    assert split_options("size=64m,uid=1000") == (0, "size=64m,uid=1000")
    assert split_options("bind,ro") == (linux.MS_BIND | linux.MS_RDONLY, "")
    assert split_options("") == (0, "")


def test_tmpfs_volume_shared_and_refcounted(store: VolumeStore, rootfs: Path) -> None:
    volume = store.create("scratch", options={"type": "tmpfs", "device": "tmpfs", "o": "size=4m,uid=1000,mode=0700"})
    first, second = _plan(store, "scratch", "c1"), _plan(store, "scratch", "c2")
    first.prepare(rootfs)
    assert _mounted(volume.data)
    st = os.statvfs(volume.data)
    assert st.f_blocks * st.f_frsize == 4 << 20
    assert os.stat(volume.data).st_uid == 1000
    (volume.data / "hello").write_text("world")
    second.prepare(rootfs)
    assert mount_users(store.paths, "scratch") == ["c1", "c2"]
    assert [line for line in _mounts_under(volume.data)].__len__() == 1  # one mount shared, not stacked
    first.release()
    assert _mounted(volume.data) and (volume.data / "hello").read_text() == "world"
    with pytest.raises(VolumeInUse, match=r"volume is in use - \[c2\]"):
        store.remove("scratch")
    second.release()
    second.release()  # idempotent
    assert not _mounted(volume.data) and os.listdir(volume.data) == []
    assert mount_users(store.paths, "scratch") == []
    store.remove("scratch")


def test_bind_device_volume(store: VolumeStore, rootfs: Path, tmp_path: Path) -> None:
    device = tmp_path / "srv-data"
    device.mkdir()
    (device / "existing").write_text("on the device")
    volume = store.create("srv", options={"type": "none", "device": str(device), "o": "bind"})
    plan = _plan(store, "srv", "c1")
    plan.prepare(rootfs)
    assert _mounted(volume.data)
    assert (volume.data / "existing").read_text() == "on the device"
    (volume.data / "new").write_text("through the volume")
    plan.release()
    assert not _mounted(volume.data)
    assert (device / "new").read_text() == "through the volume"
    store.remove("srv")
    assert (device / "existing").exists(), "removing the volume must not touch the device"


def test_read_only_bind_device(store: VolumeStore, rootfs: Path, tmp_path: Path) -> None:
    device = tmp_path / "ro-src"
    device.mkdir()
    volume = store.create("rosrc", options={"type": "none", "device": str(device), "o": "bind,ro"})
    plan = _plan(store, "rosrc", "c1")
    plan.prepare(rootfs)
    try:
        with pytest.raises(OSError):
            (volume.data / "x").write_text("no")
    finally:
        plan.release()


def test_missing_bind_device_is_a_clear_error(store: VolumeStore, rootfs: Path, tmp_path: Path) -> None:
    store.create("gone", options={"type": "none", "device": str(tmp_path / "nope"), "o": "bind"})
    with pytest.raises(VolumeError, match=f"bind device {tmp_path / 'nope'} does not exist"):
        _plan(store, "gone", "c1").prepare(rootfs)
    assert mount_users(store.paths, "gone") == []


def test_bad_tmpfs_option_is_a_clear_error(store: VolumeStore, rootfs: Path) -> None:
    store.create("badtmp", options={"type": "tmpfs", "device": "tmpfs", "o": "size=lots"})
    with pytest.raises(VolumeError, match="failed to mount local volume badtmp"):
        _plan(store, "badtmp", "c1").prepare(rootfs)
    assert mount_users(store.paths, "badtmp") == []


_HOLDER = """
import os, signal, sys
from pathlib import Path
from skiff.paths import Paths
from skiff.volume.plan import plan_mounts
from skiff.volume.spec import parse_run_mounts
from skiff.volume.store import VolumeStore
store = VolumeStore(Paths(Path(sys.argv[1]), Path(sys.argv[2])))
plan = plan_mounts(store, parse_run_mounts(volumes=["scratch:/v"]), container_id=sys.argv[3])
plan.prepare(Path(sys.argv[4]))
(store.get("scratch").data / "fsynced").write_text("kept")
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_reconcile_after_skiff_is_killed(store: VolumeStore, rootfs: Path) -> None:
    volume = store.create("scratch", options={"type": "tmpfs", "device": "tmpfs", "o": "size=1m"})
    proc = subprocess.run([sys.executable, "-c", _HOLDER, str(store.paths.root), str(store.paths.run_root),
                           "dead1", str(rootfs)], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert _mounted(volume.data) and mount_users(store.paths, "scratch") == ["dead1"]
    # a container still running keeps its mount
    assert reconcile(store.paths, ["dead1"]) == []
    assert _mounted(volume.data)
    # a live skiff that has not recorded its container yet keeps its mount too
    mine = _plan(store, "scratch", "starting")
    mine.prepare(rootfs)
    assert reconcile(store.paths, []) == []
    assert mount_users(store.paths, "scratch") == ["starting"]
    mine.release()
    assert not _mounted(volume.data)
    assert reconcile(store.paths, []) == []


def test_reconcile_unmounts_when_last_user_is_gone(store: VolumeStore, rootfs: Path) -> None:
    volume = store.create("scratch", options={"type": "tmpfs", "device": "tmpfs", "o": "size=1m"})
    proc = subprocess.run([sys.executable, "-c", _HOLDER, str(store.paths.root), str(store.paths.run_root),
                           "dead2", str(rootfs)], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert reconcile(store.paths, ["someone-else"]) == ["scratch"]
    assert not _mounted(volume.data) and mount_users(store.paths, "scratch") == []
