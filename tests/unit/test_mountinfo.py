"""/proc/PID/mountinfo lines as the kernel writes them: escaped names, optional fields, bind roots."""

from __future__ import annotations

import os

import pytest

from skiff import mountinfo
from skiff.mountinfo import Mount

TABLE = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
30 22 8:1 /srv/data /mnt/bind rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
31 22 0:45 / /mnt/with\\040space\\011tab\\012nl\\134slash rw - tmpfs my\\040tmp rw,size=1024k
32 22 0:46 / /mnt/slave rw,relatime master:1 propagate_from:2 - xfs /dev/sdb rw
33 22 0:47 / /mnt/private rw - overlay overlay rw,lowerdir=/l/a:/l/b,upperdir=/u,workdir=/w
34 31 0:48 / /mnt/with\\040space\\011tab\\012nl\\134slash/inner ro - tmpfs tmpfs rw
35 22 0:49 / /mnt/bind rw - tmpfs over rw
"""


def test_every_field_of_a_line() -> None:
    mount = mountinfo.parse_line("36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n")
    assert mount == Mount(mount_id=36, parent_id=35, major=98, minor=0, root="/mnt1", mount_point="/mnt2",
                          options="rw,noatime", optional=("master:1",), fstype="ext3", source="/dev/root",
                          super_options="rw,errors=continue")


def test_optional_fields_none_one_or_several() -> None:
    mounts = {m.mount_point: m for m in mountinfo.parse(TABLE)}
    assert mounts["/mnt/private"].optional == ()
    assert mounts["/proc"].optional == ("shared:12",)
    slave = mounts["/mnt/slave"]
    assert slave.optional == ("master:1", "propagate_from:2") and (slave.fstype, slave.source) == ("xfs", "/dev/sdb")


def test_escaped_names_are_decoded_in_paths_and_source() -> None:
    odd = [m for m in mountinfo.parse(TABLE) if m.mount_id == 31][0]
    assert odd.mount_point == "/mnt/with space\ttab\nnl\\slash"
    assert odd.source == "my tmp" and odd.super_options == "rw,size=1024k"


@pytest.mark.parametrize("raw, decoded", [
    ("/plain", "/plain"), ("/a\\040b", "/a b"), ("/a\\134040", "/a\\040"), ("\\040", " "),
    ("/x\\", "/x\\"), ("/x\\08", "/x\\08"), ("/x\\9999", "/x\\9999"), ("/a\\054b\\075c", "/a,b=c"),
])
def test_unescape_decodes_the_kernels_octal_only(raw: str, decoded: str) -> None:
    assert mountinfo.unescape(raw) == decoded


def test_an_escaped_high_byte_is_the_surrogate_of_the_raw_byte() -> None:
    # The rest of the line is read with surrogateescape: an escaped byte must come back the same way.
    assert os.fsencode(mountinfo.unescape("/d\\351j\\340")) == b"/d\xe9j\xe0"


def test_bind_mount_root_is_the_source_directory() -> None:
    bind = [m for m in mountinfo.parse(TABLE) if m.mount_id == 30][0]
    assert (bind.root, bind.mount_point, bind.major, bind.minor) == ("/srv/data", "/mnt/bind", 8, 1)


def test_lines_that_are_not_mounts_are_skipped() -> None:
    assert mountinfo.parse("\n22 1 8:1 / / rw\ngarbage\n23 1 x:y / /a rw - ext4 d rw\n" + TABLE)[0].mount_id == 22
    assert len(mountinfo.parse(TABLE)) == 8


def test_containing_is_the_deepest_mount_and_the_top_of_a_stack(tmp_path) -> None:
    mounts = mountinfo.parse(TABLE)
    assert mountinfo.containing("/mnt/bind/x", mounts).source == "over"      # mounted over the bind
    assert mountinfo.containing("/mnt/slave/a/b", mounts).fstype == "xfs"
    assert mountinfo.containing("/mnt/slaves", mounts).fstype == "ext4"      # a prefix is not a parent
    assert mountinfo.containing("/mnt/with space\ttab\nnl\\slash/inner/f", mounts).mount_id == 34


def test_under_lists_a_mount_point_and_what_is_below_it() -> None:
    mounts = mountinfo.parse(TABLE)
    assert [m.mount_id for m in mountinfo.under("/mnt/with space\ttab\nnl\\slash", mounts)] == [31, 34]
    assert mountinfo.under("/mnt/with", mounts) == []


def test_is_mount_point_compares_decoded_paths() -> None:
    mounts = mountinfo.parse(TABLE)
    assert mountinfo.is_mount_point("/mnt/with space\ttab\nnl\\slash", mounts)
    assert not mountinfo.is_mount_point("/mnt/with\\040space\\011tab\\012nl\\134slash", mounts)
    assert not mountinfo.is_mount_point("/mnt", mounts)


def test_this_process_table_has_a_root() -> None:
    assert any(m.mount_point == "/" for m in mountinfo.read())
