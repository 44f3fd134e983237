#!/usr/bin/env python3
"""Lifecycle costs: `run -d` vs foreground `run`, an idle monitor's PSS, `exec` vs `run --rm true`.

    sudo .venv/bin/python bench/lifecycle.py [-n RUNS]

Targets (issue 7): `run -d` within the foreground `run --rm true` time + 10 ms; an
idle monitor at most 5 MB PSS (from /proc/PID/smaps_rollup); `exec` at most 1.5x
`run --rm true`. Medians of RUNS; a temporary skiff root; nothing is left behind.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from sandbox import private_skiff

REPO = Path(__file__).resolve().parent.parent
SKIFF = [sys.executable, "-m", "skiff"]


def timed(cmd: list[str], runs: int, env: dict[str, str], after=None) -> float:  # noqa: ANN001
    samples = []
    for i in range(runs + 1):
        start = time.perf_counter()
        out = subprocess.run(cmd, env=env, check=True, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if i:
            samples.append((time.perf_counter() - start) * 1000)
        if after:
            after(out.stdout.strip())
    return statistics.median(samples)


def pss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=15)
    runs = parser.parse_args().runs
    with private_skiff() as (tmp, env):
        subprocess.run([str(REPO / "scripts" / "busybox-rootfs"), str(tmp / "bb.tar")], check=True)
        subprocess.run(SKIFF + ["import", str(tmp / "bb.tar"), "busybox:latest"], env=env, check=True,
                       capture_output=True)
        net = ["--network", "none"]
        try:
            fg = timed(SKIFF + ["run", "--rm", *net, "busybox", "true"], runs, env)
            rm = lambda cid: subprocess.run(SKIFF + ["rm", "-f", cid], env=env, capture_output=True)  # noqa: E731
            detached = timed(SKIFF + ["run", "-d", *net, "busybox", "sleep", "600"], runs, env, after=rm)
            cid = subprocess.run(SKIFF + ["run", "-d", *net, "busybox", "sleep", "600"], env=env, check=True,
                                 capture_output=True, text=True).stdout.strip()
            time.sleep(1)
            record = json.loads((tmp / "root" / "containers" / cid / "container.json").read_text())
            monitor = record["State"]["MonitorPid"]
            pss = pss_kb(monitor)
            exec_ms = timed(SKIFF + ["exec", cid, "true"], runs, env)
            # A terminal container's monitor also holds the pty master and serves attach clients.
            tty_cid = subprocess.run(SKIFF + ["run", "-itd", *net, "busybox", "sh"], env=env, check=True,
                                     capture_output=True, text=True).stdout.strip()
            time.sleep(1)
            tty_record = json.loads((tmp / "root" / "containers" / tty_cid / "container.json").read_text())
            tty_pss = pss_kb(tty_record["State"]["MonitorPid"])
            # Foreground through the monitor (create + start -a), as `run -it` goes, against the direct path.
            created = []
            make = lambda: created.append(subprocess.run(  # noqa: E731
                SKIFF + ["create", "--rm", *net, "busybox", "true"], env=env, check=True, capture_output=True,
                text=True).stdout.strip())
            samples = []
            for i in range(runs + 1):
                make()
                start = time.perf_counter()
                subprocess.run(SKIFF + ["start", "-a", created[-1]], env=env, check=True, capture_output=True)
                if i:
                    samples.append((time.perf_counter() - start) * 1000)
            attached = statistics.median(samples)
        finally:
            ids = subprocess.run(SKIFF + ["ps", "-aq", "--no-trunc"], env=env, capture_output=True,
                                 text=True).stdout.split()
            if ids:
                subprocess.run(SKIFF + ["rm", "-f", *ids], env=env, capture_output=True)
    print(f"run --rm true (foreground)  {fg:7.1f} ms")
    print(f"run -d sleep                {detached:7.1f} ms   (+{detached - fg:.1f} ms; target <= +10 ms)")
    print(f"idle monitor PSS            {pss / 1024:7.2f} MB   (target <= 5 MB)")
    print(f"idle monitor PSS, -it       {tty_pss / 1024:7.2f} MB   (target <= 5 MB)")
    print(f"exec true                   {exec_ms:7.1f} ms   ({exec_ms / fg:.2f}x run --rm true; target <= 1.5x)")
    print(f"start -a (created, --rm)    {attached:7.1f} ms   (the monitor path of a foreground run; "
          f"{attached / fg:.2f}x the direct path)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
