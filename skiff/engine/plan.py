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
from typing import TYPE_CHECKING, Any

from skiff import crash_point
from skiff.engine import etcfiles
from skiff.engine import spec as process_spec
from skiff.engine.containers import Container
from skiff.engine.options import RunOptions
from skiff.paths import Paths

if TYPE_CHECKING:
    from skiff.engine.namespaces import Modes
    from skiff.engine.network import SharedNetwork
    from skiff.image.store import Image
    from skiff.network.manager import Attachment
    from skiff.security.options import SecurityOptions
    from skiff.volume.plan import MountPlan

class RunPlan:
    # Set by make's checks, before anything reads them.
    security: SecurityOptions
    namespaces: Modes

    def __init__(self, paths: Paths, image: Image, opts: RunOptions, args: list[str], workdir: str) -> None:
        self.paths = paths
        self.image = image
        self.opts = opts
        self.args = args
        self.workdir = workdir
        self.mount_plan: MountPlan | None = None
        self.resources: dict[str, Any] = {}
        self.rlimits: list[dict[str, Any]] = []
        self.network_attachment: Attachment | SharedNetwork | None = None
        self.restart_policy: dict[str, Any] = {}
        self.log_config: dict[str, str] = {}
        self.seccomp: dict[str, Any] | None = None
        self.warnings: list[str] = []   # Docker's create warnings (printed once, by create and run)
        self.sysctls: dict[str, str] = {}
        self.shm_size = 0
        self.oom_score_adj = 0
        self.mac_address: str | None = None
        self.exposed_ports: dict[str, dict[str, Any]] = {}
        self.capabilities: list[str] = []
        self.healthcheck: dict[str, Any] | None = None  # Config.Healthcheck: the image's, with the flags'

    @classmethod
    def make(cls, paths: Paths, image: Image, opts: RunOptions) -> RunPlan:
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
        if opts.links:
            from skiff.engine import links

            links.check(paths, opts.links, opts.network)
        plan._check_lifecycle()
        plan._check_security()
        plan._check_run_flags()
        plan._check_namespaces()
        plan._check_health()
        plan._check_devices()
        return plan

    # --- validation (nothing created) ---------------------------------------
    def _check_resources(self) -> None:
        if not (self.opts.resources or self.opts.ulimits):
            return
        from skiff.engine.resources import resources_from_flags
        from skiff.engine.ulimits import rlimits_from_ulimits

        # each of resources_from_flags' keywords with its flag's value (a mix of types)
        flags: dict[str, Any] = {k: v for k, v in self.opts.resources.items() if v is not None}
        self.resources = resources_from_flags(**flags) if flags else {}
        self.rlimits = rlimits_from_ulimits(self.opts.ulimits) if self.opts.ulimits else []
        if self.resources.get("memory"):  # --memory-swappiness, --oom-kill-disable: v1 only
            from skiff.engine.resources import discard_unsupported

            self.warnings = discard_unsupported(self.resources)

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
            from skiff.signals import parse_signal

            parse_signal(self.opts.stop_signal)
        if self.opts.init and not _init_binary():
            from skiff.errors import InvalidArgument

            raise InvalidArgument(f"--init needs {INIT_BINARY} (the Debian package tini)")

    def _check_security(self) -> None:
        """--security-opt checked, and the seccomp profile resolved for the container's capabilities."""
        from skiff.security.options import linux_seccomp, parse

        o = self.opts
        self.security = parse(o.security_opts)
        if o.cap_add or o.cap_drop or o.privileged:
            from skiff.security.capabilities import effective

            self.capabilities = effective(o.cap_add, o.cap_drop, o.privileged)
        else:
            from skiff.runtime.spec import DOCKER_DEFAULT_CAPS

            self.capabilities = list(DOCKER_DEFAULT_CAPS)
        # As Docker: the profile's rules follow the final capability set; a privileged
        # container has no seccomp filter at all, whatever --security-opt says.
        self.seccomp = None if o.privileged else linux_seccomp(self.security, self.capabilities)

    def _check_namespaces(self) -> None:
        """--pid, --ipc, --uts, --cgroupns, --userns: checked, container:X found and running."""
        from skiff.engine.namespaces import resolve

        self.namespaces = resolve(self.paths, self.opts)
        # Replayed by every start as X's id, as Docker records it: never another container named X later.
        self.opts = self.opts._replace(pid=self.namespaces.pid, ipc=self.opts.ipc and self.namespaces.ipc)

    def _check_run_flags(self) -> None:
        """--sysctl, --shm-size, --oom-score-adj, --mac-address, --domainname, --expose, --group-add."""
        from skiff.engine import runflags

        o = self.opts
        self.sysctls = runflags.parse_sysctls(o.sysctls, o.network) if o.sysctls else {}
        self.shm_size = runflags.shm_size(o.shm_size)
        self.oom_score_adj = runflags.oom_score_adj(o.oom_score_adj)
        self.mac_address = runflags.mac_address(o.mac_address, o.network)
        runflags.domainname(o.domainname)
        runflags.check_group_add(o.group_add)
        self.exposed_ports = runflags.exposed_ports(o.expose, o.publish, self.image.config.get("ExposedPorts"))

    def _check_health(self) -> None:
        o = self.opts
        if not (o.health_cmd or o.health_interval or o.health_timeout or o.health_retries
                or o.health_start_period or o.no_healthcheck or o.health_test or self.image.config.get("Healthcheck")):
            return
        from skiff.engine import health

        flags = health.config_from_flags(o.health_cmd, o.health_interval, o.health_timeout, o.health_retries,
                                         o.health_start_period, o.no_healthcheck)
        if o.health_test:  # the API's Test in its own form: the flags can say CMD-SHELL only
            zero = {"Interval": 0, "Timeout": 0, "StartPeriod": 0, "Retries": 0}
            flags = {**(flags or zero), "Test": list(o.health_test)}
        self.healthcheck = health.merged_config(flags, self.image.config.get("Healthcheck"))

    def _check_devices(self) -> None:
        """--device, --device-cgroup-rule, device requests: their syntax now, the devices at start."""
        o = self.opts
        if not (o.devices or o.device_cgroup_rules or o.device_requests):
            return
        from skiff.engine import devices

        for value in o.devices:
            devices.check_device_flag(value)
        for rule in o.device_cgroup_rules:
            devices.check_cgroup_rule(rule)
        devices.check_requests(devices.device_requests(o.devices, o.device_requests))

    def _set_devices(self, spec: dict[str, Any], container: Container) -> None:
        """The host devices, cgroup rules and CDI devices (--gpus too), read at every start as Docker's daemon."""
        o = self.opts
        if not (o.devices or o.device_cgroup_rules or o.device_requests):
            return
        from skiff.engine import devices

        given = devices.apply(spec, o.devices, o.device_cgroup_rules, o.device_requests)
        container.data["HostConfig"]["CDIDevices"] = given or None  # skiff's addition: what CDI resolved to

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
            "ExposedPorts": self.exposed_ports or None,
            "Domainname": o.domainname or "",
            **({"MacAddress": o.mac_address} if o.mac_address else {}),
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
            **({"Sysctls": dict(self.sysctls)} if self.sysctls else {}),   # omitempty, as Docker's
            "GroupAdd": list(o.group_add) or None,
            "ShmSize": self.shm_size,
            "OomScoreAdj": self.oom_score_adj,
            "OomKillDisable": self._oom_kill_disable(),
            "MemorySwappiness": (self.resources.get("memory") or {}).get("swappiness"),
            "ContainerIDFile": o.cidfile or "",
            "SecurityOpt": security_opt_record(o, self.namespaces),
            "CapAdd": list(o.cap_add) or None, "CapDrop": list(o.cap_drop) or None,
            "Privileged": o.privileged,
            "UsernsMode": self.namespaces.userns, "PidMode": self.namespaces.pid,
            "IpcMode": self.namespaces.ipc, "UTSMode": self.namespaces.uts,
            "CgroupnsMode": self.namespaces.cgroupns,
            **self._device_records(),
            **({"CgroupParent": o.cgroup_parent} if o.cgroup_parent else {}),
            **({"Links": list(o.links)} if o.links else {}),  # NAME:ALIAS; the inspect document spells them
        }

    def _device_records(self) -> dict[str, Any]:
        """HostConfig.Devices, DeviceCgroupRules and DeviceRequests, as Docker records them."""
        o = self.opts
        if not (o.devices or o.device_cgroup_rules or o.device_requests):
            return {}
        from skiff.engine import devices

        paths, _ = devices.split_devices(o.devices)
        return {"Devices": [devices.device_mapping(value) for value in paths],
                "DeviceCgroupRules": list(o.device_cgroup_rules) or None,
                "DeviceRequests": devices.device_requests(o.devices, o.device_requests) or None,
                "CDIDevices": None}  # skiff's addition: the CDI devices the last start gave it

    def _oom_kill_disable(self) -> bool | None:
        """Docker 20.10 records null where the memory cgroup has no memory.oom_control (cgroup v2)."""
        if (self.resources.get("memory") or {}).get("disableOOMKiller"):
            return True
        from skiff.cgroups.detect import memory_features

        return False if memory_features()[1] else None

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
            "user": {"uid": user.uid, "gid": user.gid,
                     "additionalGids": self._additional_gids(rootfs, user.additional_gids)},
            "oomScoreAdj": self.oom_score_adj,  # always, as Docker: 0 unless --oom-score-adj
        })
        if o.domainname:
            spec["domainname"] = o.domainname
        if self.sysctls:  # written by the runtime inside the container's namespaces only
            spec["linux"]["sysctl"] = dict(self.sysctls)
        _set_shm_size(spec["mounts"], self.shm_size)
        # Docker's defaults: no_new_privs off unless --security-opt no-new-privileges, rlimits
        # inherited from the host unless --ulimit.
        spec["process"]["noNewPrivileges"] = self.security.no_new_privileges
        spec["process"]["rlimits"] = self.rlimits
        spec["process"]["capabilities"] = {key: list(self.capabilities)
                                           for key in ("bounding", "effective", "permitted")}
        linux = spec["linux"]
        linux["cgroupsPath"] = f"/{o.cgroup_parent or cgroup_parent()}/{container.id}"
        linux["resources"] = {**linux.get("resources", {}), **self.resources}
        if self.seccomp is not None:  # Docker's default profile unless --security-opt seccomp=...
            linux["seccomp"] = self.seccomp

        self._set_network(spec, container, undo)
        crash_point("network")
        if o.links and o.network == "bridge":  # Docker's link variables, on the default bridge only
            from skiff.engine import links

            spec["process"]["env"] = links.with_environment(
                spec["process"]["env"], links.resolve(self.paths, o.links, o.network, container.name), container.name)
        etcfiles.make_mountpoints(rootfs)  # before copy-up: a new volume at /etc gets them, as Docker's
        if self.mount_plan is not None:
            undo.callback(self.mount_plan.release)  # driver mounts; the volumes stay the container's
            self.mount_plan.prepare(rootfs, container.id)
            crash_point("volumes")
            spec["mounts"].extend(self.mount_plan.oci_mounts())
            if self.mount_plan.rootfs_propagation():
                linux["rootfsPropagation"] = self.mount_plan.rootfs_propagation()
        # After the volumes, as Docker mounts them: a volume or bind over /etc still gets them.
        spec["mounts"].extend(self._etc_files(container, hostname))
        self._set_devices(spec, container)
        self._set_security(spec, container, undo)
        return spec

    def _additional_gids(self, rootfs: Path, user_gids: list[int]) -> list[int]:
        """The user's groups, then --group-add's (looked up in the image's /etc/group), as Docker."""
        if not self.opts.group_add:
            return user_gids
        from skiff.engine.runflags import additional_gids
        from skiff.engine.users import read_in_root

        added = additional_gids(read_in_root(rootfs, "/etc/group"), self.opts.group_add)
        return [*user_gids, *(gid for gid in added if gid not in user_gids)]
    def _set_security(self, spec: dict[str, Any], container: Container, undo: contextlib.ExitStack) -> None:
        """--privileged and the shared namespaces, once every mount is in the config."""
        if self.opts.privileged:
            from skiff.security.privileged import apply

            apply(spec)
        from skiff.engine import namespaces

        namespaces.apply(spec, self.namespaces, self.paths, container, undo)

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
        """/etc/hostname, /etc/hosts and /etc/resolv.conf: files in the container dir, bind-mounted
        (read-only with --read-only; not where the user mounts something)."""
        hosts, resolv = self._names(hostname)
        files = {"hostname": hostname + "\n", "hosts": hosts, "resolv.conf": resolv}
        user = [m.destination for m in self.mount_plan.mounts] if self.mount_plan is not None else []
        return etcfiles.etc_mounts(container.dir, files, self.opts.read_only, user)

    def _names(self, hostname: str) -> tuple[str, str]:
        """hosts and resolv.conf: the network's, or (none, host, a shared namespace) made here."""
        attachment = self.network_attachment
        if attachment is not None and attachment.hosts:
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


def _set_shm_size(mounts: list[dict[str, Any]], size: int) -> None:
    """/dev/shm's tmpfs gets --shm-size (Docker's default 64 MiB) instead of the default spec's."""
    for mount in mounts:
        if mount.get("destination") == "/dev/shm" and mount.get("type") == "tmpfs":
            mount["options"] = [opt for opt in mount.get("options", []) if not opt.startswith("size=")]
            mount["options"].append(f"size={size}")


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


def security_opt_record(opts: RunOptions, modes: Modes) -> list[str] | None:
    """HostConfig.SecurityOpt: the user's values, and label=disable where Docker adds it."""
    if not (opts.security_opts or opts.privileged or "host" in (modes.ipc, modes.pid)):
        return None
    from skiff.security.options import recorded

    return recorded(opts.security_opts, opts.privileged, modes.ipc, modes.pid)


def cgroup_parent() -> str:
    """The cgroup under which containers live, in every hierarchy: /skiff, as Docker's /docker.

    SKIFF_CGROUP_PARENT moves it (the tests use a private one they remove afterwards).
    """
    import os

    return os.environ.get("SKIFF_CGROUP_PARENT", "skiff").strip("/") or "skiff"
