#!/usr/bin/env python3
"""Bridge networking: attach/detach latency, and iperf3 host->container against host loopback.

    sudo .venv/bin/python bench/network.py [--mtu N]

Targets (issue 6): bridge setup adds at most 25 ms to `skiff run`; host->container
throughput at least 0.9x loopback. Uses a private bridge, nft table and a free
test subnet (checked with `ip route get` before any traffic), and removes them.
Traffic goes only to loopback and to the namespace this script makes.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sandbox import private_skiff  # noqa: E402  (bench/ is on sys.path)
from skiff.network import NetworkManager, NetworkRequest
from skiff.network.config import NetworkConfig
from skiff.paths import Paths

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.network.conftest import free_subnet, route_dev  # noqa: E402  (shared with the tests)


def attach_latency(nm: NetworkManager, request: NetworkRequest | None, runs: int) -> tuple[float, float]:
    attach, detach = [], []
    for _ in range(runs):
        cid = secrets.token_hex(32)
        start = time.perf_counter()
        nm.attach(cid, request)
        middle = time.perf_counter()
        nm.detach(cid)
        attach.append((middle - start) * 1000)
        detach.append((time.perf_counter() - middle) * 1000)
    return statistics.median(attach), statistics.median(detach)


def iperf(server_prefix: list[str], address: str) -> float:
    """Gbit/s received by an iperf3 server at ``address`` (in a netns when prefixed by nsenter)."""
    server = subprocess.Popen([*server_prefix, "iperf3", "-s", "-1", "-B", address, "-p", "5299"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            client = subprocess.run(["iperf3", "-c", address, "-p", "5299", "-t", "3", "-J"],
                                    capture_output=True, text=True, timeout=30)
            result = json.loads(client.stdout or "{}")
            if client.returncode == 0 and "sum_received" in result.get("end", {}):
                return result["end"]["sum_received"]["bits_per_second"] / 1e9
            time.sleep(0.05)
        raise SystemExit(f"iperf3 to {address} never connected")
    finally:
        server.kill()
        server.wait()


def cli_run_cost(config: NetworkConfig, runs: int) -> dict[str, float]:
    """Median ms of `skiff run --rm --network none|bridge busybox true`, on the bench's private names."""
    repo = Path(__file__).resolve().parent.parent
    skiff = [sys.executable, "-m", "skiff"]
    with private_skiff(prefix="skiff-bench-run-") as (tmp, env):
        root = Path(env["SKIFF_ROOT"])
        (root / "network").mkdir(parents=True)
        (root / "network" / "config.json").write_text(json.dumps({
            "default_bridge": config.default_bridge, "bridge_prefix": config.bridge_prefix,
            "veth_prefix": config.veth_prefix, "nft_table": config.nft_table,
            "subnet_candidates": list(config.subnet_candidates)}))
        subprocess.run([str(repo / "scripts" / "busybox-rootfs"), f"{tmp}/bb.tar"], check=True)
        subprocess.run([*skiff, "import", f"{tmp}/bb.tar", "busybox"], env=env, check=True, capture_output=True)
        medians = {}
        try:
            for mode in ("none", "bridge", "none", "bridge"):  # twice, interleaved, against drift
                cmd = [*skiff, "run", "--rm", "--network", mode, "busybox", "true"]
                subprocess.run(cmd, env=env, check=True)  # warm-up; the first bridge run makes the bridge
                times = []
                for _ in range(runs):
                    start = time.perf_counter()
                    subprocess.run(cmd, env=env, check=True)
                    times.append((time.perf_counter() - start) * 1000)
                medians[mode] = min(medians.get(mode, 1e9), statistics.median(times))
        finally:
            subprocess.run([*skiff, "network", "prune", "-f"], env=env, capture_output=True)
    return medians


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mtu", type=int, default=NetworkConfig.mtu, help="bridge and veth MTU (default: skiff's)")
    parser.add_argument("-n", "--runs", type=int, default=20)
    parser.add_argument("--cli", action="store_true", help="also time `skiff run --rm` with none vs bridge")
    args = parser.parse_args()
    tag = secrets.token_hex(3)
    config = NetworkConfig(default_bridge=f"skb{tag}0", bridge_prefix=f"skb{tag}", veth_prefix=f"sb{tag}",
                           nft_table=f"skiff_bench_{tag}", subnet_candidates=(free_subnet(),), mtu=args.mtu)
    with tempfile.TemporaryDirectory(prefix="skiff-bench-net-") as tmp:
        nm = NetworkManager(Paths(Path(tmp) / "root", Path(tmp) / "run"), config)
        holder = nm.attach(secrets.token_hex(32))  # the bridge exists, as after a first container
        try:
            attach, detach = attach_latency(nm, None, args.runs)
            attach_p, detach_p = attach_latency(nm, NetworkRequest(publish=["80"]), args.runs)
            address = holder.settings()["IPAddress"]
            if route_dev(address) != config.default_bridge:
                raise SystemExit(f"{address} does not route through the bench bridge: not sending")
            loopback = iperf([], "127.0.0.1")
            container = iperf(["nsenter", f"--net={holder.netns_path}"], address)
        finally:
            nm.detach(holder.container_id)
            nm.reconcile(set())
            nm.prune_networks()
    if args.cli:
        run = cli_run_cost(config, args.runs)
        print(f"skiff run --rm busybox true: --network none {run['none']:.1f} ms, bridge {run['bridge']:.1f} ms, "
              f"bridge adds {run['bridge'] - run['none']:.1f} ms (target <= 25 ms)")
    print(f"bridge attach median {attach:.1f} ms, detach {detach:.1f} ms (target: attach <= 25 ms)")
    print(f"with -p 80: attach {attach_p:.1f} ms, detach {detach_p:.1f} ms")
    print(f"iperf3 (mtu {args.mtu}): loopback {loopback:.1f} Gbit/s, host->container {container:.1f} Gbit/s, "
          f"ratio {container / loopback:.2f} (target >= 0.9)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
