"""Docker-format seccomp profiles resolved for one container into an OCI ``linux.seccomp``.

A Docker profile is written for every container and host: a rule may apply only
on some architectures (``includes.arches``), only when the container holds some
capabilities (``includes.caps``), only from a kernel version on
(``includes.minKernel``), or never in those cases (``excludes``). Resolving it
keeps the rules that apply to this container on this host and drops the
conditions, as dockerd does before it hands the runtime its config; ``archMap``
becomes the host's own architectures. Bad profiles fail here, at create time,
with one line that names the problem.
"""

from __future__ import annotations

import os
from typing import Any, Iterable

from skiff.errors import InvalidArgument

# The actions and operators skiff's runtime can compile (skiff.runtime.seccomp_filter).
ACTIONS = {"SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO",
           "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG"}
OPERATORS = {"SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
             "SCMP_CMP_MASKED_EQ"}
FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"}

# uname -m -> (Go's name, used by includes.arches; libseccomp's native architecture)
MACHINES = {
    "x86_64": ("amd64", "SCMP_ARCH_X86_64"),
    "aarch64": ("arm64", "SCMP_ARCH_AARCH64"),
    "arm64": ("arm64", "SCMP_ARCH_AARCH64"),
    "i686": ("386", "SCMP_ARCH_X86"),
    "armv7l": ("arm", "SCMP_ARCH_ARM"),
    "ppc64le": ("ppc64le", "SCMP_ARCH_PPC64LE"),
    "s390x": ("s390x", "SCMP_ARCH_S390X"),
    "riscv64": ("riscv64", "SCMP_ARCH_RISCV64"),
}


class ProfileError(InvalidArgument):
    """A seccomp profile that cannot be applied (its message says which part and why)."""


class Host:
    """What a profile is resolved against: the machine and the kernel release (plain class: no import)."""

    __slots__ = ("machine", "kernel")

    def __init__(self, machine: str | None = None, kernel: str | None = None) -> None:
        uname = os.uname()
        self.machine = machine or uname.machine
        self.kernel = kernel or uname.release


def default_seccomp(capabilities: Iterable[str], host: Host | None = None) -> dict[str, Any]:
    """skiff's default profile (Docker's) for a container holding ``capabilities`` (its bounding set)."""
    from skiff.security.seccomp_default import docker_profile

    resolved = to_oci(docker_profile(), capabilities, host)
    assert resolved is not None  # the default profile has a default action
    return resolved


def to_oci(profile: Any, capabilities: Iterable[str], host: Host | None = None) -> dict[str, Any] | None:
    """The OCI ``linux.seccomp`` for ``profile`` (Docker's format), or None if it filters nothing.

    As Docker: a profile with neither a default action nor rules means no filter.
    """
    if not isinstance(profile, dict):
        raise ProfileError("decoding seccomp profile failed: the profile must be a JSON object")
    host = host or Host()
    caps = set(capabilities)
    syscalls = _list(profile, "syscalls")
    default_action = profile.get("defaultAction") or ""
    if not default_action and not syscalls:
        return None
    _check_action(default_action, "defaultAction")
    oci: dict[str, Any] = {"defaultAction": default_action}
    if profile.get("defaultErrnoRet") is not None:
        oci["defaultErrnoRet"] = _uint(profile["defaultErrnoRet"], "defaultErrnoRet")
    architectures = _architectures(profile, host)
    if architectures:
        oci["architectures"] = architectures
    flags = _list(profile, "flags")
    for flag in flags:
        if flag not in FLAGS:
            raise ProfileError(f"seccomp profile: unknown flag {flag!r} (known: {', '.join(sorted(FLAGS))})")
    if flags:
        oci["flags"] = list(flags)
    if profile.get("listenerPath"):
        raise ProfileError("seccomp profile: listenerPath (SCMP_ACT_NOTIFY) is not supported by skiff")
    go_arch = MACHINES.get(host.machine, (host.machine, ""))[0]
    oci["syscalls"] = [_rule(rule, i) for i, rule in enumerate(syscalls) if _applies(rule, i, caps, go_arch, host)]
    return oci


def _list(obj: dict[str, Any], key: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ProfileError(f"seccomp profile: {key} must be a list")
    return value


def _uint(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProfileError(f"seccomp profile: {where} must be a non-negative integer, not {value!r}")
    return value


def _check_action(action: Any, where: str) -> None:
    if action not in ACTIONS:
        raise ProfileError(f"seccomp profile: {where}: unknown or unsupported action {action!r}")


def _architectures(profile: dict[str, Any], host: Host) -> list[str]:
    """``architectures`` as given, or the host's entry of ``archMap`` (never both: Docker refuses it)."""
    listed, arch_map = _list(profile, "architectures"), _list(profile, "archMap")
    if listed and arch_map:
        raise ProfileError("'architectures' and 'archMap' were specified in the seccomp profile, "
                           "use either 'architectures' or 'archMap'")
    native = MACHINES.get(host.machine, ("", ""))[1]
    for entry in arch_map:
        if isinstance(entry, dict) and entry.get("architecture") == native:
            return [native, *(entry.get("subArchitectures") or [])]
    return [str(arch) for arch in listed]


def _applies(rule: Any, index: int, caps: set[str], go_arch: str, host: Host) -> bool:
    """Docker's filter: excludes first (any match drops the rule), then includes (all must hold)."""
    if not isinstance(rule, dict):
        raise ProfileError(f"seccomp profile: syscalls[{index}] must be an object")
    excludes, includes = rule.get("excludes") or {}, rule.get("includes") or {}
    if go_arch in (excludes.get("arches") or []):
        return False
    if any(cap in caps for cap in excludes.get("caps") or []):
        return False
    if excludes.get("minKernel") and _kernel_at_least(host.kernel, excludes["minKernel"], index):
        return False
    if includes.get("arches") and go_arch not in includes["arches"]:
        return False
    if any(cap not in caps for cap in includes.get("caps") or []):
        return False
    if includes.get("minKernel") and not _kernel_at_least(host.kernel, includes["minKernel"], index):
        return False
    return True


def _kernel_at_least(release: str, minimum: Any, index: int) -> bool:
    def version(text: str) -> tuple[int, ...]:
        numbers = []
        for part in text.split(".")[:2]:
            digits = "".join(c for c in part if c.isdigit()) if part[:1].isdigit() else ""
            numbers.append(int(digits) if digits else -1)
        return tuple(numbers)

    wanted = version(str(minimum))
    if len(wanted) != 2 or -1 in wanted:
        raise ProfileError(f"seccomp profile: syscalls[{index}]: invalid minKernel {minimum!r} (use MAJOR.MINOR)")
    return version(release) >= wanted


def _rule(rule: dict[str, Any], index: int) -> dict[str, Any]:
    names = _list(rule, "names")
    if rule.get("name"):
        if names:
            raise ProfileError("'name' and 'names' were specified in the seccomp profile, use either 'name' or 'names'")
        names = [rule["name"]]
    if not names or not all(isinstance(name, str) and name for name in names):
        raise ProfileError(f"seccomp profile: syscalls[{index}] names no system call")
    _check_action(rule.get("action"), f"syscalls[{index}]")
    out: dict[str, Any] = {"names": list(names), "action": rule["action"]}
    args = [_argument(arg, index) for arg in _list(rule, "args")]
    if args:
        out["args"] = args
    if rule.get("errnoRet") is not None:
        out["errnoRet"] = _uint(rule["errnoRet"], f"syscalls[{index}].errnoRet")
    return out


def _argument(arg: Any, index: int) -> dict[str, Any]:
    where = f"syscalls[{index}].args"
    if not isinstance(arg, dict):
        raise ProfileError(f"seccomp profile: {where} entries must be objects")
    if arg.get("op") not in OPERATORS:
        raise ProfileError(f"seccomp profile: {where}: unknown operator {arg.get('op')!r}")
    position = _uint(arg.get("index", 0), f"{where}.index")
    if position > 5:
        raise ProfileError(f"seccomp profile: {where}.index must be 0 to 5, not {position}")
    return {"index": position, "value": _uint(arg.get("value", 0), f"{where}.value"),
            "valueTwo": _uint(arg.get("valueTwo", 0), f"{where}.valueTwo"), "op": arg["op"]}
