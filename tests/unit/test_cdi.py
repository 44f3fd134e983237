"""CDI specs (parse, check, versions, registry, edits) and the device flags' parsing: pure logic, no root.

Host device nodes are stood in for by symlinks to /dev/null (a char device 1:3 any user can stat).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from skiff.cdi import edits, nvidia
from skiff.cdi.registry import Registry, spec_dirs
from skiff.cdi.spec import is_qualified_name, parse, parse_qualified_name
from skiff.engine import devices
from skiff.errors import CDIError, DeviceError, InvalidArgument


def spec_bytes(**fields: Any) -> bytes:
    data: dict[str, Any] = {"cdiVersion": "0.3.0", "kind": "vendor.com/dev", "devices": [{"name": "a"}]}
    data.update(fields)
    return json.dumps(data).encode()


def error_of(raw: bytes, path: str = "/etc/cdi/v.json") -> str:
    with pytest.raises(CDIError) as info:
        parse(raw, path)
    return str(info.value)


# --- spec checks -------------------------------------------------------------------------

def test_a_minimal_spec_reads() -> None:
    spec = parse(spec_bytes(), "/etc/cdi/v.json")
    assert spec.kind == "vendor.com/dev" and spec.vendor == "vendor.com" and spec.device_class == "dev"
    assert [d.qualified_name for d in spec.devices.values()] == ["vendor.com/dev=a"]


def test_yaml_specs_read() -> None:
    raw = b"cdiVersion: 0.6.0\nkind: vendor.com/dev\ndevices:\n  - name: gpu0\n    containerEdits:\n" \
          b"      env: [A=1]\n"
    spec = parse(raw, "/etc/cdi/v.yaml")
    assert spec.devices["gpu0"].edits == {"env": ["A=1"]}


@pytest.mark.parametrize("fields, field, words", [
    ({"cdiVersion": "0.2.0"}, "cdiVersion", "not supported (skiff reads 0.3.0 to 0.8.0)"),
    ({"cdiVersion": "1.0"}, "cdiVersion", "not a semantic version"),
    ({"kind": "vendor.com"}, "kind", "is not vendor.com/class"),
    ({"kind": "vendor.com/a/b"}, "kind", "is not vendor.com/class"),
    ({"devices": []}, "devices", "at least one device"),
    ({"devices": [{"name": "-bad"}]}, "devices[0].name", "not a device name"),
    ({"devices": [{"name": "a"}, {"name": "a"}]}, "devices[1].name", "defined twice"),
    ({"devices": [{"name": "a", "extra": 1}]}, "devices[0].extra", "unknown field"),
    ({"containerEdits": {"env": ["NOEQUALS"]}}, "containerEdits.env[0]", "is not NAME=VALUE"),
    ({"containerEdits": {"deviceNodes": [{"path": "dev/x"}]}}, "containerEdits.deviceNodes[0].path",
     "not an absolute path"),
    ({"containerEdits": {"deviceNodes": [{"path": "/dev/x", "type": "z"}]}},
     "containerEdits.deviceNodes[0].type", "not a device type"),
    ({"containerEdits": {"deviceNodes": [{"path": "/dev/x", "permissions": "rx"}]}},
     "containerEdits.deviceNodes[0].permissions", "not made of r, w and m"),
    ({"containerEdits": {"mounts": [{"containerPath": "/x"}]}}, "containerEdits.mounts[0].hostPath", "is required"),
    ({"containerEdits": {"hooks": [{"hookName": "prestop", "path": "/bin/true"}]}},
     "containerEdits.hooks[0].hookName", "is not an OCI hook"),
    ({"containerEdits": {"hooks": [{"hookName": "poststop", "path": "/bin/true", "timeout": 0}]}},
     "containerEdits.hooks[0].timeout", "from 1"),
    ({"devices": [{"name": "a", "containerEdits": {"mounts": [{"hostPath": "/a", "containerPath": "/b",
                                                               "type": "bind"}]}}]},
     "devices[0].containerEdits.mounts[0].type", "needs cdiVersion 0.4.0 or later (the spec says 0.3.0)"),
    ({"containerEdits": {"deviceNodes": [{"path": "/dev/x", "hostPath": "/dev/null"}]}},
     "containerEdits.deviceNodes[0].hostPath", "needs cdiVersion 0.5.0"),
    ({"annotations": {"a": "b"}}, "annotations", "needs cdiVersion 0.6.0"),
    ({"kind": "vendor.com/dev.x"}, "kind (a '.' in its class)", "needs cdiVersion 0.6.0"),
    ({"containerEdits": {"additionalGIDs": [5]}}, "containerEdits.additionalGIDs", "needs cdiVersion 0.7.0"),
    ({"cdiVersion": "0.7.0", "containerEdits": {"additionalGIDs": [-1]}}, "containerEdits.additionalGIDs[0]",
     "must be an integer"),
    ({"cdiVersion": "0.8.0", "containerEdits": {"intelRdt": "x"}}, "containerEdits.intelRdt", "must be an object"),
])
def test_a_broken_spec_names_the_file_and_the_field(fields: dict[str, Any], field: str, words: str) -> None:
    message = error_of(spec_bytes(**fields))
    assert message.startswith(f"CDI spec /etc/cdi/v.json: {field}: ")
    assert words in message


def test_a_spec_that_does_not_parse_names_the_file() -> None:
    assert error_of(b"{", "/x/a.json").startswith("CDI spec /x/a.json: not valid JSON")
    assert error_of(b"a: [", "/x/a.yaml").startswith("CDI spec /x/a.yaml: not valid YAML")


def test_every_supported_version_reads_its_fields() -> None:
    full = {"deviceNodes": [{"path": "/dev/x", "hostPath": "/dev/null"}], "additionalGIDs": [5],
            "mounts": [{"hostPath": "/a", "containerPath": "/b", "type": "bind"}]}
    for version in ("0.7.0", "0.8.0"):
        parse(spec_bytes(cdiVersion=version, containerEdits=full, annotations={"a": "b"}), "/v.json")


def test_qualified_names() -> None:
    assert parse_qualified_name("nvidia.com/gpu=0") == ("nvidia.com/gpu", "0")
    assert parse_qualified_name("nvidia.com/gpu=GPU-1a2b") == ("nvidia.com/gpu", "GPU-1a2b")
    assert is_qualified_name("vendor.com/class=all")
    for name in ("/dev/null", "vendor.com/class", "vendor/class=", "/dev/x=y", "a=b"):
        assert not is_qualified_name(name), name


# --- the registry ------------------------------------------------------------------------

def write(directory: Path, name: str, **fields: Any) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(spec_bytes(**fields))
    return path


def test_the_registry_resolves_names_and_all(tmp_path: Path) -> None:
    write(tmp_path / "etc", "v.json", devices=[{"name": "a"}, {"name": "b"}])
    registry = Registry([str(tmp_path / "etc")])
    assert [d.qualified_name for d in registry.devices()] == ["vendor.com/dev=a", "vendor.com/dev=b"]
    assert [d.name for d in registry.resolve(["vendor.com/dev=b"])] == ["b"]
    assert [d.name for d in registry.resolve(["vendor.com/dev=all", "vendor.com/dev=a"])] == ["a", "b"]
    with pytest.raises(CDIError, match="unresolvable CDI devices vendor.com/dev=c: no CDI spec in"):
        registry.resolve(["vendor.com/dev=c"])


def test_a_later_directory_overrides_and_one_directory_conflicts(tmp_path: Path) -> None:
    write(tmp_path / "etc", "v.json", containerEdits={"env": ["FROM=etc"]})
    write(tmp_path / "run", "v.json", containerEdits={"env": ["FROM=run"]})
    registry = Registry([str(tmp_path / "etc"), str(tmp_path / "run")])
    (device,) = registry.resolve(["vendor.com/dev=a"])
    assert device.spec.edits == {"env": ["FROM=run"]}
    write(tmp_path / "run", "w.json")
    with pytest.raises(CDIError, match="vendor.com/dev=a is defined in both .*v.json and .*w.json"):
        Registry([str(tmp_path / "run")]).devices()


def test_a_broken_spec_fails_its_kind_only(tmp_path: Path) -> None:
    write(tmp_path, "good.json", kind="good.com/dev")
    write(tmp_path, "bad.json", devices=[{"name": "a", "containerEdits": {"env": ["X"]}}])
    registry = Registry([str(tmp_path)])
    assert [d.qualified_name for d in registry.resolve(["good.com/dev=a"])] == ["good.com/dev=a"]
    with pytest.raises(CDIError, match=r"bad.json: devices\[0\].containerEdits.env\[0\]"):
        registry.resolve(["vendor.com/dev=a"])


def test_the_spec_dirs_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKIFF_CDI_SPEC_DIRS", f"{tmp_path}/a:{tmp_path}/b")
    assert Registry().dirs == [f"{tmp_path}/a", f"{tmp_path}/b"]
    monkeypatch.delenv("SKIFF_CDI_SPEC_DIRS")
    assert spec_dirs() == ["/etc/cdi", "/var/run/cdi"]


# --- edits -----------------------------------------------------------------------------

def base_config() -> dict[str, Any]:
    return {"process": {"env": ["PATH=/bin", "A=old"], "user": {"uid": 0, "gid": 0, "additionalGids": [10]}},
            "mounts": [{"destination": "/lib/x", "type": "bind", "source": "/old", "options": ["rbind"]}],
            "linux": {"resources": {}}}


def test_edits_apply_as_the_specification_says(tmp_path: Path) -> None:
    null_link = tmp_path / "nvstandin"
    null_link.symlink_to("/dev/null")
    raw = spec_bytes(cdiVersion="0.7.0", containerEdits={
        "env": ["A=new", "B=spec"],
        "mounts": [{"hostPath": "/host/lib", "containerPath": "/lib/x", "options": ["ro", "nosuid"]}],
        "hooks": [{"hookName": "createContainer", "path": "/bin/hook", "args": ["hook", "x"], "timeout": 5}],
        "additionalGIDs": [0, 44, 10],
    }, devices=[{"name": "a", "containerEdits": {"deviceNodes": [
        {"path": "/dev/nv0", "hostPath": str(null_link), "permissions": "rw"},
        {"path": "/dev/given", "type": "c", "major": 195, "minor": 255, "fileMode": 0o600},
    ], "env": ["C=device"]}}])
    spec = parse(raw, "/v.json")
    config = base_config()
    edits.apply(config, [spec.devices["a"]])
    assert config["process"]["env"] == ["PATH=/bin", "A=new", "B=spec", "C=device"]
    assert config["process"]["user"]["additionalGids"] == [10, 44]
    assert config["mounts"] == [{"destination": "/lib/x", "type": "bind", "source": "/host/lib",
                                 "options": ["ro", "nosuid", "rbind"]}]
    assert config["hooks"] == {"createContainer": [{"path": "/bin/hook", "args": ["hook", "x"], "timeout": 5}]}
    null_mode = stat.S_IMODE(os.stat("/dev/null").st_mode)
    assert config["linux"]["devices"] == [
        {"path": "/dev/nv0", "type": "c", "major": 1, "minor": 3, "fileMode": null_mode},
        {"path": "/dev/given", "type": "c", "major": 195, "minor": 255, "fileMode": 0o600}]
    assert config["linux"]["resources"]["devices"] == [
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"},
        {"allow": True, "type": "c", "major": 195, "minor": 255, "access": "rwm"}]


def test_the_spec_wide_edits_apply_once_for_many_devices() -> None:
    spec = parse(spec_bytes(containerEdits={"hooks": [{"hookName": "poststop", "path": "/bin/true"}]},
                            devices=[{"name": "a"}, {"name": "b"}]), "/v.json")
    config = base_config()
    edits.apply(config, list(spec.devices.values()))
    assert config["hooks"] == {"poststop": [{"path": "/bin/true"}]}


def test_intel_rdt_is_refused_and_a_missing_host_node_is_named(tmp_path: Path) -> None:
    spec = parse(spec_bytes(cdiVersion="0.7.0", containerEdits={"intelRdt": {"closID": "x"}}), "/v.json")
    with pytest.raises(CDIError, match=r"/v.json: containerEdits.intelRdt: Intel RDT .* not supported"):
        edits.apply(base_config(), [spec.devices["a"]])
    spec = parse(spec_bytes(devices=[{"name": "a", "containerEdits": {"deviceNodes": [
        {"path": str(tmp_path / "gone")}]}}]), "/v.json")
    with pytest.raises(CDIError, match=r"deviceNodes\[0\]: host device .*gone: No such file"):
        edits.apply(base_config(), [spec.devices["a"]])
    (tmp_path / "file").write_text("")
    spec = parse(spec_bytes(devices=[{"name": "a", "containerEdits": {"deviceNodes": [
        {"path": str(tmp_path / "file")}]}}]), "/v.json")
    with pytest.raises(CDIError, match="is not a device node"):
        edits.apply(base_config(), [spec.devices["a"]])


# --- the flags, as Docker's client reads them ----------------------------------------------

@pytest.mark.parametrize("value, mapping", [
    ("/dev/fuse", {"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rwm"}),
    ("/dev/sda:/dev/xvdc", {"PathOnHost": "/dev/sda", "PathInContainer": "/dev/xvdc", "CgroupPermissions": "rwm"}),
    ("/dev/sda:r", {"PathOnHost": "/dev/sda", "PathInContainer": "/dev/sda", "CgroupPermissions": "r"}),
    ("/dev/sda:/dev/xvdc:rw", {"PathOnHost": "/dev/sda", "PathInContainer": "/dev/xvdc", "CgroupPermissions": "rw"}),
])
def test_device_flags(value: str, mapping: dict[str, str]) -> None:
    devices.check_device_flag(value)
    assert devices.device_mapping(value) == mapping


@pytest.mark.parametrize("value, reason", [
    ("a:b:c:d", "bad format for path: a:b:c:d"),
    (":/dev/x", "bad format for path: :/dev/x"),
    ("/dev/x:/dev/y:rwx", "bad mode specified: rwx"),
    ("/dev/x:y", "y is not an absolute path"),
    ("dev", "dev is not an absolute path"),
])
def test_bad_device_flags_fail_as_docker(value: str, reason: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        devices.check_device_flag(value)
    assert str(info.value) == reason   # Docker's client: the bare reason (checked after the flags parse)


def test_cgroup_rules() -> None:
    assert devices.cgroup_rule("c 195:* rwm") == {"allow": True, "type": "c", "major": 195, "access": "rwm"}
    assert devices.cgroup_rule("a *:* r") == {"allow": True, "type": "a", "access": "r"}
    assert devices.cgroup_rule("b 8:0 m") == {"allow": True, "type": "b", "major": 8, "minor": 0, "access": "m"}
    for bad in ("c 195 rwm", "x 1:2 r", "c 1:2 rwmx", "c 1:2"):
        with pytest.raises(InvalidArgument, match=f"invalid device cgroup format '{bad}'"):
            devices.check_cgroup_rule(bad)


@pytest.mark.parametrize("value, request_", [
    ("all", {"Driver": "", "Count": -1, "DeviceIDs": None, "Capabilities": [["gpu"]], "Options": {}}),
    ("2", {"Driver": "", "Count": 2, "DeviceIDs": None, "Capabilities": [["gpu"]], "Options": {}}),
    ('"device=0,1"', {"Driver": "", "Count": 0, "DeviceIDs": ["0", "1"], "Capabilities": [["gpu"]], "Options": {}}),
    ("device=GPU-1a", {"Driver": "", "Count": 0, "DeviceIDs": ["GPU-1a"], "Capabilities": [["gpu"]], "Options": {}}),
    ("count=1,capabilities=utility", {"Driver": "", "Count": 1, "DeviceIDs": None,
                                      "Capabilities": [["utility", "gpu"]], "Options": {}}),
    ("driver=nvidia", {"Driver": "nvidia", "Count": 1, "DeviceIDs": None, "Capabilities": [["gpu"]], "Options": {}}),
])
def test_gpus_as_docker_reads_them(value: str, request_: dict[str, Any]) -> None:
    assert devices.parse_gpus(value) == request_


@pytest.mark.parametrize("value, reason", [
    ("x", 'count must be an integer: strconv.Atoi: parsing "x": invalid syntax'),
    ("all,all", "gpu request key 'all' can be specified only once"),
    ("foo=1", "unexpected key 'foo' in 'foo=1'"),
])
def test_bad_gpus_fail_as_docker(value: str, reason: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        devices.parse_gpus(value)
    assert str(info.value) == f'invalid argument "{value}" for "--gpus" flag: {reason}'


def test_device_requests_are_checked_as_dockers_daemon() -> None:
    with pytest.raises(InvalidArgument, match="cannot set both Count and DeviceIDs"):
        devices.check_requests([devices.parse_gpus("device=0,1")])   # unquoted: "1" is a count
    with pytest.raises(DeviceError, match=r'could not select device driver "amd" with capabilities: \[\[gpu\]\]'):
        devices.check_requests([devices.parse_gpus("driver=amd")])
    with pytest.raises(DeviceError, match=r"capabilities: \[\[fpga gpu\]\]"):
        devices.check_requests([devices.parse_gpus("capabilities=fpga")])
    devices.check_requests([devices.parse_gpus('"capabilities=compute,utility"')])
    assert devices.device_requests(["/dev/x", "vendor.com/c=a", "vendor.com/c=b"], []) == [
        {"Driver": "cdi", "Count": 0, "DeviceIDs": ["vendor.com/c=a", "vendor.com/c=b"], "Capabilities": None,
         "Options": {}}]


# --- GPUs selected from an nvidia.com/gpu spec ----------------------------------------------------

def gpu_registry(tmp_path: Path) -> Registry:
    names = ["0", "GPU-aaa", "1", "GPU-bbb", "all"]
    write(tmp_path, "nvidia.json", kind="nvidia.com/gpu", devices=[{"name": n} for n in names])
    return Registry([str(tmp_path)])


@pytest.mark.parametrize("value, names", [
    ("all", ["0", "1"]), ("1", ["0"]), ("2", ["0", "1"]), ('"device=1,GPU-aaa"', ["1", "GPU-aaa"]),
])
def test_gpus_select_nvidia_cdi_devices(tmp_path: Path, value: str, names: list[str]) -> None:
    selected = devices.gpu_device_names([devices.parse_gpus(value)], gpu_registry(tmp_path))
    assert selected == [f"nvidia.com/gpu={n}" for n in names]


def test_gpus_beyond_the_host_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(DeviceError, match="3 GPUs requested, but this host has 2"):
        devices.gpu_device_names([devices.parse_gpus("3")], gpu_registry(tmp_path))
    with pytest.raises(DeviceError, match="no NVIDIA GPU 7 on this host"):
        devices.gpu_device_names([devices.parse_gpus("device=7")], gpu_registry(tmp_path))


def test_gpus_without_spec_or_driver_fail_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nvidia, "driver_present", lambda root="/": False)
    with pytest.raises(DeviceError) as info:
        devices.gpu_device_names([devices.parse_gpus("all")], Registry([str(tmp_path)]))
    assert str(info.value) == ('could not select device driver "" with capabilities: [[gpu]]: no CDI spec for '
                               f"nvidia.com/gpu in {tmp_path} and no NVIDIA driver on this host")


# --- cdi generate --vendor nvidia, over a fake driver tree -------------------------------------------

VERSION = "550.54.15"


def fake_driver(root: Path) -> tuple[str, str]:
    """A driver tree: nodes (links to /dev/null), /proc, libraries, binaries, firmware; and a fake
    nvidia-smi and ldconfig. Returns (nvidia_smi, ldconfig)."""
    for node in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-caps/nvidia-cap1"):
        path = root / "dev" / node
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to("/dev/null")
    proc = root / "proc/driver/nvidia"
    (proc / "gpus/0000:01:00.0").mkdir(parents=True)
    (proc / "gpus/0000:02:00.0").mkdir(parents=True)
    (proc / "version").write_text(f"NVRM version: NVIDIA UNIX x86_64 Kernel Module  {VERSION}  Thu Feb 22 2024\n")
    (proc / "gpus/0000:01:00.0/information").write_text("Model: H200\nGPU UUID: GPU-aaa\nDevice Minor: 0\n")
    (proc / "gpus/0000:02:00.0/information").write_text("Model: H200\nGPU UUID: GPU-bbb\nDevice Minor: 1\n")
    lib = root / "usr/lib/x86_64-linux-gnu"
    lib.mkdir(parents=True)
    cache = []
    for name in ("libcuda.so", "libnvidia-ml.so", "libnvidia-ptxjitcompiler.so", "libcudadebugger.so"):
        (lib / f"{name}.{VERSION}").write_text("elf")
        (lib / f"{name}.1").symlink_to(f"{name}.{VERSION}")
        cache.append(f"\t{name}.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/{name}.1")
    (lib / "libcuda.so.1.old").write_text("")
    (lib / "libnvidia-old.so.1").write_text("other version")
    cache.append("\tlibnvidia-old.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libnvidia-old.so.1")
    cache.append("\tlibcuda.so.1 (libc6) => /usr/lib/i386-linux-gnu/libcuda.so.1")
    cache.append("\tlibz.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libz.so.1")
    (root / "usr/bin").mkdir(parents=True)
    for name in ("nvidia-smi", "nvidia-debugdump"):
        (root / "usr/bin" / name).write_text("#!/bin/sh\n")
        (root / "usr/bin" / name).chmod(0o755)
    (root / f"lib/firmware/nvidia/{VERSION}").mkdir(parents=True)
    tools = root.parent / "tools"
    tools.mkdir()
    smi, ldconfig = tools / "nvidia-smi", tools / "ldconfig"
    smi.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H200 (UUID: GPU-aaa)'\necho 'GPU 1: NVIDIA H200 (UUID: GPU-bbb)'\n")
    ldconfig.write_text("#!/bin/sh\necho '%d libs found in cache'\n" % len(cache) +
                        "".join(f"echo '{line}'\n" for line in cache))
    smi.chmod(0o755)
    ldconfig.chmod(0o755)
    return str(smi), str(ldconfig)


def test_generate_finds_what_the_driver_tree_has(tmp_path: Path) -> None:
    root = tmp_path / "root"
    smi, ldconfig = fake_driver(root)
    spec = nvidia.generate(str(root), smi, ldconfig)
    parsed = parse(json.dumps(spec).encode(), "/gen.json")      # a valid spec
    assert parsed.kind == "nvidia.com/gpu" and spec["cdiVersion"] == "0.5.0"
    assert [d["name"] for d in spec["devices"]] == ["0", "GPU-aaa", "1", "GPU-bbb", "all"]
    assert spec["devices"][3]["containerEdits"]["deviceNodes"] == [
        {"path": "/dev/nvidia1", "hostPath": f"{root}/dev/nvidia1"}]
    assert [n["path"] for n in spec["devices"][4]["containerEdits"]["deviceNodes"]] == ["/dev/nvidia0", "/dev/nvidia1"]
    common = spec["containerEdits"]
    assert [n["path"] for n in common["deviceNodes"]] == [
        "/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-caps/nvidia-cap1"]
    lib = "/usr/lib/x86_64-linux-gnu"
    mounts = {m["containerPath"]: m for m in common["mounts"]}
    assert sorted(mounts) == sorted([f"{lib}/libcuda.so.{VERSION}", f"{lib}/libcudadebugger.so.{VERSION}",
                                     f"{lib}/libnvidia-ml.so.{VERSION}", f"{lib}/libnvidia-ptxjitcompiler.so.{VERSION}",
                                     "/usr/bin/nvidia-smi", "/usr/bin/nvidia-debugdump",
                                     f"/lib/firmware/nvidia/{VERSION}"])
    assert mounts["/usr/bin/nvidia-smi"] == {"hostPath": f"{root}/usr/bin/nvidia-smi",
                                             "containerPath": "/usr/bin/nvidia-smi",
                                             "options": ["ro", "nosuid", "nodev", "bind"]}
    (hook,) = common["hooks"]
    assert hook["hookName"] == "createContainer" and hook["args"][-1] == lib
    assert common["env"] == ["NVIDIA_VISIBLE_DEVICES=void"]


def test_generate_without_nvidia_smi_reads_proc(tmp_path: Path) -> None:
    root = tmp_path / "root"
    _, ldconfig = fake_driver(root)
    (root / "usr/bin/nvidia-smi").unlink()
    gpus = nvidia.list_gpus(str(root), None)
    assert gpus == [nvidia.GPU(0, "GPU-aaa", 0), nvidia.GPU(1, "GPU-bbb", 1)]
    assert nvidia.driver_version(str(root)) == VERSION


def test_generate_without_a_driver_says_so(tmp_path: Path) -> None:
    with pytest.raises(DeviceError, match="no NVIDIA driver under"):
        nvidia.generate(str(tmp_path))


def test_gpus_with_a_driver_but_no_spec_get_one_for_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    generated = {"cdiVersion": "0.5.0", "kind": "nvidia.com/gpu",
                 "devices": [{"name": "0"}, {"name": "GPU-aaa"}, {"name": "all"}]}
    monkeypatch.setattr(nvidia, "driver_present", lambda root="/": True)
    monkeypatch.setattr(nvidia, "generate", lambda *args: generated)
    registry = Registry([str(tmp_path)])
    assert devices.gpu_device_names([devices.parse_gpus("all")], registry) == ["nvidia.com/gpu=0"]
    assert [d.qualified_name for d in registry.resolve(["nvidia.com/gpu=GPU-aaa"])] == ["nvidia.com/gpu=GPU-aaa"]
