"""Docker's smaller run flags, checked as Docker 20.10 checks them.

``--sysctl``, ``--shm-size``, ``--oom-score-adj``, ``--mac-address``,
``--domainname``, ``--expose``, ``--group-add`` and ``--cidfile``: each parser
raises InvalidArgument with Docker's message, so ``RunPlan.make`` refuses bad
input (exit 125) before anything is created.
"""

from __future__ import annotations

import os
import re
from typing import Any, Iterable, Iterator, Mapping

from skiff.errors import InvalidArgument

DEFAULT_SHM_SIZE = 64 << 20   # Docker's daemon default for /dev/shm (67108864)
MAX_ID = (1 << 31) - 1       # runc's range for uids and gids

# Docker's client allow-list (opts.ValidateSysctl): sysctls of the ipc and network namespaces.
IPC_SYSCTLS = frozenset({"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                         "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"})
SYSCTL_PREFIXES = ("net.", "fs.mqueue.")
# Patterns are strings, compiled (and cached by re) only when a flag uses them: run's start-up time.
# A sysctl name: dotted words, nothing that could climb out of /proc/sys once dots become slashes.
_SYSCTL_NAME = r"[^/\x00.=\s]+(\.[^/\x00.=\s]+)+"
_MAC = r"([0-9A-Fa-f]{2})([:-])([0-9A-Fa-f]{2})(?:\2([0-9A-Fa-f]{2})){4}"
_MAC_DOTTED = r"([0-9A-Fa-f]{4})\.([0-9A-Fa-f]{4})\.([0-9A-Fa-f]{4})"


def _flag_error(value: str, flag: str, reason: str) -> InvalidArgument:
    return InvalidArgument(f'invalid argument "{value}" for "{flag}" flag: {reason}')


# --- --sysctl -------------------------------------------------------------------

def parse_sysctls(items: Iterable[str], network: str) -> dict[str, str]:
    """``KEY=VALUE`` pairs allowed by Docker's client; net.* also needs a network namespace of its own."""
    sysctls: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        allowed = key in IPC_SYSCTLS or key.startswith(SYSCTL_PREFIXES)
        if not sep or not allowed:
            raise _flag_error(item, "--sysctl", f"sysctl '{item}' is not whitelisted")
        if not re.fullmatch(_SYSCTL_NAME, key):
            raise _flag_error(item, "--sysctl", f"sysctl name '{key}' is not a valid name")
        if key.startswith("net.") and network == "host":
            # runc's check (the host's namespace would change); Docker 20.10 fails the start with it.
            raise InvalidArgument(f'sysctl "{key}" not allowed in host network namespace')
        sysctls[key] = value
    return sysctls


# --- --shm-size, --oom-score-adj ----------------------------------------------------

def shm_size(value: str | None) -> int:
    """Bytes of /dev/shm: Docker's size syntax (``64m``, ``1g``); absent or 0: 64 MiB."""
    if value is None or value == "":
        return DEFAULT_SHM_SIZE
    from skiff.units import ram_in_bytes

    try:
        size = ram_in_bytes(value)
    except ValueError as exc:
        raise _flag_error(value, "--shm-size", str(exc)) from None
    return size or DEFAULT_SHM_SIZE


def oom_score_adj(value: str | int | None) -> int:
    if value is None or value == "":
        return 0
    text = str(value)
    if not (text.lstrip("+-").isdigit() and len(text) - len(text.lstrip("+-")) <= 1):
        raise _flag_error(text, "--oom-score-adj", f'strconv.ParseInt: parsing "{text}": invalid syntax')
    score = int(text)
    if not -1000 <= score <= 1000:
        raise InvalidArgument(f"Invalid value {score}, range for oom score adj is [-1000, 1000]")
    return score


# --- --mac-address, --domainname ------------------------------------------------------

def mac_address(value: str | None, network: str) -> str | None:
    """An Ethernet address (Go's net.ParseMAC forms of 6 bytes) as ``aa:bb:cc:dd:ee:ff``."""
    if not value:
        return None
    match = re.fullmatch(_MAC, value)
    if match:
        mac = value.replace("-", ":").lower()
    elif re.fullmatch(_MAC_DOTTED, value):
        digits = value.replace(".", "").lower()
        mac = ":".join(digits[i:i + 2] for i in range(0, 12, 2))
    else:
        raise InvalidArgument(f"{value} is not a valid mac address")
    if int(mac[:2], 16) & 1:
        # The kernel refuses a group address on an interface; Docker fails only at start.
        raise InvalidArgument(f"{value} is not a valid mac address",
                              hint="use a unicast address: the first byte must be even (e.g. 02:...)")
    if network.startswith("container:"):
        raise InvalidArgument("conflicting options: mac-address and the network mode")
    return mac


def domainname(value: str | None) -> str:
    if value and len(value.encode()) > 64:   # the kernel's __NEW_UTS_LEN
        raise InvalidArgument(f"invalid domainname {value!r}: longer than 64 bytes")
    return value or ""


# --- --expose --------------------------------------------------------------------------

def exposed_ports(expose: Iterable[str], publish: Iterable[str],
                  image_ports: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Config.ExposedPorts as Docker builds it: the image's, the -p ports', then --expose's."""
    ports: dict[str, dict[str, Any]] = {key: {} for key in image_ports or {}}
    if publish:
        from skiff.network import parse_publish

        for spec in publish:
            for mapping in parse_publish(spec):
                ports.setdefault(f"{mapping.container_port}/{mapping.protocol}", {})
    for item in expose:
        for key in _expose(item):
            ports.setdefault(key, {})
    return ports


def _expose(item: str) -> Iterator[str]:
    """``80``, ``80/udp``, ``8000-8010/tcp``: one key per port (nat.SplitProtoPort, ParsePortRange)."""
    if ":" in item:
        raise InvalidArgument(f"invalid port format for --expose: {item}")
    parts = item.split("/")
    port, proto = parts[0], (parts[1] if len(parts) > 1 and parts[1] else "tcp")
    if proto not in ("tcp", "udp"):  # what skiff publishes (-P); Docker also takes sctp
        raise InvalidArgument(f"invalid proto: {proto}", hint=f"in --expose {item}; use tcp or udp")
    first, last = _port_range(item, port)
    for number in range(first, last + 1):
        yield f"{number}/{proto}"


def _port_range(item: str, text: str) -> tuple[int, int]:
    def number(part: str) -> int:
        if not part.isdigit():
            reason = f'strconv.ParseUint: parsing "{part}": invalid syntax'
        elif int(part) > 65535:
            reason = f'strconv.ParseUint: parsing "{part}": value out of range'
        else:
            return int(part)
        raise InvalidArgument(f"invalid range format for --expose: {item}, error: {reason}")

    if not text:
        raise InvalidArgument(f"invalid range format for --expose: {item}, error: Empty string specified for ports.")
    if "-" not in text:
        return number(text), number(text)
    start_text, _, end_text = text.partition("-")
    first, last = number(start_text), number(end_text.split("-")[0])
    if last < first:
        raise InvalidArgument(f"invalid range format for --expose: {item}, "
                              f"error: Invalid range specified for the Port: {text}")
    return first, last


# --- --group-add ---------------------------------------------------------------------------

def check_group_add(items: Iterable[str]) -> None:
    """What can be checked before the rootfs exists: empty names."""
    for item in items:
        if not item:
            raise InvalidArgument("invalid argument \"\" for \"--group-add\" flag: a group name or id is needed")


def additional_gids(groups_text: str | None, items: Iterable[str]) -> list[int]:
    """--group-add names looked up in the image's /etc/group, or numbers (runc's GetAdditionalGroups)."""
    entries = [line.split(":") for line in (groups_text or "").splitlines() if line and not line.startswith("#")]
    gids: list[int] = []
    for item in items:
        match = next((g for g in entries if len(g) >= 3 and g[0] == item and g[2].isdigit()), None)
        if match is not None:
            gid = int(match[2])
        elif item.isdigit() or (item.startswith("-") and item[1:].isdigit()):
            gid = int(item)
            if not 0 <= gid <= MAX_ID:
                raise InvalidArgument(f"group {item}: uids and gids must be in range 0-{MAX_ID}")
        else:
            raise InvalidArgument(f"Unable to find group {item}",
                                  hint="--group-add takes a group of the image's /etc/group or a number")
        if gid not in gids:
            gids.append(gid)
    return gids


# --- --cidfile ---------------------------------------------------------------------------------

class CidFile:
    """Docker's client --cidfile: made before the container, its full id written after; removed
    again if no container came of it. O_EXCL: of two runs with one file, only one gets it."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.fd: int | None = None
        self.written = False

    def __enter__(self) -> "CidFile":
        if not self.path:
            return self
        try:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except FileExistsError:
            raise InvalidArgument(f"container ID file found, make sure the other container isn't running "
                                  f"or delete {self.path}") from None
        except OSError as exc:
            raise InvalidArgument(f"Failed to create the container ID file: open {self.path}: "
                                  f"{exc.strerror}") from None
        return self

    def write(self, cid: str) -> None:
        if self.fd is None:
            return
        os.write(self.fd, cid.encode())
        self.written = True

    def __exit__(self, *exc_info: object) -> None:
        if self.fd is None:
            return
        os.close(self.fd)
        self.fd = None
        if not self.written:
            try:
                os.unlink(self.path)  # type: ignore[arg-type]
            except FileNotFoundError:
                pass
