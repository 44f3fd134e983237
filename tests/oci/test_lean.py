"""skiff-oci's lifecycle commands stay lean: each is a process of its own, run for every container."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from skiff.runtime import jsonlite

REPO = Path(__file__).resolve().parent.parent.parent
# Modules that cost milliseconds at import and that state, start, kill and delete do not need.
HEAVY = {"argparse", "typing", "pathlib", "json", "re", "enum", "socket", "shutil", "dataclasses",
         "skiff.runtime.init", "skiff.runtime.spec", "skiff.linux", "skiff.store", "ctypes"}


@pytest.mark.parametrize("command", [["state", "nope"], ["start", "nope"], ["kill", "nope", "KILL"],
                                     ["delete", "--force", "nope"], ["--log-format", "json", "state", "nope"]])
def test_lifecycle_commands_import_nothing_heavy(tmp_path: Path, command: list[str]) -> None:
    probe = ("import sys\n"
             f"sys.path[0:0] = [{str(REPO)!r}]\n"
             "from skiff.oci.main import main\n"
             f"code = main(['--root', {str(tmp_path / 'state')!r}, *{command!r}])\n"
             "print(sorted(sys.modules), file=sys.stderr)\n"
             "print(code)\n")
    # -S: no site, as the launcher scripts/setup writes; -E: nothing from the environment.
    result = subprocess.run([sys.executable, "-S", "-E", "-c", probe], capture_output=True, text=True, timeout=30)
    loaded = set(eval(result.stderr.strip().splitlines()[-1]))  # noqa: S307 - our own repr of a list
    assert result.stdout.strip() in ("0", "1"), result.stderr
    assert not loaded & HEAVY, f"{command[0]} imported {sorted(loaded & HEAVY)}"


@pytest.mark.parametrize("value", [
    {"ociVersion": "1.0.2", "id": "c1", "pid": 42, "annotations": {}, "hooks": None, "paused": False,
     "config": {"process": {"args": ["sh", "-c", "echo \"é\"\n"], "env": []}, "seccomp": None}},
    [], {}, "text", [1, -2, 3.5, True, None, [{}]],
])
def test_jsonlite_agrees_with_json(value: object) -> None:
    for indent in (None, 2):
        assert jsonlite.dumps(value, indent) == json.dumps(value, indent=indent)
        assert jsonlite.loads(json.dumps(value, indent=indent)) == value


@pytest.mark.parametrize("text", ["", "{not json", "{} extra", "[1,", "nope"])
def test_jsonlite_refuses_what_json_refuses_with_jsons_message(text: str) -> None:
    with pytest.raises(ValueError) as ours:
        jsonlite.loads(text)
    with pytest.raises(ValueError) as theirs:
        json.loads(text)
    assert str(ours.value) == str(theirs.value)


def test_delete_removes_the_cgroup_without_the_cgroup_package(tmp_path: Path, busybox_rootfs: Path) -> None:
    """delete of a stopped container rmdirs the cgroup directories create recorded: importing
    skiff.cgroups (and parsing mountinfo) would cost milliseconds of every container's delete."""
    from skiff.runtime import Runtime, default_spec

    bundle = tmp_path / "bundle"
    shutil.copytree(busybox_rootfs, bundle / "rootfs", symlinks=True)
    spec = default_spec()
    spec["process"]["args"] = ["true"]
    (bundle / "config.json").write_text(json.dumps(spec))
    state = tmp_path / "state"
    runtime = Runtime(state)
    pid = runtime.create("lean", bundle, stdio=(0, 1, 2))
    try:
        dirs = json.loads((state / "lean" / "state.json").read_text())["cgroupDirs"]
        assert dirs and all(Path(d).is_dir() for d in dirs)
        runtime.start("lean")
        os.waitpid(pid, 0)
        result = subprocess.run([sys.executable, "-S", "-E", "-c", _probe(state, ["delete", "lean"])],
                                capture_output=True, text=True, timeout=30)
    finally:
        if (state / "lean").exists():
            runtime.delete("lean", force=True)
    assert result.stdout.strip() == "0", result.stderr
    loaded = set(eval(result.stderr.strip().splitlines()[-1]))  # noqa: S307 - our own repr of a list
    assert not {m for m in loaded if m.startswith("skiff.cgroups")}, "delete imported skiff.cgroups"
    assert not [d for d in dirs if Path(d).exists()]
    assert not (state / "lean").exists()


def _probe(state: Path, command: list[str]) -> str:
    return ("import sys\n"
            f"sys.path[0:0] = [{str(REPO)!r}]\n"
            "from skiff.oci.main import main\n"
            f"code = main(['--root', {str(state)!r}, *{command!r}])\n"
            "print(sorted(sys.modules), file=sys.stderr)\n"
            "print(code)\n")


def test_the_cgroup_package_loads_neither_collections_nor_functools() -> None:
    """create and skiff run import skiff.cgroups: under python -S, collections (namedtuple,
    collections.abc) and functools (lru_cache) would add about a millisecond to each."""
    probe = ("import sys\n"
             f"sys.path[0:0] = [{str(REPO)!r}]\n"
             "import skiff.cgroups, skiff.cgroups.v1, skiff.cgroups.v2\n"
             "setup = skiff.cgroups.detect()\n"
             "assert setup.mode in ('v1', 'v2', 'hybrid') and setup == tuple(setup)\n"
             "print(sorted(sys.modules))\n")
    result = subprocess.run([sys.executable, "-S", "-E", "-c", probe], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    loaded = set(eval(result.stdout.strip().splitlines()[-1]))  # noqa: S307 - our own repr of a list
    assert not loaded & {"collections", "functools", "typing"}, sorted(loaded & {"collections", "functools"})
