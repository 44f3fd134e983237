"""A one-container pod through containerd's CRI: the skiff handler (skiff-oci) against the runc handler.

    .venv/bin/python bench/cri.py [ROUNDS]

One private containerd (tests/cri/node.py: its own root, state, sockets, CNI bridge and mount
namespace, the images in a local registry) serves both handlers in the same run. Each round, for
each handler in turn, drives the kubelet's calls over gRPC: RunPodSandbox, CreateContainer,
StartContainer, StopContainer, RemoveContainer, StopPodSandbox, RemovePodSandbox (the image is
pulled once beforehand). Prints the median of the whole pod and of each call per handler, and the
ratio skiff/runc (target: at most 1.1x). SKIFF_OCI names the skiff-oci command (default: the one
on PATH). Everything it made is removed at the end, its cgroup parent included.
"""

from __future__ import annotations

import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.cri.node import HANDLERS, CriNode, cri_node  # noqa: E402  (shared with the tests)
from tests.dockerd import remove_cgroup  # noqa: E402

T = TypeVar("T")
CALLS = ("RunPodSandbox", "CreateContainer", "StartContainer", "StopContainer", "RemoveContainer",
         "StopPodSandbox", "RemovePodSandbox")


def one_pod(node: CriNode, handler: str, round_: int) -> dict[str, float]:
    """Seconds of each CRI call for one pod whose container sleeps until stopped."""
    times: dict[str, float] = {}

    def timed(call: str, action: Callable[[], T]) -> T:
        started = time.perf_counter()
        result = action()
        times[call] = time.perf_counter() - started
        return result

    pod = node.pod_config(f"bench-{handler}-{round_}")
    pod_id = timed("RunPodSandbox", lambda: node.run_pod(pod, handler))
    config = node.container_config("sleeper", ["sleep", "3600"])
    container = timed("CreateContainer", lambda: node.create(pod_id, pod, config))
    timed("StartContainer", lambda: node.start(container))
    timed("StopContainer", lambda: node.stop_container(container, timeout=0))
    timed("RemoveContainer", lambda: node.remove_container(container))
    timed("StopPodSandbox", lambda: node.stop_pod(pod_id))
    timed("RemovePodSandbox", lambda: node.remove_pod(pod_id))
    return times


def bench(node: CriNode, rounds: int) -> dict[str, dict[str, float]]:
    """Medians per handler: each call and the whole pod; the handlers alternate round by round."""
    samples: dict[str, dict[str, list[float]]] = {h: {c: [] for c in (*CALLS, "pod")} for h in HANDLERS}
    for handler in HANDLERS:  # a warm-up pod each: the image's snapshot, the shim binary in the page cache
        one_pod(node, handler, -1)
    for round_ in range(rounds):
        for handler in (HANDLERS if round_ % 2 == 0 else HANDLERS[::-1]):
            times = one_pod(node, handler, round_)
            for call, seconds in times.items():
                samples[handler][call].append(seconds)
            samples[handler]["pod"].append(sum(times.values()))
    return {h: {c: statistics.median(v) for c, v in calls.items()} for h, calls in samples.items()}


def main(rounds: int) -> None:
    cgroup_root = f"skiff-bench-cri-{secrets.token_hex(3)}"
    with tempfile.TemporaryDirectory(prefix="skiff-bench-cri-") as tmp:
        base = Path(tmp)
        tar = base / "busybox.tar"
        subprocess.run([str(REPO / "scripts" / "busybox-rootfs"), str(tar)], check=True)
        try:
            with cri_node(base / "cri", tar, cgroup_root) as node:
                pod = node.pod_config("pull")
                node.pull(node.images_ref.busybox, pod)
                medians = bench(node, rounds)
        finally:
            remove_cgroup(f"/{cgroup_root}")
    print(f"one-container pod through the CRI, median of {rounds} rounds (ms)")
    print(f"{'call':<18}" + "".join(f"{h:>10}" for h in HANDLERS) + f"{'ratio':>8}")
    for call in (*CALLS, "pod"):
        row = [medians[h][call] * 1000 for h in HANDLERS]
        print(f"{call:<18}" + "".join(f"{v:>10.1f}" for v in row) + f"{row[1] / row[0]:>7.2f}x")
    ratio = medians["skiff"]["pod"] / medians["runc"]["pod"]
    print(f"skiff/runc for the whole pod: {ratio:.2f}x (target: at most 1.1x)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
