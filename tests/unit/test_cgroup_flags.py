"""Docker's resource flags and --ulimit: good inputs give exact OCI values, bad ones Docker's messages."""

from __future__ import annotations

import resource

import pytest

from skiff.engine.resources import host_cpu_count, resources_from_flags
from skiff.engine.ulimits import rlimits_from_ulimits
from skiff.units import ram_in_bytes
from skiff.errors import CgroupError, InvalidArgument

MiB = 1 << 20
N = host_cpu_count()


@pytest.mark.parametrize("text, expected", [
    ("1024", 1024), ("1k", 1024), ("1K", 1024), ("512m", 512 * MiB), ("512M", 512 * MiB), ("512mb", 512 * MiB),
    ("512MiB", 512 * MiB), ("1g", 1 << 30), ("1.5g", 3 << 29), ("1 g", 1 << 30), ("2t", 2 << 40), ("7b", 7),
])
def test_sizes_parse_as_docker(text: str, expected: int) -> None:
    assert ram_in_bytes(text) == expected


def test_memory_flags_become_limit_swap_and_reservation() -> None:
    assert resources_from_flags(memory="512m")["memory"] == {"limit": 512 * MiB, "swap": 1024 * MiB}
    assert resources_from_flags(memory="64m", memory_swap="100m", memory_reservation="32m")["memory"] == \
        {"limit": 64 * MiB, "swap": 100 * MiB, "reservation": 32 * MiB}
    assert resources_from_flags(memory="64m", memory_swap="-1")["memory"] == {"limit": 64 * MiB, "swap": -1}
    assert resources_from_flags(memory=64 * MiB)["memory"]["limit"] == 64 * MiB


def test_cpu_flags() -> None:
    assert resources_from_flags(cpus="0.5")["cpu"] == {"period": 100000, "quota": 50000}
    assert resources_from_flags(cpus="1.25")["cpu"] == {"period": 100000, "quota": 125000}
    assert resources_from_flags(cpu_shares="512", cpu_period="50000", cpu_quota="25000")["cpu"] == \
        {"shares": 512, "period": 50000, "quota": 25000}
    assert resources_from_flags(cpu_quota=-1)["cpu"] == {"quota": -1}
    assert resources_from_flags(cpuset_cpus="0", cpuset_mems="0")["cpu"] == {"cpus": "0", "mems": "0"}


def test_pids_blkio_and_nothing() -> None:
    assert resources_from_flags(pids_limit="5")["pids"] == {"limit": 5}
    assert resources_from_flags(pids_limit="-1")["pids"] == {"limit": -1}
    assert resources_from_flags(blkio_weight="300")["blockIO"] == {"weight": 300}
    empty = resources_from_flags()
    assert set(empty) == {"devices"}
    assert empty["devices"][0] == {"allow": False, "access": "rwm"}


BAD = [
    (dict(memory="10x"), InvalidArgument, """invalid argument "10x" for "-m, --memory" flag: invalid size: '10x'"""),
    (dict(memory="-1"), InvalidArgument, """invalid argument "-1" for "-m, --memory" flag: invalid size: '-1'"""),
    (dict(memory="1.2.3m"), InvalidArgument, """invalid argument "1.2.3m" for "-m, --memory" flag: invalid size: '1.2.3m'"""),
    (dict(memory="4m"), CgroupError, "Minimum memory limit allowed is 6MB"),
    (dict(memory="64m", memory_swap="32m"), CgroupError,
     "Minimum memoryswap limit should be larger than memory limit, see usage"),
    (dict(memory_swap="32m"), CgroupError,
     "You should always set the Memory limit when using Memoryswap limit, see usage"),
    (dict(memory_swap="-2"), InvalidArgument, """invalid argument "-2" for "--memory-swap" flag: invalid size: '-2'"""),
    (dict(memory="64m", memory_reservation="128m"), CgroupError,
     "Minimum memory limit can not be less than memory reservation limit, see usage"),
    (dict(memory_reservation="1m"), CgroupError, "Minimum memory reservation allowed is 6MB"),
    (dict(memory_reservation="x"), InvalidArgument,
     """invalid argument "x" for "--memory-reservation" flag: invalid size: 'x'"""),
    (dict(cpus="0"), CgroupError, f"Range of CPUs is from 0.01 to {N}.00, as there are only {N} CPUs available"),
    (dict(cpus="-1"), CgroupError, f"Range of CPUs is from 0.01 to {N}.00, as there are only {N} CPUs available"),
    (dict(cpus=str(N + 1)), CgroupError,
     f"Range of CPUs is from 0.01 to {N}.00, as there are only {N} CPUs available"),
    (dict(cpus="abc"), InvalidArgument, """invalid argument "abc" for "--cpus" flag: failed to parse abc as a rational number"""),
    (dict(cpus="0.0000000001"), InvalidArgument, """invalid argument "0.0000000001" for "--cpus" flag: value is too precise"""),
    (dict(cpus="1", cpu_period="100000"), CgroupError, "Conflicting options: Nano CPUs and CPU Period cannot both be set"),
    (dict(cpus="1", cpu_quota="50000"), CgroupError, "Conflicting options: Nano CPUs and CPU Quota cannot both be set"),
    (dict(cpu_shares="-5"), InvalidArgument, """invalid argument "-5" for "-c, --cpu-shares" flag: must not be negative"""),
    (dict(cpu_shares="ten"), InvalidArgument,
     """invalid argument "ten" for "-c, --cpu-shares" flag: strconv.ParseInt: parsing "ten": invalid syntax"""),
    (dict(cpu_period="500"), CgroupError,
     "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"),
    (dict(cpu_period="-100"), CgroupError,
     "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"),
    (dict(cpu_quota="999"), CgroupError, "CPU cfs quota can not be less than 1ms (i.e. 1000)"),
    (dict(cpu_quota="-5"), InvalidArgument,
     """invalid argument "-5" for "--cpu-quota" flag: must be a positive number, or -1 for no limit"""),
    (dict(pids_limit="-3"), InvalidArgument,
     """invalid argument "-3" for "--pids-limit" flag: must be a positive number, or -1 for no limit"""),
    (dict(pids_limit="many"), InvalidArgument,
     """invalid argument "many" for "--pids-limit" flag: strconv.ParseInt: parsing "many": invalid syntax"""),
    (dict(blkio_weight="5"), CgroupError, "Range of blkio weight is from 10 to 1000"),
    (dict(blkio_weight="-10"), InvalidArgument,
     """invalid argument "-10" for "--blkio-weight" flag: strconv.ParseUint: parsing "-10": invalid syntax"""),
    (dict(cpuset_cpus="0-x"), CgroupError, "Invalid value 0-x for cpuset cpus"),
    (dict(cpuset_cpus=str(N + 3)), CgroupError,
     f"Requested CPUs are not available - requested {N + 3}, available: "
     + open("/sys/devices/system/cpu/online").read().strip()),
    (dict(cpuset_mems="7"), CgroupError, "Requested memory nodes are not available - requested 7, available: 0"),
]


@pytest.mark.parametrize("flags, error, message", BAD, ids=[repr(case[0]) for case in BAD])
def test_bad_flags_give_dockers_message(flags: dict[str, str], error: type[Exception], message: str) -> None:
    with pytest.raises(error) as caught:
        resources_from_flags(**flags)
    assert str(caught.value) == message
    assert caught.value.exit_code == 125  # type: ignore[attr-defined]


# --- --ulimit ---------------------------------------------------------------------

def test_ulimits_become_oci_rlimits() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert rlimits_from_ulimits(["nofile=512:1024", "core=0", "nofile=100:200"]) == [
        {"type": "RLIMIT_NOFILE", "hard": 200, "soft": 100},
        {"type": "RLIMIT_CORE", "hard": 0, "soft": 0},
    ]
    core_hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
    if core_hard == resource.RLIM_INFINITY:
        assert rlimits_from_ulimits(["core=-1"]) == [{"type": "RLIMIT_CORE", "hard": 2**64 - 1, "soft": 2**64 - 1}]


@pytest.mark.parametrize("value, message", [
    ("nofile", "invalid ulimit argument: nofile"),
    ("files=10", "invalid ulimit type: files"),
    ("nofile=1:2:3", "too many limit value arguments - 1:2:3, can only have up to two, `soft[:hard]`"),
    ("nofile=20:10", "ulimit soft limit must be less than or equal to hard limit: 20 > 10"),
    ("nofile=-1:10", "ulimit soft limit must be less than or equal to hard limit: -1 > 10"),
    ("nofile=x", 'invalid argument "nofile=x" for "--ulimit" flag: strconv.ParseInt: parsing "x": invalid syntax'),
    ("nofile=-5", 'invalid argument "nofile=-5" for "--ulimit" flag: -5 is negative (-1 means unlimited)'),
])
def test_bad_ulimits(value: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        rlimits_from_ulimits([value])
    assert str(caught.value) == message


def test_raising_a_hard_limit_without_cap_sys_resource_is_a_clear_error() -> None:
    from skiff.engine.ulimits import CAP_SYS_RESOURCE, _has_capability

    if _has_capability(CAP_SYS_RESOURCE):
        pytest.skip("this host grants CAP_SYS_RESOURCE: raising a hard limit is allowed")
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    with pytest.raises(CgroupError) as caught:
        rlimits_from_ulimits([f"nofile=1024:{hard + 1}"])
    assert f"--ulimit nofile: cannot raise the hard limit from {hard} to {hard + 1}" in str(caught.value)
    assert caught.value.exit_code == 125
    # Lowering is always allowed.
    assert rlimits_from_ulimits([f"nofile=64:{hard}"])[0]["hard"] == hard
