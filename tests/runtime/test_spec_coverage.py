"""The runtime core's newer spec coverage: terminal, user namespaces, hooks, seccomp, exec, pause/update."""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
import time
from pathlib import Path

import pytest

from skiff.errors import BundleError, ContainerNotRunning, HookError
from tests.runtime.conftest import BundleFactory


def _cgroup_path(tmp_path: Path) -> str:
    return f"/skiff-test/{tmp_path.name}"


@pytest.fixture
def cgroup_parent_cleanup() -> object:
    yield
    for controller in os.listdir("/sys/fs/cgroup"):
        try:
            os.rmdir(f"/sys/fs/cgroup/{controller}/skiff-test")
        except OSError:
            pass


# --- terminal ------------------------------------------------------------------


def test_terminal_master_is_sent_over_the_console_socket(bundle: BundleFactory, tmp_path: Path) -> None:
    bundle.spec["process"]["terminal"] = True
    bundle.write(["sh", "-c", "tty; test -t 0 && echo tty-in; readlink /proc/self/fd/1; exit 7"])
    path = str(tmp_path / "console.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    received: list[int] = []

    def accept() -> None:
        conn, _ = listener.accept()
        with conn:
            _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
            received.extend(fds)

    thread = threading.Thread(target=accept)
    thread.start()
    rt = bundle.runtime
    rt.create("tty1", bundle.path, console_socket=path)
    thread.join(5)
    listener.close()
    try:
        assert len(received) == 1
        rt.start("tty1")
        assert rt.wait("tty1") == 7
        output = b""
        while True:
            try:
                chunk = os.read(received[0], 4096)
            except OSError:  # EIO once the slave side is closed
                break
            if not chunk:
                break
            output += chunk
        text = output.decode()
        assert "/dev/pts/0" in text and "tty-in" in text, text
    finally:
        for fd in received:
            os.close(fd)
        rt.delete("tty1", force=True)


def test_terminal_without_console_socket_is_refused(bundle: BundleFactory) -> None:
    bundle.spec["process"]["terminal"] = True
    bundle.write(["true"])
    with pytest.raises(Exception, match="console-socket"):
        bundle.runtime.create("tty2", bundle.path)


# --- user namespaces ---------------------------------------------------------------


@pytest.fixture
def open_bundle(busybox_rootfs: Path) -> object:
    """A bundle under a world-traversable directory: a mapped root is no one on the host."""
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="skiff-userns-", dir="/tmp"))
    base.chmod(0o755)
    factory = BundleFactory(base, busybox_rootfs)
    yield factory
    for entry in (list(factory.state_root.iterdir()) if factory.state_root.exists() else []):
        factory.runtime.delete(entry.name, force=True)
    shutil.rmtree(base)


def test_user_namespace_with_mappings(open_bundle: BundleFactory) -> None:
    bundle = open_bundle
    linux = bundle.spec["linux"]
    linux["namespaces"].append({"type": "user"})
    linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    for path in [bundle.rootfs, *bundle.rootfs.rglob("*")]:  # a rootfs owned by the mapped root
        st = os.lstat(path)
        os.lchown(path, st.st_uid + 100000, st.st_gid + 100000)
    result = bundle.sh("cat /proc/self/uid_map /proc/self/gid_map; id -u; echo $$; ls /proc/1/ns/user")
    assert result.code == 0, result.err
    lines = [line.split() for line in result.out.splitlines()]
    assert lines[0] == ["0", "100000", "65536"] and lines[1] == ["0", "100000", "65536"]
    assert lines[2:4] == [["0"], ["1"]]


def test_joining_a_user_namespace_by_path(open_bundle: BundleFactory) -> None:
    # As the containers of a Kubernetes pod with user namespaces join the sandbox's one.
    bundle = open_bundle
    linux = bundle.spec["linux"]
    namespaces = list(linux["namespaces"])
    for path in [bundle.rootfs, *bundle.rootfs.rglob("*")]:
        st = os.lstat(path)
        os.lchown(path, st.st_uid + 100000, st.st_gid + 100000)
    linux["namespaces"] = namespaces + [{"type": "user"}]
    linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle.write(["sleep", "30"])
    holder = bundle.runtime.create("holder", bundle.path, stdio=bundle.stdio("holder")[0])
    try:
        del linux["uidMappings"], linux["gidMappings"]
        linux["namespaces"] = namespaces + [{"type": "user", "path": f"/proc/{holder}/ns/user"}]
        result = bundle.sh("cat /proc/self/uid_map; id -u; echo $$; touch /dev/shm/made; stat -c %u /dev/shm/made; "
                           "readlink /proc/self/ns/user", cid="joiner")
        assert result.code == 0, result.err
        # Root of the holder's namespace, pid 1 of a new pid namespace (so /proc mounted), files made as root.
        assert result.out.split()[:6] == ["0", "100000", "65536", "0", "1", "0"]
        assert result.out.split()[6] == os.readlink(f"/proc/{holder}/ns/user")
    finally:
        bundle.runtime.delete("holder", force=True)  # and reaps it


def test_a_user_namespace_path_that_is_no_user_namespace_is_refused(bundle: BundleFactory) -> None:
    bundle.spec["linux"]["namespaces"].append({"type": "user", "path": "/proc/self/ns/net"})
    with pytest.raises(BundleError, match="cannot enter user namespace /proc/self/ns/net"):
        bundle.run(["true"])


def test_uid_mappings_without_user_namespace_are_refused(bundle: BundleFactory) -> None:
    bundle.spec["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    with pytest.raises(BundleError, match="needs a new user namespace"):
        bundle.run(["true"])


# --- hooks -----------------------------------------------------------------------


def _hook(tmp_path: Path, name: str, script: str = "", timeout: int | None = None) -> dict[str, object]:
    log = tmp_path / "hooks.log"
    hook = {"path": "/bin/sh", "args": ["sh", "-c", f"read -r state; echo {name} \"$state\" >> {log}; {script}"]}
    if timeout:
        hook["timeout"] = timeout
    return hook


def test_hooks_run_in_order_with_the_state_on_stdin(bundle: BundleFactory, tmp_path: Path) -> None:
    phases = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]
    # startContainer runs inside the container: its /bin/sh is busybox's and it logs into the rootfs.
    hooks = {phase: [_hook(tmp_path, phase)] for phase in phases if phase != "startContainer"}
    hooks["startContainer"] = [{"path": "/bin/sh", "args": ["sh", "-c", "cat > /startContainer.state"]}]
    result = bundle.run(["true"], hooks=hooks)
    assert result.code == 0, result.err
    lines = (tmp_path / "hooks.log").read_text().splitlines()
    assert [line.split()[0] for line in lines] == [p for p in phases if p != "startContainer"]
    states = {line.split()[0]: json.loads(line.split(" ", 1)[1]) for line in lines}
    assert states["prestart"]["id"] == "c1" and states["prestart"]["pid"] > 0
    assert states["prestart"]["bundle"] == str(bundle.path)
    assert states["poststart"]["status"] == "running" and states["poststop"]["status"] == "stopped"
    assert json.loads((bundle.rootfs / "startContainer.state").read_text())["id"] == "c1"


def test_failing_prestart_hook_leaves_nothing(bundle: BundleFactory, tmp_path: Path) -> None:
    hooks = {"prestart": [_hook(tmp_path, "prestart", "exit 3")]}
    with pytest.raises(HookError, match="prestart hook /bin/sh exited with status 3"):
        bundle.run(["true"], hooks=hooks)
    assert not any(bundle.state_root.iterdir())


def test_hook_timeout_kills_it(bundle: BundleFactory, tmp_path: Path) -> None:
    hooks = {"createRuntime": [_hook(tmp_path, "createRuntime", "sleep 30", timeout=1)]}
    started = time.monotonic()
    with pytest.raises(HookError, match="did not finish within 1s"):
        bundle.run(["true"], hooks=hooks)
    assert time.monotonic() - started < 10


def test_failing_poststart_hook_is_only_a_warning(bundle: BundleFactory, tmp_path: Path) -> None:
    result = bundle.run(["sh", "-c", "exit 4"], hooks={"poststart": [_hook(tmp_path, "poststart", "exit 1")]})
    assert result.code == 4


# --- seccomp, process attributes ---------------------------------------------------


def test_seccomp_denies_a_syscall_with_its_errno(bundle: BundleFactory) -> None:
    bundle.spec["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
    result = bundle.sh("mkdir /tmp/x 2>&1; echo done")
    assert "Operation not permitted" in result.out and "done" in result.out


def test_seccomp_unknown_action_is_a_bundle_error(bundle: BundleFactory) -> None:
    bundle.spec["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_BOGUS"}
    with pytest.raises(BundleError, match="unsupported action"):
        bundle.run(["true"])


def test_umask_oom_score_and_additional_gids(bundle: BundleFactory) -> None:
    bundle.spec["process"]["user"] = {"uid": 0, "gid": 0, "umask": 0o077, "additionalGids": [10, 20]}
    bundle.spec["process"]["oomScoreAdj"] = 300
    result = bundle.sh("umask; cat /proc/self/oom_score_adj; id -G")
    assert result.out.split() == ["0077", "300", "0", "10", "20"], result.err


def test_apparmor_profile_is_refused_where_the_host_has_none(bundle: BundleFactory) -> None:
    if os.path.exists("/sys/kernel/security/apparmor"):
        pytest.skip("this host has AppArmor")
    bundle.spec["process"]["apparmorProfile"] = "docker-default"
    with pytest.raises(BundleError, match="AppArmor is not enabled"):
        bundle.run(["true"])


def test_preserve_fds_and_pid_file(bundle: BundleFactory, tmp_path: Path) -> None:
    bundle.write(["sh", "-c", "cat <&3; ls /proc/self/fd"])
    read_end, write_end = os.pipe()
    os.write(write_end, b"through-fd-3\n")
    os.close(write_end)
    saved = os.dup(3) if _fd_open(3) else None
    os.dup2(read_end, 3)
    os.close(read_end)
    fds, out, _ = bundle.stdio()
    try:
        pid = bundle.runtime.create("pf", bundle.path, stdio=fds, pid_file=str(tmp_path / "pid"),
                                    preserve_fds=1)
    finally:
        if saved is not None:
            os.dup2(saved, 3)
            os.close(saved)
        else:
            os.close(3)
    try:
        assert (tmp_path / "pid").read_text() == str(pid)
        bundle.runtime.start("pf")
        assert bundle.runtime.wait("pf") == 0
    finally:
        bundle.runtime.delete("pf", force=True)
        for fd in fds:
            os.close(fd)
    lines = out.read_text().split()
    assert lines[0] == "through-fd-3" and "3" in lines[1:]


def _fd_open(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


# --- exec, pause, resume, update, ps, list ----------------------------------------


def _wait_for_exec(pid: int, program: bytes, timeout: float = 5.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not Path(f"/proc/{pid}/cmdline").read_bytes().startswith(program):
        assert time.monotonic() < deadline, f"pid {pid} never exec'd {program!r}"
        time.sleep(0.01)


def test_exec_joins_the_container(bundle: BundleFactory, tmp_path: Path, cgroup_parent_cleanup: object) -> None:
    bundle.spec["linux"]["cgroupsPath"] = _cgroup_path(tmp_path)
    bundle.write(["sleep", "30"], hostname="inside")
    rt = bundle.runtime
    fds, out, err = bundle.stdio("exec")
    rt.create("ex", bundle.path)
    try:
        rt.start("ex")
        _wait_for_exec(rt.state("ex")["pid"], b"sleep")  # start returns before the init's execve
        process = {"args": ["sh", "-c", "hostname; echo $$; cat /proc/1/cmdline; echo; id -u; exit 5"],
                   "env": ["PATH=/bin"], "cwd": "/tmp", "user": {"uid": 1000, "gid": 1000}}
        assert rt.exec("ex", process, stdio=fds) == 5
        lines = out.read_text().splitlines()
        assert lines[0] == "inside" and int(lines[1]) > 1 and lines[2].startswith("sleep") and lines[3] == "1000"
        detached = rt.exec("ex", {"args": ["sleep", "30"], "cwd": "/"}, stdio=fds, detach=True)
        assert detached in rt.ps("ex") and rt.ps("ex")[0] == rt.state("ex")["pid"]
        assert [s["id"] for s in rt.list()] == ["ex"]
        rt.pause("ex")
        assert rt.state("ex")["status"] == "paused"
        rt.resume("ex")
        assert rt.state("ex")["status"] == "running"
        rt.update("ex", {"pids": {"limit": 50}})
        assert Path(f"/sys/fs/cgroup/pids{_cgroup_path(tmp_path)}/pids.max").read_text().strip() == "50"
    finally:
        rt.delete("ex", force=True)  # reaps our detached child: it would hold the pid namespace open
        for fd in fds:
            os.close(fd)


def test_exec_of_a_missing_command_is_127(bundle: BundleFactory) -> None:
    from skiff.errors import CommandNotFound

    bundle.write(["sleep", "30"])
    rt = bundle.runtime
    rt.create("ex2", bundle.path)
    try:
        rt.start("ex2")
        with pytest.raises(CommandNotFound, match='"nope": executable file not found'):
            rt.exec("ex2", {"args": ["nope"], "cwd": "/"})
    finally:
        rt.delete("ex2", force=True)


def test_exec_in_a_stopped_container_is_refused(bundle: BundleFactory) -> None:
    bundle.write(["true"])
    rt = bundle.runtime
    rt.create("ex3", bundle.path)
    try:
        rt.start("ex3")
        rt.wait("ex3")
        with pytest.raises(ContainerNotRunning):
            rt.exec("ex3", {"args": ["true"], "cwd": "/"})
    finally:
        rt.delete("ex3", force=True)


def test_devices_are_created(bundle: BundleFactory) -> None:
    bundle.spec["linux"]["devices"] = [{"path": "/dev/fuse0", "type": "c", "major": 10, "minor": 229,
                                        "fileMode": 0o620, "uid": 0, "gid": 0}]
    result = bundle.sh("stat -c '%F %t,%T %a' /dev/fuse0")
    assert result.out.strip() == "character special file a,e5 620", result.err
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
