"""A process started in a running container (``exec``): what the forked child does before execve.

The parent opens the init's namespace files and has already joined its pid
namespace for children before forking, so this child is inside it. The child
joins the rest (the user namespace first, the mount namespace last, which also
moves its root and cwd to the container's root), waits while the parent puts it
in the container's cgroup, applies the OCI ``process`` and execs. It speaks the
init's protocol over the socket pair: "ready", then "go", then "created" just
before execve (or an "error").
"""

from __future__ import annotations

import os
import signal
import socket
from typing import TYPE_CHECKING, Any, NoReturn

from skiff import explain, linux
from skiff.runtime import init as container_init
from skiff.runtime.spec import DEFAULT_PATH, process_env

if TYPE_CHECKING:
    from skiff.runtime.seccomp_filter import Program


class ExecContext:
    """What the parent hands the forked exec child."""

    __slots__ = ("process", "sock", "stdio", "namespace_fds", "console_fd", "seccomp")

    def __init__(self, process: dict[str, Any], sock: socket.socket, stdio: tuple[int, int, int],
                 namespace_fds: list[tuple[str, int]], console_fd: int, seccomp: Program | None = None) -> None:
        self.process = process
        self.sock = sock
        self.stdio = stdio
        self.namespace_fds = namespace_fds  # (kind, fd), user first and mount last
        self.console_fd = console_fd
        self.seccomp = seccomp  # the container's filter compiled by the parent (seccomp_filter.Program)


    def payload(self) -> tuple[dict[str, Any], list[int]]:
        """What a re-executed exec child needs to rebuild this context, and the fds it must keep."""
        data = {"process": self.process, "sock": self.sock.fileno(), "stdio": list(self.stdio),
                "namespaces": [list(pair) for pair in self.namespace_fds], "console": self.console_fd,
                "seccomp": self.seccomp.to_data() if self.seccomp is not None else None}
        return data, [self.sock.fileno(), *self.stdio, self.console_fd, *(fd for _, fd in self.namespace_fds)]


def context_from(data: dict[str, Any]) -> ExecContext:
    """The context of ``ExecContext.payload``, in a re-executed exec child (skiff.runtime.sealed)."""
    from skiff.runtime.seccomp_filter import Program

    return ExecContext(data["process"], socket.socket(fileno=data["sock"]), tuple(data["stdio"]),
                       [(kind, fd) for kind, fd in data["namespaces"]], data["console"],
                       Program.from_data(data["seccomp"]))


def main(ctx: ExecContext) -> NoReturn:
    try:
        _exec_in_container(ctx)
    except BaseException as exc:  # noqa: BLE001 - everything must reach the parent, nothing may return
        try:
            container_init.send(ctx.sock, container_init.error_message(exc))
        finally:
            os._exit(1)
    os._exit(1)


def _exec_in_container(ctx: ExecContext) -> NoReturn:
    for signum in container_init.DEFAULT_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)
    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    seccomp_filter = ctx.seccomp
    if ctx.console_fd >= 0:
        from skiff.runtime.console import setup_terminal  # before the host's modules are out of reach
    # First of all, drop what the parent held that we do not need (its fd of the host's pid
    # namespace, its files): this process is in the container's pid namespace already.
    linux.close_fds_except(3, (ctx.sock.fileno(), ctx.console_fd, *ctx.stdio,
                               *(fd for _, fd in ctx.namespace_fds), *explain.fds()))
    container_init.setup_stdio(ctx.stdio)
    os.setsid()
    for kind, fd in ctx.namespace_fds:
        linux.setns(fd, 0, f"{kind} namespace of the container")
        os.close(fd)
        if explain.on:
            explain.step(explain.NAMESPACES, f"join the container's {kind} namespace", "setns",
                         {"fd": f"/proc/<init>/ns/{kind}", "nstype": 0})
    # Nothing of the host may stay open in here: the parent's fd of its own pid namespace, its
    # files. Only the socket to the parent (and the console socket, used just below) remain.
    linux.close_fds_except(3, (ctx.sock.fileno(), ctx.console_fd, *explain.fds()))
    container_init.send(ctx.sock, {"type": "ready"})
    reply = container_init.receive(ctx.sock)
    if not reply or reply.get("type") != "go":
        os._exit(1)
    if explain.on:
        explain.step(explain.CGROUPS, "the runtime has put this process in the container's cgroup", "recv",
                     {"message": "go"})
    if ctx.console_fd >= 0:
        setup_terminal(ctx.console_fd, bind_console=False)
    process = ctx.process
    container_init.prepare_process(process, seccomp_filter, keep_fds=(ctx.sock.fileno(), *explain.fds()),
                                   create_cwd=False)  # runc: an exec never makes its cwd
    env = process_env(process)
    executable = container_init.find_executable(process["args"][0], env.get("PATH", DEFAULT_PATH))
    linux.prctl(linux.PR_SET_PDEATHSIG, 0)
    if seccomp_filter is not None and process.get("noNewPrivileges"):
        seccomp_filter.load()
        if explain.on:
            container_init.explain_seccomp(seccomp_filter)
    # Sent just before execve: close-on-exec makes the parent's next receive see the exec as EOF.
    container_init.send(ctx.sock, {"type": "created"})
    container_init.exec_process(executable, process["args"], env)
