"""Layers unpack faithfully, and nothing in a hostile layer reaches outside the store."""

from __future__ import annotations

import gzip
import io
import os
import stat
from pathlib import Path

import pytest

from skiff.errors import DigestMismatch, LayerError
from skiff.image.store import ImageStore
from skiff.paths import Paths
from tests.image import layers as L


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(Paths(tmp_path / "root", tmp_path / "run"))


def add(store: ImageStore, data: bytes, **kwargs: object) -> Path:
    info = store.add_layer(io.BytesIO(data), **kwargs)  # type: ignore[arg-type]
    return store.layers_root / info.diff_id[7:] / "diff"


def test_owners_modes_times_xattrs_devices_links(store: ImageStore) -> None:
    layer = L.tar_bytes(
        L.directory("srv", mode=0o750, uid=1000, gid=1001, mtime=1_000_000),
        L.file("srv/suid", b"#!/bin/sh\n", mode=0o4755, uid=0, gid=0, mtime=1_100_000),
        L.file("srv/sgid", b"x", mode=0o2711, uid=5, gid=6, mtime=1_200_000),
        L.directory("srv/sticky", mode=0o1777, mtime=1_300_000),
        L.file("srv/attrs", b"a", xattrs={"user.colour": "blue", "trusted.skiff": "t",
                                          "trusted.overlay.redirect": "/etc"}),
        L.hardlink("srv/attrs-link", "srv/attrs"),
        L.symlink("srv/abs", "/bin/busybox", uid=7, gid=8),
        L.symlink("srv/rel", "../etc/passwd"),
        L.device("srv/null", 1, 3, mode=0o666),
        L.device("srv/loop", 7, 0, block=True, mode=0o660),
        L.fifo("srv/pipe", mode=0o620),
    )
    diff = add(store, layer)
    srv = os.lstat(diff / "srv")
    assert (stat.S_IMODE(srv.st_mode), srv.st_uid, srv.st_gid, srv.st_mtime) == (0o750, 1000, 1001, 1_000_000)
    suid = os.lstat(diff / "srv/suid")
    assert (stat.S_IMODE(suid.st_mode), suid.st_mtime) == (0o4755, 1_100_000)
    assert (diff / "srv/suid").read_bytes() == b"#!/bin/sh\n"
    sgid = os.lstat(diff / "srv/sgid")
    assert (stat.S_IMODE(sgid.st_mode), sgid.st_uid, sgid.st_gid) == (0o2711, 5, 6)
    sticky = os.lstat(diff / "srv/sticky")
    assert stat.S_ISDIR(sticky.st_mode) and stat.S_IMODE(sticky.st_mode) == 0o1777
    assert os.getxattr(diff / "srv/attrs", "user.colour") == b"blue"
    assert os.getxattr(diff / "srv/attrs", "trusted.skiff") == b"t"
    assert "trusted.overlay.redirect" not in os.listxattr(diff / "srv/attrs")
    assert os.lstat(diff / "srv/attrs").st_ino == os.lstat(diff / "srv/attrs-link").st_ino
    assert os.readlink(diff / "srv/abs") == "/bin/busybox"
    assert (os.lstat(diff / "srv/abs").st_uid, os.lstat(diff / "srv/abs").st_gid) == (7, 8)
    assert os.readlink(diff / "srv/rel") == "../etc/passwd"
    null = os.lstat(diff / "srv/null")
    assert stat.S_ISCHR(null.st_mode) and os.major(null.st_rdev) == 1 and os.minor(null.st_rdev) == 3
    assert stat.S_IMODE(null.st_mode) == 0o666
    loop = os.lstat(diff / "srv/loop")
    assert stat.S_ISBLK(loop.st_mode) and (os.major(loop.st_rdev), os.minor(loop.st_rdev)) == (7, 0)
    pipe = os.lstat(diff / "srv/pipe")
    assert stat.S_ISFIFO(pipe.st_mode) and stat.S_IMODE(pipe.st_mode) == 0o620


def test_whiteouts_become_overlay_whiteouts(store: ImageStore) -> None:
    diff = add(store, L.tar_bytes(L.directory("etc"), L.whiteout("etc", "gone"), L.opaque("etc"),
                                  L.file("etc/kept", b"k")))
    gone = os.lstat(diff / "etc/gone")
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == 0
    assert os.getxattr(diff / "etc", "trusted.overlay.opaque") == b"y"
    assert sorted(os.listdir(diff / "etc")) == ["gone", "kept"]


def test_later_entries_replace_earlier_ones(store: ImageStore) -> None:
    diff = add(store, L.tar_bytes(L.file("a", b"1"), L.file("a", b"2"), L.directory("d"), L.file("d/x"),
                                  L.file("d", b"now a file"), L.symlink("s", "x"), L.directory("s")))
    assert (diff / "a").read_bytes() == b"2"
    assert (diff / "d").read_bytes() == b"now a file"
    assert (diff / "s").is_dir() and not (diff / "s").is_symlink()


@pytest.mark.parametrize("compress", ["none", "gzip", "zstd"])
def test_compressed_layers_hash_their_uncompressed_content(store: ImageStore, compress: str) -> None:
    import zstandard

    raw = L.tar_bytes(L.file("hello", b"world"))
    blob = {"none": raw, "gzip": gzip.compress(raw), "zstd": zstandard.ZstdCompressor().compress(raw)}[compress]
    info = store.add_layer(io.BytesIO(blob), expected_diff_id=L.digest(raw))
    assert info.diff_id == L.digest(raw) and info.digest == L.digest(blob) and info.size == len(raw)
    assert info.media_type.endswith({"none": ".tar", "gzip": "+gzip", "zstd": "+zstd"}[compress])
    assert (store.layers_root / info.diff_id[7:] / "diff" / "hello").read_bytes() == b"world"
    assert store.blob_path(info.digest).read_bytes() == blob


def test_digest_mismatch_stores_nothing(store: ImageStore) -> None:
    raw = L.tar_bytes(L.file("hello", b"world"))
    with pytest.raises(DigestMismatch):
        store.add_layer(io.BytesIO(raw), expected_diff_id=L.digest(b"something else"))
    with pytest.raises(DigestMismatch):
        store.add_layer(io.BytesIO(raw), expected_digest=L.digest(b"something else"))
    assert_store_empty(store)


def test_truncated_layer_is_refused(store: ImageStore) -> None:
    raw = L.tar_bytes(L.file("big", os.urandom(100_000)))
    with pytest.raises(LayerError):
        store.add_layer(io.BytesIO(gzip.compress(raw)[:5000]))
    assert_store_empty(store)


class _OneWay:
    """A download as ``add_layer`` sees it: ``read`` only, in small uneven pieces, no ``seek``."""

    def __init__(self, data: bytes, piece: int = 1000) -> None:
        self._data = data
        self._piece = piece

    def read(self, size: int = -1) -> bytes:
        size = min(self._piece, len(self._data) if size < 0 else size)
        data, self._data = self._data[:size], self._data[size:]
        self._piece = self._piece % 997 + 3  # uneven, so pieces split headers and magic bytes
        return data


@pytest.mark.parametrize("compress", ["none", "gzip", "zstd"])
def test_layer_unpacks_from_a_forward_only_stream(store: ImageStore, compress: str) -> None:
    import zstandard

    content = os.urandom(300_000)
    raw = L.tar_bytes(L.directory("d"), L.file("d/big", content), L.file("d/empty"), L.file("top", b"t"))
    blob = {"none": raw, "gzip": gzip.compress(raw), "zstd": zstandard.ZstdCompressor().compress(raw)}[compress]
    info = store.add_layer(_OneWay(blob), expected_digest=L.digest(blob),  # type: ignore[arg-type]
                           expected_diff_id=L.digest(raw))
    diff = store.layers_root / info.diff_id[7:] / "diff"
    assert (diff / "d/big").read_bytes() == content and (diff / "d/empty").read_bytes() == b""
    assert (diff / "top").read_bytes() == b"t"
    assert store.blob_path(info.digest).read_bytes() == blob and info.size == len(raw)


def test_concatenated_and_zero_padded_gzip_members_are_one_layer(store: ImageStore) -> None:
    raw = L.tar_bytes(L.file("a", b"1" * 5000), L.file("b", b"2" * 7000))
    cut = 1024
    blob = gzip.compress(raw[:cut]) + gzip.compress(raw[cut:]) + b"\0" * 20
    info = store.add_layer(io.BytesIO(blob), expected_diff_id=L.digest(raw))
    diff = store.layers_root / info.diff_id[7:] / "diff"
    assert (diff / "a").read_bytes() == b"1" * 5000 and (diff / "b").read_bytes() == b"2" * 7000


def test_gzip_followed_by_garbage_is_refused(store: ImageStore) -> None:
    raw = L.tar_bytes(L.file("a", b"1"))
    with pytest.raises(LayerError):
        store.add_layer(io.BytesIO(gzip.compress(raw) + b"not gzip at all"))
    assert_store_empty(store)


def test_corrupt_blob_is_reported_as_a_digest_mismatch(store: ImageStore) -> None:
    raw = L.tar_bytes(L.file("big", os.urandom(100_000)))
    blob = bytearray(gzip.compress(raw))
    blob[len(blob) // 2] ^= 0xFF
    with pytest.raises(DigestMismatch):
        store.add_layer(io.BytesIO(bytes(blob)), expected_digest=L.digest(gzip.compress(raw)))
    assert_store_empty(store)


def test_entries_after_a_parent_is_replaced_resolve_afresh(store: ImageStore) -> None:
    # The unpacker reuses the previous entry's parent directory: never across an entry
    # that changes what a path resolves to.
    diff = add(store, L.tar_bytes(
        L.directory("d"), L.file("d/1"), L.file("d/2"),
        L.directory("e"), L.symlink("d", "e"), L.file("d/3"),   # d/3 lands in e, through the new symlink
        L.directory("g"), L.file("g/1"), L.whiteout("g", "1"), L.file("g/2"),
    ))
    assert os.readlink(diff / "d") == "e"
    assert sorted(os.listdir(diff / "e")) == ["3"]
    assert sorted(os.listdir(diff / "g")) == ["1", "2"] and stat.S_ISCHR(os.lstat(diff / "g/1").st_mode)
    # The one way an entry can change its own parent's resolution: the parent's path runs
    # through the entry (p -> t/c/..). Replacing t/c must redirect the next p/ entry.
    diff = add(store, L.tar_bytes(
        L.directory("t"), L.directory("t/c"), L.directory("u"), L.symlink("p", "t/c/.."),
        L.file("p/a"), L.symlink("p/c", "/u"), L.file("p/b"),
    ))
    assert sorted(os.listdir(diff / "t")) == ["a", "c"] and (diff / "b").is_file()
    with pytest.raises(LayerError, match="not a directory"):
        add(store, L.tar_bytes(L.directory("f"), L.file("f/x"), L.file("f", b"file now"), L.file("f/y")))


def assert_store_empty(store: ImageStore) -> None:
    assert [p.name for p in store.blobs.iterdir()] == []
    assert [p.name for p in store.layers_root.iterdir() if p.name != "l"] == []
    assert not (store.layers_root / "l").exists() or list((store.layers_root / "l").iterdir()) == []


# --- hostile layers -------------------------------------------------------------


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory outside the store with a canary file that no layer may touch."""
    directory = tmp_path / "outside"
    directory.mkdir()
    (directory / "canary").write_bytes(b"original")
    os.utime(directory / "canary", (1000, 1000))
    return directory


def snapshot(directory: Path) -> list[tuple[str, int, int, float]]:
    result = []
    for path in sorted(directory.rglob("*")):
        st = os.lstat(path)
        result.append((str(path), st.st_mode, st.st_ino, st.st_mtime))
    return result


def hostile_layers(c: Path) -> dict[str, bytes]:
    rel_up = "../" * 12
    return {
        "dotdot": L.tar_bytes(L.file(f"{rel_up}{c}/canary".replace("//", "/"), b"pwned")),
        "dotdot-inner": L.tar_bytes(L.directory("a"), L.file(f"a/{rel_up}{c}/new", b"pwned")),
        "absolute": L.tar_bytes(L.file(f"{c}/canary", b"pwned"), L.file(f"{c}/new", b"pwned")),
        "symlink-parent": L.tar_bytes(L.symlink("link", str(c)), L.file("link/canary", b"pwned")),
        "symlink-parent-existing": L.tar_bytes(L.file(f"{c}/seed", b""), L.symlink("link", str(c)),
                                               L.file("link/canary", b"pwned"), L.file("link/new", b"pwned")),
        "symlink-relative": L.tar_bytes(L.symlink("link", f"{rel_up}{c}"), L.file("link/canary", b"pwned")),
        "symlink-chain": L.tar_bytes(L.symlink("a", "b"), L.symlink("b", "c"), L.symlink("c", f"{rel_up}{c}"),
                                     L.file("a/canary", b"pwned")),
        "symlink-then-dir": L.tar_bytes(L.symlink("link", str(c)), L.directory("link/sub", mode=0o777)),
        "symlink-final": L.tar_bytes(L.symlink("canary", f"{c}/canary"), L.file("canary", b"pwned")),
        "hardlink-absolute": L.tar_bytes(L.hardlink("h", f"{c}/canary")),
        "hardlink-dotdot": L.tar_bytes(L.hardlink("h", f"{rel_up}{c}/canary")),
        "hardlink-via-symlink": L.tar_bytes(L.symlink("link", str(c)), L.hardlink("h", "link/canary")),
        "hardlink-shadow": L.tar_bytes(L.hardlink("shadow", "/etc/shadow")),
        "whiteout-via-symlink": L.tar_bytes(L.symlink("link", str(c)), L.whiteout("link", "canary")),
        "opaque-via-symlink": L.tar_bytes(L.symlink("link", str(c)), L.opaque("link")),
        "device-via-symlink": L.tar_bytes(L.symlink("link", str(c)), L.device("link/canary", 1, 3)),
        "chmod-via-symlink": L.tar_bytes(L.symlink("link", f"{c}/canary"), L.directory("link", mode=0o777)),
        "parent-is-file": L.tar_bytes(L.file("f", b""), L.file("f/x", b"")),
    }


@pytest.mark.parametrize("case", sorted(hostile_layers(Path("/x")).keys()))
def test_hostile_layer_changes_nothing_outside(store: ImageStore, outside: Path, case: str) -> None:
    before = snapshot(outside)
    shadow_before = os.lstat("/etc/shadow")
    data = hostile_layers(outside)[case]
    try:
        diff = add(store, data)
    except LayerError:
        assert_store_empty(store)  # refused: and nothing half-unpacked is left
    else:
        for path in diff.rglob("*"):  # neutralised: everything landed inside the layer
            assert os.path.realpath(path.parent).startswith(str(diff))
        if case == "symlink-parent-existing":
            assert (diff / str(outside).lstrip("/") / "canary").read_bytes() == b"pwned"
    assert snapshot(outside) == before
    assert (outside / "canary").read_bytes() == b"original"
    after = os.lstat("/etc/shadow")
    assert (after.st_ino, after.st_nlink, after.st_mtime) == (shadow_before.st_ino, shadow_before.st_nlink,
                                                              shadow_before.st_mtime)


def test_implied_parents_and_root_are_0755_whatever_the_umask(store: ImageStore) -> None:
    old = os.umask(0o077)
    try:
        diff = add(store, L.tar_bytes(L.file("usr/local/bin/tool", b"x", mode=0o755)))
    finally:
        os.umask(old)
    for path in (diff, diff / "usr", diff / "usr/local", diff / "usr/local/bin"):
        assert stat.S_IMODE(os.lstat(path).st_mode) == 0o755, path
