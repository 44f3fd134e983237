"""Crash safety: a skiff command SIGKILLed at any step of run, create or start leaves nothing behind.

``SKIFF_CRASH_AT=<step>`` makes the command kill itself at that step (see
``skiff.crash_point``). The next command (here ``ps -a``, then ``rm -f`` and
``network prune -f``) must leave no mount, veth, network namespace, lease,
endpoint, cgroup, runtime state, process or record behind, and ``ps -a`` must
tell the truth: a foreground ``run --rm`` is gone, a foreground ``run`` is
Exited (137) (the command that ran it was killed), a ``run -d`` or ``start`` that
never got its container going leaves it Created, and it starts again.

BRIDGE NETWORKING: these containers use the default bridge, so that every step
after the network attach has a veth, a netns pin and a lease to leak. The names
are private to each test (``skiff_env`` in tests/conftest.py: its own bridge,
veth prefix, nft table and subnet), so they never touch skiff0 or another
session's networks; the leftovers are looked for by those names.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CGROUP_PARENT, Skiff

# The steps of a foreground run, in order (``runtime-create``: the init exists, its state does not).
RUN_STEPS = ("recorded", "reserved", "rootfs", "network", "volumes", "bundle", "runtime-create", "created", "exited")
# The steps of ``start`` (``run -d`` is create then start); the last two happen in the monitor's helper.
START_STEPS = ("starting", "rootfs", "network", "volumes", "bundle", "runtime-create", "created")
TOKEN = "crashtoken31337"  # in the container's command line: finds its processes, even an init not yet exec'd


@pytest.fixture
def crash(skiff: Skiff, busybox_image: str) -> Iterator[Skiff]:
    """The CLI with busybox and a driver-mounted volume (a host mount per user); afterwards nothing left."""
    skiff.ok("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "drv")
    yield skiff
    ids = skiff("ps", "-aq", "--no-trunc").stdout.split()
    if ids:
        skiff("rm", "-f", "-v", *ids)
    skiff("volume", "rm", "drv")
    assert not processes(), "container processes left running"


def killed_at(skiff: Skiff, step: str, *args: str, status: int = -9) -> subprocess.CompletedProcess[str]:
    """Run ``skiff ARGS`` set to SIGKILL itself at ``step``; its output goes to files, not pipes
    (an init created before the kill holds them open until the next command cleans up).

    ``status``: what the command returns, -9 when the step is its own (125 when a helper
    process of the monitor is the one killed: the command reports that).
    """
    env = dict(skiff.env, SKIFF_CRASH_AT=step)
    out = skiff.root.parent / "crashed.out"
    with open(out, "w") as f:
        proc = subprocess.run([sys.executable, "-m", "skiff", *args], env=env, stdin=subprocess.DEVNULL,
                              stdout=f, stderr=subprocess.STDOUT, timeout=60)
    assert proc.returncode == status, f"skiff {' '.join(args)} did not reach step {step}: {out.read_text()}"
    return proc


def container_args(*extra: str) -> list[str]:
    return ["-v", "/data", "-v", "drv:/drv", *extra, "busybox", "sh", "-c", "exit 3", TOKEN]


def processes() -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if TOKEN.encode() in cmdline and b"pytest" not in cmdline:
                found.append(f"process {entry}: " + cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return found


def leftovers(skiff: Skiff, cid: str, record_kept: bool = False) -> list[str]:
    """Everything of container ``cid`` still on the host (its record only if not ``record_kept``)."""
    config = json.loads((skiff.root / "network" / "config.json").read_text())
    deadline = time.monotonic() + 3  # a veth goes with its namespace, which the kernel destroys in the background
    while True:
        found = _leftovers(skiff, cid, config, record_kept)
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def _leftovers(skiff: Skiff, cid: str, config: dict, record_kept: bool) -> list[str]:
    found = processes()
    with open("/proc/self/mountinfo") as f:
        found += [f"mount {line.split()[4]}" for line in f if str(skiff.root.parent) in line.split()[4]]
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    found += [f"veth {line.split(':')[1].strip()}" for line in links.splitlines() if config["veth_prefix"] in line]
    netns = skiff.run_root / "netns"
    found += [f"netns pin {p}" for p in netns.glob("*") if not p.name.startswith(".")] if netns.is_dir() else []
    found += [f"endpoint {p}" for p in (skiff.root / "network" / "endpoints").glob("*.json")]
    for record in (skiff.root / "network" / "networks").glob("*.json"):
        found += [f"lease {ip['IPAddress']} on {record.stem}"
                  for ip in json.loads(record.read_text())["Containers"].values()]
    found += [f"cgroup {p}" for p in Path("/sys/fs/cgroup").glob(f"*/{CGROUP_PARENT}/{cid}")]
    if (skiff.run_root / "runtime" / cid).exists():
        found.append(f"runtime state {skiff.run_root / 'runtime' / cid}: {os.listdir(skiff.run_root / 'runtime' / cid)}")
    if not record_kept and (skiff.root / "containers" / cid).exists():
        found.append(f"record {cid}")
    found += [f"temporary file {p}" for p in (skiff.root / "containers").glob(".*.json.*")]
    return found


def only_container(skiff: Skiff) -> str:
    (cid,) = [p.name for p in (skiff.root / "containers").iterdir() if not p.name.startswith(".")]
    return cid


def status(skiff: Skiff, name: str) -> str:
    """The STATUS column of ``ps -a`` for ``name`` ("" if not listed), without its "... ago"."""
    for line in skiff.ok("ps", "-a", "--format", "json").splitlines():
        row = json.loads(line)
        if row["Names"] == name:
            shown = row["Status"]
            return shown.split(" ago")[0].rsplit(")", 1)[0] + ")" if "(" in shown else shown.split()[0]
    return ""


def all_released(skiff: Skiff, cid: str) -> None:
    """rm -f -v and network prune leave nothing, the default bridge included."""
    skiff("rm", "-f", "-v", cid)
    skiff.ok("network", "prune", "-f")
    assert leftovers(skiff, cid) == []
    assert skiff.ok("volume", "ls", "-q").split() == ["drv"]
    config = json.loads((skiff.root / "network" / "config.json").read_text())
    assert config["default_bridge"] not in subprocess.run(["ip", "-o", "link"], capture_output=True,
                                                          text=True).stdout, "the default bridge could not be pruned"


@pytest.mark.parametrize("step", RUN_STEPS)
def test_crash_bridge_foreground_run_rm(crash: Skiff, step: str) -> None:
    """A killed ``run --rm`` is removed entirely by the next command, whatever the step."""
    killed_at(crash, step, "run", "--rm", "--name", "fg", *container_args())
    cid = only_container(crash)
    assert status(crash, "fg") == ""  # the next command (ps) finished the job: no record at all
    assert leftovers(crash, cid) == []
    assert crash.ok("volume", "ls", "-q").split() == ["drv"]  # its anonymous volume went with it
    assert crash("run", "--rm", "--name", "fg", "busybox", "true").returncode == 0  # the name is free
    all_released(crash, cid)


@pytest.mark.parametrize("step", RUN_STEPS)
def test_crash_bridge_foreground_run(crash: Skiff, step: str) -> None:
    """A killed ``run`` holds nothing: Created if it never ran (it starts again), else Exited (137)."""
    killed_at(crash, step, "run", "--name", "fg", *container_args())
    cid = only_container(crash)
    expected = {"created": "Exited (137)", "exited": "Exited (3)"}.get(step, "Created")
    assert status(crash, "fg") == expected
    assert leftovers(crash, cid, record_kept=True) == []
    state = json.loads(crash.ok("inspect", "fg"))[0]["State"]
    assert not state["Running"] and state["Pid"] == 0
    all_released(crash, cid)
    assert crash("run", "--rm", "--name", "fg", "busybox", "true").returncode == 0


@pytest.mark.parametrize("step", START_STEPS)
def test_crash_bridge_run_detached(crash: Skiff, step: str) -> None:
    """A ``run -d`` killed while starting leaves a Created container that starts (and attaches) again."""
    in_helper = step in ("runtime-create", "created")  # the monitor's helper dies, and the command says so
    killed_at(crash, step, "run", "-d", "--name", "bg", *container_args(), status=125 if in_helper else -9)
    cid = only_container(crash)
    assert status(crash, "bg") == "Created"
    assert leftovers(crash, cid, record_kept=True) == []
    crash.ok("start", "bg")  # no "already attached to a network"
    assert crash.ok("wait", "bg") == "3\n"
    assert status(crash, "bg") == "Exited (3)"
    assert leftovers(crash, cid, record_kept=True) == []
    all_released(crash, cid)


@pytest.mark.parametrize("step", ["recorded", "reserved"])  # before and after its volumes are made
def test_crash_bridge_create(crash: Skiff, step: str) -> None:
    killed_at(crash, step, "create", "--name", "made", *container_args())
    cid = only_container(crash)
    assert status(crash, "made") == "Created"
    assert leftovers(crash, cid, record_kept=True) == []
    all_released(crash, cid)
    assert crash("run", "--rm", "--name", "made", "busybox", "true").returncode == 0


def test_crash_bridge_start_of_created_container(crash: Skiff) -> None:
    crash.ok("create", "--name", "made", *container_args())
    killed_at(crash, "network", "start", "made")
    cid = only_container(crash)
    assert status(crash, "made") == "Created"
    assert leftovers(crash, cid, record_kept=True) == []
    crash.ok("start", "made")
    assert crash.ok("wait", "made") == "3\n"
    all_released(crash, cid)


def test_crash_bridge_running_foreground_run_killed(crash: Skiff) -> None:
    """SIGKILL of ``run --rm`` while its container runs: the next command kills and removes it."""
    proc = subprocess.Popen([sys.executable, "-m", "skiff", "run", "--rm", "--name", "fg", "-v", "/data",
                             "-v", "drv:/drv", "busybox", "sh", "-c", "sleep 300", TOKEN], env=crash.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while status(crash, "fg") != "Up":
            assert time.monotonic() < deadline, "the container never ran"
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    cid = only_container(crash)
    assert status(crash, "fg") == ""
    assert leftovers(crash, cid) == []
    all_released(crash, cid)


def test_crash_bridge_monitor_killed_then_started_again(crash: Skiff) -> None:
    """The monitor of a detached container SIGKILLed: Exited (137), released, and it starts again."""
    crash.ok("run", "-d", "--name", "bg", "-v", "drv:/drv", "busybox", "sh", "-c", "sleep 300", TOKEN)
    cid = only_container(crash)
    monitor = json.loads((crash.root / "containers" / cid / "container.json").read_text())["State"]["MonitorPid"]
    os.kill(monitor, 9)
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{monitor}") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert status(crash, "bg") == "Exited (137)"
    assert leftovers(crash, cid, record_kept=True) == []
    crash.ok("start", "bg")
    assert status(crash, "bg") == "Up"
    crash.ok("stop", "-t", "0", "bg")
    all_released(crash, cid)


def test_network_prune_releases_what_no_container_holds(crash: Skiff) -> None:
    """Network state whose container has no record (an older skiff killed mid-run) goes with prune."""
    from skiff.network import NetworkManager, NetworkRequest
    from skiff.paths import Paths

    orphan = "0" * 63 + "1"
    NetworkManager(Paths(crash.root, crash.run_root)).attach(orphan, NetworkRequest(network="bridge"))
    assert leftovers(crash, orphan)  # a netns pin, a veth, an endpoint and a lease
    crash.ok("network", "prune", "-f")
    all_released(crash, orphan)
