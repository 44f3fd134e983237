"""``skiff cp``: Docker 20.10's copy rules between a container and the host, both ways.

Docker splits ``docker cp`` between its client (the host side: local paths, links followed with
``-L``, how the archive's top entry is renamed so that it lands where the user meant) and its
daemon (the container side: stat, tar and untar of container paths). skiff has no daemon: this
module is the client's half, in the client's words (cli/command/container/cp.go and
pkg/archive/copy.go), over skiff.engine.archive, the daemon's half, which resolves every
container path inside the container's root and refuses hostile tar entries.

The host side goes through the same code: a host path is opened as a path of a "container"
whose root is the host's ``/``. Files copied out of a container belong to the user who copies
(Docker's ``NoLchown``), files copied in keep the tar's owner, or take the container's user with
``-a`` (Docker's ``copyUIDGID``).
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import stat
import threading
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, NamedTuple

from skiff.engine import archive
from skiff.errors import ContainerNotFound, ContainerPathNotFound, NotFound, SkiffError

if TYPE_CHECKING:
    from skiff.engine.engine import Engine

MAX_HOST_LINKS = 10   # pkg/archive's CopyInfoDestinationPath: "10 already seems like a lot"


class CopyError(SkiffError):
    """A copy Docker's client refuses (its words); ``docker cp`` exits 1."""

    exit_code = 1


class CopyInfo(NamedTuple):
    """pkg/archive's CopyInfo: where a copy's side is, and what is there."""

    path: str
    exists: bool = False
    is_dir: bool = False
    rebase_name: str = ""


# --- the command line's two arguments ----------------------------------------------------------


def split_argument(arg: str) -> tuple[str, str]:
    """``CONTAINER:PATH`` -> (container, path); a local path -> ("", path). As Docker: an
    absolute path, or one whose part before ``:`` starts with ``.``, is always local."""
    if arg.startswith("/"):
        return "", arg
    container, sep, path = arg.partition(":")
    if not sep or container.startswith("."):
        return "", arg
    return container, path


def copy(engine: Engine, source: str, dest: str, *, archive_mode: bool = False, follow_link: bool = False,
         stdin: IO[bytes] | None = None, stdout: IO[bytes] | None = None) -> None:
    """``skiff cp SOURCE DEST``: one side must be ``CONTAINER:PATH``, the other a host path or ``-``."""
    src_container, src_path = split_argument(source)
    dst_container, dst_path = split_argument(dest)
    if src_container and dst_container:
        raise CopyError("copying between containers is not supported")
    if not src_container and not dst_container:
        raise CopyError("must specify at least one container source")
    try:
        if src_container:
            copy_from_container(engine, src_container, src_path, dst_path, follow_link, stdout)
        else:
            copy_to_container(engine, dst_container, src_path, dst_path, archive_mode, follow_link, stdin)
    except OSError as exc:   # a host file that cannot be read or written: Docker's client's status, 1
        raise CopyError(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)) from None


def _no_such_path(container: str, path: str) -> NotFound:
    """Docker's client's words for a 404 of the archive endpoints: the container or the path."""
    return NotFound(f"No such container:path: {container}:{path}")


# --- out of a container --------------------------------------------------------------------------


def copy_from_container(engine: Engine, name: str, src: str, dst: str, follow_link: bool,
                        stdout: IO[bytes] | None) -> None:
    """cp.go's copyFromContainer: the container's path as a tar, to ``-`` or unpacked at ``dst``."""
    if dst != "-":
        dst = _absolute(dst)
        validate_output_path(dst)
    try:
        container = engine.find(name)
    except ContainerNotFound:
        raise _no_such_path(name, src) from None
    with archive.opened(container, name) as fs:
        rebase = ""
        if follow_link:
            found = _stat(fs, name, src)
            if found.mode & archive.GO_SYMLINK:
                target = found.link_target
                if not target.startswith("/"):
                    target = posixpath.join(split_path_dir_entry(src)[0], target)
                src, rebase = rebase_name(src, target)
        found = _stat(fs, name, src)
        if dst == "-":
            out = stdout if stdout is not None else _stdout()
            archive.write_path(fs, src, out, top=rebase or None)
            out.flush()
            return
        info = CopyInfo(src, True, bool(found.mode & archive.GO_DIR), rebase)
        dst_info = copy_info_destination(dst)
        dst_dir, top = prepare_copy(info, dst_info)
        with _piped(lambda out: archive.write_path(fs, src, out, top=top)) as tar, host_fs() as host:
            archive.extract(host, dst_dir, tar, archive.Extraction(True, (os.getuid(), os.getgid())))


def _stat(fs: archive.ContainerFS, name: str, path: str) -> archive.PathStat:
    try:
        return archive.path_stat(fs, path)
    except ContainerPathNotFound:
        raise _no_such_path(name, path) from None


def validate_output_path(path: str) -> None:
    """cli/command's ValidateOutputPath: the parent must exist; an existing path must be a
    directory or a regular file."""
    parent = posixpath.dirname(posixpath.normpath(path))
    if parent and parent != "." and not os.path.exists(parent):
        raise CopyError(f'invalid output path: directory "{parent}" does not exist')
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise CopyError(f"{path}: {exc.strerror}") from None
    if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
        raise CopyError(f'invalid output path: "{path}" must be a directory or a regular file: '
                        f"got a {_kind(st.st_mode)}")


def _kind(mode: int) -> str:
    return ("device" if stat.S_ISBLK(mode) or stat.S_ISCHR(mode) else "named pipe" if stat.S_ISFIFO(mode)
            else "socket" if stat.S_ISSOCK(mode) else "file")


# --- into a container ----------------------------------------------------------------------------


def copy_to_container(engine: Engine, name: str, src: str, dst: str, archive_mode: bool, follow_link: bool,
                      stdin: IO[bytes] | None) -> None:
    """cp.go's copyToContainer: the destination stat-ed in the container (a final link followed
    there), the host source archived with its top entry named for the destination, unpacked."""
    if src != "-":
        src = _absolute(src)
    try:
        container = engine.find(name)
    except ContainerNotFound:
        # Docker's client goes on as if the destination did not exist and meets the 404 when
        # it puts the archive: its words name the directory it would have unpacked into.
        if src == "-":
            raise CopyError(f'destination "{name}:{dst}" must be a directory') from None
        raise _no_such_path(name, prepare_copy(copy_info_source(src, follow_link), CopyInfo(dst))[0]) from None
    with archive.opened(container, name, writable=True) as fs:
        dst_info = CopyInfo(dst)
        found = _maybe_stat(fs, dst)
        if found is not None and found.mode & archive.GO_SYMLINK:
            target = found.link_target   # already resolved inside the container's root
            dst_info = CopyInfo(target)
            found = _maybe_stat(fs, target)
        if found is not None and not (found.mode & archive.GO_DIR or _go_regular(found.mode)):
            raise CopyError(f'destination "{name}:{dst}" must be a directory or a regular file')
        if found is not None:
            dst_info = dst_info._replace(exists=True, is_dir=bool(found.mode & archive.GO_DIR))
        owner = archive.copy_owner(fs, container.data["Config"].get("User") or "") if archive_mode else None
        how = archive.Extraction(True, owner)
        if src == "-":
            if not dst_info.is_dir:
                raise CopyError(f'destination "{name}:{dst}" must be a directory')
            archive.check_writable(container, dst_info.path)
            _extract(fs, name, dst_info.path, stdin if stdin is not None else _stdin(), how)
            return
        info = copy_info_source(src, follow_link)
        dst_dir, top = prepare_copy(info, dst_info)
        archive.check_writable(container, dst_dir)
        with _piped(lambda out: write_host_path(info.path, out, top)) as tar:
            _extract(fs, name, dst_dir, tar, how)


def _extract(fs: archive.ContainerFS, name: str, path: str, tar: IO[bytes], how: archive.Extraction) -> None:
    try:
        archive.extract(fs, path, tar, how)
    except ContainerPathNotFound:
        raise _no_such_path(name, path) from None


def _maybe_stat(fs: archive.ContainerFS, path: str) -> archive.PathStat | None:
    try:
        return archive.path_stat(fs, path)
    except ContainerPathNotFound:
        return None


def _go_regular(mode: int) -> bool:
    kinds = (archive.GO_DIR | archive.GO_SYMLINK | archive.GO_DEVICE | archive.GO_PIPE | archive.GO_SOCKET
             | archive.GO_CHARDEV)
    return not mode & kinds


# --- pkg/archive's rules -------------------------------------------------------------------------


def specifies_current_dir(path: str) -> bool:
    return posixpath.basename(path) == "."


def has_trailing_separator(path: str) -> bool:
    return len(path) > 0 and path.endswith("/")


def asserts_directory(path: str) -> bool:
    return has_trailing_separator(path) or specifies_current_dir(path)


def split_path_dir_entry(path: str) -> tuple[str, str]:
    """pkg/archive's SplitPathDirEntry: ``/a/b/`` -> (``/a``, ``b``); ``/a/.`` -> (``/a``, ``.``)."""
    cleaned = posixpath.normpath(path) if path else "."
    if specifies_current_dir(path):
        cleaned = cleaned.rstrip("/") + "/." if cleaned != "/" else "/."
    return posixpath.dirname(cleaned) or ".", posixpath.basename(cleaned) or cleaned  # Go: Base("/") is "/"


def rebase_name(path: str, resolved: str) -> tuple[str, str]:
    """pkg/archive's GetRebaseName: the resolved path (keeping ``/.`` and a trailing ``/`` as
    asked) and the name its archive's top entry must take, when resolving changed it."""
    if specifies_current_dir(path) and not specifies_current_dir(resolved):
        resolved += "/."
    if has_trailing_separator(path) and not has_trailing_separator(resolved):
        resolved += "/"
    rebase = posixpath.basename(path.rstrip("/")) if path.rstrip("/") else path
    if posixpath.basename(path) != posixpath.basename(resolved):
        return resolved, posixpath.basename(path) or rebase
    return resolved, ""


def prepare_copy(src: CopyInfo, dst: CopyInfo) -> tuple[str, str | None]:
    """pkg/archive's PrepareArchiveCopy: the directory to unpack into, and the name the source's
    top entry takes there (None: its own name)."""
    dst_dir, dst_base = split_path_dir_entry(dst.path)
    if dst.exists and dst.is_dir:
        return dst.path, src.rebase_name or None
    if dst.exists and src.is_dir:
        raise CopyError("cannot copy directory")
    if not dst.exists and not src.is_dir and asserts_directory(dst.path):
        raise CopyError("no such directory")
    return dst_dir, dst_base


def copy_info_source(path: str, follow_link: bool) -> CopyInfo:
    """pkg/archive's CopyInfoSourcePath on the host: the parent's links resolved (and the final
    one too with ``-L``)."""
    try:
        if follow_link:
            resolved, rebase = rebase_name(path, os.path.realpath(path, strict=True))
        else:
            directory, base = posixpath.split(path)
            resolved = os.path.realpath(directory or ".", strict=True).rstrip("/") + "/" + base
            rebase = ""
            if has_trailing_separator(path) and posixpath.basename(path.rstrip("/")) != \
                    posixpath.basename(resolved.rstrip("/")):
                rebase = posixpath.basename(path.rstrip("/"))
        st = os.lstat(resolved)
    except OSError as exc:
        raise CopyError(f"lstat {path}: {exc.strerror.lower() if exc.strerror else exc}") from None
    if asserts_directory(resolved) and not stat.S_ISDIR(st.st_mode):
        raise CopyError("not a directory")
    return CopyInfo(resolved, True, stat.S_ISDIR(st.st_mode), rebase)


def copy_info_destination(path: str) -> CopyInfo:
    """pkg/archive's CopyInfoDestinationPath on the host: a final link is followed (a broken
    one names the file to create); a missing path needs an existing parent directory."""
    original = path
    for _ in range(MAX_HOST_LINKS + 1):
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            parent = split_path_dir_entry(path)[0]
            try:
                parent_st = os.stat(parent)
            except OSError as exc:
                raise CopyError(f"stat {parent}: {(exc.strerror or '').lower()}") from None
            if not stat.S_ISDIR(parent_st.st_mode):
                raise CopyError("not a directory")
            return CopyInfo(path)
        except NotADirectoryError:
            raise CopyError("not a directory") from None
        if not stat.S_ISLNK(st.st_mode):
            return CopyInfo(path, True, stat.S_ISDIR(st.st_mode))
        target = os.readlink(path)
        path = target if target.startswith("/") else posixpath.join(split_path_dir_entry(path)[0], target)
    raise CopyError(f"too many symlinks in {original}")


# --- the host side -------------------------------------------------------------------------------


@contextlib.contextmanager
def host_fs() -> Iterator[archive.ContainerFS]:
    """The host's ``/`` as a ContainerFS: host paths go through the same fd-based code (a walk
    enters every mount, as Docker's client archives)."""
    root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield archive.ContainerFS(root, (), "host", frozenset(), any_device=True)
    finally:
        os.close(root)


def write_host_path(path: str, out: IO[bytes], top: str | None) -> None:
    """The host path as a tar (TarResourceRebase): its top entry named ``top``, else its own name."""
    with host_fs() as host:
        archive.write_path(host, path, out, top=top)


def _absolute(path: str) -> str:
    """resolveLocalPath: absolute, keeping a trailing ``/`` or ``/.`` (they change the rules)."""
    absolute = os.path.abspath(path)
    if specifies_current_dir(path):
        absolute = absolute.rstrip("/") + "/."
    elif has_trailing_separator(path):
        absolute = absolute.rstrip("/") + "/"
    return absolute


@contextlib.contextmanager
def _piped(write: Callable[[IO[bytes]], None]) -> Iterator[IO[bytes]]:
    """The tar ``write`` makes, readable as it is written (a thread writes into a pipe)."""
    chunks = archive.stream_tar(write)
    try:
        yield _ChunkReader(chunks)  # type: ignore[misc]
    finally:
        # Closing the stream closes the pipe's read end and joins the writer (stopped by EPIPE
        # if the copy ended early), so its fds are done with before the copy's are closed.
        close = getattr(chunks, "close", None)   # a generator's
        if close is not None:
            with contextlib.suppress(Exception):
                close()


class _ChunkReader:
    """A file-like reader over an iterator of byte chunks (what tarfile's stream mode needs)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""
        self._lock = threading.Lock()

    def read(self, size: int = -1) -> bytes:
        with self._lock:
            while size < 0 or len(self._pending) < size:
                chunk = next(self._chunks, b"")
                if not chunk:
                    break
                self._pending += chunk
            if size < 0:
                data, self._pending = self._pending, b""
            else:
                data, self._pending = self._pending[:size], self._pending[size:]
            return data


def _stdin() -> IO[bytes]:
    import sys

    return sys.stdin.buffer


def _stdout() -> IO[bytes]:
    import sys

    return sys.stdout.buffer

