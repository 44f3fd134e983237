"""`skiff run`, `ps`, `rm` and the `container` group."""

from __future__ import annotations

import argparse
import sys

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

    for name, aliases in (("ps", []),):
        ps = sub.add_parser(name, aliases=aliases, help="list containers")
        add_ps_flags(ps)

    rm = sub.add_parser("rm", help="remove one or more containers")
    add_rm_flags(rm)

    group = sub.add_parser("container", help="manage containers")
    gsub = group.add_subparsers(dest="container_command", metavar="COMMAND")
    gsub.required = True
    add_run_flags(gsub.add_parser("run", help="run a command in a new container", add_help=False))
    gsub.choices["run"].set_defaults(func=cmd_run)
    add_ps_flags(gsub.add_parser("ls", aliases=["ps", "list"], help="list containers"))
    add_rm_flags(gsub.add_parser("rm", aliases=["remove"], help="remove one or more containers"))


def add_run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rm", dest="remove", action="store_true", help="remove the container when it exits")
    p.add_argument("--name", help="assign a name to the container")
    p.add_argument("-i", "--interactive", action="store_true", help="keep STDIN open")
    p.add_argument("-e", "--env", action="append", default=[], help="set an environment variable")
    p.add_argument("--env-file", action="append", default=[], help="read environment variables from a file")
    p.add_argument("-w", "--workdir", help="working directory inside the container")
    p.add_argument("-u", "--user", help="username or UID (format: name|uid[:group|gid])")
    p.add_argument("-h", "--hostname", help="container host name")
    p.add_argument("--entrypoint", help="overwrite the default ENTRYPOINT of the image")
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
    p.add_argument("-p", "--publish", action="append", default=[], help="publish a container's port(s)")
    p.add_argument("-P", "--publish-all", action="store_true", help="publish all exposed ports")
    p.add_argument("--ip", help="IPv4 address")
    p.add_argument("--dns", action="append", default=[], help="set custom DNS servers")
    p.add_argument("--dns-search", action="append", default=[], help="set custom DNS search domains")
    p.add_argument("--dns-option", action="append", default=[], help="set DNS options")
    p.add_argument("--add-host", action="append", default=[], help="add a custom host-to-IP mapping")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND")
    p.add_argument("--help", action="help", help="show this help message and exit")


def cmd_run(args: argparse.Namespace) -> int:
    from skiff.cli.main import paths_from
    from skiff.engine import Engine, RunOptions
    from skiff.errors import ExecError, SkiffError

    opts = RunOptions(
        image=args.image, command=args.command, name=args.name, remove=args.remove,
        interactive=args.interactive, env=args.env, env_files=args.env_file, workdir=args.workdir,
        user=args.user, hostname=args.hostname, entrypoint=args.entrypoint, network=args.network,
        read_only=args.read_only, labels=args.label, volumes=args.volume, mounts=args.mount,
        tmpfs=args.tmpfs, volumes_from=args.volumes_from,
        resources={key: getattr(args, f"res_{key}") for key in RESOURCE_FLAGS.values()},
        ulimits=args.ulimit, publish=args.publish, publish_all=args.publish_all, ip=args.ip,
        dns=args.dns, dns_search=args.dns_search, dns_options=args.dns_option, add_hosts=args.add_host,
    )
    try:
        return Engine(paths_from(args)).run(opts)
    except SkiffError as exc:
        # As `docker run`: whatever fails in the engine (no such image, a name in use) is 125;
        # only the command's own failures keep 126 and 127.
        if not isinstance(exc, ExecError):
            exc.exit_code = 125
        raise


def add_ps_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="show all containers (default shows just running)")
    p.add_argument("-q", "--quiet", action="store_true", help="only display container IDs")
    p.add_argument("--no-trunc", action="store_true", help="don't truncate output")
    p.set_defaults(func=cmd_ps)


def cmd_ps(args: argparse.Namespace) -> int:
    from skiff.cli.format import table
    from skiff.cli.main import paths_from
    from skiff.engine import Engine

    found = Engine(paths_from(args)).containers(all_=args.all)
    if args.quiet:
        for c in found:
            print(c.id if args.no_trunc else c.id[:12])
        return 0
    rows = [ps_row(c.data, args.no_trunc) for c in found]
    print(table(("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"), rows))
    return 0


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
    """Docker's STATUS column: 'Up 3 minutes', 'Exited (0) 2 seconds ago', 'Created'."""
    import time

    from skiff.cli.format import human_duration, parse_time, time_ago

    status = state.get("Status")
    if status == "running":
        return f"Up {human_duration(time.time() - parse_time(state['StartedAt']))}"
    if status == "exited":
        oom = " (OOMKilled)" if state.get("OOMKilled") else ""
        return f"Exited ({state.get('ExitCode', 0)}){oom} {time_ago(state['FinishedAt'])}"
    return str(status or "").capitalize()


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
    from skiff.errors import SkiffError

    engine = Engine(paths_from(args))
    status = 0
    for ref in args.containers:
        try:
            print(engine.remove_container(ref, force=args.force, volumes=args.volumes))
        except SkiffError as exc:
            print(f"Error response from daemon: {exc}", file=sys.stderr)
            status = 1
    return status
