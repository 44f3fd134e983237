"""The cgroup v2 device controller: OCI device rules compiled to an eBPF program.

cgroup v2 has no devices.allow/deny files; the kernel asks a
BPF_PROG_TYPE_CGROUP_DEVICE program attached to the cgroup instead. The program
sees ``struct bpf_cgroup_dev_ctx`` (access_type: device type in the low 16
bits, requested access in the high 16; major; minor) and returns 1 to allow.

Semantics are the runtime spec's: rules apply in order, and for each access bit
the last rule that matches the device and names that bit decides. A bit no rule
decides is allowed, as on cgroup v1 (a new cgroup inherits its parent's
``a *:* rwm``) and in runc: confinement starts with a deny-all rule, which every
engine (and skiff's DEFAULT_DEVICE_RULES) puts first. The program walks the rules backwards and keeps the requested
bits still undecided in a register, so an ``allow c 1:5 r`` after a
``deny c 1:5 w`` still refuses an O_RDWR open (runc, which matches a rule only
when it covers every requested bit, would let the earlier ``allow a`` decide).

Programs skiff attaches are named ``skiff_devices``; replacing them attaches the
new one first (BPF_F_ALLOW_MULTI: every attached program must allow) and only
then detaches the old ones, so the cgroup is never without a filter.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from collections import namedtuple
from collections.abc import Mapping, Sequence

from skiff import explain, linux
from skiff.errors import DeviceFilterError, SyscallError

TYPE_CHECKING = False   # typing.TYPE_CHECKING without importing typing on the runtime's path
if TYPE_CHECKING:
    from typing import Any

PROGRAM_NAME = b"skiff_devices"
LICENSE = b"Apache-2.0"   # the program calls no GPL-only helper, so the kernel accepts any license

# include/uapi/linux/bpf.h
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_PROG_QUERY = 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2

BPF_DEVCG_DEV_BLOCK = 1
BPF_DEVCG_DEV_CHAR = 2
BPF_DEVCG_ACC_MKNOD = 1
BPF_DEVCG_ACC_READ = 2
BPF_DEVCG_ACC_WRITE = 4
DEVICE_TYPES = {"b": BPF_DEVCG_DEV_BLOCK, "c": BPF_DEVCG_DEV_CHAR}
ACCESS_BITS = {"m": BPF_DEVCG_ACC_MKNOD, "r": BPF_DEVCG_ACC_READ, "w": BPF_DEVCG_ACC_WRITE}
ALL_ACCESS = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE

# --- the assembler: only the instructions the filter needs --------------------
# Opcode = class | operation | source (include/uapi/linux/bpf_common.h, bpf.h).
LDX_MEM_W = 0x61        # dst = *(u32 *)(src + off)
ALU32_MOV_K = 0xB4      # w_dst = imm
ALU32_MOV_X = 0xBC      # w_dst = w_src
ALU32_AND_K = 0x54      # w_dst &= imm
ALU32_RSH_K = 0x74      # w_dst >>= imm
JMP32_JNE_K = 0x56      # if w_dst != imm: pc += off
JMP32_JEQ_K = 0x16      # if w_dst == imm: pc += off
EXIT = 0x95

R0, R1, R2, R3, R4, R5 = range(6)
# What the prologue leaves where, for every rule's test.
TYPE_REG, UNDECIDED_REG, MAJOR_REG, MINOR_REG, SCRATCH_REG = R2, R3, R4, R5, R1
NEXT_RULE = "next"      # placeholder jump target: the first instruction after the rule's block


class Insn(namedtuple("Insn", "code dst src off imm", defaults=(0, 0, 0, 0))):
    """One ``struct bpf_insn``; ``off`` may be NEXT_RULE until the rule's block is laid out."""

    __slots__ = ()
    code: int
    dst: int
    src: int
    off: int | str
    imm: int

    def encode(self) -> bytes:
        assert isinstance(self.off, int), self
        # Little-endian hosts: dst_reg is the low nibble of the second byte.
        return struct.pack("<BBhi", self.code, (self.src << 4) | self.dst, self.off, _s32(self.imm))


def _s32(value: int) -> int:
    """A u32 immediate as the s32 the instruction stores (JMP32/ALU32 compare all 32 bits)."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def compile_rules(rules: Sequence[Mapping[str, Any]]) -> list[Insn]:
    """The program for OCI ``linux.resources.devices`` ``rules`` (already checked by resources.check)."""
    program = [
        Insn(LDX_MEM_W, TYPE_REG, R1, 0),             # access_type
        Insn(ALU32_MOV_X, UNDECIDED_REG, TYPE_REG),
        Insn(ALU32_RSH_K, UNDECIDED_REG, imm=16),     # requested access bits, none decided yet
        Insn(ALU32_AND_K, TYPE_REG, imm=0xFFFF),      # device type
        Insn(LDX_MEM_W, MAJOR_REG, R1, 4),
        Insn(LDX_MEM_W, MINOR_REG, R1, 8),
    ]
    for rule in reversed(rules):
        program += _layout(_rule_block(rule))
    program += [Insn(ALU32_MOV_K, R0, imm=1), Insn(EXIT)]   # bits no rule decided: allowed, as on v1
    return program


def encode(program: Sequence[Insn]) -> bytes:
    return b"".join(insn.encode() for insn in program)


def _rule_block(rule: Mapping[str, Any]) -> list[Insn]:
    block: list[Insn] = []
    kind = rule.get("type") or "a"
    if kind != "a":
        block.append(Insn(JMP32_JNE_K, TYPE_REG, off=NEXT_RULE, imm=DEVICE_TYPES[kind]))
    for key, register in (("major", MAJOR_REG), ("minor", MINOR_REG)):
        number = rule.get(key)
        if number is not None and number != -1:
            block.append(Insn(JMP32_JNE_K, register, off=NEXT_RULE, imm=number))
    access = access_mask(rule.get("access"))
    # The rule speaks only for the requested bits it names that a later rule left undecided.
    block += [Insn(ALU32_MOV_X, SCRATCH_REG, UNDECIDED_REG),
              Insn(ALU32_AND_K, SCRATCH_REG, imm=access),
              Insn(JMP32_JEQ_K, SCRATCH_REG, off=NEXT_RULE, imm=0)]
    if not rule["allow"]:
        return block + [Insn(ALU32_MOV_K, R0, imm=0), Insn(EXIT)]
    return block + [Insn(ALU32_AND_K, UNDECIDED_REG, imm=~access & 0xFFFFFFFF),
                    Insn(JMP32_JNE_K, UNDECIDED_REG, off=NEXT_RULE, imm=0),   # some bits still open
                    Insn(ALU32_MOV_K, R0, imm=1), Insn(EXIT)]


def _layout(block: list[Insn]) -> list[Insn]:
    """Resolve NEXT_RULE jumps: offsets count from the instruction after the jump."""
    return [insn._replace(off=len(block) - index - 1) if insn.off == NEXT_RULE else insn
            for index, insn in enumerate(block)]


def access_mask(access: str | None) -> int:
    mask = 0
    for letter in access or "rwm":
        mask |= ACCESS_BITS[letter]
    return mask


# --- bpf(2) attribute layouts (the parts of union bpf_attr each command reads) --


class _ProgLoad(ctypes.Structure):
    _fields_ = [("prog_type", ctypes.c_uint32), ("insn_cnt", ctypes.c_uint32), ("insns", ctypes.c_uint64),
                ("license", ctypes.c_uint64), ("log_level", ctypes.c_uint32), ("log_size", ctypes.c_uint32),
                ("log_buf", ctypes.c_uint64), ("kern_version", ctypes.c_uint32), ("prog_flags", ctypes.c_uint32),
                ("prog_name", ctypes.c_char * 16)]


class _Attach(ctypes.Structure):
    _fields_ = [("target_fd", ctypes.c_uint32), ("attach_bpf_fd", ctypes.c_uint32),
                ("attach_type", ctypes.c_uint32), ("attach_flags", ctypes.c_uint32)]


class _Query(ctypes.Structure):
    _fields_ = [("target_fd", ctypes.c_uint32), ("attach_type", ctypes.c_uint32),
                ("query_flags", ctypes.c_uint32), ("attach_flags", ctypes.c_uint32),
                ("prog_ids", ctypes.c_uint64), ("prog_cnt", ctypes.c_uint32)]


class _GetFdById(ctypes.Structure):
    _fields_ = [("prog_id", ctypes.c_uint32), ("next_id", ctypes.c_uint32), ("open_flags", ctypes.c_uint32)]


class _InfoByFd(ctypes.Structure):
    _fields_ = [("bpf_fd", ctypes.c_uint32), ("info_len", ctypes.c_uint32), ("info", ctypes.c_uint64)]


class _ProgInfo(ctypes.Structure):
    """The head of ``struct bpf_prog_info``, up to the name (the kernel fills what fits)."""

    _fields_ = [("type", ctypes.c_uint32), ("id", ctypes.c_uint32), ("tag", ctypes.c_uint8 * 8),
                ("jited_prog_len", ctypes.c_uint32), ("xlated_prog_len", ctypes.c_uint32),
                ("jited_prog_insns", ctypes.c_uint64), ("xlated_prog_insns", ctypes.c_uint64),
                ("load_time", ctypes.c_uint64), ("created_by_uid", ctypes.c_uint32),
                ("nr_map_ids", ctypes.c_uint32), ("map_ids", ctypes.c_uint64), ("name", ctypes.c_char * 16)]


# --- loading and attaching ----------------------------------------------------

MAX_QUERIED_PROGRAMS = 64
LOG_SIZE = 1 << 20


def apply_device_filter(directory: str, rules: Sequence[Mapping[str, Any]]) -> None:
    """Make ``rules`` the device filter of the cgroup v2 ``directory``, replacing skiff's previous one."""
    program = compile_rules(rules)
    cgroup_fd = open_cgroup(directory)
    try:
        previous = [prog_id for prog_id in attached_program_ids(cgroup_fd, directory)
                    if _program_name(prog_id, directory) == PROGRAM_NAME]
        program_fd = load(program, directory)
        try:
            attach(cgroup_fd, program_fd, directory)
        finally:
            os.close(program_fd)
        for prog_id in previous:
            _detach(cgroup_fd, prog_id, directory)
        if explain.on:
            explain.step(explain.CGROUPS, f"the device allow-list: an eBPF program of {len(program)} instructions "
                         f"from {len(rules)} rules, attached to the cgroup", "bpf(BPF_PROG_LOAD) + bpf(BPF_PROG_ATTACH)",
                         {"type": "BPF_PROG_TYPE_CGROUP_DEVICE", "cgroup": directory, "rules": len(rules)})
    finally:
        os.close(cgroup_fd)


def attached_program_ids(cgroup_fd: int, directory: str = "") -> list[int]:
    """Ids of the device programs attached to the cgroup itself (not inherited ones)."""
    ids = (ctypes.c_uint32 * MAX_QUERIED_PROGRAMS)()
    attr = _Query(target_fd=cgroup_fd, attach_type=BPF_CGROUP_DEVICE, prog_ids=ctypes.addressof(ids),
                  prog_cnt=MAX_QUERIED_PROGRAMS)
    _bpf(BPF_PROG_QUERY, attr, f"cannot list the device filters of {directory}")
    return list(ids[:attr.prog_cnt])


def load(program: Sequence[Insn], directory: str = "", name: bytes = PROGRAM_NAME) -> int:
    """The fd of ``program`` loaded into the kernel; on a verifier refusal the error quotes its log.

    ``name`` (15 bytes at most) is how ``apply_device_filter`` later tells its programs from others'.
    """
    code = encode(program)
    insns = ctypes.create_string_buffer(code, len(code))
    license_ = ctypes.create_string_buffer(LICENSE)
    attr = _ProgLoad(prog_type=BPF_PROG_TYPE_CGROUP_DEVICE, insn_cnt=len(program),
                     insns=ctypes.addressof(insns), license=ctypes.addressof(license_), prog_name=name)
    what = f"cannot load the eBPF device filter for {directory or 'a cgroup'}"
    try:
        return linux.bpf(BPF_PROG_LOAD, attr)
    except SyscallError as exc:
        if exc.errno != errno.EACCES and exc.errno != errno.EINVAL:
            raise _error(what, exc) from None
    # The verifier refused it: load again with a log, as libbpf does, to say why.
    log = ctypes.create_string_buffer(LOG_SIZE)
    attr.log_level, attr.log_size, attr.log_buf = 1, LOG_SIZE, ctypes.addressof(log)
    try:
        return linux.bpf(BPF_PROG_LOAD, attr)
    except SyscallError as exc:
        lines = [line for line in log.value.decode(errors="replace").strip().splitlines()
                 if not line.startswith("processed ")]   # the verifier's statistics say nothing of why
        raise DeviceFilterError(f"{what}: {os.strerror(exc.errno)}"
                                + (f"; the verifier says: {' | '.join(lines[-3:])}" if lines else "")) from None


def open_cgroup(directory: str) -> int:
    try:
        return os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise DeviceFilterError(f"cannot open cgroup {directory} to attach its device filter: "
                                f"{exc.strerror}") from None


def attach(cgroup_fd: int, program_fd: int, directory: str) -> None:
    attr = _Attach(target_fd=cgroup_fd, attach_bpf_fd=program_fd, attach_type=BPF_CGROUP_DEVICE,
                   attach_flags=BPF_F_ALLOW_MULTI)
    _bpf(BPF_PROG_ATTACH, attr, f"cannot attach the eBPF device filter to {directory}")


def _detach(cgroup_fd: int, prog_id: int, directory: str) -> None:
    program_fd = _program_fd(prog_id, directory)
    if program_fd is None:
        return   # already gone
    try:
        attr = _Attach(target_fd=cgroup_fd, attach_bpf_fd=program_fd, attach_type=BPF_CGROUP_DEVICE)
        try:
            linux.bpf(BPF_PROG_DETACH, attr)
        except SyscallError as exc:
            if exc.errno != errno.ENOENT:   # detached meanwhile: what was wanted
                raise _error(f"cannot detach the previous device filter (program {prog_id}) from {directory}",
                             exc) from None
    finally:
        os.close(program_fd)


def _program_fd(prog_id: int, directory: str) -> int | None:
    try:
        return linux.bpf(BPF_PROG_GET_FD_BY_ID, _GetFdById(prog_id=prog_id))
    except SyscallError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise _error(f"cannot open device filter program {prog_id} of {directory}", exc) from None


def _program_name(prog_id: int, directory: str) -> bytes | None:
    program_fd = _program_fd(prog_id, directory)
    if program_fd is None:
        return None
    try:
        info = _ProgInfo()
        attr = _InfoByFd(bpf_fd=program_fd, info_len=ctypes.sizeof(info), info=ctypes.addressof(info))
        _bpf(BPF_OBJ_GET_INFO_BY_FD, attr, f"cannot read device filter program {prog_id} of {directory}")
        return info.name
    finally:
        os.close(program_fd)


def _bpf(cmd: int, attr: ctypes.Structure, what: str) -> int:
    try:
        return linux.bpf(cmd, attr)
    except SyscallError as exc:
        raise _error(what, exc) from None


def _error(what: str, exc: SyscallError) -> DeviceFilterError:
    hint = None
    if exc.errno == errno.EPERM:
        hint = "eBPF device filters need CAP_SYS_ADMIN (or CAP_BPF) in the initial user namespace"
    elif exc.errno in (errno.EBADF, errno.EINVAL, errno.ENOTDIR):
        hint = "is it a directory of a cgroup v2 hierarchy, on a kernel with CONFIG_CGROUP_BPF?"
    return DeviceFilterError(f"{what}: {os.strerror(exc.errno)}", hint=hint)


def can_load() -> int:
    """0 when the kernel takes skiff's default device program, else the errno of BPF_PROG_LOAD
    (``skiff check``). Attached to nothing, the program is freed as its fd is closed."""
    from skiff.cgroups.resources import DEFAULT_DEVICE_RULES

    code = encode(compile_rules(DEFAULT_DEVICE_RULES))
    insns = ctypes.create_string_buffer(code, len(code))
    license_ = ctypes.create_string_buffer(LICENSE)
    attr = _ProgLoad(prog_type=BPF_PROG_TYPE_CGROUP_DEVICE, insn_cnt=len(code) // 8,
                     insns=ctypes.addressof(insns), license=ctypes.addressof(license_), prog_name=b"skiff_check")
    try:
        os.close(linux.bpf(BPF_PROG_LOAD, attr))
    except SyscallError as exc:
        return exc.errno
    return 0
