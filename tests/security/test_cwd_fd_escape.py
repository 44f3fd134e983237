"""Escape 2 (CVE-2024-21626): a working directory of /proc/self/fd/N must not land on the host.

Between fork and exec the init (and an exec'd process's child) held fds of host
directories, the state dir first: a cwd of /proc/self/fd/N entered it, and
``../../..`` from there walked the host. Each way skiff starts a process is tried
with every fd number that could be open (3 to 20) and a host canary the
container tries to read and overwrite: every attempt must be refused or land inside
the container, and the canary must stay as it was.
"""

from __future__ import annotations

import subprocess
from pathlib import Path


from tests.conftest import Skiff

from .conftest import Oci

FDS = range(3, 21)
UP = "../" * 40


def attack(canary: Path) -> str:
    target = UP + str(canary).lstrip("/")
    return f"cat {target}; echo ESCAPED > {target}; pwd"


def check(canary: Path, outputs: list[str]) -> None:
    joined = "\n".join(outputs)
    assert "HOST-CANARY" not in joined, f"a container read the host canary:\n{joined}"
    assert canary.read_text() == "HOST-CANARY-7f3a\n", "a container wrote the host canary"


def test_skiff_run(skiff: Skiff, busybox_image: str, canary: Path) -> None:
    outputs = []
    for n in FDS:
        result = skiff("run", "--rm", "--network", "none", "-w", f"/proc/self/fd/{n}", busybox_image,
                       "sh", "-c", attack(canary))
        outputs.append(result.stdout + result.stderr)
    check(canary, outputs)


def test_skiff_run_detached(skiff: Skiff, busybox_image: str, canary: Path) -> None:
    outputs = []
    for n in FDS:
        result = skiff("run", "-d", "--network", "none", "-w", f"/proc/self/fd/{n}", busybox_image,
                       "sh", "-c", attack(canary))
        if result.returncode == 0:
            cid = result.stdout.strip()
            skiff("wait", cid)
            outputs.append(skiff("logs", cid).stdout)
            skiff("rm", "-f", cid)
        outputs.append(result.stdout + result.stderr)
    check(canary, outputs)


def test_skiff_create_and_start(skiff: Skiff, busybox_image: str, canary: Path) -> None:
    outputs = []
    for n in FDS:
        created = skiff("create", "--network", "none", "-w", f"/proc/self/fd/{n}", busybox_image,
                        "sh", "-c", attack(canary))
        if created.returncode == 0:
            cid = created.stdout.strip()
            started = skiff("start", "-a", cid)
            outputs.append(started.stdout + started.stderr)
            skiff("rm", "-f", cid)
        outputs.append(created.stdout + created.stderr)
    check(canary, outputs)


def test_skiff_exec(skiff: Skiff, busybox_image: str, canary: Path) -> None:
    cid = skiff.ok("run", "-d", "--network", "none", busybox_image, "sleep", "60").strip()
    try:
        outputs = []
        for n in FDS:
            result = skiff("exec", "-w", f"/proc/self/fd/{n}", cid, "sh", "-c", attack(canary))
            outputs.append(result.stdout + result.stderr)
        check(canary, outputs)
    finally:
        skiff("rm", "-f", cid)


def test_image_workdir(skiff: Skiff, busybox_tar: Path, canary: Path) -> None:
    outputs = []
    for n in range(3, 13):
        image = f"wd{n}:latest"
        skiff.ok("import", str(busybox_tar), image, "--change", f"WORKDIR /proc/self/fd/{n}",
                 "--change", 'CMD ["sh"]')
        result = skiff("run", "--rm", "--network", "none", image, "sh", "-c", attack(canary))
        outputs.append(result.stdout + result.stderr)
    check(canary, outputs)


def test_a_refused_working_directory_says_why(skiff: Skiff, busybox_image: str) -> None:
    result = skiff("run", "--rm", "--network", "none", "-w", "/proc/self/fd/3", busybox_image, "true")
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_skiff_oci_run(oci: Oci, canary: Path) -> None:
    outputs = []
    for n in FDS:
        oci.write(["sh", "-c", attack(canary)], cwd=f"/proc/self/fd/{n}")
        result = oci("run", "--bundle", str(oci.bundle), f"fd{n}")
        outputs.append(result.stdout + result.stderr)
    check(canary, outputs)


def test_skiff_oci_create_and_start(oci: Oci, canary: Path) -> None:
    outputs = []
    for n in range(3, 13):
        oci.write(["sh", "-c", attack(canary)], cwd=f"/proc/self/fd/{n}")
        created = oci("create", "--bundle", str(oci.bundle), f"cs{n}")
        outputs.append(created.stdout + created.stderr)
        if created.returncode == 0:
            oci("start", f"cs{n}")
            for _ in range(100):
                if '"stopped"' in oci("state", f"cs{n}").stdout:
                    break
                subprocess.run(["sleep", "0.05"])
            outputs.append((oci.tmp / "oci.out").read_text())
            oci("delete", "--force", f"cs{n}")
    check(canary, outputs)


def test_skiff_oci_exec(oci: Oci, canary: Path) -> None:
    oci.write(["sleep", "60"])
    assert oci("run", "-d", "--bundle", str(oci.bundle), "ex1").returncode == 0
    try:
        outputs = []
        for n in FDS:
            result = oci("exec", "--cwd", f"/proc/self/fd/{n}", "ex1", "sh", "-c", attack(canary))
            outputs.append(result.stdout + result.stderr)
        check(canary, outputs)
    finally:
        oci("delete", "--force", "ex1")
