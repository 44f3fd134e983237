"""The OCI runtime core against the real kernel: isolation, exit codes, lifecycle, bad bundles."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from skiff.errors import (BundleError, CommandNotExecutable, CommandNotFound, ContainerConflict,
                          ContainerNotFound, SyscallError)
from tests.runtime.conftest import BundleFactory

# --- isolation ----------------------------------------------------------------


def test_process_is_pid_1_and_sees_only_its_own_processes(bundle: BundleFactory) -> None:
    result = bundle.sh("echo $$; ps -o pid,comm")
    assert result.code == 0, result.err
    lines = result.out.split("\n")
    assert lines[0] == "1"
    pids = [line.split()[0] for line in lines[2:] if line.strip()]
    assert pids and all(int(p) < 10 for p in pids), result.out


def test_hostname_and_domainname_are_isolated(bundle: BundleFactory) -> None:
    result = bundle.sh("hostname; cat /proc/sys/kernel/domainname", hostname="box1", domainname="example.org")
    assert result.out.split() == ["box1", "example.org"]
    assert socket.gethostname() != "box1"


def test_proc_is_mounted_and_sys_is_read_only(bundle: BundleFactory) -> None:
    result = bundle.sh("test -r /proc/1/stat && echo proc; touch /sys/kernel/x 2>/dev/null || echo sys-ro;"
                       "grep ' /sys/fs/cgroup' /proc/mounts")
    assert result.out.split("\n")[:2] == ["proc", "sys-ro"]
    hierarchies = [line for line in result.out.split("\n")[2:] if " /sys/fs/cgroup/" in line or " cgroup2 " in line]
    assert hierarchies and all(" ro," in line for line in hierarchies), result.out  # the tmpfs under them: rw, as runc


def test_dev_has_the_standard_nodes_and_links(bundle: BundleFactory) -> None:
    result = bundle.sh("ls /dev; echo x > /dev/null && echo null-ok; for l in ptmx fd stdin; do readlink /dev/$l; done;"
                       "stat -c '%F %t,%T' /dev/null /dev/urandom")
    assert result.code == 0, result.err
    lines = result.out.split("\n")
    assert lines[:16] == sorted(["fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr",
                                 "stdin", "stdout", "tty", "urandom", "zero"]) + ["null-ok", "pts/ptmx"]
    assert lines[16:18] == ["/proc/self/fd", "/proc/self/fd/0"]
    assert lines[18:20] == ["character special file 1,3", "character special file 1,9"]


def test_old_root_is_unreachable(bundle: BundleFactory, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    canary.write_text("host")
    result = bundle.sh(f"cat {canary} 2>&1; ls /work 2>&1; grep -c . /proc/mounts")
    assert "host" not in result.out
    assert "No such file" in result.out


def test_only_stdio_fds_reach_the_container(bundle: BundleFactory) -> None:
    leaked = os.open("/dev/null", os.O_RDONLY)  # inheritable on purpose
    os.set_inheritable(leaked, True)
    try:
        # `; true` keeps sh from exec'ing ls, so PID 1 is the shell the runtime exec'd.
        result = bundle.sh("ls /proc/1/fd; true")
    finally:
        os.close(leaked)
    assert result.out.split() == ["0", "1", "2"], result.out


def test_new_network_namespace_has_lo_up(bundle: BundleFactory) -> None:
    result = bundle.sh("ip -o link show | wc -l; ip -o link show; cat /sys/class/net/lo/flags")
    assert result.out.startswith("1\n1: lo: <LOOPBACK,UP"), result.out
    assert int(result.out.split()[-1], 16) & 1


# --- exit codes and exec errors -----------------------------------------------


@pytest.mark.parametrize(("args", "code"), [(["true"], 0), (["sh", "-c", "exit 3"], 3)])
def test_exit_codes(bundle: BundleFactory, args: list[str], code: int) -> None:
    assert bundle.run(args).code == code


def test_killed_by_signal_gives_128_plus_n(bundle: BundleFactory) -> None:
    bundle.write(["sleep", "30"])
    pid = bundle.runtime.create("k", bundle.path, stdio=(0, 1, 2))
    bundle.runtime.start("k")
    bundle.runtime.kill("k", signal.SIGKILL)
    assert bundle.runtime.wait("k") == 137
    assert bundle.runtime.state("k")["status"] == "stopped"
    bundle.runtime.delete("k")
    assert not (bundle.state_root / "k").exists()
    assert not Path(f"/proc/{pid}").exists()


def test_run_forwards_signals(bundle: BundleFactory, tmp_path: Path) -> None:
    out = tmp_path / "io.out"

    def send_term_when_ready() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "ready" not in (out.read_text() if out.exists() else ""):
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGTERM)

    sender = threading.Thread(target=send_term_when_ready)
    sender.start()
    try:
        result = bundle.sh('trap "exit 42" TERM; echo ready; while true; do sleep 0.05; done')
    finally:
        sender.join()
    assert result.code == 42


def test_command_not_found(bundle: BundleFactory) -> None:
    with pytest.raises(CommandNotFound) as info:
        bundle.run(["nosuch"])
    assert str(info.value) == 'exec: "nosuch": executable file not found in $PATH'
    assert info.value.exit_code == 127
    assert not (bundle.state_root / "c1").exists()


@pytest.mark.parametrize("path", ["/etc", "/etc/passwd"])
def test_command_not_executable(bundle: BundleFactory, path: str) -> None:
    with pytest.raises(CommandNotExecutable) as info:
        bundle.run([path])
    assert str(info.value) == f'exec: "{path}": permission denied'
    assert info.value.exit_code == 126


# --- the process ----------------------------------------------------------------


def test_user_and_groups(bundle: BundleFactory) -> None:
    bundle.spec["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [10, 100]}
    result = bundle.run(["id"])
    assert result.out.strip() == "uid=1000(user) gid=1000(user) groups=10(wheel),100(users)"


def test_capabilities_are_those_configured(bundle: BundleFactory) -> None:
    bundle.spec["process"]["capabilities"] = {"bounding": ["CAP_KILL", "CAP_CHOWN"],
                                              "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}
    result = bundle.sh("grep -E '^Cap(Eff|Bnd)' /proc/self/status")
    caps = dict(line.split(":\t") for line in result.out.strip().split("\n"))
    # noNewPrivileges (the default) keeps execve from raising effective beyond the permitted set.
    assert caps == {"CapEff": f"{1 << 5:016x}", "CapBnd": f"{(1 << 0) | (1 << 5):016x}"}


def test_unknown_capability_is_a_bundle_error(bundle: BundleFactory) -> None:
    bundle.spec["process"]["capabilities"]["bounding"].append("CAP_FLY")
    with pytest.raises(BundleError, match="CAP_FLY"):
        bundle.run(["true"])


def test_cwd_is_created_and_env_passed(bundle: BundleFactory) -> None:
    bundle.spec["process"]["cwd"] = "/new/work dir"
    bundle.spec["process"]["env"].append("GREETING=hello there")
    bundle.spec["process"]["user"]["umask"] = 0o077
    result = bundle.sh('pwd; echo "$GREETING"; umask')
    assert result.out.split("\n")[:3] == ["/new/work dir", "hello there", "0077"]


def test_rlimit_above_the_hard_limit_is_a_clear_error(bundle: BundleFactory) -> None:
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    bundle.spec["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": hard + 1}]
    with pytest.raises(SyscallError, match="RLIMIT_NOFILE") as info:
        bundle.run(["true"])
    assert str(hard) in str(info.value)


def test_rlimits_are_applied(bundle: BundleFactory) -> None:
    bundle.spec["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}]
    assert bundle.sh("ulimit -n; ulimit -Hn").out.split() == ["100", "200"]


# --- mounts and the root --------------------------------------------------------


def test_mount_through_a_symlink_stays_in_the_rootfs(bundle: BundleFactory, tmp_path: Path) -> None:
    os.symlink("/etc", bundle.rootfs / "evil")
    os.symlink("../../../../../../etc", bundle.rootfs / "evil2")
    source = tmp_path / "src.txt"
    source.write_text("bound\n")
    bundle.spec["mounts"] += [
        {"destination": "/evil/skiff-canary", "type": "bind", "source": str(source), "options": ["bind", "ro"]},
        {"destination": "/evil2/skiff-dir", "type": "tmpfs", "source": "tmpfs"},
    ]
    result = bundle.sh("cat /etc/skiff-canary; grep -c . /etc/passwd; touch /etc/skiff-canary 2>&1;"
                       "grep skiff-dir /proc/mounts")
    assert result.out.split("\n")[:2] == ["bound", "5"]
    assert "Read-only" in result.out
    assert " /etc/skiff-dir tmpfs" in result.out
    assert (bundle.rootfs / "etc" / "skiff-canary").exists()  # the mountpoint was made in the rootfs
    assert not Path("/etc/skiff-canary").exists() and not Path("/etc/skiff-dir").exists()


def test_bind_mounts_and_read_only_rbind(bundle: BundleFactory, tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "file").write_text("data\n")
    bundle.spec["mounts"] += [
        {"destination": "/rw", "type": "bind", "source": str(data), "options": ["rbind"]},
        {"destination": "/ro", "type": "bind", "source": str(data), "options": ["rbind", "ro"]},
    ]
    result = bundle.sh("echo new > /rw/new && cat /ro/file /ro/new; touch /ro/x 2>&1")
    assert result.out.split("\n")[:2] == ["data", "new"]
    assert "Read-only" in result.out
    assert (data / "new").read_text() == "new\n"


def test_read_only_root_refuses_writes(bundle: BundleFactory) -> None:
    result = bundle.sh("touch /x 2>&1; echo ok > /dev/shm/y && cat /dev/shm/y",
                       root={"path": "rootfs", "readonly": True})
    assert "Read-only file system" in result.out
    assert "ok" in result.out
    assert not (bundle.rootfs / "x").exists()


def test_masked_and_read_only_paths(bundle: BundleFactory) -> None:
    bundle.spec["linux"]["maskedPaths"] += ["/etc/passwd", "/home"]
    bundle.spec["linux"]["readonlyPaths"] += ["/root"]
    result = bundle.sh("wc -c < /proc/keys; wc -c < /etc/passwd; ls -A /home | wc -l;"
                       "touch /root/x 2>&1; { echo 1 > /proc/sys/kernel/domainname; } 2>&1")
    lines = result.out.split("\n")
    assert lines[:3] == ["0", "0", "0"]
    assert "Read-only" in lines[3] and "Read-only" in lines[4]


# --- lifecycle ------------------------------------------------------------------


def test_create_start_state_kill_delete(bundle: BundleFactory, tmp_path: Path) -> None:
    rt = bundle.runtime
    bundle.write(["sh", "-c", "echo started; exec sleep 30"])
    fds, out, _ = bundle.stdio()
    try:
        pid = rt.create("life", bundle.path, stdio=fds)
    finally:
        for fd in fds:
            os.close(fd)
    state = rt.state("life")
    assert state["status"] == "created" and state["pid"] == pid and state["id"] == "life"
    assert state["bundle"] == str(bundle.path)
    time.sleep(0.1)
    assert out.read_text() == ""  # still waiting before exec
    with pytest.raises(ContainerConflict):
        rt.create("life", bundle.path)
    rt.start("life")
    assert rt.state("life")["status"] == "running"
    deadline = time.monotonic() + 10
    while out.read_text() != "started\n" and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(ContainerConflict):
        rt.start("life")
    with pytest.raises(ContainerConflict):
        rt.delete("life")
    rt.kill("life", signal.SIGKILL)
    assert rt.wait("life") == 137
    assert out.read_text() == "started\n"
    assert rt.state("life")["status"] == "stopped"
    rt.delete("life")
    assert list(bundle.state_root.iterdir()) == []
    with pytest.raises(ContainerNotFound):
        rt.state("life")


def test_delete_of_a_created_container_kills_its_init(bundle: BundleFactory) -> None:
    bundle.write(["true"])
    pid = bundle.runtime.create("c2", bundle.path)
    bundle.runtime.delete("c2")
    assert not Path(f"/proc/{pid}").exists()
    assert list(bundle.state_root.iterdir()) == []


def test_delete_kills_processes_left_in_the_cgroup_and_removes_it(bundle: BundleFactory) -> None:
    """A process in the container's cgroup outside its pid namespace (a host-side exec) outlives
    the init: delete must kill it and still remove every directory of the cgroup."""
    import subprocess

    bundle.write(["sleep", "30"])
    pid = bundle.runtime.create("left", bundle.path)
    dirs = json.loads((bundle.state_root / "left" / "state.json").read_text())["cgroupDirs"]
    straggler = subprocess.Popen(["sleep", "60"])
    try:
        for directory in dirs:
            Path(directory, "cgroup.procs").write_text(str(straggler.pid))
        bundle.runtime.kill("left", signal.SIGKILL)
        os.waitpid(pid, 0)
        bundle.runtime.delete("left")
        assert straggler.wait(timeout=10) == -signal.SIGKILL
    finally:
        straggler.kill()
        straggler.wait()
    assert not [d for d in dirs if Path(d).exists()]
    assert list(bundle.state_root.iterdir()) == []


# --- bad bundles ----------------------------------------------------------------


def _assert_bundle_error(bundle: BundleFactory, match: str) -> None:
    with pytest.raises(BundleError, match=match):
        bundle.runtime.run("bad", bundle.path)
    assert not (bundle.state_root / "bad").exists()


def test_config_that_is_not_json(bundle: BundleFactory) -> None:
    (bundle.path / "config.json").write_text("{not json")
    _assert_bundle_error(bundle, "not valid JSON")


def test_config_without_process_args(bundle: BundleFactory) -> None:
    bundle.write()
    config = json.loads((bundle.path / "config.json").read_text())
    del config["process"]["args"]
    (bundle.path / "config.json").write_text(json.dumps(config))
    _assert_bundle_error(bundle, "process.args")


def test_unknown_namespace_type(bundle: BundleFactory) -> None:
    bundle.spec["linux"]["namespaces"].append({"type": "wormhole"})
    bundle.write(["true"])
    _assert_bundle_error(bundle, "wormhole")


def test_missing_rootfs(bundle: BundleFactory) -> None:
    bundle.write(["true"], root={"path": "nowhere"})
    _assert_bundle_error(bundle, "nowhere")


def test_missing_bind_source_leaves_nothing(bundle: BundleFactory, tmp_path: Path) -> None:
    bundle.spec["mounts"].append({"destination": "/x", "type": "bind", "source": str(tmp_path / "nope"),
                                  "options": ["bind"]})
    bundle.write(["true"])
    with pytest.raises(SyscallError, match="nope"):
        bundle.runtime.run("bad", bundle.path)
    assert not (bundle.state_root / "bad").exists()


def test_exec_failure_after_start_goes_to_stderr(bundle: BundleFactory) -> None:
    script = bundle.rootfs / "bin" / "garbage"
    script.write_bytes(b"\x00\x01\x02 not a program\n")
    script.chmod(0o755)
    result = bundle.run(["garbage"])
    assert result.code == 126
    assert result.err == 'skiff: exec: "garbage": Exec format error\n'


# --- cgroups ----------------------------------------------------------------------


def test_container_is_placed_in_its_cgroup(bundle: BundleFactory) -> None:
    if not Path("/sys/fs/cgroup/pids/cgroup.procs").exists():
        pytest.skip("needs the v1 pids controller at /sys/fs/cgroup/pids (this host's layout)")
    name = f"skiff-rt-test-{os.getpid()}"
    bundle.spec["linux"]["cgroupsPath"] = f"/{name}"
    bundle.spec["linux"]["resources"] = {"pids": {"limit": 50}}
    bundle.write(["sh", "-c", "cat /sys/fs/cgroup/pids/pids.max; grep pids /proc/self/cgroup; exec sleep 30"])
    fds, out, _ = bundle.stdio()
    try:
        pid = bundle.runtime.create("cg", bundle.path, stdio=fds)
    finally:
        for fd in fds:
            os.close(fd)
    host_dir = Path("/sys/fs/cgroup/pids") / name
    try:
        assert str(pid) in (host_dir / "cgroup.procs").read_text().split()
        assert (host_dir / "pids.max").read_text().strip() == "50"
        bundle.runtime.start("cg")
        deadline = time.monotonic() + 10
        while out.read_text().count("\n") < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        # In its cgroup namespace the container sees its own cgroup as the root.
        assert out.read_text().split("\n")[:2] == ["50", next(
            line for line in Path(f"/proc/{pid}/cgroup").read_text().split("\n") if "pids" in line
        ).rsplit(":", 1)[0] + ":/"]
    finally:
        bundle.runtime.delete("cg", force=True)
    assert not host_dir.exists()


def test_dangling_symlink_destination_is_created_inside_the_root(bundle: BundleFactory) -> None:
    os.symlink("/made/by/mount", bundle.rootfs / "dangling")
    bundle.spec["mounts"].append({"destination": "/dangling", "type": "tmpfs", "source": "tmpfs"})
    result = bundle.sh("grep ' /made/by/mount ' /proc/mounts | cut -d' ' -f3")
    assert result.out == "tmpfs\n"
    assert (bundle.rootfs / "made" / "by" / "mount").is_dir()
    assert not Path("/made").exists()


def test_the_caller_keeps_no_fds_and_its_pid_namespace(bundle: BundleFactory) -> None:
    before = sorted(os.listdir("/proc/self/fd"))
    own_ns = os.readlink("/proc/self/ns/pid_for_children")
    assert bundle.run(["true"]).code == 0
    assert sorted(os.listdir("/proc/self/fd")) == before
    assert os.readlink("/proc/self/ns/pid_for_children") == own_ns
