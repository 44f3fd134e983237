"""``skiff events``: Docker's events from the log skiff writes, with real containers.

The expected sequences and line formats were recorded from Docker 20.10 (a private dockerd):
``docker run -d``, ``stop``, ``rm`` give create, (network connect), start, kill (15), kill (9)
when the stop timeout passes, die (exitCode), (network disconnect), stop, destroy.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import Skiff
from tests.e2e.test_lifecycle import detach, lc  # noqa: F401  (lc: the fixture)

# Docker's client line: local time as RFC3339 with 9 fraction digits, type, action, id, (k=v, ...).
LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d) (\w+) (.+?) (\S+)( \((.*)\))?$")


def events(skiff: Skiff, *args: str) -> list[dict]:
    """The events in a window, as ``{{json .}}`` documents."""
    out = skiff.ok("events", "--format", "{{json .}}", *args)
    return [json.loads(line) for line in out.splitlines()]


def now() -> str:
    return f"{time.time():.9f}"


def test_run_stop_rm_in_order_with_docker_attributes(lc: Skiff) -> None:
    since = now()
    cid = detach(lc, "--name", "ev1", "-l", "team=blue", "busybox", "sleep", "300")
    lc.ok("stop", "-t", "1", "ev1")  # sleep as PID 1 ignores SIGTERM: SIGKILL after a second
    lc.ok("rm", "ev1")
    until = now()
    seen = events(lc, "--since", since, "--until", until, "--filter", "container=ev1")
    assert [e["Action"] for e in seen] == ["create", "start", "kill", "kill", "die", "stop", "destroy"]
    for event in seen:
        assert event["Type"] == "container" and event["scope"] == "local"
        assert event["id"] == event["Actor"]["ID"] == cid and event["status"] == event["Action"]
        assert event["from"] == "busybox"
        assert event["time"] == event["timeNano"] // 1_000_000_000
        attrs = event["Actor"]["Attributes"]
        assert attrs["name"] == "ev1" and attrs["image"] == "busybox" and attrs["team"] == "blue"
    assert [e["Actor"]["Attributes"]["signal"] for e in seen[2:4]] == ["15", "9"]
    assert seen[4]["Actor"]["Attributes"]["exitCode"] == "137"
    # Docker's key order in the JSON (its struct's), and its default line with sorted attributes.
    assert list(seen[0]) == ["status", "id", "from", "Type", "Action", "Actor", "scope", "time", "timeNano"]
    lines = lc.ok("events", "--since", since, "--until", until, "--filter", "event=die").splitlines()
    assert len(lines) == 1
    found = LINE.match(lines[0])
    assert found, lines[0]
    assert found.group(2, 3, 4) == ("container", "die", cid)
    assert found.group(6) == "exitCode=137, image=busybox, name=ev1, team=blue"
    # The network events of a container on "none" and its network filter.
    network = events(lc, "--since", since, "--until", until, "--filter", "type=network")
    assert [(e["Action"], e["Actor"]["Attributes"]["container"], e["Actor"]["Attributes"]["type"])
            for e in network] == [("connect", cid, "null"), ("disconnect", cid, "null")]
    assert "status" not in network[0] and "from" not in network[0]


def test_foreground_run_exec_pause_rename_and_volumes(lc: Skiff) -> None:
    since = now()
    assert lc("run", "--rm", "--network", "none", "-v", "evvol:/data", "busybox", "sh", "-c", "exit 3").returncode == 3
    cid = detach(lc, "--name", "ev2", "busybox", "sleep", "300")
    lc.ok("pause", "ev2")
    lc.ok("unpause", "ev2")
    lc.ok("rename", "ev2", "ev3")
    assert lc("exec", "ev3", "sh", "-c", "exit 4").returncode == 4
    lc.ok("kill", "-s", "HUP", "ev3")
    until = now()
    volume = events(lc, "--since", since, "--until", until, "--filter", "volume=evvol")
    assert [e["Action"] for e in volume] == ["create", "mount", "unmount"]
    assert volume[1]["Actor"]["Attributes"]["destination"] == "/data"
    assert volume[1]["Actor"]["Attributes"]["read/write"] == "true"
    foreground = events(lc, "--since", since, "--until", until, "--filter", "type=container",
                        "--filter", "event=die")
    assert [e["Actor"]["Attributes"]["exitCode"] for e in foreground] == ["3"]
    mine = events(lc, "--since", since, "--until", until, "--filter", f"container={cid[:12]}")
    actions = [e["Action"] for e in mine]
    assert actions == ["create", "start", "pause", "unpause", "rename", "exec_create: sh -c exit 4",
                       "exec_start: sh -c exit 4", "exec_die", "kill"]
    assert mine[4]["Actor"]["Attributes"]["oldName"] == "/ev2" and mine[4]["Actor"]["Attributes"]["name"] == "ev3"
    assert mine[7]["Actor"]["Attributes"]["exitCode"] == "4"
    assert mine[7]["Actor"]["Attributes"]["execID"] == mine[5]["Actor"]["Attributes"]["execID"]
    assert mine[8]["Actor"]["Attributes"]["signal"] == "1"
    # event=exec_create matches "exec_create: CMD" (Docker's fuzzy rule for those actions)
    assert len(events(lc, "--since", since, "--until", until, "--filter", "event=exec_create")) == 1


def test_image_and_network_events(lc: Skiff, tmp_path: Path) -> None:
    since = now()
    lc.ok("tag", "busybox", "evtag:1")
    lc.ok("rmi", "evtag:1")
    lc.ok("save", "-o", str(tmp_path / "bb.tar"), "busybox")
    lc.ok("network", "create", "--label", "k=v", "evnet")
    lc.ok("network", "rm", "evnet")
    until = now()
    image_id = json.loads(lc.ok("image", "inspect", "busybox"))[0]["Id"]
    images = events(lc, "--since", since, "--until", until, "--filter", "type=image")
    assert [(e["Action"], e["Actor"]["ID"], e["Actor"]["Attributes"]["name"]) for e in images] == [
        ("tag", image_id, "evtag:1"), ("untag", image_id, image_id), ("save", image_id, image_id)]
    assert "from" not in images[0] and images[0]["id"] == image_id
    nets = events(lc, "--since", since, "--until", until, "--filter", "network=evnet")
    assert [(e["Type"], e["Action"], e["Actor"]["Attributes"]) for e in nets] == [
        ("network", "create", {"name": "evnet", "type": "bridge"}),
        ("network", "destroy", {"name": "evnet", "type": "bridge"})]
    assert events(lc, "--since", since, "--until", until, "--filter", "image=evtag:1")[0]["Action"] == "tag"


def test_since_and_until_windows(skiff: Skiff) -> None:
    skiff.ok("volume", "create", "first")
    time.sleep(0.05)
    middle = time.time()
    time.sleep(0.05)
    skiff.ok("volume", "create", "second")
    end = now()

    def names(*args: str) -> list[str]:
        return [e["Actor"]["ID"] for e in events(skiff, *args, "--filter", "event=create")]

    assert names("--since", "0", "--until", f"{middle:.9f}") == ["first"]
    assert names("--since", f"{middle:.9f}", "--until", end) == ["second"]
    assert names("--since", "1h", "--until", end) == ["first", "second"]  # a Go duration before now
    assert names("--since", "1m", "--until=-1s") == ["first", "second"]  # until a second from now
    # The next whole second after both creates (one after ``middle`` alone could fall before the second).
    rfc3339 = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(time.time()) + 1)) + "Z"
    assert names("--since", "0", "--until", rfc3339) == ["first", "second"]
    assert names("--since", rfc3339, "--until", end) == []
    bad = skiff("events", "--since", "yesterday", "--until", end)
    assert (bad.returncode, bad.stderr) == (1, 'failed to parse value as time or duration: "yesterday"\n')
    flag = skiff("events", "--filter", "nokey", "--until", end)
    assert flag.returncode == 125 and flag.stderr.startswith(
        'invalid argument "nokey" for "-f, --filter" flag: bad format of filter (expected name=value)')
    # 20.10 does not check the keys of events filters: an unknown one is ignored
    assert names("--since", "0", "--until", end, "--filter", "nosuch=1") == ["first", "second"]
    bad_template = skiff("events", "--since", "0", "--until", end, "--format", "{{.Nope}}")
    assert bad_template.returncode == 1 and "Nope" in bad_template.stderr


def test_follow_prints_new_events_and_ends_on_sigterm(skiff: Skiff) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "skiff", "events", "--filter", "type=volume",
                             "--format", "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.driver}}"],
                            env=skiff.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)  # it is following: the next events are news
        skiff.ok("volume", "create", "followed")
        ready, _, _ = select.select([proc.stdout], [], [], 10)
        assert ready, "no event was printed"
        assert proc.stdout.readline() == "create followed local\n"
        skiff.ok("volume", "rm", "followed")
        ready, _, _ = select.select([proc.stdout], [], [], 10)
        assert ready and proc.stdout.readline() == "destroy followed local\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 128 + signal.SIGTERM
        assert proc.stderr.read() == ""  # no traceback
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_follow_until_a_time_to_come_stops_there(skiff: Skiff) -> None:
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "skiff", "events", "--until=-2s",
                             "--format", "{{.Actor.ID}}"], env=skiff.env, stdout=subprocess.PIPE, text=True)
    time.sleep(0.8)
    skiff.ok("volume", "create", "inwindow")
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0 and out == "inwindow\n"
    assert time.monotonic() - start < 8


def _write_many(root: str, count: int) -> None:
    from skiff import events as log
    from skiff.paths import Paths

    paths = Paths(Path(root), Path(root) / "run")
    for i in range(count):
        log.emit(paths, "container", "exec_create: " + "x" * 200, f"{os.getpid()}-{i}", {"n": str(i)})


def test_concurrent_writers_never_interleave_and_rotation_bounds_the_log(tmp_path: Path, monkeypatch) -> None:
    from skiff import events as log
    from skiff.paths import Paths

    paths = Paths(tmp_path, tmp_path / "run")
    workers = [multiprocessing.Process(target=_write_many, args=(str(tmp_path), 300)) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    found, _ = log.read(paths)
    assert len(found) == 1200  # every line whole: none lost, none glued to another
    assert all(len(e["Action"]) == len("exec_create: ") + 200 for e in found)
    monkeypatch.setattr(log, "MAX_BYTES", 20_000)
    _write_many(str(tmp_path), 400)  # about 130 KB of events through a 20 KB cap
    current = tmp_path / "events.log"
    assert current.stat().st_size <= 21_000 and (tmp_path / "events.log.1").stat().st_size <= 21_000
    found, _ = log.read(paths)
    numbers = [int(e["Actor"]["Attributes"]["n"]) for e in found if e["Actor"]["ID"].startswith(f"{os.getpid()}-")]
    assert numbers == sorted(numbers) and numbers[-1] == 399  # the newest kept, in order
    # a write that cannot be made (no such root, read-only, full) never fails the caller
    log.emit(Paths(tmp_path / "missing" / "root", tmp_path / "run"), "volume", "create", "x", {})
    (tmp_path / "events.log").write_bytes(b'{"Type":"volume","Act')  # a write cut short by a full disk
    log.emit(paths, "volume", "create", "after-cut", {"driver": "local"})
    found, _ = log.read(paths)
    assert found[-1]["Actor"]["ID"] == "after-cut"


def test_broken_pipe_ends_quietly(skiff: Skiff) -> None:
    _write_many(str(skiff.root), 3000)
    proc = subprocess.run(f"{sys.executable} -m skiff events --since 0 --until {now()} | head -1", shell=True,
                          env=skiff.env, capture_output=True, text=True, timeout=60)
    assert proc.stdout.count("\n") == 1 and " container exec_create: " in proc.stdout
    assert proc.stderr == ""


def test_oom_kill_is_reported_before_die(lc: Skiff) -> None:
    since = now()
    proc = lc("run", "--network", "none", "--name", "evhog", "-m", "32m", "busybox", "sh", "-c",
              'x=$(head -c 200m /dev/zero | tr "\\0" x)')
    assert proc.returncode == 137, proc.stderr
    seen = events(lc, "--since", since, "--until", now(), "--filter", "container=evhog")
    assert [e["Action"] for e in seen][-2:] == ["oom", "die"]
    assert seen[-1]["Actor"]["Attributes"]["exitCode"] == "137"


def test_docker_time_formats() -> None:
    """timetypes.GetTimestamp's forms, as ``--since``/``--until`` and prune's ``until`` take them."""
    from skiff.engine.filters import docker_time_ns

    now = 1_800_000_000.0
    assert docker_time_ns("10m", now) == int((now - 600) * 1e9)
    assert docker_time_ns("1h30m", now) == int((now - 5400) * 1e9)
    assert docker_time_ns("-1.5s", now) == int((now + 1.5) * 1e9)
    assert docker_time_ns("0", now) == 0
    assert docker_time_ns("1607104800", now) == 1607104800 * 10**9
    assert docker_time_ns("1607104800.5", now) == 1607104800 * 10**9 + 500_000_000
    assert docker_time_ns("2020-12-04T18:00:00Z", now) == 1607104800 * 10**9
    assert docker_time_ns("2020-12-04T19:00:00+01:00", now) == 1607104800 * 10**9
    assert docker_time_ns("2020-12-04T18:00:00.25Z", now) == 1607104800 * 10**9 + 250_000_000
    assert docker_time_ns("2020-12-04Z", now) == 1607040000 * 10**9
    local = int(time.mktime((2020, 12, 4, 18, 0, 0, 0, 0, -1)))  # without a zone: local time
    assert docker_time_ns("2020-12-04T18", now) == docker_time_ns("2020-12-04T18:00", now) == local * 10**9
    for bad in ("yesterday", "10 minutes", "2020-13-45"):
        try:
            docker_time_ns(bad, now)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was accepted")
