"""The monitors' fork server (skiff/engine/monitor/forkserver.py) in ``skiff system service``: started
with the service, single-threaded, gone with it (also when the service is SIGKILLed); many starts at
once through it all succeed; a fork server that died leaves the service starting containers the slow
way (a fresh interpreter per start), never failing them."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.api_server.conftest import DOCKER, Service, start_service, stop_service, wait_for_socket


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _ignored(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("SigIgn:")).split()[1], 16)


def threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def gone(pid: int, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        except OSError:
            return True
        time.sleep(0.05)
    return False


def docker_env(service: Service, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in service.env.items() if not k.startswith("DOCKER_")}
    env["DOCKER_CONFIG"] = str(tmp_path / "docker-config")
    return env


def test_fork_server_starts_monitors_and_goes_with_the_service(service: Service, tmp_path: Path) -> None:
    socket_path = tmp_path / "fs.sock"
    process = start_service(service.env, tmp_path / "fs.log", "--host", f"unix://{socket_path}", "--time", "0")
    env = docker_env(service, tmp_path)

    def docker(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([DOCKER, "-H", f"unix://{socket_path}", *args], env=env, capture_output=True,
                              text=True, timeout=120)

    try:
        wait_for_socket(socket_path, process)
        forks = children(process.pid)
        assert len(forks) == 1, forks
        fork_server = forks[0]
        assert threads(fork_server) == 1  # forked before the server's threads: it never has others
        with ThreadPoolExecutor(max_workers=16) as pool:
            results = list(pool.map(lambda n: docker("run", "--rm", "busybox", "echo", f"run-{n}"), range(40)))
        assert [(r.returncode, r.stdout) for r in results] == [(0, f"run-{n}\n") for n in range(40)]
        assert children(process.pid) == [fork_server] and threads(fork_server) == 1
        cid = docker("run", "-d", "busybox", "sleep", "60").stdout.strip()
        try:  # the monitor does not inherit the fork server's ignored SIGTERM (docker stop, kill)
            deadline = time.monotonic() + 5  # the monitor execs its idle loop once the container outlived
            monitors: list[int] = []        # its first 25 ms (skiff.engine.monitor.launch.SHORT_RUN_SECONDS)
            while not monitors and time.monotonic() < deadline:
                monitors = [pid for pid in _all_pids()
                            if cid.encode() in _cmdline(pid) and b"idle" in _cmdline(pid)]
                time.sleep(0.02)
            assert monitors
            assert all(not _ignored(pid) >> (signal.SIGTERM - 1) & 1 for pid in monitors)
        finally:
            docker("rm", "-f", cid)
        os.kill(fork_server, signal.SIGKILL)  # gone: the service falls back to a fresh interpreter per start
        assert gone(fork_server)
        proc = docker("run", "--rm", "busybox", "echo", "still")
        assert (proc.returncode, proc.stdout) == (0, "still\n"), proc.stderr
    finally:
        stop_service(process)
    assert "Traceback" not in (tmp_path / "fs.log").read_text()


def test_fork_server_exits_when_the_service_is_killed(service: Service, tmp_path: Path) -> None:
    socket_path = tmp_path / "killed.sock"
    process = start_service(service.env, tmp_path / "killed.log", "--host", f"unix://{socket_path}", "--time", "0")
    try:
        wait_for_socket(socket_path, process)
        forks = children(process.pid)
        assert len(forks) == 1
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=20)
        socket_path.unlink(missing_ok=True)
    assert gone(forks[0]), "the fork server outlived its service"
