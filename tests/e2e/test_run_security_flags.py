"""Docker's run flags for security and namespaces, on real containers.

--cap-add/--cap-drop (read back from CapEff in /proc/self/status), --privileged
(host devices, writable /sys, no seccomp), --security-opt apparmor=/label=,
--userns, --pid, --ipc, --uts, --cgroupns (compared through the /proc/self/ns links),
joining a running container's namespaces, and what start and restart replay.
"""

from __future__ import annotations

import os
import signal
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Skiff
from tests.e2e.test_lifecycle import detach, inspect, lc, wait_for  # noqa: F401 - lc is a fixture

DEFAULT_CAPS = 0xA80425FB  # Docker 20.10's default set (moby oci/caps/defaults.go)
CAP_NET_ADMIN, CAP_CHOWN, CAP_MKNOD, CAP_SYS_ADMIN = 12, 0, 27, 21
NS = "for n in pid ipc uts cgroup; do readlink /proc/self/ns/$n; done"


def run(skiff: Skiff, *args: str) -> str:
    return skiff.ok("run", "--rm", "--network", "none", *args)


def cap_eff(skiff: Skiff, *flags: str) -> int:
    out = run(skiff, *flags, "busybox", "grep", "CapEff", "/proc/self/status")
    return int(out.split()[1], 16)


def namespaces(text: str) -> dict[str, str]:
    """{"pid": "pid:[4026531836]", ...} from the output of NS."""
    return {line.partition(":")[0]: line for line in text.split()}


def host_namespaces() -> dict[str, str]:
    return {kind: os.readlink(f"/proc/self/ns/{kind}") for kind in ("pid", "ipc", "uts", "cgroup")}


def refused(skiff: Skiff, *args: str) -> str:
    """A run that must fail as Docker's does: exit 125, one line, no container left."""
    before = skiff.ok("ps", "-aq")
    proc = skiff("run", "--rm", "--network", "none", *args)
    assert proc.returncode == 125, (proc.stdout, proc.stderr)
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert skiff.ok("ps", "-aq") == before
    return proc.stderr


def own_bounding_set() -> int:
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return int(line.split()[1], 16) & ((1 << (last + 1)) - 1)
    raise AssertionError("no CapBnd")


# --- capabilities -----------------------------------------------------------------


def test_cap_add_and_cap_drop_change_the_default_set(lc: Skiff) -> None:
    assert cap_eff(lc) == DEFAULT_CAPS
    assert cap_eff(lc, "--cap-drop", "ALL", "--cap-add", "net_admin") == 1 << CAP_NET_ADMIN
    assert cap_eff(lc, "--cap-add", "CAP_SYS_ADMIN", "--cap-drop", "Chown") == \
        (DEFAULT_CAPS | 1 << CAP_SYS_ADMIN) & ~(1 << CAP_CHOWN)
    # Docker's daemon drops first, then adds: a capability both added and dropped is kept.
    assert cap_eff(lc, "--cap-add", "sys_admin", "--cap-drop", "sys_admin") == DEFAULT_CAPS | 1 << CAP_SYS_ADMIN
    cid = lc.ok("create", "--cap-add", "net_admin", "--cap-add", "CAP_NET_ADMIN", "--cap-add", "all",
                "--cap-drop", "mknod", "busybox").strip()
    host_config = inspect(lc, cid)["HostConfig"]
    assert host_config["CapAdd"] == ["ALL", "CAP_NET_ADMIN"] and host_config["CapDrop"] == ["CAP_MKNOD"]
    assert inspect(lc, lc.ok("create", "busybox").strip())["HostConfig"]["CapAdd"] is None


def test_mknod_follows_cap_mknod(lc: Skiff) -> None:
    script = "mknod /tmp/null c 1 3 && echo made"
    assert run(lc, "busybox", "sh", "-c", script).strip() == "made"
    proc = lc("run", "--rm", "--network", "none", "--cap-drop", "MKNOD", "busybox", "sh", "-c", script)
    assert proc.returncode == 1 and "Operation not permitted" in proc.stderr


def test_cap_add_all_and_privileged_give_every_capability_skiff_holds(lc: Skiff) -> None:
    everything = own_bounding_set()
    assert cap_eff(lc, "--cap-add", "ALL") == everything
    assert cap_eff(lc, "--cap-add", "all", "--cap-drop", "chown") == everything & ~(1 << CAP_CHOWN)
    assert cap_eff(lc, "--privileged", "--cap-drop", "ALL") == everything


def test_seccomp_profile_follows_the_added_capabilities(lc: Skiff) -> None:
    """Docker's default profile allows mount(2) only to a container that has CAP_SYS_ADMIN."""
    script = "mount -t tmpfs none /tmp && echo mounted"
    assert run(lc, "--cap-add", "SYS_ADMIN", "busybox", "sh", "-c", script).strip() == "mounted"
    out = run(lc, "--cap-add", "SYS_ADMIN", "busybox", "grep", "^Seccomp:", "/proc/self/status")
    assert out.split()[1] == "2"  # still filtered: the profile grew, it did not go
    proc = lc("run", "--rm", "--network", "none", "busybox", "sh", "-c", script)
    assert proc.returncode != 0


def test_unknown_capability_is_refused_as_docker_refuses_it(lc: Skiff) -> None:
    assert 'invalid CapAdd: unknown capability: "CAP_FOO"' in refused(lc, "--cap-add", "foo", "busybox", "true")
    assert 'invalid CapDrop: unknown capability: "CAP_BAR"' in refused(lc, "--cap-drop", "CAP_bar", "busybox", "true")


# --- --privileged --------------------------------------------------------------------


def host_block_device() -> str:
    for entry in sorted(os.scandir("/dev"), key=lambda e: e.name):
        if stat.S_ISBLK(entry.stat(follow_symlinks=False).st_mode):
            return entry.path
    pytest.skip("the host has no block device in /dev")


def test_privileged_gets_host_devices_writable_sys_and_no_seccomp(lc: Skiff) -> None:
    device = host_block_device()
    script = (f"ls -l {device}; dd if={device} of=/dev/null bs=512 count=0 && echo opened; "
              "grep -E ' /sys (sysfs|cgroup) ' /proc/mounts; grep -c ' /proc/kcore ' /proc/mounts; "
              "grep ^Seccomp: /proc/self/status; ls /proc/self/fd | tr '\\n' ' '")
    out = run(lc, "--privileged", "busybox", "sh", "-c", script)
    assert out.startswith("b") and "opened" in out, out  # the node, and the device cgroup lets it open
    assert "sysfs /sys sysfs rw," in out, out
    assert "\n0\n" in out, out  # /proc/kcore is not masked
    assert "Seccomp:\t0" in out, out
    assert out.strip().splitlines()[-1].split() == ["0", "1", "2", "3"], out  # no fd of the host
    cid = lc.ok("create", "--privileged", "busybox").strip()
    host_config = inspect(lc, cid)["HostConfig"]
    assert host_config["Privileged"] is True and host_config["SecurityOpt"] == ["label=disable"]
    # Without the flag: no node of the host, /sys read-only.
    out = run(lc, "busybox", "sh", "-c", f"ls {device} 2>&1; grep ' /sys sysfs ' /proc/mounts")
    assert "No such file" in out and "sysfs /sys sysfs ro," in out, out




# --- --security-opt and --userns -------------------------------------------------------


def test_apparmor_and_label_are_refused_where_the_host_has_neither(lc: Skiff) -> None:
    if Path("/sys/module/apparmor/parameters/enabled").exists() or Path("/sys/fs/selinux/enforce").exists():
        pytest.skip("this host has AppArmor or SELinux")
    err = refused(lc, "--security-opt", "apparmor=docker-default", "busybox", "true")
    assert 'invalid --security-opt: "apparmor=docker-default": AppArmor is not enabled on this host' in err
    err = refused(lc, "--security-opt", "label=type:svirt_t", "busybox", "true")
    assert 'invalid --security-opt: "label=type:svirt_t": SELinux is not enabled on this host' in err
    assert run(lc, "--security-opt", "apparmor=unconfined", "--security-opt", "label:disable",
               "busybox", "echo", "ok") == "ok\n"
    cid = lc.ok("create", "--security-opt", "label=disable", "--security-opt", "no-new-privileges",
                "--pid", "host", "busybox").strip()
    assert inspect(lc, cid)["HostConfig"]["SecurityOpt"] == ["label=disable", "no-new-privileges"]


def test_userns_host_is_the_only_mode(lc: Skiff) -> None:
    assert run(lc, "--userns", "host", "busybox", "echo", "ok") == "ok\n"
    assert "--userns: invalid USER mode" in refused(lc, "--userns", "private", "busybox", "true")
    cid = lc.ok("create", "--userns", "host", "busybox").strip()
    assert inspect(lc, cid)["HostConfig"]["UsernsMode"] == "host"


# --- namespaces ------------------------------------------------------------------------


def test_host_namespaces(lc: Skiff) -> None:
    host = host_namespaces()
    private = namespaces(run(lc, "--cgroupns", "private", "busybox", "sh", "-c", NS))
    assert all(private[k] != host[k] for k in host), private
    shared = namespaces(run(lc, "--pid", "host", "--ipc", "host", "--uts", "host", "--cgroupns", "host",
                            "busybox", "sh", "-c", NS))
    assert shared == host
    out = run(lc, "--pid", "host", "--uts", "host", "busybox", "sh", "-c", f"hostname; test -d /proc/{os.getpid()} "
              "&& echo sees-host")
    assert out == f"{os.uname().nodename}\nsees-host\n"
    cid = lc.ok("create", "--pid", "host", "--ipc", "host", "--uts", "host", "--cgroupns", "private",
                "busybox").strip()
    host_config = inspect(lc, cid)["HostConfig"]
    assert [host_config[k] for k in ("PidMode", "IpcMode", "UTSMode", "CgroupnsMode")] == \
        ["host", "host", "host", "private"]


def test_defaults_are_docker_20_10s(lc: Skiff) -> None:
    cgroup_v2 = Path("/sys/fs/cgroup/cgroup.controllers").exists()
    host_config = inspect(lc, lc.ok("create", "busybox").strip())["HostConfig"]
    assert [host_config[k] for k in ("PidMode", "IpcMode", "UTSMode", "UsernsMode", "CgroupnsMode", "Privileged")] \
        == ["", "private", "", "", "private" if cgroup_v2 else "host", False]
    mine = namespaces(run(lc, "busybox", "sh", "-c", NS))
    assert (mine["cgroup"] == host_namespaces()["cgroup"]) is not cgroup_v2


def test_host_cgroupns_shows_only_the_containers_own_cgroup(lc: Skiff) -> None:
    """Without a cgroup namespace a fresh mount would show the host's whole tree: only ours is bound."""
    out = run(lc, "--cgroupns", "host", "busybox", "sh", "-c",
              "cat /sys/fs/cgroup/pids/cgroup.procs 2>/dev/null || cat /sys/fs/cgroup/cgroup.procs; "
              "grep ' /sys/fs/cgroup/' /proc/mounts | grep -vc ' ro,' || true")
    lines = out.split()
    assert len(lines) <= 4 and lines[-1] == "0", out  # sh, cat (and grep): no process of the host; every hierarchy ro


def test_ipc_none_has_no_shm_and_bad_modes_are_refused(lc: Skiff) -> None:
    assert run(lc, "--ipc", "none", "busybox", "sh", "-c", "test -e /dev/shm || echo none") == "none\n"
    assert "--pid: invalid PID mode" in refused(lc, "--pid", "container:", "busybox", "true")
    assert "Invalid IPC mode: bogus" in refused(lc, "--ipc", "bogus", "busybox", "true")
    assert "--uts: invalid UTS mode" in refused(lc, "--uts", "container:x", "busybox", "true")
    assert "--cgroupns: invalid CGROUP mode" in refused(lc, "--cgroupns", "yes", "busybox", "true")
    assert "conflicting options: hostname and the UTS mode" in refused(lc, "--uts", "host", "-h", "x", "busybox", "true")


@pytest.fixture
def donor(lc: Skiff) -> Iterator[tuple[str, dict[str, str]]]:
    """A running, shareable container with a file in its /dev/shm; its id and namespaces."""
    cid = detach(lc, "--name", "donor", "--ipc", "shareable", "busybox", "sh", "-c",
                 "echo shared > /dev/shm/note; exec sleep 300")
    wait_for(lambda: lc("exec", "donor", "test", "-e", "/dev/shm/note").returncode == 0)
    yield cid, namespaces(lc.ok("exec", "donor", "sh", "-c", NS))


def test_join_pid_and_ipc_of_a_running_container(lc: Skiff, donor: tuple[str, dict[str, str]]) -> None:
    cid, theirs = donor
    out = run(lc, "--pid", "container:donor", "--ipc", "container:donor", "busybox", "sh", "-c",
              f"{NS}; cat /dev/shm/note; ps -o comm")
    mine = namespaces(" ".join(out.split()[:4]))
    assert mine["pid"] == theirs["pid"] and mine["ipc"] == theirs["ipc"] and mine["uts"] != theirs["uts"]
    assert "shared" in out and "sleep" in out, out
    joined = lc.ok("create", "--pid", "container:donor", "--ipc", "container:donor", "busybox").strip()
    host_config = inspect(lc, joined)["HostConfig"]
    assert host_config["PidMode"] == host_config["IpcMode"] == f"container:{cid}"


def test_joining_needs_a_running_shareable_container(lc: Skiff, donor: tuple[str, dict[str, str]]) -> None:
    assert "No such container: gone" in refused(lc, "--pid", "container:gone", "busybox", "true")
    private = detach(lc, "--name", "private", "busybox", "sleep", "300")
    err = refused(lc, "--ipc", "container:private", "busybox", "true")
    assert f"can't join IPC of container {private}: non-shareable IPC" in err
    stopped = lc.ok("create", "--name", "stopped", "busybox").strip()
    assert f"container {stopped} is not running" in refused(lc, "--pid", "container:stopped", "busybox", "true")
    err = refused(lc, "--ipc", "container:stopped", "busybox", "true")
    assert f"can't join IPC of container {stopped}: container {stopped} is not running" in err


def test_start_rejoins_the_same_container_by_id(lc: Skiff, donor: tuple[str, dict[str, str]]) -> None:
    cid, theirs = donor
    joiner = lc.ok("create", "--name", "joiner", "--pid", "container:donor", "--cap-drop", "ALL",
                   "busybox", "sleep", "300").strip()
    lc.ok("rename", "donor", "old-donor")
    detach(lc, "--name", "donor", "busybox", "sleep", "300")  # the name now means another container
    lc.ok("start", joiner)
    assert namespaces(lc.ok("exec", joiner, "sh", "-c", NS))["pid"] == theirs["pid"]
    assert "CapEff:\t0000000000000000" in lc.ok("exec", joiner, "grep", "CapEff", "/proc/self/status")
    lc.ok("stop", "-t", "1", joiner)
    lc.ok("stop", "-t", "1", cid)
    proc = lc("start", joiner)
    assert proc.returncode == 1 and f"container {cid} is not running" in proc.stderr, proc.stderr


def test_restart_policy_replays_flags_and_joins_the_current_init(lc: Skiff,
                                                                 donor: tuple[str, dict[str, str]]) -> None:
    cid, theirs = donor
    joiner = detach(lc, "--restart", "always", "--pid", "container:donor", "--cap-drop", "ALL",
                    "--cap-add", "KILL", "busybox", "sleep", "300")
    first = inspect(lc, joiner)["State"]["Pid"]
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: inspect(lc, joiner)["State"]["Pid"] not in (0, first))
    assert namespaces(lc.ok("exec", joiner, "sh", "-c", NS))["pid"] == theirs["pid"]
    assert "CapEff:\t0000000000000020" in lc.ok("exec", joiner, "grep", "CapEff", "/proc/self/status")


def test_shareable_shm_is_unmounted_when_the_donor_stops(lc: Skiff, donor: tuple[str, dict[str, str]]) -> None:
    cid, _ = donor
    shm = str(lc.root / "containers" / cid / "shm")
    assert shm in Path("/proc/self/mountinfo").read_text()
    lc.ok("stop", "-t", "1", cid)
    assert shm not in Path("/proc/self/mountinfo").read_text()
