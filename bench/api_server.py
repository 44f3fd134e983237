#!/usr/bin/env python3
"""The docker CLI 20.10 through `skiff system service`'s socket against the same CLI through dockerd.

    sudo .venv/bin/python bench/api_server.py [-n RUNS] [--clients N]

One invocation, one temporary directory (the two engines take turns sample by sample, so a
change of load on a shared machine weighs on both alike): a skiff root served by `skiff system service` (run as
users run it: this checkout's installed launcher) and a private dockerd 20.10 (tests/dockerd.py:
its own data root, exec root, socket and cgroup parent, no bridge, no iptables), busybox loaded
into both from the tests' busybox tar. Every container runs with ``--network none`` (the
private dockerd has no bridge). Medians of RUNS (default 20), one warm-up not counted:

- a container's life: ``docker run -d busybox true`` + ``docker wait`` + ``docker rm``
  (target: skiff at most 0.5x dockerd), and ``docker run --rm busybox true`` once skiff serves
  attach (a 501 is reported and skipped);
- ``docker ps`` with 10 running containers, 5 x RUNS samples (target: at most 1.0x);
- N clients (default 50) at once, each ``docker run -d busybox true``: all must succeed;
- the server's RSS idle after start and idle after all that (target: at most 40 MB).

Nothing is left behind: containers, the daemon, the server, the cgroups.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lifecycle import installed_command, user_env
from sandbox import private_skiff

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from tests.conftest import CGROUP_PARENT  # noqa: E402
from tests.dockerd import DOCKER, private_dockerd, remove_cgroup  # noqa: E402

RUN = ["run", "--network", "none"]
# A docker ps takes 25-35 ms, nearly all of it the client's own start, and the two engines are
# within a millisecond of each other: the median of RUNS of them moves by 2% from one invocation
# to the next. Five times as many (still seconds) make the ratio repeatable to about 1%.
PS_RUNS_PER_RUN = 5


class Cli:
    """The docker CLI aimed at one engine's socket, with a private config and no proxy."""

    def __init__(self, name: str, socket: Path, config: Path) -> None:
        self.name = name
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DOCKER_HOST": f"unix://{socket}",
                    "DOCKER_CONFIG": str(config), "NO_PROXY": "*"}

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        try:
            proc = subprocess.run([str(DOCKER), *args], env=self.env, capture_output=True, text=True,
                                  stdin=subprocess.DEVNULL, timeout=120)
        except subprocess.TimeoutExpired:  # a hung request counts as a failure, and the rest goes on
            proc = subprocess.CompletedProcess([str(DOCKER), *args], 124, "", "timed out after 120 s")
        if check and proc.returncode != 0:
            raise RuntimeError(f"{self.name}: docker {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}")
        return proc


def interleaved_ms(steps: dict[str, object], runs: int) -> dict[str, float]:
    """Median milliseconds of each engine's ``step()``, the engines taking turns sample by sample,
    so a change of load on a shared machine weighs on both alike, and going first in every other
    round (what runs just before a step, the other engine's cleanup, weighs on both alike too);
    one warm-up each not counted."""
    samples: dict[str, list[float]] = {name: [] for name in steps}
    for i in range(runs + 1):
        for name, step in (list(steps.items()) if i % 2 else list(steps.items())[::-1]):
            start = time.perf_counter()
            step()  # type: ignore[operator]
            if i:
                samples[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(values) for name, values in samples.items()}


def life(docker: Cli) -> None:
    """``run -d`` + ``wait`` + ``rm`` of one busybox true."""
    cid = docker(*RUN, "-d", "busybox", "true").stdout.strip()
    if docker("wait", cid).stdout.strip() != "0":
        raise RuntimeError(f"{docker.name}: busybox true did not exit 0")
    docker("rm", cid)


def run_rm_served(docker: Cli) -> str | None:
    """None when ``docker run --rm`` works through ``docker``; else why not (skiff: attach is a 501)."""
    proc = docker(*RUN, "--rm", "busybox", "true", check=False)
    if proc.returncode == 0:
        return None
    left = docker("ps", "-aq").stdout.split()  # the CLI creates the container before it attaches
    if left:
        docker("rm", "-f", *left)
    return proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"


def ps_with_running(engines: dict[str, Cli], count: int, runs: int) -> dict[str, float]:
    """Median ``docker ps`` with ``count`` running containers in each engine (removed afterwards)."""
    ids = {name: [docker(*RUN, "-d", "busybox", "sleep", "600").stdout.strip() for _ in range(count)]
           for name, docker in engines.items()}
    try:
        for name, docker in engines.items():
            if len(docker("ps", "-q").stdout.split()) != count:
                raise RuntimeError(f"{name}: docker ps does not list {count} containers")
        return interleaved_ms({name: (lambda d=docker: d("ps")) for name, docker in engines.items()},
                              runs * PS_RUNS_PER_RUN)
    finally:
        for name, docker in engines.items():
            docker("rm", "-f", *ids[name])


def clients_at_once(docker: Cli, clients: int) -> tuple[int, float]:
    """``clients`` CLIs at once, each ``run -d busybox true``: (how many succeeded, wall ms)."""
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        results = list(pool.map(lambda _: docker(*RUN, "-d", "busybox", "true", check=False), range(clients)))
    wall = (time.perf_counter() - start) * 1000
    ids = [r.stdout.strip() for r in results if r.returncode == 0]
    for failed in [r for r in results if r.returncode != 0][:3]:
        print(f"{docker.name}: a client failed: {failed.stderr.strip()}")
    left = docker("ps", "-aq").stdout.split()  # a failed client may leave its container created
    if left:
        docker("rm", "-f", *left)
    return len(ids), wall


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def start_service(skiff: list[str], env: dict[str, str], socket: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        process = subprocess.Popen([*skiff, "system", "service", "-H", f"unix://{socket}", "-t", "0"], env=env,
                                   stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not socket.is_socket():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"skiff system service did not start: {log.read_text()[-2000:]}")
        time.sleep(0.02)
    return process


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=20)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--only", default="life,run-rm,ps,clients",
                        help="comma-separated parts to measure (default all): life, run-rm, ps, clients")
    options = parser.parse_args()
    parts = set(options.only.split(","))
    runs = options.runs
    results: dict[str, dict[str, float]] = {}
    notes: list[str] = []
    with private_skiff() as (tmp, env):
        skiff = installed_command(tmp)
        tar = tmp / "busybox.tar"
        subprocess.run([str(REPO / "scripts" / "busybox-rootfs"), str(tar)], check=True)
        subprocess.run([*skiff, "import", str(tar), "busybox", "--change", 'CMD ["sh"]'], env=user_env(env),
                       check=True, stdout=subprocess.DEVNULL)
        socket = tmp / "skiff.sock"
        service = start_service(skiff, user_env(env), socket, tmp / "service.log")
        try:
            time.sleep(0.5)
            idle_at_start = rss_mb(service.pid)
            with private_dockerd(tmp / "dockerd") as dockerd:
                engines = {"skiff": Cli("skiff", socket, tmp / "client-skiff"),
                           "dockerd": Cli("dockerd", dockerd.socket, tmp / "client-dockerd")}
                engines["dockerd"]("import", "--change", 'CMD ["sh"]', str(tar), "busybox:latest")
                for name in engines:
                    results[name] = {}
                if "life" in parts:
                    for key, value in interleaved_ms({name: (lambda d=docker: life(d))
                                                       for name, docker in engines.items()}, runs).items():
                        results[key]["life"] = value
                served = {}
                for name, docker in engines.items() if "run-rm" in parts else ():
                    why = run_rm_served(docker)
                    if why is None:
                        served[name] = docker
                    else:
                        notes.append(f"{name}: docker run --rm skipped: {why}")
                if "run-rm" in parts and len(served) == len(engines):
                    for key, value in interleaved_ms({name: (lambda d=docker: d(*RUN, "--rm", "busybox", "true"))
                                                      for name, docker in engines.items()}, runs).items():
                        results[key]["run --rm"] = value
                for key, value in ps_with_running(engines, 10, runs).items() if "ps" in parts else ():
                    results[key]["ps"] = value
                for name, docker in engines.items() if "clients" in parts else ():
                    row = results[name]
                    ok, wall = clients_at_once(docker, options.clients)
                    row["clients ok"], row["clients wall"] = ok, wall
                    if docker("ps", "-aq").stdout.strip():
                        raise RuntimeError(f"{name}: containers were left behind")
            time.sleep(1)
            idle_after = rss_mb(service.pid)
        finally:
            service.terminate()
            service.wait(timeout=30)
    remove_cgroup(f"/{CGROUP_PARENT}")  # the private dockerd's parent (its own child went with it)
    print_results(results, notes, runs, options.clients, idle_at_start, idle_after)
    return 0


def print_results(results: dict[str, dict[str, float]], notes: list[str], runs: int, clients: int,
                  idle_at_start: float, idle_after: float) -> None:
    skiff, dockerd = results["skiff"], results["dockerd"]
    print(f"docker CLI 20.10, medians of {runs} runs each ({runs * PS_RUNS_PER_RUN} for ps), one warm-up not "
          "counted, --network none")
    print(f"{'':46} {'skiff ms':>9} {'dockerd ms':>11} {'ratio':>6}  target")
    rows = [("run -d busybox true + wait + rm", "life", 0.5), ("run --rm busybox true", "run --rm", 0.5),
            ("ps (10 running containers)", "ps", 1.0)]
    for label, key, target in rows:
        if key in skiff and key in dockerd:
            ratio = skiff[key] / dockerd[key]
            verdict = "met" if ratio <= target else "NOT met"
            print(f"{label:46} {skiff[key]:9.1f} {dockerd[key]:11.1f} {ratio:6.2f}  <= {target}x: {verdict}")
    if "clients ok" in skiff:
        print(f"{clients} clients at once, run -d busybox true: skiff {skiff['clients ok']:.0f}/{clients} ok in "
              f"{skiff['clients wall']:.0f} ms; dockerd {dockerd['clients ok']:.0f}/{clients} ok in "
              f"{dockerd['clients wall']:.0f} ms: {'met' if skiff['clients ok'] == clients else 'NOT met'}")
    print(f"skiff system service RSS: {idle_at_start:.1f} MB idle after start, {idle_after:.1f} MB idle after "
          f"the runs (target <= 40 MB: {'met' if max(idle_at_start, idle_after) <= 40 else 'NOT met'})")
    for note in notes:
        print(note)


if __name__ == "__main__":
    sys.exit(main())
