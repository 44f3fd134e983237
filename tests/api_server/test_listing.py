"""``GET /containers/json`` (``docker ps`` through the socket): each entry has the fields of the container's
inspect document, in Docker 20.10's shape; ``size``, ``filters``, ``all`` and ``limit`` as Docker's.

The entries are built from the records (skiff.engine.summary.list_document), not from whole inspect
documents: these tests hold the two to the same values, container by container.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import quote

from tests.api_server.conftest import Service

LIST_FIELDS = ["Id", "Names", "Image", "ImageID", "Command", "Created", "Ports", "Labels", "State", "Status",
               "HostConfig", "NetworkSettings", "Mounts"]


def _get(service: Service, path: str) -> Any:
    status, _, body = service.request("GET", path)
    assert status == 200, body
    return json.loads(body)


def _listing(service: Service, query: str) -> dict[str, dict[str, Any]]:
    return {entry["Id"]: entry for entry in _get(service, f"/v1.41/containers/json?{query}")}


def _ports(settings: dict[str, Any]) -> list[dict[str, Any]]:
    """Docker's []types.Port from the inspect document's NetworkSettings.Ports."""
    found = []
    for key, bindings in (settings.get("Ports") or {}).items():
        number, _, proto = key.partition("/")
        if not bindings:
            found.append({"PrivatePort": int(number), "Type": proto})
        for binding in bindings or []:
            found.append({"IP": binding["HostIp"] or "0.0.0.0", "PrivatePort": int(number),
                          "PublicPort": int(binding["HostPort"]), "Type": proto})
    return found


def _created(stamp: str) -> int:
    head, _, rest = stamp.rstrip("Z").partition(".")
    return int(datetime.fromisoformat(head + "+00:00").timestamp())


def _expected(document: dict[str, Any]) -> dict[str, Any]:
    """The list entry Docker 20.10 gives for a container with this inspect document (Status aside)."""
    state, config = document["State"], document["Config"]
    entry: dict[str, Any] = {
        "Id": document["Id"], "Names": [document["Name"]], "Image": config["Image"], "ImageID": document["Image"],
        "Command": " ".join([document["Path"], *document["Args"]]), "Created": _created(document["Created"]),
        "Ports": _ports(document["NetworkSettings"]),
    }
    if "SizeRw" in document:
        entry.update(SizeRw=document["SizeRw"], SizeRootFs=document["SizeRootFs"])
    entry.update({
        "Labels": config["Labels"] or {}, "State": state["Status"],
        "HostConfig": {"NetworkMode": document["HostConfig"]["NetworkMode"]},
        "NetworkSettings": {"Networks": document["NetworkSettings"]["Networks"]}, "Mounts": document["Mounts"],
    })
    return entry


def test_each_entry_has_its_inspect_documents_fields(service: Service) -> None:
    docker = service.docker
    service.docker("volume", "create", "list-data")
    running = docker("run", "-d", "--name", "list-running", "--network", "none", "-l", "tier=web", "-l", "k=v",
                     "-v", "list-data:/data", "-v", "/tmp:/hosttmp:ro", "--tmpfs", "/run:size=1m",
                     "--mount", "type=tmpfs,target=/scratch", "busybox", "sleep", "600").stdout.strip()
    published = docker("run", "-d", "--name", "list-published", "-p", "127.0.0.1::80", "--expose", "53/udp",
                       "busybox", "sleep", "600").stdout.strip()
    exited = docker("run", "--name", "list-exited", "--network", "none", "-l", "tier=batch", "busybox",
                    "sh", "-c", "echo x > /f; exit 3", check=False)
    assert exited.returncode == 3
    created = docker("create", "--name", "list-created", "busybox", "true").stdout.strip()
    try:
        listed = _listing(service, "all=1&size=1")
        ids = {name: docker("inspect", "-f", "{{.Id}}", name).stdout.strip()
               for name in ("list-running", "list-published", "list-exited", "list-created")}
        assert ids["list-running"] == running and ids["list-published"] == published
        assert ids["list-created"] == created
        for name, cid in ids.items():
            document = _get(service, f"/v1.41/containers/{cid}/json?size=1")
            entry = listed[cid]
            assert list(entry) == LIST_FIELDS[:7] + ["SizeRw", "SizeRootFs"] + LIST_FIELDS[7:], name
            assert {k: v for k, v in entry.items() if k != "Status"} == _expected(document), name
        assert listed[ids["list-running"]]["Status"].startswith("Up ")
        assert listed[ids["list-exited"]]["Status"].startswith("Exited (3) ")
        assert listed[ids["list-created"]]["Status"] == "Created"
        assert listed[ids["list-exited"]]["SizeRw"] > 0  # it wrote /f
        assert sorted(m["Destination"] for m in listed[running]["Mounts"]) == ["/data", "/hosttmp", "/scratch"]
        assert listed[running]["Labels"] == {"k": "v", "tier": "web"}
        assert {(p["PrivatePort"], p["Type"]) for p in listed[published]["Ports"]} == {(80, "tcp"), (53, "udp")}
        assert [p for p in listed[published]["Ports"] if p["PrivatePort"] == 80][0]["IP"] == "127.0.0.1"
        plain = _listing(service, "")  # running only, and no sizes without size=1
        assert set(plain) >= {running, published} and not set(plain) & {ids["list-exited"], created}
        assert all("SizeRw" not in entry and list(entry) == LIST_FIELDS for entry in plain.values())
    finally:
        docker("rm", "-f", "list-running", "list-published", "list-exited", "list-created")
        docker("volume", "rm", "list-data")


def test_filters_all_and_limit(service: Service) -> None:
    docker = service.docker
    up = docker("run", "-d", "--name", "filter-up", "--network", "none", "-l", "role=a", "busybox",
                "sleep", "600").stdout.strip()
    docker("run", "--name", "filter-done", "--network", "none", "-l", "role=b", "busybox", "true")
    done = docker("inspect", "-f", "{{.Id}}", "filter-done").stdout.strip()
    try:
        def ids(query: dict[str, list[str]], extra: str = "") -> list[str]:
            return [e["Id"] for e in _get(service, "/containers/json?filters=" + quote(json.dumps(query)) + extra)]

        assert ids({"label": ["role=a"]}) == [up]
        assert ids({"label": ["role=b"]}) == []  # exited: listed only with all
        assert ids({"label": ["role=b"]}, "&all=1") == [done]
        assert ids({"status": ["exited"], "name": ["filter-"]}) == [done]  # a stopped status lists every state
        assert ids({"name": ["filter-"]}, "&all=1") == [done, up]  # newest first
        assert ids({"name": ["filter-"]}, "&limit=1") == [done]  # the newest, any state
        assert [e["Names"] for e in _get(service, "/containers/json?all=1&filters="
                                         + quote(json.dumps({"id": [up[:12]]})))] == [["/filter-up"]]
        status, _, body = service.request("GET", "/containers/json?filters=" + quote(json.dumps({"bogus": ["x"]})))
        assert status == 400 and "bogus" in json.loads(body)["message"]
    finally:
        docker("rm", "-f", "filter-up", "filter-done")
