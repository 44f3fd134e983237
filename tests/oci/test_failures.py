"""skiff-oci's errors where runc gives one: an unusable --log, a frozen init at delete --force, a bad cgroupsPath."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from skiff.runtime import default_spec
from tests.conftest import CGROUP_PARENT
from tests.oci.test_cli import RUNC, oci_bundle, root, skiff_oci  # noqa: F401 - fixtures

FREEZER = Path("/sys/fs/cgroup/freezer")


@pytest.mark.parametrize("log", ["/nonexistent/dir/log.json", "/"], ids=["missing-dir", "a-directory"])
def test_an_unusable_log_fails_the_command_as_with_runc(tmp_path: Path, root: Path, oci_bundle: Path,
                                                         log: str) -> None:
    theirs = subprocess.run([RUNC, "--root", str(tmp_path / "runc-state"), "--log", log, "list"],
                            capture_output=True, text=True, timeout=60)
    ours = skiff_oci(root, "--log", log, "list")
    assert ours.returncode == theirs.returncode == 1
    assert f'msg="open {log}: ' in ours.stderr and ours.stderr.split("msg=")[1] == theirs.stderr.split("msg=")[1]
    created = skiff_oci(root, "--log", log, "create", "-b", str(oci_bundle), "lg1", stdin=subprocess.DEVNULL)
    assert created.returncode == 1 and not (root / "lg1").exists()


def test_a_usable_log_gets_the_errors(tmp_path: Path, root: Path) -> None:
    log = tmp_path / "log.json"
    result = skiff_oci(root, "--log", str(log), "--log-format", "json", "start", "nope")
    assert result.returncode == 1
    assert json.loads(log.read_text().splitlines()[-1])["level"] == "error"


def _freeze(directory: Path, state: str) -> None:
    (directory / "freezer.state").write_text(state)


@pytest.mark.skipif(not FREEZER.is_dir(), reason="needs this host's cgroup v1 freezer")
def test_delete_force_gives_up_on_an_init_frozen_above_its_cgroup(root: Path, oci_bundle: Path) -> None:
    """runc's delete --force waits 10 s for the init after SIGKILL, then says so; skiff-oci blocked forever."""
    spec = default_spec()
    spec["process"]["args"] = ["sleep", "300"]
    spec["linux"]["cgroupsPath"] = f"/{CGROUP_PARENT}/frozen-above/fz1"
    (oci_bundle / "config.json").write_text(json.dumps(spec))
    assert skiff_oci(root, "run", "-d", "-b", str(oci_bundle), "fz1", stdin=subprocess.DEVNULL).returncode == 0
    above = FREEZER / CGROUP_PARENT / "frozen-above"
    _freeze(above, "FROZEN")
    try:
        started = time.monotonic()
        result = skiff_oci(root, "delete", "--force", "fz1", timeout=30)
        took = time.monotonic() - started
        assert result.returncode == 1 and "container init still running" in result.stderr, result.stderr
        assert 9 < took < 20, took
        assert json.loads(skiff_oci(root, "state", "fz1").stdout)["status"] != "stopped"
    finally:
        _freeze(above, "THAWED")
    assert skiff_oci(root, "delete", "--force", "fz1").returncode == 0
    assert not (root / "fz1").exists()
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        try:
            os.rmdir(hierarchy / CGROUP_PARENT / "frozen-above")
        except FileNotFoundError:
            pass


@pytest.mark.skipif(not FREEZER.is_dir(), reason="needs this host's cgroup v1 freezer")
def test_delete_force_thaws_an_init_frozen_behind_its_back(root: Path, oci_bundle: Path) -> None:
    """Frozen by a write to its own freezer.state, not by pause: delete --force thaws it and goes on."""
    spec = default_spec()
    spec["process"]["args"] = ["sleep", "300"]
    (oci_bundle / "config.json").write_text(json.dumps(spec))
    assert skiff_oci(root, "run", "-d", "-b", str(oci_bundle), "fz2", stdin=subprocess.DEVNULL).returncode == 0
    own = FREEZER / CGROUP_PARENT / "fz2"
    _freeze(own, "FROZEN")
    started = time.monotonic()
    try:
        result = skiff_oci(root, "delete", "--force", "fz2", timeout=30)
    finally:
        if own.is_dir():
            _freeze(own, "THAWED")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 8
    assert not own.exists() and not (root / "fz2").exists()


def test_a_cgroups_path_with_a_nul_byte_says_so(root: Path, oci_bundle: Path) -> None:
    spec = default_spec()
    spec["linux"]["cgroupsPath"] = f"/{CGROUP_PARENT}/a\u0000b"
    (oci_bundle / "config.json").write_text(json.dumps(spec))
    result = skiff_oci(root, "create", "-b", str(oci_bundle), "nul1", stdin=subprocess.DEVNULL)
    assert result.returncode == 1 and "NUL byte" in result.stderr and "'..'" not in result.stderr, result.stderr
    assert not (root / "nul1").exists()
