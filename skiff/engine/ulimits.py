"""Docker's ``--ulimit name=soft[:hard]`` as OCI ``process.rlimits`` entries (rlimits are the
process's, not the cgroup's: the runtime sets them in the container's init)."""

from __future__ import annotations


from skiff.errors import CgroupError, InvalidArgument

TYPE_CHECKING = False   # typing.TYPE_CHECKING without importing typing on the hot path
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

RLIM_INFINITY = (1 << 64) - 1
CAP_SYS_RESOURCE = 24

NAMES = {
    "as": "RLIMIT_AS", "core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA",
    "fsize": "RLIMIT_FSIZE", "locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK",
    "msgqueue": "RLIMIT_MSGQUEUE", "nice": "RLIMIT_NICE", "nofile": "RLIMIT_NOFILE",
    "nproc": "RLIMIT_NPROC", "rss": "RLIMIT_RSS", "rtprio": "RLIMIT_RTPRIO",
    "rttime": "RLIMIT_RTTIME", "sigpending": "RLIMIT_SIGPENDING", "stack": "RLIMIT_STACK",
}


def parse_ulimit(text: str) -> tuple[str, int, int]:
    """go-units ParseUlimit: ``(name, soft, hard)``; -1 stands for unlimited."""
    name, sep, values = text.partition("=")
    if not sep:
        raise InvalidArgument(f"invalid ulimit argument: {text}")
    if name not in NAMES:
        raise InvalidArgument(f"invalid ulimit type: {name}")
    parts = values.split(":")
    if len(parts) > 2:
        raise InvalidArgument(f"too many limit value arguments - {values}, can only have up to two, `soft[:hard]`")
    soft = _number(parts[0], text)
    hard = _number(parts[1], text) if len(parts) == 2 else soft
    if hard != -1 and (soft == -1 or soft > hard):
        raise InvalidArgument(f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")
    return name, soft, hard


def _number(text: str, whole: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise InvalidArgument(f'invalid argument "{whole}" for "--ulimit" flag: '
                              f'strconv.ParseInt: parsing "{text}": invalid syntax') from None
    if value < -1:
        raise InvalidArgument(f'invalid argument "{whole}" for "--ulimit" flag: '
                              f"{value} is negative (-1 means unlimited)")
    return value


def rlimits_from_ulimits(ulimits: Iterable[str]) -> list[dict[str, Any]]:
    """OCI rlimits for Docker's ``--ulimit`` values; a later one for the same name wins.

    The container's init inherits skiff's limits and may only lower a hard limit
    unless it holds CAP_SYS_RESOURCE, so a raise that would fail at start is
    refused here, before anything is created.
    """
    chosen: dict[str, tuple[int, int]] = {}
    for text in ulimits:
        name, soft, hard = parse_ulimit(text)
        chosen[name] = (soft, hard)
    rlimits = []
    for name, (soft, hard) in chosen.items():
        soft_value = RLIM_INFINITY if soft == -1 else soft
        hard_value = RLIM_INFINITY if hard == -1 else hard
        _check_hard_limit(name, hard_value)
        rlimits.append({"type": NAMES[name], "hard": hard_value, "soft": soft_value})
    return rlimits


def _check_hard_limit(name: str, hard: int) -> None:
    import resource

    current = resource.getrlimit(getattr(resource, NAMES[name]))[1]
    current = RLIM_INFINITY if current == resource.RLIM_INFINITY else current
    if hard > current and not _has_capability(CAP_SYS_RESOURCE):
        shown = "unlimited" if hard == RLIM_INFINITY else str(hard)
        raise CgroupError(f"--ulimit {name}: cannot raise the hard limit from {current} to {shown}: "
                          "raising a hard limit needs CAP_SYS_RESOURCE, which skiff does not have here",
                          hint=f"use a hard limit of at most {current}")


def _has_capability(number: int) -> bool:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> number & 1)
    return False
