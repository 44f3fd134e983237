"""``skiff-oci``: the runc-compatible command line. Each command is a thin call into Runtime.

Errors follow runc: one log line (``level=error msg=...``) on stderr, or in
``--log FILE`` as text or JSON (containerd reads the JSON), and exit status 1.
"""

from __future__ import annotations

import sys

from skiff.oci.log import Logger

TYPE_CHECKING = False
if TYPE_CHECKING:  # skiff-oci starts once per command: typing and argparse are not imported to run one
    import argparse
    from typing import Any, Callable, NoReturn

DEFAULT_ROOT = "/run/skiff-oci"
VERSION = "1.1.5-skiff"  # runc's command line of this version
SPEC_VERSION = "1.0.2"


def _parser() -> argparse.ArgumentParser:
    import argparse

    parser = argparse.ArgumentParser(prog="skiff-oci", description="runc-compatible OCI runtime of skiff")
    parser.add_argument("--root", default=DEFAULT_ROOT, help="state directory (default %(default)s)")
    parser.add_argument("--log", default=None, help="log file (default: stderr)")
    parser.add_argument("--log-format", default="text", choices=("text", "json"))
    parser.add_argument("--debug", action="store_true")
    parser.add_argument("--explain", action="store_true",
                        help="tell on stderr each kernel-level step as it happens (--explain=json: as JSON lines)")
    parser.add_argument("--systemd-cgroup", action="store_true")
    parser.add_argument("--criu", help=argparse.SUPPRESS)
    parser.add_argument("--rootless", help=argparse.SUPPRESS)
    parser.add_argument("-v", "--version", action="store_true")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, handler: Callable[[Any], int], help_: str) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help_)
        cmd.set_defaults(handler=handler)
        return cmd

    from skiff.oci import commands as c

    spec = command("spec", c.spec, "write a default config.json")
    spec.add_argument("-b", "--bundle", default=".")
    spec.add_argument("--rootless", action="store_true")
    for name, handler, help_ in (("create", c.create, "create a container"),
                                 ("run", c.run, "create and start a container")):
        cmd = command(name, handler, help_)
        cmd.add_argument("-b", "--bundle", default=".")
        cmd.add_argument("--pid-file")
        cmd.add_argument("--console-socket")
        cmd.add_argument("--preserve-fds", type=int, default=0)
        cmd.add_argument("--no-pivot", action="store_true", help="accepted; pivot_root is always used")
        cmd.add_argument("--no-new-keyring", action="store_true", help="accepted; no keyring is made")
        if name == "run":
            cmd.add_argument("-d", "--detach", action="store_true")
            cmd.add_argument("--keep", action="store_true")
        cmd.add_argument("id")
    command("start", c.start, "start a created container").add_argument("id")
    command("state", c.state, "print a container's OCI state").add_argument("id")
    kill = command("kill", c.kill, "signal a container's init (or all its processes)")
    kill.add_argument("-a", "--all", action="store_true")
    kill.add_argument("id")
    kill.add_argument("signal", nargs="?", default="SIGTERM")
    delete = command("delete", c.delete, "delete a container")
    delete.add_argument("-f", "--force", action="store_true")
    delete.add_argument("id")
    exec_ = command("exec", c.exec_, "run a process in a running container")
    exec_.add_argument("-p", "--process")
    exec_.add_argument("-d", "--detach", action="store_true")
    exec_.add_argument("--pid-file")
    exec_.add_argument("--console-socket")
    exec_.add_argument("-t", "--tty", action="store_true")
    exec_.add_argument("-e", "--env", action="append", default=[])
    exec_.add_argument("--cwd")
    exec_.add_argument("-u", "--user")
    exec_.add_argument("-g", "--additional-gids", action="append", default=[])
    exec_.add_argument("-c", "--cap", action="append", default=[])
    exec_.add_argument("--no-new-privs", action="store_true")
    exec_.add_argument("--preserve-fds", type=int, default=0)
    exec_.add_argument("id")
    exec_.add_argument("cmd", nargs=argparse.REMAINDER)
    ps = command("ps", c.ps, "list a container's processes")
    ps.add_argument("-f", "--format", default="table", choices=("table", "json"))
    ps.add_argument("id")
    ps.add_argument("ps_args", nargs=argparse.REMAINDER)
    command("pause", c.pause, "freeze a container").add_argument("id")
    command("resume", c.resume, "thaw a paused container").add_argument("id")
    update = command("update", c.update, "change a container's resource limits")
    update.add_argument("-r", "--resources", required=True, help="linux.resources JSON file, or - for stdin")
    update.add_argument("id")
    command("features", c.features, "print the features this runtime supports")
    list_ = command("list", c.list_, "list containers")
    list_.add_argument("-f", "--format", default="table", choices=("table", "json"))
    list_.add_argument("-q", "--quiet", action="store_true")
    return parser


# The commands an engine runs for every container, with runc's flags: parsed without argparse.
# Each flag maps to (attribute, takes a value); anything else (help, a typo) goes to argparse.
_GLOBAL_FLAGS = {"--root": ("root", True), "--log": ("log", True), "--log-format": ("log_format", True),
                 "--debug": ("debug", False), "--systemd-cgroup": ("systemd_cgroup", False)}
_CREATE_FLAGS = {"-b": ("bundle", True), "--bundle": ("bundle", True), "--pid-file": ("pid_file", True),
                 "--console-socket": ("console_socket", True), "--preserve-fds": ("preserve_fds", True),
                 "--no-pivot": ("no_pivot", False), "--no-new-keyring": ("no_new_keyring", False)}
_FAST_COMMANDS: dict[str, tuple[dict[str, tuple[str, bool]], tuple[str, ...]]] = {
    "state": ({}, ("id",)),
    "start": ({}, ("id",)),
    "kill": ({"-a": ("all", False), "--all": ("all", False)}, ("id", "signal")),
    "delete": ({"-f": ("force", False), "--force": ("force", False)}, ("id",)),
    "create": (_CREATE_FLAGS, ("id",)),
    "run": ({**_CREATE_FLAGS, "-d": ("detach", False), "--detach": ("detach", False),
             "--keep": ("keep", False)}, ("id",)),
}
_DEFAULTS = {"root": DEFAULT_ROOT, "log": None, "log_format": "text", "debug": False, "systemd_cgroup": False,
             "version": False, "all": False, "signal": "SIGTERM", "force": False, "bundle": ".", "pid_file": None,
             "console_socket": None, "preserve_fds": "0", "no_pivot": False, "no_new_keyring": False,
             "detach": False, "keep": False}


class _Args:
    """The parsed command line, as argparse's Namespace would hold it."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)

    if TYPE_CHECKING:
        # the flags (and the logger main adds), as argparse's Namespace has them
        def __getattr__(self, name: str) -> Any: ...
        def __setattr__(self, name: str, value: Any) -> None: ...


def _fast_parse(argv: list[str]) -> _Args | None:
    """Parse a lifecycle command as runc does (flags before arguments), or None to leave it to argparse."""
    values: dict[str, Any] = dict(_DEFAULTS)
    i = _take_flags(argv, 0, _GLOBAL_FLAGS, values)
    if i is None or i >= len(argv) or argv[i] not in _FAST_COMMANDS:
        return None
    command = argv[i]
    flags, positionals = _FAST_COMMANDS[command]
    i = _take_flags(argv, i + 1, flags, values)
    rest = argv[i:] if i is not None else []
    if i is None or not 1 <= len(rest) <= len(positionals) or rest[0].startswith("-"):
        return None
    values.update(zip(positionals, rest))
    if values["log_format"] not in ("text", "json") or not str(values["preserve_fds"]).isdigit():
        return None
    values["preserve_fds"] = int(values["preserve_fds"])
    from skiff.oci import commands

    values["handler"] = getattr(commands, command)
    return _Args(values)


def _take_flags(argv: list[str], i: int, flags: dict[str, tuple[str, bool]], values: dict[str, Any]) -> int | None:
    """Consume ``flags`` from ``argv[i:]``; the index after them, or None on one this parser does not know."""
    while i < len(argv) and argv[i].startswith("-"):
        name, eq, value = argv[i].partition("=")
        if name not in flags:
            return None
        attribute, takes_value = flags[name]
        if not takes_value:
            if eq:
                return None
            values[attribute] = True
        elif eq:
            values[attribute] = value
        elif i + 1 < len(argv):
            i += 1
            values[attribute] = argv[i]
        else:
            return None
        i += 1
    return i


def _take_explain(argv: list[str]) -> tuple[list[str], str]:
    """The global ``--explain[=json]`` (before the command word) taken out of ``argv``, and its mode."""
    for i, word in enumerate(argv):
        if word in ("--explain", "--explain=text", "--explain=json"):
            return argv[:i] + argv[i + 1:], word.partition("=")[2] or "text"
        if not word.startswith("-") and (i == 0 or argv[i - 1] not in ("--root", "--log", "--log-format")):
            break  # the command: what follows is its own
    return argv, ""


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else argv
    args_list, explain_mode = _take_explain(args_list)
    if explain_mode:
        from skiff import explain

        explain.enable(explain_mode)
    args: _Args | argparse.Namespace | None = _fast_parse(args_list)
    if args is None:
        parser = _parser()
        try:
            args = parser.parse_args(args_list)
        except SystemExit as exc:
            return int(exc.code or 0) if exc.code != 2 else 1
        if not args.version and not getattr(args, "handler", None):
            parser.print_help(sys.stderr)
            return 1
    args.logger = Logger(args.log, args.log_format, args.debug)
    if args.version:
        print(f"skiff-oci version {VERSION}\nspec: {SPEC_VERSION}")
        return 0
    from skiff.errors import SkiffError

    try:
        if args.systemd_cgroup:
            from skiff.errors import UsageError

            raise UsageError("--systemd-cgroup is not supported by skiff-oci: it manages cgroupfs directly "
                             "(set SystemdCgroup = false, or cgroup_manager = \"cgroupfs\")")
        return args.handler(args)
    except SkiffError as exc:
        args.logger.error(str(exc))
        return 1
    except OSError as exc:
        args.logger.error(f"{exc.filename + ': ' if exc.filename else ''}{exc.strerror or exc}")
        return 1
    except KeyboardInterrupt:
        return 130


def print_json(value: Any, indent: int | None = 2) -> None:
    from skiff.runtime.jsonlite import dumps

    sys.stdout.write(dumps(value, indent=indent) + "\n")


if __name__ == "__main__":
    sys.exit(main())


def run() -> NoReturn:
    """The ``skiff-oci`` command: ``main()``, then exit without the interpreter's teardown.

    An engine runs one skiff-oci per container operation (create, start, delete...):
    the teardown would add about 2 ms to each.
    """
    from skiff import exit_without_teardown

    exit_without_teardown(main())
