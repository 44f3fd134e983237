"""The CLI's error edge and command table, without root: each command's exit status for each
kind of error (Docker 20.10's), the one line an error prints, and that ``skiff run`` builds and
imports only its own command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from skiff import errors
from skiff.cli.commands import MODULES
from skiff.cli.errors import error_line, exit_status
from skiff.cli.main import build_parser, main
from skiff.engine.users import resolve_user

REPO = Path(__file__).resolve().parents[2]


def status(argv: tuple[str, ...], error: errors.SkiffError) -> int:
    parsed = build_parser(argv[0]).parse_args(list(argv))
    return exit_status(error, getattr(parsed, "exit_codes", {}))


RUN = ("run", "busybox", "true")
CONTAINER_RUN = ("container", "run", "busybox", "true")
CREATE = ("create", "busybox")
EXEC = ("exec", "box", "true")
PULL = ("pull", "busybox")
STOP = ("stop", "box")


@pytest.mark.parametrize("argv, error, expected", [
    # docker run: skiff's own failures 125, the command's 127 (not found) and 126 (not executable)
    (RUN, errors.CommandNotFound('exec: "nope": executable file not found in $PATH'), 127),
    (RUN, errors.CommandNotExecutable('exec: "/etc": permission denied'), 126),
    (RUN, errors.ExecError("exec failed"), 125),
    (RUN, errors.ImageNotFound("No such image: x"), 125),
    (RUN, errors.ContainerConflict('Conflict. The container name "/a" is already in use'), 125),
    (RUN, errors.UnknownUser("unable to find user nobody2: no matching entries in passwd file"), 125),
    (RUN, errors.InvalidSignal("Invalid signal: SIGFOO"), 125),
    (RUN, errors.NotATerminal("the input device is not a TTY"), 1),
    (CONTAINER_RUN, errors.ContainerNotFound("No such container: x"), 125),
    (CONTAINER_RUN, errors.CommandNotFound("not found"), 127),
    # docker create: a name in use is the daemon's 1, the rest 125
    (CREATE, errors.ContainerConflict("name in use"), 1),
    (CREATE, errors.ImageNotFound("No such image: x"), 125),
    (CREATE, errors.InvalidSignal("Invalid signal: SIGFOO"), 125),
    # docker exec: whatever keeps the command from starting is 126, an unknown user too
    (EXEC, errors.CommandNotFound('exec: "nope": executable file not found in $PATH'), 126),
    (EXEC, errors.CommandNotExecutable("permission denied"), 126),
    (EXEC, errors.UnknownUser("unable to find user nobody2: no matching entries in passwd file"), 126),
    (EXEC, errors.UnknownUser("unable to find group nogroup2: no matching entries in group file"), 126),
    (EXEC, errors.InvalidArgument("--userns: invalid USER mode"), 125),  # the word "user" decides nothing
    (EXEC, errors.InvalidArgument("the working directory 'rel' is invalid"), 125),
    (EXEC, errors.ContainerNotFound("No such container: box"), 1),
    (EXEC, errors.ContainerNotRunning("Container box is not running"), 1),
    (EXEC, errors.NotATerminal("the input device is not a TTY"), 1),
    # docker pull: 1 whatever the registry or the store said; its own flags 125
    (PULL, errors.InvalidReference("invalid reference format"), 1),
    (PULL, errors.LayerError("bad layer"), 1),
    (PULL, errors.UsageError("--all-tags is not supported"), 125),
    # no table: the error's own status
    (STOP, errors.ContainerNotFound("No such container: box"), 1),
    (STOP, errors.InvalidArgument("bad"), 125),
])
def test_each_command_maps_error_types_to_dockers_status(argv: tuple[str, ...], error: errors.SkiffError,
                                                         expected: int) -> None:
    assert status(argv, error) == expected


def test_an_error_keeps_its_own_exit_code() -> None:
    """The tables decide; nothing changes the error (a library caller sees the same status)."""
    error = errors.CommandNotFound("not found")
    status(EXEC, error)
    assert error.exit_code == 127


def test_unknown_user_and_group_are_their_own_type(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (tmp_path / "etc" / "group").write_text("root:x:0:\n")
    with pytest.raises(errors.UnknownUser, match="unable to find user nobody2"):
        resolve_user(tmp_path, "nobody2")
    with pytest.raises(errors.UnknownUser, match="unable to find group nogroup2"):
        resolve_user(tmp_path, "root:nogroup2")


def test_one_line_style_for_every_error() -> None:
    assert error_line(errors.ContainerNotFound("No such container: x")) == "skiff: No such container: x"
    assert error_line("No such image: busybox") == "skiff: No such image: busybox"
    assert error_line(errors.InvalidFilter("Invalid filter 'foo'")) == "skiff: Invalid filter 'foo'"
    assert error_line(errors.InvalidArgument("bad", hint="see x")) == "skiff: bad (see x)"
    # Docker's client's own lines are printed as they are
    assert error_line(errors.UnknownFlag("unknown flag: --x\nSee 'skiff run --help'.")) == \
        "unknown flag: --x\nSee 'skiff run --help'."


@pytest.mark.parametrize("argv, stderr, code", [
    (["run", "--health-retries", "x", "busybox"],
     'invalid argument "x" for "--health-retries" flag: strconv.ParseInt: parsing "x": invalid syntax\n'
     "See 'skiff run --help'.\n", 125),
    (["events", "--since", "soon"], 'failed to parse value as time or duration: "soon"\n', 1),
    (["nosuch"], "skiff: 'nosuch' is not a skiff command.\nSee 'skiff --help'\n", 1),
])
def test_client_errors_print_one_way(argv: list[str], stderr: str, code: int,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == code
    assert capsys.readouterr().err == stderr


def test_inspect_template_that_does_not_parse_is_64(capsys: pytest.CaptureFixture[str]) -> None:
    """Docker's inspect checks --format before it looks anything up: 64, and no lookup."""
    assert main(["--root", "/nonexistent/root", "inspect", "-f", "{{", "x"]) == 64
    assert capsys.readouterr().err == "skiff: template parsing error: template: :1: unclosed action\n"


def test_the_table_names_the_module_of_every_command() -> None:
    full = build_parser()
    choices = next(a for a in full._actions if a.dest == "command").choices
    assert set(choices) == set(MODULES)
    for name in MODULES:
        only = build_parser(name)
        assert list(next(a for a in only._actions if a.dest == "command").choices) == [name]


def test_run_imports_only_its_own_command_module() -> None:
    code = ("import sys; from skiff.cli.main import build_parser; build_parser('run').parse_args("
            "['run', '--rm', 'busybox', 'true']); print(' '.join(sorted(m for m in sys.modules "
            "if m.startswith('skiff.cli.'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["skiff.cli.commands", "skiff.cli.errors", "skiff.cli.main", "skiff.cli.run"]


@pytest.mark.parametrize("name, cls, code", [
    ("CommandNotFound", errors.CommandNotFound, 127),
    ("CommandNotExecutable", errors.CommandNotExecutable, 126),
    ("ContainerConflict", errors.ContainerConflict, 1),
    ("SyscallError", errors.RuntimeError_, 125),  # its constructor takes more than a message
    ("KeyError", errors.SkiffError, 125),  # not of the tree
    ("annotations", errors.SkiffError, 125),
])
def test_an_error_crosses_the_monitors_pipe_with_its_type(name: str, cls: type, code: int) -> None:
    """The monitor reports a failed start as text; the type comes back, and with it run's status."""
    error = errors.revived(name, "exec: \"nope\": executable file not found in $PATH")
    assert type(error) is cls and error.exit_code == code and str(error).startswith("exec: ")
    assert status(RUN, error) == (code if code in (126, 127) else 125)


def test_a_resource_flag_that_does_not_parse_is_its_own_type() -> None:
    from skiff.engine.resources import resources_from_flags

    with pytest.raises(errors.FlagValueError, match=r'^invalid argument "abc" for "-m, --memory" flag'):
        resources_from_flags(memory="abc")
    with pytest.raises(errors.FlagValueError, match=r'^invalid argument "x" for "--pids-limit" flag'):
        resources_from_flags(pids_limit="x")


def test_update_prints_the_clients_lines_for_a_flag_it_cannot_parse(capsys: pytest.CaptureFixture[str]) -> None:
    """Before any container is looked at: the type decides, not the message's first words."""
    assert main(["--root", "/nonexistent/root", "update", "-m", "abc", "box"]) == 125
    assert capsys.readouterr().err == ('invalid argument "abc" for "-m, --memory" flag: invalid size: \'abc\'\n'
                                       "See 'skiff update --help'.\n")
