"""Run a container's init or exec child from an interpreter the container cannot write (CVE-2019-5736).

Between fork and execve the init and the exec child are Python processes inside
the container's pid namespace: their /proc/PID/exe is the host's interpreter. They
are non-dumpable from birth (skiff.linux.NonDumpable), which keeps every container
process out of /proc/PID/exe, fd/ and mem, except one holding CAP_SYS_PTRACE in the
host's user namespace (``--cap-add SYS_PTRACE`` without a user namespace): the
kernel lets that capability override non-dumpable. For such containers only, the
child re-executes itself at once from a *detached, read-only bind mount* of the
interpreter (open_tree(OPEN_TREE_CLONE) + mount_setattr(MOUNT_ATTR_RDONLY), never
attached anywhere): its /proc/PID/exe then leads to a file no one can open for
writing (EROFS), and the mount, dissolved when the last fd of it closes, is in no
mount namespace where it could be made writable again. The re-exec happens in the
host's pid namespace, before the child enters the container's (``spawn``): no
container ever sees a skiff process running from the writable interpreter. It costs
an interpreter start (about 20 ms with the imports), which default containers do not pay.
See docs/ARCHITECTURE.md ("Protecting the runtime's own binary") for the choice.
"""

from __future__ import annotations

import os
import sys

from skiff import explain, linux

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

CAP_SYS_PTRACE = 19
# Set to 1 to seal every init and exec child, whatever the container's capabilities.
ALWAYS_ENV = "SKIFF_SEAL_EXE"
_BOOT = ("import sys;sys.path[:0]=[p for p in sys.argv[1].split(':') if p];"
         "from skiff.runtime.sealed import resume;resume(sys.argv[2],sys.argv[3])")


def needed(bounding: int, own_user_namespace: bool) -> bool:
    """Whether a container could open our /proc/PID/exe despite non-dumpable."""
    if os.environ.get(ALWAYS_ENV) == "1":
        return True
    return not own_user_namespace and bool(bounding & (1 << CAP_SYS_PTRACE))


def interpreter_fd() -> int:
    """An O_PATH fd of a read-only, detached bind mount of the running interpreter (made in the parent)."""
    exe = os.path.realpath(sys.executable)
    fd = linux.open_tree(linux.AT_FDCWD, exe, linux.OPEN_TREE_CLONE | linux.OPEN_TREE_CLOEXEC)
    try:
        linux.mount_setattr(fd, "", linux.AT_EMPTY_PATH,
                            attr_set=linux.MOUNT_ATTR_RDONLY | linux.MOUNT_ATTR_NOSUID | linux.MOUNT_ATTR_NODEV)
    except BaseException:
        os.close(fd)
        raise
    return fd


def spawn(exe_fd: int, entry: str, payload: dict[str, Any], fds: list[int],
          pid_ns: tuple[str, Any] | None) -> int:
    """Start the init or exec child from the sealed interpreter; return its pid (our child).

    The process that re-executes stays in the host's pid namespace, where no container
    sees it: only from the sealed interpreter does it enter the container's pid
    namespace for children (``pid_ns``: ("unshare", None), ("fd", fd) or ("path", path))
    and clone the real child with CLONE_PARENT, so that the child is ours as after a
    plain fork. The child never runs, even for an instant, from the writable interpreter.
    """
    from skiff.errors import RuntimeError_

    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    keep = [*fds, write_fd, *([pid_ns[1]] if pid_ns and pid_ns[0] == "fd" else []), *explain.fds()]
    data = {**payload, "skiff.report": write_fd, "skiff.pidns": list(pid_ns) if pid_ns else None,
            "skiff.explain": explain.handoff()}
    try:
        with linux.NonDumpable():
            middle = os.fork()
            if middle == 0:
                try:
                    os.close(read_fd)
                    _reexec(exe_fd, entry, data, keep)
                finally:
                    os._exit(127)
        os.close(write_fd)
        write_fd = -1
        report = os.read(read_fd, 4096).decode(errors="replace")
        os.waitpid(middle, 0)
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)
    if not report.isdigit():
        raise RuntimeError_(f"cannot start the {entry} process from the sealed interpreter: "
                            f"{report.lstrip('!') or 'it exited without a word'}")
    return int(report)


def _reexec(exe_fd: int, entry: str, payload: dict[str, Any], fds: list[int]) -> NoReturn:
    """execve the sealed interpreter, which resumes ``entry`` with ``payload``.

    ``fds`` (sockets, stdio, namespace fds...) must survive the exec; every other fd
    with close-on-exec is dropped by it, which is all to the good.
    """
    from skiff.runtime.jsonlite import dumps

    for fd in fds:
        if fd >= 0:
            try:
                os.set_inheritable(fd, True)
            except OSError:  # a --preserve-fds number the caller did not open
                pass
    argv = [sys.executable, "-I", "-S", "-c", _BOOT, ":".join(p for p in sys.path if p), entry,
            dumps(payload)]
    env = {name: os.environ[name] for name in ("PATH", ALWAYS_ENV, "SKIFF_TEST_PAUSE_BEFORE_EXEC")
           if name in os.environ}
    os.execve(exe_fd, argv, env)  # fexecve: execveat(exe_fd, "", AT_EMPTY_PATH)
    raise OSError("execveat returned")  # not reached


def resume(entry: str, payload: str) -> NoReturn:
    """The sealed interpreter's entry (host pid namespace): clone the child into the container's."""
    linux.prctl(linux.PR_SET_DUMPABLE, 0)  # execve made us dumpable again; the child inherits this
    from skiff.runtime.jsonlite import loads

    data = loads(payload)
    report = data.pop("skiff.report")
    explain.resume(data.pop("skiff.explain", ""))
    try:
        _enter_pid_namespace(data.pop("skiff.pidns"))
        pid = linux.fork_with_namespaces(linux.CLONE_PARENT)
        if pid == 0:
            os.close(report)
            _run(entry, data)
        os.write(report, str(pid).encode())
    except BaseException as exc:  # noqa: BLE001 - reported to the runtime, which raises it
        os.write(report, f"!{exc}".encode(errors="replace"))
    os._exit(0)


def _enter_pid_namespace(pid_ns: list[Any] | None) -> None:
    if not pid_ns:
        return
    kind, value = pid_ns
    if kind == "unshare":
        linux.unshare(linux.CLONE_NEWPID)
        return
    fd = value if kind == "fd" else os.open(value, os.O_RDONLY | os.O_CLOEXEC)
    try:
        linux.setns(fd, linux.CLONE_NEWPID, str(value))
    finally:
        os.close(fd)


def _run(entry: str, data: dict[str, Any]) -> NoReturn:
    if entry == "init":
        from skiff.runtime import init

        init.main(init.context_from(data))
    from skiff.runtime import exec_init

    exec_init.main(exec_init.context_from(data))
