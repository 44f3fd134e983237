"""The OCI runtime-spec config: skiff's default spec, and loading a bundle's config.json.

Validation here is what the init relies on: once ``load_config`` returns, the
config has ``process.args``, a root path that exists, and only namespace types
and capabilities the runtime knows. Everything else is checked where it is used.
"""

from __future__ import annotations

import os

from skiff.errors import BundleError

TYPE_CHECKING = False
if TYPE_CHECKING:  # create runs in a process of its own (skiff-oci): typing and pathlib cost milliseconds
    from typing import Any

OCI_VERSION = "1.0.2"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# include/uapi/linux/capability.h
CAPABILITIES: dict[str, int] = {name: number for number, name in enumerate((
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
))}

# Docker's default capability set (moby oci/caps/defaults.go).
DOCKER_DEFAULT_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]

NAMESPACE_FLAGS: dict[str, int] = {
    "pid": 0x20000000, "network": 0x40000000, "mount": 0x00020000, "ipc": 0x08000000,
    "uts": 0x04000000, "cgroup": 0x02000000, "user": 0x10000000,
}
# Known to the spec but not implemented: refuse them rather than silently share the host's.
UNSUPPORTED_NAMESPACES = {"time"}

_DEFAULT_SPEC: dict[str, Any] = {
    "ociVersion": OCI_VERSION,
    "process": {
        "terminal": False,
        "user": {"uid": 0, "gid": 0},
        "args": ["sh"],
        "env": [f"PATH={DEFAULT_PATH}", "TERM=xterm"],
        "cwd": "/",
        "capabilities": {key: list(DOCKER_DEFAULT_CAPS)
                         for key in ("bounding", "effective", "permitted")},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    },
    "root": {"path": "rootfs", "readonly": False},
    "hostname": "skiff",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    ],
    "linux": {
        "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup")],
        "maskedPaths": [
            "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
            "/sys/firmware", "/sys/devices/virtual/powercap",
        ],
        "readonlyPaths": [
            "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
        ],
    },
}


def default_spec() -> dict[str, Any]:
    """The OCI spec skiff starts from (like ``runc spec``); the caller fills in the rest."""
    import json

    return json.loads(json.dumps(_DEFAULT_SPEC))  # a deep copy without importing copy


def load_config(bundle: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check ``bundle/config.json``; the root path is made absolute."""
    from skiff.runtime.jsonlite import loads

    bundle = os.fspath(bundle)
    config_path = os.path.join(bundle, "config.json")
    try:
        with open(config_path, "rb") as f:
            config = loads(f.read().decode())
    except FileNotFoundError:
        raise BundleError(f"no config.json in bundle {bundle}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleError(f"{config_path} is not valid JSON: {exc}") from None
    except OSError as exc:
        raise BundleError(f"cannot read {config_path}: {exc.strerror}") from None
    if not isinstance(config, dict):
        raise BundleError(f"{config_path}: expected a JSON object")
    _check_process(config, config_path)
    _check_root(config, bundle, config_path)
    _check_namespaces(config, config_path)
    _check_mounts(config, config_path)
    _check_user_namespace(config, config_path)
    check_sysctls(config, config_path)
    check_security_labels(config["process"], config.get("linux", {}))
    return config


def check_process(process: Any, where: str) -> None:
    """What the init (or an exec'd process) relies on in an OCI ``process`` object."""
    if not isinstance(process, dict):
        raise BundleError(f"{where}: missing 'process'")
    args = process.get("args")
    if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
        raise BundleError(f"{where}: 'process.args' must be a non-empty list of strings")
    if not isinstance(process.get("env", []), list):
        raise BundleError(f"{where}: 'process.env' must be a list of KEY=VALUE strings")
    cwd = process.get("cwd", "/")
    if not isinstance(cwd, str) or not cwd.startswith("/"):
        raise BundleError(f"{where}: 'process.cwd' must be an absolute path, not {cwd!r}")
    user = process.get("user", {})
    if not isinstance(user, dict) or not all(isinstance(user.get(k, 0), int) for k in ("uid", "gid")):
        raise BundleError(f"{where}: 'process.user' needs numeric uid and gid")
    caps = process.get("capabilities") or {}
    for key in ("bounding", "effective", "permitted", "inheritable", "ambient"):
        capability_mask(caps.get(key) or [])


def check_security_labels(process: dict[str, Any], linux_cfg: dict[str, Any]) -> None:
    """AppArmor and SELinux fields are refused where the host has neither, not silently ignored."""
    if process.get("apparmorProfile") and not os.path.exists("/sys/kernel/security/apparmor"):
        raise BundleError(f"apparmor profile {process['apparmorProfile']!r} requested but AppArmor is not "
                          "enabled on this host")
    label = process.get("selinuxLabel") or linux_cfg.get("mountLabel")
    if label and not os.path.exists("/sys/fs/selinux/enforce"):
        raise BundleError(f"selinux label {label!r} requested but SELinux is not enabled on this host")


def check_sysctl_name(key: str) -> None:
    """A name whose dots become a path under /proc/sys and nowhere else: no '/', no empty part
    (so no '.' or '..' component), no NUL."""
    if not isinstance(key, str) or "/" in key or "\0" in key or "" in key.split("."):
        raise BundleError(f"bad sysctl name {key!r}: it must be dotted words without '/'")


def check_sysctls(config: dict[str, Any], where: str) -> None:
    """runc's rule for linux.sysctl: names only of the namespaces the container does not share
    with the host. A network namespace joined by path counts as the host's if it is ours."""
    sysctls = config["linux"].get("sysctl") or {}
    if not isinstance(sysctls, dict):
        raise BundleError(f"{where}: linux.sysctl must be an object of strings")
    namespaces = {ns["type"]: ns for ns in config["linux"]["namespaces"]}
    for key, value in sysctls.items():
        check_sysctl_name(key)
        if not isinstance(value, str):
            raise BundleError(f"{where}: linux.sysctl {key}: the value must be a string")
        if key.startswith("net."):
            net = namespaces.get("network")
            if net is None or (net.get("path") and _same_namespace(net["path"], "/proc/self/ns/net")):
                raise BundleError(f"sysctl {key!r} not allowed in host network namespace")
        elif key in UTS_SYSCTLS:
            check_uts_sysctl(key, namespaces)
        elif key.startswith("kernel.") or key.startswith("fs.mqueue."):
            if "ipc" not in namespaces:
                raise BundleError(f"sysctl {key!r} is not allowed in the hosts ipc namespace")


# The UTS namespace's sysctls, as runc takes them: kernel.domainname (no OCI field of its own) with a
# new or joined uts namespace; kernel.hostname never (the OCI "hostname" field sets it).
UTS_SYSCTLS = ("kernel.domainname", "kernel.hostname")


def check_uts_sysctl(key: str, namespaces: dict[str, dict[str, Any]]) -> None:
    """runc's words; a uts namespace joined by path that is the runtime's own counts as the host's."""
    uts = namespaces.get("uts")
    if uts is None or (uts.get("path") and _same_namespace(uts["path"], "/proc/self/ns/uts")):
        raise BundleError(f"sysctl {key!r} is not in a separate kernel namespace")
    if key == "kernel.hostname":
        raise BundleError(f"sysctl {key!r} is not allowed as it conflicts with the OCI \"hostname\" field")


def _same_namespace(path: str, other: str) -> bool:
    try:
        first, second = os.stat(path), os.stat(other)
    except OSError as exc:
        raise BundleError(f"cannot stat namespace {path}: {exc.strerror}") from None
    return (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino)


def _check_user_namespace(config: dict[str, Any], where: str) -> None:
    linux_cfg = config["linux"]
    user_ns = next((ns for ns in linux_cfg["namespaces"] if ns["type"] == "user"), None)
    for key in ("uidMappings", "gidMappings"):
        mappings = linux_cfg.get(key) or []
        for m in mappings:
            if not isinstance(m, dict) or not all(isinstance(m.get(k), int) for k in ("containerID", "hostID", "size")):
                raise BundleError(f"{where}: linux.{key} entries need integer containerID, hostID and size")
        if mappings and (user_ns is None or user_ns.get("path")):
            raise BundleError(f"{where}: linux.{key} needs a new user namespace")
    if user_ns is not None and not user_ns.get("path") and not linux_cfg.get("uidMappings"):
        raise BundleError(f"{where}: a new user namespace needs linux.uidMappings and linux.gidMappings")


def capability_mask(names: list[str]) -> int:
    mask = 0
    for name in names:
        number = CAPABILITIES.get(name.upper() if name.upper().startswith("CAP_") else f"CAP_{name.upper()}")
        if number is None:
            raise BundleError(f"unknown capability {name!r} in process.capabilities")
        mask |= 1 << number
    return mask


def _check_process(config: dict[str, Any], where: str) -> None:
    check_process(config.get("process"), where)


def _check_root(config: dict[str, Any], bundle: str, where: str) -> None:
    root = config.get("root")
    if not isinstance(root, dict) or not isinstance(root.get("path"), str):
        raise BundleError(f"{where}: missing 'root.path'")
    path = os.path.join(bundle, root["path"])  # an absolute root.path stays as it is
    if not os.path.isdir(path):
        raise BundleError(f"rootfs {path} does not exist or is not a directory")
    root["path"] = os.path.realpath(path)


def _check_namespaces(config: dict[str, Any], where: str) -> None:
    namespaces = config.setdefault("linux", {}).setdefault("namespaces", [])
    seen: set[str] = set()
    for ns in namespaces:
        kind = ns.get("type") if isinstance(ns, dict) else None
        if kind in UNSUPPORTED_NAMESPACES:
            raise BundleError(f"{where}: namespace type {kind!r} is not supported by skiff")
        if kind not in NAMESPACE_FLAGS:
            raise BundleError(f"{where}: unknown namespace type {kind!r}")
        if kind in seen:
            raise BundleError(f"{where}: namespace type {kind!r} listed twice")
        seen.add(kind)
    # Without a mount namespace the init only chroots (no mounts could stay private to it);
    # a mount namespace joined by path gets the rootfs set up inside it, as runc does.
    if (config.get("hostname") or config.get("domainname")) and not any(ns["type"] == "uts" for ns in namespaces):
        raise BundleError(f"{where}: setting hostname or domainname needs a uts namespace")


def _check_mounts(config: dict[str, Any], where: str) -> None:
    mounts = config.get("mounts", [])
    if not isinstance(mounts, list):
        raise BundleError(f"{where}: 'mounts' must be a list")
    for m in mounts:
        if not isinstance(m, dict) or not isinstance(m.get("destination"), str):
            raise BundleError(f"{where}: every mount needs a 'destination'")
        if not m["destination"].startswith("/"):
            raise BundleError(f"{where}: mount destination {m['destination']!r} must be absolute")


def process_env(process: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in process.get("env", []):
        key, sep, value = item.partition("=")
        if sep:
            env[key] = value
    return env


def state_dict(cid: str, status: str, pid: int, bundle: str, annotations: dict[str, str]) -> dict[str, Any]:
    return {"ociVersion": OCI_VERSION, "id": cid, "status": status, "pid": pid, "bundle": bundle,
            "annotations": annotations}


__all__ = ["default_spec", "load_config", "check_process", "capability_mask", "process_env", "CAPABILITIES",
           "NAMESPACE_FLAGS", "DEFAULT_PATH"]
