"""seccomp by default (issue 12): Docker's profile on run, create and exec; --security-opt; the cache.

The calls are made inside real busybox containers by ``probe.c``, a static helper
compiled here (gcc -static, installed by scripts/setup) and bind-mounted read-only.
It prints NAME=ERRNO per call, 0 for success.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Skiff

HERE = Path(__file__).resolve().parent
# What Docker's default profile refuses with EPERM, and skiff did not before issue 12.
REFUSED = ("unshare_user", "userns_tmpfs", "keyctl", "add_key", "perf_event_open",
           "personality_read_implies_exec", "kcmp")
STATUS = "grep '^Seccomp:' /proc/self/status; /probe/probe"


@pytest.fixture(scope="session")
def probe_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("probe")
    subprocess.run(["gcc", "-static", "-O1", "-o", str(out / "probe"), str(HERE / "probe.c")], check=True)
    return out


def parse(output: str) -> tuple[str, dict[str, int]]:
    """(the Seccomp mode from /proc/self/status, {probe: errno})."""
    mode, results = "", {}
    for line in output.splitlines():
        if line.startswith("Seccomp:"):
            mode = line.split()[1]
        elif "=" in line:
            name, _, value = line.partition("=")
            results[name] = int(value)
    return mode, results


def run_probe(skiff: Skiff, probe_dir: Path, *flags: str) -> tuple[str, dict[str, int]]:
    done = skiff("run", "--rm", "--network", "none", "-v", f"{probe_dir}:/probe:ro", *flags, "busybox:latest",
                 "sh", "-c", STATUS)
    assert done.returncode == 0, done.stderr
    return parse(done.stdout)


def assert_docker_default(mode: str, results: dict[str, int]) -> None:
    assert mode == "2", "no seccomp filter in the container"
    refused = {name: results.get(name) for name in REFUSED}
    assert refused == dict.fromkeys(REFUSED, errno.EPERM), results
    assert results["clone3"] == errno.ENOSYS, "clone3 must say ENOSYS so that libc falls back to clone"
    assert results["personality_linux"] == 0, "the plain Linux persona stays allowed"


def test_run_applies_dockers_default_profile(skiff: Skiff, busybox_image: str, probe_dir: Path) -> None:
    assert_docker_default(*run_probe(skiff, probe_dir))


def test_unconfined_has_no_filter(skiff: Skiff, busybox_image: str, probe_dir: Path) -> None:
    mode, results = run_probe(skiff, probe_dir, "--security-opt", "seccomp=unconfined")
    assert mode == "0"
    assert set(results) >= set(REFUSED)
    assert all(results[name] != errno.EPERM for name in REFUSED), results
    assert results["clone3"] != errno.ENOSYS


def test_exec_gets_the_containers_filter(skiff: Skiff, busybox_image: str, probe_dir: Path) -> None:
    for flags, expected in (((), "2"), (("--security-opt", "seccomp=unconfined"), "0")):
        cid = skiff.ok("run", "-d", "--network", "none", "-v", f"{probe_dir}:/probe:ro", *flags,
                       busybox_image, "sleep", "60").strip()
        try:
            mode, results = parse(skiff.ok("exec", cid, "sh", "-c", STATUS))
        finally:
            skiff("rm", "-f", cid)
        if expected == "2":
            assert_docker_default(mode, results)
        else:
            assert mode == "0" and results["unshare_user"] != errno.EPERM, results


def test_custom_profile_on_create_survives_its_file(skiff: Skiff, busybox_image: str, tmp_path: Path) -> None:
    """A Docker-format profile replaces the default; as Docker, the record keeps the profile, not the path."""
    profile = tmp_path / "no-mkdir.json"
    profile.write_text(json.dumps({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EACCES},
                     {"names": ["sethostname"], "action": "SCMP_ACT_ERRNO",
                      "excludes": {"caps": ["CAP_CHOWN"]}}],  # the container has CAP_CHOWN: rule dropped
    }, indent=2))
    cid = skiff.ok("create", "--network", "none", "--security-opt", f"seccomp={profile}", busybox_image,
                   "sh", "-c", "grep '^Seccomp:' /proc/self/status; mkdir /tmp/d; echo mkdir=$?; "
                   "unshare -U true && echo unshare-ok").strip()
    try:
        profile.unlink()
        security_opt = json.loads(skiff.ok("inspect", cid))[0]["HostConfig"]["SecurityOpt"]
        assert len(security_opt) == 1 and security_opt[0].startswith("seccomp={")
        assert json.loads(security_opt[0].removeprefix("seccomp="))["defaultAction"] == "SCMP_ACT_ALLOW"
        done = skiff("start", "-a", cid)
        assert "Seccomp:\t2" in done.stdout and "mkdir=1" in done.stdout, done.stdout + done.stderr
        assert "Permission denied" in done.stderr  # errnoRet EACCES, not the default EPERM
        assert "unshare-ok" in done.stdout  # the default profile is replaced, not added to
    finally:
        skiff("rm", "-f", cid)


def test_inspect_shows_security_opt(skiff: Skiff, busybox_image: str) -> None:
    for flags, expected in (((), None), (("--security-opt", "seccomp=unconfined"), ["seccomp=unconfined"])):
        cid = skiff.ok("create", *flags, busybox_image, "true").strip()
        try:
            assert json.loads(skiff.ok("inspect", cid))[0]["HostConfig"]["SecurityOpt"] == expected
        finally:
            skiff("rm", "-f", cid)


@pytest.mark.parametrize("value, message", [
    ("foo", 'Invalid --security-opt: "foo"'),
    ("bogus=1", 'invalid --security-opt: "bogus=1"'),
    ("seccomp=/nonexistent/profile.json", "opening seccomp profile (/nonexistent/profile.json) failed"),
    ("seccomp=@BAD_JSON", "compacting json for seccomp profile"),
    ("seccomp=@BAD_ACTION", "unknown or unsupported action 'SCMP_ACT_NOPE'"),
    ("seccomp=@BOTH_ARCH", "use either 'architectures' or 'archMap'"),
])
def test_bad_values_are_one_line_and_125(skiff: Skiff, busybox_image: str, tmp_path: Path, value: str,
                                         message: str) -> None:
    files = {"@BAD_JSON": "{not json", "@BAD_ACTION": json.dumps({"defaultAction": "SCMP_ACT_NOPE"}),
             "@BOTH_ARCH": json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"],
                                       "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]})}
    if value.removeprefix("seccomp=") in files:
        path = tmp_path / "profile.json"
        path.write_text(files[value.removeprefix("seccomp=")])
        value = f"seccomp={path}"
    for command in ("run", "create"):
        args = ("--rm",) if command == "run" else ()
        done = skiff(command, *args, "--security-opt", value, busybox_image, "true")
        assert done.returncode == 125, done
        assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr, done.stderr
    assert skiff.ok("ps", "-aq") == ""


def test_filter_is_compiled_once_and_cached(skiff: Skiff, busybox_image: str, probe_dir: Path) -> None:
    cache = skiff.run_root / "seccomp"
    assert_docker_default(*run_probe(skiff, probe_dir))
    files = list(cache.iterdir())
    assert len(files) == 1 and files[0].suffix == ".bpf", files
    st = files[0].stat()
    assert st.st_mode & 0o077 == 0 and st.st_size % 8 == 0
    assert_docker_default(*run_probe(skiff, probe_dir))
    again = files[0].stat()
    assert (again.st_ino, again.st_mtime_ns) == (st.st_ino, st.st_mtime_ns), "the filter was compiled again"
    assert list(cache.iterdir()) == files
    # A damaged entry is compiled again, never loaded.
    files[0].write_bytes(b"\x06\x00\x00\x00\x00\x00\xff")  # 7 bytes: not a BPF program
    assert_docker_default(*run_probe(skiff, probe_dir))
    assert files[0].stat().st_size == st.st_size


# --- the profile itself, resolved without a container ----------------------------------------------

def rules_for(seccomp: dict, name: str) -> list[dict]:
    return [rule for rule in seccomp["syscalls"] if name in rule["names"]]


def test_capability_rules_follow_the_container() -> None:
    from skiff.runtime.spec import DOCKER_DEFAULT_CAPS
    from skiff.security.seccomp import Host, default_seccomp

    x86 = Host("x86_64", "6.1.0")
    plain = default_seccomp(DOCKER_DEFAULT_CAPS, x86)
    assert plain["defaultAction"] == "SCMP_ACT_ERRNO" and plain["defaultErrnoRet"] == errno.EPERM
    assert plain["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    for name in ("mount", "unshare", "setns", "kcmp", "keyctl", "add_key", "reboot", "init_module", "bpf"):
        assert not rules_for(plain, name), name
    assert rules_for(plain, "chroot")  # CAP_SYS_CHROOT is one of Docker's default capabilities
    [clone] = rules_for(plain, "clone")
    assert clone["args"] == [{"index": 0, "value": 0x7E020000, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]
    assert rules_for(plain, "clone3") == [{"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS}]
    assert rules_for(plain, "arch_prctl") and rules_for(plain, "modify_ldt")
    personas = sorted(rule["args"][0]["value"] for rule in rules_for(plain, "personality"))
    assert personas == [0, 8, 0x20000, 0x20008, 0xFFFFFFFF]

    admin = default_seccomp([*DOCKER_DEFAULT_CAPS, "CAP_SYS_ADMIN", "CAP_SYS_PTRACE"], x86)
    for name in ("mount", "unshare", "setns", "kcmp", "pidfd_getfd", "perf_event_open"):
        assert rules_for(admin, name), name
    assert all("args" not in rule for rule in rules_for(admin, "clone"))
    assert all(rule["action"] == "SCMP_ACT_ALLOW" for rule in rules_for(admin, "clone3"))

    arm = default_seccomp(DOCKER_DEFAULT_CAPS, Host("aarch64", "6.1.0"))
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert not rules_for(arm, "arch_prctl") and rules_for(arm, "cacheflush")


def test_docker_profile_conditions() -> None:
    from skiff.security.seccomp import Host, ProfileError, to_oci

    profile = {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"], "syscalls": [
        {"name": "read", "action": "SCMP_ACT_ALLOW"},
        {"names": ["new"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5.10"}},
        {"names": ["old"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "5.10"}},
        {"names": ["armonly"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
        {"names": ["notarm"], "action": "SCMP_ACT_LOG", "excludes": {"arches": ["arm64"]}},
    ]}
    names = [rule["names"][0] for rule in to_oci(profile, [], Host("x86_64", "5.4.0-1-amd64"))["syscalls"]]
    assert names == ["read", "old", "notarm"]
    names = [rule["names"][0] for rule in to_oci(profile, [], Host("aarch64", "6.18.0"))["syscalls"]]
    assert names == ["read", "new", "armonly"]
    assert to_oci({}, []) is None  # Docker: nothing to filter, no filter
    with pytest.raises(ProfileError, match="either 'name' or 'names'"):
        to_oci({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "a", "names": ["b"],
                                                                 "action": "SCMP_ACT_ERRNO"}]}, [])
    with pytest.raises(ProfileError, match="unknown operator"):
        to_oci({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["a"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "LIKE"}]}]}, [])


def test_cache_key_separates_profiles_and_hosts(tmp_path: Path) -> None:
    from skiff.runtime.seccomp_filter import cache_key, program

    allow = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    deny = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"}]}
    assert cache_key(allow) != cache_key(deny)
    first, second = program(allow, str(tmp_path)), program(deny, str(tmp_path))
    assert first.bpf != second.bpf and len(os.listdir(tmp_path)) == 2
    assert program(allow, str(tmp_path)).bpf == first.bpf
    assert program({**allow, "flags": ["SECCOMP_FILTER_FLAG_LOG"]}, str(tmp_path)).flags == 2
    # A cache that cannot be written costs the compile, never the container.
    assert program(allow, "/proc/skiff-no-such-dir/seccomp").bpf == first.bpf


# --- the optimized filter against libseccomp's plain one -------------------------------------------

AUDIT_ARCH = {"SCMP_ARCH_X86_64": 0xC000003E, "SCMP_ARCH_X86": 0x40000003, "SCMP_ARCH_AARCH64": 0xC00000B7,
              "SCMP_ARCH_ARM": 0x40000028}
X32_BIT = 0x40000000


def run_bpf(program: list[tuple[int, int, int, int]], data: bytes) -> int:
    """A classic BPF interpreter for the instructions libseccomp emits; the filter's return value."""
    import struct

    acc, pc = 0, 0
    while True:
        code, jt, jf, k = program[pc]
        pc += 1
        if code == 0x20:  # ld [k]
            acc = struct.unpack_from("<I", data, k)[0]
        elif code == 0x54:  # and #k
            acc &= k
        elif code == 0x05:  # ja
            pc += k
        elif code in (0x15, 0x25, 0x35, 0x45):  # jeq, jgt, jge, jset #k
            taken = {0x15: acc == k, 0x25: acc > k, 0x35: acc >= k, 0x45: bool(acc & k)}[code]
            pc += jt if taken else jf
        elif code == 0x06:  # ret #k
            return k
        else:
            raise AssertionError(f"instruction {code:#x} not emulated")


def test_optimized_filter_decides_as_libseccomps_plain_one() -> None:
    """compile_filter asks libseccomp for a binary tree (faster to install): same answer for every call."""
    import struct

    import seccomp

    from skiff.runtime.seccomp_filter import _export, compile_filter
    from skiff.runtime.spec import DOCKER_DEFAULT_CAPS
    from skiff.security.seccomp import default_seccomp

    def decode(bpf: bytes) -> list[tuple[int, int, int, int]]:
        return [struct.unpack_from("<HBBI", bpf, i) for i in range(0, len(bpf), 8)]

    # First arguments that the profile's filters tell apart (personas, clone flags, AF_VSOCK), and a
    # value with high bits set: 64-bit comparisons are two 32-bit ones.
    firsts = (0, 8, 40, 0x20000, 0x20008, 0x400000, 0x10000000 | 17, 0x7E020000, 0xFFFFFFFF, (1 << 63) | 8)
    for caps in (DOCKER_DEFAULT_CAPS, [*DOCKER_DEFAULT_CAPS, "CAP_SYS_ADMIN"]):
        config = default_seccomp(caps)
        tree = decode(_export(compile_filter(config)))
        plain_filter = compile_filter(config)
        plain_filter.set_attr(seccomp.Attr.CTL_OPTIMIZE, 1)
        plain = decode(_export(plain_filter))
        assert tree != plain, "libseccomp made no binary tree"
        if config["architectures"][0] == "SCMP_ARCH_X86_64" and "CAP_SYS_ADMIN" not in caps:
            def answer(nr: int, first: int = 0) -> int:
                return run_bpf(tree, struct.pack("<iIQ6Q", nr, AUDIT_ARCH["SCMP_ARCH_X86_64"], 0, first, 0, 0, 0, 0, 0))

            allow, eperm = 0x7FFF0000, 0x00050000 | errno.EPERM
            # read, unshare, personality(PER_LINUX32), personality(READ_IMPLIES_EXEC): the emulator sees them
            assert (answer(0), answer(272), answer(135, 8), answer(135, 0x400000)) == (allow, eperm, allow, eperm)
        calls = [(AUDIT_ARCH[arch], nr) for arch in config["architectures"] if arch in AUDIT_ARCH
                 for nr in range(0, 480)]
        if "SCMP_ARCH_X32" in config["architectures"]:
            calls += [(AUDIT_ARCH["SCMP_ARCH_X86_64"], X32_BIT | nr) for nr in range(0, 560)]
        calls += [(0x1234, 0)]  # an architecture not in the filter
        for arch, nr in calls:
            for first in firsts:
                data = struct.pack("<iIQ6Q", nr, arch, 0, first, first >> 1, 0, 0, 0, 0)
                assert run_bpf(tree, data) == run_bpf(plain, data), (hex(arch), nr, hex(first))
