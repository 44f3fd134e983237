"""``docker cp`` both ways, ``docker export`` and ``docker diff`` with the real docker CLI 20.10 through
``skiff system service``, and the archive endpoints' status codes and stat header over raw HTTP."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

from tests.api_server.conftest import DOCKER, Service

GO_DIR, GO_SYMLINK = 1 << 31, 1 << 27


def _run(service: Service, name: str, script: str, *flags: str) -> str:
    return service.docker("run", "-d", "--network", "none", "--name", name, *flags, "busybox", "sh", "-c",
                          script).stdout.strip()


def _stat(headers: dict[str, str]) -> dict[str, object]:
    return dict(json.loads(base64.urlsafe_b64decode(headers["X-Docker-Container-Path-Stat"])))


def test_cp_out_of_and_into_a_running_container(service: Service, tmp_path: Path) -> None:
    _run(service, "cp-run", "mkdir -p /srv/tree/sub; echo one > /srv/tree/a; echo two > /srv/tree/sub/b; "
                            "ln -s a /srv/tree/link; exec sleep 60")
    try:
        service.docker("exec", "cp-run", "true", check=False)
        _wait_for(service, "cp-run", "/srv/tree/link")
        service.docker("cp", "cp-run:/srv/tree/a", str(tmp_path / "a-copy"))
        assert (tmp_path / "a-copy").read_text() == "one\n"
        service.docker("cp", "cp-run:/srv/tree", str(tmp_path / "tree"))
        assert (tmp_path / "tree" / "sub" / "b").read_text() == "two\n"
        assert (tmp_path / "tree" / "link").is_symlink() and str((tmp_path / "tree" / "link").readlink()) == "a"
        service.docker("cp", "cp-run:/srv/tree/.", str(tmp_path / "contents"))
        assert sorted(p.name for p in (tmp_path / "contents").iterdir()) == ["a", "link", "sub"]

        (tmp_path / "in.txt").write_text("from the host\n")
        (tmp_path / "indir" / "deep").mkdir(parents=True)
        (tmp_path / "indir" / "deep" / "f").write_text("deep file\n")
        service.docker("cp", str(tmp_path / "in.txt"), "cp-run:/tmp/")
        service.docker("cp", str(tmp_path / "indir"), "cp-run:/tmp/indir")
        out = tmp_path / "back"
        service.docker("cp", "cp-run:/tmp/indir/deep/f", str(out))
        assert out.read_text() == "deep file\n"
        service.docker("cp", "cp-run:/tmp/in.txt", str(tmp_path / "in-back"))
        assert (tmp_path / "in-back").read_text() == "from the host\n"

        big = tmp_path / "big"  # more than the 16 MiB a JSON body may have: the tar is unpacked as it comes
        big.write_bytes(os.urandom(1 << 20) * 20)
        service.docker("cp", str(big), "cp-run:/tmp/big")
        service.docker("cp", "cp-run:/tmp/big", str(tmp_path / "big-back"))
        assert (tmp_path / "big-back").read_bytes() == big.read_bytes()

        missing = service.docker("cp", "cp-run:/nope", str(tmp_path), check=False)
        assert missing.returncode == 1 and "No such container:path: cp-run:/nope" in missing.stderr
    finally:
        service.docker("rm", "-f", "cp-run")


def _wait_for(service: Service, name: str, path: str) -> None:
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if service.request("HEAD", f"/v1.41/containers/{name}/archive?path={path}")[0] == 200:
            return
        time.sleep(0.1)
    raise AssertionError(f"{path} never appeared in {name}")


def test_cp_with_a_stopped_container_and_its_volume(service: Service, tmp_path: Path) -> None:
    """A stopped container: its layers and upper dir, and a path under a volume's target is the volume's."""
    _run(service, "cp-stopped", "echo kept > /data/v; echo upper > /root/u; rm /bin/ls", "-v", "cp-vol:/data")
    try:
        assert service.docker("wait", "cp-stopped").stdout.strip() == "0"
        service.docker("cp", "cp-stopped:/data/v", str(tmp_path / "v"))
        assert (tmp_path / "v").read_text() == "kept\n"
        service.docker("cp", "cp-stopped:/root/u", str(tmp_path / "u"))
        assert (tmp_path / "u").read_text() == "upper\n"
        assert service.docker("cp", "cp-stopped:/bin/ls", str(tmp_path / "ls"), check=False).returncode == 1
        (tmp_path / "new").write_text("put while stopped\n")
        service.docker("cp", str(tmp_path / "new"), "cp-stopped:/root/")
        service.docker("cp", str(tmp_path / "new"), "cp-stopped:/data/")
        # the next run sees both: the upper dir and the volume took the writes
        reader = _run(service, "cp-reader", "cat /data/new", "-v", "cp-vol:/data")
        assert service.docker("wait", reader).stdout.strip() == "0"
        assert service.docker("logs", reader).stdout == "put while stopped\n"
        service.docker("start", "cp-stopped")
        service.docker("wait", "cp-stopped")
        service.docker("cp", "cp-stopped:/root/new", str(tmp_path / "new-back"))
        assert (tmp_path / "new-back").read_text() == "put while stopped\n"
    finally:
        service.docker("rm", "-f", "cp-stopped", "cp-reader", check=False)
        service.docker("volume", "rm", "cp-vol", check=False)


def test_export_and_diff(service: Service) -> None:
    _run(service, "cp-diff", "echo x > /root/new; rm /bin/ls; mkdir /tmp/d; echo y > /tmp/d/f; "
                             "echo changed >> /etc/passwd")
    try:
        service.docker("wait", "cp-diff")
        diff = service.docker("diff", "cp-diff").stdout.splitlines()
        # Docker 20.10 (a private dockerd, same script): the same entries, sorted here
        assert diff == ["C /bin", "D /bin/ls", "C /etc", "C /etc/passwd", "C /root", "A /root/new", "C /tmp",
                        "A /tmp/d", "A /tmp/d/f"]
        exported = subprocess.run([DOCKER, "-H", f"unix://{service.socket}", "export", "cp-diff"],
                                  capture_output=True, check=True,
                                  env={**service.env, "DOCKER_CONFIG": str(service.socket.parent / "docker-config")})
        with tarfile.open(fileobj=io.BytesIO(exported.stdout)) as tar:
            names = set(tar.getnames())
            assert tar.extractfile("root/new").read() == b"x\n"  # type: ignore[union-attr]
        assert {"bin/", "bin/busybox", "etc/passwd", "tmp/d/f"} <= names or {"bin", "bin/busybox"} <= names
        assert "bin/ls" not in names and not any(n.startswith(("/", "./")) for n in names)
    finally:
        service.docker("rm", "-f", "cp-diff")


def test_archive_status_codes_and_the_stat_header(service: Service) -> None:
    _run(service, "cp-http", "ln -s /etc/passwd /root/pw; exec sleep 60")
    try:
        _wait_for(service, "cp-http", "/root/pw")
        status, headers, body = service.request("HEAD", "/v1.41/containers/cp-http/archive?path=/etc")
        assert status == 200 and body == b""
        stat = _stat(headers)
        assert stat["name"] == "etc" and int(str(stat["mode"])) & GO_DIR and stat["linkTarget"] == ""
        assert str(stat["mtime"]).endswith("Z")
        status, headers, body = service.request("GET", "/v1.41/containers/cp-http/archive?path=/root/pw")
        assert status == 200 and headers["Content-Type"] == "application/x-tar"
        stat = _stat(headers)
        assert stat["linkTarget"] == "/etc/passwd" and int(str(stat["mode"])) & GO_SYMLINK
        status, _, body = service.request("GET", "/v1.41/containers/cp-http/archive?path=/nope")
        assert status == 404
        assert json.loads(body)["message"] == "Could not find the file /nope in container cp-http"
        assert service.request("HEAD", "/v1.41/containers/cp-http/archive?path=/nope")[0] == 404
        status, _, body = service.request("GET", "/v1.41/containers/cp-http/archive")
        assert status == 400 and "path" in json.loads(body)["message"]
        status, _, body = service.request("PUT", "/v1.41/containers/cp-http/archive?path=/etc/passwd", raw=b"")
        assert status == 400 and json.loads(body)["message"] == "extraction point is not a directory"
        status, _, body = service.request("GET", "/v1.41/containers/cp-nobody/archive?path=/")
        assert status == 404 and json.loads(body)["message"] == "No such container: cp-nobody"
        status, _, body = service.request("PUT", "/v1.41/containers/cp-http/archive?path=/tmp", raw=b"not a tar")
        assert status == 400
        # noOverwriteDirNonDir: a file over a directory is refused, as Docker's
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo("tmp")
            tar.addfile(info, io.BytesIO(b""))
        status, _, body = service.request("PUT", "/v1.41/containers/cp-http/archive?path=/&noOverwriteDirNonDir=1",
                                          raw=buffer.getvalue())
        assert status == 400 and "cannot overwrite directory" in json.loads(body)["message"]
    finally:
        service.docker("rm", "-f", "cp-http")


def test_cp_of_the_root_enters_volumes_not_proc_and_cp_a_owns_by_the_user(service: Service, tmp_path: Path) -> None:
    _run(service, "cp-root", "echo in-volume > /tmp/v; exec sleep 60", "-v", "cp-rootvol:/tmp", "--user", "daemon")
    try:
        _wait_for(service, "cp-root", "/tmp/v")  # a volume over /tmp: 1777 from the image
        status, _, body = service.request("GET", "/v1.41/containers/cp-root/archive?path=/")
        assert status == 200
        with tarfile.open(fileobj=io.BytesIO(body)) as tar:
            names = set(tar.getnames())
            assert tar.extractfile("./tmp/v").read() == b"in-volume\n"  # type: ignore[union-attr]
        assert "./bin/busybox" in names and not any(n.startswith(("./proc/", "./sys/")) for n in names)
        (tmp_path / "owned").write_text("x\n")
        service.docker("cp", "-a", str(tmp_path / "owned"), "cp-root:/tmp/owned-a")
        service.docker("cp", str(tmp_path / "owned"), "cp-root:/tmp/owned")
        status, _, body = service.request("GET", "/v1.41/containers/cp-root/archive?path=/tmp")
        with tarfile.open(fileobj=io.BytesIO(body)) as tar:
            owners = {m.name: (m.uid, m.gid) for m in tar}
        assert owners["tmp/owned-a"] == (1, 1)  # busybox's daemon user: copyUIDGID
        assert owners["tmp/owned"] == (0, 0)    # the tar's (the client's root)
    finally:
        service.docker("rm", "-f", "cp-root")
        service.docker("volume", "rm", "cp-rootvol", check=False)
