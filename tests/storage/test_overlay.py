"""Overlay root filesystems over the store's layers: whiteouts, many layers, isolation."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Iterator

import pytest

from skiff.image.store import Image, ImageStore
from skiff.paths import Paths
from skiff.storage.overlay import is_mountpoint, mount_rootfs, unmount_rootfs
from tests.image import layers as L


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(Paths(tmp_path / "root", tmp_path / "run"))


@pytest.fixture
def mounted(tmp_path: Path) -> Iterator[list[Path]]:
    """Container dirs to unmount at the end, whatever the test did."""
    dirs: list[Path] = []
    yield dirs
    for directory in dirs:
        unmount_rootfs(directory)


def load(store: ImageStore, layers: list[bytes], tag: str) -> Image:
    store.load(io.BytesIO(L.docker_archive([(layers, [tag])])))
    return store.get(tag)


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_whiteouts_and_opaque_dirs_through_overlay(store: ImageStore, tmp_path: Path,
                                                   mounted: list[Path]) -> None:
    base = L.tar_bytes(L.directory("a"), L.file("a/keep", b"k"), L.file("a/gone", b"g"),
                       L.directory("b"), L.file("b/old1"), L.directory("b/olddir"), L.file("b/olddir/x"),
                       L.directory("c"), L.file("c/file"), L.file("top", b"v1"))
    middle = L.tar_bytes(L.directory("a"), L.whiteout("a", "gone"), L.directory("b"), L.opaque("b"),
                         L.file("b/new", b"n"), L.file("d", b"d"), L.file("top", b"v2"))
    upper = L.tar_bytes(L.whiteout("", "c"), L.directory("a"), L.file("a/added", b"+"))
    image = load(store, [base, middle, upper], "multi:latest")
    assert len(image.layer_dirs) == 3
    container = tmp_path / "c1"
    mounted.append(container)
    rootfs = mount_rootfs(image.layer_dirs, container)
    assert rootfs == container / "rootfs" and is_mountpoint(rootfs)
    assert tree(rootfs) == ["a", "a/added", "a/keep", "b", "b/new", "d", "top"]
    assert (rootfs / "top").read_bytes() == b"v2"
    assert (rootfs / "a/keep").read_bytes() == b"k"


def test_single_layer_rootfs_is_writable_and_private(store: ImageStore, tmp_path: Path,
                                                     mounted: list[Path]) -> None:
    image = load(store, [L.tar_bytes(L.directory("etc"), L.file("etc/hostname", b"img"))], "one:latest")
    first, second = tmp_path / "c1", tmp_path / "c2"
    mounted += [first, second]
    root1 = mount_rootfs(image.layer_dirs, first)
    root2 = mount_rootfs(image.layer_dirs, second)
    (root1 / "etc/hostname").write_bytes(b"changed")
    (root1 / "new-file").write_bytes(b"mine")
    assert (root2 / "etc/hostname").read_bytes() == b"img"
    assert not (root2 / "new-file").exists()
    assert (image.layer_dirs[0] / "etc/hostname").read_bytes() == b"img"
    assert (first / "upper/new-file").read_bytes() == b"mine"


def test_two_hundred_layers_mount(store: ImageStore, tmp_path: Path, mounted: list[Path]) -> None:
    layers = [L.tar_bytes(L.file(f"f{i:03d}", str(i).encode()), L.file("which", str(i).encode()))
              for i in range(200)]
    image = load(store, layers, "tall:latest")
    container = tmp_path / "deep" / ("long-container-directory-name-" * 3) / "c"
    mounted.append(container)
    rootfs = mount_rootfs(image.layer_dirs, container)
    assert len(os.listdir(rootfs)) == 201
    assert (rootfs / "which").read_bytes() == b"199"
    assert (rootfs / "f000").read_bytes() == b"0"
    assert os.getcwd() != str(store.layers_root)


def test_layers_outside_a_store_mount_by_absolute_path(tmp_path: Path, mounted: list[Path]) -> None:
    lower = tmp_path / "plain-lower"
    lower.mkdir()
    (lower / "x").write_text("x")
    container = tmp_path / "c"
    mounted.append(container)
    assert (mount_rootfs([lower], container) / "x").read_text() == "x"


def test_unmount_is_idempotent(store: ImageStore, tmp_path: Path) -> None:
    image = load(store, [L.tar_bytes(L.file("x"))], "x:latest")
    container = tmp_path / "c"
    unmount_rootfs(container)  # never mounted, not even created
    rootfs = mount_rootfs(image.layer_dirs, container)
    unmount_rootfs(container)
    assert not is_mountpoint(rootfs)
    unmount_rootfs(container)


def test_busy_rootfs_is_detached(store: ImageStore, tmp_path: Path) -> None:
    image = load(store, [L.tar_bytes(L.directory("d"))], "busy:latest")
    container = tmp_path / "c"
    rootfs = mount_rootfs(image.layer_dirs, container)
    fd = os.open(rootfs / "d", os.O_RDONLY | os.O_DIRECTORY)
    cwd = os.getcwd()
    os.chdir(rootfs / "d")
    try:
        unmount_rootfs(container)
        assert not is_mountpoint(rootfs)
    finally:
        os.chdir(cwd)
        os.close(fd)
        unmount_rootfs(container)
