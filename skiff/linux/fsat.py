"""Directory-fd helpers for trees a container can write to while skiff works in them.

A path string given to the kernel is resolved afresh on every call, and a
container that shares the directory can swap any component for a symlink in
between. These helpers take a directory fd and one name, or resolve several
names with openat2 so that no symlink, ``..`` or mount crossing is followed.
"""

from __future__ import annotations

import ctypes
import errno
import os

from skiff import linux
from skiff.errors import SyscallError

# Resolution for paths skiff made itself inside such a tree: any symlink, magic
# link, mount crossing or escape means the tree was tampered with.
STRICT_BENEATH = (linux.RESOLVE_BENEATH | linux.RESOLVE_NO_SYMLINKS | linux.RESOLVE_NO_MAGICLINKS
                  | linux.RESOLVE_NO_XDEV)

_FCHMODAT2_NR = 452  # same number on every architecture (the unified syscall table)
_libc = ctypes.CDLL(None, use_errno=True)
_have_fchmodat2: bool | None = None


def open_beneath(dir_fd: int, parts: list[str], flags: int = os.O_PATH | os.O_DIRECTORY) -> int | None:
    """An fd of ``parts`` below ``dir_fd`` reached without any symlink; None if there is none now."""
    if not parts:
        return os.open(".", flags | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        return linux.openat2(dir_fd, "/".join(parts), flags | os.O_NOFOLLOW, resolve=STRICT_BENEATH)
    except SyscallError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.EXDEV, errno.EAGAIN):
            return None
        raise


def _fchmodat2(dir_fd: int, name: str, mode: int, flags: int) -> int:
    result = _libc.syscall(_FCHMODAT2_NR, ctypes.c_int(dir_fd), os.fsencode(name), ctypes.c_uint(mode),
                           ctypes.c_uint(flags))
    return 0 if result == 0 else ctypes.get_errno()


def has_fchmodat2() -> bool:
    """Whether the kernel has fchmodat2 (Linux 6.6), probed once with a name that cannot exist."""
    global _have_fchmodat2
    if _have_fchmodat2 is None:
        _have_fchmodat2 = _fchmodat2(linux.AT_FDCWD, "", 0, linux.AT_SYMLINK_NOFOLLOW) != errno.ENOSYS
    return _have_fchmodat2


def chmod_nofollow(dir_fd: int, name: str, mode: int) -> bool:
    """chmod the entry ``name`` of ``dir_fd`` itself, never what a symlink there points to.

    fchmodat2(AT_SYMLINK_NOFOLLOW) changes the entry in one call and refuses a
    symlink, unlike chmod or glibc's emulation. Returns False when a symlink is
    there now or the entry is gone. Callers check ``has_fchmodat2`` first.
    """
    err = _fchmodat2(dir_fd, name, mode, linux.AT_SYMLINK_NOFOLLOW)
    if err in (errno.EOPNOTSUPP, errno.ENOENT):
        return False
    if err:
        raise SyscallError("fchmodat2", err, name)
    return True
