"""Docker's short forms of a container: the ``Status`` text and the list entry (``types.Container``).

``ps`` shows the text in its STATUS column; the Engine API's ``GET /containers/json`` returns the
list entries, which Docker's client formats itself. Both are pure functions of the inspect
document (or its ``State``), so the CLI and the API server show the same thing; ``list_document``
builds the part of that document they read from the record, with the inspect document's own
helpers, for listings.
"""

from __future__ import annotations

import time
from typing import Any

from skiff.engine.state import Status
from skiff.timestamps import parse
from skiff.units import human_duration


def status_text(state: dict[str, Any], now: float | None = None) -> str:
    """Docker's ``State.String()``: 'Up 3 minutes', 'Up 2 hours (healthy)', 'Up 5 seconds (Paused)',
    'Restarting (1) 2 seconds ago', 'Exited (0) 2 seconds ago', 'Created', 'Removal In Progress', 'Dead'."""
    now = time.time() if now is None else now
    status = state.get("Status")
    if status == Status.PAUSED:
        return f"Up {human_duration(now - parse(state['StartedAt']))} (Paused)"
    if status == Status.RESTARTING:
        return f"Restarting ({state.get('ExitCode', 0)}) {human_duration(now - parse(state['FinishedAt']))} ago"
    if status == Status.RUNNING:
        from skiff.engine.health import status_suffix

        return f"Up {human_duration(now - parse(state['StartedAt']))}{status_suffix(state)}"
    if status == Status.EXITED:
        oom = " (OOMKilled)" if state.get("OOMKilled") else ""
        return f"Exited ({state.get('ExitCode', 0)}){oom} {human_duration(now - parse(state['FinishedAt']))} ago"
    if status == Status.REMOVING:
        return "Removal In Progress"
    return str(status or "").capitalize()  # Created, Dead (and skiff's Starting)


def container_summary(document: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """One entry of ``GET /containers/json``, in Docker 20.10's field order, from the inspect document.

    ``SizeRw``/``SizeRootFs`` appear only when the document has them (``size=1``), as Docker's
    omitempty fields.
    """
    config, host, settings = document["Config"], document["HostConfig"], document["NetworkSettings"]
    args = document.get("Args") or []
    summary: dict[str, Any] = {
        "Id": document["Id"],
        "Names": [document["Name"]],
        "Image": config.get("Image", ""),
        "ImageID": document.get("Image", ""),
        "Command": " ".join([document.get("Path", ""), *args]) if args else document.get("Path", ""),
        "Created": int(parse(document["Created"])),
        "Ports": port_list(settings.get("Ports")),
    }
    if "SizeRw" in document:
        summary["SizeRw"] = document["SizeRw"]
    if "SizeRootFs" in document:
        summary["SizeRootFs"] = document["SizeRootFs"]
    summary.update({
        "Labels": config.get("Labels") or {},
        "State": document["State"].get("Status", ""),
        "Status": status_text(document["State"], now),
        "HostConfig": {"NetworkMode": host.get("NetworkMode", "")},
        "NetworkSettings": {"Networks": settings.get("Networks") or {}},
        "Mounts": document.get("Mounts") or [],
    })
    return summary


def list_document(record: dict[str, Any], network: dict[str, Any] | None,
                  network_ids: dict[str, str]) -> dict[str, Any]:
    """The part of the inspect document that ``container_summary`` reads, built from the record.

    A listing (``docker ps`` through the API) shows a dozen fields of a document of a hundred and
    fifty: building each whole document to keep a few cost more than the rest of the request.
    Only the fields ``container_summary`` reads are made here, each the way
    ``skiff.engine.documents`` makes it (with its helpers where it derives one), so the two never
    disagree (tests/unit/test_documents.py and tests/api_server/test_listing.py compare them).
    It does not depend on the time: a long-lived process keeps it (skiff.engine.listing).
    """
    from skiff.engine.documents import ContainerFacts, mount_points, networks_document, state_document

    config = record.get("Config") or {}
    host_config = record.get("HostConfig") or {}
    name = str(record.get("Name", "")).lstrip("/")
    cid = str(record.get("Id", ""))
    path, mode, image = record.get("Path", ""), host_config.get("NetworkMode", ""), config.get("Image", "")
    networks = networks_document(cid, name, host_config.get("NetworkMode") or "bridge",
                                 record.get("NetworkSettings") or {},
                                 ContainerFacts(network=network, network_ids=network_ids),
                                 (record.get("SkiffOptions") or {}).get("ip"))
    return {
        "Id": cid, "Name": "/" + name, "Image": str(record.get("Image", "")),
        "Path": path if isinstance(path, str) else "", "Args": record.get("Args") or [],
        "Created": record["Created"], "State": state_document(record.get("State") or {}),
        "Config": {"Image": image if isinstance(image, str) else "", "Labels": config.get("Labels")},
        "HostConfig": {"NetworkMode": mode if isinstance(mode, str) else ""},
        "NetworkSettings": {"Ports": (network or {}).get("Ports"), "Networks": networks},
        "Mounts": mount_points(record.get("Mounts") or [], host_config.get("Tmpfs")),
    }


def port_list(ports: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Docker's ``[]types.Port``: one entry per host binding, the bare port when none is bound."""
    result: list[dict[str, Any]] = []
    for key, bindings in (ports or {}).items():
        number, _, proto = key.partition("/")
        if not bindings:
            result.append({"PrivatePort": int(number), "Type": proto or "tcp"})
            continue
        for binding in bindings:
            result.append({"IP": binding.get("HostIp") or "0.0.0.0", "PrivatePort": int(number),
                           "PublicPort": int(binding.get("HostPort") or 0), "Type": proto or "tcp"})
    return result
