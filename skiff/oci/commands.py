"""The handlers of skiff-oci's commands: parse runc's arguments, call the runtime core."""

from __future__ import annotations

import os
import sys

from skiff.errors import ContainerNotFound, InvalidArgument, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:  # each skiff-oci command is a process of its own: no typing import at run time
    import argparse
    from typing import Any

    from skiff.runtime.runtime import Runtime


def _runtime(args: argparse.Namespace) -> Runtime:
    from skiff.runtime.runtime import Runtime

    return Runtime(args.root, warn=args.logger.warning)  # runc's warnings: a log line, the command goes on


def spec(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from skiff.runtime.spec import default_spec

    target = Path(args.bundle) / "config.json"
    if target.exists():
        raise InvalidArgument("File config.json exists. Remove it first")
    config = default_spec()
    config["process"]["terminal"] = True
    config["hostname"] = "skiff"
    if args.rootless:
        config = rootless(config, os.geteuid(), os.getegid())
    target.write_text(json.dumps(config, indent=2) + "\n")
    return 0


def rootless(config: dict[str, Any], uid: int, gid: int) -> dict[str, Any]:
    """``config`` made runnable without privileges, as runc's ``spec --rootless`` (specconv.ToRootless):
    a new user namespace mapping only ``uid``/``gid`` to root, the host's network namespace (a new
    one would have no way out), /sys bound from the host (sysfs cannot be mounted without owning the
    network namespace), no uid=/gid= mount options (no other id is mapped), and no cgroup limits."""
    linux = config["linux"]
    linux["namespaces"] = [ns for ns in linux["namespaces"] if ns["type"] not in ("network", "user")]
    linux["namespaces"].append({"type": "user"})
    linux["uidMappings"] = [{"containerID": 0, "hostID": uid, "size": 1}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": gid, "size": 1}]
    mounts = []
    for mount in config.get("mounts") or []:
        if os.path.normpath(mount["destination"]) == "/sys":
            mounts.append({"destination": "/sys", "type": "none", "source": "/sys",
                           "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
            continue
        options = [o for o in mount.get("options") or [] if not o.startswith(("gid=", "uid="))]
        mounts.append({**mount, "options": options})
    config["mounts"] = mounts
    linux.pop("resources", None)
    return config


def create(args: argparse.Namespace) -> int:
    _runtime(args).create(args.id, args.bundle, console_socket=args.console_socket, pid_file=args.pid_file,
                          preserve_fds=args.preserve_fds)
    return 0


def run(args: argparse.Namespace) -> int:
    rt = _runtime(args)
    if args.detach:
        rt.create(args.id, args.bundle, console_socket=args.console_socket, pid_file=args.pid_file,
                  preserve_fds=args.preserve_fds)
        try:
            rt.start(args.id)
        except BaseException:
            rt.delete(args.id, force=True)
            raise
        return 0
    if args.console_socket or args.pid_file or args.preserve_fds:
        rt.create(args.id, args.bundle, console_socket=args.console_socket, pid_file=args.pid_file,
                  preserve_fds=args.preserve_fds)
        started = False
        try:
            rt.start(args.id)
            started = True
            return rt.wait(args.id)
        finally:
            if not (args.keep and started):
                rt.delete(args.id, force=True)
    # --keep: the container stays, stopped, until `delete` (runc's run --keep)
    return rt.run(args.id, args.bundle, keep=args.keep)


def start(args: argparse.Namespace) -> int:
    _runtime(args).start(args.id)
    return 0


def state(args: argparse.Namespace) -> int:
    from skiff.oci.main import print_json

    print_json(_oci_state(_runtime(args).state(args.id)))
    return 0


def _oci_state(state: dict[str, Any]) -> dict[str, Any]:
    out = {k: state.get(k) for k in ("ociVersion", "id", "pid", "status", "bundle", "rootfs", "created")}
    out["owner"] = ""
    if state.get("annotations"):
        out["annotations"] = state["annotations"]
    return out


def kill(args: argparse.Namespace) -> int:
    from skiff.signals import parse_signal

    sig = parse_signal(args.signal, runc=True)
    rt = _runtime(args)
    if args.all:
        for pid in rt.ps(args.id):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        return 0
    rt.kill(args.id, sig)
    return 0


def delete(args: argparse.Namespace) -> int:
    rt = _runtime(args)
    try:
        rt.delete(args.id, force=args.force, only_stopped=True)  # one read of the state, not two
    except ContainerNotFound:
        if not args.force:
            raise
    return 0


def exec_(args: argparse.Namespace) -> int:
    rt = _runtime(args)
    process = _exec_process(rt, args)
    status = rt.exec(args.id, process, console_socket=args.console_socket, detach=args.detach,
                     pid_file=args.pid_file)
    return 0 if args.detach else status


def _exec_process(rt: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    import json

    if args.process:
        try:
            with open(args.process) as f:
                return json.load(f)
        except ValueError as exc:
            raise InvalidArgument(f"process file {args.process} is not valid JSON: {exc}") from None
    if not args.cmd:
        raise UsageError("exec needs a command or --process FILE")
    base = rt.record(args.id).get("config", {}).get("process") or {}
    process: dict[str, Any] = json.loads(json.dumps(base))
    process["args"] = args.cmd[1:] if args.cmd[0] == "--" else args.cmd
    process["terminal"] = args.tty
    process["env"] = list(process.get("env", [])) + list(args.env)
    if args.cwd:
        process["cwd"] = args.cwd
    if args.user:
        uid, _, gid = args.user.partition(":")
        process["user"] = {"uid": int(uid), "gid": int(gid or 0)}
    if args.additional_gids:
        process.setdefault("user", {})["additionalGids"] = [int(g) for g in args.additional_gids]
    if args.cap:
        caps = process.setdefault("capabilities", {})
        for key in ("bounding", "effective", "permitted", "inheritable", "ambient"):
            caps[key] = list(dict.fromkeys(list(caps.get(key) or []) + args.cap))
    if args.no_new_privs:
        process["noNewPrivileges"] = True
    return process


def ps(args: argparse.Namespace) -> int:
    pids = _runtime(args).ps(args.id)
    if args.format == "json":
        from skiff.oci.main import print_json

        print_json(pids, indent=None)
        return 0
    import subprocess

    ps_args = args.ps_args[1:] if args.ps_args[:1] == ["--"] else args.ps_args
    out = subprocess.run(["ps", *(ps_args or ["-ef"])], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    header = lines[0].split()
    column = header.index("PID")
    wanted = set(pids)
    sys.stdout.write("\n".join([lines[0]] + [line for line in lines[1:]
                                             if int(line.split()[column]) in wanted]) + "\n")
    return 0


def pause(args: argparse.Namespace) -> int:
    _runtime(args).pause(args.id)
    return 0


def resume(args: argparse.Namespace) -> int:
    _runtime(args).resume(args.id)
    return 0


def update(args: argparse.Namespace) -> int:
    """runc's update: ``-r FILE|-`` is the whole update (other flags ignored), else the flags given."""
    import json
    from pathlib import Path

    from skiff.oci.update_flags import RDT_FLAGS, RESOURCE_FLAGS, check_rdt_flags, resources_from_flags

    flags = {flag: getattr(args, flag.replace("-", "_")) for flag in (*RESOURCE_FLAGS, *RDT_FLAGS)}
    check_rdt_flags(flags)  # runc checks these whatever else is given
    if args.resources:
        try:
            text = sys.stdin.read() if args.resources == "-" else Path(args.resources).read_text()
            resources = json.loads(text)
        except ValueError as exc:
            raise InvalidArgument(f"resources {args.resources} are not valid JSON: {exc}") from None
    else:
        resources = resources_from_flags(flags)
    _runtime(args).update(args.id, resources)
    return 0


def features(args: argparse.Namespace) -> int:
    from skiff.oci.main import print_json
    from skiff.runtime.mounts import IDMAP_OPTIONS, PROPAGATION, _FLAG_OPTIONS
    from skiff.runtime.spec import CAPABILITIES, NAMESPACE_FLAGS

    print_json({
        "ociVersionMin": "1.0.0", "ociVersionMax": "1.0.2",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": sorted({*_FLAG_OPTIONS, *PROPAGATION, *IDMAP_OPTIONS, "bind", "rbind", "rro"}),
        "linux": {
            "namespaces": sorted(NAMESPACE_FLAGS), "capabilities": list(CAPABILITIES),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
            "seccomp": {"enabled": True, "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL",
                                                      "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
                                                      "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                        "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE",
                                      "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"]},
            "apparmor": {"enabled": os.path.exists("/sys/kernel/security/apparmor")},
            "selinux": {"enabled": os.path.exists("/sys/fs/selinux/enforce")},
            "mountExtensions": {"idmap": {"enabled": True}},
        },
        "annotations": {"org.opencontainers.runc.version": "1.1.5", "io.skiff.runtime": "skiff-oci"},
    })
    return 0


def list_(args: argparse.Namespace) -> int:
    states = [_oci_state(s) for s in _runtime(args).list()]
    if args.quiet:
        sys.stdout.write("".join(s["id"] + "\n" for s in states))
        return 0
    if args.format == "json":
        from skiff.oci.main import print_json

        print_json(states, indent=None)
        return 0
    rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
    rows += [(s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"] or "", "root") for s in states]
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    for row in rows:
        sys.stdout.write("   ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() + "\n")
    return 0
