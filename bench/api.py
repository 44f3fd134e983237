#!/usr/bin/env python3
"""The Python API against the command: `client.containers.run("busybox", "true", remove=True)`
in one process vs `skiff run --rm --network none busybox true` commands.

    sudo .venv/bin/python bench/api.py [-n RUNS] [--profile]

Both in this one invocation, on one temporary root, RUNS (default 50) each, after one
warm-up run each that is not counted; per-run medians and their ratio are printed.
Target (issue 14): the API's per-run time at most 0.7x the command's. The commands
run as users run them: this checkout's installed launcher (bench/lifecycle.py's
``installed_command``), with a clean environment. ``--profile`` prints where the API's
runs spend their time (cProfile, cumulative). Nothing is left behind.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from lifecycle import installed_command, user_env
from sandbox import private_skiff

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def command_runs(skiff: list[str], env: dict[str, str], runs: int) -> list[float]:
    """Milliseconds of each `skiff run --rm --network none busybox true` (the first not counted)."""
    samples = []
    for i in range(runs + 1):
        start = time.perf_counter()
        subprocess.run([*skiff, "run", "--rm", "--network", "none", "busybox", "true"], env=env, check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        if i:
            samples.append((time.perf_counter() - start) * 1000)
    return samples


def api_runs(client: object, runs: int) -> list[float]:
    """Milliseconds of each ``client.containers.run`` in this process (the first not counted)."""
    samples = []
    for i in range(runs + 1):
        start = time.perf_counter()
        client.containers.run("busybox", "true", remove=True, network="none")  # type: ignore[attr-defined]
        if i:
            samples.append((time.perf_counter() - start) * 1000)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=50)
    parser.add_argument("--profile", action="store_true", help="profile the API's runs")
    options = parser.parse_args()
    runs = options.runs
    with private_skiff() as (tmp, env):
        skiff = installed_command(tmp)
        tar = tmp / "busybox.tar"
        subprocess.run([str(REPO / "scripts" / "busybox-rootfs"), str(tar)], check=True)
        subprocess.run([*skiff, "import", str(tar), "busybox"], env=user_env(env), check=True,
                       stdout=subprocess.DEVNULL)
        os.environ["SKIFF_CGROUP_PARENT"] = env["SKIFF_CGROUP_PARENT"]  # the API's containers: same parent
        import skiff as skiff_package

        client = skiff_package.Client(root=env["SKIFF_ROOT"], run_root=env["SKIFF_RUN_ROOT"])
        cli = command_runs(skiff, user_env(env), runs)
        if options.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.enable()
            api = api_runs(client, runs)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
        else:
            api = api_runs(client, runs)
        leftover = client.containers.list(all=True)
        assert not leftover, f"containers left: {leftover}"
    cli_ms, api_ms = statistics.median(cli), statistics.median(api)
    print(f"medians of {runs} runs each, one warm-up run each not counted")
    print(f"{'':56} {'median ms':>10} {'x command':>10}")
    print(f"{'skiff run --rm --network none busybox true (command)':56} {cli_ms:10.1f} {1:10.2f}")
    print(f"{'client.containers.run(busybox, true, remove=True)':56} {api_ms:10.1f} {api_ms / cli_ms:10.2f}")
    print(f"target: API per run <= 0.7x the command's: {'met' if api_ms <= 0.7 * cli_ms else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
