"""Escape 3 (CVE-2019-5736): the host's interpreter overwritten through /proc/PID/exe.

skiff's init and exec child are Python processes inside the container until they
execve the container's program. A process in the container that opens their
/proc/PID/exe gets the host's interpreter and, once no one runs it any more
(ETXTBSY is the only guard), writes it. Here the interpreter is a COPY, run by a
launcher of its own (never the real /usr/bin/python3.11): a container process waits
for a skiff child to appear, tries to read its exe link and hold its exe open, then
keeps trying to write through what it holds until the skiff command has exited.
SKIFF_TEST_PAUSE_BEFORE_EXEC holds the child just before its execve (its
capabilities already dropped to the container's), so the attacker always finds it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Skiff

from .conftest import Oci

# The attacker, run in the container. "sk""iff" keeps the pattern out of its own command line.
ATTACKER = r"""
pattern="sk""iff"
found=""
end=$(( $(date +%s) + 30 ))
while [ -z "$found" ] && [ $(date +%s) -lt $end ]; do
  for p in /proc/[0-9]*; do
    [ "$p" = /proc/$$ ] && continue
    if grep -q "$pattern" $p/cmdline 2>/dev/null; then found=$p; break; fi
  done
done
[ -n "$found" ] && echo FOUND || echo NOT-FOUND
# Keep trying while it is still skiff (until its execve): its capabilities drop on the way.
link=""
holder=""
while [ -n "$found" ] && grep -q "$pattern" $found/cmdline 2>/dev/null && [ -z "$holder" ]; do
  [ -z "$link" ] && link=$(readlink $found/exe 2>/dev/null)
  sleep 60 3<$found/exe 2>/dev/null &
  h=$!
  sleep 0.05
  if [ -e /proc/$h/fd/3 ] && [ "$(readlink /proc/$h/fd/3)" != /bin/busybox ]; then holder=$h; else kill $h 2>/dev/null; fi
done
[ -n "$link" ] && echo READLINK-OK || echo READLINK-DENIED
[ -n "$holder" ] && echo OPEN-OK || echo OPEN-DENIED
holder=${holder:-0}
end=$(( $(date +%s) + 12 ))
while [ $(date +%s) -lt $end ]; do
  if printf PWNED 2>/dev/null >> /proc/$holder/fd/3; then echo WRITE-OK; break; fi
  sleep 0.2
done
[ "$holder" != 0 ] && kill $holder
echo DONE
"""
PAUSE = {"SKIFF_TEST_PAUSE_BEFORE_EXEC": "1.5"}


class Launcher:
    """``skiff`` and ``skiff-oci`` run by a private copy of the interpreter."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.python = tmp_path / "skiffpy"
        shutil.copy2(os.path.realpath(sys.executable), self.python)
        self.digest = self._digest()
        site = [p for p in sys.path if p.endswith("site-packages")]
        self.env = {**env, "PYTHONPATH": ":".join([str(Path(__file__).resolve().parents[2]), *site])}

    def _digest(self) -> str:
        return hashlib.sha256(self.python.read_bytes()).hexdigest()

    def unchanged(self) -> bool:
        return self._digest() == self.digest

    def skiff(self, *args: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.python), "-m", "skiff", *args], env={**self.env, **(extra or {})},
                              capture_output=True, text=True, timeout=60)

    def oci(self, oci: Oci, *args: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        with open(oci.tmp / "launch.out", "w+") as out:
            proc = subprocess.run([str(self.python), "-m", "skiff.oci.main", "--root", str(oci.root), *args],
                                  env={**self.env, **(extra or {})}, stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.STDOUT, timeout=60)
            out.seek(0)
            return subprocess.CompletedProcess(args, proc.returncode, out.read(), "")


@pytest.fixture
def launcher(tmp_path: Path, skiff_env: dict[str, str]) -> Launcher:
    return Launcher(tmp_path, skiff_env)


def wait_for(logs: callable, marker: str = "DONE", timeout: float = 40) -> str:  # type: ignore[valid-type]
    deadline = time.monotonic() + timeout
    while True:
        text = logs()
        if marker in text or time.monotonic() > deadline:
            return text
        time.sleep(0.2)


def check_default_caps(report: str, launcher: Launcher) -> None:
    assert "FOUND" in report and "NOT-FOUND" not in report, f"the attacker never saw the skiff child:\n{report}"
    # Non-dumpable: without CAP_SYS_PTRACE nothing of the child's /proc entry opens.
    assert "READLINK-DENIED" in report and "OPEN-DENIED" in report, report
    assert "WRITE-OK" not in report, report
    assert launcher.unchanged(), "the container overwrote the interpreter"


def check_with_ptrace(report: str, launcher: Launcher) -> None:
    assert "FOUND" in report and "NOT-FOUND" not in report, f"the attacker never saw the skiff child:\n{report}"
    # CAP_SYS_PTRACE overrides non-dumpable; what it opens must be the read-only sealed interpreter.
    assert "WRITE-OK" not in report, report
    assert launcher.unchanged(), "the container overwrote the interpreter"


def test_exec_child_with_default_capabilities(launcher: Launcher, skiff: Skiff, busybox_image: str) -> None:
    cid = skiff.ok("run", "-d", "--network", "none", busybox_image, "sh", "-c", ATTACKER).strip()
    try:
        result = launcher.skiff("exec", cid, "true", extra=PAUSE)
        assert result.returncode == 0, result.stderr
        report = wait_for(lambda: skiff("logs", cid).stdout)
        check_default_caps(report, launcher)
    finally:
        skiff("rm", "-f", cid)


def test_exec_child_sealed_when_asked(launcher: Launcher, skiff: Skiff, busybox_image: str) -> None:
    """SKIFF_SEAL_EXE=1 re-executes every child from the read-only interpreter (the CAP_SYS_PTRACE path)."""
    cid = skiff.ok("run", "-d", "--network", "none", busybox_image, "sh", "-c", ATTACKER).strip()
    try:
        result = launcher.skiff("exec", cid, "true", extra={**PAUSE, "SKIFF_SEAL_EXE": "1"})
        assert result.returncode == 0, result.stderr
        report = wait_for(lambda: skiff("logs", cid).stdout)
        check_default_caps(report, launcher)
    finally:
        skiff("rm", "-f", cid)


def ptrace_spec(oci: Oci) -> None:
    for key in ("bounding", "effective", "permitted"):
        oci.spec["process"]["capabilities"][key].append("CAP_SYS_PTRACE")


def test_skiff_oci_exec_child_against_cap_sys_ptrace(launcher: Launcher, oci: Oci) -> None:
    ptrace_spec(oci)
    oci.write(["sh", "-c", ATTACKER])
    assert oci("run", "-d", "--bundle", str(oci.bundle), "px").returncode == 0
    try:
        result = launcher.oci(oci, "exec", "px", "true", extra=PAUSE)
        assert result.returncode == 0, result.stdout
        report = wait_for(lambda: (oci.tmp / "oci.out").read_text())
        check_with_ptrace(report, launcher)
    finally:
        oci("delete", "--force", "px")


def test_skiff_oci_exec_child_with_default_capabilities(launcher: Launcher, oci: Oci) -> None:
    oci.write(["sh", "-c", ATTACKER])
    assert oci("run", "-d", "--bundle", str(oci.bundle), "pd").returncode == 0
    try:
        result = launcher.oci(oci, "exec", "pd", "true", extra=PAUSE)
        assert result.returncode == 0, result.stdout
        report = wait_for(lambda: (oci.tmp / "oci.out").read_text())
        check_default_caps(report, launcher)
    finally:
        oci("delete", "--force", "pd")


@pytest.mark.parametrize("ptrace", [False, True], ids=["default-caps", "cap-sys-ptrace"])
def test_init_seen_from_a_container_sharing_its_pid_namespace(launcher: Launcher, oci: Oci, tmp_path: Path,
                                                              ptrace: bool) -> None:
    """Another container's init, in our pid namespace, between its fork and its exec."""
    if ptrace:
        ptrace_spec(oci)
    oci.write(["sh", "-c", ATTACKER])
    assert oci("run", "-d", "--bundle", str(oci.bundle), "pa").returncode == 0
    try:
        attacker_pid = json.loads(oci("state", "pa").stdout)["pid"]
        second = tmp_path / "second"
        (second / "rootfs").mkdir(parents=True)
        spec = json.loads((oci.bundle / "config.json").read_text())
        spec["root"]["path"] = str(oci.bundle / "rootfs")
        spec["process"]["args"] = ["true"]
        for ns in spec["linux"]["namespaces"]:
            if ns["type"] == "pid":
                ns["path"] = f"/proc/{attacker_pid}/ns/pid"
        (second / "config.json").write_text(json.dumps(spec))
        result = launcher.oci(oci, "run", "--bundle", str(second), "pb", extra=PAUSE)
        assert result.returncode == 0, result.stdout
        report = wait_for(lambda: (oci.tmp / "oci.out").read_text())
        (check_with_ptrace if ptrace else check_default_caps)(report, launcher)
    finally:
        oci("delete", "--force", "pa")
