"""The rest of the host: privileges, subordinate id ranges, free space, the pieces skiff runs with."""

from __future__ import annotations

from typing import TYPE_CHECKING

from skiff.check import FAIL, OK, WARN, Result

if TYPE_CHECKING:
    from collections.abc import Iterator

    from skiff.check.host import Host

# What skiff itself must hold: mounts, namespaces, cgroups and pivot_root; links, addresses and rules.
ADMIN_CAPS = ("CAP_SYS_ADMIN", "CAP_NET_ADMIN")
ID_RANGE = 65536            # ids an image may use: 0-65535 (as Docker's userns-remap and podman ask)
DISK_FAIL = 256 << 20       # below this a pull or a container's first write fails soon
DISK_WARN = 2 << 30


def privileges(host: Host) -> Iterator[Result]:
    if host.euid != 0:
        yield Result("root", FAIL, f"uid {host.euid}: skiff mounts, makes namespaces, cgroups and firewall rules",
                     "run skiff as root (sudo skiff ...)")
        return
    missing = missing_capabilities(host)
    if missing:
        yield Result("root", FAIL, f"root without {', '.join(missing)} (inside a container?)",
                     "run skiff on the host, or in a container started with --privileged")
    else:
        yield Result("root", OK, "uid 0 with the capabilities skiff uses and gives")


def missing_capabilities(host: Host) -> list[str]:
    """Capabilities skiff needs (ADMIN_CAPS) or hands to containers (Docker's default set) that this
    process lacks in its effective set, from /proc/self/status."""
    from skiff.runtime.spec import CAPABILITIES, DOCKER_DEFAULT_CAPS

    effective = None
    for line in (host.read("/proc/self/status") or "").splitlines():
        if line.startswith("CapEff:"):
            effective = int(line.split()[1], 16)
    if effective is None:
        return []   # no /proc to tell: the other lines say so
    wanted = [*ADMIN_CAPS, *(cap for cap in DOCKER_DEFAULT_CAPS if cap not in ADMIN_CAPS)]
    return [cap for cap in wanted if cap in CAPABILITIES and not effective >> CAPABILITIES[cap] & 1]


def id_ranges(host: Host) -> Iterator[Result]:
    """The user's subordinate uids and gids: what user namespaces of a rootless engine map to."""
    for kind in ("subuid", "subgid"):
        text = host.read(f"/etc/{kind}")
        ranges = parse_ranges(text or "", host.user, host.euid)
        size = sum(count for _, count in ranges)
        fix = f"usermod --add-subuids {suggest_range(host)} --add-subgids {suggest_range(host)} {host.user}"
        if text is None:
            yield Result(kind, WARN, f"no /etc/{kind}: user namespaces have no ids to map to", fix)
        elif not ranges:
            yield Result(kind, WARN, f"no range for {host.user} in /etc/{kind} (user-namespaced containers)", fix)
        elif size < ID_RANGE:
            yield Result(kind, WARN, f"{size} ids for {host.user}: images using ids above {size - 1} fail in a "
                         "user namespace", fix)
        else:
            first = ranges[0]
            yield Result(kind, OK, f"{host.user}: {first[0]}-{first[0] + first[1] - 1}"
                         + (f" and {len(ranges) - 1} more" if len(ranges) > 1 else ""))


def parse_ranges(text: str, user: str, uid: int) -> list[tuple[int, int]]:
    """(first id, count) of each ``name:first:count`` line for ``user`` (by name or uid number)."""
    ranges = []
    for line in text.splitlines():
        fields = line.strip().split(":")
        if len(fields) == 3 and fields[0] in (user, str(uid)) and fields[1].isdigit() and fields[2].isdigit():
            ranges.append((int(fields[1]), int(fields[2])))
    return ranges


def suggest_range(host: Host) -> str:
    """A free range of 65536 ids: after every range /etc/subuid and /etc/subgid give anyone."""
    end = 100000
    for kind in ("subuid", "subgid"):
        for line in (host.read(f"/etc/{kind}") or "").splitlines():
            fields = line.strip().split(":")
            if len(fields) == 3 and fields[1].isdigit() and fields[2].isdigit():
                end = max(end, int(fields[1]) + int(fields[2]))
    return f"{end}-{end + ID_RANGE - 1}"


def disk(host: Host) -> Iterator[Result]:
    from skiff.check.host import existing_ancestor
    from skiff.units import bytes_size

    where = existing_ancestor(host.skiff_root)
    free = host.free_bytes(where)
    fstype = host.fstype(where)
    detail = f"{bytes_size(free)} free under {host.skiff_root}" + (f" ({fstype})" if fstype else "")
    if fstype == "overlay":
        yield Result("disk", FAIL, detail + ": an overlay upper directory cannot be on overlayfs",
                     "put the skiff root on another filesystem (--root, SKIFF_ROOT; a volume in a container)")
    elif free < DISK_FAIL:
        yield Result("disk", FAIL, detail + ": pulls and containers' writes will fail",
                     "free space, or --root elsewhere")
    elif free < DISK_WARN:
        yield Result("disk", WARN, detail + ": little room for images", "free space, or --root elsewhere")
    else:
        yield Result("disk", OK, detail)


# Python modules skiff imports at run time -> (what needs it, required, the fix)
PYTHON_MODULES = {
    "seccomp": ("compiling every container's seccomp filter (libseccomp)", True,
                "apt-get install python3-seccomp, then scripts/setup (it links the binding into .venv)"),
    "httpx": ("pull, push, login", True, "scripts/setup (pip install httpx)"),
    "zstandard": ("zstd-compressed layers", False, "scripts/setup (pip install zstandard)"),
    "rich": ("pull's progress bars", False, "scripts/setup (pip install rich)"),
}


def runtime_pieces(host: Host) -> Iterator[Result]:
    from skiff.engine.system import INIT_BINARY   # what --init bind-mounts as the container's PID 1

    for module, (purpose, required, fix) in PYTHON_MODULES.items():
        name = f"python.{module}"
        if host.python_module(module):
            yield Result(name, OK, purpose)
        else:
            yield Result(name, FAIL if required else WARN, f"not found: {purpose} fails", fix)
    path = host.path(INIT_BINARY)
    if host.exists(INIT_BINARY) and host.executable(path):
        yield Result("tini", OK, f"{INIT_BINARY} for --init")
    else:
        yield Result("tini", WARN, f"no {INIT_BINARY}: run --init fails", "apt-get install tini")
    if host.command("ps"):
        yield Result("ps", OK, "for top")
    else:
        yield Result("ps", WARN, "not found: skiff top fails", "apt-get install procps")
