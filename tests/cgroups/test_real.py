"""Real cgroups on this host (v1 or hybrid here; v2 where its controllers are available).

Each test starts a real child process, puts it in its cgroup before it does its
work, and checks what the kernel enforces.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import skiff.cgroups as cgroups
from skiff.cgroups.resources import DEFAULT_DEVICE_RULES
from skiff.engine.resources import resources_from_flags
from skiff.engine.stats import cpu_percent
from skiff.errors import CgroupError

from .conftest import RealCgroups

MiB = 1 << 20


def test_this_host_is_detected(real: RealCgroups) -> None:
    setup = cgroups.detect()
    with open("/proc/self/mountinfo") as f:
        has_v1_memory = any(" - cgroup " in line and "memory" in line.split()[-1] for line in f)
    assert setup.mode in ("v1", "hybrid", "v2")
    assert (setup.v1_mount("memory") is not None) == has_v1_memory


def test_memory_limit_oom_kills_and_is_recorded(real: RealCgroups) -> None:
    cg = real.open()
    cg.create({"memory": {"limit": 32 * MiB, "swap": 32 * MiB}})
    proc = real.child("data = b'x' * (100 << 20)\nprint('survived', len(data))")
    cg.add(proc.pid)
    assert cg.oom_killed() is False
    real.release(proc)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, out
    assert b"survived" not in out
    assert cg.oom_killed() is True


def test_pids_limit_makes_fork_fail_past_it(real: RealCgroups) -> None:
    cg = real.open()
    cg.create({"pids": {"limit": 5}})
    proc = real.child(
        "import os, time\n"
        "kids, failed = [], 0\n"
        "for _ in range(10):\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except BlockingIOError:\n"
        "        failed += 1\n"
        "        continue\n"
        "    if pid == 0:\n"
        "        time.sleep(5)\n"
        "        os._exit(0)\n"
        "    kids.append(pid)\n"
        "print(len(kids), failed, flush=True)\n"
        "for pid in kids:\n"
        "    os.kill(pid, 9)\n"
        "    os.waitpid(pid, 0)\n")
    cg.add(proc.pid)
    real.release(proc)
    out, err = proc.communicate(timeout=30)
    assert out.split() == [b"4", b"6"], err   # the parent is one of the 5


def test_half_a_cpu_gets_40_to_60_percent(real: RealCgroups) -> None:
    cg = real.open()
    cg.create(resources_from_flags(cpus="0.5"))
    proc = real.child("import time\nend = time.monotonic() + 4.5\nwhile time.monotonic() < end:\n    pass\n")
    cg.add(proc.pid)
    real.release(proc)
    time.sleep(0.5)
    first = cg.stats()
    time.sleep(3)
    second = cg.stats()
    share = cpu_percent(first, second)
    print(f"cpu share under --cpus 0.5: {share:.1f}%")
    assert 40 <= share <= 60, f"a busy loop limited to 0.5 CPU used {share:.1f}% of one CPU"


def test_cpuset_pins_to_the_chosen_cpu(real: RealCgroups) -> None:
    cg = real.open()
    cg.create({"cpu": {"cpus": "0", "mems": "0"}})
    proc = real.child("import os\nprint(sorted(os.sched_getaffinity(0)))")
    cg.add(proc.pid)
    status = Path(f"/proc/{proc.pid}/status").read_text()
    assert "Cpus_allowed_list:\t0\n" in status
    real.release(proc)
    out, _ = proc.communicate(timeout=30)
    assert out.strip() == b"[0]"


def test_stats_are_sane(real: RealCgroups) -> None:
    cg = real.open()
    cg.create({"memory": {"limit": 64 * MiB}, "pids": {"limit": 20}})
    proc = real.child("import sys\ndata = b'x' * (20 << 20)\nprint('ready', flush=True)\nsys.stdout.close()\n"
                      "import time\ntime.sleep(30)\n")
    cg.add(proc.pid)
    real.release(proc)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    stats = cg.stats()
    assert 20 * MiB <= stats.memory_usage <= 64 * MiB
    assert stats.memory_limit == 64 * MiB
    assert stats.pids_current == 1 and stats.pids_limit == 20
    assert stats.cpu_usage_ns > 0
    assert cg.pids() == [proc.pid]


def test_the_process_is_in_every_hierarchy(real: RealCgroups) -> None:
    cg = real.open("joined")
    cg.create({})
    proc = real.child("")
    cg.add(proc.pid)
    lines = Path(f"/proc/{proc.pid}/cgroup").read_text().splitlines()
    assert lines and all(line.endswith(f"/{real.parent}/joined") for line in lines), lines


def test_default_device_rules_deny_other_devices(real: RealCgroups, tmp_path: Path) -> None:
    mem_node = tmp_path / "mem"
    os.mknod(mem_node, 0o600 | 0o020000, os.makedev(1, 1))   # a char device like /dev/mem
    cg = real.open()
    cg.create({"devices": DEFAULT_DEVICE_RULES})
    proc = real.child(
        "import os\n"
        f"os.close(os.open('/dev/null', os.O_RDWR))\n"
        "try:\n"
        f"    os.close(os.open({str(mem_node)!r}, os.O_RDONLY))\n"
        "    print('opened')\n"
        "except PermissionError:\n"
        "    print('denied')\n")
    cg.add(proc.pid)
    real.release(proc)
    out, err = proc.communicate(timeout=30)
    assert out.strip() == b"denied", err


def test_freeze_stops_the_processes_and_thaw_resumes_them(real: RealCgroups) -> None:
    cg = real.open()
    cg.create({})
    proc = real.child("while True:\n    pass\n")
    cg.add(proc.pid)
    real.release(proc)
    time.sleep(0.1)
    cg.freeze()
    frozen_at = cg.stats().cpu_usage_ns
    time.sleep(0.3)
    assert cg.stats().cpu_usage_ns - frozen_at < 10_000_000
    cg.thaw()
    time.sleep(0.3)
    assert cg.stats().cpu_usage_ns - frozen_at > 100_000_000


def test_destroy_waits_for_the_cgroup_to_empty(real: RealCgroups) -> None:
    cg = real.open()
    cg.create({})
    proc = real.child("import time\ntime.sleep(30)\n")
    cg.add(proc.pid)
    with pytest.raises(CgroupError,
                       match=rf"cannot remove cgroup .*: Device or resource busy \(processes still inside: {proc.pid}\)"):
        cg.destroy(timeout=0.05)
    proc.kill()
    proc.wait()
    cg.destroy()
    assert not cg.exists()
    cg.destroy()


def test_cleanup_stale_kills_and_removes_dead_containers_only(real: RealCgroups) -> None:
    alive, dead = real.open("alive"), real.open("dead")
    alive.create({})
    dead.create({"pids": {"limit": 10}})
    leftover = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    real.children.append(leftover)
    dead.add(leftover.pid)
    assert cgroups.cleanup_stale({"alive"}, parent=real.parent) == ["dead"]
    assert leftover.wait(timeout=10) == -signal.SIGKILL
    assert not dead.exists()
    assert alive.exists()


def test_invalid_limits_create_nothing(real: RealCgroups) -> None:
    cg = real.open()
    with pytest.raises(CgroupError, match=r"cannot write '0-4095' to /sys/fs/cgroup/.*cpuset.cpus: "):
        cg.create({"cpu": {"cpus": "0-4095"}})
    assert not cg.exists()


def test_update_raises_and_lowers_memory_in_a_valid_order(real: RealCgroups) -> None:
    if cgroups.detect().mode == "v2":
        pytest.skip("the memsw ordering is v1's")
    cg = real.open()
    cg.create({"memory": {"limit": 32 * MiB, "swap": 32 * MiB}})
    memory = Path(cgroups.detect().v1_mount("memory") or "") / real.parent / cg.path.split("/")[-1]
    cg.update({"memory": {"limit": 128 * MiB, "swap": 128 * MiB}})   # memsw must grow first
    assert int((memory / "memory.limit_in_bytes").read_text()) == 128 * MiB
    assert int((memory / "memory.memsw.limit_in_bytes").read_text()) == 128 * MiB
    cg.update({"memory": {"limit": 16 * MiB, "swap": 16 * MiB}})     # the limit must shrink first
    assert int((memory / "memory.limit_in_bytes").read_text()) == 16 * MiB
    assert int((memory / "memory.memsw.limit_in_bytes").read_text()) == 16 * MiB
    cg.update({"cpu": {"shares": 512, "quota": 20000, "period": 100000}, "pids": {"limit": -1}})
    cpu = Path(cgroups.detect().v1_mount("cpu") or "") / cg.path
    assert (cpu / "cpu.shares").read_text() == "512\n"
    assert (cpu / "cpu.cfs_quota_us").read_text() == "20000\n"


def test_blkio_weight_without_kernel_support_is_a_clear_error(real: RealCgroups) -> None:
    blkio = cgroups.detect().v1_mount("blkio")
    if blkio is None or os.path.exists(os.path.join(blkio, "blkio.weight")):
        pytest.skip("this host supports blkio weights")
    cg = real.open()
    with pytest.raises(CgroupError, match="--blkio-weight is not supported on this host"):
        cg.create({"blockIO": {"weight": 500}})
    assert not cg.exists()
