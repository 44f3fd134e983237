"""Measurements: attach/detach latency, and host-to-container throughput against loopback.

Printed (run with -s to see them); the assertions are loose guards, since other
work on the machine moves the numbers. Targets: attach <= 25 ms, veth >= 0.9x loopback.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import shutil
import statistics
import subprocess
import time

import pytest

from skiff.network import NetworkManager, NetworkRequest

from .conftest import route_dev


def _timed(nm: NetworkManager, request: NetworkRequest | None, runs: int = 20) -> tuple[float, float]:
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


@pytest.mark.slow
def test_attach_latency(nm: NetworkManager) -> None:
    holder = nm.attach(secrets.token_hex(32))  # the bridge exists, as on a host that ran a container
    attach, detach = _timed(nm, None)
    attach_p, detach_p = _timed(nm, NetworkRequest(publish=["80"]))
    print(f"\nbridge attach median {attach:.1f} ms, detach {detach:.1f} ms; "
          f"with -p: attach {attach_p:.1f} ms, detach {detach_p:.1f} ms")
    nm.detach(holder.container_id)
    assert attach < 50 and attach_p < 50


def _iperf(server_cmd: list[str], address: str) -> float:
    server = subprocess.Popen([*server_cmd, "iperf3", "-s", "-1", "-B", address, "-p", "5299"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            client = subprocess.run(["iperf3", "-c", address, "-p", "5299", "-t", "2", "-J"],
                                    capture_output=True, text=True, timeout=30)
            result = json.loads(client.stdout or "{}")
            if client.returncode == 0 and "sum_received" in result.get("end", {}):
                return result["end"]["sum_received"]["bits_per_second"] / 1e9
            time.sleep(0.05)
        raise AssertionError(f"iperf3 to {address} never connected: {client.stdout[-300:]}")
    finally:
        server.kill()
        server.wait()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("iperf3") is None, reason="iperf3 not installed")
@pytest.mark.parametrize("mtu", [1500, 65535])
def test_iperf_host_to_container_against_loopback(nm: NetworkManager, mtu: int) -> None:
    manager = NetworkManager(nm.paths, dataclasses.replace(nm.config, mtu=mtu))
    att = manager.attach(secrets.token_hex(32))
    address = att.settings()["IPAddress"]
    assert route_dev(address) == nm.config.default_bridge
    loopback = _iperf([], "127.0.0.1")
    container = _iperf(["nsenter", f"--net={att.netns_path}"], address)
    print(f"\niperf3 mtu {mtu}: loopback {loopback:.1f} Gbit/s, host->container {container:.1f} Gbit/s, "
          f"ratio {container / loopback:.2f}")
    manager.detach(att.container_id)
    manager.prune_networks()  # the next MTU gets a fresh bridge
    assert container > (0.9 if mtu > 9000 else 0.5) * loopback
