"""Pure logic of ``cp`` (Docker's copy rules), ``history`` rows and ``push``'s manifests and
progress messages: no root, no kernel."""

from __future__ import annotations

import json

import pytest

from skiff.engine.copying import (CopyError, CopyInfo, prepare_copy, rebase_name, split_argument,
                                  split_path_dir_entry)


@pytest.mark.parametrize("arg, expected", [
    ("box:/etc/passwd", ("box", "/etc/passwd")), ("box:rel", ("box", "rel")), ("/abs:x", ("", "/abs:x")),
    ("./box:x", ("", "./box:x")), ("file", ("", "file")), ("-", ("", "-")), ("box:", ("box", "")),
])
def test_split_argument(arg: str, expected: tuple[str, str]) -> None:
    assert split_argument(arg) == expected


@pytest.mark.parametrize("path, expected", [
    ("/a/b", ("/a", "b")), ("/a/b/", ("/a", "b")), ("/a/b/.", ("/a/b", ".")), ("/", ("/", "/")),
    ("b", (".", "b")),
])
def test_split_path_dir_entry(path: str, expected: tuple[str, str]) -> None:
    assert split_path_dir_entry(path) == expected


def test_prepare_copy_follows_dockers_table() -> None:
    file, directory = CopyInfo("/src/f", True, False), CopyInfo("/src/d", True, True)
    assert prepare_copy(file, CopyInfo("/dst", True, True)) == ("/dst", None)          # into a directory
    assert prepare_copy(directory, CopyInfo("/dst", True, True)) == ("/dst", None)
    assert prepare_copy(file, CopyInfo("/dst/x", True, False)) == ("/dst", "x")        # over a file
    assert prepare_copy(directory, CopyInfo("/dst/new")) == ("/dst", "new")            # a new directory
    assert prepare_copy(file, CopyInfo("/dst/new")) == ("/dst", "new")                 # a new file
    with pytest.raises(CopyError, match="^cannot copy directory$"):
        prepare_copy(directory, CopyInfo("/dst/x", True, False))
    with pytest.raises(CopyError, match="^no such directory$"):
        prepare_copy(file, CopyInfo("/dst/new/"))
    # -L renamed the source: its entry takes the link's name in an existing directory
    assert prepare_copy(CopyInfo("/data/f", True, False, "lnk"), CopyInfo("/out", True, True)) == ("/out", "lnk")


def test_rebase_name_keeps_what_the_user_asked() -> None:
    assert rebase_name("/data/lnk", "/data/f") == ("/data/f", "lnk")
    assert rebase_name("/data/lnk/.", "/data/sub") == ("/data/sub/.", "")
    assert rebase_name("/data/same", "/other/same") == ("/other/same", "")


def test_history_rows_as_docker_shows_them() -> None:
    from skiff.cli.authoring import history_row

    entry = {"Id": "sha256:" + "ab" * 32, "Created": 1_700_000_000, "CreatedBy": "/bin/sh -c\t" + "x" * 60,
             "Size": 2_129_920, "Comment": "c", "Tags": ["a:1", "b:2"]}
    row = history_row(entry, now=1_700_000_000 + 3 * 86400)
    assert row["ID"] == "ab" * 6 and row["CreatedSince"] == "3 days ago" and row["Size"] == "2.13MB"
    assert len(row["CreatedBy"]) == 45 and row["CreatedBy"].endswith("…") and "\t" not in row["CreatedBy"]
    assert row["Tags"] == "a:1, b:2"
    raw = history_row({**entry, "Id": "<missing>"}, human=False, trunc=False)
    assert raw["ID"] == "<missing>" and raw["Size"] == "2129920" and raw["CreatedSince"] == raw["CreatedAt"]
    assert raw["CreatedBy"] == "/bin/sh -c " + "x" * 60


def _image(media_types: list[str]) -> object:
    from skiff.image.store import Image, LayerInfo

    layers = [LayerInfo(f"sha256:{i:064x}", f"sha256:{i + 100:064x}", 10 + i, 20, media)
              for i, media in enumerate(media_types)]
    return Image("sha256:" + "c" * 64, [], {}, "", [], 0, layers, {}, [])


def test_push_manifest_family_follows_the_stored_layers() -> None:
    from skiff.registry import manifest as mf
    from skiff.registry.pusher import build_manifest, manifests_for

    oci = _image(["application/vnd.oci.image.layer.v1.tar+gzip", "application/vnd.oci.image.layer.v1.tar"])
    offers = manifests_for(oci, b"{}", [])  # type: ignore[arg-type]
    assert [m.media_type for m in offers] == [mf.OCI_MANIFEST, mf.DOCKER_MANIFEST]
    document = json.loads(offers[0].body)
    assert document["config"] == {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                                  "digest": "sha256:" + "c" * 64}
    docker = json.loads(offers[1].body)
    assert [layer["mediaType"] for layer in docker["layers"]] == [
        "application/vnd.docker.image.rootfs.diff.tar.gzip", "application/vnd.docker.image.rootfs.diff.tar"]
    pulled = _image(["application/vnd.docker.image.rootfs.diff.tar.gzip"])
    assert manifests_for(pulled, b"{}", [])[0].media_type == mf.DOCKER_MANIFEST  # type: ignore[arg-type]
    # the manifest it came with, byte for byte, when it still describes it
    original = json.dumps({"schemaVersion": 2, "mediaType": mf.DOCKER_MANIFEST,
                           "config": {"digest": "sha256:" + "c" * 64},
                           "layers": [{"digest": f"sha256:{100:064x}"}]}).encode()
    assert manifests_for(pulled, b"{}", [b"not json", original])[0].body == original  # type: ignore[arg-type]
    zstd = _image(["application/vnd.oci.image.layer.v1.tar+zstd"])
    assert build_manifest(zstd, b"{}", "docker") is not None  # type: ignore[arg-type]
    foreign = _image(["application/x-unknown"])
    assert build_manifest(foreign, b"{}", "oci") is None  # type: ignore[arg-type]


def test_push_progress_is_dockers_json() -> None:
    from skiff.api.push import PushReporter

    sent: list[dict[str, object]] = []
    reporter = PushReporter(sent.append, clock=lambda: 0.0)
    reporter.header("The push refers to repository [h/r]")
    reporter.layer_waiting("abc", 100)
    reporter.layer_note("abc", "Preparing")
    reporter.layer_bytes("abc", 100)
    reporter.layer_status("abc", "Pushed", final=True)
    reporter.pushed("1", "sha256:d", 527)
    assert sent[0] == {"status": "The push refers to repository [h/r]"}
    assert sent[1] == {"status": "Preparing", "progressDetail": {}, "id": "abc"}
    assert sent[2]["status"] == "Pushing" and sent[2]["progressDetail"] == {"current": 100, "total": 100}
    assert sent[3] == {"status": "Pushed", "progressDetail": {}, "id": "abc"}
    assert sent[4:] == [{"status": "1: digest: sha256:d size: 527"},
                        {"progressDetail": {}, "aux": {"Tag": "1", "Digest": "sha256:d", "Size": 527}}]


def test_chunked_upload_resumes_from_the_registrys_offset(monkeypatch: pytest.MonkeyPatch) -> None:
    """PATCH chunks with their Content-Range; a chunk the registry fails is sent again from the
    offset it reports (GET of the upload: ``Range: 0-N``); the closing PUT carries the digest."""
    import httpx

    from skiff.image.reference import parse_reference
    from skiff.registry import pusher
    from skiff.registry.client import RegistryClient
    from skiff.registry.config import RegistryConfig
    from skiff.registry.progress import Reporter

    monkeypatch.setattr(pusher, "CHUNK_SIZE", 10)
    data = bytes(range(35))
    received = bytearray()
    seen: list[str] = []
    failed = [False]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.headers.get('content-range', '')}")
        if request.method == "PATCH":
            start = int(request.headers["content-range"].split("-")[0])
            assert start == len(received)
            if start == 10 and not failed[0]:
                failed[0] = True
                received.extend(request.content[:4])  # the registry kept part of it, then failed
                return httpx.Response(500)
            received.extend(request.content)
            return httpx.Response(202, headers={"Location": "/v2/r/blobs/uploads/u1?_state=x",
                                                "Range": f"0-{len(received) - 1}"})
        if request.method == "GET":
            return httpx.Response(204, headers={"Range": f"0-{len(received) - 1}"})
        assert request.method == "PUT" and request.url.params["digest"] == "sha256:d" and request.content == b""
        return httpx.Response(201)

    client = RegistryClient("reg.test", RegistryConfig(), transport=httpx.MockTransport(handler),
                            attempts=1, backoff_s=0, base_url="https://reg.test")
    client._pinged = True
    push = pusher._Push(None, client, parse_reference("reg.test/r:1"), None, Reporter())  # type: ignore[arg-type]
    push._chunked_upload("https://reg.test/v2/r/blobs/uploads/u1", "sha256:d", len(data),
                         lambda offset, size: data[offset:offset + size], None)
    assert bytes(received) == data
    assert seen == ["PATCH 0-9", "PATCH 10-19", "GET ", "PATCH 14-23", "PATCH 24-33", "PATCH 34-34", "PUT "]


def test_a_registry_refusing_oci_gets_docker_schema_2(tmp_path: object) -> None:
    """The manifest a registry refuses (400 MANIFEST_INVALID) is offered in the other family."""
    import httpx

    from skiff.image.reference import parse_reference
    from skiff.registry import manifest as mf
    from skiff.registry import pusher
    from skiff.registry.client import RegistryClient
    from skiff.registry.config import RegistryConfig
    from skiff.registry.progress import Reporter

    offered: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "HEAD":
            return httpx.Response(200)   # the config is there already
        assert request.method == "PUT" and request.url.path == "/v2/r/manifests/1"
        offered.append(request.headers["content-type"])
        if request.headers["content-type"] == mf.OCI_MANIFEST:
            return httpx.Response(400, json={"errors": [{"code": "MANIFEST_INVALID", "message": "oci"}]})
        return httpx.Response(201)

    class Store:
        def config_bytes(self, image_id: str) -> bytes:
            return b"{}"

        def extra_blobs(self, image_id: str) -> list[str]:
            return []

    client = RegistryClient("reg.test", RegistryConfig(), transport=httpx.MockTransport(handler), attempts=1,
                            backoff_s=0, base_url="https://reg.test")
    client._pinged = True
    image = _image([])
    push = pusher._Push(Store(), client, parse_reference("reg.test/r:1"), image, Reporter())  # type: ignore[arg-type]
    pushed = push._push_image(image, "1")  # type: ignore[arg-type]
    assert offered == [mf.OCI_MANIFEST, mf.DOCKER_MANIFEST] and pushed.media_type == mf.DOCKER_MANIFEST
