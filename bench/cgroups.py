#!/usr/bin/env python3
"""What cgroup setup adds to `skiff run`: create + add + destroy of a container cgroup.

    sudo .venv/bin/python bench/cgroups.py [-n RUNS]

Target (issue 5): create + add at most 5 ms. Uses a private parent cgroup
(skiff-bench-<random>) in every hierarchy and removes it afterwards.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from skiff import cgroups
from skiff.engine.resources import resources_from_flags


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=50)
    runs = parser.parse_args().runs
    parent = f"skiff-bench-{os.urandom(3).hex()}"
    resources = resources_from_flags(memory="64m", cpus="0.5", pids_limit="100")
    sleeper = subprocess.Popen(["sleep", "300"])
    park = cgroups.open(f"/{parent}/park")
    setup, destroy = [], []
    try:
        park.create({})
        for _ in range(runs):
            cg = cgroups.open(f"/{parent}/{os.urandom(6).hex()}")
            start = time.perf_counter()
            cg.create(resources)
            cg.add(sleeper.pid)
            created = time.perf_counter()
            park.add(sleeper.pid)  # empty it again, as the container's exit would
            moved = time.perf_counter()
            cg.destroy()
            setup.append((created - start) * 1000)
            destroy.append((time.perf_counter() - moved) * 1000)
    finally:
        sleeper.kill()
        sleeper.wait()
        park.destroy()
        cgroups.open(f"/{parent}").destroy()
    print(f"cgroups ({cgroups.detect().mode}), {runs} runs, memory+cpus+pids limits:")
    print(f"  create + add   median {statistics.median(setup):6.2f} ms   (target <= 5 ms)")
    print(f"  destroy        median {statistics.median(destroy):6.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
