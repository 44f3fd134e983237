"""Sources of COPY and ADD: found in the build context (or a stage's or image's root) without ever
leaving it, hashed for the build cache, and copied into the image's root by file descriptor.

A source path is cleaned lexically and refused if it climbs out (``COPY ../x``); it is then opened
with ``openat2(RESOLVE_IN_ROOT)`` from the context's fd, so a link in the context, even
``link -> /etc``, resolves inside the context. Below a source directory nothing is followed:
links are copied as links. The destination's directory is resolved inside the image's root the
same way, and every entry is created relative to its parent's fd with ``O_NOFOLLOW``.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import hashlib
import os
import posixpath
import stat
from typing import Any, Iterator, NamedTuple

from skiff import linux
from skiff.build.ignore import IgnoreRules
from skiff.errors import BuildError, SyscallError

IN_ROOT = linux.RESOLVE_IN_ROOT | linux.RESOLVE_NO_MAGICLINKS
CHUNK = 1 << 20


class Root(NamedTuple):
    """Where sources are read from: a directory fd and the rules that leave entries out."""

    fd: int
    ignore: IgnoreRules
    name: str            # "build context" or "stage NAME", for messages


class Source(NamedTuple):
    rel: str             # cleaned, relative to the root ("" for the root itself)
    fd: int              # O_PATH fd of the source (top-level links followed inside the root)
    is_dir: bool


class Owner(NamedTuple):
    uid: int
    gid: int


def clean_source(path: str, where: str) -> str:
    """A source as a clean relative path; refused if it climbs out of the context."""
    joined = posixpath.normpath(posixpath.join("/", path))
    if posixpath.normpath(path).startswith("..") and not path.startswith("/"):
        raise BuildError(f"{where}: forbidden path outside the build context: {path}")
    return joined.lstrip("/")


def resolve_sources(root: Root, patterns: list[str], where: str) -> list[Source]:
    """Open every source the patterns name (globs matched against the root's entries)."""
    found: list[Source] = []
    for pattern in patterns:
        rel = clean_source(pattern, where)
        names = _glob(root, rel) if any(c in rel for c in "*?[") else [rel]
        if not names:
            raise BuildError(f"{where}: no source files were specified" if not rel else
                             f"{where}: file not found in {root.name} or excluded by .dockerignore: {pattern}")
        for name in names:
            found.append(_open_source(root, name, pattern, where))
    return found


def _open_source(root: Root, rel: str, pattern: str, where: str) -> Source:
    if rel and root.ignore.ignored(rel):
        raise BuildError(f"{where}: file not found in {root.name} or excluded by .dockerignore: "
                         f"stat {pattern}: file does not exist")
    try:
        fd = linux.openat2(root.fd, rel or ".", os.O_PATH, resolve=IN_ROOT)
    except SyscallError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            raise BuildError(f"{where}: file not found in {root.name} or excluded by .dockerignore: "
                             f"stat {pattern}: file does not exist") from None
        raise
    return Source(rel, fd, stat.S_ISDIR(os.fstat(fd).st_mode))


def _glob(root: Root, pattern: str) -> list[str]:
    """Entries whose path matches, component by component (Go's filepath.Match), sorted."""
    parts = pattern.split("/")
    matches = [""]
    for index, part in enumerate(parts):
        following: list[str] = []
        for base in matches:
            try:
                fd = linux.openat2(root.fd, base or ".", os.O_RDONLY | os.O_DIRECTORY, resolve=IN_ROOT)
            except SyscallError:
                continue
            try:
                names = sorted(os.listdir(fd))
            finally:
                os.close(fd)
            for name in names:
                if fnmatch.fnmatchcase(name, part):
                    path = f"{base}/{name}" if base else name
                    if not root.ignore.ignored(path) or index < len(parts) - 1:
                        following.append(path)
        matches = following
    return matches


def close_sources(sources: list[Source]) -> None:
    for source in sources:
        with contextlib.suppress(OSError):
            os.close(source.fd)


# --- hashing (the build cache's key for COPY and ADD) -------------------------------------------


def hash_sources(root: Root, sources: list[Source], known: dict[str, list[Any]] | None = None) -> str:
    """A digest of what the sources hold: names, types, modes, owners, link targets and content
    (not times: a touched file with the same bytes is still a cache hit, as Docker's).

    ``known``: file digests by ``device:inode`` with the size, mtime and ctime they were read at
    (BuildKit keeps the same): a file whose stat still matches is not read again. Any write to a
    file changes its ctime, which no user can set back, so a stale digest is never used."""
    digest = hashlib.sha256()
    for source in sources:
        digest.update(f"source {source.rel}\0".encode())
        for rel, st, dir_fd, name in _entries(root, source):
            digest.update(f"{rel}\0{st.st_mode:o}\0{st.st_uid}:{st.st_gid}\0{st.st_size}\0".encode())
            if stat.S_ISLNK(st.st_mode):
                digest.update(os.readlink(name, dir_fd=dir_fd).encode())
            elif stat.S_ISREG(st.st_mode):
                digest.update(_file_digest(dir_fd, name, st, known).encode())
    return f"sha256:{digest.hexdigest()}"


def _file_digest(dir_fd: int, name: str, st: os.stat_result, known: dict[str, list[Any]] | None) -> str:
    key = f"{st.st_dev}:{st.st_ino}"
    stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns]
    if known is not None:
        seen = known.get(key)
        if isinstance(seen, list) and seen[:3] == stamp and len(seen) == 4:
            return str(seen[3])
    content = hashlib.sha256()
    path = name or f"/proc/self/fd/{dir_fd}"  # no name: the fd is the file itself (O_PATH)
    with os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW * bool(name) | os.O_CLOEXEC, dir_fd=dir_fd), "rb") as f:
        while chunk := f.read(CHUNK):
            content.update(chunk)
    if known is not None:
        known[key] = [*stamp, content.hexdigest()]
    return content.hexdigest()


def _entries(root: Root, source: Source) -> Iterator[tuple[str, os.stat_result, int, str]]:
    """(path below the source, stat, directory fd, name in it; "" and the source's own fd for the
    source itself) of the source and everything under it, sorted; links below the top are never
    followed (every name is looked up without following)."""
    yield "", os.fstat(source.fd), source.fd, ""
    if source.is_dir:
        fd = os.open(f"/proc/self/fd/{source.fd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            yield from _walk(root, fd, source.rel, "")
        finally:
            os.close(fd)


def _walk(root: Root, fd: int, rel: str, below: str) -> Iterator[tuple[str, os.stat_result, int, str]]:
    ignore = root.ignore
    for name in sorted(os.listdir(fd)):
        path = f"{rel}/{name}" if rel else name
        excluded = ignore.ignored(path)
        if excluded and not ignore.has_exceptions:
            continue
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        inner = f"{below}/{name}" if below else name
        if not excluded:
            yield inner, st, fd, name
        if stat.S_ISDIR(st.st_mode):
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            try:
                yield from _walk(root, child, path, inner)
            finally:
                os.close(child)


# --- copying ----------------------------------------------------------------------------------


def mkdir_in_root(root_fd: int, path: str, owner: Owner | None = None) -> int:
    """An O_PATH fd of the directory ``path`` inside the root, made (0755) where missing."""
    parts = [p for p in posixpath.normpath("/" + path).split("/") if p]
    current = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=root_fd)
    for index, part in enumerate(parts):
        try:
            nxt = linux.openat2(root_fd, "/".join(parts[:index + 1]), os.O_PATH | os.O_DIRECTORY, resolve=IN_ROOT)
        except SyscallError as exc:
            if exc.errno != errno.ENOENT:
                os.close(current)
                raise BuildError(f"cannot make the directory {path!r} in the image: {os.strerror(exc.errno)}") from None
            # *at calls that write need a real directory fd: the O_PATH one reopened, for this call only
            writable = os.open(f"/proc/self/fd/{current}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.mkdir(part, 0o755, dir_fd=writable)
                if owner is not None:
                    os.chown(part, owner.uid, owner.gid, dir_fd=writable, follow_symlinks=False)
                nxt = os.open(part, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=writable)
            finally:
                os.close(writable)
        os.close(current)
        current = nxt
    return current


class Copier:
    """Copies sources into a directory of the image, owner and mode as COPY's flags say."""

    def __init__(self, root: Root, owner: Owner | None, chmod: int | None, keep_owner: bool = False) -> None:
        self.root = root
        self.owner = owner or Owner(0, 0)
        self.chmod = chmod
        self.keep_owner = keep_owner   # an archive ADD unpacks: its entries keep their owners
        # (device, inode) of a source file with several links -> an O_PATH fd of its first copy,
        # so its other names become links to that copy, as the tar Docker copies through keeps them
        self.linked: dict[tuple[int, int], int] = {}

    def copy(self, source: Source, dest_dir_fd: int, name: str | None) -> None:
        """A file source as ``dest_dir/name``; a directory's content into ``dest_dir`` itself."""
        dest = os.open(f"/proc/self/fd/{dest_dir_fd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            if source.is_dir:
                self._tree(source.fd, source.rel, dest)
            else:
                self._entry(source.fd, os.fstat(source.fd), dest, name or posixpath.basename(source.rel))
        finally:
            os.close(dest)
            for fd in self.linked.values():
                os.close(fd)
            self.linked.clear()

    def _tree(self, src_path_fd: int, rel: str, dest: int) -> None:
        src = os.open(f"/proc/self/fd/{src_path_fd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for name in sorted(os.listdir(src)):
                path = f"{rel}/{name}" if rel else name
                excluded = self.root.ignore.ignored(path)
                if excluded and not self.root.ignore.has_exceptions:
                    continue
                child = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src)
                try:
                    st = os.fstat(child)
                    if excluded and not stat.S_ISDIR(st.st_mode):
                        continue
                    self._entry(child, st, dest, name, rel=path)
                finally:
                    os.close(child)
        finally:
            os.close(src)

    def _entry(self, src_fd: int, st: os.stat_result, dest: int, name: str, rel: str = "") -> None:
        mode = self.chmod if self.chmod is not None else stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            self._make_dir(dest, name)
            sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dest)
            try:
                self._tree(src_fd, rel or name, sub)
                os.fchown(sub, *self._owner_of(st))
                os.fchmod(sub, mode)
                os.utime(sub, ns=(st.st_mtime_ns, st.st_mtime_ns))
            finally:
                os.close(sub)
            return
        self._clear(dest, name)
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink("", dir_fd=src_fd), name, dir_fd=dest)
            os.chown(name, *self._owner_of(st), dir_fd=dest, follow_symlinks=False)
            return
        if not stat.S_ISREG(st.st_mode):
            return  # devices, fifos and sockets of a context are not copied
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in self.linked:
            # linkat(AT_SYMLINK_FOLLOW) of /proc/self/fd/N links the very inode the fd holds
            os.link(f"/proc/self/fd/{self.linked[key]}", name, dst_dir_fd=dest, follow_symlinks=True)
            return
        with os.fdopen(os.open(f"/proc/self/fd/{src_fd}", os.O_RDONLY | os.O_CLOEXEC), "rb") as src:
            out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                          dir_fd=dest)
            try:
                _copy_data(src.fileno(), out, st.st_size)
                os.fchown(out, *self._owner_of(st))
                os.fchmod(out, mode)
                os.utime(out, ns=(st.st_mtime_ns, st.st_mtime_ns))
                if st.st_nlink > 1:
                    self.linked[key] = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dest)
            finally:
                os.close(out)

    def _owner_of(self, st: os.stat_result) -> tuple[int, int]:
        return (st.st_uid, st.st_gid) if self.keep_owner else self.owner

    @staticmethod
    def _make_dir(dest: int, name: str) -> None:
        try:
            existing = os.stat(name, dir_fd=dest, follow_symlinks=False)
        except FileNotFoundError:
            os.mkdir(name, 0o755, dir_fd=dest)
            return
        if not stat.S_ISDIR(existing.st_mode):
            os.unlink(name, dir_fd=dest)
            os.mkdir(name, 0o755, dir_fd=dest)

    @staticmethod
    def _clear(dest: int, name: str) -> None:
        try:
            existing = os.stat(name, dir_fd=dest, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(existing.st_mode):
            raise BuildError(f"cannot overwrite directory {name!r} with a non-directory")
        os.unlink(name, dir_fd=dest)


def _copy_data(src: int, dst: int, size: int) -> None:
    left = size
    while left > 0:
        try:
            copied = os.copy_file_range(src, dst, min(left, 1 << 30))
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            copied = os.sendfile(dst, src, None, min(left, 1 << 30))
        if copied == 0:
            break
        left -= copied
