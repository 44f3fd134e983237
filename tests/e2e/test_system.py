"""``info``, ``version``, ``system df``, ``system prune`` and ``update`` against Docker 20.10.

The expected texts, key sets and messages were recorded from Docker 20.10.24 (a private
dockerd on this machine's kernel, cgroup v1) and are written out here; skiff's own values
(its version, its root) stand where Docker's are.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

import skiff
import skiff.cgroups as cgroups
from tests.cgroups.fake_cgroupfs import FakeKernel, installed_fake_v2
from tests.conftest import CGROUP_PARENT, Skiff
from tests.e2e.test_lifecycle import detach, inspect, lc, wait_for  # noqa: F401 - lc is a fixture

MiB = 1 << 20

# The keys of Docker 20.10's documents (GET /version through `docker version --format '{{json .}}'`,
# GET /info with the client's ClientInfo through `docker info --format '{{json .}}'`).
DOCKER_VERSION_CLIENT_KEYS = ["Platform", "Version", "ApiVersion", "DefaultAPIVersion", "GitCommit", "GoVersion",
                              "Os", "Arch", "BuildTime", "Context", "Experimental"]
DOCKER_VERSION_SERVER_KEYS = ["Platform", "Components", "Version", "ApiVersion", "MinAPIVersion", "GitCommit",
                              "GoVersion", "Os", "Arch", "KernelVersion", "BuildTime"]
DOCKER_INFO_KEYS = [
    "ID", "Containers", "ContainersRunning", "ContainersPaused", "ContainersStopped", "Images", "Driver",
    "DriverStatus", "Plugins", "MemoryLimit", "SwapLimit", "KernelMemory", "KernelMemoryTCP", "CpuCfsPeriod",
    "CpuCfsQuota", "CPUShares", "CPUSet", "PidsLimit", "IPv4Forwarding", "BridgeNfIptables", "BridgeNfIp6tables",
    "Debug", "NFd", "OomKillDisable", "NGoroutines", "SystemTime", "LoggingDriver", "CgroupDriver",
    "CgroupVersion", "NEventsListener", "KernelVersion", "OperatingSystem", "OSVersion", "OSType",
    "Architecture", "IndexServerAddress", "RegistryConfig", "NCPU", "MemTotal", "GenericResources",
    "DockerRootDir", "HttpProxy", "HttpsProxy", "NoProxy", "Name", "Labels", "ExperimentalBuild",
    "ServerVersion", "Runtimes", "DefaultRuntime", "Swarm", "LiveRestoreEnabled", "Isolation", "InitBinary",
    "ContainerdCommit", "RuncCommit", "InitCommit", "SecurityOptions", "Warnings", "ClientInfo",
]
# `docker info`'s lines, in 20.10's order (the value after the colon is each daemon's own).
DOCKER_INFO_LABELS = [
    "Client:", " Context:", " Debug Mode:", "", "Server:", " Containers:", "  Running:", "  Paused:",
    "  Stopped:", " Images:", " Server Version:", " Storage Driver:", "  Backing Filesystem:",
    "  Supports d_type:", "  Native Overlay Diff:", "  userxattr:", " Logging Driver:", " Cgroup Driver:",
    " Cgroup Version:", " Plugins:", "  Volume:", "  Network:", "  Log:", " Swarm:", " Runtimes:",
    " Default Runtime:", " Init Binary:", " containerd version:", " runc version:", " init version:",
    " Security Options:", "  seccomp", "   Profile:",
]
DOCKER_INFO_TAIL = [" Kernel Version:", " Operating System:", " OSType:", " Architecture:", " CPUs:",
                    " Total Memory:", " Name:", " ID:", " Docker Root Dir:", " Debug Mode:"]
PRUNE_WARNING = """WARNING! This will remove:
  - all stopped containers
  - all networks not used by at least one container
  - all dangling images
  - all dangling build cache

Are you sure you want to continue? [y/N] """
PRUNE_WARNING_ALL_FILTERED = """WARNING! This will remove:
  - all stopped containers
  - all networks not used by at least one container
  - all volumes not used by at least one container
  - all images without at least one container associated to them
  - all build cache

  Items to be pruned will be filtered with:
  - label!=y
  - label=x

Are you sure you want to continue? [y/N] """
DF_HEADER = ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]


def columns(line: str) -> list[str]:
    """A table row's cells (separated by runs of at least two spaces, as Docker's tabwriter)."""
    import re

    return re.split(r"\s{2,}", line.strip())


# --- version ------------------------------------------------------------------------------


def test_version_document_has_dockers_keys_and_templates_read_it(skiff: Skiff) -> None:
    document = json.loads(skiff.ok("version", "--format", "{{json .}}"))
    assert list(document) == ["Client", "Server"]
    assert list(document["Client"]) == DOCKER_VERSION_CLIENT_KEYS
    assert list(document["Server"]) == DOCKER_VERSION_SERVER_KEYS
    engine = document["Server"]["Components"][0]
    assert engine["Name"] == "Engine" and engine["Details"]["ApiVersion"] == "1.41"
    assert skiff.ok("version", "--format", "{{.Server.Version}} {{.Client.Version}}") == \
        f"{skiff_version()} {skiff_version()}\n"
    # GoVersion carries the Python that runs skiff; Go's field name APIVersion reads as in Docker.
    assert skiff.ok("version", "-f", "{{.Client.GoVersion}}|{{.Client.APIVersion}}|{{.Server.Os}}") == \
        f"python{'.'.join(map(str, sys.version_info[:3]))}|1.41|linux\n"


def test_version_text_is_laid_out_as_dockers(skiff: Skiff) -> None:
    lines = skiff.ok("version").splitlines()
    assert lines[:3] == ["Client:", f" Version:           {skiff_version()}", " API version:       1.41"]
    assert lines[3].startswith(" Go version:        python3.")
    assert lines[6] == " OS/Arch:           linux/" + json.loads(skiff.ok("version", "-f", "{{json .Client}}"))["Arch"]
    server = lines.index("") + 1
    assert lines[server].startswith("Server:") and lines[server + 1] == " Engine:"
    assert lines[server + 2] == f"  Version:          {skiff_version()}"
    assert lines[server + 3] == "  API version:      1.41 (minimum version 1.12)"


def test_version_and_info_template_errors_exit_as_dockers(skiff: Skiff) -> None:
    missing = skiff("version", "--format", "{{.Nope}}")
    assert missing.returncode == 1 and missing.stdout == "\n"  # Docker's: an empty line, Go's error alone
    assert missing.stderr.startswith("skiff: template: ")
    assert "can't evaluate field Nope in type system.versionInfo" in missing.stderr
    assert skiff("version", "--format", "{{").returncode == 64  # Docker: a template that does not parse
    assert skiff("info", "--format", "{{").returncode == 64
    bad = skiff("info", "--format", "{{.Nope}}")
    assert bad.returncode == 1 and "can't evaluate field Nope in type system.info" in bad.stderr
    extra = skiff("info", "extra")
    assert extra.returncode == 1 and extra.stderr.startswith('"skiff info" accepts no arguments.')


def skiff_version() -> str:
    return skiff.__version__


# --- info ---------------------------------------------------------------------------------


def test_info_document_counts_containers_and_describes_the_host(lc: Skiff) -> None:
    detach(lc, "--name", "up", "busybox", "sleep", "300")
    lc.ok("create", "--name", "made", "--network", "none", "busybox", "true")
    info = json.loads(lc.ok("info", "--format", "{{json .}}"))
    assert list(info) == DOCKER_INFO_KEYS
    assert (info["Containers"], info["ContainersRunning"], info["ContainersPaused"], info["ContainersStopped"]) \
        == (2, 1, 0, 1)
    assert info["Images"] == 1 and info["Driver"] == "overlay2" and info["CgroupDriver"] == "cgroupfs"
    assert info["DockerRootDir"] == str(lc.root) and info["ServerVersion"] == skiff_version()
    assert info["CgroupVersion"] == ("2" if cgroups.detect().mode == "v2" else "1")
    assert info["NCPU"] == len(os.sched_getaffinity(0)) and info["OSType"] == "linux"
    assert info["KernelVersion"] == os.uname().release and info["Architecture"] == os.uname().machine
    assert "name=seccomp,profile=default" in info["SecurityOptions"]
    assert info["DefaultRuntime"] in info["Runtimes"]
    assert [pair[0] for pair in info["DriverStatus"]] == ["Backing Filesystem", "Supports d_type",
                                                          "Native Overlay Diff", "userxattr"]
    assert len(info["ID"]) == 59 and info["ID"].count(":") == 11
    # The same document through the `system info` alias, and the client part Docker adds.
    assert lc.ok("system", "info", "-f", "{{.Containers}} {{.ClientInfo.Context}}") == "2 default\n"


def test_info_text_is_laid_out_as_dockers(lc: Skiff) -> None:
    text = lc.ok("info")
    lines = text.splitlines()
    labels = [line.partition(":")[0] + (":" if ":" in line else "") for line in lines]
    assert labels[:len(DOCKER_INFO_LABELS)] == DOCKER_INFO_LABELS
    tail = [label for label in labels[len(DOCKER_INFO_LABELS):] if label in DOCKER_INFO_TAIL]
    assert tail == DOCKER_INFO_TAIL
    assert f" Docker Root Dir: {lc.root}" in lines and " Images: 1" in lines and " Containers: 0" in lines
    assert lines[-2].startswith(" Live Restore Enabled: ") and text.endswith("\n\n")


# --- system df ----------------------------------------------------------------------------


def test_system_df_counts_sizes_and_reclaimable_space(lc: Skiff) -> None:
    detach(lc, "--name", "up", "busybox", "sleep", "300")
    lc.ok("run", "--name", "wrote", "--network", "none", "-v", "vol1:/data", "busybox", "sh", "-c",
          "head -c 3000000 /dev/zero > /data/f; head -c 1500000 /dev/zero > /f")
    lc.ok("volume", "create", "named")
    rows = [columns(line) for line in lc.ok("system", "df").splitlines()]
    assert rows[0] == DF_HEADER
    images, containers, volumes, cache = rows[1:]
    assert images[:3] == ["Images", "1", "1"] and images[4] == "0B (0%)"  # its only image is in use
    assert containers == ["Containers", "2", "1", "1.5MB", "1.5MB (100%)"]  # the exited one's writes
    assert volumes == ["Local Volumes", "2", "1", "3MB", "0B (0%)"]  # vol1 belongs to an exited container
    assert cache == ["Build Cache", "0", "0", "0B", "0B"]
    assert json.loads(lc.ok("system", "df", "--format", "{{json .}}").splitlines()[1]) == {
        "Active": "1", "Reclaimable": "1.5MB (100%)", "Size": "1.5MB", "TotalCount": "2", "Type": "Containers"}
    assert lc.ok("system", "df", "--format", "table {{.Type}}\t{{.Size}}").splitlines()[2] == \
        "Containers      1.5MB"


def test_system_df_verbose_tables_and_template(lc: Skiff) -> None:
    detach(lc, "--name", "up", "busybox", "sleep", "300")
    lc.ok("run", "--name", "wrote", "--network", "none", "-v", "vol1:/data", "busybox", "sh", "-c",
          "head -c 3000000 /dev/zero > /data/f; head -c 1500000 /dev/zero > /f")
    text = lc.ok("system", "df", "-v")
    sections = ["Images space usage:", "Containers space usage:", "Local Volumes space usage:",
                "Build cache usage: 0B"]
    lines = text.splitlines()
    assert [line for line in lines if line in sections] == sections
    assert columns(lines[2]) == ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE", "UNIQUE SIZE",
                                 "CONTAINERS"]
    assert columns(lines[3])[:2] == ["busybox", "latest"] and columns(lines[3])[-1] == "2"
    header = lines.index("Containers space usage:") + 2
    assert columns(lines[header]) == ["CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE", "CREATED",
                                      "STATUS", "NAMES"]
    wrote = [columns(line) for line in lines if line.endswith(" wrote")][0]
    assert wrote[3:5] == ["1", "1.5MB"]
    volumes = lines.index("Local Volumes space usage:") + 2
    assert columns(lines[volumes]) == ["VOLUME NAME", "LINKS", "SIZE"]
    assert columns(lines[volumes + 1]) == ["vol1", "1", "3MB"]
    assert lines[-1].split() == ["CACHE", "ID", "CACHE", "TYPE", "SIZE", "CREATED", "LAST", "USED", "USAGE", "SHARED"]
    # A template runs once on the whole object, without a newline after it (as 20.10's).
    assert lc.ok("system", "df", "-v", "--format", "{{range .Volumes}}{{.Name}}={{.Size}} {{end}}") == "vol1=3MB "
    document = json.loads(lc.ok("system", "df", "-v", "--format", "{{json .}}"))
    assert list(document) == ["Images", "Containers", "Volumes", "BuildCache"]
    assert len(document["Images"][0]["ID"]) == 71 and {c["Names"] for c in document["Containers"]} == {"up", "wrote"}


# --- system prune -------------------------------------------------------------------------


def test_system_prune_asks_filters_and_removes_what_docker_does(lc: Skiff, busybox_tar: Path) -> None:
    detach(lc, "--name", "up", "busybox", "sleep", "300")
    kept = lc.ok("create", "--name", "kept", "--label", "keep=1", "--network", "none", "busybox", "true").strip()
    lc.ok("run", "--name", "gone", "--network", "none", "-v", "vol1:/data", "busybox", "true")
    gone = inspect(lc, "gone")["Id"]
    lc.ok("network", "create", "unused")
    dangling = lc.ok("import", str(busybox_tar)).strip()  # no name: a dangling image
    lc.ok("volume", "create", "named")

    answered_no = lc("system", "prune", input="n\n")
    assert answered_no.returncode == 0 and answered_no.stdout == PRUNE_WARNING
    filtered = lc("system", "prune", "-a", "--volumes", "--filter", "label=x", "--filter", "label!=y", input="")
    assert filtered.returncode == 0 and filtered.stdout == PRUNE_WARNING_ALL_FILTERED
    assert len(lc.ok("ps", "-aq").split()) == 3

    out = lc.ok("system", "prune", "-f", "--filter", "label!=keep")
    assert out.startswith(f"Deleted Containers:\n{gone}\n\nDeleted Networks:\nunused\n\n"
                          f"Deleted Images:\ndeleted: {dangling}\n\nTotal reclaimed space: ")
    assert sorted(lc.ok("ps", "-a", "--format", "{{.Names}}").split()) == ["kept", "up"]
    assert sorted(lc.ok("volume", "ls", "-q").split()) == ["named", "vol1"]  # without --volumes: kept

    out = lc.ok("system", "prune", "--volumes", "-f")  # 20.10: named volumes too
    assert out == f"Deleted Containers:\n{kept}\n\nDeleted Volumes:\nnamed\nvol1\n\nTotal reclaimed space: 0B\n"
    assert lc.ok("system", "prune", "-a", "-f") == "Total reclaimed space: 0B\n"  # busybox: used by "up"
    assert lc.ok("images", "-q").strip()


def test_system_prune_until_takes_only_what_is_older(lc: Skiff) -> None:
    cid = lc.ok("create", "--name", "recent", "--network", "none", "busybox", "true").strip()
    assert lc.ok("system", "prune", "-f", "--filter", "until=1h") == "Total reclaimed space: 0B\n"
    assert lc.ok("ps", "-aq") == cid[:12] + "\n"
    assert lc.ok("system", "prune", "-f", "--filter", "until=0s").startswith(f"Deleted Containers:\n{cid}\n\n")
    assert lc.ok("ps", "-aq") == ""


def test_system_prune_refuses_bad_filters_as_docker(lc: Skiff) -> None:
    bad = lc("system", "prune", "-f", "--filter", "bogus=1")
    assert (bad.returncode, bad.stderr) == (1, "skiff: Invalid filter 'bogus'\n")
    until = lc("system", "prune", "--volumes", "-f", "--filter", "until=1h")
    assert (until.returncode, until.stderr) == (1, 'ERROR: The "until" filter is not supported with "--volumes"\n')
    extra = lc("system", "prune", "x")
    assert extra.returncode == 1 and extra.stderr.startswith('"skiff system prune" accepts no arguments.')


# --- update -------------------------------------------------------------------------------


def cgroup_file(cid: str, name: str) -> str:
    """A limit file of the container's cgroup, wherever this host keeps it (v1 or v2)."""
    cgroup = cgroups.open(f"/{CGROUP_PARENT}/{cid}")
    for directory in cgroup.dirs:
        path = Path(directory) / name
        if path.exists():
            return path.read_text().strip()
    raise AssertionError(f"no {name} in {cgroup.dirs}")


def v1_only() -> None:
    if cgroups.detect().mode == "v2":
        pytest.skip("checks v1 files; cgroup v2 is covered against the fake tree below")


def limits(cid: str) -> dict[str, str]:
    return {name: cgroup_file(cid, name) for name in (
        "memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.soft_limit_in_bytes", "cpu.cfs_quota_us",
        "cpu.cfs_period_us", "cpu.shares", "pids.max", "cpuset.cpus")}


def test_update_changes_the_running_cgroup_and_the_record_and_survives_restart(lc: Skiff) -> None:
    v1_only()
    cid = detach(lc, "--name", "busy", "-m", "64m", "busybox", "sleep", "300")
    assert cgroup_file(cid, "memory.limit_in_bytes") == str(64 * MiB)
    out = lc("update", "-m", "100m", "--memory-reservation", "50m", "--cpus", "0.5", "--cpu-shares", "512",
             "--pids-limit", "50", "--cpuset-cpus", "0", "busy")
    assert (out.returncode, out.stdout, out.stderr) == (0, "busy\n", "")
    expected = {"memory.limit_in_bytes": str(100 * MiB),
                "memory.memsw.limit_in_bytes": str(128 * MiB),  # the swap limit it had (twice -m 64m) stays
                "memory.soft_limit_in_bytes": str(50 * MiB), "cpu.cfs_quota_us": "50000",
                "cpu.cfs_period_us": "100000", "cpu.shares": "512", "pids.max": "50", "cpuset.cpus": "0"}
    assert limits(cid) == expected
    # inspect shows what Docker 20.10 shows after the same updates; the record holds the OCI object.
    host = inspect(lc, cid)["HostConfig"]
    assert (host["Memory"], host["MemorySwap"], host["MemoryReservation"]) == (100 * MiB, 128 * MiB, 50 * MiB)
    assert (host["NanoCpus"], host["CpuShares"], host["PidsLimit"], host["CpusetCpus"]) == (500000000, 512, 50, "0")
    resources = json.loads((lc.root / "containers" / cid / "container.json").read_text())["HostConfig"]["Resources"]
    assert resources["memory"] == {"limit": 100 * MiB, "swap": 128 * MiB, "reservation": 50 * MiB}
    lc.ok("restart", "-t", "0", "busy")
    assert inspect(lc, cid)["State"]["Status"] == "running"
    assert limits(cid) == expected
    lc.ok("stop", "-t", "0", "busy")
    lc.ok("start", "busy")
    assert limits(cid) == expected


def test_update_of_a_stopped_container_applies_at_its_next_start(lc: Skiff) -> None:
    v1_only()
    cid = lc.ok("create", "--name", "later", "--network", "none", "-m", "64m", "busybox", "sleep", "300").strip()
    assert lc.ok("update", "-m", "32m", "--pids-limit", "20", cid[:12]) == f"{cid[:12]}\n"
    lc.ok("start", "later")
    assert cgroup_file(cid, "memory.limit_in_bytes") == str(32 * MiB)
    assert cgroup_file(cid, "memory.memsw.limit_in_bytes") == str(128 * MiB)
    assert cgroup_file(cid, "pids.max") == "20"


def test_update_restart_policy_restarts_with_the_new_limits(lc: Skiff) -> None:
    v1_only()
    cid = detach(lc, "--name", "phoenix", "-m", "64m", "busybox", "sleep", "300")
    assert lc.ok("update", "--restart", "always", "-m", "48m", "phoenix") == "phoenix\n"
    assert inspect(lc, cid)["HostConfig"]["RestartPolicy"] == {"Name": "always", "MaximumRetryCount": 0}
    first = inspect(lc, cid)["State"]["Pid"]
    os.kill(first, signal.SIGKILL)  # not a stop: the policy applies
    wait_for(lambda: inspect(lc, cid)["State"]["Pid"] not in (0, first)
             and inspect(lc, cid)["State"]["Status"] == "running", timeout=20)
    assert inspect(lc, cid)["RestartCount"] == 1
    assert cgroup_file(cid, "memory.limit_in_bytes") == str(48 * MiB)


@pytest.mark.parametrize("args, stderr, status", [
    ((), "you must provide one or more flags when using this command\n", 1),
    (("-m", "64m"), "skiff: Cannot update container {id}: Memory limit should be smaller than "
                    "already set memoryswap limit, update the memoryswap at the same time\n", 1),
    (("-m", "3m"), "skiff: Minimum memory limit allowed is 6MB\n", 1),
    (("-m", "10m", "--memory-reservation", "20m"),
     "skiff: Minimum memory limit can not be less than memory reservation limit, see usage\n", 1),
    (("-m", "64m", "--memory-swap", "32m"),
     "skiff: Minimum memoryswap limit should be larger than memory limit, see usage\n", 1),
    (("--cpu-period", "50000"), "skiff: Cannot update container {id}: Conflicting options: "
                                "CPU Period cannot be updated as NanoCPUs has already been set\n", 1),
    (("--cpus", "0.5", "--cpu-period", "50000"),
     "skiff: Conflicting options: Nano CPUs and CPU Period cannot both be set\n", 1),
    (("-m", "abc"), "invalid argument \"abc\" for \"-m, --memory\" flag: invalid size: 'abc'\n"
                    "See 'skiff update --help'.\n", 125),
])
def test_update_errors_are_dockers(lc: Skiff, args: tuple[str, ...], stderr: str, status: int) -> None:
    cid = detach(lc, "--name", "target", "--cpus", "1", "busybox", "sleep", "300")
    before = inspect(lc, cid)["HostConfig"]
    result = lc("update", *args, "target")
    assert (result.returncode, result.stdout, result.stderr) == (status, "", stderr.format(id=cid))
    assert inspect(lc, cid)["HostConfig"] == before


def test_update_reports_each_container_and_refuses_a_policy_for_rm(lc: Skiff) -> None:
    cid = detach(lc, "--name", "auto", "--rm", "busybox", "sleep", "300")
    detach(lc, "--name", "plain", "busybox", "sleep", "300")
    result = lc("update", "--pids-limit", "30", "nosuch", "plain")
    assert (result.returncode, result.stdout, result.stderr) == \
        (1, "plain\n", "skiff: No such container: nosuch\n")
    until = str(int(time.time()) + 1)
    assert lc.ok("events", "--since", "0", "--until", until, "--filter", "event=update", "--format",
                 "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}") == "container update plain\n"
    refused = lc("update", "--restart", "always", "auto")
    assert refused.returncode == 1 and refused.stderr == (
        f"skiff: Cannot update container {cid}: Restart policy cannot be updated because "
        "AutoRemove is enabled for the container\n")
    assert lc.ok("container", "update", "--restart", "no", "auto") == "auto\n"


# --- cgroup v2: the same update path against the fake tree ------------------------------------


@pytest.fixture
def fake_v2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKernel]:
    yield installed_fake_v2(tmp_path / "cgroup", monkeypatch)


def test_update_on_cgroup_v2_keeps_memory_and_swap_as_the_record_says(fake_v2: FakeKernel) -> None:
    from skiff.engine.update import UpdateRequest, live_change, merge_resources

    from skiff.engine.resources import resources_from_flags

    created = resources_from_flags(memory="64m", cpus="1")
    cg = cgroups.open("/skiff/c1", root=fake_v2.root)
    cg.create(created)
    assert fake_v2.read("skiff/c1/memory.swap.max") == str(64 * MiB)
    request = UpdateRequest({"memory": "100m", "cpu_shares": "512", "pids_limit": "40"}, None)
    merged = merge_resources(created, request.resources)
    cg.update(live_change(merged, request))
    # memory+swap stays at 128m as on v1 (and as the next start writes it from the record).
    assert fake_v2.read("skiff/c1/memory.max") == str(100 * MiB)
    assert fake_v2.read("skiff/c1/memory.swap.max") == str(28 * MiB)
    assert fake_v2.read("skiff/c1/cpu.max") == "100000 100000"  # --cpus 1 untouched
    assert fake_v2.read("skiff/c1/cpu.weight") == "20"
    assert fake_v2.read("skiff/c1/pids.max") == "40"
    assert merged["memory"] == {"limit": 100 * MiB, "swap": 128 * MiB}
