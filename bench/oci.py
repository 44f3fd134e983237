"""skiff-oci against runc on one busybox bundle: `run` of `true`, and create+start+delete (youki's measure).

    .venv/bin/python bench/oci.py [ROUNDS]

Both run the same bundle: runc's own `runc spec` config (terminal off, args `true`), so both make
a cgroup with a device rule. Prints the median wall time of each runtime and the ratio
skiff-oci/runc for `run` (target: at most 1.0x) and create+start+delete (target: at most 1.2x),
then the median of each step. SKIFF_OCI names the skiff-oci command (default: the one on PATH).
Everything lives in a temporary directory; the state roots and skiff-oci's cgroup parent are
private to this run and removed at the end (runc's cgroups go with each delete).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUNTIMES = {"runc": ["/usr/sbin/runc"],
            "skiff-oci": [os.environ.get("SKIFF_OCI") or shutil.which("skiff-oci") or "skiff-oci"]}


def make_bundle(base: Path) -> Path:
    """runc's default config over the busybox rootfs: the same work for both runtimes."""
    bundle = base / "bundle"
    (bundle / "rootfs").mkdir(parents=True)
    tar = base / "busybox.tar"
    subprocess.run([str(REPO / "scripts" / "busybox-rootfs"), str(tar)], check=True, capture_output=True)
    subprocess.run(["tar", "-xpf", str(tar), "-C", str(bundle / "rootfs")], check=True)
    subprocess.run([RUNTIMES["runc"][0], "spec"], cwd=bundle, check=True)
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"]["args"] = ["true"]
    spec["process"]["terminal"] = False
    (bundle / "config.json").write_text(json.dumps(spec))
    return bundle


def timed(commands: list[list[str]]) -> list[float]:
    """Seconds of each command, run one after the other."""
    times = []
    for command in commands:
        started = time.perf_counter()
        subprocess.run(command, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return times


STEPS = ("create", "start", "delete")


def bench(base: Path, bundle: Path, rounds: int) -> dict[str, dict[str, float]]:
    measures = ("run", "create+start+delete", *STEPS)
    results: dict[str, dict[str, list[float]]] = {name: {m: [] for m in measures} for name in RUNTIMES}
    for i in range(rounds):
        for name, exe in RUNTIMES.items():  # interleaved: drift hits both alike
            g = [*exe, "--root", str(base / f"state-{name}")]
            cid = f"bench-{i}"
            results[name]["run"] += timed([[*g, "run", "-b", str(bundle), cid]])
            # youki's README: create, start, delete -f, one after the other.
            steps = timed([[*g, "create", "-b", str(bundle), cid + "c"], [*g, "start", cid + "c"],
                           [*g, "delete", "-f", cid + "c"]])
            results[name]["create+start+delete"].append(sum(steps))
            for step, seconds in zip(STEPS, steps):
                results[name][step].append(seconds)
    return {name: {k: statistics.median(v) for k, v in r.items()} for name, r in results.items()}


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    base = Path(tempfile.mkdtemp(prefix="skiff-bench-oci-"))
    parent = f"skiff-bench-oci-{os.urandom(3).hex()}"
    os.environ["SKIFF_CGROUP_PARENT"] = parent  # skiff-oci's default cgroups go under a private parent
    try:
        bundle = make_bundle(base)
        medians = bench(base, bundle, rounds)
    finally:
        shutil.rmtree(base, ignore_errors=True)
        sys.path.insert(0, str(REPO))
        from skiff import cgroups

        cgroups.open(f"/{parent}").destroy()
    for measure in ("run", "create+start+delete", *STEPS):
        runc, ours = medians["runc"][measure], medians["skiff-oci"][measure]
        label = measure if measure in ("run", "create+start+delete") else f"  {measure}"
        print(f"{label:22} runc {runc * 1000:7.1f} ms   skiff-oci {ours * 1000:7.1f} ms   "
              f"ratio {ours / runc:4.2f}x")


if __name__ == "__main__":
    main()
