"""What the container's /sys/fs/cgroup is made of, on v1, hybrid and v2 hosts (from their mount tables).

The real v1 mounts are checked in tests/oci/test_cgroup_view.py on this host; v2 and other
layouts only as far as these decisions go: which hierarchies, and bind or fresh mount for each.
"""

from __future__ import annotations

from skiff import mountinfo
from skiff.runtime.mounts import cgroup_source, host_cgroup_hierarchies

HYBRID = """\
30 23 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid shared:11 - cgroup cgroup rw,xattr,name=systemd
33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:12 - cgroup cgroup rw,cpu,cpuacct
34 30 0:30 / /sys/fs/cgroup/pids rw,nosuid shared:13 - cgroup cgroup rw,pids,release_agent=/x
"""
V2 = """\
30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate
"""


def test_a_hybrid_host_shows_its_v1_hierarchies_without_the_cgroup2_tree() -> None:
    assert host_cgroup_hierarchies(mountinfo.parse(HYBRID)) == [
        ("systemd", "cgroup", "name=systemd"), ("cpu,cpuacct", "cgroup", "cpu,cpuacct"), ("pids", "cgroup", "pids")]


def test_a_v2_host_has_no_v1_hierarchy_to_show() -> None:
    assert host_cgroup_hierarchies(mountinfo.parse(V2)) == []


def test_without_a_cgroup_namespace_only_the_containers_own_directory_is_bound() -> None:
    assert cgroup_source("pids", "/skiff/abc") == "/sys/fs/cgroup/pids/skiff/abc"
    assert cgroup_source("", "/skiff/abc") == "/sys/fs/cgroup/skiff/abc"  # v2: its cgroup2 directory


def test_in_a_cgroup_namespace_or_outside_its_root_a_fresh_mount_is_made() -> None:
    assert cgroup_source("pids", "/") is None
    assert cgroup_source("", "/") is None
    assert cgroup_source("pids", "/../../other") is None  # never followed on the host
    assert cgroup_source("pids", None) is None
