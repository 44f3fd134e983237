"""``skiff check`` for real, through the installed command: on this host every requirement that
the host meets says ok, the rest says why (and the tests say which those are from the host's own
files), nothing is left behind, and a host that fails one exits 1.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from skiff.cgroups.detect import detect
from tests.e2e.test_installed import Installed, launcher  # noqa: F401 - launcher is a fixture

@pytest.fixture
def user(launcher: Path, skiff_env: dict[str, str]) -> Installed:  # noqa: F811 - the imported fixture
    return Installed(launcher, skiff_env)


def _rows(text: str) -> list[tuple[str, str, str]]:
    """(status, name, detail) of each line of the human output (fix lines and the count left out)."""
    rows = []
    for line in text.splitlines()[:-1]:
        if line.startswith(" "):
            assert line.strip().startswith("fix: "), line
            continue
        status, name, *detail = line.split(None, 2)
        rows.append((status, name, detail[0] if detail else ""))
    return rows


def _has_range(kind: str, user: str = "root") -> bool:
    try:
        lines = Path(f"/etc/{kind}").read_text().splitlines()
    except FileNotFoundError:
        return False
    return sum(int(f[2]) for f in (line.split(":") for line in lines) if len(f) == 3 and f[0] in (user, "0")) >= 65536


def _controller_here(name: str) -> bool:
    setup = detect()
    if setup.mode == "v2":
        assert setup.unified is not None
        return name in Path(setup.unified, "cgroup.controllers").read_text().split()
    return setup.v1_mount(name) is not None


def _sysctl(key: str) -> str | None:
    try:
        return Path("/proc/sys", key.replace(".", "/")).read_text().strip()
    except FileNotFoundError:
        return None


def _loads(soname: str) -> bool:
    import ctypes

    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


# a line -> the value of its knob that makes it warn
USERNS_WARN = {"userns.max_user_namespaces": ("user.max_user_namespaces", "0"),
               "userns.unprivileged_clone": ("kernel.unprivileged_userns_clone", "0"),
               "userns.apparmor": ("kernel.apparmor_restrict_unprivileged_userns", "1")}


def expected_status(name: str) -> str:
    """What this host should get for ``name``, from its own files."""
    if name == "kernel":
        release = tuple(int(n) for n in os.uname().release.split("-")[0].split(".")[:2])
        return "ok" if release >= (6, 6) else "warn"
    if name in USERNS_WARN:
        key, bad = USERNS_WARN[name]
        return "warn" if _sysctl(key) == bad else "ok"
    if name == "libnftables":
        return "ok" if _loads("libnftables.so.1") else "warn"
    if name == "tini":
        return "ok" if os.access("/usr/bin/tini-static", os.X_OK) else "warn"
    if name in ("subuid", "subgid"):
        return "ok" if _has_range(name) else "warn"
    if name == "net.ipv4.ip_forward":
        return "ok" if Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == "1" else "warn"
    if name.startswith("cgroup.") and name not in ("cgroup.mode", "cgroup.delegation"):
        return "ok" if _controller_here(name.split(".", 1)[1]) else "warn"
    return "ok"


def test_check_reports_what_this_host_has(user: Installed) -> None:
    proc = user("check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == ""
    rows = _rows(proc.stdout)
    statuses = {name: status for status, name, _ in rows}
    assert {name: expected_status(name) for name in statuses} == statuses
    for required in ("root", "kernel", "namespace.mnt", "namespace.pid", "namespace.net", "namespace.cgroup",
                     "cgroup.mode", "cgroup.delegation", "device-filter", "overlay", "openat2", "mount_setattr",
                     "seccomp", "firewall", "route_localnet", "disk", "python.seccomp"):
        assert statuses[required] == "ok", required
    details = {name: detail for _, name, detail in rows}
    assert details["cgroup.mode"].startswith(detect().mode)
    assert details["kernel"] == os.uname().release
    assert str(user.root) in details["disk"]
    counts = proc.stdout.splitlines()[-1]
    assert counts == (f"{list(statuses.values()).count('ok')} ok, {list(statuses.values()).count('warn')} warn, "
                      "0 fail: skiff can run containers here")
    # aligned: every name starts in one column, every detail in another
    lines = [line for line in proc.stdout.splitlines()[:-1] if not line.startswith(" ")]
    assert len({line.index(name) for line, (_, name, _) in zip(lines, rows)}) == 1
    assert len({line.index(detail) for line, (_, _, detail) in zip(lines, rows) if detail}) == 1


def test_json_is_the_same_report(user: Installed) -> None:
    text = user("check")
    proc = user("check", "--json")
    assert proc.returncode == 0
    document = json.loads(proc.stdout)
    assert isinstance(document, list)
    assert all(list(entry) == ["name", "status", "detail", "fix"] for entry in document)
    # the same lines (the free space aside: other programs write meanwhile)
    assert [(e["status"], e["name"], e["detail"]) for e in document if e["name"] != "disk"] == \
        [row for row in _rows(text.stdout) if row[1] != "disk"]
    assert [e["name"] for e in document] == [row[1] for row in _rows(text.stdout)]
    assert all((entry["fix"] == "") == (entry["status"] == "ok") for entry in document)


def _scratch_dirs() -> set[str]:
    return {name for name in os.listdir("/tmp") if name.startswith("skiff-check-")}


def _mount_lines() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split(" - ")[0].split(" ", 4)[4] for line in f]


def test_check_leaves_nothing_behind(user: Installed) -> None:
    """The probes clone and idmap a mount, load an eBPF program, make namespaces and an overlay in a
    child: none of it may outlive the command (nor the skiff root it only looks at)."""
    scratch, mounts = _scratch_dirs(), _mount_lines()
    files = sorted(user.root.rglob("*"))
    user.ok("check")
    assert _scratch_dirs() == scratch
    assert [m for m in _mount_lines() if str(user.root.parent) in m] == \
        [m for m in mounts if str(user.root.parent) in m]
    assert sorted(user.root.rglob("*")) == files   # it only looks at the root: it makes nothing there


def test_a_host_that_fails_a_requirement_exits_1(user: Installed, tmp_path: Path) -> None:
    """A skiff root on a 1 MiB tmpfs (in a mount namespace of the test's own): the disk line fails."""
    small = tmp_path / "small"
    small.mkdir()
    script = f'mount -t tmpfs -o size=1m skiff-check-test {small} && exec "$@"'
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, "sh",
                           str(user.launcher), "--root", str(small / "root"), "check"],
                          env=user.env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    disk = [line for line in proc.stdout.splitlines() if " disk " in f" {line} "]
    assert disk and disk[0].startswith("fail") and "tmpfs" in disk[0]
    assert proc.stdout.splitlines()[-1].endswith("1 fail: skiff cannot run containers here")
