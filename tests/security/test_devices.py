"""Escape 1: a container must not reach host devices it was not given (the device allow-list).

A loop device holds a canary file; a container makes a node for it with mknod (which
the default capabilities allow, as Docker's do) and tries to read and write it. The
cgroup's device list must refuse both: on v1 here for real, with the default run of
the engine and with skiff-oci on a config that has no linux.resources at all; on v2
through the eBPF filter, on the real kernel's cgroup2 tree and on the fake tree.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from skiff.cgroups import bpf_devices
from tests.cgroups.test_bpf_devices import BLOCK, CHAR, MKNOD, READ, WRITE, Sandbox, run_program
from tests.conftest import Skiff

from .conftest import Oci

CANARY = b"LOOP-CANARY-5e1d"


class Loop:
    def __init__(self, device: str, backing: Path) -> None:
        self.device = device
        self.backing = backing
        st = os.stat(device)
        self.major, self.minor = os.major(st.st_rdev), os.minor(st.st_rdev)

    def content(self) -> bytes:
        return self.backing.read_bytes()[:len(CANARY)]


@pytest.fixture
def loop(tmp_path: Path) -> Iterator[Loop]:
    backing = tmp_path / "loop.img"
    backing.write_bytes(CANARY + b"\0" * (1 << 20))
    device = subprocess.run(["losetup", "--find", "--show", str(backing)], capture_output=True, text=True)
    if device.returncode != 0:
        pytest.skip(f"no loop device: {device.stderr.strip()}")
    dev = device.stdout.strip()
    try:
        yield Loop(dev, backing)
    finally:
        subprocess.run(["losetup", "-d", dev], check=True)


def attack(loop: Loop) -> str:
    """Make the node, read it, write it; the script prints what got through."""
    return (f"mknod /tmp/b b {loop.major} {loop.minor} && echo MKNOD-OK; "
            "head -c 16 /tmp/b; echo; printf X | dd of=/tmp/b conv=notrunc 2>/dev/null && echo WRITE-OK; "
            "mknod /tmp/n c 1 3 && echo NULL-OK > /tmp/n && echo NULL-RW-OK")


def check_refused(output: str, loop: Loop) -> None:
    assert "MKNOD-OK" in output, output  # mknod stays allowed (runc's and Docker's "c *:* m", "b *:* m")
    assert CANARY.decode() not in output, "the container read the host's loop device"
    assert "WRITE-OK" not in output, "the container wrote the host's loop device"
    assert loop.content() == CANARY
    assert "NULL-RW-OK" in output  # the default devices stay usable


def test_default_run_cannot_use_a_host_block_device(skiff: Skiff, busybox_image: str, loop: Loop) -> None:
    result = skiff("run", "--rm", "--network", "none", busybox_image, "sh", "-c", attack(loop))
    check_refused(result.stdout + result.stderr, loop)


def test_default_run_lists_only_the_default_devices(skiff: Skiff, busybox_image: str) -> None:
    listing = skiff.ok("run", "--rm", "--network", "none", busybox_image, "sh", "-c",
                       "cat /sys/fs/cgroup/devices/devices.list 2>/dev/null || echo v2")
    if listing.strip() != "v2":
        assert "a *:* rwm" not in listing and "b 7:" not in listing
        assert "c 1:3 rwm" in listing and "c 136:* rwm" in listing


def test_skiff_oci_without_resources_cannot_use_a_host_block_device(oci: Oci, loop: Loop) -> None:
    # runc spec's config has linux.resources.devices; a hand-written one may have nothing at all.
    oci.spec["linux"].pop("resources", None)
    oci.spec["linux"].pop("cgroupsPath", None)
    oci.write(["sh", "-c", attack(loop)])
    result = oci("run", "--bundle", str(oci.bundle), "dev1")
    check_refused(result.stdout + result.stderr, loop)


def test_skiff_oci_removes_its_default_cgroup(oci: Oci) -> None:
    oci.write(["sleep", "30"])
    assert oci("create", "--bundle", str(oci.bundle), "cg1").returncode == 0
    pid = int(oci("state", "cg1").stdout.split('"pid": ')[1].split(",")[0])
    with open(f"/proc/{pid}/cgroup") as f:
        own = [line.rstrip().split(":", 2)[2] for line in f if ":devices:" in line or line.startswith("0::")]
    assert own and all(path.endswith("/cg1") for path in own), own
    assert oci("delete", "--force", "cg1").returncode == 0
    for path in own:
        for mount in ("/sys/fs/cgroup/devices", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
            if os.path.isdir(mount + "/" + path.split("/")[1]):
                assert not os.path.exists(mount + path), f"{mount + path} left behind"


def default_rules() -> list[dict]:
    from skiff.runtime.runtime import _with_default_devices

    return _with_default_devices({}, [])["devices"]


def test_v2_filter_of_a_default_container_on_the_real_kernel(tmp_path: Path, loop: Loop) -> None:
    from tests.cgroups.test_bpf_devices import cgroup2_mount

    mount = cgroup2_mount()
    if mount is None:
        pytest.skip("no cgroup2 hierarchy is mounted on this host")
    box = Sandbox(mount, tmp_path)
    try:
        bpf_devices.apply_device_filter(box.dir, default_rules())
        assert box.probe([["open", loop.device, os.O_RDONLY], ["open", loop.device, os.O_WRONLY],
                          ["mknod", box.node("b"), "b", loop.major, loop.minor],
                          ["open", "/dev/null", os.O_RDWR]]) == ["EPERM", "EPERM", "ok", "ok"]
    finally:
        box.remove()
    assert loop.content() == CANARY


def test_v2_runtime_attaches_the_default_filter(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                busybox_rootfs: Path) -> None:
    """On a (fake) v2 host the runtime's create hands the cgroup the deny-all list, no resources asked."""
    import skiff.cgroups as cgroups
    from skiff.cgroups import fs, v2
    from tests.cgroups.fake_cgroupfs import FakeKernel
    from tests.runtime.conftest import BundleFactory

    kernel = FakeKernel(tmp_path / "cgroup")
    monkeypatch.setattr(fs, "mkdir", kernel.mkdir)
    monkeypatch.setattr(fs, "rmdir", kernel.rmdir)
    monkeypatch.setattr(v2, "attach_device_filter", kernel.attach_device_filter)
    real_open = cgroups.open
    monkeypatch.setattr(cgroups, "open", lambda path, root=None: real_open(path, root=kernel.root))
    factory = BundleFactory(tmp_path, busybox_rootfs)
    factory.spec["linux"].pop("resources", None)
    factory.write(["true"])
    fds, _, _ = factory.stdio()
    try:
        pid = factory.runtime.create("v2c", factory.path, stdio=fds)
        try:
            (filters,) = kernel.device_filters.values()
            program = bpf_devices.compile_rules(filters[-1])
            assert run_program(program, BLOCK, READ, 7, 0) == 0
            assert run_program(program, BLOCK, WRITE, 8, 0) == 0
            assert run_program(program, CHAR, READ | WRITE, 10, 232) == 0  # /dev/kvm
            assert run_program(program, BLOCK, MKNOD, 7, 0) == 1
            assert run_program(program, CHAR, READ | WRITE, 1, 3) == 1
        finally:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            for procs in kernel.root.rglob("cgroup.procs"):  # the fake kernel does not see it die
                procs.write_text("")
            factory.runtime.delete("v2c", force=True)
    finally:
        for fd in fds:
            os.close(fd)
