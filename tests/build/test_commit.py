"""``skiff commit`` (and the layer it writes from a container's upper dir), run afterwards."""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
from pathlib import Path

from tests.conftest import Skiff


def test_commit_of_a_changed_container_runs(skiff: Skiff, busybox_image: str) -> None:
    skiff.ok("run", "--name", "changed", "--network", "none", "-e", "FROM_RUN=1", busybox_image, "sh", "-c",
             "echo new > /new; rm /bin/vi; mkdir -p /tmp/d; echo in > /tmp/d/f; rm -rf /etc; mkdir /etc;"
             "echo only > /etc/only; ln /new /hard")
    image = skiff.ok("commit", "-c", 'CMD ["cat", "/new"]', "-c", "ENV ADDED=yes", "-m", "a message",
                     "-a", "someone", "changed", "committed:v1").strip()
    assert image.startswith("sha256:") and len(image) == 71
    assert skiff.ok("run", "--rm", "--network", "none", "committed:v1") == "new\n"
    out = skiff.ok("run", "--rm", "--network", "none", "committed:v1", "sh", "-c",
                   "ls /bin/vi 2>&1; cat /tmp/d/f; cat /etc/only; ls /etc/group 2>&1; stat -c %h /hard;"
                   "echo $FROM_RUN $ADDED")
    assert out.splitlines() == ["ls: /bin/vi: No such file or directory", "in", "only",
                                "ls: /etc/group: No such file or directory", "2", "1 yes"]
    doc = json.loads(skiff.ok("image", "inspect", "committed:v1"))[0]
    assert doc["Author"] == "someone" and doc["Comment"] == "a message"
    assert doc["Config"]["Cmd"] == ["cat", "/new"] and len(doc["RootFS"]["Layers"]) == 2
    assert doc["Container"] and doc["ContainerConfig"]["Cmd"][0] == "sh"
    skiff.ok("rm", "changed")


def test_commit_of_a_running_container_pauses_it(skiff: Skiff, busybox_image: str) -> None:
    cid = skiff.ok("run", "-d", "--network", "none", busybox_image, "sh", "-c",
                   "echo up > /up; sleep 60").strip()
    try:
        deadline = time.time() + 10
        while "up" not in skiff("exec", cid, "cat", "/up").stdout and time.time() < deadline:
            time.sleep(0.05)
        skiff.ok("commit", cid, "running:v1")
        assert skiff.ok("inspect", "-f", "{{.State.Status}}", cid).strip() == "running"
        assert skiff.ok("run", "--rm", "--network", "none", "running:v1", "cat", "/up") == "up\n"
        events = skiff.ok("events", "--since", "0", "--until", "0s", "--filter", f"container={cid}",
                          "--format", "{{.Action}}")
        assert "pause" in events.split() and "commit" in events.split()
    finally:
        skiff("rm", "-f", cid)


def test_commit_refuses_instructions_docker_refuses(skiff: Skiff, busybox_image: str) -> None:
    skiff.ok("create", "--name", "made", "--network", "none", busybox_image)
    failed = skiff("commit", "-c", "RUN echo no", "made")
    assert failed.returncode == 1 and "run is not a valid change command" in failed.stderr
    assert skiff("commit", "nope").returncode == 1
    # a container that never ran: an empty layer (Docker's empty tar digest)
    skiff.ok("commit", "made", "empty:v1")
    layers = json.loads(skiff.ok("image", "inspect", "-f", "{{json .RootFS.Layers}}", "empty:v1"))
    assert layers[-1] == "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
    skiff.ok("rm", "made")


def test_pack_turns_overlay_whiteouts_into_oci_entries(tmp_path: Path) -> None:
    from skiff.image.pack import write_layer_tar

    upper = tmp_path / "upper"
    (upper / "dir").mkdir(parents=True)
    (upper / "dir" / "f").write_text("hi")
    os.link(upper / "dir" / "f", upper / "dir" / "g")
    os.mknod(upper / "gone", 0o600 | 0o020000, os.makedev(0, 0))
    (upper / "opaque").mkdir()
    os.setxattr(upper / "opaque", "trusted.overlay.opaque", b"y")
    os.setxattr(upper / "dir" / "f", "user.note", b"kept")
    os.symlink("/etc/passwd", upper / "link")
    with open(upper / "sparse", "wb") as f:
        f.truncate(8 << 20)
        f.seek(4 << 20)
        f.write(b"x")
    os.utime(upper / "dir" / "f", (2_000_000_000, 2_000_000_000))
    out = io.BytesIO()
    packed = write_layer_tar(upper, out, epoch=1_000)
    out.seek(0)
    members = {m.name: m for m in tarfile.open(fileobj=out)}
    assert sorted(members) == ["dir", "dir/f", "dir/g", ".wh.gone", "link", "opaque", "opaque/.wh..wh..opq",
                               "sparse"] or set(members) == {"dir", "dir/f", "dir/g", ".wh.gone", "link", "opaque",
                                                            "opaque/.wh..wh..opq", "sparse"}
    assert members["dir/g"].islnk() and members["dir/g"].linkname == "dir/f"
    assert members["dir/f"].pax_headers["SCHILY.xattr.user.note"] == "kept"
    assert members["dir/f"].mtime == 1_000  # clamped to SOURCE_DATE_EPOCH
    assert members["link"].issym() and members["link"].linkname == "/etc/passwd"
    assert members["sparse"].sparse is not None and members["sparse"].size == 8 << 20
    assert packed.size == len(out.getvalue()) and packed.size < 1 << 20
