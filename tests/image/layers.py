"""Builders for layer tarballs and image archives, so tests state exactly what a layer holds."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

Entry = tuple[tarfile.TarInfo, bytes | None]
MTIME = 1_600_000_000


def _info(name: str, kind: bytes, mode: int, uid: int = 0, gid: int = 0, mtime: int = MTIME) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid, info.gid = uid, gid
    info.mtime = mtime
    return info


def file(name: str, data: bytes = b"", mode: int = 0o644, uid: int = 0, gid: int = 0, mtime: int = MTIME,
         xattrs: dict[str, str] | None = None) -> Entry:
    info = _info(name, tarfile.REGTYPE, mode, uid, gid, mtime)
    info.size = len(data)
    if xattrs:
        info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in xattrs.items()}
    return info, data


def directory(name: str, mode: int = 0o755, uid: int = 0, gid: int = 0, mtime: int = MTIME) -> Entry:
    return _info(name, tarfile.DIRTYPE, mode, uid, gid, mtime), None


def symlink(name: str, target: str, uid: int = 0, gid: int = 0) -> Entry:
    info = _info(name, tarfile.SYMTYPE, 0o777, uid, gid)
    info.linkname = target
    return info, None


def hardlink(name: str, target: str) -> Entry:
    info = _info(name, tarfile.LNKTYPE, 0o644)
    info.linkname = target
    return info, None


def device(name: str, major: int, minor: int, block: bool = False, mode: int = 0o666) -> Entry:
    info = _info(name, tarfile.BLKTYPE if block else tarfile.CHRTYPE, mode)
    info.devmajor, info.devminor = major, minor
    return info, None


def fifo(name: str, mode: int = 0o600) -> Entry:
    return _info(name, tarfile.FIFOTYPE, mode), None


def whiteout(directory_: str, name: str) -> Entry:
    return file(f"{directory_}/.wh.{name}".lstrip("/"))


def opaque(directory_: str) -> Entry:
    return file(f"{directory_}/.wh..wh..opq")


def tar_bytes(*entries: Entry) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def image_config(layers: list[bytes], cmd: list[str] | None = None) -> bytes:
    """An image config whose diff_ids are those of ``layers`` (uncompressed tars)."""
    return json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
        "config": {"Cmd": cmd or ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [digest(layer) for layer in layers]},
    }).encode()


def docker_archive(images: list[tuple[list[bytes], list[str]]], gzip_layers: bool = False,
                   config_override: bytes | None = None) -> bytes:
    """A docker-archive (``docker save`` format) holding ``(layers, repo_tags)`` images."""
    members: list[Entry] = []
    manifest = []
    for layers, tags in images:
        config = config_override or image_config(layers)
        config_name = f"{digest(config)[7:]}.json"
        members.append(file(config_name, config))
        layer_names = []
        for layer in layers:
            blob = gzip.compress(layer) if gzip_layers else layer
            name = f"{digest(blob)[7:]}/layer.tar"
            if name not in layer_names and not any(m[0].name == name for m in members):
                members.append(file(name, blob))
            layer_names.append(name)
        manifest.append({"Config": config_name, "RepoTags": tags, "Layers": layer_names})
    members.append(file("manifest.json", json.dumps(manifest).encode()))
    return tar_bytes(*members)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
