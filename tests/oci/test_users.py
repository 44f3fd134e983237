"""Processes that are not root, with few or no capabilities: skiff-oci starts what runc starts, the same way.

Each case runs runc's own ``runc spec`` config through create and start with runc and then with
skiff-oci, and compares what a static helper (ids.c) prints inside: real, effective and saved
ids, groups and capability sets, once as itself and once installed set-uid and set-gid root.
Kubernetes' restricted pods run like this: non-root, every capability dropped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CGROUP_PARENT
from tests.oci.test_cli import RUNC, skiff_oci

pytestmark = pytest.mark.skipif(not os.path.exists(RUNC), reason="needs runc to compare with")

HERE = Path(__file__).resolve().parent
RUNC_DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
SCRIPT = "/bin/ids; /suid/ids"


def caps(names: list[str], ambient: bool = False) -> dict[str, list[str]]:
    sets = {key: list(names) for key in ("bounding", "effective", "permitted")}
    return {**sets, "inheritable": list(names) if ambient else [], "ambient": list(names) if ambient else []}


KEEP = "as runc spec wrote them"  # ambient too, though not inheritable: the kernel raises none
CAPABILITY_SETS: dict[str, Any] = {
    "runc-spec": KEEP,
    "runc-default": caps(RUNC_DEFAULT_CAPS),
    "none": caps([]),
    "empty-object": {},
    "absent": None,  # runc: no capabilities at all
    "ambient": caps(["CAP_NET_BIND_SERVICE"], ambient=True),
}
USERS: dict[str, dict[str, Any]] = {
    "user": {"uid": 1000, "gid": 1000},
    "additional-gids": {"uid": 1000, "gid": 1000, "additionalGids": [10, 20, 4343]},
    "unknown": {"uid": 4242, "gid": 4343},  # in neither /etc/passwd nor /etc/group of the image
    "gid-root": {"uid": 1000, "gid": 0},
}


@pytest.fixture(scope="module")
def ids_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ids") / "ids"
    subprocess.run(["gcc", "-static", "-O1", "-o", str(out), str(HERE / "ids.c")], check=True)
    return out


@pytest.fixture
def runc_bundle(tmp_path: Path, busybox_rootfs: Path, ids_binary: Path) -> Path:
    """runc's own default config (terminal off) over busybox, with the helper plain and set-id root."""
    bundle = tmp_path / "bundle"
    shutil.copytree(busybox_rootfs, bundle / "rootfs", symlinks=True)
    shutil.copy(ids_binary, bundle / "rootfs/bin/ids")
    (bundle / "rootfs/suid").mkdir()
    shutil.copy(ids_binary, bundle / "rootfs/suid/ids")
    os.chown(bundle / "rootfs/suid/ids", 0, 0)
    os.chmod(bundle / "rootfs/suid/ids", 0o6755)
    subprocess.run([RUNC, "spec", "--bundle", str(bundle)], check=True)
    return bundle


def configure(bundle: Path, process: dict[str, Any], cgroups_path: str = "") -> None:
    config = json.loads((bundle / "config.json").read_text())
    if process.get("capabilities") == KEEP:
        process = {k: v for k, v in process.items() if k != "capabilities"}
    config["process"] = {**config["process"], "terminal": False, **process}
    config["process"] = {k: v for k, v in config["process"].items() if v is not None}
    config["linux"].pop("cgroupsPath", None)
    if cgroups_path:
        config["linux"]["cgroupsPath"] = cgroups_path
    (bundle / "config.json").write_text(json.dumps(config))


def runc(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RUNC, "--root", str(tmp_path / "runc-state"), *args], capture_output=True, text=True,
                          timeout=60)


def create_start(tmp_path: Path, bundle: Path, which: str, cid: str,
                 keep_stderr: bool = False) -> tuple[int, str, str]:
    """create, start, wait until stopped, delete: (create's or start's status, the output, errors).

    The container inherits create's stdout and stderr: files, not pipes, which it would hold open.
    """
    command = [RUNC, "--root", str(tmp_path / "runc-state")] if which == "runc" else [
        sys.executable, "-m", "skiff.oci.main", "--root", str(tmp_path / "state")]
    out_path, err_path = tmp_path / f"{which}-{cid}.out", tmp_path / f"{which}-{cid}.err"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        created = subprocess.run([*command, "create", "-b", str(bundle), cid], stdin=subprocess.DEVNULL,
                                 stdout=out, stderr=err, timeout=60)
    try:
        if created.returncode != 0:
            return created.returncode, "", err_path.read_text()
        started = subprocess.run([*command, "start", cid], capture_output=True, text=True, timeout=60)
        if started.returncode != 0:
            return started.returncode, "", started.stderr
        deadline = time.monotonic() + 20
        while json.loads(subprocess.run([*command, "state", cid], capture_output=True, text=True,
                                        timeout=60).stdout or "{}").get("status") != "stopped":
            assert time.monotonic() < deadline, f"{which}: {cid} still running"
            time.sleep(0.05)
    finally:
        subprocess.run([*command, "delete", "--force", cid], capture_output=True, timeout=60)
    return 0, out_path.read_text(), err_path.read_text() if keep_stderr else ""


def both(tmp_path: Path, bundle: Path, process: dict[str, Any], cid: str) -> tuple[tuple[int, str, str], ...]:
    configure(bundle, process, cgroups_path=f"/{CGROUP_PARENT}/runc-{cid}")
    theirs = create_start(tmp_path, bundle, "runc", cid)
    configure(bundle, process)  # skiff-oci's default cgroup (under the session's parent)
    ours = create_start(tmp_path, bundle, "skiff", cid)
    return theirs, ours


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("capabilities", CAPABILITY_SETS)
def test_a_non_root_process_starts_as_with_runc(tmp_path: Path, runc_bundle: Path, capabilities: str,
                                                user: str) -> None:
    process = {"args": ["sh", "-c", SCRIPT], "user": USERS[user], "capabilities": CAPABILITY_SETS[capabilities]}
    theirs, ours = both(tmp_path, runc_bundle, process, "u1")
    assert theirs[0] == 0, theirs
    assert ours == theirs
    assert f"uid={USERS[user]['uid']}," in ours[1]


@pytest.mark.parametrize("no_new_privileges", [False, True])
def test_set_id_programs_as_with_runc(tmp_path: Path, runc_bundle: Path, no_new_privileges: bool) -> None:
    """A set-uid root program gets euid 0 (and no capabilities beyond the bounding set), unless
    noNewPrivileges; with no capabilities at all, as Kubernetes' restricted pods."""
    process = {"args": ["sh", "-c", SCRIPT], "user": USERS["user"], "capabilities": caps([]),
               "noNewPrivileges": no_new_privileges}
    theirs, ours = both(tmp_path, runc_bundle, process, "u2")
    assert ours == theirs
    set_id = ours[1].split("\n")[7]  # the second run of the helper
    assert set_id.startswith("uid=1000,1000,1000 gid=1000,1000,1000" if no_new_privileges
                             else "uid=1000,0,0 gid=1000,0,0"), ours[1]


def test_a_non_root_container_runs_and_execs_through_skiff_oci_run(tmp_path: Path, runc_bundle: Path) -> None:
    """``run`` (one command), then an exec whose --process names no capabilities: it gets the
    container's (runc's rule), not the runtime's full set."""
    configure(runc_bundle, {"args": ["sleep", "30"], "user": USERS["user"], "capabilities": caps(RUNC_DEFAULT_CAPS)})
    root = tmp_path / "state"
    assert skiff_oci(root, "run", "-d", "-b", str(runc_bundle), "u3", stdin=subprocess.DEVNULL).returncode == 0
    try:
        process = tmp_path / "process.json"
        process.write_text(json.dumps({"args": ["/bin/ids"], "cwd": "/", "user": {"uid": 0, "gid": 0}}))
        result = skiff_oci(root, "exec", "--process", str(process), "u3")
        assert result.returncode == 0, result.stderr
        assert "CapBnd:\t0000000020000420" in result.stdout and "CapEff:\t0000000020000420" in result.stdout
    finally:
        skiff_oci(root, "delete", "--force", "u3")


@pytest.mark.parametrize("user", ["user", "unknown"])
def test_an_exec_as_a_non_root_user_without_capabilities_as_with_runc(tmp_path: Path, runc_bundle: Path,
                                                                      user: str) -> None:
    """runc exec --process with a user of its own and no capabilities, in a container of runc's
    default capabilities: the same ids, groups and sets."""
    process_file = tmp_path / "process.json"
    process_file.write_text(json.dumps({"args": ["sh", "-c", SCRIPT], "cwd": "/", "env": ["PATH=/bin"],
                                        "user": {**USERS[user], "additionalGids": [10]}, "capabilities": caps([])}))
    outputs = []
    for which in ("runc", "skiff"):
        configure(runc_bundle, {"args": ["sleep", "30"]},
                  cgroups_path=f"/{CGROUP_PARENT}/runc-u6" if which == "runc" else "")
        command = [RUNC, "--root", str(tmp_path / "runc-state")] if which == "runc" else [
            sys.executable, "-m", "skiff.oci.main", "--root", str(tmp_path / "state")]
        with open(tmp_path / f"{which}-u6.log", "w") as log:
            started = subprocess.run([*command, "run", "-d", "-b", str(runc_bundle), "u6"], stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log, timeout=60)
        try:
            assert started.returncode == 0, (tmp_path / f"{which}-u6.log").read_text()
            executed = subprocess.run([*command, "exec", "--process", str(process_file), "u6"],
                                      capture_output=True, text=True, timeout=60)
            outputs.append((executed.returncode, executed.stdout))
        finally:
            subprocess.run([*command, "delete", "--force", "u6"], capture_output=True, timeout=60)
    assert outputs[0][0] == 0 and outputs[1] == outputs[0]
    assert f"uid={USERS[user]['uid']},0,0" in outputs[1][1]  # the set-uid helper, without no_new_privs


def _host_bounding() -> int:
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("CapBnd:")).split()[1], 16)


CAP_SYS_RESOURCE = 24


@pytest.mark.skipif(bool(_host_bounding() & (1 << CAP_SYS_RESOURCE)), reason="this host grants CAP_SYS_RESOURCE")
@pytest.mark.parametrize("where", ["bounding", "permitted", "effective", "inheritable", "ambient"])
def test_a_capability_the_host_withholds_is_left_out_with_a_warning(tmp_path: Path, runc_bundle: Path,
                                                                     where: str) -> None:
    """runc 1.1 starts a config asking CAP_SYS_RESOURCE only in the bounding set (which cannot
    grow: the capability is just absent) and fails any other with "unable to apply caps".
    skiff-oci starts both without it, saying so on stderr: runtime-tools' process_capabilities
    asks for every capability in every set, and would otherwise lose its 265 other checks."""
    capabilities = caps(["CAP_KILL"], ambient=True)
    capabilities[where].append("CAP_SYS_RESOURCE")
    if where == "ambient":  # else the kernel would refuse it for not being permitted and inheritable
        capabilities["permitted"].append("CAP_SYS_RESOURCE")
        capabilities["inheritable"].append("CAP_SYS_RESOURCE")
    process = {"args": ["/bin/ids"], "user": {"uid": 0, "gid": 0}, "capabilities": capabilities}
    configure(runc_bundle, process, cgroups_path=f"/{CGROUP_PARENT}/runc-u4")
    theirs = create_start(tmp_path, runc_bundle, "runc", "u4")
    configure(runc_bundle, process)
    ours = create_start(tmp_path, runc_bundle, "skiff", "u4", keep_stderr=True)
    assert ours[0] == 0, ours
    assert ("CAP_SYS_RESOURCE" in ours[2] and "level=warning" in ours[2]) == (where != "bounding"), ours[2]
    assert "CapBnd:\t0000000000000020" in ours[1]
    if where == "bounding":
        assert ours[:2] == theirs[:2]
    else:
        assert theirs[0] != 0 and "unable to apply caps: operation not permitted" in theirs[2]
        assert "CapEff:\t0000000000000020" in ours[1] and "CapPrm:\t0000000000000020" in ours[1]


def test_an_effective_set_beyond_the_permitted_one_fails_as_with_runc(tmp_path: Path, runc_bundle: Path) -> None:
    capabilities = caps(["CAP_KILL"])
    capabilities["effective"].append("CAP_CHOWN")
    process = {"args": ["/bin/ids"], "user": {"uid": 1000, "gid": 1000}, "capabilities": capabilities}
    theirs, ours = both(tmp_path, runc_bundle, process, "u5")
    assert theirs[0] != 0 and "unable to apply caps: operation not permitted" in theirs[2], theirs
    assert ours[0] != 0 and "unable to apply caps: operation not permitted" in ours[2], ours
    assert not (tmp_path / "state" / "u5").exists()
