"""Hostile layers and archives: sparse files, expansion bombs, malformed headers and documents.

Layers and archives come from anyone: a pull, ``skiff load`` of a file off the
internet, ``skiff import``. Each archive here is built byte for byte with Python's
tarfile (plus the few GNU sparse headers tarfile cannot write), so the test says
exactly what the attacker sent.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from skiff.errors import LayerError
from skiff.image.unpack import unpack_layer
from tests.image.layers import (MTIME, device, directory, docker_archive, file, hardlink, image_config,
                                symlink, tar_bytes)

MIB = 1 << 20
END = b"\0" * 1024  # a tar's end-of-archive marker


# --- GNU sparse entries, in each of the four formats -------------------------------------

Regions = list[tuple[int, bytes]]  # (offset in the file, the bytes there); the rest is holes


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % tarfile.BLOCKSIZE)


def _checksum(header: bytearray) -> bytes:
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header[:tarfile.BLOCKSIZE])
    return bytes(header)


def sparse_old_gnu(name: str, size: int, regions: Regions) -> bytes:
    """Type ``S`` (GNU tar's --format=gnu --sparse): the map in the header, up to four regions."""
    assert len(regions) <= 4
    data = b"".join(chunk for _offset, chunk in regions)
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, MTIME
    header = bytearray(info.tobuf(tarfile.GNU_FORMAT))
    header[156:157] = tarfile.GNUTYPE_SPARSE
    for i, (offset, chunk) in enumerate(regions):
        pos = 386 + 24 * i
        header[pos:pos + 12] = tarfile.itn(offset, 12, tarfile.GNU_FORMAT)
        header[pos + 12:pos + 24] = tarfile.itn(len(chunk), 12, tarfile.GNU_FORMAT)
    header[483:495] = tarfile.itn(size, 12, tarfile.GNU_FORMAT)
    return _checksum(header) + _pad(data) + END


def _pax_record(key: str, value: str) -> bytes:
    body = f" {key}={value}\n".encode()
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length += 1
    return str(length).encode() + body


def sparse_pax_00(name: str, size: int, regions: Regions) -> bytes:
    """PAX 0.0: repeated GNU.sparse.offset/numbytes records (tarfile cannot write repeated keys)."""
    data = b"".join(chunk for _offset, chunk in regions)
    records = _pax_record("GNU.sparse.size", str(size)) + _pax_record("GNU.sparse.numblocks", str(len(regions)))
    for offset, chunk in regions:
        records += _pax_record("GNU.sparse.offset", str(offset)) + _pax_record("GNU.sparse.numbytes", str(len(chunk)))
    pax = tarfile.TarInfo(f"PaxHeaders/{name}")
    pax.type, pax.size = tarfile.XHDTYPE, len(records)
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, MTIME
    return (pax.tobuf(tarfile.USTAR_FORMAT) + _pad(records) + info.tobuf(tarfile.USTAR_FORMAT) + _pad(data)
            + END)


def sparse_pax_01(name: str, size: int, regions: Regions, claimed: str | None = None) -> bytes:
    """PAX 0.1: the map as one GNU.sparse.map record (``claimed``: another map than the data's)."""
    data = b"".join(chunk for _offset, chunk in regions)
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, MTIME
    info.pax_headers = {"GNU.sparse.size": str(size),
                        "GNU.sparse.map": claimed or ",".join(f"{o},{len(c)}" for o, c in regions)}
    return tar_bytes((info, data))


def sparse_pax_10(name: str, size: int, regions: Regions, count: int | None = None) -> bytes:
    """PAX 1.0 (GNU tar's default for --format=posix): the map at the start of the data."""
    data = b"".join(chunk for _offset, chunk in regions)
    text = f"{len(regions) if count is None else count}\n" + "".join(f"{o}\n{len(c)}\n" for o, c in regions)
    blob = _pad(text.encode()) + data
    info = tarfile.TarInfo(f"GNUSparseFile.0/{name}")
    info.size, info.mode, info.mtime = len(blob), 0o644, MTIME
    info.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": name,
                        "GNU.sparse.realsize": str(size)}
    return tar_bytes((info, blob))


SPARSE_FORMATS = {"gnu-S": sparse_old_gnu, "pax-0.0": sparse_pax_00, "pax-0.1": sparse_pax_01,
                  "pax-1.0": sparse_pax_10}


def _unpack(tmp_path: Path, layer: bytes) -> Path:
    dest = tmp_path / "layer"
    dest.mkdir()
    unpack_layer(io.BytesIO(layer), dest)
    return dest


@pytest.mark.parametrize("fmt", sorted(SPARSE_FORMATS))
def test_sparse_file_stays_sparse(tmp_path: Path, fmt: str) -> None:
    """256 MiB with 8 KiB of data: written in full before (the whole size on disk), sparse now."""
    size = 256 * MIB
    regions = [(MIB, b"A" * 4096), (200 * MIB, b"B" * 4096)]
    dest = _unpack(tmp_path, SPARSE_FORMATS[fmt]("big", size, regions))
    path = dest / "big"
    st = os.stat(path)
    assert st.st_size == size
    assert st.st_blocks * 512 < MIB, f"{st.st_blocks * 512} bytes on disk for 8 KiB of data"
    with open(path, "rb") as f:
        for offset, chunk in regions:
            f.seek(offset)
            assert f.read(len(chunk)) == chunk
        f.seek(MIB - 10)
        assert f.read(10) == b"\0" * 10
        f.seek(size - 4)
        assert f.read() == b"\0" * 4


@pytest.mark.skipif(shutil.which("tar") is None, reason="GNU tar is not installed")
@pytest.mark.parametrize("args", [["--format=gnu"], ["--format=posix", "--sparse-version=0.0"],
                                  ["--format=posix", "--sparse-version=0.1"],
                                  ["--format=posix", "--sparse-version=1.0"]])
def test_gnu_tar_sparse_files_unpack_identically(tmp_path: Path, args: list[str]) -> None:
    source = tmp_path / "src"
    source.mkdir()
    with open(source / "disk.img", "wb") as f:
        f.seek(3 * MIB)
        f.write(b"middle")
        f.seek(90 * MIB)
        f.write(os.urandom(100_000))
        f.truncate(128 * MIB)
    layer = subprocess.run(["tar", *args, "--sparse", "-C", str(source), "-cf", "-", "disk.img"],
                           check=True, capture_output=True).stdout
    dest = _unpack(tmp_path, layer)
    assert (dest / "disk.img").read_bytes() == (source / "disk.img").read_bytes()
    assert os.stat(dest / "disk.img").st_blocks * 512 < 2 * MIB


@pytest.mark.parametrize("regions,size,why", [
    ([(4096, b"x" * 4096), (0, b"y" * 4096)], MIB, "out of order"),
    ([(0, b"x" * 8192), (4096, b"y" * 4096)], MIB, "out of order or overlapping"),
    ([(MIB, b"x" * 4096)], MIB, "past its size"),
], ids=["unordered", "overlapping", "past-the-end"])
def test_hostile_sparse_maps_are_refused(tmp_path: Path, regions: Regions, size: int, why: str) -> None:
    with pytest.raises(LayerError, match=why):
        _unpack(tmp_path, sparse_pax_01("f", size, regions))


def test_sparse_map_claiming_more_data_than_the_archive_holds(tmp_path: Path) -> None:
    # Claim 64 KiB of data where 512 bytes are stored: the region would eat the next headers.
    layer = sparse_pax_01("f", MIB, [(0, b"x" * 512)], claimed="0,65536")
    with pytest.raises(LayerError, match="holds 65536 bytes of data, the archive 512"):
        _unpack(tmp_path, layer)


def test_sparse_map_with_endless_regions_is_refused_before_it_is_read(tmp_path: Path) -> None:
    with pytest.raises(LayerError, match="more than 65536 regions"):
        _unpack(tmp_path, sparse_pax_10("f", MIB, [(0, b"x")], count=10**12))


# --- what one layer may expand to ----------------------------------------------------------


def test_sparse_bomb_is_refused_by_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A few bytes of tar claiming a 128 MiB file: holes count, as they are what a copy writes out."""
    monkeypatch.setenv("SKIFF_MAX_LAYER_SIZE", "64m")
    with pytest.raises(LayerError, match="more than 64.0 MiB.*SKIFF_MAX_LAYER_SIZE"):
        _unpack(tmp_path, sparse_old_gnu("bomb", 128 * MIB, [(0, b"x")]))


def test_petabyte_sparse_file_is_refused_by_default(tmp_path: Path) -> None:
    # Before: written out in full (a 2 MB layer became 1 GiB in the report; this one would fill any disk).
    with pytest.raises(LayerError, match="more than 64.0 GiB"):
        _unpack(tmp_path, sparse_pax_10("bomb", 1 << 50, [(0, b"x")]))


def test_decompression_bomb_is_refused_by_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKIFF_MAX_LAYER_SIZE", "1m")
    layer = gzip.compress(tar_bytes(file("zeros", b"\0" * (8 * MIB))))
    assert len(layer) < 64 * 1024
    with pytest.raises(LayerError, match="SKIFF_MAX_LAYER_SIZE"):
        _unpack(tmp_path, layer)
    assert not (tmp_path / "layer" / "zeros").exists() or os.stat(tmp_path / "layer" / "zeros").st_size <= 2 * MIB


def test_invalid_limit_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from skiff.errors import InvalidArgument

    monkeypatch.setenv("SKIFF_MAX_LAYER_SIZE", "lots")
    with pytest.raises(InvalidArgument, match="SKIFF_MAX_LAYER_SIZE"):
        _unpack(tmp_path, tar_bytes(file("a", b"x")))


@pytest.fixture
def small_disk(tmp_path: Path) -> Any:
    """A 4 MiB tmpfs, unmounted afterwards."""
    mountpoint = tmp_path / "small"
    mountpoint.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mountpoint)], check=True)
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True)


def test_layer_larger_than_the_free_disk_is_a_clear_error(small_disk: Path) -> None:
    dest = small_disk / "layer"
    dest.mkdir()
    layer = tar_bytes(file("big", os.urandom(8 * MIB)))
    with pytest.raises(LayerError, match="not enough disk space|no space left"):
        unpack_layer(io.BytesIO(layer), dest)


# --- hostile entries: refused with one clear line, nothing outside the layer touched ---------


def _field(data: bytes, offset: int, length: int, value: bytes) -> bytes:
    header = bytearray(data)
    header[offset:offset + length] = value.ljust(length, b"\0")[:length]
    return _checksum(header) + data[tarfile.BLOCKSIZE:]


def _pax_file(name: str, headers: dict[str, str]) -> bytes:
    info, data = file(name, b"x")
    info.pax_headers = headers
    return tar_bytes((info, data))


HOSTILE_LAYERS = {
    # name: (layer, what the one line must say)
    "whiteout-dotdot": (tar_bytes(file("keep", b"1"), directory("d"), file("d/.wh...")), "invalid whiteout"),
    "whiteout-dot": (tar_bytes(directory("d"), file("d/x"), file("d/.wh..")), "invalid whiteout"),
    "nan-mtime": (_pax_file("a", {"mtime": "nan"}), "invalid modification time"),
    "negative-uid": (_pax_file("a", {"uid": "-5"}), "uid -5 is out of range"),
    "huge-uid": (_pax_file("a", {"uid": str(1 << 40)}), "out of range"),
    "nul-in-name": (_pax_file("a", {"path": "a\0b"}), "NUL byte"),
    "negative-size": (_field(tar_bytes(file("a", b"x")), 124, 12, b"\xff" * 12), "negative size"),
    "bad-xattr-namespace": (_pax_file("a", {"SCHILY.xattr.bogus": "v"}), "extended attribute 'bogus'"),
    "xattr-name-too-long": (_pax_file("a", {"SCHILY.xattr.user." + "x" * 300: "v"}), "extended attribute"),
    "name-too-long": (tar_bytes(file("x" * 300, b"1")), "File name too long"),
    "bad-device-number": (tar_bytes(device("c", 1 << 20, 3)), "cannot unpack 'c'"),
    "huge-pax-header": (_pax_file("a", {"comment": "x" * (2 * MIB)}), "extended header of"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_LAYERS))
def test_hostile_entry_is_a_layer_error(tmp_path: Path, case: str) -> None:
    layer, message = HOSTILE_LAYERS[case]
    with pytest.raises(LayerError, match=message):
        _unpack(tmp_path, layer)


def test_whiteout_of_dotdot_removes_nothing(tmp_path: Path) -> None:
    """``d/.wh...`` named d's parent: the whole layer (or, at the top, the dir above it) was emptied."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("mine")
    dest = outside / "layer"
    dest.mkdir()
    with pytest.raises(LayerError):
        unpack_layer(io.BytesIO(tar_bytes(file("kept", b"1"), file(".wh..."))), dest)
    assert (outside / "keep").read_text() == "mine"
    assert (dest / "kept").read_bytes() == b"1"


@pytest.mark.parametrize("layer", [
    tar_bytes(file("../../escaped", b"x")),
    tar_bytes(symlink("l", "/"), file("l/escaped", b"x")),
    tar_bytes(symlink("l", "../../.."), file("l/escaped", b"x")),
    tar_bytes(directory("d"), symlink("d/up", "../.."), file("d/up/escaped", b"x")),
    tar_bytes(hardlink("h", "../../escaped-target")),
], ids=["dotdot", "absolute-symlink", "relative-symlink", "nested-symlink", "hardlink-out"])
def test_path_tricks_stay_inside_the_layer(tmp_path: Path, layer: bytes) -> None:
    """Already handled before these fixes (openat2 RESOLVE_IN_ROOT): kept as a guard."""
    base = tmp_path / "a" / "b"
    base.mkdir(parents=True)
    (tmp_path / "escaped-target").write_text("host")
    dest = base / "layer"
    dest.mkdir()
    try:
        unpack_layer(io.BytesIO(layer), dest)
    except LayerError:
        pass
    found = [p for p in tmp_path.rglob("escaped*") if not str(p).startswith(str(dest))]
    assert found == [tmp_path / "escaped-target"]
    assert os.stat(tmp_path / "escaped-target").st_nlink == 1


# --- through the CLI: one line, exit 125 ----------------------------------------------------


def _one_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 125, proc.stderr
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    assert line.startswith("skiff: ") and "internal error" not in line and "Errno" not in line, line
    return line


@pytest.mark.parametrize("case", ["whiteout-dotdot", "nan-mtime", "negative-uid", "bad-xattr-namespace",
                                  "name-too-long", "bad-device-number"])
def test_import_of_hostile_layer_is_one_line(skiff: Any, tmp_path: Path, case: str) -> None:
    path = tmp_path / "hostile.tar"
    path.write_bytes(HOSTILE_LAYERS[case][0])
    line = _one_line(skiff("import", str(path), "hostile:1"))
    assert f"importing {path}" in line
    assert skiff.ok("images", "-q") == ""


def test_import_over_the_limit_names_the_source(skiff: Any, tmp_path: Path) -> None:
    path = tmp_path / "bomb.tar"
    path.write_bytes(sparse_old_gnu("bomb", 1 << 40, [(0, b"x")]))
    line = _one_line(skiff("import", str(path)))
    assert f"importing {path}" in line and "SKIFF_MAX_LAYER_SIZE" in line


def _archive(*entries: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    return tar_bytes(*entries)


_LAYER = tar_bytes(file("a", b"x"))
_CONFIG = image_config([_LAYER])
_BAD_ARCHIVES = {
    "empty-file": (b"", "the file is empty"),
    "not-a-tar": (os.urandom(4096), "not a tar file"),
    "manifest-list-of-strings": (_archive(file("manifest.json", b'["x"]')), "not a list of images"),
    "manifest-without-config": (_archive(file("manifest.json", b"[{}]")), "no 'Config' string"),
    "layers-not-a-list": (_archive(file("c.json", _CONFIG), file("manifest.json", json.dumps(
        [{"Config": "c.json", "Layers": 5}]).encode())), "'Layers' is not a list"),
    "repotags-a-string": (_archive(file("c.json", _CONFIG), file("l.tar", _LAYER), file("manifest.json", json.dumps(
        [{"Config": "c.json", "Layers": ["l.tar"], "RepoTags": "x"}]).encode())), "'RepoTags' is not a list"),
    "diff-ids-not-strings": (_archive(file("c.json", b'{"rootfs":{"diff_ids":[5]}}'), file("manifest.json", json.dumps(
        [{"Config": "c.json", "Layers": ["l"]}]).encode())), "diff_ids is not a list"),
    "index-a-list": (_archive(file("oci-layout", b"{}"), file("index.json", b"[]")), "not a JSON object"),
    "index-entry-without-digest": (_archive(file("oci-layout", b"{}"), file("index.json", b'{"manifests":[{}]}')),
                                   "no 'digest' string"),
    "hostile-layer": (docker_archive([([HOSTILE_LAYERS["whiteout-dotdot"][0]], ["t:1"])]), "invalid whiteout"),
}


@pytest.mark.parametrize("case", sorted(_BAD_ARCHIVES))
def test_load_of_malformed_archive_is_one_line(skiff: Any, tmp_path: Path, case: str) -> None:
    data, message = _BAD_ARCHIVES[case]
    path = tmp_path / "bad.tar"
    path.write_bytes(data)
    line = _one_line(skiff("load", "-i", str(path)))
    assert message in line, line
    assert skiff.ok("images", "-q") == ""  # nothing half-loaded, no tag made from a string's letters
