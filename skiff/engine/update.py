"""``skiff update``: new resource limits or a new restart policy for an existing container.

As Docker 20.10's daemon: the requested values are checked on their own first (a value
below 6MB, a memory limit under the reservation asked for with it: the message alone),
then against what the container has (a memory limit above its memory+swap limit without a
new ``--memory-swap``, ``--cpu-period`` once ``--cpus`` is set: ``Cannot update container
ID: ...``). Only the limits given change.

The container record's ``HostConfig.Resources`` (OCI ``linux.resources``) is the source of
truth: it is updated, and ``start`` builds the cgroup from it. A running or paused
container's cgroup changes at once through the runtime core's update (as ``skiff-oci
update``), and its bundle's config.json too, which the monitor reuses when the restart
policy restarts it. The flags in ``SkiffOptions`` follow, so the record stays consistent.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

from skiff.engine import containers as records
from skiff.engine.containers import Container
from skiff.engine.state import Status
from skiff.errors import CgroupError, Conflict, SkiffError
from skiff.paths import Paths

# Container states whose cgroup exists and takes the new limits now (Docker: running, paused;
# not restarting, whose next start reads the record).
_LIVE = (Status.RUNNING, Status.PAUSED)


class UpdateRequest:
    """What ``skiff update`` asked for, parsed and checked once for every container named."""

    def __init__(self, flags: Mapping[str, str | None], restart: str | None) -> None:
        from skiff.engine.resources import resources_from_flags
        from skiff.engine.lifecycle import parse_restart_policy

        self.flags = {key: str(value) for key, value in flags.items() if value not in (None, "")}
        # a flag's text for each of resources_from_flags' keywords (**: mypy checks a dict against all of them)
        given: dict[str, Any] = self.flags
        self.resources: dict[str, Any] = resources_from_flags(**given, update=True) if given else {}
        if (self.resources.get("blockIO") or {}).get("weight"):
            _check_blkio_weight()
        self.restart = restart
        self.policy = parse_restart_policy(restart) if restart else None


def update_container(paths: Paths, container: Container, request: UpdateRequest) -> None:
    """Apply ``request`` to the container: its live cgroup first, then its record and bundle.

    Nothing is written when a check or the cgroup refuses the change (Docker restores the
    old HostConfig then).
    """
    with records.locked(container) as c:
        host_config = c.data["HostConfig"]
        options = c.data.get("SkiffOptions")
        options = options if isinstance(options, dict) else {}  # an older record: its flags are unknown
        current = host_config.get("Resources") or {}
        saved_flags = dict(options.get("resources") or {})
        _check_against_current(c.id, request, current, saved_flags)
        if request.policy is not None and host_config.get("AutoRemove") and request.policy["Name"] != "no":
            raise _cannot(c.id, "Restart policy cannot be updated because AutoRemove is enabled for the container")
        merged = merge_resources(current, request.resources)
        change = live_change(merged, request)
        if request.resources and c.state.status in _LIVE:
            _update_cgroup(paths, c, change)
        if request.resources:
            host_config["Resources"] = merged
            options["resources"] = _merged_flags(saved_flags, request.flags, current)
            _update_bundle(c, change)
        if request.policy is not None:
            host_config["RestartPolicy"] = request.policy
            options["restart"] = request.restart


def merge_resources(current: Mapping[str, Any], change: Mapping[str, Any]) -> dict[str, Any]:
    """``current`` with each section of ``change`` laid over it, key by key."""
    merged = copy.deepcopy(dict(current))
    for section, values in change.items():
        if isinstance(values, dict) and isinstance(merged.get(section), dict):
            merged[section].update(values)
        else:
            merged[section] = copy.deepcopy(values)
    return merged


def live_change(merged: Mapping[str, Any], request: UpdateRequest) -> dict[str, Any]:
    """What to write into the running container's cgroup: the sections the request changes,
    the memory one whole (limit, swap and reservation as they now stand), so the kernel gets
    the same memory+swap limit now as at the next start (cgroup v2 writes swap apart from
    memory, as memory.swap.max = swap - limit)."""
    change = copy.deepcopy(request.resources)
    if "memory" in change:
        change["memory"] = copy.deepcopy(dict(merged.get("memory") or {}))
    return change


def _check_against_current(cid: str, request: UpdateRequest, current: Mapping[str, Any],
                           saved_flags: Mapping[str, Any]) -> None:
    """Docker's container.UpdateContainer checks: the request against what the container has."""
    asked = request.flags
    has_nano = bool(saved_flags.get("cpus"))
    if asked.get("cpus") and saved_flags.get("cpu_period") or asked.get("cpu_period") and has_nano:
        raise _cannot(cid, "Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set")
    if asked.get("cpus") and saved_flags.get("cpu_quota") or asked.get("cpu_quota") and has_nano:
        raise _cannot(cid, "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set")
    memory = request.resources.get("memory") or {}
    if "limit" in memory and "swap" not in memory:
        # Docker compares with the container's MemorySwap: 0 (no -m), -1 (unlimited) or bytes.
        current_swap = int((current.get("memory") or {}).get("swap") or 0)
        if memory["limit"] > current_swap:
            raise _cannot(cid, "Memory limit should be smaller than already set memoryswap limit, "
                               "update the memoryswap at the same time")


def _update_cgroup(paths: Paths, container: Container, change: dict[str, Any]) -> None:
    from skiff.runtime import Runtime

    try:
        Runtime(paths.runtime_state).update(container.id, change)
    except (SkiffError, OSError) as exc:
        raise _cannot(container.id, str(exc)) from None


def _update_bundle(container: Container, change: Mapping[str, Any]) -> None:
    """The bundle's config.json, which a restart by the monitor reuses as it is."""
    from skiff.store import read_json, write_json

    path = container.bundle / "config.json"
    config = read_json(path)
    if not isinstance(config, dict):
        return  # never started, or removed at its exit: the next start writes it from the record
    linux = config.setdefault("linux", {})
    linux["resources"] = merge_resources(linux.get("resources") or {}, change)
    write_json(path, config, durable=False)


def _merged_flags(saved: Mapping[str, Any], asked: Mapping[str, str], current: Mapping[str, Any]) -> dict[str, Any]:
    """The container's resource flags after the update, as if it had been created with them.

    A new ``-m`` keeps the memory+swap limit the container had (Docker does not apply its
    double-the-memory default again), so that is written out as ``memory_swap``.
    """
    merged = {**saved, **asked}
    if "memory" in asked and "memory_swap" not in asked:
        swap = (current.get("memory") or {}).get("swap")
        merged["memory_swap"] = str(swap) if swap else None
    return merged


def _check_blkio_weight() -> None:
    """Refuse --blkio-weight where the host cannot weigh I/O, as ``run`` does, for every container
    (a stopped one would otherwise fail at its next start). Docker warns and drops the weight."""
    import os

    from skiff.cgroups import detect

    setup = detect()
    if setup.mode == "v2":
        with open(os.path.join(setup.unified or "/sys/fs/cgroup", "cgroup.controllers")) as f:
            supported = "io" in f.read().split()
    else:
        blkio = [h.mountpoint for h in setup.v1 if "blkio" in h.controllers]
        supported = bool(blkio) and os.path.exists(os.path.join(blkio[0], "blkio.weight"))
    if not supported:
        raise CgroupError("--blkio-weight is not supported on this host: the blkio cgroup has no blkio.weight "
                          "file (the kernel's I/O scheduler does not do weights)")


def _cannot(cid: str, reason: str) -> Conflict:
    return Conflict(f"Cannot update container {cid}: {reason}")

