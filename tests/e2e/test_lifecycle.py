"""The container lifecycle end to end: detached containers, their monitors, logs, exec, stop/kill.

Every container here is held by a real monitor process; the tests look at the
processes, mounts and cgroups the kernel shows, not only at skiff's output.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Skiff
from tests.e2e.test_run import mount_table
from tests.network.helpers import DIRECT


def monitors(skiff: Skiff) -> list[int]:
    """Pids of the monitors (any phase) of this test's containers."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(skiff.root).encode() in cmdline and any(b"idle" in a or b"skiff.engine.monitor" in a for a in cmdline):
            found.append(int(entry))
    return found


def own_mounts(skiff: Skiff) -> list[str]:
    """This test's mounts (other tools on the host, podman say, mount and unmount meanwhile)."""
    return [m for m in mount_table(skiff.root.parent) if str(skiff.root.parent) in m]


def cgroups_of(cid: str) -> list[str]:
    parent = os.environ.get("SKIFF_CGROUP_PARENT") or "skiff"
    from tests.conftest import CGROUP_PARENT

    return [str(p) for p in Path("/sys/fs/cgroup").glob(f"*/{CGROUP_PARENT or parent}/{cid}")]


@pytest.fixture
def lc(skiff: Skiff, busybox_image: str) -> Iterator[Skiff]:
    """The CLI with busybox imported; afterwards: every container removed, no monitor, mount or cgroup left."""
    before = own_mounts(skiff)
    yield skiff
    ids = skiff("ps", "-aq", "--no-trunc").stdout.split()
    if ids:
        skiff("rm", "-f", *ids)
    deadline = time.monotonic() + 10
    while monitors(skiff) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not monitors(skiff), "monitors left running"
    assert own_mounts(skiff) == before
    for cid in ids:
        assert not cgroups_of(cid)


def detach(skiff: Skiff, *args: str) -> str:
    cid = skiff.ok("run", "-d", "--network", "none", *args).strip()
    assert len(cid) == 64 and all(c in "0123456789abcdef" for c in cid)
    return cid


def inspect(skiff: Skiff, ref: str) -> dict:
    return json.loads(skiff.ok("inspect", ref))[0]


def wait_for(predicate, timeout: float = 10.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_detached_container_outlives_skiff_logs_and_exec(lc: Skiff) -> None:
    cid = detach(lc, "--name", "web", "busybox", "sh", "-c",
                 "echo out; echo err >&2; echo hello > /tmp/mark; exec sleep 300")
    state = inspect(lc, "web")["State"]
    assert state["Status"] == "running" and state["Running"] and state["Pid"] > 0
    assert os.path.exists(f"/proc/{state['Pid']}")
    wait_for(lambda: lc.ok("logs", "web") == "out\n")
    logs = lc("logs", "web")
    assert logs.stdout == "out\n" and logs.stderr == "err\n"  # the streams are kept apart
    assert lc.ok("logs", "-t", "web").startswith(time.strftime("%Y-"))
    entries = [json.loads(line) for line in Path(inspect(lc, cid)["LogPath"]).read_text().splitlines()]
    assert {(e["stream"], e["log"]) for e in entries} == {("stdout", "out\n"), ("stderr", "err\n")}
    # exec: the same filesystem and the same processes; the exit code is passed through.
    assert lc.ok("exec", cid[:8], "cat", "/tmp/mark") == "hello\n"
    assert "sleep 300" in lc.ok("exec", "web", "ps")
    assert lc("exec", "web", "sh", "-c", "exit 7").returncode == 7
    assert lc("exec", "web", "nosuchcmd").returncode == 126  # Docker 20.10: exec of a missing command
    assert lc.ok("exec", "-e", "A=b", "-w", "/tmp", "-u", "65534", "web", "sh", "-c",
                 'echo $A $(pwd) $(id -u)') == "b /tmp 65534\n"
    assert lc.ok("top", "web").count("sleep 300") == 1
    assert "web" in lc.ok("ps") and lc.ok("ps", "-q") == cid[:12] + "\n"


def test_stop_waits_the_timeout_then_kills(lc: Skiff) -> None:
    detach(lc, "--name", "stubborn", "busybox", "sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done")
    wait_for(lambda: "ready" in lc.ok("logs", "stubborn"))
    start = time.monotonic()
    assert lc.ok("stop", "-t", "2", "stubborn") == "stubborn\n"
    took = time.monotonic() - start
    assert 2 <= took < 6
    state = inspect(lc, "stubborn")["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 137 and not state["Running"]
    assert lc.ok("wait", "stubborn") == "137\n"
    assert lc("exec", "stubborn", "true").returncode == 1


def test_stop_of_a_cooperating_container_is_quick(lc: Skiff) -> None:
    detach(lc, "--name", "polite", "busybox", "sh", "-c", "trap 'exit 3' TERM; while :; do sleep 0.1; done")
    time.sleep(0.3)
    start = time.monotonic()
    lc.ok("stop", "polite")
    assert time.monotonic() - start < 2
    assert inspect(lc, "polite")["State"]["ExitCode"] == 3


def test_restart_on_failure_twice_then_stops(lc: Skiff) -> None:
    detach(lc, "--name", "flaky", "--restart", "on-failure:2", "busybox", "sh", "-c", "echo try; exit 3")
    assert lc.ok("wait", "flaky") == "3\n"
    data = inspect(lc, "flaky")
    assert data["RestartCount"] == 2 and data["State"]["Status"] == "exited"
    assert lc.ok("logs", "flaky") == "try\ntry\ntry\n"


def test_foreground_run_with_a_restart_policy_is_restarted_and_logged(lc: Skiff) -> None:
    """As `docker run --restart`: this command returns at the first exit; the monitor restarts it."""
    proc = lc("run", "--name", "fg", "--restart", "on-failure:2", "busybox", "sh", "-c", "echo try; exit 3")
    assert proc.returncode == 3 and proc.stdout == "try\n"
    assert lc.ok("wait", "fg") == "3\n"
    wait_for(lambda: inspect(lc, "fg")["RestartCount"] == 2 and inspect(lc, "fg")["State"]["Status"] == "exited")
    assert lc.ok("logs", "fg") == "try\ntry\ntry\n"


def test_restart_always_but_not_after_stop(lc: Skiff) -> None:
    detach(lc, "--name", "again", "--restart", "always", "busybox", "sh", "-c", "sleep 0.2")
    wait_for(lambda: inspect(lc, "again")["RestartCount"] >= 2)
    lc.ok("stop", "-t", "1", "again")
    count = inspect(lc, "again")["RestartCount"]
    time.sleep(1)
    data = inspect(lc, "again")
    assert data["State"]["Status"] == "exited" and data["RestartCount"] == count


def test_create_start_kill_restart_rename_pause(lc: Skiff) -> None:
    # Names that no hex container id can start with: "c1" would also match one id in 256.
    cid = lc.ok("create", "--network", "none", "--name", "cx1", "busybox", "sh", "-c",
                "trap 'exit 5' USR1; while :; do sleep 0.1; done").strip()
    assert inspect(lc, "cx1")["State"]["Status"] == "created"
    assert lc.ok("ps", "-a", "--filter", "status=created", "-q") == cid[:12] + "\n"
    lc.ok("start", "cx1")
    pid = inspect(lc, "cx1")["State"]["Pid"]
    lc.ok("pause", "cx1")
    assert inspect(lc, "cx1")["State"]["Status"] == "paused"
    assert "State:\tD" in Path(f"/proc/{pid}/status").read_text()  # frozen (v1 freezer: D state)
    assert lc("exec", "cx1", "true").returncode != 0
    lc.ok("unpause", "cx1")
    lc.ok("rename", "cx1", "cx2")
    assert inspect(lc, "cx2")["Name"] == "/cx2" and lc("inspect", "cx1").returncode == 1
    lc.ok("restart", "-t", "0", "cx2")
    state = inspect(lc, "cx2")["State"]
    assert state["Running"] and state["Pid"] != pid
    assert lc.ok("kill", "-s", "USR1", "cx2") == "cx2\n"
    assert lc.ok("wait", "cx2") == "5\n"
    lc.ok("start", "cx2")
    lc.ok("kill", "cx2")
    assert inspect(lc, "cx2")["State"]["ExitCode"] == 137
    out = lc.ok("container", "prune", "-f")
    assert cid in out and lc.ok("ps", "-aq") == ""


def test_ps_filters_and_json(lc: Skiff) -> None:
    up = detach(lc, "--name", "up", "-l", "role=web", "busybox", "sleep", "300")
    done = detach(lc, "--name", "done", "busybox", "true")
    lc.ok("wait", "done")
    assert lc.ok("ps", "-q") == up[:12] + "\n"
    assert lc.ok("ps", "-aq", "--filter", "status=exited") == done[:12] + "\n"
    assert lc.ok("ps", "-aq", "--filter", "name=up") == up[:12] + "\n"
    assert lc.ok("ps", "-aq", "--filter", "label=role=web") == up[:12] + "\n"
    rows = [json.loads(line) for line in lc.ok("ps", "-a", "--format", "json").splitlines()]
    assert {r["Names"]: r["State"] for r in rows} == {"up": "running", "done": "exited"}


def test_inspect_shows_docker_keys(lc: Skiff) -> None:
    detach(lc, "--name", "x", "-m", "64m", "busybox", "sleep", "300")
    data = inspect(lc, "x")
    for key in ("Id", "Name", "Image", "Config", "HostConfig", "Mounts", "NetworkSettings", "RestartCount",
                "LogPath", "State"):
        assert key in data
    for key in ("Status", "Running", "Paused", "Restarting", "OOMKilled", "Dead", "Pid", "ExitCode", "Error",
                "StartedAt", "FinishedAt"):
        assert key in data["State"]
    assert data["HostConfig"]["Memory"] == 64 << 20 and data["HostConfig"]["MemorySwap"] == 128 << 20
    assert lc.ok("inspect", "-f", "{{.State.Status}}", "x") == "running\n"


def test_bad_input_one_line_and_docker_codes(lc: Skiff) -> None:
    a = detach(lc, "--name", "busy", "busybox", "sleep", "300")
    rm = lc("rm", "busy")
    assert rm.returncode == 1 and rm.stderr.strip() == (
        f"skiff: You cannot remove a running container {a}. "
        "Stop the container before attempting removal or force remove")
    for args, code, text in ((("stop", "nope"), 1, "No such container: nope"),
                             (("kill", "-s", "SIGFOO", "busy"), 1, "Invalid signal: SIGFOO"),
                             (("stop", "-t", "-3", "busy"), 125, "invalid timeout"),
                             (("logs", "nope"), 1, "No such container: nope"),
                             (("exec", "nope", "true"), 1, "No such container: nope")):
        proc = lc(*args)
        assert proc.returncode == code and text in proc.stderr and len(proc.stderr.splitlines()) == 1, proc
    other = detach(lc, "busybox", "true")
    lc.ok("wait", other)
    common = os.path.commonprefix([a, other])
    if common:
        proc = lc("inspect", common)
        assert proc.returncode == 1 and "multiple IDs found with provided prefix" in proc.stderr
    proc = lc("exec", other, "true")
    assert proc.returncode == 1 and proc.stderr.strip() == f"skiff: Container {other} is not running"
    proc = lc("run", "-d", "--network", "none", "--name", "busy", "busybox", "true")
    assert proc.returncode == 125 and "is already in use" in proc.stderr
    proc = lc("run", "-d", "--network", "none", "busybox", "nosuchcmd")
    assert proc.returncode == 127


def test_monitor_killed_container_shown_exited_and_released(lc: Skiff) -> None:
    before = own_mounts(lc)
    cid = detach(lc, "--name", "orphan", "busybox", "sleep", "300")
    pid = inspect(lc, "orphan")["State"]["Pid"]
    assert cgroups_of(cid), Path(f"/proc/{pid}/cgroup").read_text()
    assert own_mounts(lc) != before
    (monitor,) = monitors(lc)
    os.kill(monitor, signal.SIGKILL)
    wait_for(lambda: not os.path.exists(f"/proc/{monitor}"))
    state = inspect(lc, "orphan")["State"]
    assert state["Status"] == "exited" and not state["Running"] and state["ExitCode"] == 137
    wait_for(lambda: not os.path.exists(f"/proc/{pid}") or
             Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z")
    assert not cgroups_of(cid) and own_mounts(lc) == before


def test_container_killed_is_recorded_by_its_monitor(lc: Skiff) -> None:
    detach(lc, "--name", "victim", "busybox", "sleep", "300")
    os.kill(inspect(lc, "victim")["State"]["Pid"], signal.SIGKILL)
    assert lc.ok("wait", "victim") == "137\n"
    assert inspect(lc, "victim")["State"]["Error"] == ""


def test_skiff_command_killed_midway_leaves_a_consistent_state(lc: Skiff) -> None:
    import sys

    detach(lc, "--name", "s", "busybox", "sh", "-c", "trap '' TERM; while :; do sleep 1; done")
    proc = subprocess.Popen([sys.executable, "-m", "skiff", "stop", "-t", "30", "s"], env=lc.env)
    time.sleep(1)
    proc.kill()
    proc.wait()
    assert inspect(lc, "s")["State"]["Status"] == "running"  # the stop never happened
    lc.ok("stop", "-t", "0", "s")
    assert inspect(lc, "s")["State"]["Status"] == "exited"


def test_concurrent_rm_and_stop_during_exec(lc: Skiff) -> None:
    import sys

    detach(lc, "--name", "busy", "busybox", "sleep", "300")
    execs = subprocess.Popen([sys.executable, "-m", "skiff", "exec", "busy", "sleep", "30"], env=lc.env)
    time.sleep(0.5)
    cmd = [sys.executable, "-m", "skiff"]
    procs = [subprocess.Popen(cmd + ["stop", "-t", "1", "busy"], env=lc.env),
             subprocess.Popen(cmd + ["rm", "-f", "busy"], env=lc.env, stderr=subprocess.PIPE),
             subprocess.Popen(cmd + ["rm", "-f", "busy"], env=lc.env, stderr=subprocess.PIPE)]
    for p in procs:
        p.wait(timeout=30)
    execs.wait(timeout=30)
    assert lc.ok("ps", "-aq") == ""


def test_log_rotation(lc: Skiff) -> None:
    cid = detach(lc, "--log-opt", "max-size=2k", "--log-opt", "max-file=3", "busybox", "sh", "-c",
                 "i=0; while [ $i -lt 300 ]; do echo line$i; i=$((i+1)); done")
    lc.ok("wait", cid)
    log = Path(inspect(lc, cid)["LogPath"])
    sizes = [p.stat().st_size for p in log.parent.glob(log.name + "*")]
    assert len(sizes) == 3 and max(sizes) <= 2048
    lines = lc.ok("logs", cid).splitlines()
    assert lines[-1] == "line299" and lines == [f"line{i}" for i in range(300 - len(lines), 300)]
    assert lc.ok("logs", "--tail", "2", cid) == "line298\nline299\n"


def test_logs_follow_until_exit(lc: Skiff) -> None:
    cid = detach(lc, "busybox", "sh", "-c", "echo a; sleep 1; echo b")
    assert lc.ok("logs", "-f", cid, timeout=20) == "a\nb\n"


def test_init_is_pid_1_and_reaps(lc: Skiff) -> None:
    cid = detach(lc, "--init", "busybox", "sh", "-c", "sleep 300")
    ps = lc.ok("exec", cid, "ps", "-o", "pid,args")
    assert "1 /sbin/docker-init -- sh -c sleep 300" in ps
    start = time.monotonic()
    lc.ok("stop", cid)  # tini forwards SIGTERM to sh, which dies of it
    assert time.monotonic() - start < 5


def test_detached_httpd_serves_while_logged(lc: Skiff) -> None:
    cid = lc.ok("run", "-d", "--name", "httpd", "busybox", "sh", "-c",
                "mkdir /www && echo served > /www/index.html && exec httpd -f -v -p 80 -h /www").strip()
    ip = inspect(lc, cid)["NetworkSettings"]["IPAddress"]
    bridge = json.loads((lc.root / "network" / "config.json").read_text())["default_bridge"]
    assert f"dev {bridge}" in subprocess.run(["ip", "route", "get", ip], capture_output=True, text=True).stdout
    deadline = time.monotonic() + 10
    while True:
        try:
            body = DIRECT.open(f"http://{ip}/", timeout=2).read()
            break
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert body == b"served\n"
    wait_for(lambda: "response:200" in lc("logs", cid).stderr)  # httpd -v logs each request on stderr


def test_start_killed_before_its_monitor_ran_is_put_back(lc: Skiff) -> None:
    """A `skiff start` killed after preparing the bundle leaves "starting": the next command repairs it."""
    import sys

    cid = lc.ok("create", "--network", "none", "--name", "half", "busybox", "sh", "-c", "echo ran").strip()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    record_path = lc.root / "containers" / cid / "container.json"
    record = json.loads(record_path.read_text())
    record["State"].update(Status="starting", MonitorPid=gone.pid, MonitorStart=1)
    record_path.write_text(json.dumps(record))
    assert inspect(lc, "half")["State"]["Status"] == "created"
    assert json.loads(record_path.read_text())["State"]["Status"] == "created"
    proc = lc("start", "-a", "half", timeout=30)
    assert proc.returncode == 0 and proc.stdout == "ran\n"


def test_start_again_keeps_anonymous_volumes(lc: Skiff) -> None:
    cid = detach(lc, "-v", "/data", "busybox", "sh", "-c", "cat /data/mark 2>/dev/null; echo kept > /data/mark")
    lc.ok("wait", cid)
    volume = inspect(lc, cid)["Mounts"][0]["Name"]
    lc.ok("start", cid)
    lc.ok("wait", cid)
    assert inspect(lc, cid)["Mounts"][0]["Name"] == volume
    assert lc.ok("logs", cid) == "kept\n"
    assert lc.ok("volume", "ls", "-q").split() == [volume]
    lc.ok("rm", "-v", cid)
    assert lc.ok("volume", "ls", "-q") == ""
