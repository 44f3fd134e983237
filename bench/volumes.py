#!/usr/bin/env python3
"""Volumes: write+fsync throughput inside a container against the host, and what a volume adds to a run.

    sudo .venv/bin/python bench/volumes.py [-n RUNS] [--mb SIZE]

Targets (issue 3): throughput into a volume from a container >= 0.95x the host's
on the same filesystem; `run --rm -v vol:/v busybox true` at most 10 ms slower
than a plain `run --rm busybox true`. A temporary skiff root is used.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sandbox import private_skiff

REPO = Path(__file__).resolve().parent.parent
SKIFF = [str(REPO / ".venv" / "bin" / "skiff")]


def dd_throughput(output: str, mb: int, prefix: list[str], env: dict[str, str] | None = None) -> float:
    """MB/s of a sequential write of ``mb`` MiB ending with fsync, timed where it runs.

    busybox's ``time`` measures inside the container too, so the container's start
    is not counted against the volume.
    """
    script = f"time dd if=/dev/zero of={output} bs=1M count={mb} conv=fsync; rm -f {output}"
    proc = subprocess.run([*prefix, "sh", "-c", script], env=env, check=True, capture_output=True, text=True)
    real = next(line for line in proc.stderr.splitlines() if line.startswith("real"))
    minutes, _, seconds = real.split(None, 1)[1].partition("m")
    return mb / (int(minutes) * 60 + float(seconds.strip().rstrip("s")))


def median_ms(cmd: list[str], runs: int, env: dict[str, str]) -> float:
    samples = []
    for i in range(runs + 1):
        start = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
        if i:  # the first run warms caches
            samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=15)
    parser.add_argument("--mb", type=int, default=512, help="MiB written per throughput sample")
    args = parser.parse_args()
    with private_skiff(prefix="skiff-bench-vol-", dir="/var/tmp") as (tmp, env):
        tar = tmp / "busybox.tar"
        subprocess.run([str(REPO / "scripts" / "busybox-rootfs"), str(tar)], check=True)
        subprocess.run([*SKIFF, "import", str(tar), "busybox"], env=env, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([*SKIFF, "volume", "create", "bench"], env=env, check=True, stdout=subprocess.DEVNULL)
        run = [*SKIFF, "run", "--rm", "--network", "none"]

        host_dir = tmp / "host-side"  # same filesystem as the volume's _data
        host_dir.mkdir()
        host, container = [], []
        for _ in range(5):  # interleaved, so drift in the disk hits both alike
            host.append(dd_throughput(str(host_dir / "f"), args.mb, ["busybox"]))
            container.append(dd_throughput("/v/f", args.mb, [*run, "-v", "bench:/v", "busybox"], env))
        plain = median_ms([*run, "busybox", "true"], args.runs, env)
        with_volume = median_ms([*run, "-v", "bench:/v", "busybox", "true"], args.runs, env)
        subprocess.run([*SKIFF, "volume", "rm", "bench"], env=env, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([*SKIFF, "rmi", "busybox"], env=env, check=True, stdout=subprocess.DEVNULL)

    h, c = statistics.median(host), statistics.median(container)
    print(f"write+fsync {args.mb} MiB: host {h:.0f} MB/s, container into a volume {c:.0f} MB/s, "
          f"ratio {c / h:.2f} (target >= 0.95)")
    print(f"run --rm busybox true: plain {plain:.1f} ms, with -v bench:/v {with_volume:.1f} ms, "
          f"difference {with_volume - plain:+.1f} ms (target <= 10 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
