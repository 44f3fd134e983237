"""``skiff cp`` both ways on running and stopped containers (Docker 20.10's rules: trailing
slashes, ``/.``, directories, ``-`` as a tar stream, ``-a``, ``-L``, volumes), and ``skiff
export``, ``skiff diff`` and ``skiff history``."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Skiff

SETUP = ("mkdir -p /data/sub && echo hi > /data/f && echo y > /data/sub/y && ln -s /data/f /data/lnk "
         "&& ln -s sub /data/rel && chown 1234:4321 /data/f")


@pytest.fixture
def sk(skiff: Skiff, busybox_image: str) -> Iterator[Skiff]:
    yield skiff
    ids = skiff("ps", "-aq", "--no-trunc").stdout.split()
    if ids:
        skiff("rm", "-f", "-v", *ids)


@pytest.fixture(params=["running", "stopped"])
def box(request: pytest.FixtureRequest, sk: Skiff) -> str:
    """A container with /data (files, a link, a relative link) and a volume at /vol."""
    if request.param == "running":
        sk.ok("run", "-d", "--name", "box", "--network", "none", "-v", "cpvol:/vol", "busybox", "sh", "-c",
              f"{SETUP} && touch /tmp/ready && exec sleep 300")
        for _ in range(100):
            if sk("exec", "box", "test", "-e", "/tmp/ready").returncode == 0:
                break
    else:
        sk.ok("run", "--name", "box", "--network", "none", "-v", "cpvol:/vol", "busybox", "sh", "-c", SETUP)
    return "box"


def _cat(sk: Skiff, container: str, path: str) -> str:
    """A file's content read back out of the container (through cp itself: works stopped too)."""
    out = subprocess.run([sys.executable, "-m", "skiff", "cp", f"{container}:{path}", "-"], env=sk.env,
                         capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(out)) as tar:
        member = tar.next()
        assert member is not None
        data = tar.extractfile(member)
        return data.read().decode() if data else ""


def test_out_of_a_container(sk: Skiff, box: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    sk.ok("cp", f"{box}:/data", str(out))                     # a directory into an existing one
    assert (out / "data/f").read_text() == "hi\n" and (out / "data/sub/y").read_text() == "y\n"
    assert os.readlink(out / "data/lnk") == "/data/f"           # links copied as links
    assert (out / "data/f").stat().st_uid == os.getuid()        # owned by who copies (NoLchown)
    sk.ok("cp", f"{box}:/data/.", str(out / "contents"))      # /. : the contents, as a new directory
    assert sorted(p.name for p in (out / "contents").iterdir()) == ["f", "lnk", "rel", "sub"]
    sk.ok("cp", f"{box}:/data", str(out / "renamed"))         # a new name: the directory takes it
    assert (out / "renamed/sub/y").exists()
    sk.ok("cp", f"{box}:/data/f", str(out / "file"))          # a file to a new name
    sk.ok("cp", f"{box}:/data/sub/y", str(out / "file"))      # a file over an existing file
    assert (out / "file").read_text() == "y\n"
    sk.ok("cp", f"{box}:/data/lnk", str(out / "link"))        # without -L: the link itself
    assert os.readlink(out / "link") == "/data/f"
    sk.ok("cp", "-L", f"{box}:/data/lnk", str(out / "followed"))  # -L: its target, under the link's name
    assert (out / "followed").read_text() == "hi\n" and not (out / "followed").is_symlink()
    sk.ok("cp", "-L", f"{box}:/data/rel", str(out))             # a relative link to a directory
    assert (out / "rel/y").read_text() == "y\n"


def test_out_of_a_container_errors(sk: Skiff, box: str, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    cases = [
        ((f"{box}:/nope", str(tmp_path)), f"skiff: No such container:path: {box}:/nope"),
        (("ghost:/data", str(tmp_path)), "skiff: No such container:path: ghost:/data"),
        ((f"{box}:/data", str(tmp_path / "file")), "skiff: cannot copy directory"),
        ((f"{box}:/data/f", str(tmp_path / "no/such/dir")),
         f'skiff: invalid output path: directory "{tmp_path}/no/such" does not exist'),
        ((f"{box}:/data/f", str(tmp_path / "newdir") + "/"), "skiff: no such directory"),
        ((f"{box}:/a", "ghost:/b"), "skiff: copying between containers is not supported"),
        (("a", "b"), "skiff: must specify at least one container source"),
    ]
    for args, message in cases:
        result = sk("cp", *args)
        assert (result.returncode, result.stderr.strip()) == (1, message), args
    result = sk("cp", f"{box}:/data")
    assert result.returncode == 1 and '"skiff cp" requires exactly 2 arguments.' in result.stderr


def test_out_to_stdout_is_a_tar(sk: Skiff, box: str) -> None:
    out = subprocess.run([sys.executable, "-m", "skiff", "cp", f"{box}:/data", "-"], env=sk.env,
                         capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(out)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert {"data", "data/f", "data/sub", "data/sub/y", "data/lnk"} <= set(members)
    assert (members["data/f"].uid, members["data/f"].gid) == (1234, 4321)  # the stream keeps owners
    assert members["data/lnk"].issym() and members["data/lnk"].linkname == "/data/f"


def test_into_a_container(sk: Skiff, box: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "deep").mkdir(parents=True)
    (src / "a.txt").write_text("A\n")
    (src / "deep/b.txt").write_text("B\n")
    os.chown(src / "a.txt", 777, 888)
    sk.ok("cp", str(src / "a.txt"), f"{box}:/data/sub/")       # into an existing directory
    assert _cat(sk, box, "/data/sub/a.txt") == "A\n"
    sk.ok("cp", str(src / "a.txt"), f"{box}:/data/new.txt")    # to a new name
    assert _cat(sk, box, "/data/new.txt") == "A\n"
    sk.ok("cp", str(src / "a.txt"), f"{box}:/data/f")          # over a file
    assert _cat(sk, box, "/data/f") == "A\n"
    sk.ok("cp", str(src / "a.txt"), f"{box}:/data/lnk")        # a link in the container: its target
    assert _cat(sk, box, "/data/f") == "A\n"
    sk.ok("cp", str(src), f"{box}:/data")                       # a directory into one
    assert _cat(sk, box, "/data/src/deep/b.txt") == "B\n"
    sk.ok("cp", f"{src}/.", f"{box}:/data/copy")                # its contents, as a new directory
    assert _cat(sk, box, "/data/copy/deep/b.txt") == "B\n"
    (tmp_path / "hostlink").symlink_to(src / "a.txt")
    sk.ok("cp", str(tmp_path / "hostlink"), f"{box}:/data/")     # a host link without -L: the link
    assert subprocess.run([sys.executable, "-m", "skiff", "cp", f"{box}:/data/hostlink", "-"], env=sk.env,
                          capture_output=True, check=True).stdout.count(str(src / "a.txt").encode()) == 1
    sk.ok("cp", "-L", str(tmp_path / "hostlink"), f"{box}:/data/followed")  # -L: the host file it names
    assert _cat(sk, box, "/data/followed") == "A\n"
    sk.ok("cp", str(src / "a.txt"), f"{box}:/vol/")             # the volume at the path gets it
    listing = tarfile.open(fileobj=io.BytesIO(subprocess.run(
        [sys.executable, "-m", "skiff", "cp", f"{box}:/data/sub/a.txt", "-"], env=sk.env, capture_output=True,
        check=True).stdout)).getmembers()
    assert (listing[0].uid, listing[0].gid) == (777, 888)      # without -a: the source's owner
    volume = Path(sk.root) / "volumes/cpvol/_data/a.txt"
    assert volume.read_text() == "A\n"
    errors = [
        ((str(src / "a.txt"), f"{box}:/nodir/"), "skiff: no such directory"),
        ((str(src), f"{box}:/data/f"), "skiff: cannot copy directory"),
        ((str(src / "a.txt"), f"{box}:/no/such/x"), f"skiff: No such container:path: {box}:/no/such"),
        ((str(tmp_path / "missing"), f"{box}:/data"), f"skiff: lstat {tmp_path}/missing: no such file or directory"),
    ]
    for args, message in errors:
        result = sk("cp", *args)
        assert (result.returncode, result.stderr.strip()) == (1, message), args


def test_archive_mode_takes_the_containers_user(sk: Skiff, tmp_path: Path) -> None:
    sk.ok("create", "--name", "usr", "-u", "daemon", "busybox", "true")
    (tmp_path / "f").write_text("x")
    sk.ok("cp", "-a", str(tmp_path / "f"), "usr:/tmp/")
    out = subprocess.run([sys.executable, "-m", "skiff", "cp", "usr:/tmp/f", "-"], env=sk.env,
                         capture_output=True, check=True).stdout
    member = tarfile.open(fileobj=io.BytesIO(out)).getmembers()[0]
    assert (member.uid, member.gid) == (1, 1)   # busybox's daemon:daemon


def test_a_tar_from_stdin(sk: Skiff, box: str) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("streamed/hello")
        info.size = 6
        tar.addfile(info, io.BytesIO(b"hello\n"))
    result = subprocess.run([sys.executable, "-m", "skiff", "cp", "-", f"{box}:/data"], env=sk.env,
                            input=buffer.getvalue(), capture_output=True)
    assert result.returncode == 0, result.stderr
    assert _cat(sk, box, "/data/streamed/hello") == "hello\n"
    result = subprocess.run([sys.executable, "-m", "skiff", "cp", "-", f"{box}:/data/f"], env=sk.env,
                            input=buffer.getvalue(), capture_output=True)
    assert result.returncode == 1
    assert result.stderr.decode().strip() == f'skiff: destination "{box}:/data/f" must be a directory'


def test_container_group_and_image_group_names(sk: Skiff, tmp_path: Path) -> None:
    sk.ok("create", "--name", "grp", "busybox", "true")
    sk.ok("container", "cp", "grp:/bin/busybox", str(tmp_path / "bb"))
    assert (tmp_path / "bb").stat().st_size > 0
    assert sk.ok("image", "history", "-q", "busybox").strip()


def test_export_diff_and_history(sk: Skiff, tmp_path: Path) -> None:
    sk.ok("run", "--name", "chg", "--network", "none", "busybox", "sh", "-c",
          "mkdir /new && echo x > /new/file && rm /bin/true && echo y >> /etc/passwd")
    assert sk.ok("diff", "chg").splitlines() == ["C /bin", "D /bin/true", "C /etc", "C /etc/passwd",
                                                 "A /new", "A /new/file"]
    out = tmp_path / "fs.tar"
    sk.ok("export", "-o", str(out), "chg")
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
    assert {"new", "new/file", "etc/passwd", "bin/busybox"} <= names and "bin/true" not in names
    piped = subprocess.run([sys.executable, "-m", "skiff", "export", "chg"], env=sk.env, capture_output=True,
                           check=True).stdout
    assert "new/file" in tarfile.open(fileobj=io.BytesIO(piped)).getnames()
    lines = sk.ok("history", "busybox").splitlines()
    assert lines[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    image_id = sk.ok("images", "-q", "busybox").strip()
    assert lines[1].startswith(image_id) and "ago" in lines[1] and "MB" in lines[1]
    raw = sk.ok("history", "-H=false", "--no-trunc", "--format", "{{.ID}} {{.Size}} {{.CreatedSince}}", "busybox")
    full_id, size, created = raw.split()
    assert full_id.startswith("sha256:") and size.isdigit() and created[:2] == "20" and "T" in created
    assert sk.ok("history", "-q", "busybox").strip() == image_id
    missing = sk("history", "nope")
    assert (missing.returncode, missing.stderr.strip()) == (1, "skiff: No such image: nope:latest")
    assert sk("diff", "ghost").returncode == 1 and sk("export", "ghost").returncode == 1
    bad = sk("export", "-o", str(tmp_path / "no/such/fs.tar"), "chg")
    assert (bad.returncode, bad.stderr.strip()) == (
        1, f'skiff: failed to export container: invalid output path: directory "{tmp_path}/no/such" does not exist')


def test_read_only_root_and_volumes(sk: Skiff, tmp_path: Path) -> None:
    """As Docker's daemon: a --read-only container takes copies into its writable volumes only."""
    sk.ok("create", "--name", "ro", "--read-only", "-v", "rw-vol:/rw", "-v", "ro-vol:/ro:ro", "busybox", "true")
    (tmp_path / "f").write_text("x")
    for dest, message in (("ro:/tmp/", "skiff: container rootfs is marked read-only"),
                          ("ro:/ro/", "skiff: mounted volume is marked read-only")):
        result = sk("cp", str(tmp_path / "f"), dest)
        assert (result.returncode, result.stderr.strip()) == (1, message), dest
    sk.ok("cp", str(tmp_path / "f"), "ro:/rw/")
    assert (Path(sk.root) / "volumes/rw-vol/_data/f").read_text() == "x"


@pytest.mark.parametrize("running", [True, False])
def test_a_bind_mount_at_the_path_is_where_files_go(sk: Skiff, tmp_path: Path, running: bool) -> None:
    bind = tmp_path / "bind"
    bind.mkdir()
    (bind / "from-host").write_text("h\n")
    if running:
        sk.ok("run", "-d", "--name", "bnd", "--network", "none", "-v", f"{bind}:/mnt/b", "busybox", "sleep", "300")
    else:
        sk.ok("create", "--name", "bnd", "-v", f"{bind}:/mnt/b", "busybox", "true")
    (tmp_path / "in.txt").write_text("in\n")
    sk.ok("cp", str(tmp_path / "in.txt"), "bnd:/mnt/b/")
    assert (bind / "in.txt").read_text() == "in\n"
    assert _cat(sk, "bnd", "/mnt/b/from-host") == "h\n"
    out = tmp_path / "out"
    sk.ok("cp", "bnd:/mnt/b", str(out))
    assert sorted(p.name for p in out.iterdir()) == ["from-host", "in.txt"]
