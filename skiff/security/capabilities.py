"""``--cap-add``, ``--cap-drop`` and ``--privileged``: the container's capability set, as Docker 20.10 makes it.

Two steps, as in Docker. ``normalize`` is the client's: names upper-cased, ``CAP_``
added where missing, duplicates dropped, sorted (``ALL`` stays ``ALL``); that is what
``HostConfig.CapAdd``/``CapDrop`` record. ``effective`` is the daemon's
(moby oci/caps.TweakCapabilities): unknown names refused; ``--privileged`` or
``--cap-add ALL`` start from every capability, ``--cap-drop ALL`` from none, else from
Docker's default set; then drops, then adds.

"Every capability" is every one the kernel knows (``cap_last_cap``) that skiff itself
holds in its bounding set: a process cannot grant what it has lost, and asking the
kernel to would fail every run on such a host (Docker's does).
"""

from __future__ import annotations

from typing import Sequence

from skiff.errors import InvalidArgument

ALL = "ALL"


def normalize(names: Sequence[str]) -> list[str]:
    """The client's step (docker/cli opts.normalizeCaps in 20.10)."""
    out = set()
    for name in names:
        name = name.strip().upper()
        out.add(name if name == ALL or name.startswith("CAP_") else f"CAP_{name}")
    return sorted(out)


def effective(adds: Sequence[str], drops: Sequence[str], privileged: bool) -> list[str]:
    """The capabilities the container's process gets (bounding, effective, permitted)."""
    from skiff.runtime.spec import DOCKER_DEFAULT_CAPS

    add = _checked(adds, "CapAdd")
    drop = _checked(drops, "CapDrop")
    if privileged:
        return available()
    if not add and not drop:
        return list(DOCKER_DEFAULT_CAPS)
    if ALL in add:
        return [c for c in available() if c not in drop]
    base = [] if ALL in drop else [c for c in DOCKER_DEFAULT_CAPS if c not in drop]
    return base + [c for c in add if c not in base]


def available() -> list[str]:
    """Every capability the kernel knows and skiff holds, in the kernel's order."""
    from skiff.runtime.spec import CAPABILITIES

    last = _read_int("/proc/sys/kernel/cap_last_cap", max(CAPABILITIES.values()))
    bounding = _bounding_set()
    return [name for name, number in CAPABILITIES.items() if number <= last and bounding >> number & 1]


def _checked(names: Sequence[str], key: str) -> list[str]:
    """Docker's daemon check: ``invalid CapAdd: unknown capability: "CAP_FOO"``."""
    from skiff.runtime.spec import CAPABILITIES

    out = normalize(names)
    for name in out:
        if name != ALL and name not in CAPABILITIES:
            raise InvalidArgument(f'invalid {key}: unknown capability: "{name}"')
    return out


def _bounding_set() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapBnd:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return ~0


def _read_int(path: str, default: int) -> int:
    try:
        with open(path) as f:
            return int(f.read())
    except (OSError, ValueError):
        return default
