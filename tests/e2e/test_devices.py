"""Devices end to end (issue 20): --device, --device-cgroup-rule, CDI specs, --gpus over a fake driver.

Real containers with stand-in device nodes made by the test: ``null0`` (c 1:3, /dev/null's
numbers, always allowed) and ``kmsg0`` (c 1:11, /dev/kmsg's numbers, not in the default allow
list: opening it for writing only is harmless, and a device cgroup that refuses it answers EPERM
before the driver is asked). Every edit a CDI spec makes is checked from inside the container.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tests.conftest import Skiff

VERSION = "550.54.15"


@pytest.fixture
def nodes(tmp_path: Path) -> Path:
    directory = tmp_path / "nodes"
    directory.mkdir()
    os.mknod(directory / "null0", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.mknod(directory / "kmsg0", 0o600 | stat.S_IFCHR, os.makedev(1, 11))
    return directory


@pytest.fixture
def cdi_dir(skiff: Skiff, tmp_path: Path) -> Path:
    directory = tmp_path / "cdi"
    directory.mkdir()
    skiff.env["SKIFF_CDI_SPEC_DIRS"] = str(directory)
    return directory


def run(skiff: Skiff, *args: str) -> str:
    return skiff.ok("run", "--rm", "--network", "none", *args)


def fails(skiff: Skiff, *args: str) -> str:
    proc = skiff("run", "--rm", "--network", "none", *args)
    assert proc.returncode == 125, (proc.stdout, proc.stderr)
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    return proc.stderr.strip()


OPEN_K = "true > /dev/k && echo opened"   # open for writing, write nothing (true: a failed redirection does not end sh)


# --- --device and --device-cgroup-rule ---------------------------------------------------------------

def test_a_host_device_appears_with_its_numbers_and_opens(skiff: Skiff, busybox_image: str, nodes: Path) -> None:
    out = run(skiff, "--device", f"{nodes}/kmsg0:/dev/k", busybox_image, "sh", "-c",
              f"stat -c '%F %t:%T %a' /dev/k; {OPEN_K}")
    assert out.split("\n")[:2] == ["character special file 1:b 600", "opened"]
    out = run(skiff, "--device", f"{nodes}/null0:/dev/n0", busybox_image, "sh", "-c", "echo x > /dev/n0 && echo ok")
    assert out == "ok\n"


def test_the_device_rules_decide_access(skiff: Skiff, busybox_image: str, nodes: Path) -> None:
    """A bound node is there but refused (as Docker's -v of a device); a cgroup rule allows it."""
    bound = ["-v", f"{nodes}/kmsg0:/dev/k"]
    proc = skiff("run", "--rm", "--network", "none", *bound, busybox_image, "sh", "-c", f"ls /dev/k; {OPEN_K}")
    assert proc.returncode == 1 and proc.stdout == "/dev/k\n"
    assert "can't create /dev/k: Operation not permitted" in proc.stderr
    for rule in ("c 1:11 w", "c 1:* rwm", "a *:* rwm"):
        assert run(skiff, *bound, "--device-cgroup-rule", rule, busybox_image, "sh", "-c", OPEN_K) == "opened\n"
    assert run(skiff, *bound, "--device-cgroup-rule", "c 1:11 r", busybox_image, "sh", "-c",
               f"{OPEN_K} || echo refused") == "refused\n"


def test_device_permissions_limit_access(skiff: Skiff, busybox_image: str, nodes: Path) -> None:
    """As Docker's runc: the node is made, and only its rule decides (a read-only device does not
    open for writing)."""
    assert run(skiff, "--device", f"{nodes}/kmsg0:/dev/k:r", busybox_image, "sh", "-c",
               f"{OPEN_K} || echo refused") == "refused\n"
    assert run(skiff, "--device", f"{nodes}/kmsg0:/dev/k:w", busybox_image, "sh", "-c", OPEN_K) == "opened\n"


def test_a_directory_of_devices(skiff: Skiff, busybox_image: str, nodes: Path) -> None:
    (nodes / "not-a-device").write_text("")
    out = run(skiff, "--device", f"{nodes}:/dev/dd", busybox_image, "ls", "/dev/dd")
    assert out.split() == ["kmsg0", "null0"]


def test_bad_devices_fail_as_docker(skiff: Skiff, busybox_image: str, tmp_path: Path) -> None:
    assert fails(skiff, "--device", "/etc/passwd", busybox_image, "true") == \
        'skiff: error gathering device information while adding custom device "/etc/passwd": not a device node'
    assert fails(skiff, "--device", f"{tmp_path}/gone", busybox_image, "true") == \
        f'skiff: error gathering device information while adding custom device "{tmp_path}/gone": ' \
        "no such file or directory"
    assert fails(skiff, "--device", "/dev/null:dev/x", busybox_image, "true") == \
        "skiff: dev/x is not an absolute path"
    assert fails(skiff, "--device-cgroup-rule", "c 195 rwm", busybox_image, "true") == \
        "skiff: invalid argument \"c 195 rwm\" for \"--device-cgroup-rule\" flag: invalid device cgroup format " \
        "'c 195 rwm'"
    assert not skiff.ok("ps", "-aq").split()


# --- CDI ---------------------------------------------------------------------------------------

def vendor_spec(nodes: Path, hooks: Path, library: Path) -> dict[str, object]:
    """Every kind of edit: env, nodes (numbers from the host's, or given), mounts, all five hooks, gids."""
    marker = f"cat > /dev/null; echo $0 >> {hooks}/ran"
    return {
        "cdiVersion": "0.7.0", "kind": "example.com/dev",
        "containerEdits": {
            "env": ["SPEC_WIDE=1", "SHARED=spec"],
            "mounts": [{"hostPath": str(library), "containerPath": "/usr/lib/vendor/libfake.so.1",
                        "options": ["ro", "nosuid", "nodev", "bind"]}],
            "hooks": [{"hookName": name, "path": "/bin/sh", "args": ["sh", "-c", marker, name]}
                      for name in ("createRuntime", "createContainer", "poststart", "poststop")]
            + [{"hookName": "startContainer", "path": "/bin/sh",
                "args": ["sh", "-c", "echo inside > /tmp/started"]}],
            "additionalGIDs": [0, 4242],
        },
        "devices": [
            {"name": "one", "containerEdits": {"env": ["SHARED=device"], "deviceNodes": [
                {"path": "/dev/one", "hostPath": str(nodes / "kmsg0"), "permissions": "w"}]}},
            {"name": "two", "containerEdits": {"deviceNodes": [
                {"path": "/dev/two", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640}]}},
        ],
    }


def test_cdi_edits_are_applied(skiff: Skiff, busybox_image: str, nodes: Path, cdi_dir: Path,
                               tmp_path: Path) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    library = tmp_path / "libfake.so.1"
    library.write_text("vendor library\n")
    import yaml

    (cdi_dir / "example.yaml").write_text(yaml.safe_dump(vendor_spec(nodes, hooks, library)))
    script = ("env | grep -E '^(SPEC_WIDE|SHARED)=' | sort; stat -c '%n %t:%T %a' /dev/one; "
              "cat /usr/lib/vendor/libfake.so.1; cat /tmp/started; id -G; true > /dev/one && echo one-opens; "
              "ls /dev/two 2>&1; true")
    out = run(skiff, "--device", "example.com/dev=one", busybox_image, "sh", "-c", script).splitlines()
    assert out[:5] == ["SHARED=device", "SPEC_WIDE=1", "/dev/one 1:b 600", "vendor library", "inside"]
    assert "4242" in out[5].split() and out[6] == "one-opens"
    assert "No such file" in out[7]
    assert (hooks / "ran").read_text().split() == ["createRuntime", "createContainer", "poststart", "poststop"]
    out = run(skiff, "--device", "example.com/dev=all", busybox_image, "sh", "-c",
              "stat -c '%n %t:%T %a' /dev/one /dev/two")
    assert out.splitlines() == ["/dev/one 1:b 600", "/dev/two 1:3 640"]


def test_a_cdi_node_is_allowed_only_with_its_permissions(skiff: Skiff, busybox_image: str, nodes: Path,
                                                         cdi_dir: Path) -> None:
    spec = {"cdiVersion": "0.5.0", "kind": "example.com/dev", "devices": [
        {"name": "k", "containerEdits": {"deviceNodes": [{"path": "/dev/k", "hostPath": str(nodes / "kmsg0")}]}}],
        "containerEdits": {"mounts": [{"hostPath": str(nodes / "kmsg0"), "containerPath": "/dev/bound"}]}}
    (cdi_dir / "example.json").write_text(json.dumps(spec))
    out = run(skiff, "--device", "example.com/dev=k", busybox_image, "sh", "-c",
              f"{OPEN_K}; true > /dev/bound && echo bound-opens")
    assert out == "opened\nbound-opens\n"   # the same numbers: the rule allows both paths
    proc = skiff("run", "--rm", "--network", "none", "-v", f"{nodes}/kmsg0:/dev/k", busybox_image, "sh", "-c", OPEN_K)
    assert proc.returncode == 1 and "Operation not permitted" in proc.stderr   # no CDI device: no rule


def test_unknown_and_broken_specs_fail_with_the_file_and_field(skiff: Skiff, busybox_image: str,
                                                               cdi_dir: Path) -> None:
    assert fails(skiff, "--device", "example.com/dev=nope", busybox_image, "true") == \
        f"skiff: unresolvable CDI devices example.com/dev=nope: no CDI spec in {cdi_dir} defines it"
    (cdi_dir / "broken.json").write_text(json.dumps({
        "cdiVersion": "0.5.0", "kind": "example.com/dev",
        "devices": [{"name": "a", "containerEdits": {"mounts": [{"hostPath": "/x", "containerPath": "rel"}]}}]}))
    assert fails(skiff, "--device", "example.com/dev=a", busybox_image, "true") == \
        f"skiff: CDI spec {cdi_dir}/broken.json: devices[0].containerEdits.mounts[0].containerPath: " \
        "'rel' is not an absolute path"
    (cdi_dir / "rdt.json").write_text(json.dumps({
        "cdiVersion": "0.7.0", "kind": "other.com/dev",
        "devices": [{"name": "a", "containerEdits": {"intelRdt": {"closID": "c"}}}]}))
    assert "Intel RDT (resctrl) is not supported by skiff" in fails(skiff, "--device", "other.com/dev=a",
                                                                    busybox_image, "true")
    proc = skiff("cdi", "list")
    assert proc.returncode == 1 and proc.stdout == "other.com/dev=a\n"
    assert "broken.json: devices[0].containerEdits.mounts[0].containerPath" in proc.stderr


def test_inspect_shows_the_devices(skiff: Skiff, busybox_image: str, nodes: Path, cdi_dir: Path,
                                   tmp_path: Path) -> None:
    (cdi_dir / "example.json").write_text(json.dumps({
        "cdiVersion": "0.3.0", "kind": "example.com/dev", "devices": [{"name": "a"}, {"name": "b"}]}))
    cid = skiff.ok("create", "--network", "none", "--device", f"{nodes}/null0:/dev/n:rw", "--device",
                   "example.com/dev=all", "--device-cgroup-rule", "c 195:* rwm", busybox_image, "true").strip()
    host = json.loads(skiff.ok("inspect", cid))[0]["HostConfig"]
    assert host["Devices"] == [{"PathOnHost": f"{nodes}/null0", "PathInContainer": "/dev/n",
                                "CgroupPermissions": "rw"}]
    assert host["DeviceCgroupRules"] == ["c 195:* rwm"]
    assert host["DeviceRequests"] == [{"Driver": "cdi", "Count": 0, "DeviceIDs": ["example.com/dev=all"],
                                       "Capabilities": None, "Options": {}}]
    assert host["CDIDevices"] is None
    skiff.ok("start", "-a", cid)
    host = json.loads(skiff.ok("inspect", cid))[0]["HostConfig"]
    assert host["CDIDevices"] == ["example.com/dev=a", "example.com/dev=b"]
    skiff.ok("rm", cid)
    cid = skiff.ok("create", "--network", "none", "--gpus", "all", busybox_image, "true").strip()
    host = json.loads(skiff.ok("inspect", cid))[0]["HostConfig"]
    assert host["DeviceRequests"] == [{"Driver": "", "Count": -1, "DeviceIDs": None, "Capabilities": [["gpu"]],
                                       "Options": {}}]
    assert host["Devices"] == [] and host["DeviceCgroupRules"] is None
    skiff.ok("rm", cid)


# --- --gpus over a fake NVIDIA driver tree ---------------------------------------------------------

def fake_driver(root: Path) -> tuple[Path, Path]:
    """Device nodes with /dev/null's numbers, /proc, libraries (real ELF files, copies of the
    host's libz, named as the driver's), binaries, firmware; a fake nvidia-smi and ldconfig."""
    for node in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm", "nvidia-caps/nvidia-cap1"):
        path = root / "dev" / node
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    proc = root / "proc/driver/nvidia"
    proc.mkdir(parents=True)
    (proc / "version").write_text(f"NVRM version: NVIDIA UNIX x86_64 Kernel Module  {VERSION}  2024\n")
    lib = root / "usr/lib/x86_64-linux-gnu"
    lib.mkdir(parents=True)
    elf = next(p for p in (Path("/usr/lib/x86_64-linux-gnu/libz.so.1"), Path("/lib/x86_64-linux-gnu/libz.so.1"))
               if p.exists()).resolve().read_bytes()
    lines = []
    for name in ("libcuda.so", "libnvidia-ml.so"):
        (lib / f"{name}.{VERSION}").write_bytes(elf)
        (lib / f"{name}.1").symlink_to(f"{name}.{VERSION}")
        lines.append(f"\t{name}.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/{name}.1")
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/nvidia-smi").write_text("#!/bin/sh\necho 'GPU 0: fake'\n")
    (root / "usr/bin/nvidia-smi").chmod(0o755)
    tools = root.parent / "tools"
    tools.mkdir()
    smi, ldconfig = tools / "nvidia-smi", tools / "ldconfig"
    smi.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H200 (UUID: GPU-aaa)'\necho 'GPU 1: NVIDIA H200 (UUID: GPU-bbb)'\n")
    ldconfig.write_text("#!/bin/sh\n" + "".join(f"echo '{line}'\n" for line in lines))
    smi.chmod(0o755)
    ldconfig.chmod(0o755)
    return smi, ldconfig


def test_gpus_through_a_generated_spec(skiff: Skiff, busybox_image: str, cdi_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "driver"
    smi, ldconfig = fake_driver(root)
    skiff.ok("cdi", "generate", "--vendor", "nvidia", "--driver-root", str(root), "--nvidia-smi-path", str(smi),
             "--ldconfig-path", str(ldconfig), "--output", str(cdi_dir / "nvidia.yaml"))
    assert skiff.ok("cdi", "list").split() == ["nvidia.com/gpu=0", "nvidia.com/gpu=1", "nvidia.com/gpu=GPU-aaa",
                                               "nvidia.com/gpu=GPU-bbb", "nvidia.com/gpu=all"]
    lib = "/usr/lib/x86_64-linux-gnu"
    script = (f"ls -d /dev/nvidia*; ls /dev/nvidia-caps; ls {lib}; nvidia-smi; echo $NVIDIA_VISIBLE_DEVICES; "
              "test -s /etc/ld.so.cache && echo cache")
    out = run(skiff, "--gpus", "all", busybox_image, "sh", "-c", script).split()
    # libz.so.1: the soname inside the stand-in libraries (copies of libz), linked by the ld.so cache hook
    assert out == ["/dev/nvidia-caps", "/dev/nvidia-uvm", "/dev/nvidia0", "/dev/nvidia1", "/dev/nvidiactl",
                   "nvidia-cap1", f"libcuda.so.{VERSION}", f"libnvidia-ml.so.{VERSION}", "libz.so.1",
                   "GPU", "0:", "fake", "void", "cache"]
    assert run(skiff, "--gpus", "1", busybox_image, "sh", "-c", "ls /dev/nvidia?").split() == ["/dev/nvidia0"]
    assert run(skiff, "--gpus", '"device=GPU-bbb"', busybox_image, "sh", "-c", "ls /dev/nvidia?").split() == \
        ["/dev/nvidia1"]
    assert run(skiff, busybox_image, "sh", "-c", "ls /dev/nvidia* 2>/dev/null; true") == ""
    assert fails(skiff, "--gpus", "3", busybox_image, "true") == "skiff: 3 GPUs requested, but this host has 2"


@pytest.mark.skipif(os.path.exists("/dev/nvidiactl"), reason="this host has an NVIDIA driver")
def test_gpus_without_a_spec_or_a_driver_say_so(skiff: Skiff, busybox_image: str, cdi_dir: Path) -> None:
    assert fails(skiff, "--gpus", "all", busybox_image, "true") == (
        'skiff: could not select device driver "" with capabilities: [[gpu]]: no CDI spec for nvidia.com/gpu '
        f"in {cdi_dir} and no NVIDIA driver on this host")
