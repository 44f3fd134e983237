"""The container's init: what the forked child does between fork and exec.

It runs in the process that becomes the container's PID 1, talking to the
parent over a SOCK_SEQPACKET socket pair with one JSON message per packet:

    init -> parent  {"type": "ready"}     namespaces made; put me in the cgroup
    parent -> init  {"type": "go"}
    init -> parent  {"type": "created"}   about to block on the exec fifo
    init -> parent  {"type": "error", ...} a typed error to re-raise in the parent

After "created" it opens the exec fifo for writing, which blocks until
``Runtime.start`` opens it for reading; then it closes every fd but 0-2 and
execs. It never returns into the caller's Python code: every path ends in
execve or os._exit.
"""

from __future__ import annotations

import _signal as signal  # the C module: signal.py's enums cost milliseconds of every create
import errno
import fcntl  # noqa: F401 - for linux.set_link_up: a C module loaded in a forked child costs 1.4 ms, here 0.04
import os
import posixpath
import resource  # imported here: after pivot_root the host's stdlib is out of reach
import select
import stat

from skiff import explain, linux
from skiff.errors import BundleError, CommandNotExecutable, CommandNotFound, PathEscape, SkiffError, SyscallError
from skiff.runtime import mounts
from skiff.runtime.jsonlite import dumps, loads
from skiff.runtime.runtime import EXEC_FIFO
from skiff.runtime.spec import DEFAULT_PATH, NAMESPACE_FLAGS, capability_mask, check_sysctl_name, process_env

TYPE_CHECKING = False
if TYPE_CHECKING:  # not imported at run time: each skiff-oci command is a process of its own
    import _socket as socket  # the runtime hands over _socket.socket objects (socket.socket is one too)
    from typing import Any, NoReturn

    from skiff.runtime.seccomp_filter import Program

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
                     signal.SIGUSR2, signal.SIGWINCH)
# Reset before exec: the handlers skiff installs, and the two signals Python starts with
# ignored (an ignored signal stays ignored across execve: `yes | head` would never end by SIGPIPE).
DEFAULT_SIGNALS = (*FORWARDED_SIGNALS, signal.SIGPIPE, signal.SIGXFSZ)

_RLIMITS = {"RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
            "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
            "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
            "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15}
# Sysctls that are namespaced (runc's allow-list): anything else would change the host.
_IPC_SYSCTLS = {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"}


class InitContext:
    """What the parent hands the forked init (a plain class: dataclasses cost an import of inspect)."""

    __slots__ = ("config", "bundle", "sock", "fifo_fd", "stdio", "console_fd", "preserve_fds",
                 "userns", "seccomp")

    def __init__(self, config: dict[str, Any], bundle: str, sock: socket.socket, fifo_fd: int,
                 stdio: tuple[int, int, int], console_fd: int = -1, preserve_fds: int = 0,
                 userns: str = "", seccomp: Program | None = None) -> None:
        self.config = config
        self.bundle = bundle
        self.sock = sock
        self.fifo_fd = fifo_fd  # read end of the exec fifo: start writes a byte into it
        self.stdio = stdio
        self.console_fd = console_fd  # connected --console-socket, or -1
        self.preserve_fds = preserve_fds  # fds 3..3+N-1 pass into the container
        # "cloned": forked into a new user namespace (wait for the id maps); "joined": forked
        # inside one given by path; "": the runtime's own.
        self.userns = userns
        self.seccomp = seccomp  # linux.seccomp compiled by the parent (seccomp_filter.Program), or None

    def payload(self) -> tuple[dict[str, Any], list[int]]:
        """What a re-executed init needs to rebuild this context, and the fds it must keep."""
        trees = [m[mounts.PREPARED_TREE] for m in self.config.get("mounts") or [] if mounts.PREPARED_TREE in m]
        data = {"config": self.config, "bundle": self.bundle, "sock": self.sock.fileno(), "fifo": self.fifo_fd,
                "stdio": list(self.stdio), "console": self.console_fd, "preserve": self.preserve_fds,
                "userns": self.userns, "seccomp": self.seccomp.to_data() if self.seccomp is not None else None}
        return data, [self.sock.fileno(), self.fifo_fd, *self.stdio, self.console_fd, *trees,
                      *range(3, 3 + self.preserve_fds)]


def context_from(data: dict[str, Any]) -> InitContext:
    """The context of ``InitContext.payload``, in a re-executed init (skiff.runtime.sealed)."""
    import _socket

    from skiff.runtime.seccomp_filter import Program

    return InitContext(data["config"], data["bundle"], _socket.socket(fileno=data["sock"]), data["fifo"],
                       tuple(data["stdio"]), data["console"], data["preserve"], data["userns"],
                       Program.from_data(data["seccomp"]))


_MSG_NOSIGNAL = 0x4000  # a peer that has gone is an EPIPE error, not a SIGPIPE that kills the runtime


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.send(dumps(message).encode(), _MSG_NOSIGNAL)


def receive(sock: socket.socket) -> dict[str, Any] | None:
    """The next message, or None when the other side has gone."""
    data = sock.recv(65536)
    return loads(data.decode()) if data else None


def error_message(exc: BaseException) -> dict[str, Any]:
    """An exception as a message the parent turns back into the same typed error."""
    if isinstance(exc, SyscallError):
        return {"type": "error", "class": "SyscallError", "call": exc.call, "errno": exc.errno,
                "target": exc.target, "hint": exc.hint}
    if isinstance(exc, SkiffError):
        return {"type": "error", "class": type(exc).__name__, "message": exc.message, "hint": exc.hint}
    if isinstance(exc, OSError):
        return {"type": "error", "class": "SyscallError", "call": "container init",
                "errno": exc.errno or errno.EIO, "target": exc.filename or "", "hint": None}
    return {"type": "error", "class": "RuntimeError_", "message": f"container init failed: {exc!r}",
            "hint": None}


def main(ctx: InitContext) -> NoReturn:
    """Entry point in the forked child; reports any failure to the parent and exits."""
    try:
        _init(ctx)
    except BaseException as exc:  # noqa: BLE001 - everything must reach the parent, nothing may return
        try:
            send(ctx.sock, error_message(exc))
        except OSError:  # the parent has gone (after create): say it on the container's stderr
            os.write(2, f"skiff: {exc}\n".encode(errors="replace"))
        finally:
            os._exit(1)
    os._exit(1)


def _init(ctx: InitContext) -> NoReturn:
    for signum in DEFAULT_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)
    os.umask(0)
    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    config, process = ctx.config, ctx.config["process"]
    linux_cfg = config["linux"]
    hooks, seccomp_filter = config.get("hooks"), ctx.seccomp
    if hooks:
        from skiff.runtime import hooks as hooks_module  # imported before pivot_root hides the host
    if ctx.userns:
        _become_root_in_user_namespace(ctx.sock, wait_for_maps=ctx.userns == "cloned")
    setup_stdio(ctx.stdio)
    os.setsid()
    namespaces = {ns["type"]: ns for ns in linux_cfg["namespaces"]}
    _enter_namespaces(namespaces, exclude=("pid", "cgroup", "user") if ctx.userns else ("pid", "cgroup"))

    send(ctx.sock, {"type": "ready"})
    # The parent puts us in our cgroup meanwhile (its first cgroup.procs write can wait 10-18 ms
    # for an RCU grace period): the mounts go on in parallel, up to the first that needs the
    # cgroup namespace, which can only be made once we are in the cgroup.
    joined = _CgroupJoin(ctx.sock, namespaces)
    if hooks:
        hooks_module.run_hooks("createContainer", hooks, joined()["state"])

    _setup_rootfs(config, ctx.bundle, namespaces, ctx.console_fd if process.get("terminal") else -1, joined)
    reply = joined()
    if config.get("hostname"):
        linux.sethostname(config["hostname"])
        if explain.on:
            explain.step(explain.NAMESPACES, "set the hostname, in the container's own UTS namespace", "sethostname",
                         {"name": config["hostname"]})
    if config.get("domainname"):
        linux.setdomainname(config["domainname"])
    prepare_process(process, seccomp_filter,
                    keep_fds=(ctx.sock.fileno(), ctx.fifo_fd, *range(3, 3 + ctx.preserve_fds), *explain.fds()))
    env = process_env(process)
    executable = find_executable(process["args"][0], env.get("PATH", DEFAULT_PATH))

    linux.prctl(linux.PR_SET_PDEATHSIG, 0)  # from here the container outlives its creator
    send(ctx.sock, {"type": "created"})
    if explain.on:
        explain.step(explain.PROCESS, "created: the init blocks on the exec fifo until `start` writes to it",
                     "poll", {"fd": EXEC_FIFO})
    _wait_for_start(ctx.fifo_fd)
    if explain.on:
        explain.step(explain.PROCESS, "started: `start` wrote one byte into the exec fifo", "read",
                     {"fd": EXEC_FIFO, "data": "0"})
    if hooks and hooks.get("startContainer"):
        try:
            hooks_module.run_hooks("startContainer", hooks, {**reply["state"], "status": "created"})
        except SkiffError as exc:
            os.write(2, f"skiff: {exc}\n".encode(errors="replace"))
            os._exit(1)
    if seccomp_filter is not None and process.get("noNewPrivileges"):
        seccomp_filter.load()
        if explain.on:
            explain_seccomp(seccomp_filter)
    exec_process(executable, process["args"], env, ctx.preserve_fds)


class _CgroupJoin:
    """Called where the init must be in its cgroup: waits once for the parent's "go", then
    unshares the cgroup namespace (if the config has one). Later calls do nothing."""

    __slots__ = ("sock", "namespaces", "reply")

    def __init__(self, sock: socket.socket, namespaces: dict[str, dict[str, Any]]) -> None:
        self.sock = sock
        self.namespaces = namespaces
        self.reply: dict[str, Any] | None = None

    def __call__(self) -> dict[str, Any]:
        """The parent's "go" message (with the container's ``state``)."""
        if self.reply is not None:
            return self.reply
        reply = receive(self.sock)
        if not reply or reply.get("type") != "go":
            os._exit(1)
        if explain.on:
            explain.step(explain.CGROUPS, "the init waited until the runtime had put it in its cgroup", "recv",
                         {"message": "go"})
        self.reply = reply
        if "cgroup" in self.namespaces:
            _enter_namespaces({"cgroup": self.namespaces["cgroup"]}, exclude=())
        return reply


def prepare_process(process: dict[str, Any], seccomp_filter: Program | None, keep_fds: tuple[int, ...] = (),
                    create_cwd: bool = True) -> None:
    """rlimits, oom score, umask, cwd, user, capabilities, no_new_privs: all but the exec itself.

    Every fd from 3 up but ``keep_fds`` is closed before the chdir: whatever the
    forking process held (close-on-exec or not, it is still open here) could be a
    host directory that ``cwd: /proc/self/fd/N`` would enter (CVE-2024-21626).
    Without noNewPrivileges the seccomp filter must be loaded while we still hold
    CAP_SYS_ADMIN, so before the capabilities are dropped (as runc does); with it,
    the caller loads it last, just before execve. ``create_cwd``: the container's
    first process gets a missing working directory made; an exec does not (runc's rule).
    """
    _set_rlimits(process.get("rlimits", []))
    if explain.on and process.get("rlimits"):
        explain.step(explain.PROCESS, "resource limits of the process (ulimits)", "setrlimit",
                     {r.get("type", ""): f"{r.get('soft')}/{r.get('hard')}" for r in process["rlimits"]})
    _write_oom_score_adj(process.get("oomScoreAdj"))
    os.umask(int(process.get("user", {}).get("umask", 0o022)))  # OCI keeps umask under process.user
    linux.close_fds_except(3, keep_fds)
    if explain.on:
        explain.step(explain.SECURITY, "close every file descriptor inherited from the runtime (but its own "
                     "handshake)", "close_range", {"first": 3, "kept": len(keep_fds)})
    _enter_cwd(process.get("cwd", "/"), create_cwd)
    if explain.on:
        explain.step(explain.PROCESS, "enter the working directory, and check it is inside the root", "chdir",
                     {"path": process.get("cwd", "/")})
    if seccomp_filter is not None and not process.get("noNewPrivileges"):
        seccomp_filter.load()
        if explain.on:
            explain_seccomp(seccomp_filter)
    _set_user_and_capabilities(process)
    # A change of credentials resets dumpability to fs.suid_dumpable, which a host may set to 1.
    linux.prctl(linux.PR_SET_DUMPABLE, 0)
    if explain.on:
        explain.step(explain.SECURITY, "non-dumpable: no container process may open this one's /proc files",
                     "prctl", {"option": "PR_SET_DUMPABLE", "value": 0})
    if process.get("noNewPrivileges"):
        linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
        if explain.on:
            explain.step(explain.SECURITY, "no_new_privs: no setuid binary or file capability can give more "
                         "privileges", "prctl", {"option": "PR_SET_NO_NEW_PRIVS", "value": 1})


def explain_seccomp(seccomp_filter: Program) -> None:
    """The seccomp step (the rules and default action were told when the parent compiled them)."""
    explain.step(explain.SECURITY, "load the seccomp filter: from now on the kernel checks every system call "
                 "against it", "seccomp", {"operation": "SECCOMP_SET_MODE_FILTER",
                                           "instructions": len(seccomp_filter.bpf) // 8, "flags": seccomp_filter.flags})


def _become_root_in_user_namespace(sock: socket.socket, wait_for_maps: bool) -> None:
    """Take uid/gid 0 of our user namespace, once the parent wrote its maps if it is new.

    In a namespace joined by path the runtime's host root is nobody: files could not
    even be created (EOVERFLOW) before this.
    """
    if wait_for_maps:
        reply = receive(sock)
        if not reply or reply.get("type") != "mapped":
            os._exit(1)
    try:
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    except OSError as exc:
        raise SyscallError("setresuid in the user namespace", exc.errno or errno.EPERM, "uid 0",
                           hint="linux.uidMappings and gidMappings must map container id 0") from None


def setup_stdio(stdio: tuple[int, int, int]) -> None:
    # Duplicate first so that stdio=(1, 0, 2) cannot clobber a source before it is copied.
    copies = [os.dup(fd) for fd in stdio]
    for target, fd in enumerate(copies):
        os.dup2(fd, target, inheritable=True)
        os.close(fd)


def _enter_namespaces(namespaces: dict[str, dict[str, Any]], exclude: tuple[str, ...]) -> None:
    """Join the namespaces given by path, then unshare the rest in one call."""
    new = 0
    # A user namespace joined first: the others are then entered with its capabilities.
    for kind, ns in sorted(namespaces.items(), key=lambda item: item[0] != "user"):
        if kind in exclude:
            continue
        if ns.get("path"):
            try:
                fd = os.open(ns["path"], os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:
                raise BundleError(f"cannot open {kind} namespace {ns['path']}: {exc.strerror}") from None
            try:
                linux.setns(fd, NAMESPACE_FLAGS[kind], ns["path"])
            finally:
                os.close(fd)
            if explain.on:
                explain.step(explain.NAMESPACES, f"join the existing {kind} namespace at {ns['path']}", "setns",
                             {"fd": ns["path"], "nstype": explain.clone_flags(NAMESPACE_FLAGS[kind])})
        else:
            new |= NAMESPACE_FLAGS[kind]
    if new:
        linux.unshare(new)
        if explain.on:
            several = "|" in explain.clone_flags(new)
            explain.step(explain.NAMESPACES, f"new {explain.namespace_words(new)} namespace{'s' if several else ''} "
                         f"for the init: from now on it sees its own copy of {'each' if several else 'it'}",
                         "unshare", {"flags": explain.clone_flags(new)})
    if new & NAMESPACE_FLAGS["network"]:
        linux.set_link_up("lo")
        if explain.on:
            explain.step(explain.NETWORK, "bring up the loopback interface of the network namespace",
                         "netlink RTM_NEWLINK", {"ifname": "lo", "flags": "IFF_UP"})


# --- the root filesystem -----------------------------------------------------


def _setup_rootfs(config: dict[str, Any], bundle: str, namespaces: dict[str, dict[str, Any]],
                  console_fd: int, joined: _CgroupJoin) -> None:
    if console_fd >= 0:
        from skiff.runtime.console import setup_terminal  # before pivot_root hides the host's modules
    rootfs = config["root"]["path"]
    linux_cfg = config["linux"]
    if "mount" not in namespaces:
        # The host's mount namespace: mounting anything would change the host, so only chroot.
        joined()
        os.chroot(rootfs)
        os.chdir("/")
        if explain.on:
            explain.step(explain.ROOT, "no mount namespace: only change the root directory", "chroot", {"path": rootfs})
        if console_fd >= 0:
            setup_terminal(console_fd, bind_console=False)
        return
    requested = linux_cfg.get("rootfsPropagation")
    propagation = mounts.PROPAGATION.get(requested or "rslave")
    if propagation is None:
        raise BundleError(f"unknown linux.rootfsPropagation {requested!r}")
    shared = bool(propagation & linux.MS_SHARED)
    # Nothing we mount may propagate back to the host. The default, as runc's, is a
    # recursive slave rather than private: a bind that asks for rslave/rshared must
    # still receive what the host mounts later under its source.
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_SLAVE if shared else propagation)
    if explain.on:
        explain.step(explain.MOUNTS, "change the propagation of every mount in the new mount namespace: nothing "
                     "mounted from now on reaches the host", "mount", {"target": "/", "flags": explain.mount_flags(
                         linux.MS_REC | linux.MS_SLAVE if shared else propagation)})
    linux.mount(rootfs, rootfs, None, linux.MS_BIND | linux.MS_REC)
    if explain.on:
        explain.step(explain.ROOT, "bind the root filesystem on itself: pivot_root needs a mount point", "mount",
                     {"source": rootfs, "target": rootfs, "flags": "MS_BIND|MS_REC"})
    root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for entry in config.get("mounts", []):
            if entry.get("type") == "cgroup" and not mounts.is_bind(entry):
                joined()  # a cgroup mount shows the cgroup namespace's root: it must exist first
            mounts.mount_entry(root_fd, entry, bundle)
            if explain.on:
                explain.step(explain.MOUNTS, *explain.mount_entry(entry))
        # A bind-mounted /dev is a host directory, which must not fill with device nodes:
        # only a /dev the runtime mounted itself gets them (runc skips a bound /dev the same way).
        dev_mount = _last_dev_mount(config.get("mounts", []))
        if dev_mount is None or not mounts.is_bind(dev_mount):
            if dev_mount is not None:
                mounts.populate_dev(root_fd)
                if explain.on:
                    explain.step(explain.MOUNTS, "the device nodes every container gets, in its new /dev",
                                 "mknod + symlink", {"nodes": "null zero full random urandom tty",
                                                     "links": "ptmx fd stdin stdout stderr"})
            for device in linux_cfg.get("devices", []):
                mounts.create_device(root_fd, device)
                if explain.on:
                    explain.step(explain.MOUNTS, f"device node {device.get('path')}", "mknod",
                                 {"path": device.get("path"), "type": device.get("type"),
                                  "major": device.get("major"), "minor": device.get("minor")})
        _set_sysctls(linux_cfg.get("sysctl", {}), namespaces)
        if explain.on and linux_cfg.get("sysctl"):
            explain.step(explain.NAMESPACES, "namespaced kernel settings, written in /proc/sys", "write",
                         dict(linux_cfg["sysctl"]))
        for path in linux_cfg.get("maskedPaths", []):
            mounts.mask_path(root_fd, path)
        if explain.on and linux_cfg.get("maskedPaths"):
            explain.step(explain.MOUNTS, "hide kernel files the container must not read: /dev/null over each file, "
                         "an empty read-only tmpfs over each directory", "mount", {"paths": linux_cfg["maskedPaths"]})
        for path in linux_cfg.get("readonlyPaths", []):
            mounts.readonly_path(root_fd, path)
        if explain.on and linux_cfg.get("readonlyPaths"):
            explain.step(explain.MOUNTS, "make kernel interfaces read-only: each bound on itself, read-only",
                         "open_tree + mount_setattr(MOUNT_ATTR_RDONLY) + move_mount",
                         {"paths": linux_cfg["readonlyPaths"]})
        _pivot_root(root_fd)
    finally:
        os.close(root_fd)
    if shared:  # only now: pivot_root refuses a shared new root
        linux.mount(None, "/", None, propagation)
    if console_fd >= 0:
        setup_terminal(console_fd, bind_console=True)
    if config["root"].get("readonly"):
        linux.mount_setattr(linux.AT_FDCWD, "/", 0, attr_set=linux.MOUNT_ATTR_RDONLY)
        if explain.on:
            explain.step(explain.ROOT, "make the root filesystem read-only (--read-only)", "mount_setattr",
                         {"path": "/", "attr_set": "MOUNT_ATTR_RDONLY"})


def _last_dev_mount(entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The mount that ends up on /dev (the last one there), or None."""
    on_dev = [m for m in entries if posixpath.normpath("/" + m["destination"].lstrip("/")) == "/dev"]
    return on_dev[-1] if on_dev else None


def _pivot_root(root_fd: int) -> None:
    """pivot_root(".", ".") stacks the old root on the new one; detaching it leaves only the new."""
    os.fchdir(root_fd)
    linux.pivot_root(".", ".")
    if explain.on:
        explain.step(explain.ROOT, "pivot_root: the container's filesystem becomes /, the host's old root is "
                     "stacked on top of it", "pivot_root", {"new_root": ".", "put_old": "."})
    linux.mount(None, ".", None, linux.MS_SLAVE | linux.MS_REC)  # the detach must not reach the host
    linux.umount(".", linux.MNT_DETACH)
    os.chdir("/")
    if explain.on:
        explain.step(explain.ROOT, "detach the host's old root: nothing of the host's files is reachable any more",
                     "umount2", {"target": ".", "flags": "MNT_DETACH"})


def _set_sysctls(sysctls: dict[str, str], namespaces: dict[str, dict[str, Any]]) -> None:
    # Written through the host's /proc before pivot_root: /proc/sys shows the writer's namespaces,
    # which are the container's by now. load_config already refused a joined netns that is the
    # host's (check_sysctls); these checks stay as the last word before a write.
    for key, value in sysctls.items():
        check_sysctl_name(key)
        if key.startswith("net."):
            if "network" not in namespaces:
                raise BundleError(f"sysctl {key} needs a new network namespace")
        elif key in _IPC_SYSCTLS or key.startswith("fs.mqueue."):
            if "ipc" not in namespaces:
                raise BundleError(f"sysctl {key} needs an ipc namespace")
        else:
            raise BundleError(f"sysctl {key} is not namespaced: it would change the host")
        path = "/proc/sys/" + key.replace(".", "/")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise SyscallError("open", exc.errno or errno.EIO, path) from None
        try:
            os.write(fd, str(value).encode())
        except OSError as exc:
            raise SyscallError("write", exc.errno or errno.EIO, path) from None
        finally:
            os.close(fd)


def _write_oom_score_adj(value: int | None) -> None:
    if value is None:
        return
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(int(value)))
    except OSError as exc:
        hint = "lowering it needs CAP_SYS_RESOURCE" if exc.errno in (errno.EACCES, errno.EPERM) else None
        raise SyscallError("write oom_score_adj", exc.errno or errno.EIO, str(value), hint=hint) from None


# --- the process -------------------------------------------------------------


def _set_rlimits(rlimits: list[dict[str, Any]]) -> None:
    for rlimit in rlimits:
        name = rlimit.get("type", "")
        if name not in _RLIMITS:
            raise BundleError(f"unknown rlimit type {name!r}")
        soft, hard = int(rlimit.get("soft", 0)), int(rlimit.get("hard", 0))
        try:
            resource.setrlimit(_RLIMITS[name], (soft, hard))
        except (OSError, ValueError) as exc:
            current = resource.getrlimit(_RLIMITS[name])[1]
            raise SyscallError(f"setrlimit {name}", getattr(exc, "errno", None) or errno.EPERM,
                               f"soft={soft} hard={hard}",
                               hint=f"the hard limit can only be lowered here: current hard limit "
                                    f"is {current}") from None


def _enter_cwd(cwd: str, create: bool = True) -> None:
    """Docker creates a missing working directory (an exec does not: a missing one is Docker's
    126 with runc's words); then check that we landed inside the root.

    The caller closed every fd that could lead out; getcwd is the proof (as in runc's
    fix for CVE-2024-21626): a directory outside our root makes the kernel answer
    "(unreachable)/...", which glibc turns into ENOENT.
    """
    try:
        if create:
            os.makedirs(cwd, 0o755, exist_ok=True)
        os.chdir(cwd)
    except OSError as exc:
        if not create:
            raise CommandNotExecutable(f'OCI runtime exec failed: chdir to cwd ("{cwd}") set in config.json '
                                       f"failed: {os.strerror(exc.errno or errno.EIO).lower()}") from None
        raise SyscallError("chdir", exc.errno or errno.EIO, cwd) from None
    try:
        where = os.getcwd()
    except OSError:
        where = ""
    if not where.startswith("/"):
        raise PathEscape(f"working directory {cwd} is outside the container's root filesystem",
                         hint="the process.cwd (or image WORKDIR) must be a directory inside the container")


def _set_user_and_capabilities(process: dict[str, Any]) -> None:
    """Bounding set first (needs CAP_SETPCAP), then the ids keeping caps, then the sets themselves."""
    user = process.get("user", {})
    uid, gid = int(user.get("uid", 0)), int(user.get("gid", 0))
    caps = process.get("capabilities")
    if caps is not None:
        bounding = capability_mask(caps.get("bounding", []))
        last_cap = _last_cap()
        for number in range(last_cap + 1):
            if not bounding & (1 << number):
                linux.prctl(linux.PR_CAPBSET_DROP, number)
        linux.prctl(linux.PR_SET_KEEPCAPS, 1)
        if explain.on:
            _explain_bounding(bounding, last_cap)
    try:
        os.setgroups([int(g) for g in user.get("additionalGids", [])])
        os.setgid(gid)
        os.setuid(uid)
    except OSError as exc:
        raise SyscallError("setuid/setgid", exc.errno or errno.EPERM, f"uid={uid} gid={gid}") from None
    if explain.on:
        explain.step(explain.PROCESS, f"become user {uid}, group {gid}", "setgroups + setgid + setuid",
                     {"groups": [int(g) for g in user.get("additionalGids", [])], "gid": gid, "uid": uid})
    if caps is None:
        return
    _, available, _ = linux.capget()
    # A capability this runtime lacks (this VM withholds CAP_SYS_RESOURCE) cannot be handed on.
    permitted = capability_mask(caps.get("permitted", [])) & available
    effective = capability_mask(caps.get("effective", [])) & permitted
    inheritable = capability_mask(caps.get("inheritable", [])) & available
    linux.capset(effective, permitted, inheritable)
    linux.prctl(linux.PR_CAP_AMBIENT, linux.PR_CAP_AMBIENT_CLEAR_ALL)
    ambient = capability_mask(caps.get("ambient", [])) & permitted & inheritable
    for number in range(64):
        if ambient & (1 << number):
            linux.prctl(linux.PR_CAP_AMBIENT, linux.PR_CAP_AMBIENT_RAISE, number)
    linux.prctl(linux.PR_SET_KEEPCAPS, 0)
    if explain.on:
        explain.step(explain.SECURITY, "set the capabilities the process holds now", "capset",
                     {"effective": bin(effective).count("1"), "permitted": bin(permitted).count("1"),
                      "inheritable": bin(inheritable).count("1"), "ambient": bin(ambient).count("1")})


def _explain_bounding(bounding: int, last_cap: int) -> None:
    from skiff.runtime.spec import CAPABILITIES

    names = {number: name for name, number in CAPABILITIES.items()}
    kept = [names.get(n, str(n)) for n in range(last_cap + 1) if bounding & (1 << n)]
    dropped = [names.get(n, str(n)) for n in range(last_cap + 1) if not bounding & (1 << n)]
    explain.step(explain.SECURITY, explain.capability_words(kept, dropped), "prctl(PR_CAPBSET_DROP)",
                 {"kept": kept, "dropped": dropped})


def _last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return 40


def find_executable(name: str, search_path: str) -> str:
    """The file execve will run, with Docker's messages and exit codes when there is none."""
    if "/" in name:
        _check_executable(name, name)
        return name
    for directory in search_path.split(":"):
        candidate = posixpath.join(directory or ".", name)
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and os.access(candidate, os.X_OK):
            return candidate
    raise CommandNotFound(f'exec: "{name}": executable file not found in $PATH')


def _check_executable(path: str, name: str) -> None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise CommandNotFound(f'exec: "{name}": stat {name}: no such file or directory') from None
    except OSError as exc:
        raise CommandNotExecutable(f'exec: "{name}": stat {name}: {exc.strerror}') from None
    if stat.S_ISDIR(st.st_mode) or not os.access(path, os.X_OK):
        raise CommandNotExecutable(f'exec: "{name}": permission denied')


def _wait_for_start(fifo_fd: int) -> None:
    """Block until ``start`` writes its byte into the exec fifo (read end held since fork).

    poll, not a blocking read: a fifo with no writer yet reads as end-of-file at once,
    while poll waits for the first writer's data.
    """
    poller = select.poll()
    poller.register(fifo_fd, select.POLLIN)
    while True:
        try:
            poller.poll()
            data = os.read(fifo_fd, 1)
        except InterruptedError:
            continue
        except BlockingIOError:
            continue
        break
    os.close(fifo_fd)
    if data != b"0":
        os.write(2, b"skiff: the exec fifo closed without a start\n")
        os._exit(1)


# Test hook: seconds to wait just before execve, so that a test can look at this process from
# inside the container at its most exposed (capabilities dropped, still skiff). Read from the
# environment of the skiff command on the host, which no container controls.
PAUSE_ENV = "SKIFF_TEST_PAUSE_BEFORE_EXEC"


def exec_process(executable: str, args: list[str], env: dict[str, str], preserve_fds: int = 0) -> NoReturn:
    if os.environ.get(PAUSE_ENV):
        select.select([], [], [], float(os.environ[PAUSE_ENV]))
    for fd in range(3, 3 + preserve_fds):
        try:
            os.set_inheritable(fd, True)
        except OSError:
            pass
    if explain.on:
        explain.step(explain.PROCESS, f"close every fd above {2 + preserve_fds} (this explanation's too) and "
                     f"replace this Python process with {executable}", "close_range + execve",
                     {"path": executable, "argv": args})
    try:
        linux.close_range(3 + preserve_fds)
    except SyscallError:  # a seccomp profile may refuse close_range (runtime-tools' default does)
        os.closerange(3 + preserve_fds, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    try:
        os.execve(executable, args, env)
    except OSError as exc:
        # Too late for the parent to raise: say it on the container's stderr, as runc does.
        code = 127 if exc.errno == errno.ENOENT else 126
        os.write(2, f'skiff: exec: "{args[0]}": {exc.strerror}\n'.encode(errors="replace"))
        os._exit(code)


__all__ = ["InitContext", "main", "prepare_process", "send", "receive", "error_message", "find_executable", "EXEC_FIFO",
           "FORWARDED_SIGNALS"]
