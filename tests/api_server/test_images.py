"""Images through the Engine API: the real docker CLI 20.10 (pull from the tests' registry, tag,
rmi, history, save | load, import, image prune) and raw HTTP for the status codes and the shape
of the pull's progress stream (Docker's JSON messages)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api_server.conftest import Service, UnixHTTPConnection
from tests.registry import servers
from tests.registry.images import Layout, entry, push, tar_bytes


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.Registry]:
    registry = servers.start_registry(tmp_path_factory.mktemp("registry"))
    yield registry
    registry.stop()


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.Registry]:
    """A registry that wants a user and password (basic auth, htpasswd)."""
    directory = tmp_path_factory.mktemp("auth-registry")
    registry = servers.start_registry(directory, htpasswd=servers.write_htpasswd(directory / "htpasswd"))
    yield registry
    registry.stop()


@pytest.fixture(scope="module", autouse=True)
def registry_config(tmp_path_factory: pytest.TempPathFactory, registry: servers.Registry,
                    auth_registry: servers.Registry) -> Iterator[None]:
    """The registries are insecure (plain HTTP) for the service: set before the module's service
    starts (autouse: first), whose environment is a copy of this one."""
    config = tmp_path_factory.mktemp("etc-skiff")
    (config / "registries.json").write_text(json.dumps({"insecure": [registry.host, auth_registry.host],
                                                        "mirrors": []}))
    old = os.environ.get("SKIFF_CONFIG_DIR")
    os.environ["SKIFF_CONFIG_DIR"] = str(config)
    yield
    if old is None:
        del os.environ["SKIFF_CONFIG_DIR"]
    else:
        os.environ["SKIFF_CONFIG_DIR"] = old


@pytest.fixture(scope="module")
def pushed(registry: servers.Registry, busybox_tar: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """busybox and a layer of its own in the registry: ``HOST/busybox`` with the tag ``oci``
    (busybox's layer is in the store already: "Already exists"; the other is pulled)."""
    layout = Layout(tmp_path_factory.mktemp("layout") / "oci")
    own = tar_bytes([entry("data.bin", data=os.urandom(700_000))])
    desc, _ = layout.image([busybox_tar.read_bytes(), own])
    layout.tag("busybox", [desc])
    push(layout.path, "busybox", f"{registry.host}/busybox:oci", "--dest-tls-verify=false")
    return f"{registry.host}/busybox"


def pushed_layers(registry: servers.Registry, repository: str, tag: str) -> list[str]:
    """The layer digests of a manifest as the registry holds it (skopeo may have recompressed them)."""
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(f"http://{registry.host}/v2/{repository}/manifests/{tag}", headers={
        "Accept": "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"})
    with opener.open(request, timeout=10) as response:
        return [layer["digest"] for layer in json.loads(response.read())["layers"]]


def stream_messages(body: bytes) -> list[dict[str, object]]:
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def test_docker_pull_from_the_registry(service: Service, pushed: str) -> None:
    out = service.docker("pull", f"{pushed}:oci").stdout
    assert "oci: Pulling from busybox" in out
    assert "Pull complete" in out and "Already exists" in out
    assert "Digest: sha256:" in out
    assert f"Status: Downloaded newer image for {pushed}:oci" in out
    assert out.rstrip().endswith(f"{pushed}:oci")
    assert f"{pushed}:oci" in service.skiff("images", "--format", "{{.Repository}}:{{.Tag}}").split()
    again = service.docker("pull", f"{pushed}:oci").stdout
    assert f"Status: Image is up to date for {pushed}:oci" in again


def test_pull_progress_is_docker_json_messages(service: Service, pushed: str) -> None:
    service.skiff("rmi", "-f", f"{pushed}:oci", check=False)
    status, headers, body = service.request("POST", f"/v1.41/images/create?fromImage={pushed}&tag=oci")
    assert status == 200, body
    assert headers["Content-Type"] == "application/json"
    messages = stream_messages(body)
    assert messages[0] == {"status": "Pulling from busybox", "id": "oci"}
    layer_ids = {m["id"] for m in messages if m.get("status") in ("Pulling fs layer", "Already exists")}
    assert len(layer_ids) == 2 and all(len(str(i)) == 12 for i in layer_ids)
    assert len([m for m in messages if m.get("status") == "Pulling fs layer"]) == 1  # not the layer the store has
    downloading = [m for m in messages if m.get("status") == "Downloading"]
    assert downloading and all(set(m["progressDetail"]) == {"current", "total"} for m in downloading)  # type: ignore[arg-type]
    complete = [m for m in messages if m.get("status") == "Pull complete"]
    assert len(complete) == 1 and complete[0]["progressDetail"] == {} and complete[0]["id"] in layer_ids
    assert [m["id"] for m in messages if m.get("status") == "Already exists"] == list(layer_ids - {complete[0]["id"]})
    assert str(messages[-2]["status"]).startswith("Digest: sha256:")
    assert messages[-1] == {"status": f"Status: Downloaded newer image for {pushed}:oci"}
    assert not any("error" in m for m in messages)


def test_pull_of_a_missing_image_is_an_error_status(service: Service, pushed: str) -> None:
    status, _, body = service.request("POST", f"/images/create?fromImage={pushed}&tag=nope")
    assert status == 404, body
    assert "nope" in json.loads(body)["message"]
    proc = service.docker("pull", f"{pushed}:nope", check=False)
    assert proc.returncode == 1 and "Error response from daemon" in proc.stderr


def test_tag_and_rmi(service: Service) -> None:
    service.docker("tag", "busybox:latest", "example.com/team/box:v1")
    assert "example.com/team/box:v1" in service.skiff("images", "--format", "{{.Repository}}:{{.Tag}}").split()
    status, _, body = service.request("POST", "/images/busybox:latest/tag?repo=mine&tag=t2")
    assert status == 201, body
    status, _, body = service.request("POST", "/images/no-such-image/tag?repo=mine&tag=t3")
    assert status == 404
    out = service.docker("rmi", "example.com/team/box:v1").stdout
    assert out.strip() == "Untagged: example.com/team/box:v1"
    status, _, body = service.request("DELETE", "/images/mine:t2")
    assert status == 200 and json.loads(body) == [{"Untagged": "mine:t2"}]
    status, _, body = service.request("DELETE", "/images/no-such-image")
    assert status == 404 and json.loads(body)["message"] == "No such image: no-such-image:latest"


def test_rmi_reports_every_untag_and_deletion_as_dockerd(service: Service, pushed: str, tmp_path: Path,
                                                         busybox_tar: Path) -> None:
    """The same pulled image (same config, layers, manifest digest) removed through skiff and through
    a private dockerd 20.10: the same lines, in the same order (the tag, then the repository's
    digest once no tag of it is left, the image, then each layer's chain id, top first)."""
    from tests.dockerd import docker_installed, private_dockerd

    if not docker_installed():
        pytest.skip("dockerd 20.10 is not installed")
    service.skiff("rmi", "-f", f"{pushed}:oci", check=False)
    steps = [("pull", f"{pushed}:oci"), ("tag", f"{pushed}:oci", f"{pushed}:two"), ("rmi", f"{pushed}:two"),
             ("rmi", f"{pushed}:oci")]
    ours = [service.docker(*step).stdout for step in steps]
    with private_dockerd(tmp_path / "dockerd") as dockerd:
        dockerd.docker("import", str(busybox_tar), "busybox:latest")  # as the service's store: its layer stays
        theirs = [dockerd.docker(*step).stdout for step in steps]
    assert ours[2:] == theirs[2:]
    removed = ours[3].splitlines()
    # busybox's layer stays (busybox:latest holds it): the image and its own layer go
    assert [line.split(":")[0] for line in removed] == ["Untagged", "Untagged", "Deleted", "Deleted"]
    assert removed[1].startswith(f"Untagged: {pushed}@sha256:")


def test_rmi_of_an_image_a_container_uses_is_a_conflict(service: Service, busybox_tar: Path) -> None:
    service.skiff("import", str(busybox_tar), "inuse:1", "--change", "LABEL use=1")  # one name: no untag
    container = service.docker("create", "inuse:1", "true").stdout.strip()
    try:
        status, _, body = service.request("DELETE", "/images/inuse:1")
        assert status == 409, body
        assert "container" in json.loads(body)["message"]
        proc = service.docker("rmi", "inuse:1", check=False)
        assert proc.returncode == 1 and "conflict" in proc.stderr
    finally:
        service.docker("rm", container)
    out = service.docker("rmi", "inuse:1").stdout
    assert "Untagged: inuse:1" in out and "Deleted: sha256:" in out


def test_history(service: Service) -> None:
    status, _, body = service.request("GET", "/images/busybox/history")
    assert status == 200
    rows = json.loads(body)
    assert rows[0]["Id"].startswith("sha256:") and rows[0]["Tags"] == ["busybox:latest"]
    assert set(rows[0]) == {"Comment", "Created", "CreatedBy", "Id", "Size", "Tags"}
    assert sum(r["Size"] for r in rows) > 500_000
    out = service.docker("history", "--format", "{{.ID}} {{.Size}}", "busybox").stdout.split("\n")
    assert out[0].split()[0] == rows[0]["Id"].removeprefix("sha256:")[:12]
    assert service.docker("history", "nothing-here", check=False).returncode == 1


def test_save_and_load(service: Service, tmp_path: Path) -> None:
    service.docker("tag", "busybox:latest", "saved:1")
    archive = tmp_path / "saved.tar"
    service.docker("save", "-o", str(archive), "saved:1")
    assert archive.stat().st_size > 500_000
    status, headers, body = service.request("GET", "/images/get?names=saved:1")
    assert status == 200 and headers["Content-Type"] == "application/x-tar"
    assert b"manifest.json" in body and len(body) > 500_000
    assert service.request("GET", "/images/not-there/get")[0] == 404
    service.docker("rmi", "saved:1")
    out = service.docker("load", "-i", str(archive)).stdout
    assert out.strip() == "Loaded image: saved:1"
    status, _, body = service.request("POST", "/images/load?quiet=0", raw=archive.read_bytes())
    assert status == 200 and stream_messages(body) == [{"stream": "Loaded image: saved:1\n"}]
    service.docker("rmi", "saved:1")


def test_import_from_the_body(service: Service, busybox_tar: Path) -> None:
    out = service.docker("import", "--change", 'CMD ["sh"]', str(busybox_tar), "imported:v1").stdout
    assert out.strip().startswith("sha256:")
    config = json.loads(service.skiff("image", "inspect", "imported:v1"))[0]["Config"]
    assert config["Cmd"] == ["sh"]
    service.docker("rmi", "imported:v1")


def test_image_prune(service: Service, busybox_tar: Path) -> None:
    service.skiff("import", str(busybox_tar), "dangling:1", "--change", "LABEL x=1")
    image_id = service.skiff("images", "-q", "--no-trunc", "dangling:1").strip()
    service.docker("tag", "busybox:latest", "dangling:1")  # the imported image is left without a name
    status, _, body = service.request("POST", '/images/prune?filters={"label":["x=2"]}')
    assert status == 200 and json.loads(body) == {"ImagesDeleted": None, "SpaceReclaimed": 0}
    out = service.docker("image", "prune", "-f").stdout
    assert f"deleted: {image_id}" in out and "Total reclaimed space:" in out
    status, _, body = service.request("POST", '/images/prune?filters={"nope":["1"]}')
    assert status == 400
    service.docker("rmi", "dangling:1")
    service.skiff("import", str(busybox_tar), "unused:1", "--change", "LABEL prune=me")
    tagged_id = service.skiff("images", "-q", "--no-trunc", "unused:1").strip()
    out = service.docker("image", "prune", "-a", "-f", "--filter", "label=prune=me").stdout  # dangling=false
    assert f"untagged: unused:1\ndeleted: {tagged_id}" in out
    assert "busybox:latest" in service.skiff("images", "--format", "{{.Repository}}:{{.Tag}}").split()


def test_uploads_larger_than_a_request_body_are_streamed(service: Service, tmp_path: Path) -> None:
    """``docker import`` and ``docker load`` send the tarball chunked, read as it arrives: an
    image above the 16 MiB limit of the other bodies."""
    import tarfile

    big = tmp_path / "big.tar"
    payload = tmp_path / "payload.bin"
    payload.write_bytes(os.urandom(20 << 20))
    with tarfile.open(big, "w") as tar:
        tar.add(payload, arcname="payload.bin")
    image_id = service.docker("import", str(big), "big:1").stdout.strip()
    assert image_id.startswith("sha256:")
    archive = tmp_path / "saved.tar"
    service.docker("save", "-o", str(archive), "big:1")
    service.docker("rmi", "big:1")
    assert service.docker("load", "-i", str(archive)).stdout.strip() == "Loaded image: big:1"
    assert service.skiff("images", "-q", "--no-trunc", "big:1").strip() == image_id
    status, _, body = service.request("POST", "/images/load", raw=b"not a tarball")
    assert status >= 400 and json.loads(body)["message"]
    assert service.request("GET", "/_ping")[0] == 200
    service.docker("rmi", "big:1")


def test_an_error_once_the_pull_has_started_ends_the_stream(service: Service, registry: servers.Registry,
                                                            pushed: str, tmp_path: Path) -> None:
    """A layer the registry lost: the manifest is there (200, progress sent), the blob is not: the
    last message is Docker's errorDetail, which the docker CLI prints and exits 1 on."""
    layout = Layout(tmp_path / "oci")
    own = tar_bytes([entry("lost.bin", data=os.urandom(100_000))])
    desc, _ = layout.image([own])
    layout.tag("broken", [desc])
    push(layout.path, "broken", f"{pushed}:broken", "--dest-tls-verify=false")
    lost = pushed_layers(registry, "busybox", "broken")[0]
    registry.blob_file(lost).unlink()
    status, _, body = service.request("POST", f"/images/create?fromImage={pushed}&tag=broken")
    assert status == 200, body
    messages = stream_messages(body)
    assert messages[0] == {"status": "Pulling from busybox", "id": "broken"}
    last = messages[-1]
    assert set(last) == {"errorDetail", "error"} and last["errorDetail"] == {"message": last["error"]}
    assert lost in str(last["error"])
    proc = service.docker("pull", f"{pushed}:broken", check=False)
    assert proc.returncode == 1 and lost in proc.stderr
    assert f"{pushed}:broken" not in service.skiff("images", "--format", "{{.Repository}}:{{.Tag}}").split()


def test_pull_with_the_clients_credentials(service: Service, auth_registry: servers.Registry,
                                           busybox_tar: Path, tmp_path: Path) -> None:
    """The docker CLI sends the registry's credentials in X-Registry-Auth (base64url JSON)."""
    import base64

    layout = Layout(tmp_path / "oci")
    desc, _ = layout.image([busybox_tar.read_bytes()])
    layout.tag("busybox", [desc])
    ref = f"{auth_registry.host}/private/busybox"
    push(layout.path, "busybox", f"{ref}:1", "--dest-tls-verify=false",
         f"--dest-creds={servers.USER}:{servers.PASSWORD}")
    status, _, body = service.request("POST", f"/images/create?fromImage={ref}&tag=1")
    assert status >= 400 and "login" in json.loads(body)["message"]  # no stored credentials either

    def pull(auth: dict[str, str]) -> tuple[int, bytes]:
        header = base64.urlsafe_b64encode(json.dumps(auth).encode()).decode()
        connection = UnixHTTPConnection(str(service.socket))
        try:
            connection.request("POST", f"/images/create?fromImage={ref}&tag=1", headers={"X-Registry-Auth": header})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    status, body = pull({"username": servers.USER, "password": "wrong", "serveraddress": auth_registry.host})
    assert status >= 400, body
    status, body = pull({"username": servers.USER, "password": servers.PASSWORD, "serveraddress": auth_registry.host})
    assert status == 200 and stream_messages(body)[-1] == {"status": f"Status: Downloaded newer image for {ref}:1"}
    service.docker("rmi", f"{ref}:1")


class SlowRegistry:
    """A registry on loopback with one image whose only layer drips out slowly, noting when the
    client stops reading it (its connection closed under a write)."""

    def __init__(self) -> None:
        import gzip
        import hashlib
        import io
        import tarfile
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tar:
            data = os.urandom(4 << 20)
            info = tarfile.TarInfo("big.bin")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        self.layer = gzip.compress(raw.getvalue(), compresslevel=1)

        def digest(blob: bytes) -> str:
            return "sha256:" + hashlib.sha256(blob).hexdigest()

        self.config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                                  "rootfs": {"type": "layers", "diff_ids": [digest(raw.getvalue())]}}).encode()
        self.manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(self.config),
                       "digest": digest(self.config)},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": len(self.layer),
                        "digest": digest(self.layer)}]}).encode()
        blobs = {f"/v2/slow/blobs/{digest(self.config)}": self.config}
        layer_path = f"/v2/slow/blobs/{digest(self.layer)}"
        self.reader_left = threading.Event()
        self.stop_dripping = threading.Event()
        registry = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _send(self, body: bytes, content_type: str = "application/octet-stream") -> None:
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Docker-Content-Digest", digest(body))
                self.end_headers()

            def do_HEAD(self) -> None:  # noqa: N802
                self.do_GET(head=True)

            def do_GET(self, head: bool = False) -> None:  # noqa: N802
                if self.path == "/v2/":
                    self._send(b"{}", "application/json")
                    self.wfile.write(b"{}")
                elif self.path == "/v2/slow/manifests/latest":
                    self._send(registry.manifest, "application/vnd.docker.distribution.manifest.v2+json")
                    if not head:
                        self.wfile.write(registry.manifest)
                elif self.path in blobs:
                    self._send(blobs[self.path])
                    self.wfile.write(blobs[self.path])
                elif self.path == layer_path:
                    self._send(registry.layer)
                    if not head:
                        self._drip(registry.layer)
                else:
                    self.send_error(404)

            def _drip(self, body: bytes) -> None:
                import time

                try:
                    self.wfile.write(body[:256 << 10])
                    for offset in range(256 << 10, len(body), 8192):
                        if registry.stop_dripping.wait(0.05):
                            return
                        self.wfile.write(body[offset:offset + 8192])
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    registry.reader_left.set()
                    return
                time.sleep(0)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop_dripping.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_pull_is_cancelled_when_its_client_hangs_up(service: Service) -> None:
    """No download goes on for a client that left, and nothing half-written stays in the store
    (as skiff pull's Ctrl-C); the same pull afterwards starts afresh."""
    import glob
    import socket
    import time

    registry = SlowRegistry()
    config = Path(os.environ["SKIFF_CONFIG_DIR"]) / "registries.json"
    before = config.read_text()
    document = json.loads(before)
    config.write_text(json.dumps({**document, "insecure": [*document["insecure"], registry.host]}))
    try:
        client = socket.socket(socket.AF_UNIX)
        client.connect(str(service.socket))
        client.sendall(f"POST /v1.41/images/create?fromImage={registry.host}/slow&tag=latest HTTP/1.1\r\n"
                       f"Host: docker\r\nContent-Length: 0\r\n\r\n".encode())
        seen = b""
        deadline = time.monotonic() + 30
        while b'"Downloading"' not in seen:
            assert time.monotonic() < deadline, seen
            seen += client.recv(65536)
        root = service.env["SKIFF_ROOT"]
        assert glob.glob(f"{root}/**/.tmp-*", recursive=True), "the download writes a temporary blob"
        client.close()  # hang up mid-download
        assert registry.reader_left.wait(20), "the pull went on reading the layer after its client left"
        deadline = time.monotonic() + 10
        while glob.glob(f"{root}/**/.tmp-*", recursive=True):
            assert time.monotonic() < deadline, glob.glob(f"{root}/**/.tmp-*", recursive=True)
            time.sleep(0.05)
        assert f"{registry.host}/slow" not in service.skiff("images", "--format", "{{.Repository}}")
        threads = service.skiff("info", "--format", "{{.ID}}")  # the server still answers
        assert threads
    finally:
        config.write_text(before)
        registry.close()
    assert "Traceback" not in service.log.read_text()
