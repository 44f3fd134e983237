"""``skiff version``, ``info``, ``system df`` and ``system prune``: the documents and the work.

The documents have Docker 20.10's Engine API shape (``GET /version``, ``/info``,
``/system/df``), so ``--format`` templates written for Docker read them. skiff has no
daemon: what Docker's "Server" describes (the engine, its storage, its runtimes) is the
skiff library itself acting on the root it was given; ``GoVersion`` carries the Python
version that runs it ("python3.11.2") where Docker's carries Go's.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from skiff.paths import Paths

if TYPE_CHECKING:
    from skiff.engine.containers import Container
    from skiff.engine.engine import Engine
    from skiff.engine.filters import FilterArgs, Predicate

API_VERSION = "1.41"      # the Engine API of Docker 20.10, whose behaviour skiff follows
MIN_API_VERSION = "1.12"
RUNTIME_NAME = "skiff-oci"  # the runtime core: in-process for skiff, a runc-compatible command for others
INIT_BINARY = "/usr/bin/tini-static"
# Go's GOARCH for the machine names Python reports.
_GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le",
            "s390x": "s390x", "riscv64": "riscv64"}
# Docker's names for the filesystem under its data root (graphdriver.FsNames, the common ones).
_BACKING_FS = {"ext2": "extfs", "ext3": "extfs", "ext4": "extfs", "xfs": "xfs", "btrfs": "btrfs",
               "tmpfs": "tmpfs", "zfs": "zfs", "overlay": "overlayfs", "f2fs": "f2fs", "nfs": "nfs",
               "nfs4": "nfs", "squashfs": "squashfs", "fuse": "fuse"}


def _skiff_version() -> str:
    from skiff import __version__

    return __version__


def python_version() -> str:
    """Where Docker reports the Go version it was built with: the Python that runs skiff."""
    return f"python{platform.python_version()}"


def go_arch() -> str:
    machine = platform.machine()
    return _GO_ARCH.get(machine, machine)


# --- version --------------------------------------------------------------------------


def version_document() -> dict[str, Any]:
    """``docker version``'s document: the client, and the engine as its "Server"."""
    version, kernel = _skiff_version(), platform.release()
    client = {
        "Platform": {"Name": ""}, "Version": version, "ApiVersion": API_VERSION,
        "DefaultAPIVersion": API_VERSION, "GitCommit": "", "GoVersion": python_version(), "Os": "linux",
        "Arch": go_arch(), "BuildTime": "", "Context": "default", "Experimental": False,
    }
    engine = {"Name": "Engine", "Version": version, "Details": {
        "ApiVersion": API_VERSION, "Arch": go_arch(), "BuildTime": "", "Experimental": "false", "GitCommit": "",
        "GoVersion": python_version(), "KernelVersion": kernel, "MinAPIVersion": MIN_API_VERSION, "Os": "linux"}}
    components = [engine, {"Name": RUNTIME_NAME, "Version": version, "Details": {"GitCommit": ""}}]
    init = init_version()
    if init is not None:
        components.append({"Name": "docker-init", "Version": init, "Details": {"GitCommit": ""}})
    server = {
        "Platform": {"Name": "skiff (no daemon: the engine library)"}, "Components": components,
        "Version": version, "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "GitCommit": "",
        "GoVersion": python_version(), "Os": "linux", "Arch": go_arch(), "KernelVersion": kernel,
        "BuildTime": "",
    }
    return {"Client": client, "Server": server}


def init_version() -> str | None:
    """tini's version (what ``--init`` runs, as docker-init), None when it is not installed."""
    if not os.access(INIT_BINARY, os.X_OK):
        return None
    import subprocess

    try:
        out = subprocess.run([INIT_BINARY, "--version"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    words = out.split()  # "tini version 0.19.0 - git.de40ad0"
    return words[2] if len(words) > 2 and words[:2] == ["tini", "version"] else ""


# --- info -------------------------------------------------------------------------------


def info_document(paths: Paths) -> dict[str, Any]:
    """``docker info``'s document (the server part; the CLI adds ``ClientInfo``)."""
    from skiff.engine import containers as records
    from skiff.engine.stats import host_memory_bytes
    from skiff.image.store import ImageStore

    from skiff.engine.state import Status

    states = [c.state.status for c in records.all_containers(paths)]
    running = sum(s in (Status.RUNNING, Status.RESTARTING) for s in states)
    paused = states.count(Status.PAUSED)
    caps = _cgroup_capabilities()
    os_release = _os_release()
    init = init_version()
    return {
        "ID": engine_id(paths),
        "Containers": len(states), "ContainersRunning": running, "ContainersPaused": paused,
        "ContainersStopped": len(states) - running - paused,
        "Images": len(ImageStore(paths).list()),
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", backing_filesystem(paths.root)], ["Supports d_type", "true"],
                         ["Native Overlay Diff", "true"], ["userxattr", "false"]],
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"], "Authorization": None,
                    "Log": ["json-file"]},
        **{key: caps[key] for key in ("MemoryLimit", "SwapLimit")},
        "KernelMemory": False, "KernelMemoryTCP": False,  # skiff ignores them, as kernels >= 5.16 do
        **{key: caps[key] for key in ("CpuCfsPeriod", "CpuCfsQuota", "CPUShares", "CPUSet", "PidsLimit")},
        "IPv4Forwarding": _read("/proc/sys/net/ipv4/ip_forward") == "1",
        "BridgeNfIptables": _read("/proc/sys/net/bridge/bridge-nf-call-iptables") == "1",
        "BridgeNfIp6tables": _read("/proc/sys/net/bridge/bridge-nf-call-ip6tables") == "1",
        "Debug": False, "NFd": len(os.listdir("/proc/self/fd")), "OomKillDisable": caps["OomKillDisable"],
        "NGoroutines": _thread_count(), "SystemTime": _system_time(), "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs", "CgroupVersion": caps["CgroupVersion"], "NEventsListener": 0,
        "KernelVersion": platform.release(),
        "OperatingSystem": os_release.get("PRETTY_NAME", "Linux"), "OSVersion": os_release.get("VERSION_ID", ""),
        "OSType": "linux", "Architecture": platform.machine(),
        "IndexServerAddress": "https://index.docker.io/v1/", "RegistryConfig": _registry_config(),
        "NCPU": len(os.sched_getaffinity(0)), "MemTotal": host_memory_bytes(), "GenericResources": None,
        "DockerRootDir": str(paths.root),
        "HttpProxy": _proxy("HTTP_PROXY"), "HttpsProxy": _proxy("HTTPS_PROXY"), "NoProxy": _proxy("NO_PROXY"),
        "Name": platform.node(), "Labels": [], "ExperimentalBuild": False, "ServerVersion": _skiff_version(),
        "Runtimes": {RUNTIME_NAME: {"path": RUNTIME_NAME}}, "DefaultRuntime": RUNTIME_NAME,
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": False,
                  "Error": "", "RemoteManagers": None},
        # No daemon holds the containers: each has its own monitor, so they outlive any skiff command.
        "LiveRestoreEnabled": True,
        "Isolation": "",
        "InitBinary": "docker-init" if init is not None else "",
        "ContainerdCommit": {"ID": "", "Expected": ""},  # no containerd: the runtime core is in-process
        "RuncCommit": {"ID": "", "Expected": ""},
        "InitCommit": {"ID": "", "Expected": ""},
        # Every container gets Docker's default seccomp profile and its own cgroup namespace.
        "SecurityOptions": ["name=seccomp,profile=default", "name=cgroupns"],
        "Warnings": _warnings(caps) or None,
    }


def engine_id(paths: Paths) -> str:
    """A stable id for this host and root, in Docker's form (12 groups of 4 base32 characters).

    Docker derives it from a key it writes at start; skiff writes nothing to answer
    ``info``, so the id comes from the machine id and the root's path.
    """
    import base64
    import hashlib

    machine = _read("/etc/machine-id") or platform.node()
    digest = hashlib.sha256(f"{machine}\0{paths.root}".encode()).digest()[:30]
    text = base64.b32encode(digest).decode()
    return ":".join(text[i:i + 4] for i in range(0, 48, 4))


def backing_filesystem(path: Path) -> str:
    """Docker's name for the filesystem that holds ``path`` (from the mount table)."""
    from skiff import mountinfo

    mount = mountinfo.containing(path if path.exists() else path.parent)
    fstype = mount.fstype if mount is not None else "unknown"
    return _BACKING_FS.get(fstype, fstype)


def _cgroup_capabilities() -> dict[str, Any]:
    """What the host's cgroups can limit, as Docker's sysinfo finds it."""
    from skiff.cgroups import detect

    setup = detect()
    if setup.mode == "v2":
        root = setup.unified or "/sys/fs/cgroup"
        controllers = set((_read(os.path.join(root, "cgroup.subtree_control")) or
                           _read(os.path.join(root, "cgroup.controllers")) or "").split())
        has = controllers.__contains__
        swap = any(Path(root).glob("*/memory.swap.max")) or has("memory")
        return {"CgroupVersion": "2", "MemoryLimit": has("memory"), "SwapLimit": bool(swap) and has("memory"),
                "CpuCfsPeriod": has("cpu"), "CpuCfsQuota": has("cpu"), "CPUShares": has("cpu"),
                "CPUSet": has("cpuset"), "PidsLimit": has("pids"), "OomKillDisable": False}
    mounts = {c: h.mountpoint for h in setup.v1 for c in h.controllers}
    memory, cpu = mounts.get("memory"), mounts.get("cpu")
    return {
        "CgroupVersion": "1", "MemoryLimit": memory is not None,
        "SwapLimit": memory is not None and os.path.exists(f"{memory}/memory.memsw.limit_in_bytes"),
        "CpuCfsPeriod": cpu is not None and os.path.exists(f"{cpu}/cpu.cfs_period_us"),
        "CpuCfsQuota": cpu is not None and os.path.exists(f"{cpu}/cpu.cfs_quota_us"),
        "CPUShares": cpu is not None and os.path.exists(f"{cpu}/cpu.shares"),
        "CPUSet": "cpuset" in mounts, "PidsLimit": "pids" in mounts,
        "OomKillDisable": memory is not None and os.path.exists(f"{memory}/memory.oom_control"),
    }


def _warnings(caps: dict[str, Any]) -> list[str]:
    """Docker's warnings for limits the host cannot enforce."""
    texts = (("MemoryLimit", "No memory limit support"), ("SwapLimit", "No swap limit support"),
             ("CpuCfsQuota", "No cpu cfs quota support"), ("CpuCfsPeriod", "No cpu cfs period support"),
             ("CPUShares", "No cpu shares support"), ("CPUSet", "No cpuset support"))
    return [f"WARNING: {text}" for key, text in texts if not caps[key]]


def _registry_config() -> dict[str, Any]:
    from skiff.errors import SkiffError
    from skiff.registry.config import RegistryConfig

    try:
        config = RegistryConfig.load()
        insecure, mirrors = sorted(config.insecure), list(config.mirrors)
    except SkiffError:
        insecure, mirrors = [], []
    # Docker lists a named insecure registry as an IndexConfig that is not Secure. skiff, unlike
    # Docker, does not take loopback registries as insecure (see registry.config): no CIDRs.
    indexes = {"docker.io": {"Name": "docker.io", "Mirrors": mirrors, "Secure": True, "Official": True}}
    for host in insecure:
        indexes[host] = {"Name": host, "Mirrors": [], "Secure": False, "Official": False}
    return {
        "AllowNondistributableArtifactsCIDRs": [], "AllowNondistributableArtifactsHostnames": [],
        "InsecureRegistryCIDRs": [], "IndexConfigs": indexes, "Mirrors": mirrors,
    }


def _os_release() -> dict[str, str]:
    found: dict[str, str] = {}
    for line in (_read("/etc/os-release") or "").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            found[key] = value.strip().strip('"')
    return found


def _thread_count() -> int:
    import threading

    return threading.active_count()


def _system_time() -> str:
    """RFC 3339 with nanoseconds, in local time, as Go's time.Now() marshals."""
    now = time.time_ns()
    seconds, nanos = divmod(now, 1_000_000_000)
    local = time.localtime(seconds)
    offset = time.strftime("%z", local)
    zone = "Z" if offset == "+0000" else f"{offset[:3]}:{offset[3:]}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", local) + f".{nanos:09d}".rstrip("0").rstrip(".") + zone


def _proxy(name: str) -> str:
    """The proxy setting skiff's registry client uses, with a password hidden as Docker hides it."""
    value = os.environ.get(name) or os.environ.get(name.lower()) or ""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
    except ValueError:
        return value
    if parts.password:
        return value.replace(f":{parts.password}@", ":xxxxx@", 1)
    return value


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


# --- system df ----------------------------------------------------------------------------


class DiskUsage(NamedTuple):
    """``GET /system/df``: sizes in bytes; the CLI formats them."""

    layers_size: int
    images: list[dict[str, Any]]
    containers: list[dict[str, Any]]
    volumes: list[dict[str, Any]]


def disk_usage(paths: Paths) -> DiskUsage:
    from skiff.engine import containers as records
    from skiff.image.store import ImageStore

    images = ImageStore(paths).list()
    found = sorted(records.all_containers(paths), key=lambda c: c.data["Created"], reverse=True)
    users = records.image_users(paths)
    layer_images: dict[str, int] = {}
    layer_size: dict[str, int] = {}
    for image in images:
        for layer in image.layers:
            layer_images[layer.diff_id] = layer_images.get(layer.diff_id, 0) + 1
            layer_size[layer.diff_id] = layer.size
    image_rows = []
    for image in images:
        shared = sum(layer.size for layer in image.layers if layer_images[layer.diff_id] > 1)
        image_rows.append({"Id": image.id, "RepoTags": image.repo_tags, "RepoDigests": image.repo_digests,
                           "Created": image.created, "Size": image.size, "SharedSize": shared,
                           "VirtualSize": image.size, "Containers": len(users.get(image.id, [])),
                           "Labels": (image.config or {}).get("Labels") or {}})
    container_rows = [{"Container": c, "SizeRw": container_size(c)} for c in found]
    return DiskUsage(sum(layer_size.values()), image_rows, container_rows, _volume_usage(paths))


def container_size(container: Container) -> int:
    """Bytes the container wrote (its overlay upper dir), Docker's SizeRw.

    skiff has no separate init layer: what Docker keeps there (``etcfiles.make_mountpoints``:
    empty files, and the /etc/mtab link) is in the upper dir, and is not counted, as Docker's
    SizeRw does not count its init layer.
    """
    upper = container.bundle / "upper"
    if not upper.is_dir():
        return 0
    return apparent_size(upper) - _init_layer_bytes(upper)


def _init_layer_bytes(upper: Path) -> int:
    from skiff.engine.etcfiles import MTAB, MTAB_TARGET

    try:
        return len(MTAB_TARGET) if os.readlink(upper / "etc" / MTAB) == MTAB_TARGET else 0
    except OSError:
        return 0


def apparent_size(path: Path) -> int:
    """The lengths of the files below ``path``, a hard-linked file once, as Docker's
    directory.Size counts (not blocks: ``df`` then agrees with the bytes written). Walked by
    directory fd, never following a link, so nothing outside ``path`` is counted."""
    import stat

    total = 0
    seen: set[tuple[int, int]] = set()
    for _dirpath, dirnames, filenames, dir_fd in os.fwalk(path, follow_symlinks=False):
        for name in dirnames + filenames:
            try:
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode) or not st.st_size or (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


def _volume_usage(paths: Paths) -> list[dict[str, Any]]:
    from skiff.engine.containers import volume_users
    from skiff.volume.store import VolumeStore

    users = volume_users(paths)
    rows = []
    for volume in VolumeStore(paths).list():
        # A volume with driver options (a tmpfs, a device) is only there while mounted: unknown, as Docker's -1.
        size = apparent_size(volume.data) if not volume.needs_mount and volume.data.is_dir() else -1
        rows.append({"Volume": volume, "Size": size, "RefCount": len(users.get(volume.name, []))})
    return rows


# --- system prune -----------------------------------------------------------------------------


class PruneReport(NamedTuple):
    containers: list[str]
    networks: list[str]
    volumes: list[str]
    images: list[str]      # Docker's lines: "untagged: NAME", "deleted: sha256:..."
    reclaimed: int


def prune(paths: Paths, all_images: bool, volumes: bool, args: FilterArgs) -> PruneReport:
    """Stopped containers, unused networks, (unused volumes,) dangling (or unused) images, those
    the filters (skiff.engine.filters.FilterArgs) take; each kind's own filter keys, as Docker's
    daemon checks them, are checked before anything goes."""
    from skiff.engine import Engine
    from skiff.engine import filters

    take_container = filters.container_prune_filter(args)
    take_network = filters.network_prune_filter(args)
    take_volume = filters.volume_prune_filter(args) if volumes else None
    take_image, every_image = filters.image_prune_filter(args, all_images)

    engine = Engine(paths)
    sizes = {c.id: container_size(c) for c in engine.containers(all_=True)
             if c.state.stopped}
    removed_containers = engine.prune(take_container)
    reclaimed = sum(sizes.get(cid, 0) for cid in removed_containers)
    networks = prune_networks(engine, take_network)
    removed_volumes: list[str] = []
    if take_volume is not None:
        removed_volumes, freed = prune_volumes(paths, take_volume)
        reclaimed += freed
    lines, freed = prune_images(paths, every_image, take_image)
    return PruneReport(removed_containers, networks, removed_volumes, lines, reclaimed + freed)


def prune_networks(engine: Engine, include: Predicate) -> list[str]:
    from skiff.network import NetworkManager

    manager = NetworkManager(engine.paths)
    engine.release_orphaned_networks(manager)  # a killed run's lease must not pin a network
    return manager.prune_networks(include=include)


def prune_volumes(paths: Paths, include: Predicate) -> tuple[list[str], int]:
    """Docker 20.10 prunes every unused local volume, named ones too."""
    from skiff.engine.containers import all_containers, volume_users
    from skiff.volume.driver import reconcile
    from skiff.volume.store import VolumeStore

    users = volume_users(paths)
    reconcile(paths, [c.id for c in all_containers(paths)])
    return VolumeStore(paths).prune(users, all=True, include=include)


def prune_images(paths: Paths, every_image: bool, include: Predicate) -> tuple[list[str], int]:
    from skiff.image.store import ImageStore

    from skiff.engine import images

    tags = {image.id: image.repo_tags for image in ImageStore(paths).list()}
    deleted, freed = images.prune(paths, all_images=every_image, include=include)
    lines = []
    for image_id in deleted:
        lines += [f"untagged: {tag}" for tag in tags.get(image_id, [])]
        lines.append(f"deleted: {image_id}")
    return lines, freed
