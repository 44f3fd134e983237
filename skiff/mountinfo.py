"""``/proc/PID/mountinfo``, parsed the one way skiff reads it.

One line per mount (proc(5); the kernel writes it in fs/proc_namespace.c, show_mountinfo)::

    36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
    (1)(2) (3)  (4)   (5)      (6)      (7)   (8) (9)   (10)         (11)

mount id, parent id, major:minor, root (the directory of the filesystem the mount shows: a
bind mount's source), mount point, per-mount options, optional fields (``shared:N``,
``master:N``...) ended by ``-``, filesystem type, source, super block options. The kernel
escapes space, tab, newline and backslash in paths (and ``,`` ``=`` in some options) as
three octal digits (``\\040``); ``unescape`` undoes that, so every caller compares real paths.

Standard library only, and neither ``typing`` nor ``re``: cgroup detection reads the table in
every ``skiff-oci create`` (a ``python -S`` process) and in the container's init.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False   # typing.TYPE_CHECKING without importing typing (see above)
if TYPE_CHECKING:
    from collections.abc import Iterable

_OCTAL = frozenset("01234567")


class Mount:
    """One line of the table, its paths unescaped."""

    __slots__ = ("mount_id", "parent_id", "major", "minor", "root", "mount_point", "options", "optional",
                 "fstype", "source", "super_options")

    def __init__(self, mount_id: int, parent_id: int, major: int, minor: int, root: str, mount_point: str,
                 options: str, optional: tuple[str, ...], fstype: str, source: str, super_options: str) -> None:
        self.mount_id = mount_id
        self.parent_id = parent_id
        self.major = major
        self.minor = minor
        self.root = root
        self.mount_point = mount_point
        self.options = options              # per mount: "rw,nosuid,relatime"
        self.optional = optional            # ("shared:5",), ("master:1", "propagate_from:2"), ()
        self.fstype = fstype                # "ext4", "fuse.sshfs"
        self.source = source                # "/dev/sda1", "overlay", "none"
        self.super_options = super_options  # of the filesystem: "rw,memory", "rw,lowerdir=..."

    def _fields(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mount) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return "Mount(" + ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__) + ")"

    def covers(self, path: str) -> bool:
        """Whether ``path`` (absolute, resolved) is this mount point or below it."""
        return path == self.mount_point or path.startswith(self.mount_point.rstrip("/") + "/")


def unescape(field: str) -> str:
    """The kernel's ``\\ooo`` escapes decoded (``/a\\040b`` -> ``/a b``).

    A byte above 0x7f becomes the lone surrogate ``surrogateescape`` would give it, as the
    undecodable bytes of the rest of the line do, so ``os.fsencode`` gives the path back.
    """
    if "\\" not in field:
        return field
    parts = field.split("\\")
    out = [parts[0]]
    for part in parts[1:]:
        code = part[:3]
        if len(code) == 3 and _OCTAL.issuperset(code):
            value = int(code, 8)
            out.append(chr(value) if value < 0x80 else chr(0xDC00 + value))
            out.append(part[3:])
        else:  # not an escape the kernel writes: keep it as it stands
            out.append("\\")
            out.append(part)
    return "".join(out)


def parse_line(line: str) -> Mount | None:
    """One line; None for a line that is not one (blank, cut short)."""
    fields = line.rstrip("\n").split(" ")
    try:
        separator = fields.index("-", 6)  # after the six fixed fields, the optional ones end at "-"
        major, minor = fields[2].split(":")
        return Mount(int(fields[0]), int(fields[1]), int(major), int(minor), unescape(fields[3]),
                     unescape(fields[4]), fields[5], tuple(fields[6:separator]), unescape(fields[separator + 1]),
                     unescape(fields[separator + 2]), unescape(fields[separator + 3]))
    except (ValueError, IndexError):
        return None


def parse(text: str) -> list[Mount]:
    """Every mount of a mountinfo text, in its order (a later mount on the same point is on top)."""
    return [mount for mount in map(parse_line, text.splitlines()) if mount is not None]


def read(pid: int | str = "self") -> list[Mount]:
    """The mount table of ``pid``'s mount namespace (OSError if it cannot be read)."""
    with open(f"/proc/{pid}/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        return parse(f.read())


def containing(path: str | os.PathLike[str], mounts: Iterable[Mount] | None = None) -> Mount | None:
    """The mount ``path`` lives on: the deepest mount point above it, the topmost of those stacked
    there. ``path`` is resolved first (a symlink's target is what counts)."""
    target = os.path.realpath(path)
    best: Mount | None = None
    for mount in read() if mounts is None else mounts:
        if mount.covers(target) and (best is None or len(mount.mount_point) >= len(best.mount_point)):
            best = mount
    return best


def under(path: str | os.PathLike[str], mounts: Iterable[Mount] | None = None) -> list[Mount]:
    """The mounts at ``path`` or below it (``path`` as given, not resolved)."""
    target = os.fspath(path)
    prefix = target.rstrip("/") + "/"
    return [mount for mount in (read() if mounts is None else mounts)
            if mount.mount_point == target or mount.mount_point.startswith(prefix)]


def is_mount_point(path: str | os.PathLike[str], mounts: Iterable[Mount] | None = None) -> bool:
    """Whether something is mounted on ``path`` (resolved): not fooled by a bind mount of a
    directory of the same filesystem, as comparing ``st_dev`` with the parent's would be."""
    try:
        target = os.path.realpath(path)
    except OSError:
        return False
    return any(mount.mount_point == target for mount in (read() if mounts is None else mounts))


__all__ = ["Mount", "containing", "is_mount_point", "parse", "parse_line", "read", "under", "unescape"]
