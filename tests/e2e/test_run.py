"""`skiff run` end to end: real containers from a busybox image in a private store."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Skiff


def mount_table(mine: Path) -> list[str]:
    """The host's mounts, less those of other test sessions running beside this one."""
    with open("/proc/self/mountinfo") as f:
        table = [" ".join(line.split()[4:]) for line in f]
    return sorted(m for m in table if "/pytest-of-" not in m or str(mine) in m)


def run(skiff: Skiff, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return skiff("run", "--rm", "--network", "none", *args, **kwargs)  # type: ignore[arg-type]


def test_command_is_pid_1_and_sees_only_its_processes(skiff: Skiff, busybox_image: str) -> None:
    out = run(skiff, busybox_image, "sh", "-c", "echo $$; ps -o pid,comm; true").stdout.split("\n")
    assert out[0] == "1"
    pids = [line.split()[0] for line in out[2:] if line.strip()]
    assert len(pids) == 2 and "1" in pids, out  # sh and ps, nothing of the host


def test_hostname_defaults_to_short_id_and_is_isolated(skiff: Skiff, busybox_image: str) -> None:
    host_before = os.uname().nodename
    name = run(skiff, busybox_image, "hostname").stdout.strip()
    assert len(name) == 12 and all(c in "0123456789abcdef" for c in name)
    assert run(skiff, "--hostname", "box", busybox_image, "sh", "-c", "hostname; cat /etc/hostname").stdout \
        == "box\nbox\n"
    assert os.uname().nodename == host_before


def test_host_mount_table_is_unchanged(skiff: Skiff, busybox_image: str) -> None:
    before = mount_table(skiff.root.parent)
    assert run(skiff, busybox_image, "true").returncode == 0
    assert mount_table(skiff.root.parent) == before


def test_old_root_is_not_reachable(skiff: Skiff, busybox_image: str, tmp_path: Path) -> None:
    canary = tmp_path / "host-canary"
    canary.write_text("CANARY-CONTENT")
    out = run(skiff, busybox_image, "sh", "-c",
              f"cat {canary} 2>&1; ls /.oldroot /oldroot 2>&1; awk '$5 == \"/\"' /proc/self/mountinfo | wc -l").stdout
    assert "CANARY-CONTENT" not in out
    assert out.strip().endswith("1"), out  # exactly one mount on /: the container's root


def test_standard_mounts_and_dev(skiff: Skiff, busybox_image: str) -> None:
    out = run(skiff, busybox_image, "sh", "-c",
              "ls /dev; echo x > /dev/null && echo null-ok; touch /sys/x 2>&1; ls /proc/self/fd").stdout
    for node in ("null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm", "mqueue",
                 "fd", "stdin", "stdout", "stderr"):
        assert node in out.split(), node
    assert "null-ok" in out
    assert "Read-only file system" in out


def test_only_std_fds_reach_the_container(skiff: Skiff, busybox_image: str) -> None:
    leak_r, leak_w = os.pipe()
    os.set_inheritable(leak_r, True)  # a careless parent: skiff must still not pass it on
    try:
        proc = subprocess.run([*skiff_cmd(skiff), "run", "--rm", "--network", "none", busybox_image,
                               "ls", "/proc/self/fd"], env=skiff.env, capture_output=True, text=True,
                              close_fds=False)
    finally:
        os.close(leak_r)
        os.close(leak_w)
    # ls itself opens one fd for the directory it lists
    assert sorted(proc.stdout.split(), key=int)[:3] == ["0", "1", "2"]
    assert len(proc.stdout.split()) == 4, proc.stdout


def skiff_cmd(skiff: Skiff) -> list[str]:
    import sys

    return [sys.executable, "-m", "skiff"]


@pytest.mark.parametrize("command,expected", [
    (["true"], 0),
    (["sh", "-c", "exit 3"], 3),
    (["nosuchcommand"], 127),
    (["/nosuch/path"], 127),
    (["/etc/passwd"], 126),
    (["/etc"], 126),
])
def test_exit_codes(skiff: Skiff, busybox_image: str, command: list[str], expected: int) -> None:
    proc = run(skiff, busybox_image, *command)
    assert proc.returncode == expected, proc.stderr
    if expected in (126, 127):
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_engine_errors_exit_125_with_one_line(skiff: Skiff, busybox_image: str) -> None:
    proc = skiff("run", "--rm", "--pull", "never", "nosuch")
    assert proc.returncode == 125
    assert proc.stderr.startswith("skiff: Unable to find image 'nosuch:latest' locally")
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = skiff("run", "--rm", "nosuch")  # tries to pull, through the tests' dead proxy
    assert proc.returncode == 125
    lines = proc.stderr.strip().splitlines()
    assert lines[0] == "Unable to find image 'nosuch:latest' locally", lines
    assert lines[-1].startswith("skiff: ") and "Traceback" not in proc.stderr
    assert [line for line in lines if line.startswith("skiff: ")] == lines[-1:]
    proc = skiff("run", "--bogus-flag", busybox_image)
    assert proc.returncode == 125 and "Traceback" not in proc.stderr
    proc = run(skiff, "-u", "nosuchuser", busybox_image, "true")
    assert proc.returncode == 125 and "nosuchuser" in proc.stderr
    assert skiff.ok("ps", "-a", "-q") == ""  # failed runs leave no container behind


def test_env_user_workdir(skiff: Skiff, busybox_image: str, tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("# comment\nFROM_FILE=yes\nBOTH=file\n")
    out = run(skiff, "-e", "A=1", "--env-file", str(env_file), "-e", "BOTH=flag", busybox_image,
              "sh", "-c", "echo $A $FROM_FILE $BOTH $HOME $PATH").stdout
    assert out.split() == ["1", "yes", "flag", "/root",
                           "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    # Docker 20.10.18+ keeps the primary gid among the groups
    assert run(skiff, "-u", "user", busybox_image, "sh", "-c", "id; echo $HOME").stdout == \
        "uid=1000(user) gid=1000(user) groups=10(wheel),100(users),1000(user)\n/home/user\n"
    assert run(skiff, "-u", "1000:33", busybox_image, "id", "-u").stdout.strip() == "1000"
    assert run(skiff, "-u", "4242", busybox_image, "sh", "-c", "id -u; id -g").stdout.split() == ["4242", "0"]
    assert run(skiff, "-w", "/new/dir", busybox_image, "pwd").stdout == "/new/dir\n"


def test_entrypoint_and_cmd_rules(skiff: Skiff, busybox_tar: Path) -> None:
    skiff.ok("import", str(busybox_tar), "ep:1", "--change", 'ENTRYPOINT ["echo", "ep"]',
             "--change", 'CMD ["default"]')
    assert run(skiff, "ep:1").stdout == "ep default\n"
    assert run(skiff, "ep:1", "given").stdout == "ep given\n"
    assert run(skiff, "--entrypoint", "echo", "ep:1").stdout == "\n"  # image CMD dropped
    assert run(skiff, "--entrypoint", "", "ep:1", "echo", "plain").stdout == "plain\n"


def test_read_only_root(skiff: Skiff, busybox_image: str) -> None:
    proc = run(skiff, "--read-only", busybox_image, "sh", "-c", "touch /x")
    assert proc.returncode != 0 and "Read-only" in proc.stderr


def test_containers_of_one_image_are_isolated(skiff: Skiff, busybox_image: str) -> None:
    skiff.ok("run", "--name", "writer", "--network", "none", busybox_image, "sh", "-c", "echo mine > /file")
    assert run(skiff, busybox_image, "cat", "/file").returncode == 1
    skiff.ok("rm", "writer")


def test_ps_and_rm(skiff: Skiff, busybox_image: str) -> None:
    assert skiff("run", "--name", "done", "--network", "none", busybox_image, "sh", "-c", "exit 2").returncode == 2
    assert skiff.ok("ps").splitlines()[1:] == []
    lines = skiff.ok("ps", "-a").splitlines()
    assert lines[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    assert "Exited (2)" in lines[1] and lines[1].endswith("done")
    proc = skiff("run", "--name", "done", "--network", "none", busybox_image, "true")
    assert proc.returncode == 125 and "already in use" in proc.stderr
    assert skiff.ok("rm", "done") == "done\n"
    assert skiff.ok("ps", "-a", "-q") == ""
    proc = skiff("rm", "done")
    assert proc.returncode == 1 and "No such container: done" in proc.stderr


def test_rm_flag_leaves_nothing(skiff: Skiff, busybox_image: str) -> None:
    run(skiff, busybox_image, "sh", "-c", "echo x > /y")
    assert list((skiff.root / "containers").iterdir()) == []
    runtime = skiff.run_root / "runtime"
    assert not runtime.exists() or list(runtime.iterdir()) == []


def test_saved_and_loaded_image_runs_the_same(skiff: Skiff, busybox_image: str, tmp_path: Path) -> None:
    archive = tmp_path / "busybox.oci.tar"
    skiff.ok("save", "-o", str(archive), busybox_image)
    skiff.ok("rmi", busybox_image)
    skiff.ok("load", "-i", str(archive))
    assert run(skiff, busybox_image, "sh", "-c", "echo same").stdout == "same\n"


def test_signals_are_forwarded(skiff: Skiff, busybox_image: str) -> None:
    import signal
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "skiff", "run", "--rm", "--network", "none", busybox_image,
                             "sh", "-c", "trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.1; done"],
                            env=skiff.env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 7
    assert "got-term" in proc.stdout.read()


def start_background(skiff: Skiff, *args: str) -> subprocess.Popen[str]:
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "skiff", "run", "--network", "none", *args],
                            env=skiff.env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    return proc


def container_pid(skiff: Skiff) -> int:
    import json

    record = next((skiff.root / "containers").glob("*/container.json"))
    return int(json.loads(record.read_text())["State"]["Pid"])


def test_killed_by_signal_exits_128_plus_n(skiff: Skiff, busybox_image: str) -> None:
    import signal

    proc = start_background(skiff, "--rm", busybox_image, "sh", "-c", "echo ready; sleep 30")
    try:
        os.kill(container_pid(skiff), signal.SIGKILL)  # from outside, SIGKILL reaches even PID 1
        assert proc.wait(timeout=10) == 137
    finally:
        proc.kill()
        proc.wait()
    assert list((skiff.root / "containers").iterdir()) == []


def test_next_command_cleans_up_after_skiff_is_killed(skiff: Skiff, busybox_image: str) -> None:
    import signal

    before = mount_table(skiff.root.parent)
    proc = start_background(skiff, "--name", "orphan", busybox_image, "sh", "-c", "echo ready; sleep 300")
    assert mount_table(skiff.root.parent) != before  # the rootfs is mounted while it runs
    pid = container_pid(skiff)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    lines = skiff.ok("ps", "-a").splitlines()
    assert "Exited (137)" in lines[1] and lines[1].endswith("orphan")
    assert not os.path.exists(f"/proc/{pid}")
    assert mount_table(skiff.root.parent) == before
    skiff.ok("rm", "orphan")


def test_sigpipe_is_not_ignored_in_the_container(skiff: Skiff, busybox_image: str) -> None:
    """Python ignores SIGPIPE; the container must not inherit that (`yes | head` ends by the signal)."""
    out = run(skiff, busybox_image, "sh", "-c", "yes | head -n 1; grep SigIgn /proc/self/status").stdout
    assert out.splitlines()[0] == "y"
    ignored = int(out.split()[-1], 16)
    assert not ignored & (1 << (13 - 1)), f"SIGPIPE ignored: SigIgn={out.split()[-1]}"


def test_foreground_output_is_shown_and_logged(skiff: Skiff, busybox_image: str) -> None:
    """As Docker: a container that outlives its run keeps its output in the log, streams apart."""
    proc = skiff("run", "--name", "talker", "--network", "none", busybox_image,
                 "sh", "-c", "echo out; echo err >&2; printf partial")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "out\npartial", "err\n")
    logs = skiff("logs", "talker")
    assert (logs.stdout, logs.stderr) == ("out\npartial", "err\n")
    skiff.ok("rm", "talker")


def test_names_flags_apply_without_a_bridge(skiff: Skiff, busybox_image: str) -> None:
    out = run(skiff, "--add-host", "db:10.1.2.3", "--dns", "9.9.9.9", "--dns-search", "example.test",
              busybox_image, "sh", "-c", "cat /etc/hosts /etc/resolv.conf").stdout
    assert "10.1.2.3\tdb\n" in out and "nameserver 9.9.9.9\n" in out and "search example.test\n" in out
    assert out.startswith("127.0.0.1\tlocalhost\n")
