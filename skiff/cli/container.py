"""`skiff run`, `ps`, `rm` and the `container` group."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from skiff.engine import Engine, RunOptions
    from skiff.engine.containers import Container
    from skiff.engine.logs import Entry

# Docker's resource flags: option strings -> RunOptions.resources key.
RESOURCE_FLAGS = {
    ("-m", "--memory"): "memory",
    ("--memory-swap",): "memory_swap",
    ("--memory-reservation",): "memory_reservation",
    ("--cpus",): "cpus",
    ("-c", "--cpu-shares"): "cpu_shares",
    ("--cpu-period",): "cpu_period",
    ("--cpu-quota",): "cpu_quota",
    ("--cpuset-cpus",): "cpuset_cpus",
    ("--cpuset-mems",): "cpuset_mems",
    ("--pids-limit",): "pids_limit",
    ("--blkio-weight",): "blkio_weight",
}


def register(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="run a command in a new container", add_help=False)
    add_run_flags(run)
    run.set_defaults(func=cmd_run)

    for name, aliases in (("ps", ()),):
        ps = sub.add_parser(name, aliases=aliases, help="list containers")
        add_ps_flags(ps)

    rm = sub.add_parser("rm", help="remove one or more containers")
    add_rm_flags(rm)

    for name, adder, text in LIFECYCLE_COMMANDS:
        # the top-level inspect takes any object (--type); ``container inspect`` only containers
        adder = add_any_inspect_flags if name == "inspect" else adder
        adder(sub.add_parser(name, help=text, add_help=name != "create"))

    group = sub.add_parser("container", help="manage containers")
    gsub = group.add_subparsers(dest="container_command", metavar="COMMAND")
    gsub.required = True
    add_run_flags(gsub.add_parser("run", help="run a command in a new container", add_help=False))
    gsub.choices["run"].set_defaults(func=cmd_run)
    add_ps_flags(gsub.add_parser("ls", aliases=["ps", "list"], help="list containers"))
    add_rm_flags(gsub.add_parser("rm", aliases=["remove"], help="remove one or more containers"))
    for name, adder, text in LIFECYCLE_COMMANDS:
        adder(gsub.add_parser(name, help=text, **({"add_help": False} if name == "create" else {})))
    prune = gsub.add_parser("prune", help="remove all stopped containers")
    prune.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    from skiff.cli.filterflags import add_filter_flag

    add_filter_flag(prune, "provide filter values (until=, label=, label!=)", short=False)
    prune.set_defaults(func=cmd_prune)
    from skiff.cli.system import add_update_flags

    add_update_flags(gsub.add_parser("update", help="update configuration of one or more containers"))


def add_run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rm", dest="remove", action="store_true", help="remove the container when it exits")
    p.add_argument("--name", help="assign a name to the container")
    p.add_argument("-i", "--interactive", action="store_true", help="keep STDIN open")
    p.add_argument("-d", "--detach", action="store_true", help="run in the background and print the container ID")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-TTY")
    p.add_argument("--detach-keys", help="override the key sequence for detaching a container (ctrl-p,ctrl-q)")
    p.add_argument("--init", action="store_true", help="run an init inside the container that forwards signals "
                   "and reaps processes")
    p.add_argument("--restart", default="no", help="restart policy: no, on-failure[:N], always, unless-stopped")
    p.add_argument("--log-opt", action="append", default=[], help="log driver options (max-size, max-file)")
    p.add_argument("--log-driver", default="json-file", help="logging driver (json-file only)")
    p.add_argument("--stop-timeout", type=int, help="seconds to wait for stop before killing the container")
    p.add_argument("--stop-signal", help="signal to stop the container")
    p.add_argument("-e", "--env", action="append", default=[], help="set an environment variable")
    p.add_argument("--env-file", action="append", default=[], help="read environment variables from a file")
    p.add_argument("-w", "--workdir", help="working directory inside the container")
    p.add_argument("-u", "--user", help="username or UID (format: name|uid[:group|gid])")
    p.add_argument("-h", "--hostname", help="container host name")
    p.add_argument("--entrypoint", help="overwrite the default ENTRYPOINT of the image")
    p.add_argument("--pull", default="missing", choices=("missing", "always", "never"),
                   help="pull image before running (default missing)")
    p.add_argument("--platform", help="set platform if server is multi-platform capable (os/arch[/variant])")
    p.add_argument("--network", "--net", default="bridge", help="connect a container to a network")
    p.add_argument("--read-only", action="store_true", help="mount the container's root filesystem as read only")
    p.add_argument("-l", "--label", action="append", default=[], help="set metadata on a container")
    p.add_argument("-v", "--volume", action="append", default=[], help="bind mount a volume")
    p.add_argument("--mount", action="append", default=[], help="attach a filesystem mount to the container")
    p.add_argument("--tmpfs", action="append", default=[], help="mount a tmpfs directory")
    p.add_argument("--volumes-from", action="append", default=[], help="mount volumes from a container")
    for flags, key in RESOURCE_FLAGS.items():
        p.add_argument(*flags, dest=f"res_{key}", metavar="VALUE")
    p.add_argument("--ulimit", action="append", default=[], help="ulimit options")
    p.add_argument("--memory-swappiness", dest="res_memory_swappiness", metavar="VALUE",
                   help="tune container memory swappiness (0 to 100; cgroup v1 only)")
    p.add_argument("--oom-kill-disable", action="store_true", help="disable OOM Killer (cgroup v1 only)")
    p.add_argument("--oom-score-adj", metavar="VALUE", help="tune host's OOM preferences (-1000 to 1000)")
    p.add_argument("--shm-size", metavar="SIZE", help="size of /dev/shm (default 64m)")
    p.add_argument("--sysctl", action="append", default=[], help="namespaced kernel parameters (KEY=VALUE)")
    p.add_argument("--group-add", action="append", default=[], help="add additional groups to join")
    p.add_argument("-p", "--publish", action="append", default=[], help="publish a container's port(s)")
    p.add_argument("-P", "--publish-all", action="store_true", help="publish all exposed ports")
    p.add_argument("--ip", help="IPv4 address")
    p.add_argument("--dns", action="append", default=[], help="set custom DNS servers")
    p.add_argument("--dns-search", action="append", default=[], help="set custom DNS search domains")
    p.add_argument("--dns-option", action="append", default=[], help="set DNS options")
    p.add_argument("--add-host", action="append", default=[], help="add a custom host-to-IP mapping")
    p.add_argument("--mac-address", help="container MAC address (e.g., 92:d0:c6:0a:29:33)")
    p.add_argument("--domainname", help="container NIS domain name")
    p.add_argument("--expose", action="append", default=[], help="expose a port or a range of ports")
    p.add_argument("--cidfile", help="write the container ID to the file")
    p.add_argument("--security-opt", action="append", default=[],
                   help="security options: seccomp=unconfined, seccomp=PROFILE.json, no-new-privileges")
    p.add_argument("--cap-add", action="append", default=[], help="add Linux capabilities (NAME, CAP_NAME or ALL)")
    p.add_argument("--cap-drop", action="append", default=[], help="drop Linux capabilities (NAME, CAP_NAME or ALL)")
    p.add_argument("--privileged", action="store_true", help="give extended privileges to this container: all "
                   "capabilities and host devices, no seccomp, writable /sys (see docs/security.md)")
    p.add_argument("--userns", default="", help="user namespace to use: host (no remapping in skiff)")
    p.add_argument("--pid", default="", help="PID namespace to use: host or container:NAME")
    p.add_argument("--ipc", default="", help="IPC mode to use: private, shareable, none, host or container:NAME")
    p.add_argument("--uts", default="", help="UTS namespace to use: host")
    p.add_argument("--cgroupns", default="", help="cgroup namespace to use: host or private (default: host on "
                   "cgroup v1, private on v2)")
    p.add_argument("--health-cmd", help="command to run to check health")
    for flag, text in (("--health-interval", "time between running the check (ms|s|m|h) (default 0s)"),
                       ("--health-timeout", "maximum time to allow one check to run (ms|s|m|h) (default 0s)"),
                       ("--health-start-period", "start period for the container to initialize before "
                                                 "starting health-retries countdown (ms|s|m|h) (default 0s)")):
        p.add_argument(flag, type=_go_flag(p.prog, flag, "duration"), default=0, metavar="DURATION", help=text)
    p.add_argument("--health-retries", type=_go_flag(p.prog, "--health-retries", "int"), default=0,
                   help="consecutive failures needed to report unhealthy")
    p.add_argument("--no-healthcheck", action="store_true", help="disable any container-specified HEALTHCHECK")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND")
    p.add_argument("--help", action="help", help="show this help message and exit")
    p.dashdash_after_first_positional = True  # type: ignore[attr-defined]  # run IMAGE -- ARG: "--" is ARG


def _go_flag(prog: str, flag: str, kind: str) -> Callable[[str], int]:
    """A flag value parsed as Docker's client parses it (a Go duration in ns, or an int), with its error."""

    def parse(text: str) -> int:
        from skiff.errors import UsageError

        try:
            if kind == "duration":
                from skiff import goduration

                return goduration.parse(text)
            digits = text[1:] if text[:1] in ("+", "-") else text
            if not digits or not all("0" <= c <= "9" for c in digits):
                raise ValueError(f'strconv.ParseInt: parsing "{text}": invalid syntax')
            return int(text)
        except ValueError as exc:
            error = UsageError(f'invalid argument "{text}" for "{flag}" flag: {exc}\nSee \'{prog} --help\'.')
            error.verbatim = True  # Docker's client's own lines; 125, as every flag it cannot parse
            raise error from None

    return parse


def cmd_run(args: argparse.Namespace) -> int:
    from skiff.cli.main import paths_from
    from skiff.engine import Engine
    from skiff.errors import ExecError, SkiffError

    check_terminal(args)
    opts = run_options(args)
    try:
        engine = Engine(paths_from(args))
        if args.detach:
            print(engine.run_detached(opts))
            return 0
        return engine.run(opts, detach_keys=args.detach_keys)
    except SkiffError as exc:
        # As `docker run`: whatever fails in the engine (no such image, a name in use) is 125;
        # only the command's own failures keep 126 and 127.
        if not isinstance(exc, ExecError) and exc.exit_code not in (126, 127):
            exc.exit_code = 125
        raise


def run_options(args: argparse.Namespace) -> RunOptions:
    from skiff.engine import RunOptions
    from skiff.errors import InvalidArgument

    if args.log_driver != "json-file":
        raise InvalidArgument(f"logging driver {args.log_driver!r} is not supported: use json-file")
    return RunOptions(
        image=args.image, command=args.command, name=args.name, remove=args.remove,
        detach=args.detach, tty=args.tty, init=args.init, restart=args.restart, log_opts=args.log_opt,
        stop_timeout=args.stop_timeout, stop_signal=args.stop_signal,
        interactive=args.interactive, env=args.env, env_files=args.env_file, workdir=args.workdir,
        user=args.user, hostname=args.hostname, entrypoint=args.entrypoint, pull=args.pull,
        platform=args.platform, network=args.network,
        read_only=args.read_only, labels=args.label, volumes=args.volume, mounts=args.mount,
        tmpfs=args.tmpfs, volumes_from=args.volumes_from,
        resources={**{key: getattr(args, f"res_{key}") for key in RESOURCE_FLAGS.values()},
                   "memory_swappiness": args.res_memory_swappiness,
                   "oom_kill_disable": True if args.oom_kill_disable else None},
        ulimits=args.ulimit, publish=args.publish, publish_all=args.publish_all, ip=args.ip,
        dns=args.dns, dns_search=args.dns_search, dns_options=args.dns_option, add_hosts=args.add_host,
        security_opts=security_opts(args.security_opt),
        sysctls=args.sysctl, group_add=args.group_add, shm_size=args.shm_size, oom_score_adj=args.oom_score_adj,
        mac_address=args.mac_address, domainname=args.domainname, expose=args.expose, cidfile=args.cidfile,
        cap_add=capabilities(args.cap_add), cap_drop=capabilities(args.cap_drop), privileged=args.privileged,
        userns=args.userns, pid=args.pid, ipc=args.ipc, uts=args.uts, cgroupns=args.cgroupns,
        health_cmd=args.health_cmd, health_interval=args.health_interval, health_timeout=args.health_timeout,
        health_retries=args.health_retries, health_start_period=args.health_start_period,
        no_healthcheck=args.no_healthcheck,
    )


def check_terminal(args: argparse.Namespace) -> None:
    """``run -it`` or ``exec -it`` attached with no terminal on stdin: Docker's client refuses it (1)."""
    if args.tty and args.interactive and not args.detach and not sys.stdin.isatty():
        from skiff.errors import NotATerminal

        raise NotATerminal("the input device is not a TTY")


def security_opts(values: list[str]) -> list[str]:
    """As Docker's client: a seccomp profile file is read here and travels as its JSON."""
    if not values:
        return []
    from skiff.security.options import normalize

    return normalize(values)


def capabilities(values: list[str]) -> list[str]:
    """As Docker 20.10's client: CAP_ added, upper case, no duplicates, sorted."""
    if not values:
        return []
    from skiff.security.capabilities import normalize

    return normalize(values)


def add_ps_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="show all containers (default shows just running)")
    p.add_argument("-q", "--quiet", action="store_true", help="only display container IDs")
    p.add_argument("--no-trunc", action="store_true", help="don't truncate output")
    p.add_argument("-n", "--last", type=int, default=-1, help="show n last created containers (includes all states)")
    p.add_argument("-l", "--latest", action="store_true",
                   help="show the latest created container (includes all states)")
    p.add_argument("-s", "--size", action="store_true", help="display total file sizes")
    from skiff.cli.filterflags import add_filter_flag

    add_filter_flag(p, "filter output: id, name, label, exited, status, ancestor, before, since, volume, network, "
                       "publish, expose, health, isolation, is-task")
    p.add_argument("--format", help="pretty-print containers using a Go template ('table ...', 'json')")
    p.set_defaults(func=cmd_ps)


def cmd_ps(args: argparse.Namespace) -> int:
    from skiff.cli.filterflags import filter_args
    from skiff.cli.format import table
    from skiff.cli.main import paths_from
    from skiff.engine import Engine
    from skiff.engine.filters import container_list_filter

    paths = paths_from(args)
    include, wants_all = container_list_filter(paths, filter_args(args))
    last = 1 if args.latest else args.last
    # As Docker: -n/-l list containers in every state, the newest first, after the filters.
    engine = Engine(paths)
    found = [c for c in engine.containers(all_=args.all or wants_all or last > 0) if include(c.data)]
    if last > 0:
        found = found[:last]
    sized = not args.quiet and _wants_size(args)
    sizes = [size_text(*engine.sizes(c)) if sized else "0B" for c in found]
    if args.format and not (args.quiet and args.format == "table"):
        from skiff.cli import listing

        from skiff.errors import TemplateError

        rows = [listing.container_row(c.data, args.no_trunc, size) for c, size in zip(found, sizes)]
        default = listing.CONTAINER_TABLE + ("\t{{.Size}}" if args.size else "")
        try:
            listing.print_rows(args.format, rows, listing.CONTAINER_HEADERS, default, listing.CONTAINER_TYPE)
        except TemplateError as exc:  # Docker 20.10's ps words its template errors itself
            exc.prefix = "failed to parse template" if exc.parse else "failed to execute template"
            raise
        return 0
    if args.quiet:
        for c in found:
            print(c.id if args.no_trunc else c.id[:12])
        return 0
    headers = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    cells = [ps_row(c.data, args.no_trunc) + ([size] if sized else []) for c, size in zip(found, sizes)]
    print(table(headers + (["SIZE"] if sized else []), cells))
    return 0


def _wants_size(args: argparse.Namespace) -> bool:
    """As Docker 20.10's client: -s, or a --format that uses .Size (``{{json .}}`` uses every field)."""
    import re

    fmt = args.format or ""
    return args.size or ".Size" in fmt or bool(re.search(r"json\s+\.\s*}}", fmt)) or fmt == "json"


def size_text(size_rw: int, size_root_fs: int) -> str:
    """Docker's SIZE column: '2B (virtual 1.23MB)'; the bare writable size when there is no image."""
    from skiff.cli.format import human_size

    if size_root_fs > 0:
        return f"{human_size(size_rw)} (virtual {human_size(size_root_fs)})"
    return human_size(size_rw)


def ps_row(data: dict, no_trunc: bool = False) -> list[str]:
    from skiff.cli.format import time_ago

    command = " ".join([data.get("Path", ""), *data.get("Args", [])])
    if not no_trunc and len(command) > 20:
        command = command[:19] + "…"
    return [
        data["Id"] if no_trunc else data["Id"][:12],
        data["Config"].get("Image", ""),
        f'"{command}"',
        time_ago(data["Created"]),
        status_text(data["State"]),
        ports_text(data.get("NetworkSettings", {})),
        str(data["Name"]).lstrip("/"),
    ]


def status_text(state: dict) -> str:
    """Docker's STATUS column: 'Up 3 minutes', 'Exited (0) 2 seconds ago', 'Created' (the engine's text)."""
    from skiff.engine.summary import status_text as engine_status_text

    return engine_status_text(state)


def ports_text(settings: dict) -> str:
    ports = settings.get("Ports") or {}
    shown = []
    for port, bindings in ports.items():
        for b in bindings or []:
            shown.append(f"{b.get('HostIp') or '0.0.0.0'}:{b.get('HostPort')}->{port}")
        if not bindings:
            shown.append(port)
    return ", ".join(shown)


def add_rm_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--force", action="store_true", help="force the removal of a running container")
    p.add_argument("-v", "--volumes", action="store_true", help="remove anonymous volumes of the container")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.set_defaults(func=cmd_rm)


def cmd_rm(args: argparse.Namespace) -> int:
    from skiff.cli.main import paths_from
    from skiff.engine import Engine
    from skiff.errors import ContainerNotFound, SkiffError

    engine = Engine(paths_from(args))
    status = 0
    for ref in args.containers:
        try:
            print(engine.remove_container(ref, force=args.force, volumes=args.volumes))
        except SkiffError as exc:
            if args.force and isinstance(exc, ContainerNotFound):
                # As Docker 20.10's client: -f names a missing container on stderr; it is no failure.
                print(f"Error: {exc}", file=sys.stderr)
                continue
            print(f"Error: {exc}", file=sys.stderr)
            status = 1
    return status


# --- lifecycle commands (issue 7) ---------------------------------------------------


def _engine(args: argparse.Namespace) -> Engine:
    from skiff.cli.main import paths_from
    from skiff.engine import Engine

    return Engine(paths_from(args))


def _each(args: argparse.Namespace, action: Callable[[str], object]) -> int:
    """Apply ``action`` to every CONTAINER; Docker prints each error and exits 1 at the end."""
    from skiff.errors import SkiffError

    status = 0
    for ref in args.containers:
        try:
            action(ref)
        except SkiffError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            status = 1
    return status


def add_create_flags(p: argparse.ArgumentParser) -> None:
    add_run_flags(p)
    p.set_defaults(func=cmd_create)


def cmd_create(args: argparse.Namespace) -> int:
    from skiff.errors import Conflict, SkiffError

    try:
        print(_engine(args).create(run_options(args)).id)
    except Conflict:
        # Docker 20.10's create hands the daemon's refusal (a name in use) back as it is: status 1
        # (its run says 125 for the same).
        raise
    except SkiffError as exc:
        exc.exit_code = 125
        raise
    return 0


def add_start_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--attach", action="store_true", help="attach STDOUT/STDERR and forward signals")
    p.add_argument("-i", "--interactive", action="store_true", help="attach container's STDIN")
    p.add_argument("--detach-keys", help="override the key sequence for detaching a container (ctrl-p,ctrl-q)")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.set_defaults(func=cmd_start)


def cmd_start(args: argparse.Namespace) -> int:
    from skiff.errors import InvalidArgument

    engine = _engine(args)
    if args.attach or args.interactive:
        if len(args.containers) > 1:
            raise InvalidArgument("you cannot start and attach multiple containers at once")
        from skiff.engine.terminal import parse_detach_keys

        parse_detach_keys(args.detach_keys)
        container = engine.find(args.containers[0])
        was_running = container.held
        container = engine.start(container.id, attach=not was_running)
        status = engine.attach(container.id, stdin=args.interactive, detach_keys=args.detach_keys,
                               stdin_once=args.interactive and not was_running)
        return 0 if status is None else status
    return _each(args, lambda ref: (engine.start(ref), print(ref)))


def add_attach_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-stdin", action="store_true", help="do not attach STDIN")
    p.add_argument("--sig-proxy", default="true", choices=("true", "false"),
                   help="proxy all received signals to the process (default true)")
    p.add_argument("--detach-keys", help="override the key sequence for detaching a container (ctrl-p,ctrl-q)")
    p.add_argument("container", metavar="CONTAINER")
    p.set_defaults(func=cmd_attach)


def cmd_attach(args: argparse.Namespace) -> int:
    from skiff.errors import ContainerConflict, ContainerNotFound

    try:
        status = _engine(args).attach(args.container, stdin=not args.no_stdin, detach_keys=args.detach_keys,
                                      proxy_signals=args.sig_proxy == "true")
    except (ContainerNotFound, ContainerConflict) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    return 0 if status is None else status


def _held(container: Container) -> bool:
    container.reload()
    return not container.state.can_start  # held, or being started


def add_stop_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-t", "--time", "--timeout", dest="time", type=int,
                   help="seconds to wait before killing the container")
    p.add_argument("-s", "--signal", help="signal to send to the container")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.set_defaults(func=cmd_stop)


def cmd_stop(args: argparse.Namespace) -> int:
    from skiff.engine.lifecycle import parse_signal, parse_timeout

    parse_timeout(args.time, 0)  # a bad value fails before any container is touched
    sig = parse_signal(args.signal) if args.signal else None
    engine = _engine(args)
    return _each(args, lambda ref: (engine.stop(ref, args.time, sig), print(ref)))


def add_restart_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-t", "--time", "--timeout", dest="time", type=int,
                   help="seconds to wait before killing the container")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.set_defaults(func=cmd_restart)


def cmd_restart(args: argparse.Namespace) -> int:
    from skiff.engine.lifecycle import parse_timeout

    parse_timeout(args.time, 0)
    engine = _engine(args)
    return _each(args, lambda ref: (engine.restart(ref, args.time), print(ref)))


def add_kill_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-s", "--signal", default="SIGKILL", help="signal to send to the container")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.set_defaults(func=cmd_kill)


def cmd_kill(args: argparse.Namespace) -> int:
    from skiff.engine.lifecycle import parse_signal

    sig = parse_signal(args.signal)
    engine = _engine(args)
    return _each(args, lambda ref: (engine.kill(ref, sig), print(ref)))


def add_wait_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.set_defaults(func=cmd_wait)


def cmd_wait(args: argparse.Namespace) -> int:
    engine = _engine(args)
    return _each(args, lambda ref: print(engine.wait(ref)))


def add_pause_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.set_defaults(func=cmd_pause, pause=True)


def add_unpause_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.set_defaults(func=cmd_pause, pause=False)


def cmd_pause(args: argparse.Namespace) -> int:
    engine = _engine(args)
    return _each(args, lambda ref: (engine.pause(ref, args.pause), print(ref)))


def add_rename_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("new_name", metavar="NEW_NAME")
    p.set_defaults(func=cmd_rename)


def cmd_rename(args: argparse.Namespace) -> int:
    _engine(args).rename(args.container, args.new_name)
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    from skiff.cli.filterflags import filter_args
    from skiff.engine.filters import container_prune_filter

    include = container_prune_filter(filter_args(args, "--filter"))
    if not args.force:
        sys.stdout.write("WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ")
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    removed = _engine(args).prune(include)
    if removed:  # as Docker: the header only when something went
        print("Deleted Containers:")
        for cid in removed:
            print(cid)
        print()
    print("Total reclaimed space: 0B")
    return 0


def add_any_inspect_flags(p: argparse.ArgumentParser) -> None:
    from skiff.cli.inspect import add_flags

    add_flags(p)


def add_inspect_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--format", help="format the output using a Go template ('json': the documents)")
    p.add_argument("-s", "--size", action="store_true", help="display total file sizes (SizeRw, SizeRootFs)")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.set_defaults(func=cmd_inspect)


def cmd_inspect(args: argparse.Namespace) -> int:
    from skiff.cli.listing import check_template, print_documents
    from skiff.errors import SkiffError

    check_template(args.format)
    engine = _engine(args)
    found, status = [], 0
    for ref in args.containers:
        try:
            found.append(engine.inspect(ref, size=args.size))
        except SkiffError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            status = 1
    return print_documents(found, args.format) or status


def add_logs_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--follow", action="store_true", help="follow log output")
    p.add_argument("-n", "--tail", default="all", help="number of lines to show from the end of the logs")
    p.add_argument("-t", "--timestamps", action="store_true", help="show timestamps")
    p.add_argument("--since", help="show logs since a timestamp or a relative time (42m)")
    p.add_argument("container", metavar="CONTAINER")
    p.set_defaults(func=cmd_logs)


def cmd_logs(args: argparse.Namespace) -> int:
    from skiff.engine import logs

    tail = _tail_lines(args.tail)
    since = logs.parse_since(args.since)
    container = _engine(args).find(args.container)
    entries, offset = logs.read(container.log_path, tail, since)
    _print_entries(entries, args.timestamps)
    if args.follow:
        _print_entries(logs.follow(container.log_path, offset, lambda: _held(container)), args.timestamps)
    return 0


def _tail_lines(value: str) -> int | None:
    """As Docker 20.10's daemon: a --tail that is not a number, or is negative, means all lines."""
    try:
        lines = int(value)
    except ValueError:
        return None
    return lines if lines >= 0 else None


def _print_entries(entries: Iterable[Entry], timestamps: bool) -> None:
    for stream, text, stamp in entries:
        out = sys.stdout if stream == "stdout" else sys.stderr
        out.write(f"{stamp} {text}" if timestamps else text)
        out.flush()


def add_top_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("ps_options", nargs=argparse.REMAINDER, metavar="[ps OPTIONS]")
    p.dashdash_after_first_positional = True  # type: ignore[attr-defined]  # the rest is ps's
    p.set_defaults(func=cmd_top)


def cmd_top(args: argparse.Namespace) -> int:
    from skiff.cli.format import table

    header, rows = _engine(args).top(args.container, args.ps_options)
    print(table(header, rows, min_width=20))  # Docker's client: tabwriter.NewWriter(out, 20, 1, 3, ' ', 0)
    return 0


def add_exec_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-d", "--detach", action="store_true", help="run the command in the background")
    p.add_argument("-i", "--interactive", action="store_true", help="keep STDIN open")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-TTY")
    p.add_argument("-e", "--env", action="append", default=[], help="set environment variables")
    p.add_argument("-u", "--user", help="username or UID (format: name|uid[:group|gid])")
    p.add_argument("-w", "--workdir", help="working directory inside the container")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND")
    p.dashdash_after_first_positional = True  # type: ignore[attr-defined]
    p.min_args = 2  # type: ignore[attr-defined]  # CONTAINER COMMAND, as Docker's client counts them
    p.set_defaults(func=cmd_exec)


def cmd_exec(args: argparse.Namespace) -> int:
    from skiff.errors import ContainerNotFound, ContainerNotRunning, ExecError, InvalidArgument, SkiffError

    check_terminal(args)
    try:
        status = _engine(args).exec(args.container, args.command, env=args.env, user=args.user,
                                    workdir=args.workdir, interactive=args.interactive, tty=args.tty,
                                    detach=args.detach)
    except (ContainerNotFound, ContainerNotRunning) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except ExecError as exc:
        # Docker 20.10's exec: a command that cannot start, missing or not executable, is 126
        # (run keeps 127 for a missing one).
        exc.exit_code = 126
        raise
    except SkiffError as exc:
        if exc.exit_code not in (126, 127):
            exc.exit_code = 126 if isinstance(exc, InvalidArgument) and "user" in str(exc) else exc.exit_code
        raise
    return 0 if args.detach else status


def add_stats_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="show all containers (default shows just running)")
    p.add_argument("--no-stream", action="store_true", help="print one sample and exit")
    p.add_argument("--no-trunc", action="store_true", help="don't truncate output")
    p.add_argument("--format", help="pretty-print stats using a Go template ('table ...', 'json')")
    p.add_argument("containers", nargs="*", metavar="CONTAINER")
    p.set_defaults(func=cmd_stats)


def cmd_stats(args: argparse.Namespace) -> int:
    import time

    engine = _engine(args)
    first = True
    while True:
        rows = engine.stats(args.containers, all_=args.all)
        if args.format and args.format != "table":
            from skiff.cli import listing
            from skiff.cli.stats import stats_fields

            if not args.no_stream and sys.stdout.isatty():
                print("\033[2J\033[H", end="")
            # .Container: the name or id as given on the command line, else the short id
            given = args.containers if len(args.containers) == len(rows) else [r.container_id[:12] for r in rows]
            listing.print_rows(args.format, [listing.stats_row(stats_fields(row), name)
                                             for row, name in zip(rows, given)],
                               listing.STATS_HEADERS, listing.STATS_TABLE, listing.STATS_TYPE)
        else:
            from skiff.cli.stats import format_stats

            if not args.no_stream and sys.stdout.isatty():
                print("\033[2J\033[H", end="")  # as Docker: redraw in place
            elif not first:
                print()
            print(format_stats(rows), end="")
        sys.stdout.flush()
        if args.no_stream:
            return 0
        first = False
        time.sleep(1)


def add_port_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("port", nargs="?", metavar="PRIVATE_PORT[/PROTO]")
    p.set_defaults(func=cmd_port)


def cmd_port(args: argparse.Namespace) -> int:
    for line in _engine(args).ports(args.container, args.port):
        print(line)
    return 0


LIFECYCLE_COMMANDS = (
    ("create", add_create_flags, "create a new container"),
    ("start", add_start_flags, "start one or more stopped containers"),
    ("stop", add_stop_flags, "stop one or more running containers"),
    ("restart", add_restart_flags, "restart one or more containers"),
    ("kill", add_kill_flags, "kill one or more running containers"),
    ("wait", add_wait_flags, "block until containers stop, then print their exit codes"),
    ("pause", add_pause_flags, "pause all processes within one or more containers"),
    ("unpause", add_unpause_flags, "unpause all processes within one or more containers"),
    ("rename", add_rename_flags, "rename a container"),
    ("inspect", add_inspect_flags, "display detailed information on one or more containers"),
    ("logs", add_logs_flags, "fetch the logs of a container"),
    ("top", add_top_flags, "display the running processes of a container"),
    ("exec", add_exec_flags, "execute a command in a running container"),
    ("attach", add_attach_flags, "attach local standard input, output, and error streams to a running container"),
    ("stats", add_stats_flags, "display a live stream of container(s) resource usage statistics"),
    ("port", add_port_flags, "list port mappings or a specific mapping for the container"),
)
