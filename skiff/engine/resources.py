"""Docker's resource flags turned into an OCI ``linux.resources`` object.

Parsing and checks follow Docker's CLI and daemon, messages included, so a user
sees what Docker would print. Every check runs before anything is created; the
cgroup package (skiff.cgroups) only applies the object this returns.
"""

from __future__ import annotations

import os
import re

from skiff.cgroups.resources import DEFAULT_DEVICE_RULES
from skiff.errors import CgroupError, FlagValueError, InvalidArgument
from skiff.units import MiB, ram_in_bytes

TYPE_CHECKING = False   # typing.TYPE_CHECKING without importing typing on the hot path
if TYPE_CHECKING:
    from typing import Any

MIN_MEMORY = 6 * MiB          # Docker's linuxMinMemory
DEFAULT_CPU_PERIOD = 100000           # 100 ms, in microseconds

Value = str | int | float | None


def resources_from_flags(memory: Value = None, memory_swap: Value = None, memory_reservation: Value = None,
                         cpus: Value = None, cpu_shares: Value = None, cpu_period: Value = None,
                         cpu_quota: Value = None, cpuset_cpus: str | None = None, cpuset_mems: str | None = None,
                         pids_limit: Value = None, blkio_weight: Value = None,
                         memory_swappiness: Value = None, oom_kill_disable: bool = False,
                         update: bool = False) -> dict[str, Any]:
    """Validate Docker's resource flags and express them as OCI ``linux.resources``.

    Raises InvalidArgument for a value that does not parse, CgroupError for one
    the host cannot honour. Docker's defaults apply: ``--memory`` without
    ``--memory-swap`` allows as much swap again; 0 means "not set".

    ``update``: the flags of ``skiff update``, checked as Docker's daemon checks an update
    (``--memory-swap`` alone is allowed), and only what they change: no device rules, no
    default swap.
    """
    mem = _size(memory, "-m, --memory")
    swap = _swap(memory_swap)
    reservation = _size(memory_reservation, "--memory-reservation")
    nano_cpus = _nano_cpus(cpus)
    shares = _int(cpu_shares, "-c, --cpu-shares")
    period = _int(cpu_period, "--cpu-period")
    quota = _int(cpu_quota, "--cpu-quota")
    pids = _int(pids_limit, "--pids-limit")
    weight = _int(blkio_weight, "--blkio-weight", unsigned=True)
    swappiness = _swappiness(memory_swappiness)

    _check_memory(mem, swap, reservation, update)
    _check_cpu(nano_cpus, shares, period, quota)
    if pids is not None and pids < -1:
        raise FlagValueError(f'invalid argument "{pids_limit}" for "--pids-limit" flag: '
                              "must be a positive number, or -1 for no limit")
    if weight and not 10 <= weight <= 1000:
        raise CgroupError("Range of blkio weight is from 10 to 1000")
    _check_cpuset(cpuset_cpus, "/sys/devices/system/cpu/online", "cpus", "CPUs")
    _check_cpuset(cpuset_mems, "/sys/devices/system/node/online", "mems", "memory nodes")

    resources: dict[str, Any] = {} if update else {"devices": [dict(rule) for rule in DEFAULT_DEVICE_RULES]}
    memory_part: dict[str, int] = {}
    if mem:
        memory_part["limit"] = mem
        if swap or not update:
            memory_part["swap"] = swap if swap else mem * 2
    elif swap == -1 or (update and swap):
        memory_part["swap"] = swap
    if reservation:
        memory_part["reservation"] = reservation
    if swappiness is not None:
        memory_part["swappiness"] = swappiness
    if oom_kill_disable:
        memory_part["disableOOMKiller"] = True
    if memory_part:
        resources["memory"] = memory_part

    cpu_part: dict[str, Any] = {}
    if shares:
        cpu_part["shares"] = shares
    if nano_cpus:
        cpu_part["period"] = DEFAULT_CPU_PERIOD
        cpu_part["quota"] = nano_cpus * DEFAULT_CPU_PERIOD // 1_000_000_000
    if period:
        cpu_part["period"] = period
    if quota:
        cpu_part["quota"] = quota
    if cpuset_cpus:
        cpu_part["cpus"] = cpuset_cpus
    if cpuset_mems:
        cpu_part["mems"] = cpuset_mems
    if cpu_part:
        resources["cpu"] = cpu_part
    if pids:
        resources["pids"] = {"limit": pids if pids > 0 else -1}
    if weight:
        resources["blockIO"] = {"weight": weight}
    return resources


# --- parsing ------------------------------------------------------------------

def _flag_error(value: Value, flag: str, reason: str) -> FlagValueError:
    return FlagValueError(f'invalid argument "{value}" for "{flag}" flag: {reason}')


def _size(value: Value, flag: str) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise _flag_error(value, flag, f"invalid size: '{value}'")
        return value
    try:
        return ram_in_bytes(str(value))
    except ValueError as exc:
        raise _flag_error(value, flag, str(exc)) from None


def _swap(value: Value) -> int:
    if value in (-1, "-1"):
        return -1
    return _size(value, "--memory-swap")


def _int(value: Value, flag: str, unsigned: bool = False) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        text = str(value)
        if not re.fullmatch(r"[+-]?\d+" if not unsigned else r"\+?\d+", text):
            parser = "strconv.ParseUint" if unsigned else "strconv.ParseInt"
            raise _flag_error(value, flag, f'{parser}: parsing "{text}": invalid syntax')
        number = int(text)
    if unsigned and number < 0:
        raise _flag_error(value, flag, f'strconv.ParseUint: parsing "{value}": invalid syntax')
    return number


def _swappiness(value: Value) -> int | None:
    """--memory-swappiness: 0-100; Docker's client default -1 means "not set"."""
    number = _int(value, "--memory-swappiness")
    if number is None or number == -1:
        return None
    if not 0 <= number <= 100:
        raise InvalidArgument(f"invalid value: {number}. Valid memory swappiness range is 0-100")
    return number


def discard_unsupported(resources: dict[str, Any], root: str | None = None) -> list[str]:
    """Drop what this host's memory cgroup cannot do, with Docker 20.10's warnings.

    Docker's daemon discards --memory-swappiness and --oom-kill-disable where the
    memory controller lacks memory.swappiness / memory.oom_control: always on
    cgroup v2, which has neither. ``root``: a fake cgroup tree (tests).
    """
    memory = resources.get("memory")
    if not memory or ("swappiness" not in memory and "disableOOMKiller" not in memory):
        return []
    from skiff.cgroups.detect import memory_features

    swappiness_file, oom_file = memory_features(root)
    warnings = []
    if "swappiness" in memory and not swappiness_file:
        warnings.append("Your kernel does not support memory swappiness capabilities or the cgroup is not "
                        "mounted. Memory swappiness discarded.")
        del memory["swappiness"]
    if "disableOOMKiller" in memory and not oom_file:
        warnings.append("Your kernel does not support OomKillDisable. OomKillDisable discarded.")
        del memory["disableOOMKiller"]
    if memory.get("disableOOMKiller") and not memory.get("limit"):
        warnings.append("OOM killer is disabled for the container, but no memory limit is set, this can result "
                        "in the system running out of resources.")
    if not memory:
        del resources["memory"]
    return warnings


def _nano_cpus(value: Value) -> int | None:
    """Docker's NanoCPUs: a rational number of CPUs, exact to the nanosecond."""
    if value is None or value == "":
        return None
    from fractions import Fraction

    try:
        cpus = Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        raise _flag_error(value, "--cpus", f"failed to parse {value} as a rational number") from None
    nano = cpus * 1_000_000_000
    if nano.denominator != 1:
        raise _flag_error(value, "--cpus", "value is too precise")
    return int(nano)


# --- checks (the daemon's) ------------------------------------------------------

def _check_memory(memory: int, swap: int, reservation: int, update: bool = False) -> None:
    if memory and memory < MIN_MEMORY:
        raise CgroupError("Minimum memory limit allowed is 6MB")
    if memory > 0 and swap > 0 and swap < memory:
        raise CgroupError("Minimum memoryswap limit should be larger than memory limit, see usage")
    if memory == 0 and swap > 0 and not update:
        raise CgroupError("You should always set the Memory limit when using Memoryswap limit, see usage")
    if memory > 0 and reservation > 0 and memory < reservation:
        raise CgroupError("Minimum memory limit can not be less than memory reservation limit, see usage")
    if reservation and reservation < MIN_MEMORY:
        raise CgroupError("Minimum memory reservation allowed is 6MB")


def host_cpu_count() -> int:
    return len(os.sched_getaffinity(0))


def _check_cpu(nano_cpus: int | None, shares: int | None, period: int | None, quota: int | None) -> None:
    if nano_cpus is not None:
        if period:
            raise CgroupError("Conflicting options: Nano CPUs and CPU Period cannot both be set")
        if quota:
            raise CgroupError("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
        count = host_cpu_count()
        # Docker reads 0 as "unset"; skiff refuses it, since a user who wrote it meant a limit.
        if nano_cpus <= 0 or nano_cpus > count * 1_000_000_000:
            raise CgroupError(f"Range of CPUs is from 0.01 to {count}.00, as there are only {count} CPUs available")
    if shares is not None and shares < 0:
        raise FlagValueError(f'invalid argument "{shares}" for "-c, --cpu-shares" flag: must not be negative')
    if period and (period < 1000 or period > 1000000):
        raise CgroupError("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
    if quota is not None and quota < -1:
        raise FlagValueError(f'invalid argument "{quota}" for "--cpu-quota" flag: '
                              "must be a positive number, or -1 for no limit")
    if quota and 0 < quota < 1000:
        raise CgroupError("CPU cfs quota can not be less than 1ms (i.e. 1000)")


def _check_cpuset(requested: str | None, online_file: str, kind: str, noun: str) -> None:
    if not requested:
        return
    from skiff.cgroups.resources import parse_list

    try:
        wanted = parse_list(requested, kind)
    except CgroupError:
        raise CgroupError(f"Invalid value {requested} for cpuset {kind}") from None
    try:
        with open(online_file, encoding="ascii") as f:
            online_text = f.read().strip()
    except FileNotFoundError:
        online_text = "0"
    if not wanted <= parse_list(online_text, online_file):
        raise CgroupError(f"Requested {noun} are not available - requested {requested}, available: {online_text}")
