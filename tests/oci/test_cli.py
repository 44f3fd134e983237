"""skiff-oci's runc command line against real bundles, compared with runc where it is practical."""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from skiff.runtime import default_spec

RUNC = "/usr/sbin/runc"


def skiff_oci(root: Path, *args: str, timeout: float = 30, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run skiff-oci; a container it leaves running keeps its stdio, so those go to files, not pipes."""
    command = [sys.executable, "-m", "skiff.oci.main", "--root", str(root), *args]
    if "create" in args or "-d" in args:
        root.parent.mkdir(parents=True, exist_ok=True)
        with open(root.parent / "out.log", "w+") as out, open(root.parent / "err.log", "w+") as err:
            proc = subprocess.run(command, stdout=out, stderr=err, text=True, timeout=timeout, **kwargs)  # type: ignore[call-overload]
            err.seek(0)
            return subprocess.CompletedProcess(command, proc.returncode, "", err.read())
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)  # type: ignore[call-overload]


@pytest.fixture
def oci_bundle(tmp_path: Path, busybox_rootfs: Path) -> Path:
    bundle = tmp_path / "bundle"
    shutil.copytree(busybox_rootfs, bundle / "rootfs", symlinks=True)
    write_config(bundle, ["sh", "-c", "echo hello; exit 3"])
    return bundle


def write_config(bundle: Path, args: list[str], **changes: object) -> None:
    spec = default_spec()
    spec["process"]["args"] = args
    spec.update(changes)
    (bundle / "config.json").write_text(json.dumps(spec))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    yield state
    left = list(state.iterdir()) if state.exists() else []
    for entry in left:
        skiff_oci(state, "delete", "--force", entry.name)
    assert not left, f"containers left under --root: {left}"


def test_run_returns_the_exit_status_and_output(root: Path, oci_bundle: Path) -> None:
    result = skiff_oci(root, "run", "--bundle", str(oci_bundle), "c1")
    assert (result.returncode, result.stdout) == (3, "hello\n"), result.stderr


def test_lifecycle_create_start_state_kill_delete(root: Path, oci_bundle: Path, tmp_path: Path) -> None:
    write_config(oci_bundle, ["sleep", "30"])
    pid_file = tmp_path / "pid"
    assert skiff_oci(root, "create", "-b", str(oci_bundle), "--pid-file", str(pid_file), "c2",
                     stdin=subprocess.DEVNULL).returncode == 0
    state = json.loads(skiff_oci(root, "state", "c2").stdout)
    assert state["status"] == "created" and state["pid"] == int(pid_file.read_text())
    assert state["bundle"] == str(oci_bundle) and state["ociVersion"]
    assert skiff_oci(root, "start", "c2").returncode == 0
    assert json.loads(skiff_oci(root, "state", "c2").stdout)["status"] == "running"
    assert json.loads(skiff_oci(root, "ps", "--format", "json", "c2").stdout) == [state["pid"]]
    assert skiff_oci(root, "list", "-q").stdout == "c2\n"
    listed = json.loads(skiff_oci(root, "list", "--format", "json").stdout)
    assert [s["id"] for s in listed] == ["c2"]
    refused = skiff_oci(root, "delete", "c2")
    assert refused.returncode == 1 and "not stopped" in refused.stderr
    exec_ = skiff_oci(root, "exec", "c2", "sh", "-c", "echo in-$(hostname); exit 4")
    assert (exec_.returncode, exec_.stdout) == (4, "in-skiff\n"), exec_.stderr
    assert skiff_oci(root, "kill", "c2", "KILL").returncode == 0
    for _ in range(50):
        if json.loads(skiff_oci(root, "state", "c2").stdout)["status"] == "stopped":
            break
        time.sleep(0.1)
    assert json.loads(skiff_oci(root, "state", "c2").stdout)["status"] == "stopped"
    assert skiff_oci(root, "delete", "c2").returncode == 0
    assert not (root / "c2").exists()


def test_exec_with_a_process_file(root: Path, oci_bundle: Path, tmp_path: Path) -> None:
    write_config(oci_bundle, ["sleep", "30"])
    assert skiff_oci(root, "run", "-d", "-b", str(oci_bundle), "c3", stdin=subprocess.DEVNULL).returncode == 0
    process = {"args": ["sh", "-c", "id -u; pwd; echo $FOO"], "env": ["PATH=/bin", "FOO=bar"], "cwd": "/tmp",
               "user": {"uid": 1000, "gid": 1000}}
    (tmp_path / "process.json").write_text(json.dumps(process))
    result = skiff_oci(root, "exec", "--process", str(tmp_path / "process.json"), "c3")
    assert result.stdout.split() == ["1000", "/tmp", "bar"], result.stderr
    assert skiff_oci(root, "delete", "--force", "c3").returncode == 0


def _runc_and_skiff(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    runc = subprocess.run([RUNC, "--root", str(tmp_path / "runc-state"), *args], capture_output=True, text=True)
    ours = skiff_oci(tmp_path / "state", *args)
    return runc, ours


@pytest.mark.parametrize("args", [["state", "nope"], ["kill", "nope"], ["start", "nope"], ["delete", "nope"]])
def test_errors_on_a_missing_container_read_like_runc(tmp_path: Path, args: list[str]) -> None:
    runc, ours = _runc_and_skiff(tmp_path, *args)
    assert ours.returncode == runc.returncode == 1
    assert ours.stderr.startswith('time="') and " level=error msg=" in ours.stderr
    assert runc.stderr.startswith('time="') and " level=error msg=" in runc.stderr


def test_delete_force_of_a_missing_container_succeeds_like_runc(tmp_path: Path) -> None:
    runc, ours = _runc_and_skiff(tmp_path, "delete", "--force", "nope")
    assert ours.returncode == runc.returncode == 0


def test_json_log_goes_to_the_log_file(tmp_path: Path) -> None:
    log = tmp_path / "log.json"
    result = skiff_oci(tmp_path / "state", "--log", str(log), "--log-format", "json", "state", "nope")
    assert result.returncode == 1
    line = json.loads(log.read_text().splitlines()[-1])
    assert line["level"] == "error" and "nope" in line["msg"] and line["time"]
    assert "nope" in result.stderr


def test_systemd_cgroup_is_refused_clearly(tmp_path: Path) -> None:
    result = skiff_oci(tmp_path / "state", "--systemd-cgroup", "list")
    assert result.returncode == 1 and "--systemd-cgroup is not supported" in result.stderr


@pytest.mark.parametrize("breakage, message", [
    ("not json", "is not valid JSON"),
    ({"ociVersion": "1.0.2", "root": {"path": "rootfs"}}, "missing 'process'"),
    ("unknown-namespace", "unknown namespace type 'bogus'"),
    ("unknown-capability", "unknown capability 'CAP_BOGUS'"),
    ("no-rootfs", "does not exist"),
])
def test_bad_bundles_give_one_line_and_leave_nothing(root: Path, oci_bundle: Path, breakage: object,
                                                     message: str) -> None:
    spec = default_spec()
    if breakage == "not json":
        (oci_bundle / "config.json").write_text("{not json")
    elif breakage == "unknown-namespace":
        spec["linux"]["namespaces"].append({"type": "bogus"})
        (oci_bundle / "config.json").write_text(json.dumps(spec))
    elif breakage == "unknown-capability":
        spec["process"]["capabilities"]["bounding"].append("CAP_BOGUS")
        (oci_bundle / "config.json").write_text(json.dumps(spec))
    elif breakage == "no-rootfs":
        shutil.rmtree(oci_bundle / "rootfs")
        (oci_bundle / "config.json").write_text(json.dumps(spec))
    else:
        (oci_bundle / "config.json").write_text(json.dumps(breakage))
    result = skiff_oci(root, "create", "--bundle", str(oci_bundle), "bad")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr
    assert not (root.exists() and any(root.iterdir()))


def test_spec_writes_a_config_and_refuses_to_overwrite(tmp_path: Path) -> None:
    assert skiff_oci(tmp_path / "state", "spec", "--bundle", str(tmp_path)).returncode == 0
    assert json.loads((tmp_path / "config.json").read_text())["process"]["terminal"] is True
    again = skiff_oci(tmp_path / "state", "spec", "--bundle", str(tmp_path))
    assert again.returncode == 1 and "exists" in again.stderr


def test_features_lists_hooks_and_namespaces(tmp_path: Path) -> None:
    features = json.loads(skiff_oci(tmp_path / "state", "features").stdout)
    assert "createRuntime" in features["hooks"] and "user" in features["linux"]["namespaces"]
    assert {"idmap", "ridmap", "rbind", "rprivate"} <= set(features["mountOptions"])
    assert features["linux"]["mountExtensions"] == {"idmap": {"enabled": True}}


def test_pause_resume_update(root: Path, oci_bundle: Path, tmp_path: Path) -> None:
    cgroup = f"/skiff-oci-test-{tmp_path.name}"
    spec = default_spec()
    spec["process"]["args"] = ["sleep", "30"]
    spec["linux"]["cgroupsPath"] = cgroup
    (oci_bundle / "config.json").write_text(json.dumps(spec))
    assert skiff_oci(root, "run", "-d", "-b", str(oci_bundle), "c4", stdin=subprocess.DEVNULL).returncode == 0
    try:
        assert skiff_oci(root, "pause", "c4").returncode == 0
        assert json.loads(skiff_oci(root, "state", "c4").stdout)["status"] == "paused"
        assert skiff_oci(root, "resume", "c4").returncode == 0
        update = skiff_oci(root, "update", "--resources", "-", "c4", input=json.dumps({"pids": {"limit": 42}}))
        assert update.returncode == 0, update.stderr
        assert Path(f"/sys/fs/cgroup/pids{cgroup}/pids.max").read_text().strip() == "42"
    finally:
        skiff_oci(root, "delete", "--force", "c4")
    assert not os.path.exists(f"/sys/fs/cgroup/pids{cgroup}")


def _receive_pty_master(listener: socket.socket) -> int:
    """Accept skiff-oci's connection and take the pty master it sends with SCM_RIGHTS, as containerd does."""
    listener.settimeout(20)
    conn, _ = listener.accept()
    with conn:
        name, fds, _, _ = socket.recv_fds(conn, 4096, 1)
    assert len(fds) == 1 and name.startswith(b"/dev/pts/"), (name, fds)
    return fds[0]


def _read_until_closed(fd: int, timeout: float = 20) -> bytes:
    import select

    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the last slave fd in the container closed
            break
        if not chunk:
            break
        out += chunk
    return out


def test_console_socket_receives_the_pty_master(root: Path, oci_bundle: Path, tmp_path: Path) -> None:
    spec = default_spec()
    spec["process"]["terminal"] = True
    spec["process"]["args"] = ["sh", "-c", "tty; [ -t 0 ] && echo stdin-is-a-tty; read line; echo got-$line"]
    (oci_bundle / "config.json").write_text(json.dumps(spec))
    path = str(tmp_path / "console.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen(1)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            master_future = pool.submit(_receive_pty_master, listener)
            created = skiff_oci(root, "create", "-b", str(oci_bundle), "--console-socket", path, "tty1",
                                stdin=subprocess.DEVNULL)
            assert created.returncode == 0, created.stderr
            master = master_future.result(timeout=20)
    try:
        assert skiff_oci(root, "start", "tty1").returncode == 0
        os.write(master, b"ping\n")
        out = _read_until_closed(master).replace(b"\r\n", b"\n")
    finally:
        os.close(master)
        skiff_oci(root, "delete", "--force", "tty1")
    assert out.splitlines()[0].startswith(b"/dev/pts/"), out
    assert b"stdin-is-a-tty\n" in out and b"got-ping\n" in out, out
    assert not (root / "tty1").exists()


def test_exec_tty_through_the_console_socket(root: Path, oci_bundle: Path, tmp_path: Path) -> None:
    write_config(oci_bundle, ["sleep", "30"])
    assert skiff_oci(root, "run", "-d", "-b", str(oci_bundle), "tty2", stdin=subprocess.DEVNULL).returncode == 0
    path = str(tmp_path / "exec-console.sock")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            listener.bind(path)
            listener.listen(1)
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                master_future = pool.submit(_receive_pty_master, listener)
                exec_ = skiff_oci(root, "exec", "--tty", "--detach", "--console-socket", path, "tty2",
                                  "sh", "-c", "[ -t 1 ] && echo exec-tty; exit 0", stdin=subprocess.DEVNULL)
                assert exec_.returncode == 0, exec_.stderr
                master = master_future.result(timeout=20)
        try:
            out = _read_until_closed(master)
        finally:
            os.close(master)
        assert b"exec-tty" in out, out
    finally:
        skiff_oci(root, "delete", "--force", "tty2")
