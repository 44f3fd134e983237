"""``skiff cp``'s attacks on the host (the CLI's paths; test_cp_escape.py does the Engine API's):
links in the container pointing at host paths, ``..`` climbing out, a link swapped in a loop
while copies run both ways (CVE-2018-15664), hostile tar entries on stdin, and a container's
tree copied out that holds links to host paths (nothing may be written through them).

Each would reach the host directory if a container path were resolved as a host path string
under the container's rootfs, or a tar entry unpacked through a link.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.conftest import Skiff


@pytest.fixture
def host_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "host-secrets"
    directory.mkdir()
    (directory / "secret").write_text("HOST-SECRET-77aa\n")
    return directory


def _untouched(host_dir: Path) -> None:
    assert sorted(p.name for p in host_dir.iterdir()) == ["secret"]
    assert (host_dir / "secret").read_text() == "HOST-SECRET-77aa\n"


def _cp(sk: Skiff, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "skiff", "cp", *args], env=sk.env, input=input,
                          capture_output=True, timeout=60)


def _start(sk: Skiff, name: str, script: str) -> None:
    sk.ok("run", "-d", "--name", name, "--network", "none", "busybox", "sh", "-c",
          f"{script}; touch /tmp/ready; exec sleep 300")
    for _ in range(100):
        if sk("exec", name, "test", "-e", "/tmp/ready").returncode == 0:
            return


@pytest.mark.parametrize("state", ["running", "stopped"])
def test_links_and_dotdot_resolve_inside_the_container(sk: Skiff, host_dir: Path, tmp_path: Path,
                                                       state: str) -> None:
    script = (f"ln -s {host_dir} /root/abs; ln -s ../../../../../../..{host_dir} /root/rel; "
              f"ln -s {host_dir}/secret /root/file")
    if state == "running":
        _start(sk, "links", script)
    else:
        sk.ok("run", "--name", "links", "--network", "none", "busybox", "sh", "-c", script)
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "planted").write_text("x")
    for path in ("/root/abs/secret", "/root/rel/secret", f"/../../../../..{host_dir}/secret"):
        result = _cp(sk, f"links:{path}", str(out))
        assert result.returncode == 1 and b"No such container:path" in result.stderr, (path, result.stderr)
        result = _cp(sk, "-L", f"links:{path}", "-")
        assert result.returncode == 1 and b"HOST-SECRET" not in result.stdout
        result = _cp(sk, str(tmp_path / "planted"), f"links:{path.rpartition('/')[0]}/")
        assert result.returncode == 1, path
    result = _cp(sk, "-L", "links:/root/file", str(out))   # -L: the target, inside the container
    assert result.returncode == 1 and b"No such container:path" in result.stderr
    result = _cp(sk, str(tmp_path / "planted"), "links:/root/file")  # the destination link: inside too
    assert result.returncode == 1 and b"No such container:path" in result.stderr, result.stderr
    assert not list(out.iterdir())
    _untouched(host_dir)


def test_a_tree_copied_out_writes_nothing_through_its_links(sk: Skiff, host_dir: Path, tmp_path: Path) -> None:
    """The container's tree holds links to the host directory; copied out, they stay links and
    nothing lands in the directory they name."""
    sk.ok("run", "--name", "tree", "--network", "none", "busybox", "sh", "-c",
          f"mkdir -p /t/a && ln -s {host_dir} /t/a/out && echo x > /t/a/file")
    out = tmp_path / "out"
    out.mkdir()
    assert _cp(sk, "tree:/t", str(out)).returncode == 0
    assert os.readlink(out / "t/a/out") == str(host_dir)
    assert _cp(sk, "tree:/t/.", str(out)).returncode == 0   # over it again: the link is replaced, not entered
    _untouched(host_dir)


def test_hostile_entries_on_stdin_are_refused(sk: Skiff, host_dir: Path) -> None:
    _start(sk, "tarbox", "mkdir /root/dest")

    def tar(*entries: tuple[str, bytes | str]) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            for name, content in entries:
                info = tarfile.TarInfo(name)
                if isinstance(content, str):
                    info.type, info.linkname = tarfile.SYMTYPE, content
                    archive.addfile(info)
                else:
                    info.size = len(content)
                    archive.addfile(info, io.BytesIO(content))
        return buffer.getvalue()

    hostile = {
        "dotdot": tar((f"../../../../../../..{host_dir}/dotdot", b"x")),
        "absolute": tar((f"{host_dir}/absolute", b"x")),
        "through a link": tar(("l", str(host_dir)), ("l/through", b"x")),
        "through a relative link": tar(("r", "../../../../../../.."), (f"r{host_dir}/relative", b"x")),
    }
    for label, body in hostile.items():
        result = _cp(sk, "-", "tarbox:/root/dest", input=body)
        assert result.returncode == 1 and b"refusing" in result.stderr, (label, result.stderr)
    _untouched(host_dir)


def test_a_link_swapped_during_cli_copies_never_leads_out(sk: Skiff, host_dir: Path, tmp_path: Path) -> None:
    """CVE-2018-15664 through the CLI: /root/sw flips between a directory and a link to the host
    directory while copies go out of and into it."""
    sk.ok("run", "-d", "--name", "swap", "--network", "none", "busybox", "sh", "-c",
          f"while :; do rm -rf /root/sw; mkdir /root/sw; echo inside > /root/sw/secret; "
          f"i=0; while [ $i -lt 300 ]; do i=$((i+1)); done; rm -rf /root/sw; ln -s {host_dir} /root/sw; "
          f"i=0; while [ $i -lt 30 ]; do i=$((i+1)); done; done")
    (tmp_path / "planted").write_text("x")
    inside = 0
    for _ in range(25):
        result = _cp(sk, "swap:/root/sw/secret", "-")
        assert b"HOST-SECRET" not in result.stdout
        inside += result.returncode == 0 and b"inside" in result.stdout
        _cp(sk, str(tmp_path / "planted"), "swap:/root/sw/")
        _cp(sk, str(tmp_path / "planted"), "swap:/root/sw/planted")
    _untouched(host_dir)
    assert inside > 0   # the copies did meet the directory (and so ran)
