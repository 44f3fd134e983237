"""Behaviours where skiff-oci must do what runc does (issue 18, item 6), each run on both runtimes.

Every test gives runc (/usr/sbin/runc) and skiff-oci the same config on two copies of one
busybox bundle and compares what the container printed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from skiff.runtime import default_spec
from tests.oci.test_cli import RUNC, skiff_oci

MAPPED_ROOT = 100000  # host uid of the container's root in the user namespace tests


class Runtimes:
    """runc and skiff-oci, each with its own state root and bundle, under one world-traversable
    directory (in a user namespace, the container's root is no one on the host)."""

    def __init__(self, base: Path, rootfs: Path) -> None:
        self.base = base
        self.rootfs = rootfs
        self.bundles: dict[str, Path] = {}
        for name in ("runc", "skiff"):
            bundle = base / name
            shutil.copytree(rootfs, bundle / "rootfs", symlinks=True)
            self.bundles[name] = bundle

    def spec(self, args: list[str]) -> dict[str, Any]:
        spec = default_spec()
        spec["process"]["args"] = args
        return spec

    def each_rootfs(self, change: Callable[[Path], None]) -> None:
        for bundle in self.bundles.values():
            change(bundle / "rootfs")

    def write(self, spec: dict[str, Any], cid: str) -> None:
        for name, bundle in self.bundles.items():
            spec = json.loads(json.dumps(spec))
            spec["linux"]["cgroupsPath"] = f"/{os.environ['SKIFF_CGROUP_PARENT']}/{name}-{cid}"
            (bundle / "config.json").write_text(json.dumps(spec))

    def command(self, name: str, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        if name == "skiff":
            return skiff_oci(self.base / "skiff-state", *args, **kwargs)
        return subprocess.run([RUNC, "--root", str(self.base / "runc-state"), *args], capture_output=True,
                              text=True, timeout=30, **kwargs)

    def run(self, spec: dict[str, Any], cid: str = "c1") -> dict[str, subprocess.CompletedProcess[str]]:
        """``run`` on both: {"runc": result, "skiff": result}."""
        self.write(spec, cid)
        return {name: self.command(name, "run", "--bundle", str(bundle), f"{name}-{cid}", stdin=subprocess.DEVNULL)
                for name, bundle in self.bundles.items()}

    def create(self, spec: dict[str, Any], cid: str = "c1") -> None:
        self.write(spec, cid)
        for name, bundle in self.bundles.items():
            out = self.base / f"{name}-{cid}.out"
            with open(out, "w") as stdio:  # the init keeps its stdio: a file, never a pipe we wait on
                result = subprocess.run(self._argv(name, "create", "--bundle", str(bundle), f"{name}-{cid}"),
                                        stdin=subprocess.DEVNULL, stdout=stdio, stderr=stdio, timeout=30)
            assert result.returncode == 0, f"{name}: {out.read_text()}"

    def _argv(self, name: str, *args: str) -> list[str]:
        if name == "skiff":
            import sys

            return [sys.executable, "-m", "skiff.oci.main", "--root", str(self.base / "skiff-state"), *args]
        return [RUNC, "--root", str(self.base / "runc-state"), *args]

    def state(self, name: str, cid: str) -> dict[str, Any] | None:
        result = self.command(name, "state", cid)
        return json.loads(result.stdout) if result.returncode == 0 else None

    def cleanup(self) -> None:
        for name in self.bundles:
            listed = self.command(name, "list", "-q").stdout.split()
            for cid in listed:
                self.command(name, "delete", "--force", cid)


@pytest.fixture
def runtimes(busybox_rootfs: Path) -> Iterator[Runtimes]:
    base = Path(tempfile.mkdtemp(prefix="skiff-runc-behaviours-", dir="/tmp"))
    base.chmod(0o755)
    both = Runtimes(base, busybox_rootfs)
    try:
        yield both
    finally:
        both.cleanup()
        shutil.rmtree(base)


def outputs(results: dict[str, subprocess.CompletedProcess[str]]) -> dict[str, tuple[int, str]]:
    return {name: (result.returncode, result.stdout) for name, result in results.items()}


def assert_same(results: dict[str, subprocess.CompletedProcess[str]], expected: tuple[int, str]) -> None:
    assert outputs(results) == {"runc": expected, "skiff": expected}, \
        {name: result.stderr for name, result in results.items()}


# --- process.cwd on a read-only root ----------------------------------------------------------


def test_a_missing_cwd_is_made_before_the_root_turns_read_only(runtimes: Runtimes) -> None:
    spec = runtimes.spec(["sh", "-c", "pwd; touch . 2>/dev/null || echo read-only"])
    spec["root"]["readonly"] = True
    spec["process"]["cwd"] = "/work/deep/here"
    assert_same(runtimes.run(spec), (0, "/work/deep/here\nread-only\n"))


# --- HOME from /etc/passwd ----------------------------------------------------------------------


@pytest.mark.parametrize("uid, env_home, home", [
    (0, None, "/root"),            # root's entry
    (1000, None, "/home/user"),    # user's entry
    (4242, None, "/"),             # no entry: runc's default
    (1000, "", "/home/user"),      # an empty HOME is replaced too
])
def test_home_comes_from_the_containers_passwd_when_the_env_has_none(runtimes: Runtimes, uid: int,
                                                                      env_home: str | None, home: str) -> None:
    spec = runtimes.spec(["sh", "-c", 'echo "$HOME"'])
    spec["process"]["user"] = {"uid": uid, "gid": uid}
    spec["process"]["env"] = ["PATH=/bin:/usr/bin"] + ([f"HOME={env_home}"] if env_home is not None else [])
    assert_same(runtimes.run(spec), (0, f"{home}\n"))


def test_exec_gets_home_from_passwd_too(runtimes: Runtimes) -> None:
    spec = runtimes.spec(["sleep", "30"])
    spec["process"]["env"] = ["PATH=/bin:/usr/bin"]
    runtimes.create(spec)
    results = {}
    for name in ("runc", "skiff"):
        assert runtimes.command(name, "start", f"{name}-c1").returncode == 0
        home = runtimes.command(name, "exec", "--user", "1000", f"{name}-c1", "sh", "-c", 'echo "$HOME"')
        given = runtimes.command(name, "exec", "--env", "HOME=/mine", f"{name}-c1", "sh", "-c", 'echo "$HOME"')
        results[name] = subprocess.CompletedProcess(home.args, home.returncode + given.returncode,
                                                    home.stdout + given.stdout, home.stderr + given.stderr)
    assert_same(results, (0, "/home/user\n/mine\n"))  # a HOME the process has stays


# --- tmpfs without mode= -----------------------------------------------------------------------


def test_a_tmpfs_without_mode_takes_the_mode_of_the_directory_it_covers(runtimes: Runtimes) -> None:
    def directories(rootfs: Path) -> None:
        for name, mode in (("private", 0o700), ("shared", 0o2775)):
            (rootfs / name).mkdir()
            (rootfs / name).chmod(mode)

    runtimes.each_rootfs(directories)
    spec = runtimes.spec(["stat", "-c", "%n %a", "/private", "/shared", "/fresh", "/given"])
    spec["mounts"] += [{"destination": f"/{name}", "type": "tmpfs", "source": "tmpfs", "options": options}
                       for name, options in (("private", ["nosuid"]), ("shared", ["nodev"]), ("fresh", []),
                                             ("given", ["mode=750"]))]
    assert_same(runtimes.run(spec), (0, "/private 700\n/shared 2775\n/fresh 1777\n/given 750\n"))


# --- bind sources out of the mapped root's reach -------------------------------------------------


def _with_user_namespace(runtimes: Runtimes, spec: dict[str, Any]) -> None:
    spec["linux"]["namespaces"].append({"type": "user"})
    for key in ("uidMappings", "gidMappings"):
        spec["linux"][key] = [{"containerID": 0, "hostID": MAPPED_ROOT, "size": 65536}]
    # /sys/fs/cgroup: a v1 hierarchy cannot be mounted in a user namespace (runc fails on it)
    spec["mounts"] = [m for m in spec["mounts"] if m["destination"] != "/sys/fs/cgroup"]

    def owned_by_mapped_root(rootfs: Path) -> None:
        for path in [rootfs, *rootfs.rglob("*")]:
            st = os.lstat(path)
            os.lchown(path, st.st_uid + MAPPED_ROOT, st.st_gid + MAPPED_ROOT)

    runtimes.each_rootfs(owned_by_mapped_root)


def test_a_bind_source_the_mapped_root_cannot_reach_is_mounted_in_a_user_namespace(runtimes: Runtimes) -> None:
    hidden = runtimes.base / "hidden"  # 0700, the host root's: the mapped root cannot search it
    (hidden / "data").mkdir(parents=True)
    hidden.chmod(0o700)
    (hidden / "data" / "file").write_text("reached\n")
    spec = runtimes.spec(["cat", "/data/file", "/one"])
    (hidden / "one").write_text("single file\n")
    spec["mounts"] += [{"destination": "/data", "type": "bind", "source": str(hidden / "data"),
                        "options": ["rbind", "ro"]},
                       {"destination": "/one", "type": "bind", "source": str(hidden / "one"), "options": ["bind"]}]
    _with_user_namespace(runtimes, spec)
    assert_same(runtimes.run(spec), (0, "reached\nsingle file\n"))
    # A source that does not exist is named, and nothing is left.
    spec["mounts"][-1]["source"] = str(hidden / "nope")
    result = runtimes.run(spec, "c2")["skiff"]
    assert result.returncode == 1 and str(hidden / "nope") in result.stderr, result.stderr
    assert runtimes.command("skiff", "list", "-q").stdout == ""


# --- hooks without env -------------------------------------------------------------------------


def test_a_hook_without_env_gets_the_runtimes_environment(runtimes: Runtimes) -> None:
    out = runtimes.base / "hook-env"
    hook = runtimes.base / "hook.sh"
    hook.write_text(f'#!/bin/sh\necho "$1 ${{SKIFF_HOOK_PROBE:-unset}} ${{ONLY:-unset}}" >> {out}\n')
    hook.chmod(0o755)
    spec = runtimes.spec(["true"])
    spec["process"]["env"].append("ONLY=process")
    spec["hooks"] = {"prestart": [{"path": str(hook), "args": ["hook", "no-env"]},
                                  {"path": str(hook), "args": ["hook", "own-env"], "env": ["ONLY=1"]},
                                  {"path": str(hook), "args": ["hook", "empty-env"], "env": []}],
                     # run by the init: the container process's environment, as runc's init has it
                     "createContainer": [{"path": str(hook), "args": ["hook", "create-container"]}],
                     "poststop": [{"path": str(hook), "args": ["hook", "poststop"]}]}
    env = {**os.environ, "SKIFF_HOOK_PROBE": "inherited"}
    runtimes.write(spec, "c1")
    lines = {}
    for name, bundle in runtimes.bundles.items():
        out.write_text("")
        result = runtimes.command(name, "run", "--bundle", str(bundle), f"{name}-c1", stdin=subprocess.DEVNULL,
                                  env=env)
        assert result.returncode == 0, result.stderr
        lines[name] = out.read_text()
    expected = ("no-env inherited unset\nown-env unset 1\nempty-env unset unset\n"
                "create-container unset process\npoststop inherited unset\n")
    assert lines == {"runc": expected, "skiff": expected}


# --- devices outside /dev ------------------------------------------------------------------------


def test_a_device_outside_dev_is_made_inside_the_root(runtimes: Runtimes) -> None:
    spec = runtimes.spec(["sh", "-c", "stat -c '%n %F %t:%T %a' /devices/null /dev/mynull; "
                                      "echo hi > /devices/null && echo written"])
    spec["linux"]["devices"] = [
        {"path": "/devices/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666},
        {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640},
    ]
    expected = "/devices/null character special file 1:3 666\n/dev/mynull character special file 1:3 640\nwritten\n"
    assert_same(runtimes.run(spec), (0, expected))
    assert not Path("/devices").exists()  # made in the container's root, not the host's


def test_a_device_path_through_a_symlink_stays_in_the_root(runtimes: Runtimes) -> None:
    runtimes.each_rootfs(lambda rootfs: (rootfs / "escape").symlink_to("/../../../../tmp"))
    spec = runtimes.spec(["stat", "-c", "%F", "/tmp/skiff-escape-null"])
    spec["linux"]["devices"] = [{"path": "/escape/skiff-escape-null", "type": "c", "major": 1, "minor": 3}]
    result = runtimes.run(spec)["skiff"]
    assert (result.returncode, result.stdout) == (0, "character special file\n"), result.stderr
    assert not Path("/tmp/skiff-escape-null").exists()


# --- kernel.domainname ------------------------------------------------------------------------------


def test_kernel_domainname_is_set_in_a_new_uts_namespace(runtimes: Runtimes) -> None:
    spec = runtimes.spec(["cat", "/proc/sys/kernel/domainname"])
    spec["linux"]["sysctl"] = {"kernel.domainname": "example.test"}
    assert_same(runtimes.run(spec), (0, "example.test\n"))


def test_kernel_domainname_without_a_uts_namespace_and_kernel_hostname_are_refused(runtimes: Runtimes) -> None:
    spec = runtimes.spec(["true"])
    spec["linux"]["sysctl"] = {"kernel.domainname": "example.test"}
    spec["linux"]["namespaces"] = [ns for ns in spec["linux"]["namespaces"] if ns["type"] != "uts"]
    spec.pop("hostname", None)
    results = runtimes.run(spec)
    assert {name: r.returncode for name, r in results.items()} == {"runc": 1, "skiff": 1}
    assert "not in a separate kernel namespace" in results["skiff"].stderr
    spec = runtimes.spec(["true"])
    spec["linux"]["sysctl"] = {"kernel.hostname": "other"}
    results = runtimes.run(spec, "c2")
    assert {name: r.returncode for name, r in results.items()} == {"runc": 1, "skiff": 1}
    assert "conflicts with the OCI" in results["skiff"].stderr and "hostname" in results["skiff"].stderr


# --- delete of a created container --------------------------------------------------------------


def test_delete_of_a_created_container_kills_its_init_and_deletes_it(runtimes: Runtimes) -> None:
    runtimes.create(runtimes.spec(["sleep", "30"]))
    for name in ("runc", "skiff"):
        cid = f"{name}-c1"
        state = runtimes.state(name, cid)
        assert state is not None and state["status"] == "created", runtimes.command(name, "state", cid)
        result = runtimes.command(name, "delete", cid)
        assert result.returncode == 0, (name, result.stderr)
        assert runtimes.state(name, cid) is None
        for _ in range(50):  # reaped by whoever is its parent now
            if not Path(f"/proc/{state['pid']}").exists() or "Z" in _proc_state(state["pid"]):
                break
            time.sleep(0.1)
        assert not Path(f"/proc/{state['pid']}").exists() or "Z" in _proc_state(state["pid"]), name
    # A running one is still refused without --force.
    runtimes.create(runtimes.spec(["sleep", "30"]), "c2")
    for name in ("runc", "skiff"):
        assert runtimes.command(name, "start", f"{name}-c2").returncode == 0
        result = runtimes.command(name, "delete", f"{name}-c2")
        assert result.returncode == 1 and "not stopped" in result.stderr, (name, result.stderr)


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"

