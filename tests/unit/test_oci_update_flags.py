"""skiff-oci's pure parts: update's flags to linux.resources as runc 1.1's update.go reads them, spec --rootless."""

from __future__ import annotations

import pytest

from skiff.errors import InvalidArgument
from skiff.oci.main import _parser
from skiff.oci.update_flags import resources_from_flags


def test_each_flag_sets_its_field_with_runcs_units() -> None:
    assert resources_from_flags({
        "memory": "512m", "memory-reservation": "1.5g", "memory-swap": "1073741824", "kernel-memory": "64k",
        "cpu-share": "512", "cpu-period": "100000", "cpu-quota": "-1", "cpu-rt-period": "1000000",
        "cpu-rt-runtime": "950000", "cpuset-cpus": "0-1", "cpuset-mems": "0", "pids-limit": "-1",
        "blkio-weight": "300",
    }) == {
        "memory": {"limit": 512 << 20, "reservation": 3 << 29, "swap": 1 << 30, "kernel": 64 << 10},
        "cpu": {"shares": 512, "period": 100000, "quota": -1, "realtimePeriod": 1000000,
                "realtimeRuntime": 950000, "cpus": "0-1", "mems": "0"},
        "pids": {"limit": -1},
        "blockIO": {"weight": 300},
    }


def test_flags_not_given_and_zeros_change_nothing() -> None:
    assert resources_from_flags({"memory": None, "cpu-share": "0", "pids-limit": "0", "cpuset-cpus": ""}) == {}


def test_lifting_the_memory_limit_lifts_swap_with_it() -> None:
    assert resources_from_flags({"memory": "-1"}) == {"memory": {"limit": -1, "swap": -1}}
    assert resources_from_flags({"memory": "-1", "memory-swap": "2g"}) == {"memory": {"limit": -1, "swap": 2 << 30}}


def test_dockers_cpu_shares_spelling_is_taken() -> None:
    assert resources_from_flags({"cpu-shares": "256"}) == {"cpu": {"shares": 256}}


@pytest.mark.parametrize("flag, value, words", [
    ("memory", "12x", "invalid value for memory: invalid size: '12x'"),
    ("cpu-period", "-5", "invalid value for cpu-period: '-5' must not be negative"),
    ("cpu-quota", "lots", "invalid value for cpu-quota: 'lots' is not an integer"),
])
def test_bad_values_name_the_flag(flag: str, value: str, words: str) -> None:
    with pytest.raises(InvalidArgument, match=words):
        resources_from_flags({flag: value})


def test_the_parser_takes_runcs_flags_and_no_longer_needs_resources() -> None:
    args = _parser().parse_args(["update", "--memory", "1g", "--cpu-shares", "2", "--l3-cache-schema", "L3:0=f",
                                 "c1"])
    assert (args.memory, args.cpu_share, args.l3_cache_schema, args.resources) == ("1g", "2", "L3:0=f", None)
    assert _parser().parse_args(["update", "-r", "-", "c1"]).resources == "-"


def test_rootless_is_runcs_to_rootless() -> None:
    from skiff.oci.commands import rootless
    from skiff.runtime.spec import default_spec

    spec = default_spec()
    spec["linux"]["resources"] = {"devices": [{"allow": False, "access": "rwm"}]}
    spec["mounts"].append({"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["uid=5", "mode=755"]})
    out = rootless(spec, 1234, 5678)
    assert [ns["type"] for ns in out["linux"]["namespaces"]] == ["pid", "ipc", "uts", "mount", "cgroup", "user"]
    assert out["linux"]["uidMappings"] == [{"containerID": 0, "hostID": 1234, "size": 1}]
    assert out["linux"]["gidMappings"] == [{"containerID": 0, "hostID": 5678, "size": 1}]
    assert [m for m in out["mounts"] if m["destination"] == "/sys"] == [
        {"destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}]
    devpts = next(m for m in out["mounts"] if m["destination"] == "/dev/pts")
    assert "gid=5" not in devpts["options"] and "mode=0620" in devpts["options"]
    assert out["mounts"][-1]["options"] == ["mode=755"] and "resources" not in out["linux"]
