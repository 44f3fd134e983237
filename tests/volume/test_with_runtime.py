"""The plan's OCI mounts run by the real runtime core over a busybox bundle (no engine needed).

These check what only a real container shows: read-only that holds on submounts,
tmpfs options, a volume on an image symlink landing inside the container,
propagation of host mounts made after start, and that nothing stays mounted.
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

from skiff import linux
from skiff.paths import Paths
from skiff.volume.plan import MountPlan, plan_mounts
from skiff.volume.spec import parse_run_mounts
from skiff.volume.store import VolumeStore


def _mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if str(path) in line.split()[4]]


class Box:
    """A bundle over a copy of busybox, a volume store and a runtime, all under tmp_path."""

    def __init__(self, tmp_path: Path, busybox_rootfs: Path) -> None:
        from skiff.runtime import Runtime

        self.tmp = tmp_path
        self.bundle = tmp_path / "bundle"
        self.rootfs = self.bundle / "rootfs"
        shutil.copytree(busybox_rootfs, self.rootfs, symlinks=True)
        self.store = VolumeStore(Paths(tmp_path / "root", tmp_path / "run"))
        self.runtime = Runtime(tmp_path / "state")
        self.count = 0

    def plan(self, **flags: Any) -> MountPlan:
        self.count += 1
        return plan_mounts(self.store, parse_run_mounts(**flags), container_id=f"c{self.count}")

    def write_config(self, plan: MountPlan, script: str) -> None:
        from skiff.runtime import default_spec

        spec = default_spec()
        spec["process"]["args"] = ["sh", "-c", script]
        spec["mounts"] += plan.oci_mounts()
        if plan.rootfs_propagation():
            spec["linux"]["rootfsPropagation"] = plan.rootfs_propagation()
        (self.bundle / "config.json").write_text(json.dumps(spec))

    def run(self, plan: MountPlan, script: str) -> tuple[int, str]:
        plan.prepare(self.rootfs)
        try:
            self.write_config(plan, script)
            out = self.tmp / "out"
            fds = (os.open("/dev/null", os.O_RDONLY), os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                   os.open(out, os.O_WRONLY | os.O_APPEND))
            try:
                code = self.runtime.run(plan.container_id, self.bundle, stdio=fds)
            finally:
                for fd in fds:
                    os.close(fd)
            return code, out.read_text()
        finally:
            plan.release(remove_anonymous=True)


@pytest.fixture
def box(tmp_path: Path, busybox_rootfs: Path) -> Box:
    yield Box(tmp_path, busybox_rootfs)
    leaked = _mounts_under(tmp_path)
    assert not leaked, "mounts left behind:\n" + "".join(leaked)


def test_the_issue_scenario_at_plan_level(box: Box) -> None:
    box.store.create("devoxx")
    code, out = box.run(box.plan(volumes=["devoxx:/devoxx"]), 'echo "world" > /devoxx/hello')
    assert code == 0, out
    assert (box.store.get("devoxx").data / "hello").read_text() == "world\n"
    code, out = box.run(box.plan(volumes=["devoxx:/again"]), "cat /again/hello")
    assert (code, out) == (0, "world\n")


def test_read_only_volume_and_submounts(box: Box) -> None:
    src = box.tmp / "src"
    (src / "sub").mkdir(parents=True)
    linux.mount("tmpfs", src / "sub", "tmpfs", 0, "size=1m")
    try:
        code, out = box.run(box.plan(volumes=["rov:/v:ro", f"{src}:/h:ro"]),
                            "touch /v/x 2>/dev/null && echo v-writable; touch /h/x 2>/dev/null && echo h-writable;"
                            "touch /h/sub/x 2>/dev/null && echo sub-writable; echo done")
        assert (code, out) == (0, "done\n")
    finally:
        linux.umount(src / "sub")


def test_tmpfs_options(box: Box) -> None:
    code, out = box.run(box.plan(tmpfs=["/scratch:size=1m,mode=1770"]),
                        "stat -c %a /scratch; grep ' /scratch ' /proc/mounts")
    assert code == 0, out
    mode, line = out.splitlines()
    options = line.split()[3].split(",")
    assert mode == "1770" and {"nosuid", "nodev", "noexec", "size=1024k"} <= set(options)


def test_volume_on_an_image_symlink_lands_in_the_container(box: Box) -> None:
    os.symlink("/etc", box.rootfs / "data")
    marker = f"skiff-vol-escape-{os.getpid()}"
    code, out = box.run(box.plan(volumes=["evil:/data"]), f"echo pwned > /data/{marker}; ls /etc")
    assert code == 0, out
    assert not Path(f"/etc/{marker}").exists()
    data = box.store.get("evil").data
    assert (data / marker).exists() and "user:x:1000" in (data / "passwd").read_text()
    assert marker in out.split()


def test_driver_volume_shared_by_two_running_containers(box: Box) -> None:
    volume = box.store.create("tv", options={"type": "tmpfs", "device": "tmpfs", "o": "size=2m"})
    first, second = box.plan(volumes=["tv:/v"]), box.plan(volumes=["tv:/v"])
    first.prepare(box.rootfs)
    try:
        (volume.data / "from-first").write_text("1")
        code, out = box.run(second, "cat /v/from-first; grep ' /v ' /proc/mounts | cut -d' ' -f3")
        assert (code, out) == (0, "1tmpfs\n")
        assert _mounts_under(volume.data)  # the first user still holds it
    finally:
        first.release()
    assert not _mounts_under(volume.data)


@pytest.mark.parametrize("option, seen", [("rslave", True), ("rprivate", False)])
def test_propagation_of_host_mounts_made_after_start(box: Box, option: str, seen: bool) -> None:
    src = box.tmp / "shared-src"
    (src / "sub").mkdir(parents=True)
    linux.mount(src, src, None, linux.MS_BIND)
    linux.mount(None, src, None, linux.MS_SHARED)
    plan = box.plan(volumes=[f"{src}:/h:{option}"])
    plan.prepare(box.rootfs)
    box.write_config(plan, "touch /h/ready; i=0; while [ $i -lt 50 ]; do [ -e /h/sub/marker ] && echo seen && exit 0;"
                           " sleep 0.1; i=$((i+1)); done; echo unseen")
    script = ("import sys; from skiff.runtime import Runtime; "
              "sys.exit(Runtime(sys.argv[1]).run(sys.argv[2], sys.argv[3]))")
    proc = subprocess.Popen([sys.executable, "-c", script, str(box.tmp / "state"), plan.container_id,
                             str(box.bundle)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not (src / "ready").exists():
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr and proc.stderr.read()
            time.sleep(0.05)
        linux.mount("tmpfs", src / "sub", "tmpfs", 0, "size=1m")
        (src / "sub" / "marker").write_text("x")
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert out == ("seen\n" if seen else "unseen\n")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        plan.release()
        for target in (src / "sub", src):
            while _mounts_under(target):
                linux.umount(target, linux.MNT_DETACH)
