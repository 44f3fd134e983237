"""The pure parts of ``docker cp`` and the API's update: tar entry names, Go's file modes, the
names of the top entry, UpdateConfig as ``skiff update``'s flags."""

from __future__ import annotations

import os
import stat

import pytest

from skiff.api.inspection import _restart_text, update_flags
from skiff.api.errors import BadRequest
from skiff.engine.archive import GO_DIR, GO_SETUID, GO_STICKY, GO_SYMLINK, clean, go_mode, member_parts, tar_name
from skiff.errors import ArchiveRefused


@pytest.mark.parametrize("name", ["/etc/passwd", "../x", "a/../../x", "a/b/../../../x", "..", "/"])
def test_hostile_member_names_are_refused(name: str) -> None:
    with pytest.raises(ArchiveRefused):
        member_parts(name)


def test_member_names_below_the_destination() -> None:
    assert member_parts("./a/b/") == ["a", "b"]
    assert member_parts("a//./b") == ["a", "b"]
    assert member_parts("./") == []
    assert member_parts("a..b/..c") == ["a..b", "..c"]  # dots inside a name are just a name


def test_clean_never_rises_above_the_root() -> None:
    assert clean("../../etc/../x") == "/x"
    assert clean("root/./d/") == "/root/d"
    assert clean("") == "/"


def test_tar_names_as_docker_rebases_them() -> None:
    assert tar_name("/etc/passwd") == "passwd"
    assert tar_name("/srv/tree/") == "tree"
    assert tar_name("/srv/tree/.") == "."
    assert tar_name("/") == "."


def _stat(mode: int) -> os.stat_result:
    return os.stat_result((mode, 0, 0, 0, 0, 0, 0, 0, 0, 0))


def test_go_file_modes() -> None:
    assert go_mode(_stat(stat.S_IFDIR | 0o755)) == GO_DIR | 0o755
    assert go_mode(_stat(stat.S_IFLNK | 0o777)) == GO_SYMLINK | 0o777
    assert go_mode(_stat(stat.S_IFREG | 0o4755)) == GO_SETUID | 0o755
    assert go_mode(_stat(stat.S_IFDIR | 0o1777)) == GO_DIR | GO_STICKY | 0o777
    assert go_mode(_stat(stat.S_IFREG | 0o644)) == 0o644


def test_update_config_as_flags() -> None:
    body = {"Memory": 64 << 20, "MemorySwap": 0, "NanoCpus": 1_500_000_000, "CpusetCpus": "", "PidsLimit": None,
            "CpuShares": 512}
    assert update_flags(body) == {"memory": str(64 << 20), "cpus": "1.5", "cpu_shares": "512"}
    with pytest.raises(BadRequest):
        update_flags({"Memory": [1]})
    with pytest.raises(BadRequest):
        update_flags({"NanoCpus": "1"})
    assert _restart_text({"Name": "on-failure", "MaximumRetryCount": 3}) == "on-failure:3"
    assert _restart_text({"Name": "always", "MaximumRetryCount": 0}) == "always"
    assert _restart_text({"Name": ""}) is None
