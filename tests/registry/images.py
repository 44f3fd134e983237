"""Test images built offline as OCI layouts, and pushed to a registry with skopeo."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import PRIVATE_VAR_LIB

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


def sha(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


@dataclass
class Built:
    manifest_digest: str
    config_digest: str
    diff_ids: list[str]


class Layout:
    """An OCI image layout directory, written by hand."""

    def __init__(self, path: Path) -> None:
        self.path = path
        (path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        self.manifests: list[dict[str, object]] = []

    def blob(self, data: bytes) -> str:
        digest = sha(data)
        (self.path / "blobs" / "sha256" / digest[7:]).write_bytes(data)
        return digest

    def image(self, layer_tars: list[bytes], *, arch: str = "amd64", variant: str | None = None,
              cmd: list[str] | None = None, user: str = "", compression: str = "gzip"
              ) -> tuple[dict[str, object], Built]:
        """Write config, layers (gzip, zstd or none) and manifest; returns the manifest descriptor."""
        layers, diff_ids = [], []
        for tar in layer_tars:
            blob, media = _compress(tar, compression)
            layers.append({"mediaType": media, "digest": self.blob(blob), "size": len(blob)})
            diff_ids.append(sha(tar))
        config: dict[str, object] = {
            "created": "2024-01-01T00:00:00Z", "architecture": arch, "os": "linux",
            "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                       "Cmd": cmd or ["sh"], "User": user},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "skiff tests"}] * len(layer_tars),
        }
        if variant:
            config["variant"] = variant
        config_bytes = json.dumps(config).encode()
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": OCI_CONFIG, "digest": self.blob(config_bytes), "size": len(config_bytes)},
                    "layers": layers}
        manifest_bytes = json.dumps(manifest).encode()
        platform = {"architecture": arch, "os": "linux", **({"variant": variant} if variant else {})}
        desc = {"mediaType": OCI_MANIFEST, "digest": self.blob(manifest_bytes), "size": len(manifest_bytes),
                "platform": platform}
        return desc, Built(str(desc["digest"]), sha(config_bytes), diff_ids)

    def tag(self, tag: str, descriptors: list[dict[str, object]], *, as_index: bool = False) -> str:
        """Name the image (or an index of several) ``tag`` in index.json; returns its digest."""
        if as_index:
            index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}).encode()
            desc: dict[str, object] = {"mediaType": OCI_INDEX, "digest": self.blob(index), "size": len(index)}
        else:
            desc = dict(descriptors[0])
            desc.pop("platform", None)
        desc["annotations"] = {"org.opencontainers.image.ref.name": tag}
        self.manifests.append(desc)
        (self.path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": self.manifests}))
        return str(desc["digest"])


def _compress(tar: bytes, compression: str) -> tuple[bytes, str]:
    if compression == "gzip":
        return gzip.compress(tar, compresslevel=1, mtime=0), OCI_LAYER_GZIP
    if compression == "zstd":
        import zstandard

        return zstandard.ZstdCompressor().compress(tar), "application/vnd.oci.image.layer.v1.tar+zstd"
    return tar, "application/vnd.oci.image.layer.v1.tar"


def push(layout: Path, tag: str, dest: str, *extra: str, all_images: bool = False) -> None:
    """``skopeo copy oci:LAYOUT:TAG docker://DEST`` with extra flags (format, compression, TLS, creds)."""
    args = [*PRIVATE_VAR_LIB, "skopeo", "copy", "--quiet"]
    if all_images:
        args.append("--all")
    args += [*extra, f"oci:{layout}:{tag}", f"docker://{dest}"]
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed: {proc.stderr}")


# --- layer tarballs ------------------------------------------------------------------------


def tar_bytes(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def entry(name: str, kind: bytes = tarfile.REGTYPE, data: bytes | None = None, *, mode: int = 0o644,
          uid: int = 0, gid: int = 0, linkname: str = "", devmajor: int = 0, devminor: int = 0
          ) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid, info.gid = uid, gid
    info.mtime = 1700000000
    info.linkname = linkname
    info.devmajor, info.devminor = devmajor, devminor
    if kind == tarfile.REGTYPE:
        data = data or b""
        info.size = len(data)
    return info, data


def multi_layer_tars() -> list[bytes]:
    """Two layers over busybox: uid 1000 files, hardlink, symlink, then a whiteout and an opaque dir."""
    first = tar_bytes([
        entry("data", tarfile.DIRTYPE, mode=0o755),
        entry("data/owned", data=b"owned by user\n", uid=1000, gid=1000, mode=0o640),
        entry("data/hard", tarfile.LNKTYPE, linkname="data/owned", uid=1000, gid=1000),
        entry("data/link", tarfile.SYMTYPE, linkname="owned", mode=0o777),
        entry("data/doomed", data=b"to be deleted\n"),
        entry("data/replaced", tarfile.DIRTYPE, mode=0o755),
        entry("data/replaced/old", data=b"old\n"),
    ])
    second = tar_bytes([
        entry("data", tarfile.DIRTYPE, mode=0o755),
        entry("data/.wh.doomed"),
        entry("data/replaced", tarfile.DIRTYPE, mode=0o755),
        entry("data/replaced/.wh..wh..opq"),
        entry("data/replaced/new", data=b"new\n"),
    ])
    return [first, second]


def hostile_tar(outside: Path) -> bytes:
    """Entries that try to reach ``outside`` (a host dir) by '..', absolute paths, symlinks, hardlinks."""
    depth = "../" * 20
    return tar_bytes([
        entry(f"{depth}{outside.relative_to('/')}/dotdot", data=b"escaped by ..\n"),
        entry(f"{outside}/absolute", data=b"escaped by absolute path\n"),
        entry("escape", tarfile.SYMTYPE, linkname=str(outside), mode=0o777),
        entry("escape/through-symlink", data=b"escaped through a symlink\n"),
        entry("hardlink", tarfile.LNKTYPE, linkname=f"{outside}/secret"),
        entry("dev-mem", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=1),
    ])
