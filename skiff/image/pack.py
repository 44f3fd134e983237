"""A container's overlay upper directory as an OCI layer: the reverse of ``skiff.image.unpack``.

The upper dir holds what a container changed: new and modified entries as they are, a deleted
one as a 0:0 character device (overlayfs' whiteout), a directory that replaced a lower one with
the xattr ``trusted.overlay.opaque=y``. The layer is a tar in Docker's form: ``.wh.NAME`` for the
deletion, ``DIR/.wh..wh..opq`` for the opaque directory, every other entry with its numeric owner,
mode (setuid, setgid, sticky), mtime, xattrs (``SCHILY.xattr.*``, never overlayfs' own), hard links
as link entries to the first name of the inode, and files with holes as GNU sparse 1.0 entries, so a
sparse file stays sparse once unpacked.

The tar is deterministic: entries in byte order of their names, no user or group names, no atime
or ctime, and the end of the archive is two zero blocks as Go's tar writer leaves it (an empty
layer has Docker's diff_id ``sha256:5f70bf18...``). With ``SOURCE_DATE_EPOCH`` every mtime later
than it is clamped to it, so the same changes give the same digests build after build.

Every entry is opened relative to its directory's fd with ``O_NOFOLLOW``: a link in the upper dir
is stored as a link, never followed on the host.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import tarfile
import tempfile
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Callable, Iterator, NamedTuple

from skiff.errors import InvalidArgument, LayerError

if TYPE_CHECKING:
    from skiff.image.store import ImageStore, LayerInfo

BLOCK = tarfile.BLOCKSIZE
CHUNK = 1 << 20
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OVERLAY_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.")
OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
COMPRESSIONS = ("gzip", "zstd", "none")
GZIP_LEVEL = 6  # zlib's (Go's gzip.DefaultCompression, as Docker's layers) when ISA-L is missing
ISAL_LEVEL = 1  # ISA-L's fastest: about 15x zlib's level 6, and smaller output
ZSTD_LEVEL = 3


class PackedLayer(NamedTuple):
    diff_id: str   # sha256 of the uncompressed tar
    size: int      # bytes of the uncompressed tar


def source_date_epoch(environ: dict[str, str] | None = None) -> int | None:
    """``SOURCE_DATE_EPOCH`` (reproducible-builds.org) as an int, None when unset; bad values refused."""
    value = (environ if environ is not None else os.environ).get("SOURCE_DATE_EPOCH", "").strip()
    if not value:
        return None
    if not value.isdigit():
        raise InvalidArgument(f"invalid SOURCE_DATE_EPOCH {value!r}: expected a number of seconds since 1970")
    return int(value)


def write_layer_tar(upper: Path, out: IO[bytes], epoch: int | None = None,
                    skip: Callable[[str], bool] | None = None, strip: bool = False) -> PackedLayer:
    """Write the upper dir ``upper`` as a layer tar to ``out``; ``skip(path)`` (``/etc/hosts``)
    leaves an entry and everything below it out. Returns the diff_id and size.

    ``strip``: make the directory itself match the tar (for ``store_layer(adopt=True)``): skipped
    entries are removed, overlayfs' xattrs but the opaque marker dropped, times clamped."""
    sink = _HashingSink(out)
    top = os.open(upper, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        writer = _TarWriter(sink, epoch, strip)
        writer.walk(top, "", skip or (lambda _path: False))
    finally:
        os.close(top)
    sink.write(b"\0" * (2 * BLOCK))
    return PackedLayer(f"sha256:{sink.hash.hexdigest()}", sink.size)


def store_layer(store: ImageStore, upper: Path, compression: str = "gzip", epoch: int | None = None,
                skip: Callable[[str], bool] | None = None, adopt: bool = False) -> LayerInfo:
    """Pack ``upper`` into a compressed blob and add it to the image store; returns its ``LayerInfo``.

    ``adopt``: ``upper`` is moved into the store as the unpacked layer (it already has a layer's
    form: overlay whiteouts, opaque directories) instead of unpacking the blob again; what ``skip``
    names is removed from it first and overlayfs' own xattrs are dropped, so the directory holds
    exactly what the tar does. Otherwise it is left as it is and the blob is unpacked, as a pull.
    """
    from skiff.image.store import LAYER_MEDIA_BY_COMPRESSION

    if compression not in COMPRESSIONS:
        raise InvalidArgument(f"unsupported compression {compression!r}: use gzip, zstd or none")
    store.root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=store.root) as blob:
        with _compressor(blob, compression) as out:
            packed = write_layer_tar(upper, out, epoch, skip, strip=adopt)
        blob.seek(0)
        media = LAYER_MEDIA_BY_COMPRESSION[compression]
        if adopt:
            return store.adopt_layer(upper, blob, packed.diff_id, packed.size, media)
        return store.add_layer(blob, expected_diff_id=packed.diff_id, media_type=media)


@contextlib.contextmanager
def _compressor(raw: IO[bytes], compression: str) -> Iterator[IO[bytes]]:
    """A writer that compresses into ``raw`` (no name or time in a gzip header: reproducible)."""
    if compression == "gzip":
        try:
            from isal import igzip
        except ImportError:
            import gzip

            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=GZIP_LEVEL, mtime=0) as gz:
                yield gz  # type: ignore[misc]
            return
        with igzip.IGzipFile(filename="", mode="wb", fileobj=raw, compresslevel=ISAL_LEVEL, mtime=0) as igz:
            yield igz  # type: ignore[misc]
    elif compression == "zstd":
        import zstandard

        with zstandard.ZstdCompressor(level=ZSTD_LEVEL).stream_writer(raw, closefd=False) as zst:
            yield zst
    else:
        yield raw


class _HashingSink:
    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | memoryview) -> None:
        self.hash.update(data)
        self.size += len(data)
        self.out.write(data)


class _TarWriter:
    """Writes entries as Docker's layers hold them; hard links by (device, inode)."""

    def __init__(self, sink: _HashingSink, epoch: int | None, strip: bool = False) -> None:
        self.sink = sink
        self.epoch = epoch
        self.strip = strip
        self.links: dict[tuple[int, int], str] = {}

    def walk(self, dir_fd: int, prefix: str, skip: Callable[[str], bool]) -> None:
        for name in sorted(os.listdir(dir_fd)):
            path = prefix + name
            if skip("/" + path):
                if self.strip:
                    _remove(dir_fd, name)
                continue
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                self._whiteout(prefix, name, st)
                continue
            if stat.S_ISDIR(st.st_mode):
                fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
                try:
                    xattrs = _xattrs(fd, self.strip)
                    opaque = any(xattrs.pop(key, b"") == b"y" for key in OPAQUE_XATTRS)
                    self._header(self._info(path + "/", st, tarfile.DIRTYPE), xattrs)
                    if opaque:
                        self._whiteout(path + "/", OPAQUE_MARKER[len(WHITEOUT_PREFIX):], st)
                    self.walk(fd, path + "/", skip)
                finally:
                    os.close(fd)
            elif stat.S_ISREG(st.st_mode):
                self._regular(dir_fd, name, path, st)
            elif stat.S_ISLNK(st.st_mode):
                info = self._info(path, st, tarfile.SYMTYPE)
                info.linkname = os.readlink(name, dir_fd=dir_fd)
                self._header(info, _link_xattrs(dir_fd, name))
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISFIFO(st.st_mode):
                kind = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else \
                    tarfile.BLKTYPE if stat.S_ISBLK(st.st_mode) else tarfile.FIFOTYPE
                info = self._info(path, st, kind)
                info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
                self._header(info, _link_xattrs(dir_fd, name))
            # sockets are left out, as Docker's archiver leaves them

    def _info(self, name: str, st: os.stat_result, kind: bytes) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.mode = stat.S_IMODE(st.st_mode)
        info.uid, info.gid = st.st_uid, st.st_gid
        info.uname = info.gname = ""
        mtime = int(st.st_mtime)
        info.mtime = min(mtime, self.epoch) if self.epoch is not None else mtime
        return info

    def _whiteout(self, prefix: str, name: str, st: os.stat_result) -> None:
        # As Docker's overlay differ: an empty file with the owner of what it stands for; a
        # deletion's mode 0600, an opaque marker its directory's permissions.
        info = self._info(prefix + WHITEOUT_PREFIX + name, st, tarfile.REGTYPE)
        info.mode = stat.S_IMODE(st.st_mode) & 0o777 if stat.S_ISDIR(st.st_mode) else 0o600
        self._header(info, {})

    def _regular(self, dir_fd: int, name: str, path: str, st: os.stat_result) -> None:
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1:
            first = self.links.get(key)
            if first is not None:
                info = self._info(path, st, tarfile.LNKTYPE)
                info.linkname = first
                self._header(info, {})
                return
            self.links[key] = path
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            xattrs = _xattrs(fd, self.strip)
            regions = _data_regions(fd, st) if st.st_blocks * 512 < st.st_size else None
            info = self._info(path, st, tarfile.REGTYPE)
            if regions is None:
                info.size = st.st_size
                self._header(info, xattrs)
                self._copy(fd, [(0, st.st_size)])
            else:
                self._sparse(fd, info, st.st_size, regions, xattrs)
        finally:
            os.close(fd)

    def _sparse(self, fd: int, info: tarfile.TarInfo, real_size: int, regions: list[tuple[int, int]],
                xattrs: dict[str, bytes]) -> None:
        """GNU sparse 1.0: a PAX header names the file and its size; the data starts with the map."""
        lines = [str(len(regions))] + [str(n) for region in regions for n in region]
        map_bytes = ("\n".join(lines) + "\n").encode()
        map_padded = map_bytes + b"\0" * (-len(map_bytes) % BLOCK)
        stored = sum(length for _, length in regions)
        pax = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": info.name,
               "GNU.sparse.realsize": str(real_size)}
        info.name = _sparse_name(info.name)
        info.size = len(map_padded) + stored
        self._header(info, xattrs, pax)
        self.sink.write(map_padded)
        self._copy(fd, regions, pad=False)
        self.sink.write(b"\0" * (-info.size % BLOCK))

    def _header(self, info: tarfile.TarInfo, xattrs: dict[str, bytes], pax: dict[str, str] | None = None) -> None:
        headers = dict(pax or {})
        for key, value in sorted(xattrs.items()):
            headers["SCHILY.xattr." + key] = value.decode("utf-8", "surrogateescape")
        info.pax_headers = headers
        self.sink.write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))

    def _copy(self, fd: int, regions: list[tuple[int, int]], pad: bool = True) -> None:
        total = 0
        for offset, length in regions:
            left = length
            while left:
                data = os.pread(fd, min(CHUNK, left), offset + length - left)
                if not data:
                    raise LayerError(f"a file shrank while it was being packed into the layer (fd {fd})")
                self.sink.write(data)
                left -= len(data)
            total += length
        if pad:
            self.sink.write(b"\0" * (-total % BLOCK))


def _sparse_name(name: str) -> str:
    # GNU tar's convention for the stored name of a sparse 1.0 file; readers use GNU.sparse.name.
    head, _, tail = name.rpartition("/")
    return f"{head + '/' if head else ''}GNUSparseFile.0/{tail}"


def _data_regions(fd: int, st: os.stat_result) -> list[tuple[int, int]] | None:
    """(offset, length) of each run of data (SEEK_DATA/SEEK_HOLE); None when it has no hole after all.
    The file's end is always a region (maybe empty), so a trailing hole keeps the size."""
    regions: list[tuple[int, int]] = []
    offset = 0
    try:
        while offset < st.st_size:
            try:
                start = os.lseek(fd, offset, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:
                    break
                raise
            end = os.lseek(fd, start, os.SEEK_HOLE)
            regions.append((start, end - start))
            offset = end
    except OSError:
        return None
    if len(regions) == 1 and regions[0] == (0, st.st_size):
        return None
    if not regions or sum(regions[-1]) < st.st_size:
        regions.append((st.st_size, 0))
    return regions


def _remove(dir_fd: int, name: str) -> None:
    """Remove an entry (a tree) below ``dir_fd`` without following links."""
    import shutil

    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)


def _xattrs(fd: int, strip: bool = False) -> dict[str, bytes]:
    """The entry's xattrs but overlayfs' own (their meaning is this host's overlay, not the image's);
    ``strip``: those are removed from the entry too (but the opaque marker, which a layer keeps)."""
    found: dict[str, bytes] = {}
    try:
        names = os.listxattr(fd)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return found
        raise
    for name in names:
        if name.startswith(OVERLAY_XATTR_PREFIXES) and name not in OPAQUE_XATTRS:
            if name.endswith((".redirect", ".metacopy")):
                raise LayerError(f"the upper dir uses overlayfs' {name}: mount it with redirect_dir=off "
                                 f"and metacopy=off to make layers of it")
            if strip:
                with contextlib.suppress(OSError):
                    os.removexattr(fd, name)
            continue
        with contextlib.suppress(OSError):
            found[name] = os.getxattr(fd, name)
    return found


def _link_xattrs(dir_fd: int, name: str) -> dict[str, Any]:
    """Links and devices: their xattrs (security.* on a device node) read without following."""
    found: dict[str, bytes] = {}
    path = f"/proc/self/fd/{dir_fd}/{name}"
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return found
    for key in names:
        if not key.startswith(OVERLAY_XATTR_PREFIXES):
            with contextlib.suppress(OSError):
                found[key] = os.getxattr(path, key, follow_symlinks=False)
    return found
