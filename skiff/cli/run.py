"""``skiff run``, ``create`` and ``start``: the run flags and what they become (RunOptions)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from skiff.cli.commands import Command, add_commands
from skiff.cli.errors import ExitCodes, for_each
from skiff.cli.main import engine_from
from skiff.errors import CommandNotExecutable, CommandNotFound, Conflict, NotATerminal, SkiffError

if TYPE_CHECKING:
    from skiff.engine import RunOptions

# Docker's resource flags (run's and update's): option strings -> RunOptions.resources key.
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

# As ``docker run``: whatever fails before the command runs (no such image, a name in use, a bad
# value) is 125; the command's own failures are 127 (not found) and 126 (cannot be executed);
# else the command's exit code. Only a missing terminal is the client's 1.
RUN_EXIT_CODES: ExitCodes = {CommandNotFound: 127, CommandNotExecutable: 126, NotATerminal: 1, SkiffError: 125}
# Docker 20.10's create hands the daemon's refusal (a name in use) back as it is, 1 (its run says
# 125 for the same); everything else is 125.
CREATE_EXIT_CODES: ExitCodes = {Conflict: 1, SkiffError: 125}


def register(sub: argparse._SubParsersAction) -> None:
    add_commands(sub, COMMANDS)


def add_run_command(p: argparse.ArgumentParser) -> None:
    add_run_flags(p)
    p.set_defaults(func=cmd_run, exit_codes=RUN_EXIT_CODES)


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
    p.add_argument("--link", action="append", default=[], metavar="NAME[:ALIAS]",
                   help="add link to another container (Docker's legacy links)")
    p.add_argument("--network-alias", action="append", default=[],
                   help="add network-scoped alias for the container")
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
    p.add_argument("--device", action="append", default=[], help="add a host device (HOST[:CONTAINER[:PERMS]]) "
                   "or a CDI device (vendor.com/class=name)")
    p.add_argument("--device-cgroup-rule", action="append", default=[], help="add a rule to the cgroup allowed "
                   "devices list ('c 195:* rwm')")
    p.add_argument("--gpus", action="append", default=[], help="GPU devices to add to the container ('all' to "
                   "pass all GPUs), through the nvidia.com/gpu CDI devices")
    add_explain_flag(p)
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND")
    p.add_argument("--help", action="help", help="show this help message and exit")
    p.dashdash_after_first_positional = True  # type: ignore[attr-defined]  # run IMAGE -- ARG: "--" is ARG


def _go_flag(prog: str, flag: str, kind: str) -> Callable[[str], int]:
    """A flag value parsed as Docker's client parses it (a Go duration in ns, or an int), with its error."""

    def parse(text: str) -> int:
        try:
            if kind == "duration":
                from skiff import goduration

                return goduration.parse(text)
            digits = text[1:] if text[:1] in ("+", "-") else text
            if not digits or not all("0" <= c <= "9" for c in digits):
                raise ValueError(f'strconv.ParseInt: parsing "{text}": invalid syntax')
            return int(text)
        except ValueError as exc:
            from skiff.errors import InvalidFlagValue

            raise InvalidFlagValue(f'invalid argument "{text}" for "{flag}" flag: {exc}\nSee \'{prog} --help\'.') \
                from None

    return parse


def add_explain_flag(p: argparse.ArgumentParser) -> None:
    """``--explain`` and ``--explain=json``: two exact option strings, so that ``--explain IMAGE``
    never takes the image as the flag's value (argparse's optional values would)."""
    p.add_argument("--explain", dest="explain", action="store_const", const="text", default=None,
                   help="tell on stderr each kernel-level step as it happens (docs/what-a-container-is.md)")
    p.add_argument("--explain=json", "--explain=text", dest="explain", action=_ExplainMode,
                   help="--explain=json: one JSON object per step")


class _ExplainMode(argparse.Action):
    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)  # type: ignore[arg-type]

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        setattr(namespace, self.dest, (option_string or "=text").partition("=")[2])


def enable_explain(args: argparse.Namespace) -> None:
    """Start telling the steps (skiff.explain) when the command line asked for it."""
    if getattr(args, "explain", None):
        from skiff import explain

        explain.enable(args.explain)


def cmd_run(args: argparse.Namespace) -> int:

    check_terminal(args)
    enable_explain(args)
    opts = run_options(args)
    engine = engine_from(args)
    if args.detach:
        print(engine.run_detached(opts))
        return 0
    return engine.run(opts, detach_keys=args.detach_keys)


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
        links=args.link, network_aliases=args.network_alias,
        security_opts=security_opts(args.security_opt),
        sysctls=args.sysctl, group_add=args.group_add, shm_size=args.shm_size, oom_score_adj=args.oom_score_adj,
        mac_address=args.mac_address, domainname=args.domainname, expose=args.expose, cidfile=args.cidfile,
        cap_add=capabilities(args.cap_add), cap_drop=capabilities(args.cap_drop), privileged=args.privileged,
        userns=args.userns, pid=args.pid, ipc=args.ipc, uts=args.uts, cgroupns=args.cgroupns,
        health_cmd=args.health_cmd, health_interval=args.health_interval, health_timeout=args.health_timeout,
        health_retries=args.health_retries, health_start_period=args.health_start_period,
        no_healthcheck=args.no_healthcheck,
        **device_options(args),
    )


def device_options(args: argparse.Namespace) -> dict[str, Any]:
    """--device, --device-cgroup-rule and --gpus, checked as Docker's client checks them."""
    if not (args.device or args.device_cgroup_rule or args.gpus):
        return {}
    from skiff.engine import devices

    for value in args.device:
        devices.check_device_flag(value)
    for rule in args.device_cgroup_rule:
        devices.check_cgroup_rule(rule)
    return {"devices": args.device, "device_cgroup_rules": args.device_cgroup_rule,
            "device_requests": [devices.parse_gpus(value) for value in args.gpus]}


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


def add_create_flags(p: argparse.ArgumentParser) -> None:
    add_run_flags(p)
    p.set_defaults(func=cmd_create, exit_codes=CREATE_EXIT_CODES)


def cmd_create(args: argparse.Namespace) -> int:

    enable_explain(args)
    print(engine_from(args).create(run_options(args)).id)
    return 0


def add_start_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--attach", action="store_true", help="attach STDOUT/STDERR and forward signals")
    p.add_argument("-i", "--interactive", action="store_true", help="attach container's STDIN")
    p.add_argument("--detach-keys", help="override the key sequence for detaching a container (ctrl-p,ctrl-q)")
    add_explain_flag(p)
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.set_defaults(func=cmd_start)


def cmd_start(args: argparse.Namespace) -> int:
    from skiff.errors import InvalidArgument

    engine = engine_from(args)
    enable_explain(args)
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
    return for_each(args.containers, lambda ref: (engine.start(ref), print(ref)))



COMMANDS = (
    Command("run", add_run_command, "run a command in a new container", own_help=True),
    Command("create", add_create_flags, "create a new container", own_help=True),
    Command("start", add_start_flags, "start one or more stopped containers"),
)
