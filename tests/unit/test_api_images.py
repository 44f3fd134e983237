"""The Engine API's image, network-endpoint and progress translations (no root, no server)."""

from __future__ import annotations

from typing import Any

import pytest

from skiff.api.create import run_options
from skiff.api.errors import BadRequest, NotImplementedYet
from skiff.api.images import JSONReporter, human_size, progress_bar, pull_reference, removal_report
from skiff.engine.images import history_document
from skiff.api.networking import endpoint_settings


def test_pull_reference_joins_a_tag_or_a_digest() -> None:
    assert pull_reference("busybox", "") == "busybox"
    assert pull_reference("localhost:5000/busybox", "1.36") == "localhost:5000/busybox:1.36"
    assert pull_reference("busybox", "sha256:" + "a" * 64) == "busybox@sha256:" + "a" * 64


def test_human_size_and_progress_bar_as_docker() -> None:
    assert human_size(999) == "999B"
    assert human_size(1_234_567) == "1.235MB"
    assert progress_bar(0, 1000) == "[>" + " " * 50 + "]       0B/1kB"
    assert progress_bar(500, 1000) == "[" + "=" * 25 + ">" + " " * 25 + "]     500B/1kB"
    assert progress_bar(1000, 1000) == "[" + "=" * 50 + ">]      1kB/1kB"  # dockerd's, seen on 20.10
    assert progress_bar(36446, 700456) == "[==>" + " " * 48 + "]  36.45kB/700.5kB"


def test_reporter_sends_docker_messages_and_throttles_bytes() -> None:
    sent: list[dict[str, Any]] = []
    now = [0.0]
    reporter = JSONReporter(sent.append, clock=lambda: now[0])
    reporter.pulling("latest", "library/busybox")
    reporter.layer_waiting("had", 10)
    reporter.layer_waiting("abc", 300)
    reporter.layer_status("had", "Already exists", final=True)
    reporter.layer_bytes("abc", 100)
    reporter.layer_bytes("abc", 100)  # within the interval: not sent
    now[0] = 1.0
    reporter.layer_bytes("abc", 50)
    reporter.layer_bytes("abc", 50)  # the last bytes: always sent
    reporter.layer_status("abc", "Extracting")
    reporter.layer_status("abc", "Pull complete", final=True)
    reporter.line("Digest: sha256:x")
    statuses = [(m["status"], m.get("id"), m.get("progressDetail")) for m in sent]
    assert statuses == [
        ("Pulling from library/busybox", "latest", None),
        ("Already exists", "had", {}),
        ("Pulling fs layer", "abc", {}),
        ("Downloading", "abc", {"current": 100, "total": 300}),
        ("Downloading", "abc", {"current": 250, "total": 300}),
        ("Downloading", "abc", {"current": 300, "total": 300}),
        ("Verifying Checksum", "abc", {}),
        ("Download complete", "abc", {}),
        ("Extracting", "abc", {}),
        ("Pull complete", "abc", {}),
        ("Digest: sha256:x", None, None),
    ]


def test_removal_report() -> None:
    assert removal_report(["Untagged: busybox:latest", "Deleted: sha256:ab"]) == [
        {"Untagged": "busybox:latest"}, {"Deleted": "sha256:ab"}]


def test_history_newest_first_with_layer_sizes() -> None:
    config = {"history": [
        {"created": "2024-01-01T00:00:00Z", "created_by": "ADD file"},
        {"created": "2024-01-02T00:00:00Z", "created_by": "CMD [\"sh\"]", "empty_layer": True},
        {"created": "2024-01-03T00:00:00Z", "created_by": "RUN x", "comment": "c"}]}
    rows = history_document("sha256:id", ["a:1"], config, [10, 20])
    assert [(r["Id"], r["Size"], r["CreatedBy"], r["Tags"]) for r in rows] == [
        ("sha256:id", 20, "RUN x", ["a:1"]), ("<missing>", 0, "CMD [\"sh\"]", None),
        ("<missing>", 10, "ADD file", None)]
    assert rows[0]["Created"] == 1704240000 and rows[0]["Comment"] == "c"
    imported = history_document("sha256:id", [], {"created": "2024-01-01T00:00:00Z"}, [5])
    assert imported == [{"Comment": "", "Created": 1704067200, "CreatedBy": "", "Id": "sha256:id", "Size": 5,
                         "Tags": None}]


def test_endpoint_settings() -> None:
    assert endpoint_settings(None, "E") == (None, [])
    assert endpoint_settings({"Aliases": ["web"], "IPAMConfig": {"IPv4Address": "10.0.0.5"}}, "E") == (
        "10.0.0.5", ["web"])
    with pytest.raises(BadRequest):
        endpoint_settings({"Aliases": "web"}, "E")
    with pytest.raises(NotImplementedYet):
        endpoint_settings({"Links": ["a:b"]}, "E")
    with pytest.raises(NotImplementedYet):
        endpoint_settings({"IPAMConfig": {"IPv6Address": "fd00::5"}}, "E")


def test_create_takes_the_endpoint_of_its_network() -> None:
    body = {"Image": "busybox", "HostConfig": {"NetworkMode": "app"},
            "NetworkingConfig": {"EndpointsConfig": {"app": {"Aliases": ["db"], "IPAMConfig": {
                "IPv4Address": "10.1.0.9"}}}}}
    opts = run_options(body, None)
    assert (opts.network, opts.ip, list(opts.network_aliases)) == ("app", "10.1.0.9", ["db"])
    with pytest.raises(BadRequest, match="user defined networks"):
        run_options({"Image": "busybox", "NetworkingConfig": {"EndpointsConfig": {"bridge": {"Aliases": ["x"]}}}},
                    None)
    with pytest.raises(BadRequest, match="cannot be connected to network endpoints"):
        run_options({"Image": "busybox", "NetworkingConfig": {"EndpointsConfig": {"a": {}, "b": {}}}}, None)


@pytest.mark.parametrize("method, path, endpoint, params", [
    ("POST", "/images/create", "images.create", {}),
    ("GET", "/images/get", "images.get", {}),
    ("GET", "/images/library/busybox:1/get", "images.get", {"name": "library/busybox:1"}),
    ("DELETE", "/images/localhost:5000/team/box:v1", "images.remove", {"name": "localhost:5000/team/box:v1"}),
    ("POST", "/images/busybox/tag", "images.tag", {"name": "busybox"}),
    ("GET", "/images/sha256:ab/history", "images.history", {"name": "sha256:ab"}),
    ("POST", "/images/load", "images.load", {}),
    ("POST", "/images/prune", "images.prune", {}),
    ("POST", "/containers/prune", "prunes.containers", {}),
    ("GET", "/system/df", "prunes.disk_usage", {}),
    ("POST", "/networks/n1/connect", "networking.connect", {"id": "n1"}),
])
def test_routes(method: str, path: str, endpoint: str, params: dict[str, str]) -> None:
    from skiff.api.routes import resolve

    assert resolve(method, path) == (endpoint, params)


def test_registry_auth_header() -> None:
    import base64
    import json

    from skiff.api.images import registry_auth
    from skiff.registry.auth import Credentials

    def encoded(document: object, pad: bool = True) -> str:
        text = base64.urlsafe_b64encode(json.dumps(document).encode()).decode()
        return text if pad else text.rstrip("=")

    assert registry_auth(encoded({"username": "u", "password": "p?>", "serveraddress": "r"})) == Credentials("u", "p?>")
    assert registry_auth(encoded({"username": "u", "password": "p"}, pad=False)) == Credentials("u", "p")
    for header in ("", "e30=", encoded({"identitytoken": "t"}), "not base64 !", encoded([1])):
        assert registry_auth(header) is None
