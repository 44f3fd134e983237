"""The cgroup v2 eBPF device filter: the compiler against a reference model, then the real kernel.

The compiler tests run the program in a small interpreter of the instructions
the assembler emits and compare every answer with the runtime spec's rule
semantics written out plainly. The kernel tests attach programs to a child of
the real cgroup2 hierarchy, move a Python child in, and let it try devices.
"""

from __future__ import annotations

import errno
import json
import os
import random
import secrets
import stat
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from skiff.cgroups import bpf_devices
from skiff.cgroups.bpf_devices import (ALU32_AND_K, ALU32_MOV_K, ALU32_MOV_X, ALU32_RSH_K, EXIT, JMP32_JEQ_K,
                                       JMP32_JNE_K, LDX_MEM_W, Insn, apply_device_filter, attached_program_ids,
                                       compile_rules)
from skiff.cgroups.resources import DEFAULT_DEVICE_RULES
from skiff.cgroups.v2 import V2Cgroup
from skiff.errors import DeviceFilterError

BLOCK, CHAR = 1, 2
MKNOD, READ, WRITE = 1, 2, 4
DENY_ALL: dict[str, Any] = {"allow": False, "access": "rwm"}


# --- the compiler ------------------------------------------------------------------------------------


def run_program(program: Sequence[Insn], kind: int, access: int, major: int, minor: int) -> int:
    """Interpret ``program`` on one bpf_cgroup_dev_ctx (only what the assembler emits)."""
    ctx = {0: kind | (access << 16), 4: major, 8: minor}
    regs = [0] * 11
    pc = 0
    for _ in range(10_000):
        insn = program[pc]
        pc += 1
        dst, imm = insn.dst, insn.imm & 0xFFFFFFFF
        if insn.code == LDX_MEM_W:
            assert insn.src == 1, "only the context is read"
            regs[dst] = ctx[insn.off]
        elif insn.code == ALU32_MOV_X:
            regs[dst] = regs[insn.src] & 0xFFFFFFFF
        elif insn.code == ALU32_MOV_K:
            regs[dst] = imm
        elif insn.code == ALU32_AND_K:
            regs[dst] &= imm
        elif insn.code == ALU32_RSH_K:
            regs[dst] = (regs[dst] & 0xFFFFFFFF) >> imm
        elif insn.code in (JMP32_JNE_K, JMP32_JEQ_K):
            equal = regs[dst] & 0xFFFFFFFF == imm
            if equal == (insn.code == JMP32_JEQ_K):
                pc += insn.off
        elif insn.code == EXIT:
            return regs[0]
        else:
            raise AssertionError(f"unexpected instruction {insn}")
    raise AssertionError("the program loops")


def reference(rules: Sequence[Mapping[str, Any]], kind: int, access: int, major: int, minor: int) -> int:
    """The runtime spec's meaning: per access bit, the last matching rule naming it decides; default allow."""
    def matches(rule: Mapping[str, Any]) -> bool:
        type_ok = (rule.get("type") or "a") == "a" or {"b": BLOCK, "c": CHAR}[rule["type"]] == kind
        return type_ok and all(rule.get(key) in (None, -1, value) for key, value in (("major", major),
                                                                                        ("minor", minor)))

    for bit in (MKNOD, READ, WRITE):
        if access & bit:
            decision = True
            for rule in rules:
                if matches(rule) and bpf_devices.access_mask(rule.get("access")) & bit:
                    decision = rule["allow"]
            if not decision:
                return 0
    return 1


def random_rule(rng: random.Random) -> dict[str, Any]:
    rule: dict[str, Any] = {"allow": rng.random() < 0.6, "type": rng.choice(["a", "b", "c", None])}
    for key, choices in (("major", [None, -1, 1, 8]), ("minor", [None, -1, 0, 3, 5])):
        value = rng.choice(choices)
        if value is not None:
            rule[key] = value
    rule["access"] = "".join(letter for letter in "rwm" if rng.random() < 0.5) or rng.choice(["", None, "rwm"])
    return rule


def test_compiled_programs_agree_with_the_spec_semantics() -> None:
    rng = random.Random(8)
    requests = [(kind, access, major, minor) for kind in (BLOCK, CHAR) for access in range(1, 8)
                for major in (1, 8, 9) for minor in (0, 3, 5, 6)]
    for _ in range(300):
        rules = [random_rule(rng) for _ in range(rng.randint(0, 6))]
        program = compile_rules(rules)
        for request in requests:
            assert run_program(program, *request) == reference(rules, *request), (rules, request)


def test_the_default_rules_as_docker_means_them() -> None:
    program = compile_rules(DEFAULT_DEVICE_RULES)
    assert run_program(program, CHAR, READ | WRITE, 1, 3) == 1        # /dev/null
    assert run_program(program, CHAR, READ, 1, 1) == 0                # /dev/mem
    assert run_program(program, CHAR, MKNOD, 1, 1) == 1               # mknod of anything
    assert run_program(program, BLOCK, MKNOD, 8, 0) == 1
    assert run_program(program, BLOCK, READ, 8, 0) == 0              # but not opening a disk
    assert run_program(program, CHAR, READ | WRITE, 136, 42) == 1     # any pty
    assert run_program(program, CHAR, READ | WRITE | MKNOD, 10, 200) == 1


def test_a_partial_deny_refuses_a_request_that_needs_the_denied_bit() -> None:
    rules = [{"allow": True, "access": "rwm"}, {"allow": False, "type": "c", "major": 1, "minor": 5, "access": "w"}]
    program = compile_rules(rules)
    assert run_program(program, CHAR, READ, 1, 5) == 1
    assert run_program(program, CHAR, READ | WRITE, 1, 5) == 0   # runc's "rule covers all bits" would allow


def test_program_structure() -> None:
    program = compile_rules([DENY_ALL, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}])
    assert [insn.code for insn in program[:6]] == [LDX_MEM_W, ALU32_MOV_X, ALU32_RSH_K, ALU32_AND_K, LDX_MEM_W,
                                                   LDX_MEM_W]
    assert program[-2:] == [Insn(ALU32_MOV_K, 0, imm=1), Insn(EXIT)]   # undecided: allowed
    for index, insn in enumerate(program):
        if insn.code in (JMP32_JNE_K, JMP32_JEQ_K):
            assert 0 <= insn.off and index + 1 + insn.off < len(program)   # forward only, inside
    # The last rule comes first: type, major, minor, then the access test.
    assert program[6:9] == [Insn(JMP32_JNE_K, 2, off=program[6].off, imm=CHAR),
                            Insn(JMP32_JNE_K, 4, off=program[6].off - 1, imm=1),
                            Insn(JMP32_JNE_K, 5, off=program[6].off - 2, imm=3)]
    code = bpf_devices.encode(program)
    assert len(code) == 8 * len(program)
    assert code[:8] == bytes([0x61, 0x12, 0, 0, 0, 0, 0, 0])   # ldxw r2, [r1+0]
    assert len(compile_rules([])) == 8


def test_large_device_numbers_compare_as_unsigned() -> None:
    program = compile_rules([DENY_ALL, {"allow": True, "type": "c", "major": 0xFFFFFFFE, "access": "r"}])
    assert run_program(program, CHAR, READ, 0xFFFFFFFE, 0) == 1
    assert run_program(program, CHAR, READ, 0x7FFFFFFE, 0) == 0
    assert Insn(JMP32_JNE_K, 4, off=0, imm=0xFFFFFFFE).encode()[4:] == (-2).to_bytes(4, "little", signed=True)


# --- the real kernel ---------------------------------------------------------------------------------


def cgroup2_mount() -> str | None:
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1] for line in mounts if line.split()[2] == "cgroup2"]
    for preferred in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
        if preferred in points:
            return preferred
    return points[0] if points else None


class Sandbox:
    """A uniquely named cgroup2 directory, and Python children that probe devices from inside it."""

    def __init__(self, mount: str, nodes: Path) -> None:
        self.mount = mount
        self.dir = os.path.join(mount, f"skiff-bpf-test-{secrets.token_hex(4)}")
        self.nodes = nodes
        self.children: list[subprocess.Popen[bytes]] = []
        os.mkdir(self.dir)

    def probe(self, probes: list[list[Any]], directory: str | None = None) -> list[str]:
        """Run ``probes`` (["open", path, flags] or ["mknod", path, "c"|"b", major, minor]) in the cgroup.

        Each answers "ok" or the errno's name.
        """
        code = (
            "import errno, json, os, stat, sys\n"
            "sys.stdin.buffer.read(1)\n"
            "out = []\n"
            f"for probe in json.loads({json.dumps(json.dumps(probes))}):\n"
            "    try:\n"
            "        if probe[0] == 'open':\n"
            "            os.close(os.open(probe[1], probe[2]))\n"
            "        else:\n"
            "            kind = stat.S_IFCHR if probe[2] == 'c' else stat.S_IFBLK\n"
            "            os.mknod(probe[1], 0o600 | kind, os.makedev(probe[3], probe[4]))\n"
            "            os.unlink(probe[1])\n"
            "        out.append('ok')\n"
            "    except OSError as exc:\n"
            "        out.append(errno.errorcode[exc.errno])\n"
            "print(json.dumps(out))\n")
        proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        self.children.append(proc)
        Path(directory or self.dir, "cgroup.procs").write_text(str(proc.pid))
        out, err = proc.communicate(b"x", timeout=30)
        assert proc.returncode == 0, err
        return json.loads(out)

    def node(self, name: str) -> str:
        return str(self.nodes / name)

    def program_ids(self, directory: str | None = None) -> list[int]:
        fd = os.open(directory or self.dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            return attached_program_ids(fd)
        finally:
            os.close(fd)

    def remove(self) -> None:
        for proc in self.children:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
        for directory in sorted((d for d, _, _ in os.walk(self.dir)), key=len, reverse=True):
            for _ in range(500):   # a reaped child may take a moment to leave the cgroup
                try:
                    os.rmdir(directory)
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY:
                        raise
                    time.sleep(0.01)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    mount = cgroup2_mount()
    if mount is None:
        pytest.skip("no cgroup2 hierarchy is mounted on this host")
    box = Sandbox(mount, tmp_path)
    try:
        yield box
    finally:
        box.remove()
    assert not os.path.exists(box.dir)


RW, RO, WO = os.O_RDWR, os.O_RDONLY, os.O_WRONLY


def test_the_default_rules_allow_the_default_devices_only(sandbox: Sandbox) -> None:
    mem = sandbox.node("mem")
    os.mknod(mem, 0o600 | stat.S_IFCHR, os.makedev(1, 1))   # a node like /dev/mem, made outside the cgroup
    apply_device_filter(sandbox.dir, DEFAULT_DEVICE_RULES)
    assert sandbox.probe([["open", "/dev/null", RW], ["open", "/dev/zero", RO], ["open", mem, RO],
                          ["mknod", sandbox.node("n"), "c", 1, 3], ["mknod", sandbox.node("d"), "b", 8, 0]]) == \
        ["ok", "ok", "EPERM", "ok", "ok"]


def test_devices_outside_the_list_are_refused(sandbox: Sandbox) -> None:
    apply_device_filter(sandbox.dir, [DENY_ALL, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}])
    assert sandbox.probe([["open", "/dev/null", RW], ["open", "/dev/zero", RO], ["open", "/dev/full", WO],
                          ["mknod", sandbox.node("n"), "c", 1, 3]]) == ["ok", "EPERM", "EPERM", "EPERM"]


def test_read_only_access(sandbox: Sandbox) -> None:
    apply_device_filter(sandbox.dir, [DENY_ALL, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "r"}])
    assert sandbox.probe([["open", "/dev/null", RO], ["open", "/dev/null", WO], ["open", "/dev/null", RW]]) == \
        ["ok", "EPERM", "EPERM"]


def test_mknod_follows_the_m_rules(sandbox: Sandbox) -> None:
    apply_device_filter(sandbox.dir, [DENY_ALL, {"allow": True, "type": "c", "access": "m"}])
    assert sandbox.probe([["mknod", sandbox.node("c"), "c", 1, 3], ["mknod", sandbox.node("b"), "b", 7, 0],
                          ["open", "/dev/null", RO]]) == ["ok", "EPERM", "EPERM"]


def test_wildcards(sandbox: Sandbox) -> None:
    apply_device_filter(sandbox.dir, [DENY_ALL, {"allow": True, "type": "c", "major": 1, "minor": -1, "access": "rw"}])
    assert sandbox.probe([["open", "/dev/null", RW], ["open", "/dev/zero", RW], ["open", "/dev/full", RW],
                          ["open", "/dev/tty", RW]]) == ["ok", "ok", "ok", "EPERM"]
    apply_device_filter(sandbox.dir, [DENY_ALL, {"allow": True, "type": "a", "major": -1, "minor": -1,
                                                 "access": "rwm"}])
    assert sandbox.probe([["open", "/dev/zero", RW], ["mknod", sandbox.node("b"), "b", 7, 0]]) == ["ok", "ok"]


def test_the_last_matching_rule_wins(sandbox: Sandbox) -> None:
    apply_device_filter(sandbox.dir, [{"allow": True, "type": "a", "access": "rwm"},
                                      {"allow": False, "type": "c", "major": 1, "minor": 5, "access": "rwm"}])
    assert sandbox.probe([["open", "/dev/null", RW], ["open", "/dev/zero", RO],
                          ["mknod", sandbox.node("b"), "b", 7, 0]]) == ["ok", "EPERM", "ok"]
    apply_device_filter(sandbox.dir, [{"allow": True, "type": "a", "access": "rwm"},
                                      {"allow": False, "type": "c", "major": 1, "minor": 5, "access": "w"}])
    assert sandbox.probe([["open", "/dev/zero", RO], ["open", "/dev/zero", RW], ["open", "/dev/zero", WO]]) == \
        ["ok", "EPERM", "EPERM"]


def test_without_a_deny_all_rule_only_the_denied_devices_are_refused(sandbox: Sandbox) -> None:
    # As on cgroup v1, where a new cgroup starts from its parent's "a *:* rwm", and as in runc.
    apply_device_filter(sandbox.dir, [{"allow": False, "type": "c", "major": 1, "minor": 5, "access": "rwm"}])
    assert sandbox.probe([["open", "/dev/null", RO], ["mknod", sandbox.node("c"), "c", 1, 3],
                          ["open", "/dev/zero", RO]]) == ["ok", "ok", "EPERM"]


def test_update_replaces_the_program(sandbox: Sandbox) -> None:
    assert sandbox.program_ids() == []
    apply_device_filter(sandbox.dir, [{"allow": True, "access": "rwm"}])
    first = sandbox.program_ids()
    assert len(first) == 1
    apply_device_filter(sandbox.dir, [{"allow": True, "access": "rwm"},
                                      {"allow": False, "type": "c", "major": 1, "minor": 5}])
    second = sandbox.program_ids()
    assert len(second) == 1 and second != first
    assert sandbox.probe([["open", "/dev/null", RW], ["open", "/dev/zero", RO]]) == ["ok", "EPERM"]


def test_programs_skiff_did_not_attach_are_left_alone(sandbox: Sandbox) -> None:
    fd = bpf_devices.load(compile_rules([{"allow": True, "access": "rwm"}]), sandbox.dir, name=b"someone_else")
    cgroup_fd = bpf_devices.open_cgroup(sandbox.dir)
    try:
        bpf_devices.attach(cgroup_fd, fd, sandbox.dir)
    finally:
        os.close(fd)
        os.close(cgroup_fd)
    foreign = sandbox.program_ids()
    apply_device_filter(sandbox.dir, [{"allow": True, "access": "rwm"}])
    apply_device_filter(sandbox.dir, [{"allow": True, "access": "rwm"}])
    ids = sandbox.program_ids()
    assert len(ids) == 2 and foreign[0] in ids


def test_v2_cgroup_attaches_its_device_rules(sandbox: Sandbox) -> None:
    """V2Cgroup end to end on the real hierarchy (it has no controllers here: devices need none)."""
    cg = V2Cgroup(sandbox.mount, f"{os.path.basename(sandbox.dir)}/ctr")
    cg.create({"devices": [DENY_ALL, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]})
    try:
        assert len(sandbox.program_ids(cg.dir)) == 1
        assert sandbox.probe([["open", "/dev/null", RW], ["open", "/dev/zero", RO]], cg.dir) == ["ok", "EPERM"]
        cg.update({"devices": [DENY_ALL, {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "r"}]})
        assert len(sandbox.program_ids(cg.dir)) == 1
        assert sandbox.probe([["open", "/dev/null", RO], ["open", "/dev/zero", RO]], cg.dir) == ["EPERM", "ok"]
    finally:
        for proc in sandbox.children:
            proc.wait()
        cg.destroy()


def test_a_directory_that_is_no_cgroup_is_refused_clearly(tmp_path: Path) -> None:
    if cgroup2_mount() is None:
        pytest.skip("no cgroup2 hierarchy is mounted on this host")
    with pytest.raises(DeviceFilterError, match=rf"cannot list the device filters of {tmp_path}: .*cgroup v2"):
        apply_device_filter(str(tmp_path), [DENY_ALL])
    with pytest.raises(DeviceFilterError, match=rf"cannot open cgroup {tmp_path}/absent"):
        apply_device_filter(str(tmp_path / "absent"), [DENY_ALL])


def test_a_verifier_refusal_quotes_the_verifier() -> None:
    with pytest.raises(DeviceFilterError, match=r"cannot load the eBPF device filter for /x: Permission denied; "
                                                r"the verifier says: .*\(95\) exit \| R0 !read_ok$"):
        bpf_devices.load([Insn(EXIT)], "/x")   # exit with r0 never set


def test_loading_without_the_capability_says_which_is_needed() -> None:
    code = ("from skiff import linux\n"
            "from skiff.cgroups import bpf_devices\n"
            "effective, permitted, inheritable = linux.capget()\n"
            "linux.capset(0, permitted, inheritable)\n"
            "try:\n"
            "    bpf_devices.load(bpf_devices.compile_rules([]), '/x')\n"
            "except Exception as exc:\n"
            "    print(type(exc).__name__, exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True).stdout
    assert out.strip() == ("DeviceFilterError cannot load the eBPF device filter for /x: Operation not permitted "
                           "(eBPF device filters need CAP_SYS_ADMIN (or CAP_BPF) in the initial user namespace)")
