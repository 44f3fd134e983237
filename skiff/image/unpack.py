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

The tar is read as a stream while the uncompressed bytes are hashed, so memory
stays flat however large the layer is.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import io
import os
import shutil
import stat
import tarfile
from dataclasses import dataclass, field
from typing import BinaryIO

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


# --- streams ------------------------------------------------------------------


class HashingReader(io.RawIOBase):
    """A read-only stream that hashes and counts every byte read through it."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner
        self.hash = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.hash.update(data)
        self.size += n
        return n

    def drain(self) -> None:
        """Read to the end, so trailing padding after the tar's end marker is hashed too."""
        while self.read(CHUNK):
            pass

    @property
    def digest(self) -> str:
        return f"sha256:{self.hash.hexdigest()}"


def compression_of(head: bytes) -> str:
    """``gzip``, ``zstd`` or ``none`` from the first bytes of a layer blob."""
    if head.startswith(_GZIP_MAGIC):
        return "gzip"
    if head.startswith(_ZSTD_MAGIC):
        return "zstd"
    return "none"


def decompressed(fileobj: BinaryIO) -> BinaryIO:
    """A stream of the uncompressed bytes of a gzip, zstd or plain blob (seekable input)."""
    head = fileobj.read(4)
    fileobj.seek(-len(head), io.SEEK_CUR)
    kind = compression_of(head)
    if kind == "gzip":
        return gzip.GzipFile(fileobj=fileobj, mode="rb")  # type: ignore[return-value]
    if kind == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(fileobj, read_across_frames=True)  # type: ignore[return-value]
    return fileobj


# --- unpacking ------------------------------------------------------------------


@dataclass
class UnpackResult:
    diff_id: str      # sha256 of the uncompressed tar
    size: int         # length of the uncompressed tar


def unpack_layer(blob: BinaryIO, dest: str | os.PathLike[str], expected_diff_id: str | None = None) -> UnpackResult:
    """Unpack a (possibly compressed) layer tarball into the existing, empty directory ``dest``.

    Raises LayerError for a malformed or hostile entry and DigestMismatch when the
    uncompressed content does not hash to ``expected_diff_id``. On error ``dest``
    holds partial content: the caller unpacks into a temporary directory and
    discards it.
    """
    reader = HashingReader(decompressed(blob))
    root_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fchmod(root_fd, 0o755)  # the container's `/` unless the layer says otherwise
        unpacker = _Unpacker(root_fd)
        try:
            with tarfile.open(fileobj=io.BufferedReader(reader, CHUNK), mode="r|") as tar:  # type: ignore[arg-type]
                for member in tar:
                    unpacker.add(member, tar)
            reader.drain()
        except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib_error()) as exc:
            raise LayerError(f"invalid layer tarball: {exc}") from None
        unpacker.finish()
    finally:
        os.close(root_fd)
    if expected_diff_id is not None and reader.digest != expected_diff_id:
        raise DigestMismatch(f"layer content has digest {reader.digest}, expected {expected_diff_id}")
    return UnpackResult(reader.digest, reader.size)


def zlib_error() -> type[Exception]:
    import zlib

    return zlib.error


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


@dataclass
class _Unpacker:
    root_fd: int
    dir_times: list[tuple[list[str], int]] = field(default_factory=list)

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

    # --- entries ----------------------------------------------------------------

    def add(self, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        parts = clean_entry_path(member.name)
        if not parts:
            if member.isdir():
                self._apply_root(member)
            return
        base = parts[-1]
        parent = self.open_dir(parts[:-1])
        try:
            if base == OPAQUE_MARKER:
                self._make_opaque(parts[:-1])
            elif base.startswith(WHITEOUT_PREFIX):
                self._whiteout(parent, base[len(WHITEOUT_PREFIX):], member)
            elif member.isdir():
                self._directory(parent, base, parts, member)
            elif member.isreg():
                self._regular(parent, base, member, tar)
            elif member.issym():
                self._symlink(parent, base, member)
            elif member.islnk():
                self._hardlink(parent, base, member)
            elif member.ischr() or member.isblk() or member.isfifo():
                self._node(parent, base, member)
            else:
                raise LayerError(f"unsupported entry type {member.type!r} for {member.name!r} in layer")
        finally:
            os.close(parent)

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

    def _regular(self, parent: int, base: str, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        self._clear(parent, base)
        fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=parent)
        try:
            source = tar.extractfile(member)
            if source is not None:
                while chunk := source.read(CHUNK):
                    _write_all(fd, chunk)
            _apply_fd(fd, member)
            os.utime(fd, ns=(_ns(member.mtime), _ns(member.mtime)))
        finally:
            os.close(fd)

    def _directory(self, parent: int, base: str, parts: list[str], member: tarfile.TarInfo) -> None:
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
        self._clear(parent, base)
        os.symlink(member.linkname, base, dir_fd=parent)
        os.chown(base, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)
        os.utime(base, ns=(_ns(member.mtime),) * 2, dir_fd=parent, follow_symlinks=False)

    def _hardlink(self, parent: int, base: str, member: tarfile.TarInfo) -> None:
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
            self._clear(parent, base)
            # linkat through the /proc magic link of an O_PATH fd links exactly the
            # inode resolved above, with no second path lookup to race against.
            os.link(f"/proc/self/fd/{target_fd}", base, dst_dir_fd=parent, follow_symlinks=True)
        finally:
            os.close(target_fd)

    def _node(self, parent: int, base: str, member: tarfile.TarInfo) -> None:
        self._clear(parent, base)
        kind = stat.S_IFIFO if member.isfifo() else stat.S_IFCHR if member.ischr() else stat.S_IFBLK
        os.mknod(base, kind | 0o600, os.makedev(member.devmajor, member.devminor), dir_fd=parent)
        self._apply_path(parent, base, member)

    def _whiteout(self, parent: int, name: str, member: tarfile.TarInfo) -> None:
        if not name or "/" in name:
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
                os.setxattr(proc, key, value)
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


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _apply_fd(fd: int, member: tarfile.TarInfo) -> None:
    # chown first: it clears setuid/setgid, which chmod then restores.
    os.fchown(fd, member.uid, member.gid)
    os.fchmod(fd, member.mode & 0o7777)
    for key, value in _xattrs(member):
        os.setxattr(fd, key, value)


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
