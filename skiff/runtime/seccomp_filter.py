"""linux.seccomp of the OCI config: compiled by libseccomp once, cached as BPF, loaded by seccomp(2).

Why the binding (Debian's python3-seccomp, linked into the venv by
scripts/setup) rather than ctypes for compiling: libseccomp's own API keeps
syscall-name resolution, per-architecture numbering and BPF generation in the
library that every runtime uses; a ctypes layer would redo its struct handling
for no gain.

Compiling Docker's default profile (about 400 rules on three architectures)
costs some 10 ms, and importing the binding more: more than all the rest of a
container start. So ``program`` compiles a profile once and keeps the resulting
BPF program (libseccomp's ``export_bpf``) in a cache directory the runtime is
given (skiff's engine gives it ``<run root>/seccomp``), one file per profile,
named by a hash of the profile's ``linux.seccomp`` object, the machine, the
kernel release and a format version. The next container with the same profile
reads a few kilobytes and installs them with seccomp(2) through ctypes: no
libseccomp import on that path. A file is written under a temporary name and
renamed into place, checked when it is read (owner, mode, size), and a bad one
is compiled again; a cache that cannot be written only costs the compile.
"""

from __future__ import annotations

import errno
import os

from skiff.errors import BundleError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds of every skiff-oci create
    from typing import Any

CACHE_FORMAT = "2"  # bumped whenever compile_filter makes other BPF for the same profile
_MAX_INSTRUCTIONS = 4096  # BPF_MAXINSNS: the kernel refuses longer programs
_LOAD_FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC": 1, "SECCOMP_FILTER_FLAG_LOG": 2, "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4}


class Program:
    """A compiled filter, ready for seccomp(2): BPF instructions and the filter flags."""

    __slots__ = ("bpf", "flags")

    def __init__(self, bpf: bytes, flags: int) -> None:
        self.bpf = bpf
        self.flags = flags

    def load(self) -> None:
        from skiff import linux

        linux.seccomp_set_mode_filter(self.bpf, self.flags)

    def to_data(self) -> dict[str, Any]:
        """As JSON, for a child that is re-executed rather than forked (skiff.runtime.sealed)."""
        return {"bpf": self.bpf.hex(), "flags": self.flags}

    @classmethod
    def from_data(cls, data: dict[str, Any] | None) -> Program | None:
        return None if data is None else cls(bytes.fromhex(data["bpf"]), int(data["flags"]))


def program(config: dict[str, Any], cache_dir: str | None) -> Program:
    """The filter for ``config`` (an OCI linux.seccomp): from the cache, or compiled (and cached)."""
    flags = 0
    for flag in config.get("flags") or []:
        if flag not in _LOAD_FLAGS:
            raise BundleError(f"linux.seccomp: unknown flag {flag!r}")
        flags |= _LOAD_FLAGS[flag]
    if cache_dir is None:
        return Program(_export(compile_filter(config)), flags)
    path = os.path.join(cache_dir, cache_key(config) + ".bpf")
    bpf = _read_cached(path)
    if bpf is None:
        bpf = _compile_to_cache(config, cache_dir, path)
    return Program(bpf, flags)


def cache_key(config: dict[str, Any]) -> str:
    """A name for this profile on this host.

    ``repr`` of the decoded JSON is not canonical (key order counts), which costs at
    most a second compile of an equal profile, never a wrong hit: different values
    have different reprs. The C sha256 avoids hashlib's OpenSSL import (3 ms).
    """
    try:
        from _sha256 import sha256
    except ImportError:  # Python 3.12 renamed it
        from hashlib import sha256
    uname = os.uname()
    text = "\0".join((CACHE_FORMAT, uname.machine, uname.release, repr(config)))
    return sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _read_cached(path: str) -> bytes | None:
    """The cached program, or None when it is missing or not one this runtime wrote."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        size = st.st_size
        # Only a regular file of ours that nobody else may write, of whole instructions.
        if (not (st.st_mode & 0o170000 == 0o100000) or st.st_uid != os.geteuid() or st.st_mode & 0o022
                or size == 0 or size % 8 or size > 8 * _MAX_INSTRUCTIONS):
            return None
        data = os.read(fd, size + 1)
        return data if len(data) == size else None
    finally:
        os.close(fd)


def _compile_to_cache(config: dict[str, Any], cache_dir: str, path: str) -> bytes:
    """Compile with libseccomp and put the BPF in the cache (a rename: readers never see half)."""
    bpf = _export(compile_filter(config))
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(cache_dir, mode=0o700, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(bpf)
        os.rename(tmp, path)
    except OSError:  # a read-only or full run root: this container just pays for the compile
        try:
            os.unlink(tmp)
        except OSError:
            pass
    return bpf


def _export(sfilter: Any) -> bytes:
    """libseccomp's BPF for ``sfilter`` (it writes to a file descriptor: a pipe would need a reader)."""
    import tempfile

    with tempfile.TemporaryFile() as out:
        sfilter.export_bpf(out)
        out.seek(0)
        bpf = out.read()
    if not bpf or len(bpf) % 8 or len(bpf) > 8 * _MAX_INSTRUCTIONS:
        raise BundleError(f"linux.seccomp: the compiled filter has {len(bpf) // 8} instructions, "
                          f"not 1 to the kernel's {_MAX_INSTRUCTIONS}", hint="use a shorter profile")
    return bpf


_OPS = {"SCMP_CMP_NE": "NE", "SCMP_CMP_LT": "LT", "SCMP_CMP_LE": "LE", "SCMP_CMP_EQ": "EQ",
        "SCMP_CMP_GE": "GE", "SCMP_CMP_GT": "GT", "SCMP_CMP_MASKED_EQ": "MASKED_EQ"}


def _module() -> Any:
    try:
        import seccomp
    except ImportError:
        raise BundleError("linux.seccomp is set but libseccomp's Python binding is missing",
                          hint="install python3-seccomp and re-run scripts/setup") from None
    return seccomp


def compile_filter(config: dict[str, Any]) -> Any:
    """A libseccomp SyscallFilter for ``config`` (exported as BPF by ``program``)."""
    seccomp = _module()
    default_errno = config.get("defaultErrnoRet", errno.EPERM)
    sfilter = seccomp.SyscallFilter(_action(seccomp, config.get("defaultAction", ""), default_errno))
    sfilter.set_attr(seccomp.Attr.CTL_NNP, 0)  # no_new_privs is process.noNewPrivileges' business
    try:
        # A binary search over syscall numbers instead of libseccomp's default list: the same
        # decisions (tests/security checks it), a quarter of the kernel's time to install
        # Docker's profile (0.25 ms, not 0.85: it emulates the filter for every syscall number)
        # and fewer instructions per call for the rules with arguments.
        sfilter.set_attr(seccomp.Attr.CTL_OPTIMIZE, 2)
    except (AttributeError, RuntimeError, ValueError, OSError):
        pass  # libseccomp before 2.5
    # The filter flags (flags) are seccomp(2)'s business: Program.load passes them.
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
