"""Escape 4: copy-up into a volume that a running container shares and tampers with meanwhile.

A container with the named volume mounted can rename and symlink anything in it
while skiff fills it for a new container. These tests play that container
deterministically: they call copy-up in-process and make the swap at the exact
moment between two steps of the copy, with a host canary file as the prize.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, Callable

import pytest

from skiff.volume import copyup

CANARY_TEXT = b"host canary\n"


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    """A host file on the same filesystem as the volume, so a hard link to it could succeed."""
    host = tmp_path / "host"
    host.mkdir()
    path = host / "f"
    path.write_bytes(CANARY_TEXT)
    os.chmod(path, 0o600)
    return path


def _volume(tmp_path: Path) -> Path:
    data = tmp_path / "volume" / "_data"
    data.mkdir(parents=True)
    return data


def _listdir_hook(monkeypatch: pytest.MonkeyPatch, when: Callable[[list[str]], bool],
                  action: Callable[[], None]) -> None:
    """Sorted listings (a fixed copy order), and ``action`` run once before the listing ``when`` picks."""
    real = os.listdir
    done = []

    def listdir(path: Any = ".") -> list[str]:
        names = sorted(real(path))
        if not done and when(names):
            done.append(True)
            action()
        return names

    monkeypatch.setattr(os, "listdir", listdir)


def test_hard_link_is_never_made_to_a_host_file(tmp_path: Path, canary: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The image: data/a/f and data/b/g are one inode. The copy makes a/f, then links b/g to it.
    data = tmp_path / "rootfs" / "data"
    (data / "a").mkdir(parents=True)
    (data / "b").mkdir()
    (data / "a" / "f").write_bytes(b"image file\n")
    os.link(data / "a" / "f", data / "b" / "g")
    volume = _volume(tmp_path)

    def swap() -> None:
        # The sharing container, after the first copy: volume's a/ becomes a symlink to the host dir.
        os.rename(volume / "a", volume / "a.old")
        os.symlink(canary.parent, volume / "a")

    _listdir_hook(monkeypatch, lambda names: names == ["g"], swap)
    copyup.copy_up(tmp_path / "rootfs", "/data", volume)
    monkeypatch.undo()

    assert os.stat(canary).st_nlink == 1, "copy-up hard-linked a host file into the volume"
    copied = volume / "b" / "g"
    assert os.lstat(copied).st_ino != os.stat(canary).st_ino
    assert copied.read_bytes() == b"image file\n"  # the content still arrives, as a copy
    with open(copied, "r+b") as f:  # what the container would do next
        f.write(b"overwrite")
    assert canary.read_bytes() == CANARY_TEXT


def test_fifo_mode_is_never_set_through_a_symlink(tmp_path: Path, canary: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "rootfs" / "data"
    data.mkdir(parents=True)
    os.mkfifo(data / "p")
    os.chmod(data / "p", 0o4757)
    volume = _volume(tmp_path)
    real_mknod = os.mknod

    def mknod(name: str, mode: int = 0o600, device: int = 0, *, dir_fd: int | None = None) -> None:
        real_mknod(name, mode, device, dir_fd=dir_fd)
        # The sharing container replaces the new node with a symlink to the host file.
        os.unlink(name, dir_fd=dir_fd)
        os.symlink(str(canary), name, dir_fd=dir_fd)

    monkeypatch.setattr(os, "mknod", mknod)
    copyup.copy_up(tmp_path / "rootfs", "/data", volume)
    monkeypatch.undo()

    st = os.stat(canary)
    assert stat.S_IMODE(st.st_mode) == 0o600, f"copy-up chmod'ed the host file to {stat.S_IMODE(st.st_mode):o}"
    assert (st.st_uid, st.st_gid) == (0, 0)


def test_name_made_meanwhile_is_left_alone(tmp_path: Path, canary: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A symlink planted where the copy is about to create a file is neither followed nor fatal."""
    data = tmp_path / "rootfs" / "data"
    data.mkdir(parents=True)
    (data / "x").write_bytes(b"image\n")
    (data / "y").write_bytes(b"image\n")
    volume = _volume(tmp_path)
    _listdir_hook(monkeypatch, lambda names: names == ["x", "y"],
                  lambda: os.symlink(canary, volume / "y"))
    copyup.copy_up(tmp_path / "rootfs", "/data", volume)
    monkeypatch.undo()
    assert canary.read_bytes() == CANARY_TEXT and stat.S_IMODE(os.stat(canary).st_mode) == 0o600
    assert os.path.islink(volume / "y") and (volume / "x").read_bytes() == b"image\n"


def test_nodes_keep_their_mode_without_fchmodat2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On kernels before 6.6 the node is made with its mode (under a zero umask) instead."""
    from skiff.linux import fsat

    data = tmp_path / "rootfs" / "data"
    data.mkdir(parents=True)
    os.mkfifo(data / "p")
    os.chmod(data / "p", 0o666)
    os.mknod(data / "null", stat.S_IFCHR | 0o640, os.makedev(1, 3))
    volume = _volume(tmp_path)
    monkeypatch.setattr(fsat, "_have_fchmodat2", False)
    copyup.copy_up(tmp_path / "rootfs", "/data", volume)
    assert stat.S_IMODE(os.lstat(volume / "p").st_mode) == 0o666
    st = os.lstat(volume / "null")
    assert stat.S_ISCHR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o640 and st.st_rdev == os.makedev(1, 3)
