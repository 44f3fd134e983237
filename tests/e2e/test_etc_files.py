"""/etc/hosts, /etc/resolv.conf and /etc/hostname as Docker 20.10 gives them (issue 13, "Behaviours").

Recorded from a private dockerd 20.10.24 (busybox, ``--network none`` unless said):

- ``-v VOL:/etc`` or ``-v DIR:/etc``: the three files are mounted over it, after it; a new
  volume's copy-up and a bound directory receive empty 0755 files as mount points (Docker's
  init layer masks the image's own ``/etc/hosts``...).
- ``--read-only``: the three mounts are read-only too; ``-v FILE:/etc/hosts`` replaces Docker's.
- A symlink ``hosts -> /proc/...`` in a directory over /etc is refused (runc: "cannot be mounted
  because it is inside /proc", exit 125); one to a host path is resolved inside the container.
- ``/etc/hosts``: Docker's six localhost lines, ``--add-host`` entries in order, then
  ``IP<TAB>hostname`` (the container's name is not there); ``/etc/resolv.conf``: ``search``,
  then ``nameserver``s, then ``options``.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

from tests.conftest import Skiff

NONE = ("--network", "none")
LOCALHOST = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
             "ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
ETC_FILES = ("hostname", "hosts", "resolv.conf")


def etc_mounts(mountinfo: str) -> dict[str, list[str]]:
    """Mount point -> its per-mount options, for /etc and what is under it."""
    found = {}
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 9 and " - " in line and (fields[4] == "/etc" or fields[4].startswith("/etc/")):
            found[fields[4]] = fields[5].split(",")
    return found


def assert_mount_points(directory: Path) -> None:
    """Empty files of mode 0755, as Docker's init layer (and runc's mount points) leave them."""
    for name in ETC_FILES:
        st = os.lstat(directory / name)
        assert stat.S_ISREG(st.st_mode) and st.st_size == 0, name
        assert stat.S_IMODE(st.st_mode) == 0o755, f"{name}: {oct(st.st_mode)}"


def test_a_new_volume_over_etc_still_gets_the_files_and_copies_their_mount_points(
        skiff: Skiff, busybox_image: str) -> None:
    out = skiff.ok("run", "--rm", *NONE, "-h", "box", "-v", "etcvol:/etc", busybox_image,
                   "sh", "-c", "cat /etc/hostname /etc/hosts; cat /proc/self/mountinfo")
    assert out.startswith("box\n" + LOCALHOST)
    mounts = etc_mounts(out)
    assert list(mounts) == ["/etc", "/etc/resolv.conf", "/etc/hostname", "/etc/hosts"]  # Docker's order
    data = skiff.root / "volumes" / "etcvol" / "_data"
    assert {"passwd", "group"} <= set(os.listdir(data))  # the image's /etc was copied up
    assert_mount_points(data)


def test_copy_up_at_etc_masks_the_images_own_files(skiff: Skiff, busybox_tar: Path, tmp_path: Path) -> None:
    """Docker's init layer hides an image's /etc/hosts (and a /etc/resolv.conf symlink): a new
    volume at /etc gets empty mount points, never the image's content or link."""
    image_tar = tmp_path / "with-etc.tar"
    image_tar.write_bytes(busybox_tar.read_bytes())
    with tarfile.open(image_tar, "a") as tar:
        content = b"10.9.9.9 from-the-image\n"
        info = tarfile.TarInfo("etc/hosts")
        info.size, info.mode = len(content), 0o600
        tar.addfile(info, io.BytesIO(content))
        link = tarfile.TarInfo("etc/resolv.conf")
        link.type, link.linkname = tarfile.SYMTYPE, "../run/stub-resolv.conf"
        tar.addfile(link)
    skiff.ok("import", str(image_tar), "etcimage:latest", "--change", 'CMD ["sh"]')
    out = skiff.ok("run", "--rm", *NONE, "-v", "etcvol2:/etc", "etcimage", "sh", "-c",
                   "cat /etc/hosts /etc/resolv.conf; test -e /run/stub-resolv.conf && echo FOLLOWED; true")
    assert out.startswith(LOCALHOST) and "from-the-image" not in out
    assert "FOLLOWED" not in out  # the mount went on /etc/resolv.conf, not through the image's link
    assert_mount_points(skiff.root / "volumes" / "etcvol2" / "_data")


def test_a_bound_directory_over_etc_still_gets_the_files(skiff: Skiff, busybox_image: str, tmp_path: Path) -> None:
    bound = tmp_path / "etc"
    bound.mkdir()
    (bound / "mine").write_text("kept\n")
    out = skiff.ok("run", "--rm", *NONE, "-h", "box", "-v", f"{bound}:/etc", busybox_image,
                   "sh", "-c", "cat /etc/mine /etc/hostname; head -1 /etc/hosts")
    assert out == "kept\nbox\n127.0.0.1\tlocalhost\n"
    assert sorted(os.listdir(bound)) == ["hostname", "hosts", "mine", "resolv.conf"]
    assert_mount_points(bound)  # what runc leaves in a bound directory


def test_a_read_only_volume_over_etc_gets_writable_files_as_docker(skiff: Skiff, busybox_image: str) -> None:
    """Only --read-only makes them read-only: a read-only /etc volume keeps them writable."""
    out = skiff.ok("run", "--rm", *NONE, "-v", "etcro:/etc:ro", busybox_image,
                   "sh", "-c", "echo changed > /etc/hostname && cat /etc/hostname; cat /proc/self/mountinfo")
    assert out.startswith("changed\n")
    mounts = etc_mounts(out)
    assert "ro" in mounts["/etc"] and "rw" in mounts["/etc/hostname"]


def test_read_only_makes_them_read_only(skiff: Skiff, busybox_image: str) -> None:
    proc = skiff("run", "--rm", *NONE, "--read-only", busybox_image, "sh", "-c",
                 "cat /proc/self/mountinfo; for f in hosts resolv.conf hostname; do echo x >> /etc/$f || echo RO $f; done")
    assert proc.returncode == 0, proc.stderr
    mounts = etc_mounts(proc.stdout)
    assert all("ro" in mounts[f"/etc/{name}"] for name in ETC_FILES), mounts
    assert [line for line in proc.stdout.splitlines() if line.startswith("RO ")] == [
        "RO hosts", "RO resolv.conf", "RO hostname"]


def test_a_file_the_user_mounts_on_etc_hosts_replaces_the_engines(
        skiff: Skiff, busybox_image: str, tmp_path: Path) -> None:
    mine = tmp_path / "hosts"
    mine.write_text("10.1.1.1 mine\n")
    out = skiff.ok("run", "--rm", *NONE, "--read-only", "-v", f"{mine}:/etc/hosts:ro", busybox_image,
                   "sh", "-c", "cat /etc/hosts; cat /proc/self/mountinfo")
    assert out.startswith("10.1.1.1 mine\n")
    mounts = etc_mounts(out)
    assert sorted(mounts) == ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"]  # one mount on /etc/hosts
    assert mine.read_text() == "10.1.1.1 mine\n"


def test_hostile_links_in_a_directory_over_etc_redirect_nothing(
        skiff: Skiff, busybox_image: str, tmp_path: Path) -> None:
    """A volume's /etc/hosts that is a symlink into /proc is refused (as runc refuses it); one to
    a host path is followed inside the container's root, so the host file is never touched."""
    bound = tmp_path / "etc"
    bound.mkdir()
    host_file = tmp_path / "host-file"
    host_file.write_text("host data\n")
    (bound / "hosts").symlink_to("/proc/self/attr/current")
    proc = skiff("run", "--rm", *NONE, "-v", f"{bound}:/etc", busybox_image, "true")
    assert proc.returncode == 125 and "/etc/hosts refused" in proc.stderr and "/proc" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    for entry in bound.iterdir():  # the mount points made before the refusal, as runc leaves them
        entry.unlink()
    (bound / "resolv.conf").symlink_to(host_file)
    out = skiff.ok("run", "--rm", *NONE, "--dns", "10.0.0.53", "-v", f"{bound}:/etc", busybox_image,
                   "sh", "-c", f"cat /etc/resolv.conf; cat {host_file}")
    assert out == "nameserver 10.0.0.53\nnameserver 10.0.0.53\n"  # the container's own copy of the path
    assert host_file.read_text() == "host data\n"
    assert os.readlink(bound / "resolv.conf") == str(host_file)


def test_hosts_and_resolv_conf_are_written_as_docker(skiff: Skiff, busybox_image: str) -> None:
    out = skiff.ok("run", "--rm", *NONE, "--name", "named", "-h", "box",
                   "--add-host", "foo:10.0.0.1", "--add-host", "bar:10.0.0.2", "--add-host", "foo:10.0.0.3",
                   "--dns", "1.2.3.4", "--dns", "5.6.7.8", "--dns-search", "a.example", "--dns-search", "b.example",
                   "--dns-option", "ndots:2", "--dns-option", "rotate",
                   busybox_image, "sh", "-c", "cat /etc/hosts; echo --; cat /etc/resolv.conf")
    assert out == (LOCALHOST + "10.0.0.1\tfoo\n10.0.0.2\tbar\n10.0.0.3\tfoo\n--\n"
                   "search a.example b.example\nnameserver 1.2.3.4\nnameserver 5.6.7.8\noptions ndots:2 rotate\n")


def test_the_own_line_of_hosts_is_ip_and_hostname_only(skiff: Skiff, busybox_image: str) -> None:
    """On the default bridge Docker writes ``IP<TAB>FQDN SHORT``, never the container's name."""
    out = skiff.ok("run", "--rm", "--name", "named", "-h", "box", "--domainname", "example.com", busybox_image,
                   "sh", "-c", "tail -1 /etc/hosts; ip -o -4 addr show eth0")
    own, address = out.splitlines()
    assert own == f"{address.split()[3].split('/')[0]}\tbox.example.com box"
