"""Container events: Docker's attributes of a container event, and the events that go with
a container's start and end (``network connect``, ``volume mount``, ``die``...).

The log itself (writing, rotation, reading, following) is skiff.events, which the image,
volume and network stores write to as well; ``emit``, ``read`` and ``follow`` are
re-exported here for the engine's callers.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterator

from skiff.events import Event, Matcher, Position, emit, follow, read
from skiff.paths import Paths


def container_attributes(data: dict[str, Any], **extra: str) -> dict[str, str]:
    """Docker's attributes of a container event: its labels, ``image`` (as given) and ``name``."""
    config = data.get("Config") or {}
    attrs = {str(k): str(v) for k, v in (config.get("Labels") or {}).items()}
    attrs["image"] = str(config.get("Image") or data.get("Image") or "")
    attrs["name"] = str(data.get("Name") or "").lstrip("/")
    attrs.update(extra)
    return attrs


def emit_container(paths: Paths, data: dict[str, Any], action: str, **extra: str) -> None:
    """An event about the container whose record is ``data`` (``die`` with exitCode=, ``kill`` with signal=)."""
    emit(paths, "container", action, str(data.get("Id") or ""), container_attributes(data, **extra))


def _networks(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(id, name, driver) of each network the container is on; none and host by their mode."""
    settings = (data.get("NetworkSettings") or {}).get("Networks") or {}
    if settings:
        return [(str(net.get("NetworkID") or name), name, "bridge") for name, net in settings.items()]
    mode = str((data.get("HostConfig") or {}).get("NetworkMode") or "")
    if mode in ("none", "host"):
        return [(mode, mode, "null" if mode == "none" else "host")]
    return []


def _volume_mounts(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in data.get("Mounts") or [] if m.get("Type") == "volume" and m.get("Name")]


def emit_attached(paths: Paths, data: dict[str, Any]) -> None:
    """Before ``start``: Docker's ``network connect`` of each network, ``volume mount`` of each volume."""
    cid = str(data.get("Id") or "")
    for nid, name, driver in _networks(data):
        emit(paths, "network", "connect", nid, {"container": cid, "name": name, "type": driver})
    for mount in _volume_mounts(data):
        emit(paths, "volume", "mount", mount["Name"], {
            "container": cid, "destination": str(mount.get("Destination") or ""),
            "driver": str(mount.get("Driver") or "local"), "propagation": str(mount.get("Propagation") or ""),
            "read/write": "true" if mount.get("RW", True) else "false"})


def emit_died(paths: Paths, data: dict[str, Any], exit_code: int, oom: bool = False,
              released: bool = True) -> None:
    """The container's process ended: ``oom`` (if the kernel killed it), ``die`` with its
    exitCode, then ``network disconnect`` and ``volume unmount`` as its resources go."""
    if oom:
        emit_container(paths, data, "oom")
    emit_container(paths, data, "die", exitCode=str(exit_code))
    if released:  # not when a restart policy starts it again at once: it keeps them
        emit_released(paths, data)


def emit_released(paths: Paths, data: dict[str, Any]) -> None:
    """``network disconnect`` and ``volume unmount``: alone when the command never ran (Docker
    reports no ``die`` for a start that failed)."""
    cid = str(data.get("Id") or "")
    for nid, name, driver in _networks(data):
        emit(paths, "network", "disconnect", nid, {"container": cid, "name": name, "type": driver})
    for mount in _volume_mounts(data):
        emit(paths, "volume", "unmount", mount["Name"],
             {"container": cid, "driver": str(mount.get("Driver") or "local")})


__all__ = ["Event", "Position", "container_attributes", "emit", "emit_attached", "emit_container", "emit_died",
           "emit_released", "follow", "read", "stream"]


def stream(paths: Paths, include: Matcher | None, since_ns: int | None, until_ns: int | None,
           keep_going: Callable[[], bool] | None = None) -> Iterator[Event]:
    """Docker's events (``skiff events``, ``GET /events``): with ``since`` or ``until``, the recorded
    ones in that window first; then new ones as they come, until ``until`` (forever without one)."""
    position = None
    if since_ns is not None or until_ns is not None:
        past, position = read(paths, since_ns, until_ns, include)
        yield from past
    if until_ns is not None and until_ns <= time.time_ns():
        return
    yield from follow(paths, include, until_ns, position, keep_going)
