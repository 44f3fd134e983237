"""The container's environment and user, by Docker 20.10's rules, where the parity scenarios
(tests/parity: run-env-*, run-user-*, group-add) do not reach: image variables, unset names,
repeated names, an empty HOME, --env-file's edge cases, and groups with an explicit group."""

from __future__ import annotations

from pathlib import Path

import pytest

from skiff.engine.options import RunOptions
from skiff.engine.spec import environment, read_env_file
from skiff.engine.users import resolve_user
from skiff.errors import InvalidArgument

IMAGE = {"Env": ["PATH=/image/bin", "FOO=image", "KEEP=1"]}
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def env(*flags: str, image: dict | None = None, tty: bool = False, files: tuple[str, ...] = ()) -> list[str]:
    opts = RunOptions(image="x", env=flags, env_files=files, tty=tty)
    return environment(image if image is not None else IMAGE, opts, "box", "/root")


def test_image_variables_follow_the_users_and_path_keeps_its_place() -> None:
    assert env("A=1", "FOO=user") == ["PATH=/image/bin", "HOSTNAME=box", "A=1", "FOO=user", "KEEP=1",
                                      "HOME=/root"]


def test_a_bare_name_unset_on_the_host_removes_the_images_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FOO", raising=False)
    monkeypatch.delenv("PATH_UNSET_HERE", raising=False)
    assert env("FOO") == ["PATH=/image/bin", "HOSTNAME=box", "KEEP=1", "HOME=/root"]
    monkeypatch.setenv("FOO", "host")
    assert env("FOO") == ["PATH=/image/bin", "HOSTNAME=box", "FOO=host", "KEEP=1", "HOME=/root"]


def test_a_repeated_name_keeps_its_first_place_and_last_value() -> None:
    assert env("A=1", "B=2", "A=3", image={}) == [DEFAULT_PATH, "HOSTNAME=box", "A=3", "B=2", "HOME=/root"]


def test_home_set_empty_is_the_users_home_and_term_with_a_tty() -> None:
    assert env("HOME=", image={}, tty=True) == [DEFAULT_PATH, "HOSTNAME=box", "TERM=xterm", "HOME=/root"]
    assert env("HOME=/h", "TERM=dumb", image={}, tty=True) == [DEFAULT_PATH, "HOSTNAME=box", "TERM=dumb", "HOME=/h"]


def test_env_file_keeps_values_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROM_HOST", "h")
    monkeypatch.delenv("NOT_ON_HOST", raising=False)
    path = tmp_path / "env"
    path.write_bytes(b"\xef\xbb\xbf  A= x \r\n\t# note\nB=a=b\n  FROM_HOST\nNOT_ON_HOST\n\n")
    assert read_env_file(str(path)) == ["A= x ", "B=a=b", "FROM_HOST=h"]


@pytest.mark.parametrize(("line", "message"), [
    ("A B=1", "poorly formatted environment: variable 'A B' contains whitespaces"),
    ("NAME ", "poorly formatted environment: variable 'NAME ' contains whitespaces"),
    ("=1", "poorly formatted environment: no variable name on line '=1'"),
])
def test_env_file_bad_names(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "env"
    path.write_text(line + "\n")
    with pytest.raises(InvalidArgument, match=message):
        read_env_file(str(path))


def test_groups_of_an_explicit_group_and_of_a_name(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n")
    (tmp_path / "etc/group").write_text("root:x:0:\nwheel:x:10:root,user\nusers:x:100:user\nuser:x:1000:\n")
    assert resolve_user(tmp_path, "").additional_gids == [0, 10]
    assert resolve_user(tmp_path, "user").additional_gids == [1000, 10, 100]
    assert resolve_user(tmp_path, "1000").additional_gids == [1000, 10, 100]     # a uid finds the name
    assert resolve_user(tmp_path, "user:users").additional_gids == [100]        # explicit: only that group
    assert resolve_user(tmp_path, "1000:wheel").gid == 10
    assert resolve_user(tmp_path, "4242").additional_gids == [0]
