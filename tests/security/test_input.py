"""Input that ends up in names, listings and /etc files, checked as Docker checks it; credentials kept private.

Every refusal happens before anything is created: no record, no mount, exit 125.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Skiff
from tests.registry import servers
from tests.registry.conftest import reg_env, rskiff  # noqa: F401 (fixtures)

BAD_NAMES = ["a/b", "../../x", "x\ny", "-x", ".x", "x y", "é"]


def ps_names(skiff: Skiff) -> list[str]:
    return [json.loads(line)["Names"] for line in skiff.ok("ps", "-a", "--format", "json").splitlines()]


def _no_records(skiff: Skiff) -> None:
    containers = skiff.root / "containers"
    assert not [p for p in containers.iterdir() if not p.name.startswith(".")] if containers.exists() else True


@pytest.mark.parametrize("name", BAD_NAMES)
@pytest.mark.parametrize("command", ["run", "create"])
def test_invalid_container_names_are_refused(sk: Skiff, command: str, name: str) -> None:
    result = sk(command, "--network", "none", f"--name={name}", "busybox", "true")
    assert result.returncode == 125, result
    assert result.stderr == (f"skiff: Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] "
                             "are allowed\n"), result.stderr
    _no_records(sk)
    assert ps_names(sk) == []


def test_rename_refuses_a_newline_and_ps_stays_one_line_per_container(sk: Skiff) -> None:
    sk.ok("create", "--network", "none", "--name", "good.name_1-x", "busybox", "true")
    result = sk("rename", "good.name_1-x", "evil\nline")
    assert result.returncode != 0 and "Invalid container name" in result.stderr, result
    assert ps_names(sk) == ["good.name_1-x"]
    assert len(sk.ok("ps", "-a").splitlines()) == 2


@pytest.mark.parametrize("flags, message", [
    (["--dns-search", "example.com\noptions ndots:15"],
     'invalid argument "example.com\noptions ndots:15" for "--dns-search" flag: '
     "example.com\noptions ndots:15 is not a valid domain"),
    (["--dns-search", "a_b"], 'invalid argument "a_b" for "--dns-search" flag: a_b is not a valid domain'),
    (["--dns", "1.1.1.1\nnameserver 6.6.6.6"], 'for "--dns" flag: IP address is not correctly formatted'),
    (["--dns-option", "ndots:1\nnameserver 6.6.6.6"], 'for "--dns-option" flag'),
    (["--dns-option", "ndots:1 rotate"], 'for "--dns-option" flag'),
    (["--add-host", "evil\n6.6.6.6 victim:1.2.3.4"], 'for "--add-host" flag: invalid host name'),
    (["--add-host", "a b:1.2.3.4"], 'for "--add-host" flag: invalid host name'),
    (["--add-host", "ok:1.2.3.4x"], 'invalid IP address in add-host: "1.2.3.4x"'),
    (["--hostname", "box\n6.6.6.6 victim"], "invalid hostname format: box\n6.6.6.6 victim"),
    (["-h", "a" * 65], "invalid hostname format"),
])
@pytest.mark.parametrize("network", ["none", "host"])
def test_values_for_etc_files_are_checked_before_anything_is_created(sk: Skiff, flags: list[str], message: str,
                                                                   network: str) -> None:
    result = sk("run", "--rm", "--network", network, *flags, "busybox", "cat", "/etc/hosts", "/etc/resolv.conf")
    assert result.returncode == 125, result
    assert message in result.stderr and result.stderr.startswith("skiff: "), result.stderr
    assert result.stdout == ""
    _no_records(sk)


def test_valid_etc_values_are_written(sk: Skiff) -> None:
    out = sk.ok("run", "--rm", "--network", "none", "-h", "box_1.example", "--add-host", "db.local:10.0.0.9",
                "--dns", "10.0.0.53", "--dns-search", "corp.example", "--dns-search", ".",
                "--dns-option", "ndots:2", "busybox", "cat", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf")
    assert "box_1.example\n" in out and "10.0.0.9\tdb.local\n" in out
    assert "nameserver 10.0.0.53\n" in out and "options ndots:2\n" in out


@pytest.mark.parametrize("name", ["net\n", "a/b", "-n"])
def test_network_names_reject_newlines_and_slashes(skiff: Skiff, name: str) -> None:
    result = skiff("network", "create", "--", name)
    assert result.returncode != 0 and "invalid network name" in result.stderr, result
    assert not list((skiff.root / "network").glob("**/*\n*"))


@pytest.mark.parametrize("name", ["vol\n", "a/b", "x"])
def test_volume_names_reject_newlines_and_slashes(skiff: Skiff, name: str) -> None:
    result = skiff("volume", "create", "--", name)
    assert result.returncode != 0, result
    assert skiff.ok("volume", "ls", "-q") == ""


@pytest.mark.parametrize("ref", ["busybox:a\nb", "busy box", "../busybox", "busybox:" + "t" * 129])
def test_image_references_are_validated(skiff: Skiff, busybox_image: str, ref: str) -> None:
    result = skiff("tag", "busybox", ref)
    assert result.returncode != 0 and "\n" not in result.stderr.rstrip("\n"), result
    assert json.loads(skiff.ok("image", "inspect", "busybox"))[0]["RepoTags"] == ["busybox:latest"]
    assert len(skiff.ok("images").splitlines()) == 2


# --- credentials ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.Registry]:
    directory = tmp_path_factory.mktemp("registry-token")
    registry = servers.start_registry(directory, token=servers.TokenServer(directory / "token"))
    yield registry
    registry.stop()


@pytest.fixture
def umask_zero() -> Iterator[None]:
    """The most permissive umask: whatever skiff makes private, it must make so itself."""
    old = os.umask(0)
    yield
    os.umask(old)


def test_credentials_directory_is_private_whatever_the_umask(rskiff: Skiff, token_registry: servers.Registry,
                                                              umask_zero: None) -> None:
    host = token_registry.host
    (Path(rskiff.env["SKIFF_CONFIG_DIR"]) / "registries.json").write_text(json.dumps({"insecure": [host]}))
    auth_file = Path(rskiff.env["SKIFF_AUTH_FILE"])
    assert not auth_file.parent.exists()
    result = rskiff("login", "-u", servers.USER, "--password-stdin", host, input=servers.PASSWORD + "\n")
    assert result.returncode == 0, result
    assert "Using --password via the CLI is insecure" not in result.stderr
    assert stat.S_IMODE(auth_file.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(auth_file.stat().st_mode) == 0o600
    assert [p.name for p in auth_file.parent.iterdir()] == ["auth.json"]  # no temp file left


def test_password_on_the_command_line_warns(rskiff: Skiff, token_registry: servers.Registry) -> None:
    host = token_registry.host
    (Path(rskiff.env["SKIFF_CONFIG_DIR"]) / "registries.json").write_text(json.dumps({"insecure": [host]}))
    result = rskiff("login", "-u", servers.USER, "-p", servers.PASSWORD, host)
    assert result.returncode == 0, result
    assert result.stderr.splitlines()[0] == "WARNING! Using --password via the CLI is insecure. Use --password-stdin."
    assert result.stdout == "Login Succeeded\n"
