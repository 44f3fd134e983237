"""Docker 20.10's command line and a few of its container behaviours, as skiff must mirror them.

The expected texts are those of Docker 20.10's client (``/usr/bin/docker`` of the
docker.io package prints them without a daemon) with ``skiff`` for ``docker``.
Containers use ``--network none`` unless the network mode is the point.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator

import pytest

from tests.conftest import Skiff


def inspect(skiff: Skiff, ref: str) -> dict:
    return json.loads(skiff.ok("inspect", ref))[0]


@pytest.fixture
def sleeper(skiff: Skiff, busybox_image: str) -> Iterator[str]:
    """A running container named ``sleeper`` (hostname ``alpha``), removed afterwards."""
    skiff.ok("run", "-d", "--name", "sleeper", "-h", "alpha", "--network", "none", busybox_image, "sleep", "120")
    yield "sleeper"
    skiff("rm", "-f", "sleeper")


# --- the command line ---------------------------------------------------------------------------


def test_abbreviated_flag_is_an_unknown_flag(skiff: Skiff, busybox_image: str) -> None:
    # argparse took --nam for --name; Docker's parser knows no abbreviations.
    proc = skiff("run", "--rm", "--nam", "x", "--network", "none", busybox_image, "true")
    assert (proc.returncode, proc.stderr) == (125, "unknown flag: --nam\nSee 'skiff run --help'.\n")
    proc = skiff("ps", "--al")
    assert (proc.returncode, proc.stderr) == (125, "unknown flag: --al\nSee 'skiff ps --help'.\n")
    assert skiff.ok("ps", "-a", "-q") == ""


@pytest.mark.parametrize("argv,message", [
    (["run", "--bogus", "busybox"], "unknown flag: --bogus\nSee 'skiff run --help'.\n"),
    (["run", "-x", "busybox"], "unknown shorthand flag: 'x' in -x\nSee 'skiff run --help'.\n"),
    (["create", "--bogus=1", "busybox"], "unknown flag: --bogus\nSee 'skiff create --help'.\n"),
    (["exec", "--bogus", "c", "ls"], "unknown flag: --bogus\nSee 'skiff exec --help'.\n"),
    (["rm", "--bogus"], "unknown flag: --bogus\nSee 'skiff rm --help'.\n"),  # before the missing argument
    (["volume", "ls", "--bogus"], "unknown flag: --bogus\nSee 'skiff volume ls --help'.\n"),
    (["--bogus", "ps"], "unknown flag: --bogus\nSee 'skiff --help'.\n"),
    (["run", "--memory"], "flag needs an argument: --memory\nSee 'skiff run --help'.\n"),
])
def test_unknown_flag_is_dockers_message_and_125(skiff: Skiff, argv: list[str], message: str) -> None:
    # Docker 20.10 exits 125 for a flag error in every command, rm and ps included.
    proc = skiff(*argv)
    assert (proc.returncode, proc.stderr) == (125, message)


@pytest.mark.parametrize("argv,first_line,usage", [
    (["rm"], '"skiff rm" requires at least 1 argument.', "skiff rm [OPTIONS] CONTAINER [CONTAINER...]"),
    (["container", "rm"], '"skiff container rm" requires at least 1 argument.',
     "skiff container rm [OPTIONS] CONTAINER [CONTAINER...]"),
    (["ps", "extra"], '"skiff ps" accepts no arguments.', "skiff ps [OPTIONS]"),
    (["logs"], '"skiff logs" requires exactly 1 argument.', "skiff logs [OPTIONS] CONTAINER"),
    (["port", "a", "80", "81"], '"skiff port" requires at least 1 and at most 2 arguments.',
     "skiff port CONTAINER [PRIVATE_PORT[/PROTO]]"),
    (["exec", "c"], '"skiff exec" requires at least 2 arguments.',
     "skiff exec [OPTIONS] CONTAINER COMMAND [ARG...]"),
    (["run", "-t"], '"skiff run" requires at least 1 argument.', "skiff run [OPTIONS] IMAGE [COMMAND] [ARG...]"),
    (["volume", "create", "a", "b"], '"skiff volume create" requires at most 1 argument.',
     "skiff volume create [OPTIONS] [VOLUME]"),
])
def test_argument_count_is_dockers_message_and_1(skiff: Skiff, argv: list[str], first_line: str,
                                                 usage: str) -> None:
    proc = skiff(*argv)
    assert proc.returncode == 1, proc.stderr
    command = first_line.split('"')[1]
    lines = proc.stderr.splitlines()
    assert lines[:4] == [first_line, f"See '{command} --help'.", "", f"Usage:  {usage}"], lines
    assert len(lines) == 6 and lines[5], lines  # and the command's one-line description


VOLUME_USAGE = """
Usage:  skiff volume COMMAND

Manage volumes

Commands:
  create      Create a volume
  inspect     Display detailed information on one or more volumes
  ls          List volumes
  prune       Remove unused local volumes
  rm          Remove one or more volumes

Run 'skiff volume COMMAND --help' for more information on a command.
"""


def test_a_group_without_its_command_prints_its_usage(skiff: Skiff) -> None:
    # Docker 20.10: the usage on stderr; 0 when no command was named, 1 for a word that is none
    assert (lambda p: (p.returncode, p.stdout, p.stderr))(skiff("volume")) == (0, "", VOLUME_USAGE)
    assert (lambda p: (p.returncode, p.stdout, p.stderr))(skiff("volume", "nope")) == (1, "", VOLUME_USAGE)


def test_tag_checks_both_references_as_dockers_client(skiff: Skiff, busybox_image: str) -> None:
    bad_source = skiff("tag", "Bad:Ref", "x")
    assert (bad_source.returncode, bad_source.stderr) == (1, 'skiff: Error parsing reference: "Bad:Ref" is not a '
                                                             "valid repository/tag: invalid reference format: "
                                                             "repository name must be lowercase\n")
    digest = skiff("tag", busybox_image, "x@sha256:" + "a" * 64)
    assert (digest.returncode, digest.stderr) == (1, "skiff: refusing to create a tag with a digest reference\n")


def test_port_with_no_public_port_exits_1(skiff: Skiff, sleeper: str) -> None:
    proc = skiff("port", sleeper, "81")
    assert proc.returncode == 1 and "No public port '81/tcp' published for sleeper" in proc.stderr


def test_run_it_without_a_terminal_exits_1(skiff: Skiff, busybox_image: str) -> None:
    proc = skiff("run", "--rm", "-it", "--network", "none", busybox_image, "true", input="")
    assert (proc.returncode, proc.stderr) == (1, "the input device is not a TTY\n")
    assert skiff.ok("ps", "-a", "-q") == ""


def test_create_it_needs_no_terminal(skiff: Skiff, busybox_image: str) -> None:
    # Only attaching needs one: Docker's create -it works from a script.
    cid = skiff.ok("create", "-it", "--network", "none", busybox_image, input="").strip()
    assert inspect(skiff, cid)["Config"]["Tty"] is True
    skiff.ok("rm", cid)


# --- behaviours ---------------------------------------------------------------------------------


def test_double_dash_after_the_image_is_the_commands(skiff: Skiff, busybox_image: str) -> None:
    # Docker stops parsing flags at the image: "--" is the command, which busybox does not have.
    proc = skiff("run", "--rm", "--network", "none", busybox_image, "--", "echo", "hi")
    assert proc.returncode == 127 and 'exec: "--"' in proc.stderr, proc
    assert skiff.ok("run", "--rm", "--network", "none", busybox_image, "echo", "--", "hi") == "-- hi\n"
    assert skiff.ok("run", "--rm", "--network", "none", "--", busybox_image, "echo", "hi") == "hi\n"


def test_exec_in_a_missing_workdir_fails_126(skiff: Skiff, sleeper: str) -> None:
    proc = skiff("exec", "-w", "/nope", sleeper, "pwd")
    assert proc.returncode == 126 and proc.stdout == "", proc
    assert 'chdir to cwd ("/nope")' in proc.stderr and "no such file or directory" in proc.stderr
    assert skiff("exec", sleeper, "test", "-e", "/nope").returncode == 1  # and it was not created
    assert skiff.ok("exec", "-w", "/tmp", sleeper, "pwd") == "/tmp\n"


def test_missing_command_leaves_a_created_container_with_127(skiff: Skiff, busybox_image: str) -> None:
    proc = skiff("run", "--name", "broken", "--network", "none", busybox_image, "nosuchcommand")
    assert proc.returncode == 127, proc.stderr
    state = inspect(skiff, "broken")["State"]
    assert (state["Status"], state["ExitCode"]) == ("created", 127)
    assert "nosuchcommand" in state["Error"]
    assert skiff("start", "broken").returncode == 1
    state = inspect(skiff, "broken")["State"]
    assert (state["Status"], state["ExitCode"]) == ("created", 127)
    skiff.ok("rm", "broken")


def test_host_network_gets_the_hosts_hostname(skiff: Skiff, busybox_image: str) -> None:
    out = skiff.ok("run", "--rm", "--network", "host", busybox_image, "sh", "-c",
                   "hostname; cat /etc/hostname; echo $HOSTNAME")
    assert out == f"{os.uname().nodename}\n" * 3


def test_container_network_gets_that_containers_hostname(skiff: Skiff, busybox_image: str,
                                                          sleeper: str) -> None:
    skiff.ok("create", "--name", "joiner", "--network", f"container:{sleeper}", busybox_image, "hostname")
    assert inspect(skiff, "joiner")["Config"]["Hostname"] == "alpha"
    assert skiff.ok("start", "-a", "joiner") == "alpha\n"
    skiff.ok("rm", "joiner")


def _time_wait_on(port: int) -> bool:
    with open("/proc/net/tcp") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    return any(row[1] == f"0100007F:{port:04X}" and row[3] == "06" for row in rows)


def test_port_probe_accepts_a_port_in_time_wait() -> None:
    """A host server that just closed leaves its port in TIME-WAIT: -p of it must work, as with Docker.

    The server sets SO_REUSEADDR as servers do (Go's listeners, Python's socketserver, nginx): the
    kernel lets a port in TIME-WAIT be bound again only when both sockets ask for it.
    """
    from skiff.network.ports import host_port_free

    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    conn, _ = server.accept()
    assert not host_port_free("127.0.0.1", port, "tcp")  # a listener still makes the port taken
    conn.close()  # the server side closes first: its end of the connection goes to TIME-WAIT
    client.recv(1)
    client.close()
    server.close()
    assert _time_wait_on(port)
    assert host_port_free("127.0.0.1", port, "tcp")
    assert host_port_free("", port, "tcp")
