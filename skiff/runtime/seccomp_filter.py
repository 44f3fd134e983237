"""linux.seccomp of the OCI config, compiled and loaded through libseccomp's Python binding.

Why the binding (Debian's python3-seccomp, linked into the venv by
scripts/setup) rather than ctypes: libseccomp's own API keeps syscall-name
resolution, per-architecture numbering and BPF generation in the library that
every runtime uses; a ctypes layer would redo its struct handling for no gain.
The module is imported only when a config has ``linux.seccomp``.
"""

from __future__ import annotations

import errno
from typing import Any

from skiff.errors import BundleError

_OPS = {"SCMP_CMP_NE": "NE", "SCMP_CMP_LT": "LT", "SCMP_CMP_LE": "LE", "SCMP_CMP_EQ": "EQ",
        "SCMP_CMP_GE": "GE", "SCMP_CMP_GT": "GT", "SCMP_CMP_MASKED_EQ": "MASKED_EQ"}
_FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"}


def _module() -> Any:
    try:
        import seccomp
    except ImportError:
        raise BundleError("linux.seccomp is set but libseccomp's Python binding is missing",
                          hint="install python3-seccomp and re-run scripts/setup") from None
    return seccomp


def compile_filter(config: dict[str, Any]) -> Any:
    """A libseccomp SyscallFilter for ``config`` (checked now, loaded later with ``load``)."""
    seccomp = _module()
    default_errno = config.get("defaultErrnoRet", errno.EPERM)
    sfilter = seccomp.SyscallFilter(_action(seccomp, config.get("defaultAction", ""), default_errno))
    sfilter.set_attr(seccomp.Attr.CTL_NNP, 0)  # no_new_privs is process.noNewPrivileges' business
    for flag in config.get("flags") or []:
        if flag not in _FLAGS:
            raise BundleError(f"linux.seccomp: unknown flag {flag!r}")
        if flag == "SECCOMP_FILTER_FLAG_LOG":
            sfilter.set_attr(seccomp.Attr.CTL_LOG, 1)
    for arch in config.get("architectures") or []:
        name = arch.removeprefix("SCMP_ARCH_")
        if not hasattr(seccomp.Arch, name):
            raise BundleError(f"linux.seccomp: unknown architecture {arch!r}")
        try:
            sfilter.add_arch(getattr(seccomp.Arch, name))
        except RuntimeError:
            pass  # the native one is already there
    for rule in config.get("syscalls") or []:
        action = _action(seccomp, rule.get("action", ""), rule.get("errnoRet", errno.EPERM))
        args = [_arg(seccomp, a) for a in rule.get("args") or []]
        for name in rule.get("names") or []:
            try:
                sfilter.add_rule(action, name, *args)
            except (RuntimeError, ValueError, OSError):
                pass  # a syscall this kernel/arch lacks is skipped, as runc does
    return sfilter


def _action(seccomp: Any, name: str, errno_ret: int) -> Any:
    simple = {"SCMP_ACT_KILL": seccomp.KILL, "SCMP_ACT_KILL_THREAD": seccomp.KILL,
              "SCMP_ACT_KILL_PROCESS": seccomp.KILL_PROCESS, "SCMP_ACT_TRAP": seccomp.TRAP,
              "SCMP_ACT_ALLOW": seccomp.ALLOW, "SCMP_ACT_LOG": seccomp.LOG}
    if name in simple:
        return simple[name]
    if name == "SCMP_ACT_ERRNO":
        return seccomp.ERRNO(int(errno_ret if errno_ret is not None else errno.EPERM))
    if name == "SCMP_ACT_TRACE":
        return seccomp.TRACE(int(errno_ret if errno_ret is not None else errno.EPERM))
    raise BundleError(f"linux.seccomp: unsupported action {name!r}")


def _arg(seccomp: Any, arg: dict[str, Any]) -> Any:
    op = _OPS.get(arg.get("op", ""))
    if op is None:
        raise BundleError(f"linux.seccomp: unknown operator {arg.get('op')!r}")
    values = [int(arg.get("value", 0))]
    if op == "MASKED_EQ":
        values.append(int(arg.get("valueTwo", 0)))
    return seccomp.Arg(int(arg["index"]), getattr(seccomp, op), *values)
