"""A validated ``skiff run``: every flag checked, then turned into an OCI config.

``RunPlan.make`` parses and checks all that can be checked before anything is
created (command, mounts, resources, network request), so bad input exits 125
with nothing left behind. ``build_spec`` then does the parts that need the
mounted rootfs (user lookup, volume copy-up, network attach) and returns the
config.json the runtime executes.
"""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path
from typing import Any

from skiff import crash_point
from skiff.engine import spec as process_spec
from skiff.engine.containers import Container
from skiff.engine.options import RunOptions
from skiff.paths import Paths

class RunPlan:
    def __init__(self, paths: Paths, image: Any, opts: RunOptions, args: list[str], workdir: str) -> None:
        self.paths = paths
        self.image = image
        self.opts = opts
        self.args = args
        self.workdir = workdir
        self.mount_plan: Any = None
        self.resources: dict[str, Any] = {}
        self.rlimits: list[dict[str, Any]] = []
        self.network_attachment: Any = None
        self.restart_policy: dict[str, Any] = {}
        self.log_config: dict[str, str] = {}
        self.security: Any = None  # skiff.security.options.SecurityOptions
        self.seccomp: dict[str, Any] | None = None
        self.healthcheck: dict[str, Any] | None = None  # Config.Healthcheck: the image's, with the flags'

    @classmethod
    def make(cls, paths: Paths, image: Any, opts: RunOptions) -> "RunPlan":
        from skiff.engine.validate import check_run_options

        check_run_options(opts)  # the name and the values written into /etc files
        args = process_spec.command_line(image.config, opts)
        workdir = process_spec.working_dir(image.config, opts)
        for env_file in opts.env_files:
            process_spec.read_env_file(env_file)  # a missing file fails now, not after mounting
        plan = cls(paths, image, opts, args, workdir)
        plan._check_resources()
        plan._check_mounts()
        plan._check_network()
        plan._check_lifecycle()
        plan._check_security()
        plan._check_health()
        return plan

    # --- validation (nothing created) ---------------------------------------
    def _check_resources(self) -> None:
        if not (self.opts.resources or self.opts.ulimits):
            return
        from skiff.cgroups import resources_from_flags, rlimits_from_ulimits

        flags = {k: v for k, v in self.opts.resources.items() if v is not None}
        self.resources = resources_from_flags(**flags) if flags else {}
        self.rlimits = rlimits_from_ulimits(self.opts.ulimits) if self.opts.ulimits else []

    def _check_mounts(self) -> None:
        o = self.opts
        if not (o.volumes or o.mounts or o.tmpfs or o.volumes_from or self.image.config.get("Volumes")):
            return
        from skiff.engine.volumes import plan_container_mounts

        self.mount_plan = plan_container_mounts(self.paths, self.image, o)

    def _check_lifecycle(self) -> None:
        from skiff.engine.lifecycle import parse_log_opts, parse_restart_policy

        self.restart_policy = parse_restart_policy(self.opts.restart)
        if self.restart_policy["Name"] != "no" and self.opts.remove:
            from skiff.errors import InvalidArgument

            raise InvalidArgument("Conflicting options: --restart and --rm")
        self.log_config = parse_log_opts(self.opts.log_opts)
        if self.opts.stop_signal:
            from skiff.engine.lifecycle import parse_signal

            parse_signal(self.opts.stop_signal)
        if self.opts.init and not _init_binary():
            from skiff.errors import InvalidArgument

            raise InvalidArgument(f"--init needs {INIT_BINARY} (the Debian package tini)")

    def _check_security(self) -> None:
        """--security-opt checked, and the seccomp profile resolved for the container's capabilities."""
        from skiff.runtime.spec import DOCKER_DEFAULT_CAPS
        from skiff.security.options import linux_seccomp, parse

        # The capabilities build_spec gives every container (skiff has no --cap-add yet).
        self.security = parse(self.opts.security_opts)
        self.seccomp = linux_seccomp(self.security, DOCKER_DEFAULT_CAPS)

    def _check_health(self) -> None:
        o = self.opts
        if not (o.health_cmd or o.health_interval or o.health_timeout or o.health_retries
                or o.health_start_period or o.no_healthcheck or self.image.config.get("Healthcheck")):
            return
        from skiff.engine import health

        flags = health.config_from_flags(o.health_cmd, o.health_interval, o.health_timeout, o.health_retries,
                                         o.health_start_period, o.no_healthcheck)
        self.healthcheck = health.merged_config(flags, self.image.config.get("Healthcheck"))

    def _check_network(self) -> None:
        if self.opts.network in ("none", "host") and not self.opts.publish:
            return
        from skiff.engine.network import check_request

        check_request(self.paths, self.opts, self.image)

    # --- records --------------------------------------------------------------
    def hostname(self, cid: str) -> str:
        """-h; else, as Docker, the host's name on its network, X's on X's (container:X); else the short id."""
        if self.opts.hostname:
            return self.opts.hostname
        mode = self.opts.network
        if mode == "host":
            import os

            return os.uname().nodename
        if mode.startswith("container:"):
            from skiff.engine import containers as records

            other = records.find_container(self.paths, mode.partition(":")[2])
            return str(other.data["Config"].get("Hostname") or other.id[:12])
        return cid[:12]

    @property
    def healthcheck_active(self) -> bool:
        """The container has a health test to run (not none, not NONE)."""
        if self.healthcheck is None:
            return False
        from skiff.engine import health

        return health.active(self.healthcheck)

    def config_record(self, cid: str) -> dict[str, Any]:
        o = self.opts
        cfg = self.image.config
        return {
            "Hostname": self.hostname(cid),
            "User": o.user or cfg.get("User") or "",
            "Env": process_spec.environment(cfg, o, self.hostname(cid), "/"),
            "Cmd": list(o.command) or cfg.get("Cmd"),
            "Entrypoint": [o.entrypoint] if o.entrypoint is not None else cfg.get("Entrypoint"),
            "Image": o.image,
            "WorkingDir": self.workdir,
            "Labels": {**(cfg.get("Labels") or {}), **dict(lbl.partition("=")[::2] for lbl in o.labels)},
            "Volumes": cfg.get("Volumes"),
            "ExposedPorts": cfg.get("ExposedPorts"),
            "StopSignal": o.stop_signal or cfg.get("StopSignal") or "SIGTERM",
            "OpenStdin": o.interactive,
            "AttachStdin": o.interactive and not o.detach,
            "Tty": o.tty,
            "StopTimeout": o.stop_timeout,
            **({"Healthcheck": self.healthcheck} if self.healthcheck is not None else {}),
            **({"Shell": cfg["Shell"]} if cfg.get("Shell") else {}),  # the shell of CMD-SHELL health tests
        }

    def host_config_record(self) -> dict[str, Any]:
        o = self.opts
        return {
            "AutoRemove": o.remove,
            "NetworkMode": o.network,
            "ReadonlyRootfs": o.read_only,
            "Binds": list(o.volumes),
            "Mounts": list(o.mounts),
            "Tmpfs": list(o.tmpfs),
            "VolumesFrom": list(o.volumes_from),
            "PortBindings": list(o.publish),
            "PublishAllPorts": o.publish_all,
            "Dns": list(o.dns), "DnsSearch": list(o.dns_search), "DnsOptions": list(o.dns_options),
            "ExtraHosts": list(o.add_hosts),
            "Resources": self.resources,
            "Ulimits": list(o.ulimits),
            "RestartPolicy": self.restart_policy,
            "LogConfig": {"Type": "json-file", "Config": self.log_config},
            "Init": o.init,
            "SecurityOpt": list(o.security_opts) or None,
        }

    def mount_records(self) -> list[dict[str, Any]]:
        return self.mount_plan.records() if self.mount_plan else []

    def network_settings(self) -> dict[str, Any]:
        return self.network_attachment.settings() if self.network_attachment else {}

    # --- the OCI config ---------------------------------------------------------
    def build_spec(self, container: Container, rootfs: Path, undo: contextlib.ExitStack) -> dict[str, Any]:
        from skiff.engine.users import resolve_user
        from skiff.runtime.spec import default_spec

        o = self.opts
        user = resolve_user(rootfs, o.user or self.image.config.get("User") or "")
        hostname = self.hostname(container.id)
        env = process_spec.environment(self.image.config, o, hostname, user.home)
        container.data["Config"]["Env"] = env
        container.data["Config"]["Hostname"] = hostname  # container:X: X's, which may have changed

        spec = copy.deepcopy(default_spec())
        spec["root"] = {"path": "rootfs", "readonly": o.read_only}
        spec["hostname"] = hostname
        args = self.args
        if o.init:  # Docker's --init: tini, bind-mounted read-only, is PID 1 and runs the command
            args = [INIT_DESTINATION, "--", *args]
            spec["mounts"].append({"destination": INIT_DESTINATION, "type": "bind", "source": INIT_BINARY,
                                   "options": ["bind", "ro", "rprivate"]})
        spec["process"].update({
            "args": args, "env": env, "cwd": self.workdir, "terminal": o.tty,
            "user": {"uid": user.uid, "gid": user.gid, "additionalGids": user.additional_gids},
        })
        # Docker's defaults: no_new_privs off unless --security-opt no-new-privileges, rlimits
        # inherited from the host unless --ulimit.
        spec["process"]["noNewPrivileges"] = self.security.no_new_privileges
        spec["process"]["rlimits"] = self.rlimits
        linux = spec["linux"]
        linux["cgroupsPath"] = f"/{cgroup_parent()}/{container.id}"
        linux["resources"] = {**linux.get("resources", {}), **self.resources}
        if self.seccomp is not None:  # Docker's default profile unless --security-opt seccomp=...
            linux["seccomp"] = self.seccomp

        self._set_network(spec, container, undo)
        crash_point("network")
        spec["mounts"].extend(self._etc_files(container, hostname))
        if self.mount_plan is not None:
            undo.callback(self.mount_plan.release, True)  # a failed run keeps no volume it created
            self.mount_plan.prepare(rootfs, container.id)
            crash_point("volumes")
            spec["mounts"].extend(self.mount_plan.oci_mounts())
            if self.mount_plan.rootfs_propagation():
                linux["rootfsPropagation"] = self.mount_plan.rootfs_propagation()
        return spec

    def _set_network(self, spec: dict[str, Any], container: Container, undo: contextlib.ExitStack) -> None:
        namespaces = spec["linux"]["namespaces"]
        mode = self.opts.network
        if mode == "host":
            namespaces[:] = [ns for ns in namespaces if ns["type"] != "network"]
            return
        if mode == "none":
            return  # a new, empty network namespace: the runtime brings lo up
        from skiff.engine.network import attach

        self.network_attachment = attach(self.paths, container, self.opts, self.image, undo)
        for ns in namespaces:
            if ns["type"] == "network":
                ns["path"] = str(self.network_attachment.netns_path)

    def _etc_files(self, container: Container, hostname: str) -> list[dict[str, Any]]:
        """/etc/hostname, /etc/hosts and /etc/resolv.conf: files in the container dir, bind-mounted."""
        hosts, resolv = self._names(hostname)
        files = {"hostname": hostname + "\n", "hosts": hosts, "resolv.conf": resolv}
        mounts = []
        for name, text in files.items():
            path = container.dir / name
            path.write_text(text)
            mounts.append({"destination": f"/etc/{name}", "type": "bind", "source": str(path),
                           "options": ["rbind", "rprivate"]})
        return mounts

    def _names(self, hostname: str) -> tuple[str, str]:
        """hosts and resolv.conf: the network's, or (none, host, a shared namespace) made here."""
        attachment = self.network_attachment
        if getattr(attachment, "hosts", None):
            return attachment.hosts, attachment.resolv_conf
        from skiff.network import names

        o = self.opts
        extra = [names.parse_add_host(spec, None) for spec in o.add_hosts]
        if o.network != "host":
            return names.hosts_file(hostname, None, extra), names.resolv_conf(o.dns, o.dns_search, o.dns_options)
        # The host's network: its own files, as Docker copies them, plus what the flags add.
        hosts = (_read("/etc/hosts") or names.hosts_file(hostname, None)) + "".join(
            f"{ip}\t{name}\n" for name, ip in extra)
        wants_dns = o.dns or o.dns_search or o.dns_options
        resolv = names.resolv_conf(o.dns, o.dns_search, o.dns_options) if wants_dns else names.host_resolv_conf()
        return hosts, resolv


INIT_BINARY = "/usr/bin/tini-static"
INIT_DESTINATION = "/sbin/docker-init"


def _init_binary() -> bool:
    import os

    return os.access(INIT_BINARY, os.X_OK)


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def release_resources(paths: Paths, container: Container, remove_anonymous: bool) -> None:
    """Undo what build_spec set up for a container that is no longer running."""
    from skiff.engine.volumes import release_container_mounts

    release_container_mounts(paths, container, remove_anonymous)
    # By mode, not by NetworkSettings: a run killed between the attach and the record that
    # says so holds a namespace, a veth and a lease all the same (the network's own records
    # of them, by container id, are the truth).
    mode = container.data["HostConfig"].get("NetworkMode") or "bridge"
    if container.data.get("NetworkSettings") or (mode not in ("none", "host") and not mode.startswith("container:")):
        from skiff.engine.network import detach

        detach(paths, container)


def cgroup_parent() -> str:
    """The cgroup under which containers live, in every hierarchy: /skiff, as Docker's /docker.

    SKIFF_CGROUP_PARENT moves it (the tests use a private one they remove afterwards).
    """
    import os

    return os.environ.get("SKIFF_CGROUP_PARENT", "skiff").strip("/") or "skiff"
