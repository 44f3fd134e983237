"""Resolve ``-u name|uid[:group|gid]`` against the image's /etc/passwd and /etc/group.

The files are opened inside the container's rootfs with openat2(RESOLVE_IN_ROOT),
so an image whose /etc/passwd is a symlink to the host's cannot make skiff read
the host's files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from skiff import linux
from skiff.errors import SyscallError, UnknownUser


class ExecUser(NamedTuple):
    uid: int
    gid: int
    additional_gids: list[int]
    home: str = "/"


MAX_ID_FILE = 4 << 20  # an image's passwd or group is read up to this (a hostile image's may be huge)


def read_in_root(rootfs: Path, path: str) -> str | None:
    """The text of ``path`` resolved inside ``rootfs``; None if it does not exist."""
    root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = linux.openat2(root_fd, path, os.O_RDONLY | os.O_NOFOLLOW,
                           resolve=linux.RESOLVE_IN_ROOT | linux.RESOLVE_NO_MAGICLINKS)
    except SyscallError:
        return None
    finally:
        os.close(root_fd)
    with os.fdopen(fd, "rb") as f:
        # Read what the file holds, up to the cap: read(cap) would allocate the whole cap first,
        # 4 MiB for every container's start.
        return f.read(min(os.fstat(f.fileno()).st_size, MAX_ID_FILE)).decode("utf-8", errors="replace")


def _entries(text: str | None) -> list[list[str]]:
    if not text:
        return []
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def resolve_user(rootfs: Path, spec: str) -> ExecUser:
    """Docker's user: runc's GetExecUser on the image's files, the primary group among the groups.

    A name must exist in passwd; a bare uid need not (gid 0, HOME /). A numeric user or group
    is always an id, a name always a name. Only without an explicit group does the user get
    the groups of /etc/group that list its name (runc: "supplementary group ids only make sense
    in the implicit form"). Docker (20.10.18+, CVE-2022-36109) puts the primary gid first in
    the additional gids, so it stays in the process's groups.
    """
    user, _, group = (spec or "0").partition(":")
    passwd = _entries(read_in_root(rootfs, "/etc/passwd"))
    groups = _entries(read_in_root(rootfs, "/etc/group"))

    by_uid = user.isdigit()
    entry = next((p for p in passwd if len(p) >= 7 and p[2 if by_uid else 0] == user), None)
    if entry is None and not by_uid:
        raise UnknownUser(f"unable to find user {user}: no matching entries in passwd file")
    uid = int(entry[2]) if entry else int(user)
    gid = int(entry[3]) if entry else 0
    home = entry[5] if entry else "/"
    name = entry[0] if entry else None

    member_of: list[int] = []
    if group:
        by_gid = group.isdigit()
        match = next((g for g in groups if len(g) >= 3 and g[2 if by_gid else 0] == group), None)
        if match is None and not by_gid:
            raise UnknownUser(f"unable to find group {group}: no matching entries in group file")
        gid = int(match[2]) if match else int(group)
    elif name:
        member_of = [int(g[2]) for g in groups if len(g) >= 4 and g[2].isdigit() and name in g[3].split(",")]
    return ExecUser(uid, gid, list(dict.fromkeys([gid, *member_of])), home or "/")
