"""skiff.Client's containers, against real containers on a private root (run as root).

Each docker-py call is checked for what docker-py's user relies on: the return shape
(bytes, a Container, {"StatusCode": N}, ExecResult), the state it leaves, the errors.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import skiff
from skiff.errors import ContainerError


def test_run_returns_stdout_and_removes_with_remove(client: skiff.Client, busybox: str) -> None:
    out = client.containers.run(busybox, ["sh", "-c", "echo out; echo err >&2"], remove=True, network="none")
    assert out == b"out\n"
    assert client.containers.list(all=True) == []


def test_run_with_stderr_gives_both_in_order(client: skiff.Client, busybox: str) -> None:
    out = client.containers.run(busybox, "sh -c 'echo one; echo two >&2; echo three'", stderr=True,
                                network="none", remove=True)
    assert out == b"one\ntwo\nthree\n"


def test_run_keeps_the_container_and_its_logs_without_remove(client: skiff.Client, busybox: str) -> None:
    out = client.containers.run(busybox, "sh -c 'echo one; echo two >&2; echo three'", network="none", name="kept")
    assert out == b"one\nthree\n"
    kept = client.containers.get("kept")
    assert kept.status == "exited" and kept.attrs["State"]["ExitCode"] == 0
    assert sorted(kept.logs().splitlines()) == [b"one", b"three", b"two"]  # two pipes: no order across them
    assert kept.logs(stderr=False) == b"one\nthree\n" and kept.logs(stdout=False) == b"two\n"
    assert kept.logs(tail=1) in (b"three\n", b"two\n")


def test_run_nonzero_exit_raises_container_error_with_stderr(client: skiff.Client, busybox: str) -> None:
    with pytest.raises(ContainerError) as raised:
        client.containers.run(busybox, "sh -c 'echo out; echo broken >&2; exit 3'", remove=True, network="none")
    error = raised.value
    assert error.exit_status == 3 and error.stderr == b"broken\n" and error.image == busybox
    assert "returned non-zero exit status 3" in str(error)
    assert isinstance(error, skiff.errors.APIError) and isinstance(error.container, skiff.client.Container)
    assert client.containers.list(all=True) == []


def test_run_keywords_reach_the_container(client: skiff.Client, busybox: str, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("from the host\n")
    out = client.containers.run(
        busybox, ["sh", "-c", 'echo "$A $B"; pwd; cat /data/in.txt; echo made > /data/out.txt'],
        environment={"A": "1", "B": "two"}, working_dir="/tmp",
        volumes={str(tmp_path): {"bind": "/data", "mode": "rw"}}, network="none", name="flags",
        labels={"team": "api"}, mem_limit="64m", nano_cpus=500_000_000)
    assert out == b"1 two\n/tmp\nfrom the host\n"
    assert (tmp_path / "out.txt").read_text() == "made\n"
    assert client.containers.run(busybox, "id -u", user=1000, remove=True, network="none") == b"1000\n"
    done = client.containers.get("flags")
    assert done.labels == {"team": "api"}
    assert done.attrs["HostConfig"]["Memory"] == 64 * 1024 * 1024
    assert done.attrs["HostConfig"]["NanoCpus"] == 500_000_000


def test_run_entrypoint_list_and_tty(client: skiff.Client, busybox: str) -> None:
    assert client.containers.run(busybox, "b c", entrypoint=["echo", "a"], remove=True, network="none") == b"a b c\n"
    # With a terminal the container runs under its monitor and the output comes from its log.
    assert client.containers.run(busybox, "echo tty", tty=True, remove=True, network="none") == b"tty\r\n"


def test_detached_container_lifecycle(client: skiff.Client, busybox: str) -> None:
    box = client.containers.run(busybox, "sh -c 'echo started; exec sleep 600'", detach=True, network="none",
                                name="life")
    assert isinstance(box, skiff.client.Container)
    assert (box.name, box.status, box.short_id) == ("life", "running", box.id[:12])
    assert box.attrs["Config"]["Cmd"] == ["sh", "-c", "echo started; exec sleep 600"]

    assert box.exec_run("echo hi") == (0, b"hi\n")
    result = box.exec_run(["sh", "-c", "echo $X in $PWD >&2; exit 4"], environment={"X": "x"}, workdir="/tmp")
    assert (result.exit_code, result.output) == (4, b"x in /tmp\n")
    assert box.exec_run("id -u", user="1000").output == b"1000\n"

    top = box.top()
    assert "PID" in top["Titles"] and any("sleep 600" in " ".join(row) for row in top["Processes"])
    stats = box.stats(stream=False)
    assert stats["id"] == box.id and stats["memory_stats"]["usage"] > 0 and stats["pids_stats"]["current"] >= 1

    box.pause()
    assert box.status == "paused"
    box.unpause()
    assert box.status == "running"
    box.stop(timeout=1)
    assert box.status == "exited"
    assert box.wait() == {"Error": None, "StatusCode": 137}
    box.start()
    assert box.status == "running"
    box.restart(timeout=0)
    assert box.status == "running"
    box.kill()
    assert box.wait()["StatusCode"] == 137
    box.reload()
    assert box.status == "exited"
    assert box.logs().count(b"started\n") == 3  # run, start, restart
    box.remove()
    with pytest.raises(skiff.errors.NotFound):
        client.containers.get("life")


def test_wait_returns_the_exit_status_and_logs_follow_until_it_stops(client: skiff.Client, busybox: str) -> None:
    box = client.containers.run(busybox, "sh -c 'echo a; sleep 0.5; echo b; exit 7'", detach=True, network="none")
    chunks = list(box.logs(stream=True))  # follows by default, as docker-py's
    assert b"".join(chunks) == b"a\nb\n"
    assert box.wait() == {"Error": None, "StatusCode": 7}
    box.remove(v=True)


def test_kill_with_a_signal_name(client: skiff.Client, busybox: str) -> None:
    box = client.containers.run(busybox, ["sh", "-c", "trap 'exit 42' TERM; while :; do sleep 0.1; done"],
                                detach=True, network="none")
    box.kill("SIGTERM")
    assert box.wait()["StatusCode"] == 42


def test_create_get_list_and_prune(client: skiff.Client, busybox: str) -> None:
    made = client.containers.create(busybox, "true", name="made", labels={"k": "v"}, network="none")
    assert made.status == "created"
    assert client.containers.get("made") == made and client.containers.get(made.id[:8]) == made
    assert client.containers.list() == []
    assert client.containers.list(all=True) == [made]
    assert client.containers.list(all=True, filters={"label": "k=v", "status": "created"}) == [made]
    assert client.containers.list(filters={"status": "exited"}) == []
    running = client.containers.run(busybox, "sleep 600", detach=True, network="none")
    assert client.containers.list() == [running]
    assert client.containers.list(all=True, limit=1) == [running]
    assert client.containers.prune() == {"ContainersDeleted": [made.id], "SpaceReclaimed": 0}
    assert client.containers.list(all=True) == [running]


def test_errors_by_docker_py_names(client: skiff.Client, busybox: str) -> None:
    from skiff import errors

    with pytest.raises(errors.NotFound):
        client.containers.get("missing")
    with pytest.raises(errors.ImageNotFound):
        client.images.get("nothing:here")
    assert issubclass(errors.ImageNotFound, errors.NotFound)
    client.containers.create(busybox, name="taken", network="none")
    with pytest.raises(errors.Conflict):
        client.containers.create(busybox, name="taken", network="none")
    with pytest.raises(errors.InvalidArgument):
        client.containers.run(busybox, "true", working_dir="relative", network="none")
    with pytest.raises(errors.InvalidArgument):
        client.containers.run(busybox, "true", mem_limit="lots", network="none")
    with pytest.raises(errors.APIError):
        client.containers.get("taken").kill()  # not running
    assert errors.APIError is errors.SkiffError


def test_a_long_lived_process_leaks_no_descriptor(client: skiff.Client, busybox: str) -> None:
    client.containers.run(busybox, "true", remove=True, network="none")  # imports done, caches warm
    box = client.containers.run(busybox, "sleep 600", detach=True, network="none")
    before = sorted(os.listdir("/proc/self/fd"))
    for _ in range(3):
        client.containers.run(busybox, "true", remove=True, network="none")
        client.containers.run(busybox, "true", network="none")
        box.exec_run("true")
        box.exec_run("true", detach=True)
    assert sorted(os.listdir("/proc/self/fd")) == before


def test_the_cli_does_not_import_the_client(skiff_env: dict[str, str], busybox: str) -> None:
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "skiff", "run", "--rm", "--network", "none",
                           busybox, "true"], env=skiff_env, capture_output=True, text=True, check=True)
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()]
    assert "skiff.engine.engine" in imported  # the measure works
    assert not [name for name in imported if name.startswith(("skiff.client", "skiff.testing"))]


def test_client_roots_default_as_the_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SKIFF_ROOT", str(tmp_path / "r"))
    monkeypatch.setenv("SKIFF_RUN_ROOT", str(tmp_path / "rr"))
    client = skiff.Client()
    assert (client.paths.root, client.paths.run_root) == (tmp_path / "r", tmp_path / "rr")
    explicit = skiff.Client(root=tmp_path / "x", run_root=str(tmp_path / "y"))
    assert (explicit.paths.root, explicit.paths.run_root) == (tmp_path / "x", tmp_path / "y")
    monkeypatch.delenv("SKIFF_ROOT")
    monkeypatch.delenv("SKIFF_RUN_ROOT")
    assert skiff.Client().paths == (Path("/var/lib/skiff"), Path("/run/skiff"))  # nothing is touched


def test_import_skiff_alone_loads_no_client() -> None:
    code = "import sys, skiff; assert 'skiff.client' not in sys.modules; skiff.Client; assert 'skiff.client' in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])
