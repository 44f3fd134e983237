"""A CDI spec for the NVIDIA GPUs of this host (``skiff cdi generate --vendor nvidia``).

What nvidia-ctk's ``cdi generate`` finds, from the host alone: the device nodes (``/dev/nvidia<N>``
per GPU, ``/dev/nvidiactl``, ``nvidia-uvm``, ``nvidia-uvm-tools``, ``nvidia-modeset``,
``/dev/nvidia-caps/*``), the GPUs by index and UUID (``nvidia-smi -L``, else
``/proc/driver/nvidia/gpus/*/information``), the driver's version (``/proc/driver/nvidia/version``),
its user-space libraries at that version (through ``ldconfig -p``), its binaries, its firmware, and
a createContainer hook that runs the host's ldconfig over the container's root so the mounted
libraries are found. Devices are named by index, by UUID, and ``all``.

``driver_root`` lets the discovery run over a fake tree (tests): every path found is a path in
that root; the spec's host paths are the root's, its container paths the driver's own.
"""

from __future__ import annotations

import glob
import os
import re
import stat
import subprocess
from typing import Any, NamedTuple

from skiff.cdi.spec import Spec, check
from skiff.errors import CDIError, DeviceError

KIND = "nvidia.com/gpu"
CDI_VERSION = "0.5.0"    # hostPath on deviceNodes
CONTROL_NODES = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset")
BINARIES = ("nvidia-smi", "nvidia-debugdump", "nvidia-persistenced", "nvidia-cuda-mps-control",
            "nvidia-cuda-mps-server")
BIN_DIRS = ("/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin")
# The driver's user-space libraries, by soname prefix (libcuda, libcudadebugger, libnvidia-ml,
# libnvidia-ptxjitcompiler, libnvidia-nvvm, ... libnvcuvid, libnvoptix): only files at the
# driver's version are taken, never a CUDA toolkit's own copies.
LIBRARY_PREFIXES = ("libcuda.", "libcudadebugger.", "libnvidia-", "libnvcuvid.", "libnvoptix.")
MOUNT_OPTIONS = ["ro", "nosuid", "nodev", "bind"]
# The ld.so cache hook: reads the container's bundle from the OCI state on stdin, runs the host's
# ldconfig chrooted into the container's root over the directories of the mounted libraries.
LDCACHE_SCRIPT = (
    'bundle=$(tr -d "\\n" | sed -n \'s/.*"bundle": *"\\([^"]*\\)".*/\\1/p\'); '
    'ldconfig=$1; shift; exec "$ldconfig" -r "$bundle/rootfs" "$@"'
)


class GPU(NamedTuple):
    number: int
    uuid: str
    minor: int


def driver_present(driver_root: str = "/") -> bool:
    return os.path.exists(_in(driver_root, "/dev/nvidiactl")) or \
        os.path.exists(_in(driver_root, "/proc/driver/nvidia/version"))


def generate(driver_root: str = "/", nvidia_smi: str | None = None, ldconfig: str | None = None) -> dict[str, Any]:
    """The spec (a dict, as JSON writes it) for the GPUs and driver under ``driver_root``."""
    if not driver_present(driver_root):
        raise DeviceError(f"no NVIDIA driver under {driver_root} (no /dev/nvidiactl, no /proc/driver/nvidia)")
    version = driver_version(driver_root)
    gpus = list_gpus(driver_root, nvidia_smi)
    devices = []
    for gpu in gpus:
        node = _node(driver_root, f"/dev/nvidia{gpu.minor}")
        own = {"deviceNodes": [node]} if node else {}
        devices.append({"name": str(gpu.number), "containerEdits": own})
        if gpu.uuid:
            devices.append({"name": gpu.uuid, "containerEdits": own})
    all_nodes = [n for gpu in gpus if (n := _node(driver_root, f"/dev/nvidia{gpu.minor}"))]
    devices.append({"name": "all", "containerEdits": {"deviceNodes": all_nodes}})
    common_nodes = [n for path in CONTROL_NODES if (n := _node(driver_root, path))]
    caps = sorted(glob.glob(_in(driver_root, "/dev/nvidia-caps/*")))
    common_nodes += [n for path in caps if (n := _node(driver_root, path[len(driver_root.rstrip("/")):]))]
    libraries = find_libraries(driver_root, version, ldconfig)
    mounts = [_mount(driver_root, path) for path in libraries]
    mounts += [_mount(driver_root, path) for path in find_binaries(driver_root)]
    firmware = f"/lib/firmware/nvidia/{version}"
    if version and os.path.isdir(_in(driver_root, firmware)):
        mounts.append(_mount(driver_root, firmware))
    edits: dict[str, Any] = {"env": ["NVIDIA_VISIBLE_DEVICES=void"], "deviceNodes": common_nodes, "mounts": mounts}
    directories = sorted({os.path.dirname(path) for path in libraries})
    host_ldconfig = _host_ldconfig()
    if directories and host_ldconfig:
        edits["hooks"] = [{"hookName": "createContainer", "path": "/bin/sh",
                           "args": ["sh", "-c", LDCACHE_SCRIPT, "skiff-ldcache", host_ldconfig, *directories],
                           "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]}]   # a hook's environment is only its own
    return {"cdiVersion": CDI_VERSION, "kind": KIND, "devices": devices, "containerEdits": edits}


def in_memory_spec(registry_dirs: list[str]) -> Spec:
    """A spec for ``--gpus`` on a host with the driver but no spec file: generated for this run
    (slower than a saved one: ``skiff cdi generate --vendor nvidia --output /etc/cdi/nvidia.json``)."""
    if not driver_present():
        where = ", ".join(registry_dirs) or "no directory"
        raise DeviceError(f'could not select device driver "" with capabilities: [[gpu]]: no CDI spec for {KIND} '
                          f"in {where} and no NVIDIA driver on this host")
    data = generate()
    check(data, "<generated for nvidia>")
    return Spec("<generated for nvidia>", data, priority=-1)


def _in(root: str, path: str) -> str:
    return path if root in ("", "/") else root.rstrip("/") + path


def _node(root: str, path: str) -> dict[str, Any] | None:
    """A deviceNodes entry for the node at ``path`` in the root (None: not there). Its type and
    numbers are left out: they are read from the host node when a container starts."""
    host = _in(root, path)
    try:
        st = os.stat(host)
    except OSError:
        return None
    if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)):
        return None
    return {"path": path, **({"hostPath": host} if host != path else {})}


def _mount(root: str, path: str) -> dict[str, Any]:
    return {"hostPath": _in(root, path), "containerPath": path, "options": list(MOUNT_OPTIONS)}


def driver_version(root: str = "/") -> str:
    """``550.54.15`` from /proc/driver/nvidia/version (or /sys/module/nvidia/version); "" unknown."""
    try:
        with open(_in(root, "/proc/driver/nvidia/version")) as f:
            match = re.search(r"Kernel Module(?:\s+for\s+\S+)?\s+([0-9]+(?:\.[0-9]+)+)", f.read())
        if match:
            return match[1]
    except OSError:
        pass
    try:
        with open(_in(root, "/sys/module/nvidia/version")) as f:
            return f.read().strip()
    except OSError:
        return ""


def list_gpus(root: str = "/", nvidia_smi: str | None = None) -> list[GPU]:
    """The GPUs by index, with UUID and device minor: nvidia-smi's order, /proc's minors."""
    proc = _proc_gpus(root)
    minors = {uuid: minor for uuid, minor in proc}
    smi = nvidia_smi or _find_binary(root, "nvidia-smi")
    listed = _nvidia_smi_list(smi) if smi else None
    if listed is not None:
        return [GPU(number, uuid, minors.get(uuid, number)) for number, uuid in listed]
    return [GPU(i, uuid, minor) for i, (uuid, minor) in enumerate(sorted(proc, key=lambda g: g[1]))]


def _nvidia_smi_list(smi: str) -> list[tuple[int, str]] | None:
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = []
    for line in out.splitlines():
        match = re.match(r"GPU (\d+): .*\(UUID: (GPU-[0-9A-Fa-f-]+)\)", line)
        if match:
            found.append((int(match[1]), match[2]))
    return found


def _proc_gpus(root: str) -> list[tuple[str, int]]:
    found = []
    for info in sorted(glob.glob(_in(root, "/proc/driver/nvidia/gpus/*/information"))):
        try:
            with open(info) as f:
                text = f.read()
        except OSError:
            continue
        uuid = re.search(r"GPU UUID:\s*(\S+)", text)
        minor = re.search(r"Device Minor:\s*(\d+)", text)
        if minor:
            found.append((uuid[1] if uuid else "", int(minor[1])))
    return found


def find_libraries(root: str, version: str, ldconfig: str | None = None) -> list[str]:
    """The driver's libraries at ``version`` (paths in the root), from ``ldconfig -p``'s cache."""
    command = [ldconfig or _host_ldconfig() or "ldconfig", "-p"]
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise CDIError(f"cannot list the driver's libraries with {command[0]} -p: {exc}") from None
    found: dict[str, None] = {}
    for line in out.splitlines():
        name, arrow, path = line.strip().partition(" => ")
        soname = name.split(" ", 1)[0]
        if not arrow or not soname.startswith(LIBRARY_PREFIXES) or "(libc6)" in name:
            continue  # not the driver's, or a 32-bit copy (compat32)
        real = os.path.realpath(_in(root, path))
        inside = real[len(root.rstrip("/")):] if root not in ("", "/") else real
        if version and not inside.endswith(f".so.{version}"):
            continue
        if os.path.isfile(real):
            found[inside] = None
    return sorted(found)


def find_binaries(root: str) -> list[str]:
    return [path for name in BINARIES if (path := _find_binary(root, name, inside=True))]


def _find_binary(root: str, name: str, inside: bool = False) -> str | None:
    for directory in BIN_DIRS:
        host = _in(root, f"{directory}/{name}")
        if os.path.isfile(host) and os.access(host, os.X_OK):
            return f"{directory}/{name}" if inside else host
    return None


def _host_ldconfig() -> str | None:
    """The host's real ldconfig (Ubuntu's /sbin/ldconfig is a shell wrapper around ldconfig.real)."""
    for path in ("/sbin/ldconfig.real", "/usr/sbin/ldconfig.real", "/sbin/ldconfig", "/usr/sbin/ldconfig"):
        if os.access(path, os.X_OK):
            return path
    return None
