"""Checking an OCI ``linux.resources`` object before anything is written.

The bundle may come from elsewhere than skiff's own flag parsing, so the
runtime path checks types and signs again; the messages name the field.
"""

from __future__ import annotations

# The ABC itself, from the module os has loaded already: collections.abc would import collections.
from _collections_abc import Mapping

from skiff.errors import CgroupError

TYPE_CHECKING = False   # typing.TYPE_CHECKING without importing typing on the hot path
if TYPE_CHECKING:
    from typing import AbstractSet, Any

_INTEGER_FIELDS = {
    "memory": ("limit", "reservation", "swap", "kernel", "kernelTCP", "swappiness"),
    "cpu": ("shares", "quota", "period", "realtimeRuntime", "realtimePeriod"),
    "pids": ("limit",),
    "blockIO": ("weight", "leafWeight"),
}

# Docker's default device allow list (after deny-all): null, zero, full, random,
# urandom, tty, console, ptmx, the pts devices, tun, and mknod of any c/b device.
DEFAULT_DEVICE_RULES: list[dict[str, Any]] = [
    {"allow": False, "access": "rwm"},
    {"allow": True, "type": "c", "major": None, "minor": None, "access": "m"},
    {"allow": True, "type": "b", "major": None, "minor": None, "access": "m"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
    {"allow": True, "type": "c", "major": 136, "minor": None, "access": "rwm"},
    {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
]


def section(resources: Mapping[str, Any] | None, name: str) -> Mapping[str, Any]:
    value = (resources or {}).get(name) or {}
    return value


def check(resources: Mapping[str, Any] | None) -> None:
    """Raise CgroupError naming the first malformed field of ``resources``."""
    if resources is None:
        return
    if not isinstance(resources, Mapping):
        raise CgroupError(f"linux.resources must be an object, not {type(resources).__name__}")
    for name, fields in _INTEGER_FIELDS.items():
        part = resources.get(name)
        if part is None:
            continue
        if not isinstance(part, Mapping):
            raise CgroupError(f"linux.resources.{name} must be an object")
        for key in fields:
            value = part.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise CgroupError(f"linux.resources.{name}.{key}: expected an integer, got {value!r}")
    _check_non_negative(resources, "cpu", "shares", "period")
    _check_non_negative(resources, "blockIO", "weight")
    for key in ("limit", "swap", "reservation"):
        value = section(resources, "memory").get(key)
        if value is not None and value < -1:
            raise CgroupError(f"linux.resources.memory.{key}: {value} is negative (use -1 for no limit)")
    for key in ("cpus", "mems"):
        value = section(resources, "cpu").get(key)
        if value is not None:
            parse_list(value, f"linux.resources.cpu.{key}")
    weight = section(resources, "blockIO").get("weight")
    if weight and not 10 <= weight <= 1000:
        raise CgroupError(f"linux.resources.blockIO.weight: {weight} is outside 10-1000")
    for rule in resources.get("devices") or []:
        _check_device_rule(rule)


def _check_non_negative(resources: Mapping[str, Any], name: str, *keys: str) -> None:
    for key in keys:
        value = section(resources, name).get(key)
        if value is not None and value < 0:
            raise CgroupError(f"linux.resources.{name}.{key}: {value} is negative")


def _check_device_rule(rule: Any) -> None:
    if not isinstance(rule, Mapping) or not isinstance(rule.get("allow"), bool):
        raise CgroupError(f"linux.resources.devices: invalid rule {rule!r} (needs a boolean 'allow')")
    if rule.get("type", "a") not in ("a", "b", "c"):
        raise CgroupError(f"linux.resources.devices: invalid device type in {rule!r} (a, b or c)")
    access = rule.get("access", "rwm") or "rwm"
    if not isinstance(access, str) or set(access) - set("rwm"):
        raise CgroupError(f"linux.resources.devices: invalid access {access!r} in {rule!r} (r, w, m)")
    for key in ("major", "minor"):
        number = rule.get(key)
        if number is None or number == -1:
            continue   # any
        if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= 0xFFFFFFFF:
            raise CgroupError(f"linux.resources.devices: invalid {key} {number!r} in {rule!r} "
                              "(a device number, or -1 for any)")


def parse_list(text: str, what: str) -> set[int]:
    """A kernel list like ``0-3,5``; CgroupError naming ``what`` if malformed."""
    numbers: set[int] = set()
    if not isinstance(text, str):
        raise CgroupError(f"{what}: expected a list like 0-3,5, got {text!r}")
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        low, dash, high = item.partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise CgroupError(f"{what}: invalid list {text!r} (expected e.g. 0-3,5)")
        first, last = int(low), int(high) if dash else int(low)
        if last < first:
            raise CgroupError(f"{what}: invalid range {item!r} in {text!r}")
        numbers.update(range(first, last + 1))
    return numbers


def device_rule_line(rule: Mapping[str, Any]) -> str:
    """A v1 devices.allow/deny line: ``c 1:3 rwm``; a missing or -1 number is ``*``."""
    kind = rule.get("type") or "a"

    def number(key: str) -> str:
        value = rule.get(key)
        return "*" if value is None or value == -1 else str(value)

    return f"{kind} {number('major')}:{number('minor')} {rule.get('access') or 'rwm'}"


def needed_controllers(resources: Mapping[str, Any] | None, version: int) -> list[tuple[str, str]]:
    """``(field, controller)`` for each part of ``resources`` that asks for something.

    An empty or zero part asks nothing (Docker's "not set"). ``devices`` is left
    out: every container carries the default rules, and v2 filters them elsewhere.
    """
    wanted: list[tuple[str, str]] = []
    memory = section(resources, "memory")
    if any(memory.get(key) is not None for key in memory):
        wanted.append(("memory", "memory"))
    cpu = section(resources, "cpu")
    if any(cpu.get(key) for key in ("shares", "quota", "period", "realtimeRuntime", "realtimePeriod", "idle")):
        wanted.append(("cpu", "cpu"))
    if cpu.get("cpus") or cpu.get("mems"):
        wanted.append(("cpu.cpus", "cpuset"))
    if section(resources, "pids").get("limit") is not None:
        wanted.append(("pids", "pids"))
    if any(section(resources, "blockIO").values()):
        wanted.append(("blockIO", "blkio" if version == 1 else "io"))
    if (resources or {}).get("hugepageLimits"):
        wanted.append(("hugepageLimits", "hugetlb"))
    if (resources or {}).get("rdma"):
        wanted.append(("rdma", "rdma"))
    network = section(resources, "network")
    if network.get("classID") is not None:
        wanted.append(("network.classID", "net_cls"))
    if network.get("priorities"):
        wanted.append(("network.priorities", "net_prio"))
    return wanted


def check_controllers(resources: Mapping[str, Any] | None, version: int, available: AbstractSet[str]) -> None:
    """Refuse, as runc does at create, limits whose controller this host does not offer.

    Accepting them would leave the container unlimited while its config says otherwise.
    """
    for field, controller in needed_controllers(resources, version):
        if controller not in available:
            where = "no v1 hierarchy carries it" if version == 1 else "cgroup v2 does not offer it here"
            raise CgroupError(f"linux.resources.{field} needs the {controller} cgroup controller, "
                              f"which is not available on this host ({where})",
                              hint=f"remove linux.resources.{field} from the config")


def rdma_line(device: str, limits: Mapping[str, Any]) -> str:
    """An rdma.max line: ``mlx5_1 hca_handle=3 hca_object=max``."""
    def value(key: str) -> str:
        number = limits.get(key)
        return "max" if number is None else str(number)

    return f"{device} hca_handle={value('hcaHandles')} hca_object={value('hcaObjects')}"
