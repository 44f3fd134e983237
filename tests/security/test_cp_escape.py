"""``docker cp``'s attacks through ``skiff system service``'s archive endpoints: a link in the
container that points at a host path, a link swapped in a loop while copies run (CVE-2018-15664),
and hostile entries in a tar put into a container (absolute, ``..``, through a link).

Each would reach the host directory if a path were resolved as a host path string under the
container's rootfs; skiff resolves every path inside the container's root by fd.
"""

from __future__ import annotations

import base64
import io
import json
import tarfile
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.api_server.conftest import Service, service  # noqa: F401  (the module's server)


def _run(service: Service, name: str, script: str) -> str:
    return service.docker("run", "-d", "--network", "none", "--name", name, "busybox", "sh", "-c",
                          script).stdout.strip()


def _archive(service: Service, method: str, name: str, path: str, raw: bytes | None = None) -> tuple[int, bytes]:
    status, _, body = service.request(method, f"/v1.41/containers/{name}/archive?path={quote(path)}", raw=raw)
    return status, body


def _tar(*entries: tuple[str, bytes | str | None]) -> bytes:
    """Entries: (name, bytes) a file, (name, "->target") a symlink, (name, None) a directory."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, content in entries:
            info = tarfile.TarInfo(name)
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content[2:]
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


@pytest.fixture
def host_dir(tmp_path: Path) -> Path:
    """A host directory with a secret no container may read, where none may write."""
    directory = tmp_path / "host-secrets"
    directory.mkdir()
    (directory / "secret").write_text("HOST-SECRET-5c1d\n")
    return directory


def _names(body: bytes) -> dict[str, bytes]:
    """A tar's entries: name -> content (b"" for all but regular files)."""
    found = {}
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        for member in tar:
            data = tar.extractfile(member) if member.isreg() else None
            found[member.name] = data.read() if data is not None else b""
    return found


def test_links_to_host_paths_resolve_inside_the_container(service: Service, host_dir: Path) -> None:
    """An absolute link, a relative one climbing out, and /etc: each means the container's own."""
    _run(service, "cp-links", f"ln -s {host_dir} /root/abs; ln -s ../../../../../../..{host_dir} /root/rel; "
                              "ln -s /etc /root/etc; exec sleep 60")
    try:
        time.sleep(0.5)
        for link in ("/root/abs", "/root/rel"):
            status, body = _archive(service, "GET", "cp-links", f"{link}/secret")
            assert status == 404, body  # the container has no such path: the host's is never read
            assert b"HOST-SECRET" not in body
            status, body = _archive(service, "PUT", "cp-links", link, _tar(("planted", b"x")))
            assert status == 404, body
            assert not (host_dir / "planted").exists()
        status, body = _archive(service, "GET", "cp-links", "/root/etc/passwd")
        assert status == 200
        passwd = _names(body)["passwd"].decode()
        image_passwd = _names(_archive(service, "GET", "cp-links", "/etc/passwd")[1])["passwd"].decode()
        assert passwd == image_passwd and passwd.startswith("root:x:0:0:")
        assert passwd != Path("/etc/passwd").read_text()  # busybox's few users, not the host's
        # the link itself, not its target, is what a GET of the link gives, with its target in the stat
        status, headers, body = service.request("GET", "/v1.41/containers/cp-links/archive?path=/root/abs")
        assert status == 200
        stat = json.loads(base64.urlsafe_b64decode(headers["X-Docker-Container-Path-Stat"]))
        assert stat["linkTarget"] == str(host_dir) and stat["mode"] & (1 << 27)
        with tarfile.open(fileobj=io.BytesIO(body)) as tar:
            (member,) = tar.getmembers()
        assert member.issym() and member.linkname == str(host_dir)
    finally:
        service.docker("rm", "-f", "cp-links")
    assert sorted(p.name for p in host_dir.iterdir()) == ["secret"]


def test_a_link_swapped_during_copies_never_leads_out(service: Service, host_dir: Path) -> None:
    """CVE-2018-15664: /root/sw flips between a directory and a link to the host in a tight loop
    while the client copies out of and into it; no copy reads or writes the host directory."""
    # each state lasts a moment (a busy loop; rm, mkdir and ln are processes): the copies meet both
    _run(service, "cp-swap", f"while :; do rm -rf /root/sw; mkdir /root/sw; echo inside > /root/sw/secret; "
                             f"i=0; while [ $i -lt 300 ]; do i=$((i+1)); done; "
                             f"rm -rf /root/sw; ln -s {host_dir} /root/sw; "
                             f"i=0; while [ $i -lt 30 ]; do i=$((i+1)); done; done")
    inside = outside = 0
    try:
        for attempt in range(150):
            status, body = _archive(service, "GET", "cp-swap", "/root/sw/secret")
            assert b"HOST-SECRET" not in body
            if status == 200:
                assert _names(body).get("secret") in (b"inside\n", b"", None)  # b"": not written yet; None: gone
                inside += "secret" in _names(body)
            else:
                assert status == 404, body
                outside += 1
            status, body = _archive(service, "PUT", "cp-swap", "/root/sw", _tar((f"planted{attempt}", b"x")))
            assert status in (200, 404, 400, 500), body
        assert not [p.name for p in host_dir.iterdir() if p.name != "secret"]
        assert (host_dir / "secret").read_text() == "HOST-SECRET-5c1d\n"
    finally:
        service.docker("rm", "-f", "cp-swap")
    assert inside > 0 and outside > 0  # the copies met the directory and the link


def test_hostile_entries_in_a_put_tar_are_refused(service: Service, host_dir: Path) -> None:
    _run(service, "cp-tar", "mkdir /root/dest; exec sleep 60")
    try:
        time.sleep(0.5)
        hostile = {
            "dotdot": _tar(("../../../../../../..%s/dotdot" % host_dir, b"x")),
            "nested dotdot": _tar(("a", None), ("a/../../../../../../../..%s/nested" % host_dir, b"x")),
            "absolute": _tar((f"{host_dir}/absolute", b"x")),
            "through a link": _tar(("l", f"->{host_dir}"), ("l/through", b"x")),
            "through a relative link": _tar(("r", "->../../../../../../.."), (f"r{host_dir}/relative", b"x")),
        }
        for label, body in hostile.items():
            status, answer = _archive(service, "PUT", "cp-tar", "/root/dest", body)
            assert status == 400, (label, answer)
            assert "refusing" in json.loads(answer)["message"], label
        assert sorted(p.name for p in host_dir.iterdir()) == ["secret"]
        # a link entry itself is fine (its text is never followed while extracting)
        status, _ = _archive(service, "PUT", "cp-tar", "/root/dest", _tar(("ok", f"->{host_dir}")))
        assert status == 200
        status, headers, _ = service.request("HEAD", "/v1.41/containers/cp-tar/archive?path=/root/dest/ok")
        assert status == 200 and "X-Docker-Container-Path-Stat" in headers
    finally:
        service.docker("rm", "-f", "cp-tar")
