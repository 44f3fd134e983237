"""Secure, faithful unpacking of one layer tarball into a directory.

Every entry is created relative to a directory fd whose parent was resolved by
the kernel with ``openat2(RESOLVE_IN_ROOT)``: ``..``, absolute paths and
symlinks (even ``link -> /etc`` followed by ``link/passwd``) are all resolved as
if the layer directory were ``/``, so nothing outside it is ever reached. The
final component is created with ``O_EXCL|O_NOFOLLOW`` or the ``*at`` calls,
never following a symlink on the host. Symlink *targets* are stored verbatim:
they are resolved later, inside the container.

Owners (numeric), modes with setuid/setgid/sticky, mtimes, xattrs, hardlinks,
devices and FIFOs are preserved. Docker's whiteouts become overlayfs whiteouts:
``.wh.NAME`` a 0:0 character device ``NAME``, ``.wh..wh..opq`` the xattr
``trusted.overlay.opaque=y`` on its directory.

The blob is read once, front to back, while its uncompressed bytes are hashed:
a layer unpacks while it downloads, and memory stays flat however large it is.

Layers are untrusted: GNU sparse files (old GNU type ``S`` and the PAX
``GNU.sparse.*`` formats 0.0, 0.1 and 1.0) are written sparse, their maps checked
first; what a layer expands to is bounded (``SKIFF_MAX_LAYER_SIZE``, and the free
space of the disk), and every failure, from a malformed header to a name the
filesystem refuses, is a ``LayerError`` that names the entry.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import shutil
import stat
import tarfile
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol, cast

from skiff import linux
from skiff.errors import DigestMismatch, LayerError, SyscallError

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
XATTR_PAX_PREFIX = "SCHILY.xattr."
CHUNK = 1 << 20

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_RESOLVE = linux.RESOLVE_IN_ROOT | linux.RESOLVE_NO_MAGICLINKS


class Readable(Protocol):
    """What a layer blob is read from: a file, an HTTP response, a tee. Only ``read`` is asked of it."""

    def read(self, size: int = -1, /) -> bytes: ...


# --- limits -------------------------------------------------------------------

# What one layer may expand to by default: its tar stream plus the holes of its sparse
# files. Far above real layers (the largest CUDA and ML layers are tens of GiB), far
# below what a decompression or sparse bomb reaches.
DEFAULT_MAX_LAYER_SIZE = 64 << 30
MAX_LAYER_SIZE_ENV = "SKIFF_MAX_LAYER_SIZE"


def max_layer_size() -> int:
    """The limit on one layer's expanded size in bytes; 0 when ``SKIFF_MAX_LAYER_SIZE=0`` lifts it."""
    text = os.environ.get(MAX_LAYER_SIZE_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_LAYER_SIZE
    from skiff.units import ram_in_bytes

    try:
        return ram_in_bytes(text)
    except ValueError:
        from skiff.errors import InvalidArgument

        raise InvalidArgument(f"invalid {MAX_LAYER_SIZE_ENV} {text!r}: expected a size such as 64g, "
                              f"or 0 for no limit") from None


def _gib(size: int) -> str:
    """A limit in skiff's messages: one decimal, GiB or MiB ("64.0 GiB")."""
    from skiff.units import GiB, MiB

    return f"{size / GiB:.1f} GiB" if size >= GiB else f"{size / MiB:.1f} MiB"


class Budget:
    """What a layer may still expand to: ``limit`` bytes in all (0: none), ``disk_free`` on disk.

    The stream counts its uncompressed bytes against it as they are read, and the
    unpacker adds the holes of sparse files, which take no disk but are what the
    container sees (and what a copy of the file would write out).
    """

    def __init__(self, limit: int, disk_free: int | None = None, where: str = "") -> None:
        self.limit = limit
        self.disk_free = disk_free
        self.where = where
        self.holes = 0

    def check(self, stream_bytes: int) -> None:
        if self.limit and stream_bytes + self.holes > self.limit:
            raise LayerError(f"the layer expands to more than {_gib(self.limit)}, the most one layer may "
                             f"hold (set {MAX_LAYER_SIZE_ENV} to change it)")
        if self.disk_free is not None and stream_bytes > self.disk_free:
            raise LayerError(f"not enough disk space to unpack the layer: {_gib(self.disk_free)} was free "
                             f"on the filesystem of {self.where}")

    def add_holes(self, size: int, stream_bytes: int) -> None:
        self.holes += size
        self.check(stream_bytes)


def _free_space(path: str | os.PathLike[str]) -> int:
    """Bytes an unprivileged user may still write there: root's reserve stays for the host."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


# --- streams ------------------------------------------------------------------

# Output bound of one inflate call: keeps memory flat whatever the compression ratio.
INFLATE_OUT = 256 << 10


def compression_of(head: bytes) -> str:
    """``gzip``, ``zstd`` or ``none`` from the first bytes of a layer blob."""
    if head.startswith(_GZIP_MAGIC):
        return "gzip"
    if head.startswith(_ZSTD_MAGIC):
        return "zstd"
    return "none"


def _zlib_module() -> Any:
    """ISA-L's inflate when installed (about twice zlib's speed, same results), else zlib."""
    try:
        from isal import isal_zlib

        return isal_zlib
    except ImportError:
        import zlib

        return zlib


def _decompression_errors() -> tuple[type[Exception], ...]:
    import zlib

    errors: list[type[Exception]] = [zlib.error]
    with contextlib.suppress(ImportError):
        from isal import isal_zlib

        errors.append(isal_zlib.error)  # type: ignore[arg-type]  # isal's stub says an instance: it is the class
    with contextlib.suppress(ImportError):
        import zstandard

        errors.append(zstandard.ZstdError)
    return tuple(errors)


class LayerStream(io.RawIOBase):
    """The uncompressed bytes of a layer blob read from ``source``, hashed and counted as they pass.

    ``source`` needs only ``read``: the compression is sniffed from its first
    bytes, so a blob can be unpacked while it is still being downloaded. The
    stream is seekable forwards only (a forward seek reads and hashes the bytes
    skipped), which is all ``tarfile``'s ``r:`` mode asks of it; a backward seek
    raises, so no byte is ever hashed twice or missed.
    """

    def __init__(self, source: Readable, budget: Budget | None = None) -> None:
        self._source = source
        self._budget = budget
        self.hash = hashlib.sha256()
        self.size = 0
        head = b""
        while len(head) < len(_ZSTD_MAGIC):
            more = source.read(len(_ZSTD_MAGIC) - len(head))
            if not more:
                break
            head += more
        self.compression = compression_of(head)
        self._input = head                  # compressed bytes not yet inflated
        self._inflater: Any = None          # the gzip member being inflated
        self._zlib = _zlib_module() if self.compression == "gzip" else None
        self._zstd: Any = None
        if self.compression == "zstd":
            import zstandard

            # zstandard's stub asks for a file; its reader calls only read (as _Prefixed has it)
            self._zstd = zstandard.ZstdDecompressor().stream_reader(_Prefixed(head, source),  # type: ignore[arg-type]
                                                                    read_across_frames=True)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.size

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = offset if whence == io.SEEK_SET else self.size + offset if whence == io.SEEK_CUR else -1
        if target < self.size:
            raise io.UnsupportedOperation("a layer stream only seeks forwards")
        while self.size < target and self._next(min(CHUNK, target - self.size)):
            pass
        return self.size

    def readinto(self, buffer: Any) -> int:
        data = self._next(len(buffer))
        n = len(data)
        buffer[:n] = data
        return n

    def drain(self) -> None:
        """Read to the end, so trailing padding after the tar's end marker is hashed too."""
        while self._next(CHUNK):
            pass

    @property
    def digest(self) -> str:
        return f"sha256:{self.hash.hexdigest()}"

    def _next(self, limit: int) -> bytes:
        if self.compression == "gzip":
            data = self._inflate(min(limit, INFLATE_OUT))
        elif self.compression == "zstd":
            data = self._zstd.read(limit)
        elif self._input:
            data, self._input = self._input[:limit], self._input[limit:]
        else:
            data = self._source.read(limit)
        if data:
            self.hash.update(data)
            self.size += len(data)
            if self._budget is not None:
                self._budget.check(self.size)
        return data

    def _inflate(self, limit: int) -> bytes:
        """Up to ``limit`` bytes of the gzip stream; members are concatenated, as gzip(1) does."""
        while True:
            if not self._input:
                self._input = self._source.read(CHUNK)
                if not self._input:
                    if self._inflater is not None:
                        raise LayerError("invalid layer tarball: the gzip stream ends in the middle of a member")
                    return b""
            if self._inflater is None:
                # Zero padding between or after members is allowed, as Python's gzip module allows it.
                self._input = self._input.lstrip(b"\0")
                if not self._input:
                    continue
                assert self._zlib is not None  # set for a gzip stream, the only one inflated
                self._inflater = self._zlib.decompressobj(31)
            data = self._inflater.decompress(self._input, limit)
            if self._inflater.eof:
                self._input = self._inflater.unused_data
                self._inflater = None
            else:
                self._input = self._inflater.unconsumed_tail
            if data:
                return data


class _Prefixed:
    """``head`` then the rest of ``source``: the bytes read to sniff the compression, given back."""

    def __init__(self, head: bytes, source: Readable) -> None:
        self._head = head
        self._source = source

    def read(self, size: int = -1) -> bytes:
        if self._head:
            data = self._head if size < 0 else self._head[:size]
            self._head = self._head[len(data):]
            return data
        return self._source.read(size)


def uncompressed_digest(blob: Readable) -> tuple[str, int]:
    """The diff_id and uncompressed length of a layer blob, without unpacking it."""
    stream = LayerStream(blob, Budget(max_layer_size()))
    try:
        stream.drain()
    except _decompression_errors() as exc:
        raise LayerError(f"invalid layer blob: {exc}") from None
    return stream.digest, stream.size


# --- unpacking ------------------------------------------------------------------


@dataclass
class UnpackResult:
    diff_id: str      # sha256 of the uncompressed tar
    size: int         # length of the uncompressed tar


def unpack_layer(blob: Readable, dest: str | os.PathLike[str], expected_diff_id: str | None = None) -> UnpackResult:
    """Unpack a (possibly compressed) layer tarball into the existing, empty directory ``dest``.

    ``blob`` is read once, front to back, and needs only ``read``. Raises
    LayerError for a malformed or hostile entry and DigestMismatch when the
    uncompressed content does not hash to ``expected_diff_id``. On error ``dest``
    holds partial content: the caller unpacks into a temporary directory and
    discards it.
    """
    root_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    budget = Budget(max_layer_size(), _free_space(dest), str(dest))
    reader = LayerStream(blob, budget)
    unpacker = _Unpacker(root_fd, budget, reader)
    try:
        os.fchmod(root_fd, 0o755)  # the container's `/` unless the layer says otherwise
        try:
            tar_bytes = io.BufferedReader(reader, CHUNK)
            # ``r:`` (not the streaming ``r|``) reads headers and contents straight from the
            # buffer, which only ever moves forwards here; ``r|`` re-buffers every 10 KiB.
            with tarfile.open(fileobj=tar_bytes, mode="r:", tarinfo=_LayerTarInfo) as tar:
                for member in tar:
                    unpacker.add_checked(member, tar_bytes, tar)
            while tar_bytes.read(CHUNK):
                pass  # trailing padding after the end marker is part of the diff_id
        except (tarfile.TarError, EOFError, io.UnsupportedOperation) + _decompression_errors() as exc:
            raise LayerError(f"invalid layer tarball: {_tar_error(exc)}") from None
        except (ValueError, OverflowError) as exc:  # tarfile's own parsing of hostile headers
            raise LayerError(f"invalid layer tarball: {exc}") from None
        unpacker.finish()
    finally:
        unpacker.close()
        os.close(root_fd)
    if expected_diff_id is not None and reader.digest != expected_diff_id:
        raise DigestMismatch(f"layer content has digest {reader.digest}, expected {expected_diff_id}")
    return UnpackResult(reader.digest, reader.size)


def clean_entry_path(name: str) -> list[str]:
    """The path components of a tar entry name, relative to the layer root.

    A leading ``/`` is dropped (as Docker does); a ``..`` that would climb above
    the root is refused rather than guessed at.
    """
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise LayerError(f"refusing layer entry {name!r}: it climbs out of the layer with '..'")
            parts.pop()
            continue
        parts.append(part)
    return parts


# Go's archive/tar (Docker's) bounds PAX headers and GNU long names the same way; tarfile
# would read one of any size into memory. Sparse maps are bounded by their region count.
MAX_META_SIZE = 1 << 20
MAX_SPARSE_REGIONS = 1 << 16


class _LayerTarInfo(tarfile.TarInfo):
    """tarfile's member parsing with a bound on everything it would hold in memory.

    These are the ``_proc_*`` hooks tarfile offers subclasses; the sparse ones repeat
    its own parsing with a count check, so a hostile map cannot grow without end.
    typeshed leaves tarfile's private names out: the ignores below are for those.
    """

    def _proc_member(self, tarfile_: Any) -> Any:
        meta = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME,
                tarfile.GNUTYPE_LONGLINK)
        if self.type in meta and self.size > MAX_META_SIZE:
            raise LayerError(f"invalid layer tarball: an extended header of {self.size} bytes "
                             f"(at most {MAX_META_SIZE})")
        return super()._proc_member(tarfile_)  # type: ignore[misc]

    def _proc_sparse(self, tarfile_: Any) -> Any:
        structs, isextended, origsize = self._sparse_structs  # type: ignore[attr-defined]
        del self._sparse_structs  # type: ignore[attr-defined]
        while isextended:
            buf = tarfile_.fileobj.read(tarfile.BLOCKSIZE)
            if len(buf) != tarfile.BLOCKSIZE:
                raise LayerError("invalid layer tarball: it ends inside a sparse file's header")
            for pos in range(0, 21 * 24, 24):
                try:
                    offset, numbytes = (tarfile.nti(buf[pos:pos + 12]),  # type: ignore[attr-defined]
                                        tarfile.nti(buf[pos + 12:pos + 24]))  # type: ignore[attr-defined]
                except tarfile.InvalidHeaderError:  # type: ignore[attr-defined]
                    break
                if offset and numbytes:
                    structs.append((offset, numbytes))
            if len(structs) > MAX_SPARSE_REGIONS:
                raise _too_many_regions(self.name)
            isextended = bool(buf[504])
        self.sparse = structs
        self.offset_data = tarfile_.fileobj.tell()
        tarfile_.offset = self.offset_data + self._block(self.size)  # type: ignore[attr-defined]
        self.size = origsize
        return self

    def _proc_gnusparse_01(self, next: Any, pax_headers: dict[str, str]) -> None:
        if pax_headers["GNU.sparse.map"].count(",") >= 2 * MAX_SPARSE_REGIONS:
            raise _too_many_regions(next.name)
        super()._proc_gnusparse_01(next, pax_headers)  # type: ignore[misc]

    def _proc_gnusparse_10(self, next: Any, pax_headers: dict[str, str], tarfile_: Any) -> None:
        sparse: list[int] = []
        buf = tarfile_.fileobj.read(tarfile.BLOCKSIZE)
        count, _, buf = buf.partition(b"\n")
        fields = int(count)
        if not 0 <= fields <= MAX_SPARSE_REGIONS:
            raise _too_many_regions(next.name)
        while len(sparse) < fields * 2:
            if b"\n" not in buf:
                more = tarfile_.fileobj.read(tarfile.BLOCKSIZE)
                if not more:
                    raise LayerError("invalid layer tarball: it ends inside a sparse file's map")
                buf += more
            number, buf = buf.split(b"\n", 1)
            sparse.append(int(number))
        next.offset_data = tarfile_.fileobj.tell()
        next.sparse = list(zip(sparse[::2], sparse[1::2]))


def _too_many_regions(name: str) -> LayerError:
    return LayerError(f"refusing sparse file {name!r} in layer: its map has more than "
                      f"{MAX_SPARSE_REGIONS} regions")


def _tar_error(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, tarfile.ReadError) and text == "empty file":
        return "the file is empty"
    return text or type(exc).__name__


def _entry_error(member: tarfile.TarInfo, exc: OSError) -> LayerError:
    """One line for an entry the kernel refused: the entry's name, never an fd number."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return LayerError(f"no space left on the device while unpacking {member.name!r} from the layer")
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    shown = member.name if len(member.name) <= 120 else member.name[:100] + "..."
    return LayerError(f"cannot unpack {shown!r} from the layer: {reason}")


# Owners and groups a filesystem can store: 32 bits, less (uid_t)-1, which means "unchanged".
_MAX_ID = (1 << 32) - 2


def _check_member(member: tarfile.TarInfo) -> None:
    """Refuse header values the calls below would choke on with a bare ValueError or OverflowError."""
    name = member.name.partition("\0")[0]
    if "\0" in member.name or "\0" in member.linkname:
        raise LayerError(f"refusing layer entry {name!r}: its name or link target holds a NUL byte")
    for what, number in (("uid", member.uid), ("gid", member.gid)):
        if not isinstance(number, int) or not 0 <= number <= _MAX_ID:
            raise LayerError(f"refusing layer entry {name!r}: {what} {number!r} is out of range")
    # Nanoseconds must fit utimensat's 64 bits; NaN and infinities fail every comparison.
    if not isinstance(member.mtime, (int, float)) or not -_MAX_MTIME < member.mtime < _MAX_MTIME:
        raise LayerError(f"refusing layer entry {name!r}: invalid modification time {member.mtime!r}")
    if member.size < 0:
        raise LayerError(f"refusing layer entry {name!r}: negative size {member.size}")


_MAX_MTIME = 1 << 33  # seconds: the year 2242


@dataclass
class _Unpacker:
    root_fd: int
    budget: Budget = field(default_factory=lambda: Budget(0))
    reader: LayerStream | None = None
    dir_times: list[tuple[list[str], float]] = field(default_factory=list)
    # The parent directory of the previous entry, kept open for the next entry in the same
    # directory (most of a layer): (its components, an O_PATH fd), or None.
    parent: tuple[list[str], int] | None = None

    def close(self) -> None:
        self._forget_parent()

    # --- parents ------------------------------------------------------------

    def open_dir(self, parts: list[str], flags: int = os.O_PATH) -> int:
        """Open the directory ``parts`` inside the root, creating missing ones (mode 0755)."""
        rel = "/".join(parts) or "."
        for _attempt in range(2):
            try:
                return linux.openat2(self.root_fd, rel, flags | os.O_DIRECTORY, resolve=_RESOLVE)
            except SyscallError as exc:
                if exc.errno == errno.ENOTDIR:
                    raise LayerError(f"refusing layer entry under {rel!r}: a parent is not a directory") from None
                if exc.errno != errno.ENOENT or not parts:
                    raise LayerError(f"cannot open {rel!r} in layer: {os.strerror(exc.errno)}") from None
            parent = self.open_dir(parts[:-1])
            try:
                os.mkdir(parts[-1], 0o755, dir_fd=parent)
                created = os.open(parts[-1], os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                  dir_fd=parent)
                os.fchmod(created, 0o755)  # Docker's mode for implied parents, whatever our umask
                os.close(created)
            except FileExistsError:
                pass  # a symlink that resolves nowhere inside the root: the retry reports it
            finally:
                os.close(parent)
        raise LayerError(f"refusing layer entry under {rel!r}: it goes through a dangling symlink")

    def _parent_of(self, dir_parts: list[str]) -> int:
        """An fd of the directory ``dir_parts``, reused from the previous entry when it is the same.

        Reuse is exact: the cache is dropped after any entry that could change how a path
        resolves (a directory, symlink or whiteout created, anything removed), so the fd is
        always what a fresh ``openat2(RESOLVE_IN_ROOT)`` would return.
        """
        if self.parent is not None and self.parent[0] == dir_parts:
            return self.parent[1]
        self._forget_parent()
        fd = self.open_dir(dir_parts)
        self.parent = (dir_parts, fd)
        return fd

    def _forget_parent(self) -> None:
        if self.parent is not None:
            os.close(self.parent[1])
            self.parent = None

    # --- entries ----------------------------------------------------------------

    def add_checked(self, member: tarfile.TarInfo, stream: BinaryIO, tar: tarfile.TarFile) -> None:
        """``add``, with whatever the kernel or Python refuses turned into a LayerError naming the entry."""
        _check_member(member)
        try:
            self.add(member, stream, tar)
        except OSError as exc:
            raise _entry_error(member, exc) from None
        except (ValueError, OverflowError) as exc:
            raise LayerError(f"refusing layer entry {member.name!r}: {exc}") from None

    def add(self, member: tarfile.TarInfo, stream: BinaryIO, tar: tarfile.TarFile) -> None:
        """Create ``member``; its content (if any) is read from ``stream``, the tar's own bytes."""
        parts = clean_entry_path(member.name)
        if not parts:
            if member.isdir():
                self._apply_root(member)
            return
        base = parts[-1]
        parent = self._parent_of(parts[:-1])
        keeps_paths = False  # True only for entries that cannot change how any path resolves
        try:
            if base == OPAQUE_MARKER:
                self._make_opaque(parts[:-1])
                keeps_paths = True
            elif base.startswith(WHITEOUT_PREFIX):
                self._whiteout(parent, base[len(WHITEOUT_PREFIX):], member)
            elif member.isdir():
                self._directory(parent, base, parts, member)
            elif member.isreg():
                keeps_paths = self._regular(parent, base, member, stream, tar)
            elif member.issym():
                self._symlink(parent, base, member)
            elif member.islnk():
                keeps_paths = self._hardlink(parent, base, member)
            elif member.ischr() or member.isblk() or member.isfifo():
                keeps_paths = self._node(parent, base, member)
            else:
                raise LayerError(f"unsupported entry type {member.type!r} for {member.name!r} in layer")
        finally:
            if not keeps_paths:
                self._forget_parent()

    def _clear(self, parent: int, base: str, keep_dir: bool = False) -> bool:
        """Remove what is at ``base``; keep an existing directory if ``keep_dir``. True if kept."""
        try:
            st = os.lstat(base, dir_fd=parent)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return True
            shutil.rmtree(base, dir_fd=parent)
        else:
            os.unlink(base, dir_fd=parent)
        return False

    def _regular(self, parent: int, base: str, member: tarfile.TarInfo, stream: BinaryIO,
                 tar: tarfile.TarFile) -> bool:
        """Create a regular file; True unless something had to be removed first."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fresh = True
        try:
            fd = os.open(base, flags, 0o600, dir_fd=parent)
        except FileExistsError:
            # Creating first and clearing only on EEXIST saves an lstat per entry.
            self._clear(parent, base)
            fd = os.open(base, flags, 0o600, dir_fd=parent)
            fresh = False
        try:
            stream.seek(member.offset_data)
            if member.sparse is not None:
                self._copy_sparse(fd, stream, member, tar.offset - member.offset_data)
            else:
                self._copy(fd, stream, member)
            _apply_fd(fd, member)
            os.utime(fd, ns=(_ns(member.mtime), _ns(member.mtime)))
        finally:
            os.close(fd)
        return fresh

    @staticmethod
    def _copy(fd: int, source: BinaryIO, member: tarfile.TarInfo, size: int | None = None) -> None:
        left = member.size if size is None else size
        while left > 0:
            chunk = source.read(min(CHUNK, left))
            if not chunk:
                raise LayerError(f"invalid layer tarball: unexpected end of data in {member.name!r}")
            _write_all(fd, chunk)
            left -= len(chunk)

    def _copy_sparse(self, fd: int, source: BinaryIO, member: tarfile.TarInfo, stored: int) -> None:
        """Write a GNU sparse file as a sparse file: its data regions where the map puts them,
        holes left as holes, then the file cut to its real size.

        The tar holds the regions' bytes back to back (``stored`` bytes at most, up to the
        next header); the map must list them in order, without overlap, inside the file.
        """
        regions = _check_sparse_map(member, stored)
        holes = member.size - sum(length for _offset, length in regions)
        self.budget.add_holes(holes, self.reader.size if self.reader is not None else 0)
        for offset, length in regions:
            os.lseek(fd, offset, os.SEEK_SET)
            self._copy(fd, source, member, length)
        os.ftruncate(fd, member.size)

    def _directory(self, parent: int, base: str, parts: list[str], member: tarfile.TarInfo) -> None:
        try:
            os.mkdir(base, 0o700, dir_fd=parent)
        except FileExistsError:
            if not self._clear(parent, base, keep_dir=True):
                os.mkdir(base, 0o700, dir_fd=parent)
        fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        try:
            _apply_fd(fd, member)
        finally:
            os.close(fd)
        # A directory's mtime changes whenever an entry is added below it: set it last.
        self.dir_times.append((parts, member.mtime))

    def _apply_root(self, member: tarfile.TarInfo) -> None:
        fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=self.root_fd)
        try:
            _apply_fd(fd, member)
        finally:
            os.close(fd)
        self.dir_times.append(([], member.mtime))

    def _symlink(self, parent: int, base: str, member: tarfile.TarInfo) -> None:
        try:
            os.symlink(member.linkname, base, dir_fd=parent)
        except FileExistsError:
            self._clear(parent, base)
            os.symlink(member.linkname, base, dir_fd=parent)
        os.chown(base, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)
        os.utime(base, ns=(_ns(member.mtime),) * 2, dir_fd=parent, follow_symlinks=False)

    def _hardlink(self, parent: int, base: str, member: tarfile.TarInfo) -> bool:
        target_parts = clean_entry_path(member.linkname)
        target = "/".join(target_parts)
        try:
            target_fd = linux.openat2(self.root_fd, target or ".", os.O_PATH | os.O_NOFOLLOW, resolve=_RESOLVE)
        except SyscallError as exc:
            raise LayerError(f"refusing hardlink {member.name!r} -> {member.linkname!r}: the target is not "
                             f"in this layer ({os.strerror(exc.errno)})") from None
        try:
            if not stat.S_ISREG(os.fstat(target_fd).st_mode):
                raise LayerError(f"refusing hardlink {member.name!r} -> {member.linkname!r}: "
                                 f"the target is not a regular file")
            # linkat through the /proc magic link of an O_PATH fd links exactly the
            # inode resolved above, with no second path lookup to race against.
            source = f"/proc/self/fd/{target_fd}"
            try:
                os.link(source, base, dst_dir_fd=parent, follow_symlinks=True)
                return True
            except FileExistsError:
                self._clear(parent, base)
                os.link(source, base, dst_dir_fd=parent, follow_symlinks=True)
                return False
        finally:
            os.close(target_fd)

    def _node(self, parent: int, base: str, member: tarfile.TarInfo) -> bool:
        kind = stat.S_IFIFO if member.isfifo() else stat.S_IFCHR if member.ischr() else stat.S_IFBLK
        device = os.makedev(member.devmajor, member.devminor)
        fresh = True
        try:
            os.mknod(base, kind | 0o600, device, dir_fd=parent)
        except FileExistsError:
            self._clear(parent, base)
            os.mknod(base, kind | 0o600, device, dir_fd=parent)
            fresh = False
        self._apply_path(parent, base, member)
        return fresh

    def _whiteout(self, parent: int, name: str, member: tarfile.TarInfo) -> None:
        # ".wh.." and ".wh..." would name the directory itself or its parent: clearing those
        # would empty the parent, or the directory above the whole layer.
        if not name or "/" in name or name in (".", ".."):
            raise LayerError(f"invalid whiteout {member.name!r} in layer")
        self._clear(parent, name)
        os.mknod(name, stat.S_IFCHR | 0o600, os.makedev(0, 0), dir_fd=parent)
        os.chown(name, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)

    def _make_opaque(self, dir_parts: list[str]) -> None:
        fd = self.open_dir(dir_parts, os.O_RDONLY)
        try:
            os.setxattr(fd, OPAQUE_XATTR, b"y")
        finally:
            os.close(fd)

    def _apply_path(self, parent: int, base: str, member: tarfile.TarInfo) -> None:
        """Owner, mode, xattrs and mtime of a device or FIFO, which cannot be opened for I/O safely."""
        fd = os.open(base, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        try:
            proc = f"/proc/self/fd/{fd}"
            os.chown(proc, member.uid, member.gid)
            os.chmod(proc, member.mode & 0o7777)
            for key, value in _xattrs(member):
                _set_xattr(proc, key, value, member)
        finally:
            os.close(fd)
        os.utime(base, ns=(_ns(member.mtime),) * 2, dir_fd=parent, follow_symlinks=False)

    def finish(self) -> None:
        """Set directory mtimes, deepest first, now that nothing more is added below them."""
        for parts, mtime in sorted(self.dir_times, key=lambda item: len(item[0]), reverse=True):
            try:
                fd = linux.openat2(self.root_fd, "/".join(parts) or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW,
                                   resolve=_RESOLVE)
            except SyscallError:
                continue  # replaced by a later entry
            try:
                os.utime(fd, ns=(_ns(mtime), _ns(mtime)))
            finally:
                os.close(fd)


def _check_sparse_map(member: tarfile.TarInfo, stored: int) -> list[tuple[int, int]]:
    """The data regions of a sparse entry, or LayerError if its map is not a sane one."""
    # Old GNU headers pad their map with (0, 0) and GNU tar ends it with (size, 0): empty
    # regions say nothing.
    # typeshed says bytes; tarfile keeps the (offset, length) pairs of the map there
    sparse = cast("list[tuple[int, int]] | None", member.sparse)
    regions = [(offset, length) for offset, length in sparse or [] if length != 0]
    end = 0
    total = 0
    for offset, length in regions:
        if not (isinstance(offset, int) and isinstance(length, int)) or offset < end or length < 0:
            raise LayerError(f"refusing sparse file {member.name!r} in layer: its map lists regions "
                             f"out of order or overlapping")
        end = offset + length
        total += length
    if end > member.size or member.size > _MAX_FILE_SIZE:
        raise LayerError(f"refusing sparse file {member.name!r} in layer: its map reaches past its size "
                         f"({member.size} bytes)")
    if total > stored:
        raise LayerError(f"refusing sparse file {member.name!r} in layer: its map holds {total} bytes of "
                         f"data, the archive {stored}")
    return regions


# The largest file size Linux's filesystems take (loff_t); larger would fail with EFBIG or EINVAL.
_MAX_FILE_SIZE = (1 << 63) - 1


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _apply_fd(fd: int, member: tarfile.TarInfo) -> None:
    # chown first: it clears setuid/setgid, which chmod then restores.
    os.fchown(fd, member.uid, member.gid)
    os.fchmod(fd, member.mode & 0o7777)
    for key, value in _xattrs(member):
        _set_xattr(fd, key, value, member)


def _set_xattr(target: int | str, key: str, value: bytes, member: tarfile.TarInfo) -> None:
    try:
        os.setxattr(target, key, value)
    except OSError as exc:
        raise LayerError(f"cannot set extended attribute {key[:64]!r} of {member.name!r} from the layer: "
                         f"{os.strerror(exc.errno or errno.EIO)}") from None


def _xattrs(member: tarfile.TarInfo) -> list[tuple[str, bytes]]:
    result = []
    for key, value in member.pax_headers.items():
        if not key.startswith(XATTR_PAX_PREFIX):
            continue
        name = key[len(XATTR_PAX_PREFIX):]
        # overlayfs' own xattrs would let a layer redirect lookups into other layers.
        if name.startswith("trusted.overlay."):
            continue
        result.append((name, value.encode("utf-8", "surrogateescape")))
    return result


def _ns(mtime: float) -> int:
    return int(mtime * 1_000_000_000)
