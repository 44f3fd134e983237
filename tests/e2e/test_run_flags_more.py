"""Docker's smaller run flags (issue 13) end to end: real containers, what the kernel shows inside.

--sysctl, --group-add, --shm-size, --oom-score-adj, --memory-swappiness, --oom-kill-disable,
--mac-address, --domainname, --expose (with -P) and --cidfile: each is read back from inside
the container (/proc/sys, id -G, df, /proc/self, /sys/class/net, the cgroup files), from the
record under Docker's key names, and again after ``start`` and a policy restart, which rebuild
the spec from the stored options. Refusals are Docker 20.10's messages with exit 125 and
leave no container. Bridge tests use the fixtures' private network names.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import skiff.cgroups as cgroups
from tests.conftest import Skiff
from tests.e2e.test_lifecycle import inspect, lc, wait_for  # noqa: F401 - lc is a fixture

MiB = 1 << 20


def run(skiff: Skiff, *args: str, network: str = "none") -> str:
    return skiff.ok("run", "--rm", "--network", network, *args)


def refused(skiff: Skiff, *args: str) -> str:
    """The run fails as Docker's does (125) and leaves no container; the message is returned."""
    proc = skiff("run", "--network", "none", *args)
    assert proc.returncode == 125, (proc.stdout, proc.stderr)
    assert not skiff.ok("ps", "-aq").split()
    return proc.stderr


def host_value(key: str) -> str:
    return Path("/proc/sys", key.replace(".", "/")).read_text()


# --- --sysctl -------------------------------------------------------------------------------


def test_ipc_and_mqueue_sysctls_are_set_inside_only(lc: Skiff) -> None:
    before = host_value("kernel.shmmax"), host_value("fs.mqueue.msg_max"), host_value("kernel.shm_rmid_forced")
    out = run(lc, "--sysctl", "kernel.shmmax=1234567", "--sysctl", "fs.mqueue.msg_max=17",
              "--sysctl", "kernel.shm_rmid_forced=1", "busybox", "cat", "/proc/sys/kernel/shmmax",
              "/proc/sys/fs/mqueue/msg_max", "/proc/sys/kernel/shm_rmid_forced")
    assert out.split() == ["1234567", "17", "1"]
    assert (host_value("kernel.shmmax"), host_value("fs.mqueue.msg_max"),
            host_value("kernel.shm_rmid_forced")) == before


def test_net_sysctl_on_the_bridge_is_the_containers_own(lc: Skiff) -> None:
    before = host_value("net.ipv4.ip_unprivileged_port_start")
    lc.ok("create", "--name", "n", "--sysctl", "net.ipv4.ip_unprivileged_port_start=123",
          "busybox", "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start")
    assert lc.ok("start", "-a", "n") == "123\n"
    assert lc.ok("start", "-a", "n") == "123\n"   # start rebuilds the spec from the stored options
    assert host_value("net.ipv4.ip_unprivileged_port_start") == before
    assert inspect(lc, "n")["HostConfig"]["Sysctls"] == {"net.ipv4.ip_unprivileged_port_start": "123"}


@pytest.mark.parametrize("item", [
    "vm.swappiness=10", "kernel.shm_next_id=1", "kernel.hostname=x", "kernel.domainname=x", "net.ipv4.ip_forward",
    "=1", "kernel/../vm.swappiness=1", "net/../../vm/swappiness=1",
])
def test_sysctls_docker_does_not_allow_are_refused(lc: Skiff, item: str) -> None:
    assert f"sysctl '{item}' is not whitelisted" in refused(lc, "--sysctl", item, "busybox", "true")


@pytest.mark.parametrize("key", ["fs.mqueue.../../../vm/swappiness", "net..ipv4", "net.a/b"])
def test_sysctl_names_that_would_leave_proc_sys_are_refused(lc: Skiff, key: str) -> None:
    assert f"sysctl name '{key}' is not a valid name" in refused(lc, "--sysctl", f"{key}=1", "busybox", "true")


def test_net_sysctl_with_the_hosts_network_is_refused(lc: Skiff) -> None:
    before = host_value("net.ipv4.ip_unprivileged_port_start")
    proc = lc("run", "--rm", "--network", "host", "--sysctl", "net.ipv4.ip_unprivileged_port_start=99",
              "busybox", "true")
    assert proc.returncode == 125
    assert 'sysctl "net.ipv4.ip_unprivileged_port_start" not allowed in host network namespace' in proc.stderr
    assert host_value("net.ipv4.ip_unprivileged_port_start") == before


# --- --group-add, --shm-size, --oom-score-adj -------------------------------------------------


def test_group_add_takes_names_from_the_images_group_file_and_numbers(lc: Skiff) -> None:
    # busybox's /etc/group (scripts/busybox-rootfs): wheel is 10; nobody is in no group but its own.
    groups = run(lc, "--group-add", "wheel", "--group-add", "4242", "-u", "nobody", "busybox", "id", "-G")
    assert groups.split() == ["65534", "10", "4242"]
    cid = lc.ok("run", "-d", "--network", "none", "--group-add", "4242", "busybox", "sleep", "60").strip()
    assert "4242" in lc.ok("exec", "-u", "nobody", cid, "id", "-G").split()   # exec -u gets them too
    assert inspect(lc, cid)["HostConfig"]["GroupAdd"] == ["4242"]


def test_group_add_of_an_unknown_name_fails_the_run(lc: Skiff) -> None:
    proc = lc("run", "--rm", "--network", "none", "--group-add", "nosuchgroup", "busybox", "true")
    assert proc.returncode == 125 and "Unable to find group nosuchgroup" in proc.stderr


def df_blocks(skiff: Skiff, *args: str) -> int:
    line = run(skiff, *args, "busybox", "df", "-k", "/dev/shm").splitlines()[-1]
    return int(line.split()[1])


def test_shm_size_sets_dev_shm_and_defaults_to_64m(lc: Skiff) -> None:
    assert df_blocks(lc, "--shm-size", "32m") == 32 * 1024
    assert df_blocks(lc, "--shm-size", "1.5g") == 1536 * 1024
    assert df_blocks(lc) == 64 * 1024
    lc.ok("create", "--name", "s", "--shm-size", "16m", "busybox", "true")
    lc.ok("create", "--name", "d", "busybox", "true")
    assert inspect(lc, "s")["HostConfig"]["ShmSize"] == 16 * MiB
    assert inspect(lc, "d")["HostConfig"]["ShmSize"] == 64 * MiB


@pytest.mark.parametrize("value", ["-1", "abc", "1.5x"])
def test_bad_shm_sizes_get_dockers_message(lc: Skiff, value: str) -> None:
    err = refused(lc, f"--shm-size={value}", "busybox", "true")
    assert f"invalid argument \"{value}\" for \"--shm-size\" flag: invalid size: '{value}'" in err


def test_oom_score_adj_is_the_containers_and_defaults_to_0(lc: Skiff) -> None:
    assert run(lc, "--oom-score-adj", "500", "busybox", "cat", "/proc/self/oom_score_adj") == "500\n"
    assert run(lc, "busybox", "cat", "/proc/self/oom_score_adj") == "0\n"
    lc.ok("create", "--name", "o", "--oom-score-adj", "321", "busybox", "true")
    assert inspect(lc, "o")["HostConfig"]["OomScoreAdj"] == 321


@pytest.mark.parametrize("value, message", [
    ("1001", "Invalid value 1001, range for oom score adj is [-1000, 1000]"),
    ("-1001", "Invalid value -1001, range for oom score adj is [-1000, 1000]"),
    ("x", 'invalid argument "x" for "--oom-score-adj" flag: strconv.ParseInt: parsing "x": invalid syntax'),
])
def test_bad_oom_score_adj(lc: Skiff, value: str, message: str) -> None:
    assert message in refused(lc, f"--oom-score-adj={value}", "busybox", "true")


# --- --memory-swappiness, --oom-kill-disable (cgroup v1: this host) ---------------------------------


def memory_v1() -> bool:
    return cgroups.detect().v1_mount("memory") is not None


@pytest.mark.skipif(not memory_v1(), reason="memory.swappiness and memory.oom_control are cgroup v1's")
def test_swappiness_and_oom_kill_disable_reach_the_memory_cgroup(lc: Skiff) -> None:
    out = run(lc, "-m", "64m", "--memory-swappiness", "7", "--oom-kill-disable", "busybox", "sh", "-c",
              "cat /sys/fs/cgroup/memory/memory.swappiness; "
              "grep oom_kill_disable /sys/fs/cgroup/memory/memory.oom_control")
    assert out.split() == ["7", "oom_kill_disable", "1"]
    lc.ok("create", "--name", "m", "-m", "64m", "--memory-swappiness", "0", "--oom-kill-disable", "busybox", "true")
    lc.ok("create", "--name", "plain", "busybox", "true")
    host = inspect(lc, "m")["HostConfig"]
    assert (host["MemorySwappiness"], host["OomKillDisable"]) == (0, True)
    host = inspect(lc, "plain")["HostConfig"]
    assert (host["MemorySwappiness"], host["OomKillDisable"]) == (None, False)


@pytest.mark.skipif(not memory_v1(), reason="cgroup v1's memory.oom_control")
def test_oom_kill_disable_without_a_memory_limit_warns_as_docker(lc: Skiff) -> None:
    proc = lc("run", "--rm", "--network", "none", "--oom-kill-disable", "busybox", "true")
    assert proc.returncode == 0
    assert proc.stderr == ("WARNING: OOM killer is disabled for the container, but no memory limit is set, "
                           "this can result in the system running out of resources.\n")


@pytest.mark.parametrize("value, message", [
    ("101", "invalid value: 101. Valid memory swappiness range is 0-100"),
    ("-2", "invalid value: -2. Valid memory swappiness range is 0-100"),
    ("abc", 'invalid argument "abc" for "--memory-swappiness" flag: strconv.ParseInt: parsing "abc": invalid syntax'),
])
def test_bad_swappiness(lc: Skiff, value: str, message: str) -> None:
    assert message in refused(lc, f"--memory-swappiness={value}", "busybox", "true")


# --- --mac-address, --domainname -----------------------------------------------------------------


def test_mac_address_is_set_on_the_bridge_interface(lc: Skiff) -> None:
    assert run(lc, "--mac-address", "02:42:AC:11:AB:CD", "busybox", "cat", "/sys/class/net/eth0/address",
               network="bridge") == "02:42:ac:11:ab:cd\n"
    lc.ok("create", "--name", "m", "--mac-address", "02-aa-bb-cc-dd-ee", "busybox", "cat",
          "/sys/class/net/eth0/address")
    assert lc.ok("start", "-a", "m") == "02:aa:bb:cc:dd:ee\n"
    data = inspect(lc, "m")
    assert data["Config"]["MacAddress"] == "02-aa-bb-cc-dd-ee"


@pytest.mark.parametrize("value", ["zz", "02:42:ac:11:00", "02:42:ac:11:00:02:03", "01:00:5e:00:00:01"])
def test_bad_mac_addresses_are_refused(lc: Skiff, value: str) -> None:
    assert f"{value} is not a valid mac address" in refused(lc, "--mac-address", value, "busybox", "true")


def test_mac_address_conflicts_with_another_containers_network(lc: Skiff) -> None:
    cid = lc.ok("run", "-d", "--network", "none", "busybox", "sleep", "60").strip()
    proc = lc("run", "--rm", "--network", f"container:{cid}", "--mac-address", "02:00:00:00:00:01", "busybox", "true")
    assert proc.returncode == 125 and "conflicting options: mac-address and the network mode" in proc.stderr


def test_domainname_is_the_uts_domain(lc: Skiff) -> None:
    out = run(lc, "-h", "box", "--domainname", "example.org", "busybox", "sh", "-c",
              "cat /proc/sys/kernel/domainname; hostname")
    assert out == "example.org\nbox\n"
    assert run(lc, "busybox", "cat", "/proc/sys/kernel/domainname") == "(none)\n"
    lc.ok("create", "--name", "d", "--domainname", "example.org", "busybox", "true")
    lc.ok("create", "--name", "plain", "busybox", "true")
    assert inspect(lc, "d")["Config"]["Domainname"] == "example.org"
    assert inspect(lc, "plain")["Config"]["Domainname"] == ""


# --- --expose, with -P ------------------------------------------------------------------------------


def test_expose_records_ports_and_publish_all_publishes_them(lc: Skiff) -> None:
    cid = lc.ok("run", "-d", "--expose", "7000-7002", "--expose", "53/udp", "-p", "8080", "-P",
                "busybox", "sleep", "60").strip()
    exposed = inspect(lc, cid)["Config"]["ExposedPorts"]
    assert exposed == {"7000/tcp": {}, "7001/tcp": {}, "7002/tcp": {}, "53/udp": {}, "8080/tcp": {}}
    published = {line.split(" -> ")[0] for line in lc.ok("port", cid).splitlines()}
    assert published == set(exposed)
    plain = lc.ok("run", "-d", "--expose", "9000", "busybox", "sleep", "60").strip()
    assert inspect(lc, plain)["Config"]["ExposedPorts"] == {"9000/tcp": {}}
    assert lc.ok("port", plain) == ""   # exposed only: nothing published without -P


@pytest.mark.parametrize("value, message", [
    ("80:80", "invalid port format for --expose: 80:80"),
    ("abc", 'invalid range format for --expose: abc, error: strconv.ParseUint: parsing "abc": invalid syntax'),
    ("90-80", "invalid range format for --expose: 90-80, error: Invalid range specified for the Port: 90-80"),
    ("70000", "invalid range format for --expose: 70000, "
              'error: strconv.ParseUint: parsing "70000": value out of range'),
])
def test_bad_expose_values(lc: Skiff, value: str, message: str) -> None:
    assert message in refused(lc, "--expose", value, "busybox", "true")


# --- --cidfile ----------------------------------------------------------------------------------------


def test_cidfile_gets_the_full_id(lc: Skiff, tmp_path: Path) -> None:
    created = tmp_path / "created.cid"
    cid = lc.ok("create", "--cidfile", str(created), "busybox", "true").strip()
    assert created.read_text() == cid and len(cid) == 64
    assert inspect(lc, cid)["HostConfig"]["ContainerIDFile"] == str(created)
    detached = tmp_path / "detached.cid"
    cid = lc.ok("run", "-d", "--network", "none", "--cidfile", str(detached), "busybox", "true").strip()
    assert detached.read_text() == cid
    foreground = tmp_path / "fg.cid"
    lc.ok("run", "--network", "none", "--name", "fg", "--cidfile", str(foreground), "busybox", "true")
    assert foreground.read_text() == inspect(lc, "fg")["Id"]


def test_an_existing_cidfile_is_refused_and_kept(lc: Skiff, tmp_path: Path) -> None:
    cidfile = tmp_path / "taken.cid"
    cidfile.write_text("someone else's")
    err = refused(lc, "--cidfile", str(cidfile), "busybox", "true")
    assert (f"container ID file found, make sure the other container isn't running or delete {cidfile}"
            in err)
    assert cidfile.read_text() == "someone else's"


def test_a_failed_create_removes_its_cidfile(lc: Skiff, tmp_path: Path) -> None:
    cidfile = tmp_path / "failed.cid"
    refused(lc, "--cidfile", str(cidfile), "--sysctl", "vm.swappiness=1", "busybox", "true")
    proc = lc("create", "--cidfile", str(cidfile), "--pull", "never", "no-such-image", "true")
    assert proc.returncode == 125
    assert not cidfile.exists()
    cid = lc.ok("create", "--cidfile", str(cidfile), "busybox", "true").strip()   # free again
    assert cidfile.read_text() == cid


# --- the stored options replayed --------------------------------------------------------------------


SHOW = ("cat /proc/sys/kernel/shmmax /proc/self/oom_score_adj /proc/sys/kernel/domainname; "
        "id -G; df -k /dev/shm | tail -1 | awk '{print $2}'")


def test_restart_policy_and_start_rebuild_the_same_spec(lc: Skiff) -> None:
    flags = ("--sysctl", "kernel.shmmax=7654321", "--oom-score-adj", "250", "--domainname", "r.example",
             "--group-add", "4343", "--shm-size", "8m")
    cid = lc.ok("run", "-d", "--network", "none", "--restart", "on-failure:1", *flags,
                "busybox", "sh", "-c", SHOW + "; exit 3").strip()
    wait_for(lambda: inspect(lc, cid)["State"]["Status"] == "exited" and inspect(lc, cid)["RestartCount"] == 1,
             timeout=30)
    first, second = _runs(lc.ok("logs", cid))
    assert first == second
    assert first[:3] == ["7654321", "250", "r.example"] and "4343" in first and first[-1] == str(8 * 1024)
    lc.ok("start", cid)
    wait_for(lambda: len(_runs(lc.ok("logs", cid))) >= 3, timeout=30)
    wait_for(lambda: inspect(lc, cid)["State"]["Status"] == "exited", timeout=30)
    assert _runs(lc.ok("logs", cid))[2] == first


def _runs(logs: str) -> list[list[str]]:
    """The log split into runs of SHOW (each ends with the shm size)."""
    words, runs, current = logs.split(), [], []
    for word in words:
        current.append(word)
        if word == str(8 * 1024):
            runs.append(current)
            current = []
    return runs


# --- --link and --network-alias ----------------------------------------------------------------

def test_link_gives_dockers_hosts_line_and_variables_to_run_and_exec(lc: Skiff) -> None:
    lc.ok("run", "-d", "--name", "db", "--expose", "8000-8002", "-e", "SECRET=s3", "busybox", "sleep", "60")
    ip = inspect(lc, "db")["NetworkSettings"]["IPAddress"]
    out = lc.ok("run", "--rm", "--name", "web", "--link", "db:my-db", "busybox", "sh", "-c",
                "grep -w my-db /etc/hosts; env | grep -E '^MY_DB_(PORT_8000_TCP_(START|PORT_END)|NAME|ENV_SECRET)='")
    hosts_line, *variables = out.splitlines()  # sh passes its variables on in its own order
    assert hosts_line == f"{ip}\tmy-db {inspect(lc, 'db')['Config']['Hostname']} db"
    assert sorted(variables) == ["MY_DB_ENV_SECRET=s3", "MY_DB_NAME=/web/my-db", "MY_DB_PORT_8000_TCP_PORT_END=8002",
                                 f"MY_DB_PORT_8000_TCP_START=tcp://{ip}:8000"]
    lc.ok("run", "-d", "--name", "web2", "--link", "db", "busybox", "sleep", "60")
    assert f"DB_PORT=tcp://{ip}:8000" in lc.ok("exec", "web2", "env").splitlines()
    lc.ok("stop", "-t", "0", "db")
    proc = lc("exec", "web2", "true")   # as Docker's exec: the links are resolved again
    assert proc.returncode != 0 and "Cannot link to a non running container: /db AS /web2/db" in proc.stderr


def test_network_alias_is_resolved_on_a_user_network_and_refused_on_the_default_bridge(lc: Skiff) -> None:
    from tests.network.conftest import free_subnet

    lc.ok("network", "create", "--subnet", free_subnet(), "aliasnet")
    lc.ok("run", "-d", "--name", "srv", "--network", "aliasnet", "--network-alias", "svc", "busybox", "sleep", "60")
    ip = inspect(lc, "srv")["NetworkSettings"]["Networks"]["aliasnet"]["IPAddress"]
    out = lc.ok("run", "--rm", "--network", "aliasnet", "busybox", "ping", "-c", "1", "-W", "2", "svc")
    assert out.startswith(f"PING svc ({ip})")
    assert "svc" in inspect(lc, "srv")["NetworkSettings"]["Networks"]["aliasnet"]["Aliases"]
    proc = lc("run", "--rm", "--network-alias", "x", "busybox", "true")
    assert proc.returncode == 125
    assert "network-scoped aliases are only supported for user-defined networks" in proc.stderr
    lc.ok("rm", "-f", "srv")
    lc.ok("network", "rm", "aliasnet")
