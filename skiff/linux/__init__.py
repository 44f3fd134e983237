"""Typed wrappers over the Linux system calls that Python 3.11 lacks.

Each wrapper raises ``SyscallError`` naming the call and the path, so a failure
reads as ``mount /var/lib/skiff/...: Permission denied`` rather than a bare errno.
Only ctypes and os are used: these run on the hot path of ``skiff run``.
"""

from __future__ import annotations

import ctypes
import os
import struct

from skiff.errors import SyscallError

_libc = ctypes.CDLL(None, use_errno=True)

# --- constants (include/uapi/linux/*.h) -------------------------------------
CLONE_NEWNS = 0x00020000
CLONE_PARENT = 0x00008000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

MNT_FORCE = 1
MNT_DETACH = 2
MNT_EXPIRE = 4
UMOUNT_NOFOLLOW = 8

AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
AT_SYMLINK_NOFOLLOW = 0x100

# openat2 resolve flags
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

# mount_setattr attributes
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR_IDMAP = 0x100000

PR_SET_NAME = 15
PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
PR_CAP_AMBIENT_RAISE = 2
PR_SET_KEEPCAPS = 8

_SYSCALLS = {
    # name: (x86_64, aarch64) -- the "new" syscalls share numbers across arches from 424 on
    "pivot_root": (155, 41),
    "setns": (308, 268),
    "unshare": (272, 97),
    "openat2": (437, 437),
    "mount_setattr": (442, 442),
    "open_tree": (428, 428),
    "move_mount": (429, 429),
    "close_range": (436, 436),
    "fsopen": (430, 430),
    "fsconfig": (431, 431),
    "fsmount": (432, 432),
    "capget": (125, 90),
    "capset": (126, 91),
    "bpf": (321, 280),
    "seccomp": (317, 277),
}
_MACHINE = os.uname().machine  # platform.machine() without importing platform
_ARCH_INDEX = 1 if _MACHINE in ("aarch64", "arm64") else 0


def _nr(name: str) -> int:
    return _SYSCALLS[name][_ARCH_INDEX]


def _check(result: int, call: str, target: str = "") -> int:
    if result < 0:
        raise SyscallError(call, ctypes.get_errno(), target)
    return result


def _syscall(name: str, *args: object) -> int:
    return _libc.syscall(_nr(name), *args)


# --- mounts -----------------------------------------------------------------

_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def _b(value: str | bytes | os.PathLike[str] | None) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    return os.fsencode(value)


def mount(source: str | os.PathLike[str] | None, target: str | os.PathLike[str], fstype: str | None = None,
          flags: int = 0, data: str | None = None) -> None:
    """mount(2). ``target`` may be ``/proc/self/fd/N`` to mount onto an opened file."""
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)), "mount", os.fspath(target))


def umount(target: str | os.PathLike[str], flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), flags), "umount", os.fspath(target))


def pivot_root(new_root: str | os.PathLike[str], put_old: str | os.PathLike[str]) -> None:
    _check(_syscall("pivot_root", _b(new_root), _b(put_old)), "pivot_root", os.fspath(new_root))


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def mount_setattr(dirfd: int, path: str, flags: int, attr_set: int = 0, attr_clr: int = 0,
                  propagation: int = 0, userns_fd: int = 0) -> None:
    """mount_setattr(2): change attributes of a mount, recursively with AT_RECURSIVE."""
    attr = _MountAttr(attr_set, attr_clr, propagation, userns_fd)
    _check(_syscall("mount_setattr", ctypes.c_int(dirfd), _b(path), ctypes.c_uint(flags),
                    ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr))), "mount_setattr", path)


FSOPEN_CLOEXEC = 1
FSMOUNT_CLOEXEC = 1
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6


def fsopen(fstype: str) -> int:
    """fsopen(2): a filesystem context to configure with ``fsconfig`` and mount with ``fsmount``."""
    return _check(_syscall("fsopen", _b(fstype), ctypes.c_uint(FSOPEN_CLOEXEC)), "fsopen", fstype)


def fsconfig_string(fs_fd: int, key: str, value: str) -> None:
    _check(_syscall("fsconfig", ctypes.c_int(fs_fd), ctypes.c_uint(FSCONFIG_SET_STRING), _b(key), _b(value),
                    ctypes.c_int(0)), "fsconfig", f"{key}={value}")


def fsconfig_create(fs_fd: int) -> None:
    _check(_syscall("fsconfig", ctypes.c_int(fs_fd), ctypes.c_uint(FSCONFIG_CMD_CREATE), None, None,
                    ctypes.c_int(0)), "fsconfig create")


def fsmount(fs_fd: int, attr_flags: int = 0) -> int:
    """fsmount(2): the root of a new mount attached to no namespace: gone when the fd is closed."""
    return _check(_syscall("fsmount", ctypes.c_int(fs_fd), ctypes.c_uint(FSMOUNT_CLOEXEC),
                           ctypes.c_uint(attr_flags)), "fsmount")


# --- namespaces -------------------------------------------------------------


def unshare(flags: int) -> None:
    _check(_syscall("unshare", ctypes.c_int(flags)), "unshare")


def setns(fd: int, nstype: int = 0, target: str = "") -> None:
    _check(_syscall("setns", ctypes.c_int(fd), ctypes.c_int(nstype)), "setns", target)


# --- paths ------------------------------------------------------------------


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(dirfd: int, path: str | os.PathLike[str], flags: int, mode: int = 0, resolve: int = 0) -> int:
    """openat2(2): open ``path`` relative to ``dirfd`` under ``resolve`` restrictions.

    With RESOLVE_IN_ROOT every absolute path and ``..`` and symlink is resolved as
    if ``dirfd`` were ``/``: the kernel guarantees the result stays inside it,
    even against a symlink swapped in concurrently.
    """
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    return _check(_syscall("openat2", ctypes.c_int(dirfd), _b(path), ctypes.byref(how),
                           ctypes.c_size_t(ctypes.sizeof(how))), "openat2", os.fspath(path))


def close_range(first: int, last: int = 0xFFFFFFFF, flags: int = 0) -> None:
    _check(_syscall("close_range", ctypes.c_uint(first), ctypes.c_uint(last), ctypes.c_uint(flags)), "close_range")


def close_fds_except(first: int, keep: tuple[int, ...] | list[int] = ()) -> None:
    """Close every fd from ``first`` up, except those in ``keep``.

    For code that runs between fork and exec: close-on-exec closes nothing yet, and an
    inherited fd of a host directory would be a way out (/proc/self/fd/N, CVE-2024-21626).
    """
    start = first
    for fd in sorted({k for k in keep if k >= first}):
        if fd > start:
            _close_span(start, fd - 1)
        start = fd + 1
    _close_span(start, 0xFFFFFFFF)


def _close_span(first: int, last: int) -> None:
    try:
        close_range(first, last)
    except SyscallError:  # a seccomp profile may refuse close_range
        import resource

        os.closerange(first, min(last + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0]))


# --- process ----------------------------------------------------------------

_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(_libc.prctl(option, arg2, arg3, arg4, arg5), "prctl")


def sethostname(name: str) -> None:
    data = name.encode()
    _check(_libc.sethostname(data, len(data)), "sethostname", name)


def setdomainname(name: str) -> None:
    data = name.encode()
    _check(_libc.setdomainname(data, len(data)), "setdomainname", name)


# --- new mount API and capabilities (added for the runtime core) -----------

OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
MOVE_MOUNT_F_EMPTY_PATH = 0x04
MOVE_MOUNT_T_EMPTY_PATH = 0x40
PR_CAPBSET_READ = 23
PR_CAP_AMBIENT_IS_SET = 1
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def open_tree(dirfd: int, path: str | os.PathLike[str], flags: int) -> int:
    """open_tree(2): with OPEN_TREE_CLONE, a detached copy of the mount at ``path`` (as an fd)."""
    return _check(_syscall("open_tree", ctypes.c_int(dirfd), _b(path), ctypes.c_uint(flags)),
                  "open_tree", os.fspath(path))


def move_mount(from_dirfd: int, from_path: str, to_dirfd: int, to_path: str, flags: int,
               target: str = "") -> None:
    """move_mount(2): attach a detached mount (e.g. from open_tree) onto a target, by fd."""
    _check(_syscall("move_mount", ctypes.c_int(from_dirfd), _b(from_path), ctypes.c_int(to_dirfd),
                    _b(to_path), ctypes.c_uint(flags)), "move_mount", target or to_path)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def capget() -> tuple[int, int, int]:
    """The calling thread's (effective, permitted, inheritable) capability sets as bitmasks."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(_syscall("capget", ctypes.byref(header), ctypes.byref(data)), "capget")
    join = lambda lo, hi: lo | (hi << 32)  # noqa: E731
    return (join(data[0].effective, data[1].effective), join(data[0].permitted, data[1].permitted),
            join(data[0].inheritable, data[1].inheritable))


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """capset(2) for the calling thread; each set is a bitmask of capability numbers."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        shift = 32 * i
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _check(_syscall("capset", ctypes.byref(header), ctypes.byref(data)), "capset")


def set_link_up(name: str) -> None:
    """Bring a network interface up in the caller's network namespace (SIOCSIFFLAGS)."""
    import _socket  # the C module: socket.py costs milliseconds of every container's start
    import errno
    import fcntl
    import struct

    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    sock = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        ifreq = fcntl.ioctl(sock, siocgifflags, struct.pack("16sH14x", name.encode(), 0))
        flags = struct.unpack("16sH14x", ifreq)[1]
        fcntl.ioctl(sock, siocsifflags, struct.pack("16sH14x", name.encode(), flags | iff_up))
    except OSError as exc:
        raise SyscallError("ioctl SIOCSIFFLAGS", exc.errno or errno.EIO, name) from None
    finally:
        sock.close()


# --- fork into new namespaces, ptys (added for skiff-oci) ---------------------

_CLONE_NR = {"x86_64": 56, "aarch64": 220, "arm64": 220}
PR_SET_DUMPABLE = 4
TIOCSCTTY = 0x540E
TIOCGPTN = 0x80045430
TIOCSPTLCK = 0x40045431
TIOCGPTPEER = 0x5441


def fork_with_namespaces(flags: int) -> int:
    """fork(2) with namespace CLONE_* flags: the child starts inside the new namespaces.

    Needed where unshare cannot do it: a pid namespace owned by a new user
    namespace must be made by the same clone. Like ``os.fork`` it runs Python's
    before/after-fork handlers; the GIL stays held across the raw syscall.
    """
    import _signal as signal  # the C module: signal.py builds enums, milliseconds of a create

    api = ctypes.pythonapi
    held = ctypes.PyDLL(None, use_errno=True)  # PyDLL keeps the GIL: the child must not re-take it
    held.syscall.restype = ctypes.c_long
    api.PyOS_BeforeFork()
    pid = held.syscall(ctypes.c_long(_CLONE_NR.get(_MACHINE, 56)),
                       ctypes.c_ulong(flags | signal.SIGCHLD), ctypes.c_void_p(0), ctypes.c_void_p(0),
                       ctypes.c_void_p(0), ctypes.c_void_p(0))
    if pid == 0:
        api.PyOS_AfterFork_Child()
        return 0
    err = ctypes.get_errno()
    api.PyOS_AfterFork_Parent()
    if pid < 0:
        raise SyscallError("clone", err, hex(flags))
    return pid


class NonDumpable:
    """``with NonDumpable(): fork...``: the children are born non-dumpable, with no window.

    Dumpability is inherited through fork and reset only by execve: a child forked
    while we are non-dumpable stays so until it execs the container's process. While it
    is, nothing in the container without CAP_SYS_PTRACE on the host can open its
    /proc/PID/exe, fd/, mem or environ (CVE-2019-5736). Our own flag is restored after.
    """

    __slots__ = ("_previous", "_pid")

    def __enter__(self) -> None:
        self._pid = os.getpid()
        self._previous = prctl(PR_GET_DUMPABLE)
        if self._previous:
            prctl(PR_SET_DUMPABLE, 0)

    def __exit__(self, *exc: object) -> None:
        if self._previous and os.getpid() == self._pid:  # a child leaving the block stays non-dumpable
            prctl(PR_SET_DUMPABLE, self._previous)


def kill_and_reap(pid: int) -> int | None:
    """SIGKILL our child ``pid`` and wait for it; its wait status, or None if it was reaped already."""
    import _signal as signal

    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:
        return None


def open_pty() -> tuple[int, int, str]:
    """(master, slave, slave path) of a new pty from the caller's /dev/ptmx (its devpts)."""
    import fcntl  # the caller imports these before leaving the host's filesystem
    import struct

    try:
        master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise SyscallError("open", exc.errno or 5, "/dev/ptmx") from None
    try:
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
        number = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, struct.pack("I", 0)))[0]
        slave = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY)
    except OSError as exc:
        os.close(master)
        raise SyscallError("ioctl (pty)", exc.errno or 5, "/dev/ptmx") from None
    return master, slave, f"/dev/pts/{number}"


# --- bpf(2) (added for the cgroup v2 device filter) ----------------------------


def bpf(cmd: int, attr: ctypes.Structure, target: str = "") -> int:
    """bpf(2) with ``attr`` (a ctypes mirror of the command's part of ``union bpf_attr``).

    The kernel reads only ``sizeof(attr)`` bytes and treats the rest of the union as zero.
    """
    return _check(_syscall("bpf", ctypes.c_int(cmd), ctypes.byref(attr), ctypes.c_uint(ctypes.sizeof(attr))),
                  f"bpf({cmd})", target)


# --- seccomp(2) (added for cached seccomp filters) ------------------------------

SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_TSYNC = 1
SECCOMP_FILTER_FLAG_LOG = 2
SECCOMP_FILTER_FLAG_SPEC_ALLOW = 4


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def seccomp_set_mode_filter(program: bytes, flags: int = 0) -> None:
    """Install a classic BPF seccomp ``program`` (struct sock_filter, 8 bytes each) on this thread.

    The caller needs no_new_privs or CAP_SYS_ADMIN in its user namespace, as the kernel says.
    """
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    _check(_syscall("seccomp", ctypes.c_uint(SECCOMP_SET_MODE_FILTER), ctypes.c_uint(flags), ctypes.byref(fprog)),
           "seccomp(SECCOMP_SET_MODE_FILTER)")


# --- inotify ------------------------------------------------------------------

IN_CLOSE_WRITE = 0x8
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x1000000
IN_EVENT_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len (then len bytes of NUL-padded name)

_libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]


def inotify_init() -> int:
    """A non-blocking, close-on-exec inotify descriptor."""
    return _check(_libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC), "inotify_init1")


def inotify_add_watch(fd: int, path: str | os.PathLike[str], mask: int) -> int:
    return _check(_libc.inotify_add_watch(fd, _b(path), mask), "inotify_add_watch", os.fspath(path))


def inotify_events(fd: int) -> list[tuple[int, int, str]]:
    """The queued events of a non-blocking inotify descriptor as (wd, mask, name); [] when none."""
    events: list[tuple[int, int, str]] = []
    while True:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return events
        offset = 0
        while offset < len(data):
            wd, mask, _, length = IN_EVENT_HEADER.unpack_from(data, offset)
            offset += IN_EVENT_HEADER.size
            name = data[offset:offset + length].rstrip(b"\0").decode(errors="surrogateescape")
            offset += length
            events.append((wd, mask, name))
