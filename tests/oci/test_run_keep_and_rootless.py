"""``skiff-oci run --keep`` and ``skiff-oci spec --rootless`` beside runc's."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.oci.test_cli import RUNC, skiff_oci
from tests.oci.test_runc_behaviours import Runtimes, runtimes  # noqa: F401 - the fixture


def test_run_keep_leaves_the_container_stopped_until_delete(runtimes: Runtimes) -> None:
    runtimes.write(runtimes.spec(["sh", "-c", "echo kept; exit 5"]), "c1")
    for name, bundle in runtimes.bundles.items():
        cid = f"{name}-c1"
        result = runtimes.command(name, "run", "--keep", "--bundle", str(bundle), cid, stdin=subprocess.DEVNULL)
        assert (result.returncode, result.stdout) == (5, "kept\n"), (name, result.stderr)
        state = runtimes.state(name, cid)
        assert state is not None and state["status"] == "stopped", name
        assert runtimes.command(name, "list", "-q").stdout.split() == [cid]
        assert runtimes.command(name, "delete", cid).returncode == 0
        assert runtimes.state(name, cid) is None
        cgroup = Path(f"/sys/fs/cgroup/pids/{os.environ['SKIFF_CGROUP_PARENT']}/{cid}")
        assert not cgroup.exists(), name  # delete removed it


def _spec(tmp_path: Path, runtime: str, *args: str) -> dict[str, Any]:
    bundle = tmp_path / runtime / "-".join(args or ("plain",))
    bundle.mkdir(parents=True)
    if runtime == "runc":
        subprocess.run([RUNC, "spec", "--bundle", str(bundle), *args], check=True)
    else:
        result = skiff_oci(tmp_path / "state", "spec", "--bundle", str(bundle), *args)
        assert result.returncode == 0, result.stderr
    spec: dict[str, Any] = json.loads((bundle / "config.json").read_text())
    return spec


def _namespaces(spec: dict[str, Any]) -> set[str]:
    return {ns["type"] for ns in spec["linux"]["namespaces"]}


def test_spec_rootless_makes_what_runcs_makes(tmp_path: Path) -> None:
    ours, theirs = _spec(tmp_path, "skiff", "--rootless"), _spec(tmp_path, "runc", "--rootless")
    plain, runcs_plain = _spec(tmp_path, "skiff"), _spec(tmp_path, "runc")
    # Each default spec loses its network namespace and gains a user one (skiff's default has a
    # cgroup namespace, runc 1.1's has none).
    assert _namespaces(ours) == _namespaces(plain) - {"network"} | {"user"}
    assert _namespaces(theirs) == _namespaces(runcs_plain) - {"network"} | {"user"}
    for key in ("uidMappings", "gidMappings"):
        assert ours["linux"][key] == theirs["linux"][key]
    assert ours["linux"]["uidMappings"] == [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
    sys_mount = [m for m in ours["mounts"] if m["destination"] == "/sys"]
    assert sys_mount == [m for m in theirs["mounts"] if m["destination"] == "/sys"]
    assert not [o for m in ours["mounts"] for o in m.get("options", []) if o.startswith(("uid=", "gid="))]
    assert "resources" not in ours["linux"]
    # Everything else is the plain spec's.
    assert ours["process"] == plain["process"] and ours["root"] == plain["root"]
    assert [m["destination"] for m in ours["mounts"]] == [m["destination"] for m in plain["mounts"]]


def test_a_rootless_spec_runs_on_both_runtimes(runtimes: Runtimes, tmp_path: Path) -> None:
    spec = _spec(tmp_path, "skiff", "--rootless")
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["sh", "-c", "cat /proc/self/uid_map; readlink /proc/self/ns/net"]
    results = runtimes.run(spec)
    host_net = os.readlink("/proc/self/ns/net")
    for name, result in results.items():
        assert result.returncode == 0, (name, result.stderr)
        assert result.stdout.split() == ["0", str(os.geteuid()), "1", host_net], name
