"""linux.sysctl in the runtime core: written in the container's namespaces, never the host's.

A bundle may come from anywhere (skiff-oci serves containerd and dockerd), so the
runtime checks every key itself: names that would walk out of /proc/sys, keys of
namespaces the container shares with the host, and a network namespace joined by
path that is the runtime's own are refused before anything is created.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from skiff.errors import BundleError
from tests.runtime.conftest import BundleFactory

HOST_KEYS = ("kernel/shmmax", "net/ipv4/ip_unprivileged_port_start", "vm/swappiness", "kernel/shm_rmid_forced")


@pytest.fixture(autouse=True)
def host_sysctls_unchanged() -> object:
    before = {key: Path("/proc/sys", key).read_text() for key in HOST_KEYS}
    yield
    assert {key: Path("/proc/sys", key).read_text() for key in HOST_KEYS} == before


@pytest.mark.parametrize("key", [
    "kernel/../vm.swappiness", "net/../../vm/swappiness", "fs.mqueue/../../vm.swappiness", "net..ipv4.x",
    "kernel.shmmax/", ".net.ipv4.ip_forward", "net.ipv4.conf.all/../../../vm.swappiness",
])
def test_names_that_leave_proc_sys_are_refused(bundle: BundleFactory, key: str) -> None:
    bundle.spec["linux"]["sysctl"] = {key: "1"}
    with pytest.raises(BundleError, match="bad sysctl name"):
        bundle.run(["true"])


@pytest.mark.parametrize("key", ["vm.swappiness", "kernel.hostname", "kernel.pid_max"])
def test_keys_of_no_namespace_of_the_container_are_refused(bundle: BundleFactory, key: str) -> None:
    bundle.spec["linux"]["sysctl"] = {key: "1"}
    with pytest.raises(BundleError):
        bundle.run(["true"])


def test_ipc_sysctl_without_an_ipc_namespace_is_refused(bundle: BundleFactory) -> None:
    bundle.spec["linux"]["namespaces"] = [ns for ns in bundle.spec["linux"]["namespaces"] if ns["type"] != "ipc"]
    bundle.spec["linux"]["sysctl"] = {"kernel.shmmax": "4096"}
    with pytest.raises(BundleError, match="ipc namespace"):
        bundle.run(["true"])


def test_net_sysctl_in_the_runtimes_own_network_namespace_is_refused(bundle: BundleFactory) -> None:
    """A netns joined by path that is the host's (ours) is the host's network: refused, as runc."""
    for ns in bundle.spec["linux"]["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = "/proc/self/ns/net"
    bundle.spec["linux"]["sysctl"] = {"net.ipv4.ip_unprivileged_port_start": "77"}
    with pytest.raises(BundleError, match="not allowed in host network namespace"):
        bundle.run(["true"])


def test_net_sysctl_in_a_joined_network_namespace_is_written_there(bundle: BundleFactory, tmp_path: Path) -> None:
    """A namespace made beforehand (as skiff's bridge networking does) takes the container's sysctls."""
    name = f"skiff-test-sysctl-{tmp_path.name[-8:]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for ns in bundle.spec["linux"]["namespaces"]:
            if ns["type"] == "network":
                ns["path"] = f"/run/netns/{name}"
        bundle.spec["linux"]["sysctl"] = {"net.ipv4.ip_unprivileged_port_start": "77"}
        result = bundle.sh("cat /proc/sys/net/ipv4/ip_unprivileged_port_start")
        assert result.out == "77\n", result.err
        seen = subprocess.run(["ip", "netns", "exec", name, "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"],
                              capture_output=True, text=True, check=True).stdout
        assert seen == "77\n"
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)


def test_namespaced_sysctls_are_the_containers(bundle: BundleFactory) -> None:
    bundle.spec["linux"]["sysctl"] = {"kernel.shmmax": "4096", "kernel.shm_rmid_forced": "1",
                                      "net.ipv4.ip_unprivileged_port_start": "77"}
    result = bundle.sh("cat /proc/sys/kernel/shmmax /proc/sys/kernel/shm_rmid_forced "
                       "/proc/sys/net/ipv4/ip_unprivileged_port_start")
    assert result.out.split() == ["4096", "1", "77"], result.err
