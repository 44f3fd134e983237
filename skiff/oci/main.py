"""``skiff-oci``: the runc-compatible command line. Each command is a thin call into Runtime.

Errors follow runc: one log line (``level=error msg=...``) on stderr, or in
``--log FILE`` as text or JSON (containerd reads the JSON), and exit status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Callable

from skiff.oci.log import Logger

DEFAULT_ROOT = "/run/skiff-oci"
VERSION = "1.1.5-skiff"  # runc's command line of this version
SPEC_VERSION = "1.0.2"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="skiff-oci", description="runc-compatible OCI runtime of skiff")
    parser.add_argument("--root", default=DEFAULT_ROOT, help="state directory (default %(default)s)")
    parser.add_argument("--log", default=None, help="log file (default: stderr)")
    parser.add_argument("--log-format", default="text", choices=("text", "json"))
    parser.add_argument("--debug", action="store_true")
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


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else argv
    parser = _parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:
        return int(exc.code or 0) if exc.code != 2 else 1
    args.logger = Logger(args.log, args.log_format, args.debug)
    if args.version:
        print(f"skiff-oci version {VERSION}\nspec: {SPEC_VERSION}")
        return 0
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return 1
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
    sys.stdout.write(json.dumps(value, indent=indent) + "\n")


if __name__ == "__main__":
    sys.exit(main())
