"""Health checks end to end, as Docker 20.10 runs them: real containers, short intervals.

The checks run in each container's monitor (a probe process per check, ``skiff.engine.monitor.health``);
the tests look at ``State.Health`` and ``ps`` as a user does, and at the processes the kernel
shows: no probe and no test command may outlive its timeout, its container, or ``rm``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Skiff
from tests.e2e.test_lifecycle import detach, inspect, lc, wait_for  # noqa: F401 - lc is a fixture

FAST = ("--health-interval", "200ms")


def health(skiff: Skiff, ref: str) -> dict:
    return inspect(skiff, ref)["State"].get("Health")


def wait_status(skiff: Skiff, ref: str, status: str, timeout: float = 15) -> dict:
    wait_for(lambda: (health(skiff, ref) or {}).get("Status") == status, timeout)
    return health(skiff, ref)


def ps_status(skiff: Skiff, ref: str) -> str:
    return skiff.ok("ps", "-a", "--filter", f"name={ref}", "--format", "{{.Status}}").strip()


def processes(*words: bytes) -> list[int]:
    """Pids whose command line holds every one of ``words``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if all(word in cmdline for word in words):
            found.append(int(entry))
    return found


def probes(skiff: Skiff) -> list[int]:
    return processes(b"skiff.engine.monitor.health", str(skiff.root).encode())


@pytest.fixture
def hc(lc: Skiff) -> Iterator[Skiff]:  # noqa: F811 - the fixture imported above
    """``lc`` (busybox, everything removed and checked afterwards), and no probe left either."""
    yield lc
    ids = lc("ps", "-aq", "--no-trunc").stdout.split()
    if ids:
        lc("rm", "-f", *ids)
    wait_for(lambda: not probes(lc), 10)


def test_healthy_check_shows_in_inspect_and_ps(hc: Skiff) -> None:
    cid = detach(hc, "--name", "web", "--health-cmd", "echo ok", *FAST, "busybox", "sleep", "1000")
    config = inspect(hc, cid)["Config"]["Healthcheck"]
    assert config == {"Test": ["CMD-SHELL", "echo ok"], "Interval": 200_000_000}
    state = wait_status(hc, "web", "healthy")
    assert state["FailingStreak"] == 0
    entry = state["Log"][0]
    assert set(entry) == {"Start", "End", "ExitCode", "Output"}
    assert entry["ExitCode"] == 0 and entry["Output"] == "ok\n"
    assert entry["Start"] <= entry["End"]
    assert hc.ok("inspect", "-f", "{{.State.Health.Status}}", "web") == "healthy\n"
    assert ps_status(hc, "web").startswith("Up ") and ps_status(hc, "web").endswith(" (healthy)")
    events = hc.ok("events", "--since", "0", "--until", str(int(time.time()) + 1), "--filter", "event=health_status",
                   "--format", "{{.Action}} {{.Actor.Attributes.name}}")
    assert events == "health_status: healthy web\n"  # once: a status that does not change is no event

    hc.ok("stop", "-t", "1", "web")  # as Docker: the checks stopped, the last word is unhealthy
    stopped = health(hc, "web")
    assert stopped["Status"] == "unhealthy" and stopped["Log"]
    assert ps_status(hc, "web").startswith("Exited (")
    hc.ok("start", "web")  # starting again, the log kept
    started = health(hc, "web")
    assert started["Status"] == "starting" and started["FailingStreak"] == 0 and started["Log"]
    wait_status(hc, "web", "healthy")


def test_starting_until_the_first_check(hc: Skiff) -> None:
    detach(hc, "--name", "slow", "--health-cmd", "true", "--health-interval", "1h", "busybox", "sleep", "1000")
    assert health(hc, "slow") == {"Status": "starting", "FailingStreak": 0, "Log": []}
    assert ps_status(hc, "slow").endswith(" (health: starting)")


def test_unhealthy_after_retries_and_log_of_five(hc: Skiff) -> None:
    detach(hc, "--name", "bad", "--health-cmd", "echo no; exit 3", *FAST, "--health-retries", "2",
           "busybox", "sleep", "1000")
    state = wait_status(hc, "bad", "unhealthy")
    assert state["FailingStreak"] >= 2
    assert [e["ExitCode"] for e in state["Log"]] == [3] * len(state["Log"])
    assert state["Log"][0]["Output"] == "no\n"
    assert ps_status(hc, "bad").endswith(" (unhealthy)")
    wait_for(lambda: health(hc, "bad")["FailingStreak"] >= 7, 15)
    assert len(health(hc, "bad")["Log"]) == 5  # Docker keeps the last five


def test_recovers_from_unhealthy(hc: Skiff) -> None:
    detach(hc, "--name", "flaky", "--health-cmd", "test -e /tmp/up", *FAST, "--health-retries", "1",
           "busybox", "sleep", "1000")
    wait_status(hc, "flaky", "unhealthy")
    hc.ok("exec", "flaky", "touch", "/tmp/up")
    assert wait_status(hc, "flaky", "healthy")["FailingStreak"] == 0


def test_timeout_kills_the_test(hc: Skiff) -> None:
    marker = "sleep 3131"
    detach(hc, "--name", "hang", "--health-cmd", marker, *FAST, "--health-timeout", "300ms",
           "--health-retries", "1", "busybox", "sleep", "1000")
    state = wait_status(hc, "hang", "unhealthy")
    assert state["Log"][0]["ExitCode"] == -1
    assert state["Log"][0]["Output"] == "Health check exceeded timeout (300ms)"
    wait_for(lambda: len(health(hc, "hang")["Log"]) >= 3, 15)
    # Docker 20.10 leaves each timed-out test running (moby#37184); skiff kills it: one at most runs.
    assert len(processes(marker.replace(" ", "\0").encode())) <= 1


def test_start_period_failures_do_not_count(hc: Skiff) -> None:
    detach(hc, "--name", "boot", "--health-cmd", "exit 1", *FAST, "--health-retries", "1",
           "--health-start-period", "1h", "busybox", "sleep", "1000")
    wait_for(lambda: len(health(hc, "boot")["Log"]) >= 3, 15)
    state = health(hc, "boot")
    assert state["Status"] == "starting" and state["FailingStreak"] == 0


def test_start_period_ends_at_the_first_success(hc: Skiff) -> None:
    # healthy once (the file is there), then failing: within the start period, and yet counted
    detach(hc, "--name", "once", "--health-cmd", "rm /tmp/ok", *FAST, "--health-retries", "1",
           "--health-start-period", "1h", "busybox", "sh", "-c", "touch /tmp/ok; exec sleep 1000")
    state = wait_status(hc, "once", "unhealthy")
    assert state["Log"][0]["ExitCode"] == 0 and state["FailingStreak"] == 1


def test_test_runs_as_exec_does_with_nothing_of_ours(hc: Skiff) -> None:
    command = "ls /proc/self/fd; grep Seccomp: /proc/self/status; id -u; pwd"
    detach(hc, "--name", "probe", "--health-cmd", command, *FAST, "-u", "1000", "-w", "/tmp",
           "busybox", "sleep", "1000")
    output = wait_status(hc, "probe", "healthy")["Log"][0]["Output"].split("\n")
    fds, seccomp, uid, cwd = output[:-4], output[-4], output[-3], output[-2]
    assert fds == ["0", "1", "2", "3"]  # 3: ls's own directory
    assert seccomp.split() == ["Seccomp:", "2"]
    assert (uid, cwd) == ("1000", "/tmp")


def test_output_capped_as_docker(hc: Skiff) -> None:
    detach(hc, "--name", "chatty", "--health-cmd", "yes | head -c 5000", *FAST, "busybox", "sleep", "1000")
    output = wait_status(hc, "chatty", "healthy")["Log"][0]["Output"]
    assert output == "y\n" * 2048 + "..."


def test_image_healthcheck_and_flags_merged(hc: Skiff, busybox_tar: Path) -> None:
    hc.ok("import", str(busybox_tar), "checked", "--change", 'CMD ["sh"]', "--change",
          'HEALTHCHECK --interval=200ms --retries=1 CMD ["sh", "-c", "exit 3"]')
    image = json.loads(hc.ok("image", "inspect", "checked"))[0]["Config"]["Healthcheck"]
    assert image == {"Test": ["CMD", "sh", "-c", "exit 3"], "Interval": 200_000_000, "Retries": 1}
    assert list(image) == ["Test", "Interval", "Retries"]  # Docker's HealthConfig struct order
    detach(hc, "--name", "img", "checked", "sleep", "1000")
    assert wait_status(hc, "img", "unhealthy")["Log"][0]["ExitCode"] == 3

    detach(hc, "--name", "own", "--health-cmd", "true", "checked", "sleep", "1000")
    assert inspect(hc, "own")["Config"]["Healthcheck"] == {
        "Test": ["CMD-SHELL", "true"], "Interval": 200_000_000, "Retries": 1}
    assert list(inspect(hc, "own")["Config"]["Healthcheck"]) == ["Test", "Interval", "Retries"]
    wait_status(hc, "own", "healthy")

    detach(hc, "--name", "off", "--no-healthcheck", "checked", "sleep", "1000")
    off = inspect(hc, "off")
    assert off["Config"]["Healthcheck"] == {"Test": ["NONE"], "Interval": 200_000_000, "Retries": 1}
    time.sleep(0.5)
    assert "Health" not in inspect(hc, "off")["State"]
    assert ps_status(hc, "off").startswith("Up ") and "(" not in ps_status(hc, "off")

    hc.ok("import", str(busybox_tar), "unchecked", "--change", "HEALTHCHECK NONE")
    assert json.loads(hc.ok("image", "inspect", "unchecked"))[0]["Config"]["Healthcheck"] == {"Test": ["NONE"]}
    hc.ok("import", str(busybox_tar), "shell", "--change", "healthcheck --timeout=2s cmd test -d /")
    assert json.loads(hc.ok("image", "inspect", "shell"))[0]["Config"]["Healthcheck"] == {
        "Test": ["CMD-SHELL", "test -d /"], "Timeout": 2_000_000_000}


@pytest.mark.parametrize(("change", "message"), [
    ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
    ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
    ("HEALTHCHECK FOO x", 'Unknown type "FOO" in HEALTHCHECK (try CMD)'),
    ("HEALTHCHECK --interval=0s CMD x", 'Interval "interval" cannot be less than 1ms'),
    ("HEALTHCHECK --interval=bad CMD x", 'time: invalid duration "bad"'),
    ("HEALTHCHECK --interval 1s CMD x", "Missing a value on flag: interval"),
    ("HEALTHCHECK --retries=0 CMD x", "--retries must be at least 1 (not 0)"),
    ("HEALTHCHECK --bogus=1 CMD x", "Unknown flag: bogus"),
])
def test_import_healthcheck_errors_as_docker(skiff: Skiff, busybox_tar: Path, change: str, message: str) -> None:
    result = skiff("import", str(busybox_tar), "bad", "--change", change)
    assert result.returncode != 0 and message in result.stderr
    assert "bad" not in skiff.ok("images")


@pytest.mark.parametrize(("flags", "message"), [
    (("--no-healthcheck", "--health-cmd", "true"), "--no-healthcheck conflicts with --health-* options"),
    (("--health-interval=-1s",), "--health-interval cannot be negative"),
    (("--health-retries", "-1"), "--health-retries cannot be negative"),
    (("--health-start-period=-1s",), "--health-start-period cannot be negative"),
    (("--health-cmd", "true", "--health-interval", "500us"), "Interval in Healthcheck cannot be less than 1ms"),
    (("--health-timeout", "500us"), "Timeout in Healthcheck cannot be less than 1ms"),
    (("--health-start-period", "1us"), "StartPeriod in Healthcheck cannot be less than 1ms"),
    (("--health-interval", "bad"), 'invalid argument "bad" for "--health-interval" flag: '
                                   'time: invalid duration "bad"'),
    (("--health-interval", "0.5"), 'time: missing unit in duration "0.5"'),
    (("--health-retries", "x"), 'invalid argument "x" for "--health-retries" flag: '
                                'strconv.ParseInt: parsing "x": invalid syntax'),
])
def test_flag_errors_as_docker(skiff: Skiff, busybox_image: str, flags: tuple[str, ...], message: str) -> None:
    for command in ("run", "create"):
        result = skiff(command, "--network", "none", *flags, busybox_image, "true")
        assert result.returncode == 125, result.stderr
        assert message in result.stderr
    assert skiff.ok("ps", "-aq") == ""


def test_probes_never_outlive_stop_or_rm(hc: Skiff) -> None:
    marker = "sleep 3232"
    for name in ("a", "b"):
        detach(hc, "--name", name, "--health-cmd", marker, "--health-interval", "100ms",
               "--health-timeout", "1m", "busybox", "sleep", "1000")
    wait_for(lambda: len(probes(hc)) >= 2 and len(processes(marker.replace(" ", "\0").encode())) >= 2, 15)
    hc.ok("stop", "-t", "1", "a")
    hc.ok("rm", "-f", "b")
    wait_for(lambda: not probes(hc), 10)
    assert not processes(marker.replace(" ", "\0").encode())
    assert health(hc, "a")["Status"] == "unhealthy"


def test_foreground_run_is_checked(hc: Skiff) -> None:
    result = hc("run", "--name", "fg", "--network", "none", "--health-cmd", "echo hc", "--health-interval", "100ms",
                "busybox", "sh", "-c", "sleep 1; echo done; exit 3")
    assert (result.returncode, result.stdout) == (3, "done\n"), result.stderr
    state = health(hc, "fg")
    assert state["Status"] == "unhealthy" and state["Log"][0]["Output"] == "hc\n"


@pytest.mark.parametrize("flags", [("--rm", "--health-cmd", "true"), ("--restart", "on-failure:1")])
def test_foreground_with_stdin_ends_with_its_status(hc: Skiff, flags: tuple[str, ...]) -> None:
    """Under a monitor with -i: the input's end reaches the container, which exits; the run returns at once.

    (The monitor used to close the container's stdin twice once a client had closed it, and died
    before recording the exit: 255 after 30 s.)
    """
    started = time.monotonic()
    result = hc("run", "-i", "--network", "none", *flags, "busybox", "sh", "-c", "cat; exit 3", input="x\n",
                timeout=40)
    assert (result.returncode, result.stdout) == (3, "x\n"), result.stderr
    assert time.monotonic() - started < 10


def test_a_test_that_cannot_start_fails_with_its_error(hc: Skiff, busybox_tar: Path) -> None:
    hc.ok("import", str(busybox_tar), "missing", "--change", 'HEALTHCHECK --interval=200ms CMD ["nonexist"]')
    detach(hc, "--name", "nx", "missing", "sleep", "1000")
    wait_for(lambda: bool(health(hc, "nx")["Log"]), 15)
    entry = health(hc, "nx")["Log"][0]
    assert entry["ExitCode"] == -1 and "nonexist" in entry["Output"], entry  # as Docker: the runtime's error
