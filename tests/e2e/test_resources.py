"""Resource limits (issue 5) end to end through ``skiff run``: real containers, the kernel's cgroups.

Each test drives the CLI as a user would and then looks at what the kernel
shows: exit statuses, the container's own view of its cgroups and rlimits, the
cgroup files on the host, and that nothing is left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import skiff.cgroups as cgroups
from tests.conftest import CGROUP_PARENT, Skiff
from tests.e2e.test_lifecycle import cgroups_of, detach, inspect, lc, wait_for  # noqa: F401 - lc is a fixture

MiB = 1 << 20


def run(skiff: Skiff, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return skiff("run", "--network", "none", *args, **kwargs)  # type: ignore[arg-type]


def container_cgroup(cid: str) -> cgroups.Cgroup:
    return cgroups.open(f"/{CGROUP_PARENT}/{cid}")


def any_cgroup_left() -> list[str]:
    """Every container cgroup under the tests' parent, in any hierarchy."""
    return [str(p) for p in Path("/sys/fs/cgroup").glob(f"*/{CGROUP_PARENT}/*") if p.is_dir()]


def test_memory_limit_oom_kills_with_137_and_records_it(lc: Skiff) -> None:
    proc = run(lc, "--name", "hog", "-m", "32m", "busybox", "sh", "-c",
               'x=$(head -c 200m /dev/zero | tr "\\0" x); echo survived')
    assert proc.returncode == 137, proc.stderr
    assert "survived" not in proc.stdout
    state = inspect(lc, "hog")["State"]
    assert state["OOMKilled"] is True and state["ExitCode"] == 137 and state["Status"] == "exited"
    (row,) = [line for line in lc.ok("ps", "-a").splitlines() if line.endswith(" hog")]
    assert "Exited (137) (OOMKilled)" in row
    assert not cgroups_of(inspect(lc, "hog")["Id"])


def test_a_container_within_its_memory_limit_is_not_marked_oom(lc: Skiff) -> None:
    assert run(lc, "--name", "fine", "-m", "32m", "busybox", "sh", "-c", "head -c 4m /dev/zero | wc -c").stdout \
        == f"{4 * MiB}\n"
    assert inspect(lc, "fine")["State"]["OOMKilled"] is False


def test_detached_oom_is_recorded_by_the_monitor(lc: Skiff) -> None:
    cid = detach(lc, "-m", "32m", "busybox", "sh", "-c", "sleep 0.2; tail /dev/zero")
    wait_for(lambda: inspect(lc, cid)["State"]["Status"] == "exited", timeout=30)
    state = inspect(lc, cid)["State"]
    assert state["ExitCode"] == 137 and state["OOMKilled"] is True


def test_pids_limit_makes_fork_fail_past_it(lc: Skiff) -> None:
    proc = run(lc, "--rm", "--pids-limit", "5", "busybox", "sh", "-c",
               "for i in 1 2 3 4 5 6 7 8; do sleep 5 & done; echo all-forked; kill $(jobs -p) 2>/dev/null")
    assert "all-forked" not in proc.stdout
    assert "can't fork" in proc.stderr, proc.stderr
    ok = run(lc, "--rm", "--pids-limit", "20", "busybox", "sh", "-c", "for i in 1 2 3; do sleep 0.1 & done; wait; "
             "echo all-forked")
    assert ok.stdout == "all-forked\n", ok.stderr


def test_half_a_cpu_gets_40_to_60_percent_of_one(lc: Skiff) -> None:
    cid = detach(lc, "--cpus", "0.5", "busybox", "sh", "-c", "while :; do :; done")
    cgroup = container_cgroup(cid)
    time.sleep(0.3)  # past start-up: measure the steady state
    first = cgroup.stats()
    time.sleep(3)
    second = cgroup.stats()
    share = (second.cpu_usage_ns - first.cpu_usage_ns) / (second.taken_ns - first.taken_ns)
    print(f"--cpus 0.5: busy loop got {share:.3f} of one CPU over 3 s")
    assert 0.40 <= share <= 0.60, share
    lc.ok("rm", "-f", cid)


def test_cpuset_pins_the_container(lc: Skiff) -> None:
    out = run(lc, "--rm", "--cpuset-cpus", "0", "busybox", "sh", "-c",
              "grep Cpus_allowed_list /proc/1/status; sh -c 'grep Cpus_allowed_list /proc/self/status'").stdout
    assert out.split() == ["Cpus_allowed_list:", "0", "Cpus_allowed_list:", "0"], out


def test_the_container_sees_itself_at_the_root_read_only(lc: Skiff) -> None:
    # In a cgroup namespace (Docker 20.10's default on cgroup v2 only: on v1 it is the host's,
    # see test_run_security_flags.py for what a container sees then).
    out = run(lc, "--rm", "--cgroupns", "private", "busybox", "sh", "-c",
              "cat /proc/self/cgroup; echo ---; touch /sys/fs/cgroup/x 2>&1; mkdir /sys/fs/cgroup/memory/y 2>&1; "
              "echo ---; grep ' /sys/fs/cgroup/' /proc/self/mountinfo").stdout
    own, errors, mounts = out.split("---\n")
    lines = own.split()
    assert lines and all(line.endswith(":/") for line in lines), own
    # the hierarchy is read-only; the tmpfs holding the mount points is not (runc 1.1 leaves it rw too)
    assert errors.count("Read-only file system") == 1 and "/sys/fs/cgroup/memory/y" in errors, errors
    assert mounts and all(" ro," in line for line in mounts.splitlines()), mounts


def test_limits_are_in_the_bundle_and_in_inspect(lc: Skiff) -> None:
    cid = detach(lc, "-m", "64m", "--memory-reservation", "32m", "--cpus", "1.5", "--cpu-shares", "512",
                 "--cpuset-cpus", "0", "--cpuset-mems", "0", "--pids-limit", "50", "--ulimit", "nofile=512:1024",
                 "busybox", "sleep", "300")
    config = json.loads((lc.root / "containers" / cid / "bundle" / "config.json").read_text())
    resources = config["linux"]["resources"]
    assert resources["memory"] == {"limit": 64 * MiB, "swap": 128 * MiB, "reservation": 32 * MiB}
    assert resources["cpu"] == {"shares": 512, "quota": 150000, "period": 100000, "cpus": "0", "mems": "0"}
    assert resources["pids"] == {"limit": 50}
    assert config["linux"]["cgroupsPath"] == f"/{CGROUP_PARENT}/{cid}"
    assert {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024} in config["process"]["rlimits"]
    host_config = inspect(lc, cid)["HostConfig"]
    # Docker's flat fields (skiff/engine/documents.py derives them from the record's OCI resources)
    assert (host_config["Memory"], host_config["MemorySwap"], host_config["MemoryReservation"]) == \
        (64 * MiB, 128 * MiB, 32 * MiB)
    assert (host_config["NanoCpus"], host_config["CpuQuota"], host_config["CpuShares"]) == (1_500_000_000, 0, 512)
    assert (host_config["CpusetCpus"], host_config["CpusetMems"], host_config["PidsLimit"]) == ("0", "0", 50)
    assert host_config["Ulimits"] == [{"Name": "nofile", "Hard": 1024, "Soft": 512}]
    # What the runtime core wrote is what the bundle says (v1: memory and cpu hierarchies).
    cgroup = container_cgroup(cid)
    assert cgroup.stats().memory_limit == 64 * MiB and cgroup.stats().pids_limit == 50
    lc.ok("rm", "-f", cid)


def test_ulimit_is_seen_inside(lc: Skiff) -> None:
    out = run(lc, "--rm", "--ulimit", "nofile=512:1024", "busybox", "sh", "-c", "ulimit -n; ulimit -Hn").stdout
    assert out == "512\n1024\n"


def test_raising_a_hard_limit_is_one_clear_line(lc: Skiff) -> None:
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    proc = run(lc, "--ulimit", f"nofile=512:{hard * 4}", "busybox", "true")
    assert proc.returncode == 125
    assert proc.stderr.count("\n") == 1 and "--ulimit nofile" in proc.stderr and str(hard) in proc.stderr
    assert lc("ps", "-aq").stdout == ""


@pytest.mark.parametrize("flags, message", [
    (["--memory", "10x"], 'invalid argument "10x" for "-m, --memory" flag'),
    (["--memory", "-5"], 'invalid argument "-5" for "-m, --memory" flag'),
    (["-m", "1k"], "Minimum memory limit allowed is 6MB"),
    (["--cpus", "0"], "Range of CPUs is from 0.01"),
    (["--cpus", str(os.cpu_count() + 1)], f"as there are only {os.cpu_count()} CPUs available"),
    (["--cpuset-cpus", str(os.cpu_count() + 7)], "Requested CPUs are not available"),
    (["--pids-limit", "-5"], 'invalid argument "-5" for "--pids-limit" flag'),
    (["--cpu-shares", "-1"], 'invalid argument "-1" for "-c, --cpu-shares" flag'),
    (["--memory-swap", "16m", "-m", "32m"], "Minimum memoryswap limit should be larger than memory limit"),
    (["--blkio-weight", "5"], "Range of blkio weight is from 10 to 1000"),
    (["--ulimit", "nofile=2048:1024"], "ulimit soft limit must be less than or equal to hard limit: 2048 > 1024"),
])
@pytest.mark.parametrize("detached", [False, True])
def test_bad_input_is_one_line_exit_125_nothing_created(lc: Skiff, flags: list[str], message: str,
                                                        detached: bool) -> None:
    mounts_before = Path("/proc/self/mountinfo").read_text().count(str(lc.root))
    proc = run(lc, *(["-d"] if detached else []), *flags, "busybox", "true")
    assert proc.returncode == 125, proc
    assert proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr
    assert proc.stdout == ""
    assert lc("ps", "-aq").stdout == ""
    assert not any_cgroup_left()
    assert Path("/proc/self/mountinfo").read_text().count(str(lc.root)) == mounts_before


def test_a_killed_skiff_leaves_no_cgroup_after_the_next_command(lc: Skiff) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "skiff", "run", "--name", "orphan", "--network", "none",
                             "-m", "64m", "busybox", "sleep", "300"], env=lc.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: lc("inspect", "orphan").returncode == 0 and inspect(lc, "orphan")["State"]["Running"])
        cid = inspect(lc, "orphan")["Id"]
        assert cgroups_of(cid)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert cgroups_of(cid), "the cgroup outlives the killed skiff until the next command"
    lc.ok("ps", "-a")
    assert not cgroups_of(cid)
    assert inspect(lc, "orphan")["State"]["ExitCode"] == 137


def test_a_cgroup_whose_runtime_state_was_lost_is_removed_with_its_processes(lc: Skiff) -> None:
    """A skiff killed between making the cgroup and recording the container: only the cgroup knows."""
    proc = subprocess.Popen([sys.executable, "-m", "skiff", "run", "--name", "lost", "--network", "none",
                             "--pids-limit", "10", "busybox", "sleep", "300"], env=lc.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: lc("inspect", "lost").returncode == 0 and inspect(lc, "lost")["State"]["Running"])
        cid = inspect(lc, "lost")["Id"]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    pids = container_cgroup(cid).pids()
    assert pids
    subprocess.run(["rm", "-rf", str(lc.run_root / "runtime" / cid)], check=True)  # hidden from the runtime
    lc.ok("ps", "-a")
    assert not cgroups_of(cid)
    assert not [pid for pid in pids if alive(pid)]


def alive(pid: int) -> bool:
    """Running (a zombie is dead: it waits only for a parent that is not ours to reap it)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def test_cgroups_of_other_roots_under_the_same_parent_are_left_alone(lc: Skiff) -> None:
    foreign = cgroups.open(f"/{CGROUP_PARENT}/{'f' * 64}")
    foreign.create({"pids": {"limit": 5}})
    try:
        lc.ok("ps", "-a")
        assert foreign.exists()
    finally:
        foreign.destroy()
    assert not foreign.exists()


def test_no_cgroup_of_skiff_remains(lc: Skiff) -> None:
    run(lc, "--rm", "-m", "32m", "--pids-limit", "10", "busybox", "true")
    assert not any_cgroup_left()
