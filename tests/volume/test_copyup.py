"""Copy-up into new empty volumes: owners, modes, links, xattrs; never anything from the host."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from skiff.paths import Paths
from skiff.volume.copyup import copy_up
from skiff.volume.plan import plan_mounts
from skiff.volume.spec import parse_run_mounts
from skiff.volume.store import VolumeStore


@pytest.fixture
def store(tmp_path: Path) -> VolumeStore:
    return VolumeStore(Paths(tmp_path / "root", tmp_path / "run"))


def _image_content(rootfs: Path) -> Path:
    data = rootfs / "var" / "lib" / "app"
    (data / "sub").mkdir(parents=True)
    os.chown(data, 123, 456)
    os.chmod(data, 0o750)
    (data / "conf").write_text("setting=1\n")
    os.chown(data / "conf", 1000, 1001)
    os.chmod(data / "conf", 0o640)
    (data / "suid").write_text("#!/bin/sh\n")
    os.chmod(data / "suid", 0o4755)
    (data / "sub" / "deep").write_bytes(b"\0" * 200_000)
    os.chmod(data / "sub", 0o1777)
    os.link(data / "conf", data / "sub" / "hard")
    os.symlink("../conf", data / "sub" / "link")
    os.symlink("/etc/passwd", data / "abs-link")
    os.lchown(data / "abs-link", 7, 8)
    os.mkfifo(data / "fifo", 0o600)
    os.setxattr(data / "conf", "user.note", b"kept")
    os.utime(data / "conf", ns=(1_000_000_000, 2_000_000_000))
    return data


def test_copy_keeps_owners_modes_links(store: VolumeStore, tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    _image_content(rootfs)
    volume = store.create("app")
    assert copy_up(rootfs, "/var/lib/app", volume.data) is True
    d = volume.data
    st = os.stat(d)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (123, 456, 0o750)
    st = os.stat(d / "conf")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 1001, 0o640)
    assert st.st_mtime_ns == 2_000_000_000 and (d / "conf").read_text() == "setting=1\n"
    assert os.getxattr(d / "conf", "user.note") == b"kept"
    assert stat.S_IMODE(os.stat(d / "suid").st_mode) == 0o4755
    assert stat.S_IMODE(os.stat(d / "sub").st_mode) == 0o1777
    assert (d / "sub" / "deep").read_bytes() == b"\0" * 200_000
    assert os.stat(d / "sub" / "hard").st_ino == st.st_ino and st.st_nlink == 2
    assert os.readlink(d / "sub" / "link") == "../conf"
    assert os.readlink(d / "abs-link") == "/etc/passwd"
    assert (os.lstat(d / "abs-link").st_uid, os.lstat(d / "abs-link").st_gid) == (7, 8)
    assert stat.S_ISFIFO(os.lstat(d / "fifo").st_mode)


def test_no_copy_into_non_empty_volume_or_from_missing_target(store: VolumeStore, tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    _image_content(rootfs)
    volume = store.create("app")
    (volume.data / "mine").write_text("x")
    assert copy_up(rootfs, "/var/lib/app", volume.data) is False
    assert os.listdir(volume.data) == ["mine"]
    empty = store.create("other")
    assert copy_up(rootfs, "/does/not/exist", empty.data) is False
    assert copy_up(rootfs, "/var/lib/app/conf", empty.data) is False  # a file, not a directory
    assert os.listdir(empty.data) == []


@pytest.mark.parametrize("link", ["/etc", "../../../../../../etc", "/proc/self/root/etc"])
def test_hostile_symlink_copies_container_etc_never_host(store: VolumeStore, tmp_path: Path, link: str) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "container-only").write_text("inside\n")
    os.symlink(link, rootfs / "data")
    plan = plan_mounts(store, parse_run_mounts(volumes=["/data"]), container_id="c1")
    plan.prepare(rootfs)
    data = store.get(plan.anonymous_volumes()[0]).data
    copied = sorted(os.listdir(data))
    assert "passwd" not in copied and "hostname" not in copied
    # /proc is not in this rootfs: resolved inside it, the magic link leads nowhere
    assert copied == ([] if link.startswith("/proc") else ["container-only"])
    plan.release(remove_anonymous=True)


def test_nocopy(store: VolumeStore, tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    _image_content(rootfs)
    plan = plan_mounts(store, parse_run_mounts(volumes=["app:/var/lib/app:nocopy"]), container_id="c1")
    plan.prepare(rootfs)
    assert os.listdir(store.get("app").data) == []


def test_bind_mounts_never_copy(store: VolumeStore, tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    _image_content(rootfs)
    host = tmp_path / "host"
    plan = plan_mounts(store, parse_run_mounts(volumes=[f"{host}:/var/lib/app"]), container_id="c1")
    plan.prepare(rootfs)
    assert os.listdir(host) == []
