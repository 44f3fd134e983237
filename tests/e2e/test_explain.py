"""``--explain``: the installed command tells each kernel-level step on stderr, and changes nothing else.

Run as a user runs it (the launcher, a clean environment: tests/e2e/test_installed.py),
with the README's volume scenario plus a published port on the bridge and a memory limit,
so that every phase has something to say.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from skiff.explain import PHASES
from tests.e2e.test_installed import Installed, launcher, user  # noqa: F401 - the fixtures
from tests.network.helpers import free_port

TEXT_PHASES = tuple(f"{phase} " for phase in PHASES)


def _phases_of_text(stderr: str) -> list[str]:
    """The phase of each step line (step lines begin with their phase; the call lines are indented)."""
    return [line.split()[0] for line in stderr.splitlines() if line.startswith(TEXT_PHASES)]


def _volume_port_memory(user: Installed, *explain: str) -> subprocess.CompletedProcess[str]:  # noqa: F811
    user.ok("volume", "create", "devoxx")
    return user("run", "--rm", *explain, "-v", "devoxx:/devoxx", "-p", f"{free_port()}:80", "-m", "64m",
                "busybox", "sh", "-c", 'echo "world" > /devoxx/hello; cat /devoxx/hello')


def test_explain_tells_every_phase_of_a_run(user: Installed) -> None:  # noqa: F811
    result = _volume_port_memory(user, "--explain")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "world\n"
    err = result.stderr
    assert set(_phases_of_text(err)) == set(PHASES)
    assert _phases_of_text(err)[0] == "image/storage" and _phases_of_text(err)[-1] == "teardown"
    for words in ("image layer 1 of 1", "type=overlay", "lowerdir=", "unshare(flags=CLONE_NEWNS",
                  "PID 1 of the new PID namespace", "bind ", " to /devoxx", "mount a new proc at /proc",
                  "pivot_root(new_root=., put_old=.)", "umount2(target=., flags=MNT_DETACH)",
                  "a veth pair", "make the bridge", "dnat to", "/etc/hosts", "/etc/resolv.conf",
                  "capabilities", "seccomp", "execve", "unmount the container's root filesystem"):
        assert words in err, f"{words!r} not in:\n{err}"
    memory = [line for line in err.splitlines() if line.startswith("cgroups ") and "memory." in line]
    assert any("= 67108864" in line for line in memory), err  # the limit as the file's value


def test_explain_json_is_one_object_per_line(user: Installed) -> None:  # noqa: F811
    result = _volume_port_memory(user, "--explain=json")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "world\n"
    steps = [json.loads(line) for line in result.stderr.splitlines()]
    assert all(set(step) == {"phase", "step", "call", "args", "ms"} for step in steps)
    assert all(isinstance(step["ms"], float) and step["ms"] >= 0 for step in steps)
    assert {step["phase"] for step in steps} == set(PHASES)
    writes = {Path(s["args"]["path"]).name: s["args"]["value"] for s in steps
              if s["phase"] == "cgroups" and s["call"] == "write"}
    assert writes.get("memory.max", writes.get("memory.limit_in_bytes")) == "67108864", writes


def test_the_containers_own_output_and_fds_are_unchanged(user: Installed) -> None:  # noqa: F811
    command = ("run", "--rm", "--network", "none", "busybox", "sh", "-c",
               "ls /proc/self/fd /proc/1/fd; echo to-stderr >&2")
    plain = user(*command)
    explained = user(*command[:1], "--explain", *command[1:])
    assert plain.returncode == explained.returncode == 0
    assert explained.stdout == plain.stdout
    # The container sees only its stdio: ls's own fd of the directory, and its init (sh) 0-2.
    assert plain.stdout.split() == ["/proc/1/fd:", "0", "1", "2", "/proc/self/fd:", "0", "1", "2", "3"]
    assert plain.stderr == "to-stderr\n" and "to-stderr\n" in explained.stderr
    assert "pivot_root" in explained.stderr


def test_start_and_exec_explain_their_own_steps(user: Installed) -> None:  # noqa: F811
    cid = user.ok("create", "--network", "none", "busybox", "sleep", "30").strip()
    started = user("start", "--explain", cid)
    assert started.returncode == 0 and started.stdout == f"{cid}\n", started.stderr
    assert "pivot_root" in started.stderr and "execve: path=/bin/sleep" in started.stderr
    executed = user("exec", "--explain", cid, "ls", "/proc/self/fd", "/proc/1/fd")
    assert executed.returncode == 0, executed.stderr
    assert executed.stdout.split() == ["/proc/1/fd:", "0", "1", "2", "/proc/self/fd:", "0", "1", "2", "3"]
    assert "join the container's mnt namespace" in executed.stderr and "execve: path=/bin/ls" in executed.stderr
    assert user("exec", cid, "ls", "/proc/self/fd").stdout.split() == ["0", "1", "2", "3"]
    user.ok("rm", "-f", cid)


def test_skiff_oci_explain_is_a_global_flag(tmp_path: Path, busybox_rootfs: Path) -> None:
    import shutil

    from tests.oci.test_cli import skiff_oci, write_config

    bundle = tmp_path / "bundle"
    shutil.copytree(busybox_rootfs, bundle / "rootfs", symlinks=True)
    write_config(bundle, ["ls", "/proc/self/fd"])
    result = skiff_oci(tmp_path / "state", "--explain=json", "run", "-b", str(bundle), "ex1")
    assert result.returncode == 0 and result.stdout.split() == ["0", "1", "2", "3"], result.stderr
    steps = [json.loads(line) for line in result.stderr.splitlines()]
    assert [s["call"] for s in steps if s["phase"] == "root"][:3] == ["mount", "pivot_root", "umount2"]
    assert steps[-1]["phase"] == "teardown"
    assert not (tmp_path / "state" / "ex1").exists()


def test_explain_never_takes_the_image_or_the_commands_words(user: Installed) -> None:  # noqa: F811
    result = user("run", "--rm", "--explain", "--network", "none", "busybox", "echo", "--explain")
    assert (result.returncode, result.stdout) == (0, "--explain\n"), result.stderr
    assert "pivot_root" in result.stderr
    bad = user("run", "--explain=yaml", "busybox", "true")
    assert bad.returncode == 125 and "argument --explain: ignored explicit argument 'yaml'" in bad.stderr


def test_a_reader_that_goes_away_ends_the_explanation_not_the_process(user: Installed) -> None:  # noqa: F811
    """``skiff exec --explain ... 2>&1 | head``: the exec child runs with SIGPIPE fatal (and, unlike the
    init, is not a PID 1 that the kernel shields from it); a step it cannot write must not kill it."""
    cid = user.ok("run", "-d", "--network", "none", "busybox", "sleep", "30").strip()
    command = [str(user.launcher), "exec", "--explain", cid, "echo", "done"]
    # The child pauses just before its last step (the exec): the reader leaves meanwhile.
    env = {**user.env, "SKIFF_TEST_PAUSE_BEFORE_EXEC": "0.5"}
    proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd="/")
    assert proc.stderr is not None and proc.stdout is not None
    for line in proc.stderr:
        if line.startswith(b"security ") and b"non-dumpable" in line:
            break
    proc.stderr.close()  # the reader is gone: the child's next step meets EPIPE
    assert proc.stdout.read() == b"done\n"
    assert proc.wait(timeout=60) == 0
    user.ok("rm", "-f", cid)


def test_an_init_started_from_the_sealed_interpreter_explains_too(user: Installed) -> None:  # noqa: F811
    """SKIFF_SEAL_EXE=1: the init is re-executed from a fresh interpreter (skiff.runtime.sealed), which
    gets the explanation's fd and state through its payload, and still closes the fd before the exec."""
    result = subprocess.run([str(user.launcher), "run", "--rm", "--explain", "--network", "none", "busybox", "ls",
                             "/proc/self/fd"], env={**user.env, "SKIFF_SEAL_EXE": "1"}, capture_output=True,
                            text=True, timeout=60, stdin=subprocess.DEVNULL, cwd="/")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "1", "2", "3"]
    assert "execveat (sealed) + clone" in result.stderr
    after_fork = result.stderr.partition("execveat (sealed)")[2]
    assert "pivot_root(new_root=., put_old=.)" in after_fork and "execve: path=/bin/ls" in after_fork
