"""``skiff-oci update``'s resource flags, read as runc 1.1's ``update`` reads them.

runc's rules (update.go): with ``-r FILE`` (or ``-r -``, stdin) the file is the whole update and
every other flag is ignored. Otherwise each flag given sets one field of ``linux.resources``;
a zero leaves the field as it is (runc's cgroup writers skip zeros), ``-1`` lifts a memory
limit. Memory sizes take go-units' RAMInBytes (``512m``, ``1g``: binary multiples), like
``docker update -m``. Intel RDT schemas need the host's resctrl filesystem.
"""

from __future__ import annotations

import os

from skiff.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# flag -> (section, field, kind): "size" (RAMInBytes or -1), "uint", "int", "list"
RESOURCE_FLAGS: dict[str, tuple[str, str, str]] = {
    "memory": ("memory", "limit", "size"),
    "memory-reservation": ("memory", "reservation", "size"),
    "memory-swap": ("memory", "swap", "size"),
    "kernel-memory": ("memory", "kernel", "size"),
    "kernel-memory-tcp": ("memory", "kernelTCP", "size"),
    "cpu-share": ("cpu", "shares", "uint"),
    "cpu-period": ("cpu", "period", "uint"),
    "cpu-quota": ("cpu", "quota", "int"),
    "cpu-rt-period": ("cpu", "realtimePeriod", "uint"),
    "cpu-rt-runtime": ("cpu", "realtimeRuntime", "int"),
    "cpuset-cpus": ("cpu", "cpus", "list"),
    "cpuset-mems": ("cpu", "mems", "list"),
    "pids-limit": ("pids", "limit", "int"),
    "blkio-weight": ("blockIO", "weight", "uint"),
}
# runc spells it --cpu-share; Docker (and the users) --cpu-shares: both are taken.
ALIASES = {"cpu-shares": "cpu-share"}
RDT_FLAGS = ("l3-cache-schema", "mem-bw-schema")
RESCTRL = "/sys/fs/resctrl"


def resources_from_flags(values: dict[str, str | None]) -> dict[str, Any]:
    """``linux.resources`` for the flags given (flag name -> text, None where not given)."""
    resources: dict[str, Any] = {}
    for flag, text in values.items():
        if text is None or flag in RDT_FLAGS:
            continue
        section, field, kind = RESOURCE_FLAGS[ALIASES.get(flag, flag)]
        value = _parse(flag, text, kind)
        if value in (0, ""):
            continue  # runc: zero (or empty) leaves the current value
        resources.setdefault(section, {})[field] = value
    memory = resources.get("memory", {})
    if memory.get("limit") == -1 and "swap" not in memory:
        memory["swap"] = -1  # runc: lifting the limit lifts memory+swap with it
    return resources


def _parse(flag: str, text: str, kind: str) -> int | str:
    if kind == "list":
        return text
    if kind == "size":
        if text == "-1":
            return -1
        from skiff.units import ram_in_bytes

        try:
            return ram_in_bytes(text)
        except ValueError as exc:
            raise InvalidArgument(f"invalid value for {flag}: {exc}") from None
    try:
        value = int(text, 10)
    except ValueError:
        raise InvalidArgument(f"invalid value for {flag}: {text!r} is not an integer") from None
    if kind == "uint" and value < 0:
        raise InvalidArgument(f"invalid value for {flag}: {text!r} must not be negative")
    return value


def check_rdt_flags(values: dict[str, str | None]) -> None:
    """Refuse Intel RDT schemas: runc's words where the host has no resctrl; skiff manages none."""
    l3, mem_bw = values.get("l3-cache-schema"), values.get("mem-bw-schema")
    if not l3 and not mem_bw:
        return
    if not os.path.isdir(os.path.join(RESCTRL, "info")):
        what = "CAT: l3 cache schema" if l3 else "MBA: memory bandwidth schema"
        raise InvalidArgument(f"Intel RDT/{what} is not enabled",
                              hint=f"this host has no resctrl filesystem at {RESCTRL}")
    raise InvalidArgument("--l3-cache-schema and --mem-bw-schema are not supported by skiff-oci: "
                          "it does not manage Intel RDT groups (linux.intelRdt)")


__all__ = ["RESOURCE_FLAGS", "ALIASES", "RDT_FLAGS", "resources_from_flags", "check_rdt_flags"]
