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
    ("foo", 'invalid --security-opt: "foo"'),
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
