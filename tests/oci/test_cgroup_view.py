"""Every container's own cgroup: made without cgroupsPath or resources, shown inside instead of the host's tree.

As runc: a config without ``linux.cgroupsPath`` still gets a cgroup (so pause, resume and the
device allow-list work), removed at delete; inside, /sys/fs/cgroup holds only the container's
own cgroup of each v1 hierarchy (its cgroup2 directory on a v2 host), read-only unless the
mount's options leave ``ro`` out. skiff's engine (``skiff run``, cgroupns host on v1 as Docker
20.10's default) shows the same.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from skiff.runtime import default_spec
from tests.conftest import CGROUP_PARENT, Skiff
from tests.oci.test_cli import RUNC, oci_bundle, root, skiff_oci  # noqa: F401 - fixtures

V1_PIDS = Path("/sys/fs/cgroup/pids")
v1_only = pytest.mark.skipif(not (V1_PIDS / "cgroup.procs").exists(),
                             reason="needs this host's cgroup v1 pids hierarchy at /sys/fs/cgroup/pids")


def write_spec(bundle: Path, args: list[str], cgroupns: bool = False, cgroup_options: list[str] | None = None) -> None:
    spec = default_spec()
    spec["process"]["args"] = args
    spec["linux"].pop("cgroupsPath", None)
    spec["linux"].pop("resources", None)
    spec["linux"]["namespaces"] = [ns for ns in spec["linux"]["namespaces"] if ns["type"] != "cgroup"]
    if cgroupns:
        spec["linux"]["namespaces"].append({"type": "cgroup"})
    if cgroup_options is not None:
        for mount in spec["mounts"]:
            if mount["type"] == "cgroup":
                mount["options"] = cgroup_options
    (bundle / "config.json").write_text(json.dumps(spec))


def own_cgroup_dirs(pid: int) -> list[str]:
    """The init's cgroup directories on the host, one per v1 hierarchy."""
    dirs = []
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        name = controllers.replace("name=", "") if controllers else "unified"
        if os.path.isdir(f"/sys/fs/cgroup/{name}"):
            dirs.append(f"/sys/fs/cgroup/{name}{path}")
    return dirs


def test_pause_resume_without_cgroups_path_or_resources(root: Path, oci_bundle: Path) -> None:
    write_spec(oci_bundle, ["sleep", "30"])
    assert skiff_oci(root, "run", "-d", "-b", str(oci_bundle), "cv1", stdin=subprocess.DEVNULL).returncode == 0
    try:
        pid = json.loads(skiff_oci(root, "state", "cv1").stdout)["pid"]
        dirs = own_cgroup_dirs(pid)
        assert dirs and all(d.endswith(f"/{CGROUP_PARENT}/cv1") for d in dirs), dirs
        paused = skiff_oci(root, "pause", "cv1")
        assert paused.returncode == 0, paused.stderr
        assert json.loads(skiff_oci(root, "state", "cv1").stdout)["status"] == "paused"
        assert skiff_oci(root, "resume", "cv1").returncode == 0
        assert json.loads(skiff_oci(root, "state", "cv1").stdout)["status"] == "running"
    finally:
        assert skiff_oci(root, "delete", "--force", "cv1").returncode == 0
    assert not [d for d in dirs if os.path.exists(d)], "delete left the container's cgroup behind"


@v1_only
@pytest.mark.parametrize("cgroupns", [False, True], ids=["host-cgroupns", "own-cgroupns"])
def test_the_container_sees_only_its_own_cgroup(root: Path, oci_bundle: Path, cgroupns: bool) -> None:
    """Not the host's skiff, docker or release_agent entries (runc binds the same directories)."""
    write_spec(oci_bundle, ["sh", "-c", "ls /sys/fs/cgroup; echo --; ls /sys/fs/cgroup/pids; echo --;"
                            "cat /sys/fs/cgroup/pids/tasks | wc -l; grep ' /sys/fs/cgroup' /proc/self/mountinfo"],
               cgroupns=cgroupns)
    result = skiff_oci(root, "run", "-b", str(oci_bundle), "cv2")
    assert result.returncode == 0, result.stderr
    top, pids, rest = result.stdout.split("--\n")
    tasks, *mounts = rest.splitlines()
    pids_entries = pids.split()
    assert "pids.max" in pids_entries and "tasks" in pids_entries
    assert not {"release_agent", "skiff", "docker", CGROUP_PARENT} & set(pids_entries), pids_entries
    assert [entry for entry in pids_entries if "." not in entry and entry not in ("tasks", "notify_on_release")] == []
    assert int(tasks) <= 3  # sh, cat and wc: not the host's tasks
    assert "unified" not in top.split()  # the hybrid host's cgroup2 tree, which runc leaves out too
    assert mounts
    for line in mounts:  # the default spec asks "ro": the hierarchies are, their tmpfs not (runc's, Docker's)
        assert ("ro" in line.split()[5].split(",")) == (line.split()[4] != "/sys/fs/cgroup"), line


@v1_only
def test_the_cgroup_mount_is_writable_when_its_options_ask(root: Path, oci_bundle: Path) -> None:
    write_spec(oci_bundle, ["sh", "-c", "mkdir /sys/fs/cgroup/pids/sub && rmdir /sys/fs/cgroup/pids/sub && echo rw;"
                            "grep ' /sys/fs/cgroup/pids ' /proc/self/mountinfo"],
               cgroup_options=["nosuid", "noexec", "nodev", "relatime", "rw"])
    result = skiff_oci(root, "run", "-b", str(oci_bundle), "cv3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "rw" and lines[1].split()[5].startswith("rw,"), result.stdout


@v1_only
@pytest.mark.skipif(not os.path.exists(RUNC), reason="needs runc to compare with")
def test_the_cgroup_view_matches_runcs(tmp_path: Path, root: Path, oci_bundle: Path) -> None:
    """Which hierarchies show, and what each holds, as runc shows them (cgroupns host)."""
    write_spec(oci_bundle, ["sh", "-c", "for h in /sys/fs/cgroup/*; do echo $h; ls $h | sort; done;"
                            "sed -n 's|^[0-9]* [0-9]* [0-9:]* [^ ]* \\(/sys/fs/cgroup[^ ]*\\) \\([^ ]*\\) .*|\\1 \\2|p' "
                            "/proc/self/mountinfo"])
    ours = skiff_oci(root, "run", "-b", str(oci_bundle), "cv4")
    config = json.loads((oci_bundle / "config.json").read_text())
    config["linux"]["cgroupsPath"] = f"/{CGROUP_PARENT}/runc-cv4"
    (oci_bundle / "config.json").write_text(json.dumps(config))
    theirs = subprocess.run([RUNC, "--root", str(tmp_path / "runc-state"), "run", "-b", str(oci_bundle), "cv4"],
                            capture_output=True, text=True, timeout=60)
    assert theirs.returncode == 0, theirs.stderr
    assert (ours.returncode, ours.stdout) == (0, theirs.stdout), ours.stderr
    assert "/sys/fs/cgroup/pids ro," in ours.stdout and "/sys/fs/cgroup rw," in ours.stdout


@v1_only
def test_skiff_run_shows_the_same_view(skiff: Skiff, busybox_image: str) -> None:
    out = skiff("run", "--rm", "--network", "none", busybox_image, "sh", "-c",
                "ls /sys/fs/cgroup; echo --; ls /sys/fs/cgroup/pids", check=True).stdout
    top, pids = out.split("--\n")
    assert "pids.max" in pids.split() and not {"release_agent", "skiff", "docker", CGROUP_PARENT} & set(pids.split())
    assert "unified" not in top.split()
