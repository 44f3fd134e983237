#!/usr/bin/env python3
"""Time `skiff run --rm busybox true` against bare `runc run` on the same rootfs.

    sudo .venv/bin/python bench/startup.py [-n RUNS]

Both run in this one invocation, medians of RUNS (default 15) each, and the
ratios are printed. docker and podman join when they are installed and work.
A temporary skiff root is used; nothing is left behind.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from sandbox import private_skiff

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.conftest import PRIVATE_VAR_LIB  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
# The launcher scripts/setup installs (python -S), as a user runs it; the venv's script otherwise.
SKIFF = [shutil.which("skiff") or str(REPO / ".venv" / "bin" / "skiff")]


def timed(cmd: list[str], runs: int, env: dict[str, str] | None = None, cwd: str | None = None) -> float:
    """Median wall time in milliseconds; the first run warms caches and is not counted."""
    samples = []
    for i in range(runs + 1):
        start = time.perf_counter()
        subprocess.run(cmd, env=env, cwd=cwd, check=True, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL)
        if i:
            samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def runc_bundle(tmp: Path, tar: Path) -> Path:
    bundle = tmp / "runc-bundle"
    (bundle / "rootfs").mkdir(parents=True)
    subprocess.run(["tar", "--numeric-owner", "-xpf", str(tar), "-C", str(bundle / "rootfs")], check=True)
    subprocess.run(["runc", "spec"], cwd=bundle, check=True)
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["args"] = ["true"]
    config["process"]["terminal"] = False
    (bundle / "config.json").write_text(json.dumps(config))
    return bundle


def podman_command(tmp: Path, tar: Path) -> list[str] | None:
    """podman on private storage in ``tmp`` with the busybox image imported, or None.

    Its default rlimits exceed what some hosts allow (this VM withholds
    CAP_SYS_RESOURCE), so a containers.conf keeps them at the current hard limits.
    """
    if not shutil.which("podman"):
        return None
    import resource

    nofile = min(1024, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    nproc = min(4096, resource.getrlimit(resource.RLIMIT_NPROC)[1])
    (tmp / "containers.conf").write_text(
        f'[containers]\ndefault_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
        '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "none"\n')
    cmd = ["podman", "--root", str(tmp / "podman"), "--runroot", str(tmp / "podman-run"),
           "--storage-driver", "overlay"]
    env = dict(os.environ, CONTAINERS_CONF=str(tmp / "containers.conf"))
    # An import would write podman's blob-info cache in the host's /var/lib/containers.
    done = subprocess.run([*PRIVATE_VAR_LIB, *cmd, "import", str(tar), "busybox"], env=env, capture_output=True,
                          text=True)
    if done.returncode == 0:
        done = subprocess.run([*cmd, "run", "--rm", "--network", "none", "busybox", "true"], env=env,
                              capture_output=True, text=True)
    if done.returncode != 0:
        print(f"podman skipped: {done.stderr.strip().splitlines()[-1][:200]}")
        subprocess.run([*PRIVATE_VAR_LIB, *cmd, "system", "reset", "-f"], env=env, capture_output=True)
        return None
    return cmd


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=15)
    runs = parser.parse_args().runs
    network = "none"  # what bridge networking adds is bench/network.py --cli's (on private names)
    results: dict[str, float] = {}
    with private_skiff() as (tmp, env):
        tar = tmp / "busybox.tar"
        subprocess.run([str(REPO / "scripts" / "busybox-rootfs"), str(tar)], check=True)
        subprocess.run([*SKIFF, "import", str(tar), "busybox"], env=env, check=True, stdout=subprocess.DEVNULL)

        bundle = runc_bundle(tmp, tar)
        runc_root = tmp / "runc-state"
        results["runc run"] = timed(["runc", "--root", str(runc_root), "run", "bench-skiff"], runs,
                                    cwd=str(bundle))
        results[f"skiff run --rm --network {network}"] = timed(
            [*SKIFF, "run", "--rm", "--network", network, "busybox", "true"], runs, env=env)
        podman = podman_command(tmp, tar)
        if podman:
            podman_env = dict(os.environ, CONTAINERS_CONF=str(tmp / "containers.conf"))
            try:
                results["podman run --rm"] = timed([*podman, "run", "--rm", "--network", "none", "busybox", "true"],
                                                   runs, env=podman_env)
            finally:  # its storage mounts live under tmp: leave nothing behind
                subprocess.run([*PRIVATE_VAR_LIB, *podman, "system", "reset", "-f"], env=podman_env,
                               capture_output=True)
        if shutil.which("docker") and subprocess.run(["docker", "info"], capture_output=True).returncode == 0:
            print("docker: a running dockerd was found, but skiff does not load images into it; skipped")
    base = results["runc run"]
    print(f"medians of {runs} runs each, one warm-up run not counted")
    print(f"{'command':40} {'median ms':>10} {'x runc':>8}")
    for name, ms in results.items():
        print(f"{name:40} {ms:10.1f} {ms / base:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
