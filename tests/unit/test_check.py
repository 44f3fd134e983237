"""``skiff check`` against fake hosts: a /proc, /sys and /etc tree in a temporary directory, and
canned answers for what no file tells (system calls, libraries, commands, free space).

One healthy host per cgroup mode, then one failure at a time: each must turn exactly its
line to warn or fail, with a fix, and a fail must make the whole check fail.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from skiff.check import FAIL, OK, WARN, Result, passed, run_checks
from skiff.check.host import Host

GiB = 1 << 30
CONTROLLERS_V1 = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "hugetlb")
PROC_CGROUPS = "#subsys_name\thierarchy\tnum_cgroups\tenabled\n" + "".join(
    f"{name}\t{n}\t1\t1\n" for n, name in enumerate(CONTROLLERS_V1, 1))


class FakeHost(Host):
    """A host whose files are under ``tree`` and whose other answers are given."""

    def __init__(self, tree: Path, euid: int = 0, user: str = "root", calls: dict[str, int] | None = None,
                 missing_modules: tuple[str, ...] = (), libraries: tuple[str, ...] = ("libnftables.so.1",),
                 commands: tuple[str, ...] = ("nft", "iptables-restore", "ps"), backend: str = "nftables",
                 firewall_error: str | None = None, free: int = 50 * GiB, read_only: tuple[str, ...] = ()) -> None:
        super().__init__(tree / "var/lib/skiff", root=tree, cgroup_parent="skiff", euid=euid, user=user)
        self.calls = calls or {}
        self.missing_modules = missing_modules
        self.libraries = libraries
        self.commands = commands
        self.backend = backend
        self.error = firewall_error
        self.free = free
        self.read_only = {str(tree / path.lstrip("/")) for path in read_only}

    def call(self, name: str) -> int:
        return self.calls.get(name, 0)

    def python_module(self, name: str) -> bool:
        return name not in self.missing_modules

    def library(self, soname: str) -> bool:
        return soname in self.libraries

    def command(self, name: str) -> str | None:
        return f"/usr/sbin/{name}" if name in self.commands else None

    def firewall_backend(self) -> str:
        return self.backend

    def firewall_preference(self) -> str:
        return "auto"

    def firewall_error(self, backend: str) -> str | None:
        return self.error

    def free_bytes(self, path: str) -> int:
        return self.free

    def writable(self, path: str) -> bool:
        return path not in self.read_only and super().writable(path)


def _write(tree: Path, path: str, text: str = "", mode: int = 0o644) -> None:
    target = tree / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    target.chmod(mode)


def healthy_tree(tree: Path, cgroup: str = "v2") -> Path:
    """A host with everything skiff needs, its cgroups in ``cgroup`` mode (v1, v2, hybrid)."""
    _write(tree, "/proc/sys/kernel/osrelease", "6.8.0-45-generic\n")
    for name in ("mnt", "uts", "ipc", "pid", "net", "cgroup", "user", "time"):
        _write(tree, f"/proc/self/ns/{name}")
    _write(tree, "/proc/sys/user/max_user_namespaces", "15000\n")
    _write(tree, "/proc/filesystems", "nodev\tsysfs\nnodev\tproc\n\text4\nnodev\toverlay\n")
    _write(tree, "/proc/self/status", "Name:\tpython3\nCapEff:\t000001ffffffffff\nSeccomp:\t0\n")
    _write(tree, "/proc/sys/kernel/seccomp/actions_avail", "kill_process kill_thread trap errno user_notif trace "
                                                          "log allow\n")
    _write(tree, "/proc/cgroups", PROC_CGROUPS)
    _write(tree, "/proc/sys/net/ipv4/ip_forward", "1\n")
    _write(tree, "/proc/sys/net/ipv4/conf/default/route_localnet", "0\n")
    _write(tree, "/etc/subuid", "root:100000:65536\n")
    _write(tree, "/etc/subgid", "root:100000:65536\n")
    _write(tree, "/usr/bin/tini-static", "", 0o755)
    cgroups = "/sys/fs/cgroup"
    if cgroup == "v2":
        _v2_root(tree, cgroups)
    else:
        for name in CONTROLLERS_V1:
            _write(tree, f"{cgroups}/{name}/cgroup.procs")
        _write(tree, f"{cgroups}/systemd/cgroup.procs")
        if cgroup == "hybrid":
            _write(tree, f"{cgroups}/unified/cgroup.controllers", "\n")
            _write(tree, f"{cgroups}/unified/cgroup.subtree_control", "\n")
    return tree


def _v2_root(tree: Path, cgroups: str, offered: str = "cpuset cpu io memory hugetlb pids rdma misc",
             enabled: str = "cpuset cpu io memory hugetlb pids") -> None:
    _write(tree, f"{cgroups}/cgroup.controllers", offered + "\n")
    _write(tree, f"{cgroups}/cgroup.subtree_control", enabled + "\n")
    _write(tree, f"{cgroups}/cgroup.procs", "1\n")


def check(host: Host) -> dict[str, Result]:
    return {result.name: result for result in run_checks(host)}


def not_ok(results: dict[str, Result]) -> dict[str, str]:
    return {name: result.status for name, result in results.items() if result.status != OK}


# --- healthy hosts, one per cgroup mode ---------------------------------------------------------


@pytest.mark.parametrize("mode", ["v2", "v1", "hybrid"])
def test_a_healthy_host_is_ok_on_every_line(tmp_path: Path, mode: str) -> None:
    results = check(FakeHost(healthy_tree(tmp_path, mode)))
    assert not_ok(results) == {}
    assert passed(results.values())
    assert results["cgroup.mode"].detail.startswith(mode)
    expected = {"root", "kernel", "namespace.pid", "userns.max_user_namespaces", "cgroup.mode", "cgroup.memory",
                "cgroup.delegation", "device-filter", "overlay", "overlay.userns", "openat2", "mount_setattr",
                "idmapped-mounts", "seccomp", "firewall", "libnftables", "net.ipv4.ip_forward", "route_localnet",
                "subuid", "subgid", "disk", "python.seccomp", "tini"}
    assert expected <= set(results)
    assert all(result.fix == "" for result in results.values())


def test_v1_lists_the_v1_controllers_and_v2_the_v2_ones(tmp_path: Path) -> None:
    v1 = check(FakeHost(healthy_tree(tmp_path / "v1", "v1")))
    v2 = check(FakeHost(healthy_tree(tmp_path / "v2", "v2")))
    assert {"cgroup.devices", "cgroup.freezer", "cgroup.blkio", "cgroup.cpuacct"} <= set(v1)
    assert "cgroup.io" in v2 and "cgroup.devices" not in v2 and "cgroup.blkio" not in v2
    assert "unused" in v1["device-filter"].detail and "unused" not in v2["device-filter"].detail


# --- cgroups ------------------------------------------------------------------------------------


def test_no_cgroup_filesystem_fails(tmp_path: Path) -> None:
    tree = healthy_tree(tmp_path, "v2")
    for name in ("cgroup.controllers", "cgroup.subtree_control", "cgroup.procs"):
        (tree / "sys/fs/cgroup" / name).unlink()
    results = check(FakeHost(tree))
    assert results["cgroup.mode"].status == FAIL
    assert "mount -t cgroup2" in results["cgroup.mode"].fix
    assert not passed(results.values())


def test_v1_without_the_devices_controller_fails(tmp_path: Path) -> None:
    tree = healthy_tree(tmp_path, "v1")
    (tree / "sys/fs/cgroup/devices/cgroup.procs").unlink()
    results = check(FakeHost(tree))
    assert not_ok(results) == {"cgroup.devices": FAIL}
    assert "mount -t cgroup -o devices" in results["cgroup.devices"].fix


def test_v1_without_memory_warns_and_says_how_to_mount_or_enable_it(tmp_path: Path) -> None:
    tree = healthy_tree(tmp_path, "v1")
    (tree / "sys/fs/cgroup/memory/cgroup.procs").unlink()
    results = check(FakeHost(tree))
    assert not_ok(results) == {"cgroup.memory": WARN}
    assert "-m," in results["cgroup.memory"].detail
    assert "mount -t cgroup -o memory" in results["cgroup.memory"].fix
    assert passed(results.values())
    # disabled on the kernel command line: /proc/cgroups says enabled 0
    _write(tree, "/proc/cgroups", PROC_CGROUPS.replace("memory\t4\t1\t1", "memory\t0\t1\t0"))
    assert "cgroup_enable=memory" in check(FakeHost(tree))["cgroup.memory"].fix


def test_hybrid_controller_held_by_the_v2_tree_warns(tmp_path: Path) -> None:
    tree = healthy_tree(tmp_path, "hybrid")
    (tree / "sys/fs/cgroup/hugetlb/cgroup.procs").unlink()
    _write(tree, "/sys/fs/cgroup/unified/cgroup.controllers", "hugetlb\n")
    _write(tree, "/sys/fs/cgroup/unified/cgroup.subtree_control", "hugetlb\n")
    result = check(FakeHost(tree))["cgroup.hugetlb"]
    assert result.status == WARN and "v2 tree" in result.detail
    assert result.fix.startswith("echo -hugetlb > /sys/fs/cgroup/unified/cgroup.subtree_control")


def test_v2_controller_the_kernel_does_not_offer_warns(tmp_path: Path) -> None:
    tree = healthy_tree(tmp_path, "v2")
    _v2_root(tree, "/sys/fs/cgroup", offered="cpuset cpu io hugetlb pids", enabled="cpuset cpu io hugetlb pids")
    _write(tree, "/proc/cgroups", PROC_CGROUPS.replace("memory\t4\t1\t1", "memory\t0\t1\t0"))
    results = check(FakeHost(tree))
    assert not_ok(results) == {"cgroup.memory": WARN}
    assert "cgroup_enable=memory" in results["cgroup.memory"].fix


def test_v2_controller_not_yet_in_subtree_control_is_enabled_by_skiff(tmp_path: Path) -> None:
    tree = healthy_tree(tmp_path, "v2")
    _v2_root(tree, "/sys/fs/cgroup", enabled="cpu io pids")
    results = check(FakeHost(tree))
    assert not_ok(results) == {}
    assert "skiff enables it in /sys/fs/cgroup/cgroup.subtree_control" in results["cgroup.memory"].detail
    assert results["cgroup.cpu"].detail == "enabled in subtree_control"


def test_v2_cgroup_with_processes_cannot_delegate_controllers(tmp_path: Path) -> None:
    """A container's cgroup namespace: the tree's top is not the real root (it has cgroup.type) and
    holds processes, so the kernel refuses to enable controllers below it."""
    tree = healthy_tree(tmp_path, "v2")
    _v2_root(tree, "/sys/fs/cgroup", enabled="")
    _write(tree, "/sys/fs/cgroup/cgroup.type", "domain\n")
    results = check(FakeHost(tree))
    assert not_ok(results) == {name: WARN for name in ("cgroup.cpu", "cgroup.cpuset", "cgroup.io", "cgroup.memory",
                                                        "cgroup.pids", "cgroup.hugetlb")}
    assert "no internal processes" in results["cgroup.memory"].detail
    assert results["cgroup.memory"].fix.startswith("move them to a child cgroup: mkdir /sys/fs/cgroup/init")


def test_v2_existing_parent_without_the_controller_is_checked_too(tmp_path: Path) -> None:
    tree = healthy_tree(tmp_path, "v2")
    _write(tree, "/sys/fs/cgroup/skiff/cgroup.controllers", "cpuset cpu io memory hugetlb pids\n")
    _write(tree, "/sys/fs/cgroup/skiff/cgroup.subtree_control", "cpu\n")
    _write(tree, "/sys/fs/cgroup/skiff/cgroup.type", "domain\n")
    _write(tree, "/sys/fs/cgroup/skiff/cgroup.procs", "4242\n")
    results = check(FakeHost(tree))
    assert results["cgroup.cpu"].status == OK
    assert results["cgroup.memory"].status == WARN and "/sys/fs/cgroup/skiff holds processes" in \
        results["cgroup.memory"].detail


def test_cgroup_delegation(tmp_path: Path) -> None:
    tree = healthy_tree(tmp_path, "v2")
    read_only = ("/sys/fs/cgroup", "/sys/fs/cgroup/cgroup.subtree_control")
    as_root = check(FakeHost(tree, read_only=read_only))["cgroup.delegation"]
    assert as_root.status == FAIL and "read-only" in as_root.detail and "--privileged" in as_root.fix
    as_user = check(FakeHost(tree, euid=1000, user="alice", read_only=read_only))["cgroup.delegation"]
    assert as_user.status == WARN and "uid 1000 may not write /sys/fs/cgroup" in as_user.detail


def test_hybrid_delegation_counts_the_v2_tree_too(tmp_path: Path) -> None:
    """On a hybrid host a container also joins its directory in the v2 tree."""
    tree = healthy_tree(tmp_path, "hybrid")
    result = check(FakeHost(tree, read_only=("/sys/fs/cgroup/unified",)))["cgroup.delegation"]
    assert result.status == FAIL and result.detail.startswith("/sys/fs/cgroup/unified is read-only")


# --- the kernel ---------------------------------------------------------------------------------


@pytest.mark.parametrize("release, status", [("5.10.0-28-amd64", FAIL), ("4.19.0", FAIL), ("6.1.0-13-amd64", WARN),
                                             ("5.12.0", WARN), ("6.6.0", OK), ("junk", FAIL)])
def test_kernel_version(tmp_path: Path, release: str, status: str) -> None:
    tree = healthy_tree(tmp_path)
    _write(tree, "/proc/sys/kernel/osrelease", release + "\n")
    results = check(FakeHost(tree))
    assert results["kernel"].status == status
    assert not_ok(results).keys() <= {"kernel"}
    if status == FAIL and release != "junk":
        assert "5.12" in results["kernel"].detail and "upgrade" in results["kernel"].fix


@pytest.mark.parametrize("namespace, status", [("cgroup", FAIL), ("pid", FAIL), ("net", FAIL), ("user", WARN),
                                               ("time", WARN)])
def test_a_missing_namespace_type(tmp_path: Path, namespace: str, status: str) -> None:
    tree = healthy_tree(tmp_path)
    (tree / "proc/self/ns" / namespace).unlink()
    results = check(FakeHost(tree))
    assert not_ok(results) == {f"namespace.{namespace}": status}
    assert "CONFIG_" in results[f"namespace.{namespace}"].fix


def test_user_namespaces_disabled(tmp_path: Path) -> None:
    tree = healthy_tree(tmp_path)
    _write(tree, "/proc/sys/user/max_user_namespaces", "0\n")
    _write(tree, "/proc/sys/kernel/unprivileged_userns_clone", "0\n")
    _write(tree, "/proc/sys/kernel/apparmor_restrict_unprivileged_userns", "1\n")
    results = check(FakeHost(tree))
    assert not_ok(results) == {"userns.max_user_namespaces": WARN, "userns.unprivileged_clone": WARN,
                               "userns.apparmor": WARN}
    assert results["userns.max_user_namespaces"].fix == "sysctl -w user.max_user_namespaces=15000"
    assert results["userns.unprivileged_clone"].fix == "sysctl -w kernel.unprivileged_userns_clone=1"
    assert "kernel.apparmor_restrict_unprivileged_userns=0" in results["userns.apparmor"].fix
    assert passed(results.values())   # skiff runs as root: only rootless use needs them


def test_user_namespace_knobs_that_are_not_there_give_no_line(tmp_path: Path) -> None:
    results = check(FakeHost(healthy_tree(tmp_path)))
    assert "userns.unprivileged_clone" not in results and "userns.apparmor" not in results
    tree = healthy_tree(tmp_path)
    _write(tree, "/proc/sys/kernel/unprivileged_userns_clone", "1\n")
    assert check(FakeHost(tree))["userns.unprivileged_clone"].status == OK


def test_no_overlay_in_proc_filesystems_fails(tmp_path: Path) -> None:
    tree = healthy_tree(tmp_path)
    _write(tree, "/proc/filesystems", "nodev\tsysfs\nnodev\tproc\n\text4\n")
    results = check(FakeHost(tree))
    assert not_ok(results) == {"overlay": FAIL}
    assert "CONFIG_OVERLAY_FS" in results["overlay"].fix
    assert not passed(results.values())
    # the module is there but not loaded: the first mount loads it
    (tree / "lib/modules/6.8.0-45-generic/kernel/fs/overlayfs").mkdir(parents=True)
    results = check(FakeHost(tree))
    assert results["overlay"].status == WARN and results["overlay"].fix.startswith("modprobe overlay")


def test_no_overlay_in_a_user_namespace_warns(tmp_path: Path) -> None:
    tree = healthy_tree(tmp_path)
    _write(tree, "/proc/sys/kernel/osrelease", "5.10.0-28-amd64\n")
    results = check(FakeHost(tree, calls={"overlay_in_userns": errno.EPERM}))
    assert results["overlay.userns"].status == WARN
    assert results["overlay.userns"].fix == "Linux 5.11 or later"
    assert "EPERM" in results["overlay.userns"].detail


@pytest.mark.parametrize("call, code, status, fix", [
    ("openat2", errno.ENOSYS, FAIL, "Linux 5.6 or later"),
    ("mount_setattr", errno.ENOSYS, FAIL, "Linux 5.12 or later"),
    ("mount_setattr", errno.EPERM, FAIL, "a seccomp filter or LSM refuses mount_setattr"),
    ("idmapped_mounts", errno.EINVAL, WARN, "put the skiff root on a filesystem with idmapped mounts"),
    ("idmapped_mounts", errno.ENOSYS, WARN, "Linux 5.12 or later"),
])
def test_a_missing_or_refused_system_call(tmp_path: Path, call: str, code: int, status: str, fix: str) -> None:
    results = check(FakeHost(healthy_tree(tmp_path), calls={call: code}))
    name = {"idmapped_mounts": "idmapped-mounts"}.get(call, call)
    assert not_ok(results) == {name: status}
    assert results[name].fix.startswith(fix)
    assert errno.errorcode[code] in results[name].detail


def test_system_calls_without_root_are_not_failures_of_the_kernel(tmp_path: Path) -> None:
    calls = {"mount_setattr": errno.EPERM, "idmapped_mounts": errno.EPERM, "device_filter": errno.EPERM}
    results = check(FakeHost(healthy_tree(tmp_path), euid=1000, user="alice", calls=calls))
    assert results["root"].status == FAIL
    for name in ("mount_setattr", "idmapped-mounts", "device-filter", "firewall"):
        assert results[name].status == WARN and results[name].fix == "run skiff check as root"


@pytest.mark.parametrize("mode, status", [("v2", FAIL), ("v1", WARN)])
def test_no_ebpf_device_filter(tmp_path: Path, mode: str, status: str) -> None:
    results = check(FakeHost(healthy_tree(tmp_path, mode), calls={"device_filter": errno.EINVAL}))
    assert not_ok(results) == {"device-filter": status}
    assert "CONFIG_CGROUP_BPF" in results["device-filter"].fix


def test_seccomp(tmp_path: Path) -> None:
    tree = healthy_tree(tmp_path)
    _write(tree, "/proc/self/status", "Name:\tpython3\nCapEff:\t000001ffffffffff\n")
    results = check(FakeHost(tree))
    assert not_ok(results) == {"seccomp": FAIL} and "CONFIG_SECCOMP" in results["seccomp"].fix
    tree = healthy_tree(tmp_path)
    (tree / "proc/sys/kernel/seccomp/actions_avail").unlink()
    assert not_ok(check(FakeHost(tree))) == {"seccomp": FAIL}


# --- network ------------------------------------------------------------------------------------


def test_forwarding_off(tmp_path: Path) -> None:
    tree = healthy_tree(tmp_path)
    _write(tree, "/proc/sys/net/ipv4/ip_forward", "0\n")
    results = check(FakeHost(tree))
    assert not_ok(results) == {"net.ipv4.ip_forward": WARN}   # skiff turns it on itself, as Docker does
    assert results["net.ipv4.ip_forward"].fix.startswith("sysctl -w net.ipv4.ip_forward=1")
    results = check(FakeHost(tree, read_only=("/proc/sys/net/ipv4/ip_forward",)))
    assert not_ok(results) == {"net.ipv4.ip_forward": FAIL}


def test_route_localnet(tmp_path: Path) -> None:
    tree = healthy_tree(tmp_path)
    results = check(FakeHost(tree, read_only=("/proc/sys/net/ipv4/conf/default/route_localnet",)))
    assert not_ok(results) == {"route_localnet": FAIL}
    (tree / "proc/sys/net/ipv4/conf/default/route_localnet").unlink()
    assert not_ok(check(FakeHost(tree))) == {"route_localnet": FAIL}


def test_no_firewall_at_all_fails(tmp_path: Path) -> None:
    results = check(FakeHost(healthy_tree(tmp_path), libraries=(), commands=("ps",)))
    assert not_ok(results) == {"firewall": FAIL, "libnftables": WARN}
    assert results["firewall"].fix.startswith("apt-get install nftables")


def test_firewall_installed_but_refusing_fails(tmp_path: Path) -> None:
    results = check(FakeHost(healthy_tree(tmp_path), firewall_error="Error: Could not process rule: No such file\n"))
    assert not_ok(results) == {"firewall": FAIL}
    assert "refuses: Error: Could not process rule" in results["firewall"].detail
    assert "modprobe nf_tables" in results["firewall"].fix


def test_nft_binary_or_iptables_alone(tmp_path: Path) -> None:
    tree = healthy_tree(tmp_path)
    nft_only = check(FakeHost(tree, libraries=()))
    assert not_ok(nft_only) == {"libnftables": WARN}
    assert nft_only["libnftables"].fix == "apt-get install libnftables1"
    iptables = check(FakeHost(tree, libraries=(), commands=("iptables-restore", "ps"), backend="iptables"))
    assert iptables["firewall"].status == OK and iptables["firewall"].detail.startswith("iptables")


# --- the rest of the host -----------------------------------------------------------------------


def test_not_root_fails(tmp_path: Path) -> None:
    results = check(FakeHost(healthy_tree(tmp_path), euid=1000, user="alice"))
    assert results["root"].status == FAIL and "sudo" in results["root"].fix
    assert not passed(results.values())


def test_root_without_capabilities_fails(tmp_path: Path) -> None:
    tree = healthy_tree(tmp_path)
    # CAP_SYS_ADMIN (21) and CAP_NET_ADMIN (12) dropped, as in a container without --privileged
    effective = 0x1FFFFFFFFFF & ~(1 << 21) & ~(1 << 12)
    _write(tree, "/proc/self/status", f"Name:\tpython3\nCapEff:\t{effective:016x}\nSeccomp:\t0\n")
    results = check(FakeHost(tree))
    assert not_ok(results) == {"root": FAIL}
    assert "CAP_SYS_ADMIN, CAP_NET_ADMIN" in results["root"].detail


def test_no_subuid_range(tmp_path: Path) -> None:
    tree = healthy_tree(tmp_path)
    _write(tree, "/etc/subuid", "alice:100000:65536\nbob:165536:65536\n")
    (tree / "etc/subgid").unlink()
    results = check(FakeHost(tree))
    assert not_ok(results) == {"subuid": WARN, "subgid": WARN}
    assert results["subuid"].fix == "usermod --add-subuids 231072-296607 --add-subgids 231072-296607 root"
    assert "no /etc/subgid" in results["subgid"].detail


def test_small_subuid_range_warns_and_a_uid_number_counts(tmp_path: Path) -> None:
    tree = healthy_tree(tmp_path)
    _write(tree, "/etc/subuid", "1000:100000:1000\n")
    _write(tree, "/etc/subgid", "alice:100000:65536\n")
    results = check(FakeHost(tree, euid=1000, user="alice"))
    assert results["subuid"].status == WARN and "1000 ids for alice" in results["subuid"].detail
    assert results["subgid"].status == OK and results["subgid"].detail == "alice: 100000-165535"


@pytest.mark.parametrize("free, status", [(100 << 20, FAIL), (1 * GiB, WARN), (3 * GiB, OK)])
def test_free_space_under_the_skiff_root(tmp_path: Path, free: int, status: str) -> None:
    results = check(FakeHost(healthy_tree(tmp_path), free=free))
    assert results["disk"].status == status
    assert str(tmp_path / "var/lib/skiff") in results["disk"].detail


def test_runtime_pieces(tmp_path: Path) -> None:
    tree = healthy_tree(tmp_path)
    (tree / "usr/bin/tini-static").unlink()
    results = check(FakeHost(tree, missing_modules=("seccomp", "rich"), commands=("nft", "iptables-restore")))
    assert not_ok(results) == {"python.seccomp": FAIL, "python.rich": WARN, "tini": WARN, "ps": WARN}
    assert "python3-seccomp" in results["python.seccomp"].fix
    assert results["tini"].fix == "apt-get install tini"


def test_a_probe_that_breaks_is_a_failed_line_and_the_others_still_run(tmp_path: Path) -> None:
    class Broken(FakeHost):
        def free_bytes(self, path: str) -> int:
            raise OSError(errno.EIO, "Input/output error")

    results = check(Broken(healthy_tree(tmp_path)))
    assert results["disk"].status == FAIL and "Input/output error" in results["disk"].detail
    assert results["tini"].status == OK
    with pytest.raises(OSError):
        host = Broken(healthy_tree(tmp_path))
        host.debug = True
        run_checks(host)


# --- what the command prints --------------------------------------------------------------------


def test_the_text_is_aligned_with_each_fix_under_its_line(tmp_path: Path) -> None:
    from skiff.cli.check import render

    results = [Result("root", OK, "uid 0"), Result("net.ipv4.ip_forward", WARN, "off", "sysctl -w x=1"),
               Result("overlay", FAIL, "none", "modprobe overlay")]
    assert render(results).splitlines() == [
        "ok    root                 uid 0",
        "warn  net.ipv4.ip_forward  off",
        "                           fix: sysctl -w x=1",
        "fail  overlay              none",
        "                           fix: modprobe overlay",
        "1 ok, 1 warn, 1 fail: skiff cannot run containers here",
    ]


def test_json_is_a_list_of_name_status_detail_fix(tmp_path: Path) -> None:
    results = run_checks(FakeHost(healthy_tree(tmp_path), calls={"openat2": errno.ENOSYS}))
    document = json.loads(json.dumps([result._asdict() for result in results]))
    assert all(list(entry) == ["name", "status", "detail", "fix"] for entry in document)
    assert {entry["status"] for entry in document} <= {OK, WARN, FAIL}
    assert [entry for entry in document if entry["name"] == "openat2"][0]["status"] == FAIL


def test_the_host_reads_under_its_root(tmp_path: Path) -> None:
    tree = healthy_tree(tmp_path)
    host = FakeHost(tree)
    assert host.sysctl("net.ipv4.ip_forward") == "1"
    assert host.sysctl("net.ipv4.no_such_knob") is None
    assert host.shown(str(tree / "sys/fs/cgroup")) == "/sys/fs/cgroup"
    assert not host.real and Host("/var/lib/skiff").real
    assert os.path.isdir(host.path("/proc/self"))


def test_only_skiff_check_imports_the_probes() -> None:
    """Start-up time is a feature: ``run`` never loads ``check``'s module, and even the full parser
    (``skiff --help``) loads only its argparse part, not the probes."""
    import subprocess
    import sys

    code = ("import sys\nfrom skiff.cli.main import build_parser\nbuild_parser('run')\n"
            "assert 'skiff.cli.check' not in sys.modules\nbuild_parser(None)\n"
            "assert 'skiff.cli.check' in sys.modules\n"
            "print(sorted(m for m in sys.modules if m == 'skiff.check' or m.startswith('skiff.check.')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout == "[]\n"
