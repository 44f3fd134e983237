#!/usr/bin/env python3
"""What ``--gpus all`` adds to ``skiff run --rm`` (issue 20's target: at most 15 ms), on a fake driver.

    sudo .venv/bin/python bench/devices.py [-n RUNS]

A fake NVIDIA driver tree (device nodes with /dev/null's numbers, libraries, binaries, a fake
nvidia-smi and ldconfig) gives ``skiff cdi generate`` a spec like a real host's. Timed, medians:
the engine's part in-process (spec files read and checked, GPUs selected, edits applied to a
config: what the target is about), then whole runs: plain, ``--gpus all`` with the spec's
ld.so cache hook removed (nodes and mounts only), ``--gpus all`` as generated (the hook runs the
host's ldconfig over the container's root), and ``runc run`` of the same busybox as the baseline.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from sandbox import private_skiff
from startup import runc_bundle, timed

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from tests.e2e.test_devices import fake_driver  # noqa: E402

# This checkout's skiff (the installed launcher may run another one), the same way for every run.
SKIFF = [sys.executable, "-m", "skiff"]


def engine_part(spec_dir: Path, runs: int) -> float:
    """Median ms of what ``--gpus all`` costs the engine for one run: a fresh registry, selection, edits."""
    import os

    from skiff.engine import devices

    os.environ["SKIFF_CDI_SPEC_DIRS"] = str(spec_dir)
    request = devices.parse_gpus("all")
    samples = []
    for _ in range(runs + 1):
        config = {"process": {"env": ["PATH=/bin"]}, "mounts": [], "linux": {"resources": {}}}
        start = time.perf_counter()
        devices.apply(config, [], [], [request])
        samples.append((time.perf_counter() - start) * 1000)
        assert len(config["linux"]["devices"]) > 2 and config["mounts"], "the spec gave the run nothing"
    return statistics.median(samples[1:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=15)
    runs = parser.parse_args().runs
    results: dict[str, float] = {}
    with private_skiff() as (tmp, env):
        env["PYTHONPATH"] = str(REPO)
        tar = tmp / "busybox.tar"
        subprocess.run([str(REPO / "scripts" / "busybox-rootfs"), str(tar)], check=True)
        subprocess.run([*SKIFF, "import", str(tar), "busybox"], env=env, check=True, stdout=subprocess.DEVNULL)
        smi, ldconfig = fake_driver(tmp / "driver")
        with_hook, without_hook = tmp / "cdi", tmp / "cdi-nohook"
        with_hook.mkdir()
        without_hook.mkdir()
        subprocess.run([*SKIFF, "cdi", "generate", "--vendor", "nvidia", "--driver-root", str(tmp / "driver"),
                        "--nvidia-smi-path", str(smi), "--ldconfig-path", str(ldconfig),
                        "--output", str(with_hook / "nvidia.json")], env=env, check=True, capture_output=True)
        spec = json.loads((with_hook / "nvidia.json").read_text())
        spec["containerEdits"].pop("hooks", None)
        (without_hook / "nvidia.json").write_text(json.dumps(spec))

        engine_ms = engine_part(with_hook, runs * 10)
        bundle = runc_bundle(tmp, tar)
        results["runc run"] = timed(["runc", "--root", str(tmp / "runc-state"), "run", "bench-dev"], runs,
                                    cwd=str(bundle))
        plain = [*SKIFF, "run", "--rm", "--network", "none", "busybox", "true"]
        gpus = [*SKIFF, "run", "--rm", "--network", "none", "--gpus", "all", "busybox", "true"]
        results["skiff run --rm"] = timed(plain, runs, env=env)
        results["skiff run --rm --gpus all (no hook)"] = timed(gpus, runs, env={**env, "SKIFF_CDI_SPEC_DIRS":
                                                                               str(without_hook)})
        results["skiff run --rm --gpus all"] = timed(gpus, runs, env={**env, "SKIFF_CDI_SPEC_DIRS": str(with_hook)})
    base, plain_ms = results["runc run"], results["skiff run --rm"]
    print(f"medians of {runs} runs each ({runs * 10} for the engine's part), one warm-up run not counted")
    print(f"engine's part of --gpus all (read spec, select, apply edits): {engine_ms:.2f} ms (target <= 15)")
    print(f"{'command':40} {'median ms':>10} {'x runc':>8} {'+ms':>8}")
    for name, ms in results.items():
        extra = f"{ms - plain_ms:8.1f}" if name.startswith("skiff") else ""
        print(f"{name:40} {ms:10.1f} {ms / base:8.2f} {extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
