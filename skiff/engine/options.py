"""What a user asked ``skiff run`` for, independent of how the CLI spelled it."""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple, Sequence


class RunOptions(NamedTuple):
    """Immutable; a NamedTuple rather than a dataclass, which costs 5 ms to import on the run path."""

    image: str
    command: Sequence[str] = ()
    pull: str = "missing"            # --pull missing|always|never
    platform: str | None = None      # --platform os/arch[/variant]
    name: str | None = None
    remove: bool = False
    detach: bool = False
    interactive: bool = False
    tty: bool = False
    init: bool = False
    restart: str = "no"                                   # no | on-failure[:N] | always | unless-stopped
    log_opts: Sequence[str] = ()     # max-size=, max-file=
    stop_timeout: int | None = None
    stop_signal: str | None = None
    env: Sequence[str] = ()
    env_files: Sequence[str] = ()
    workdir: str | None = None
    user: str | None = None
    hostname: str | None = None
    entrypoint: str | None = None
    network: str = "bridge"
    read_only: bool = False
    labels: Sequence[str] = ()
    # volumes (issue 3)
    volumes: Sequence[str] = ()
    mounts: Sequence[str] = ()
    tmpfs: Sequence[str] = ()
    volumes_from: Sequence[str] = ()
    # resources (issue 5): Docker flag name -> raw value
    resources: Mapping[str, str | bool | None] = {}  # never mutated
    ulimits: Sequence[str] = ()
    # network (issue 6)
    publish: Sequence[str] = ()
    publish_all: bool = False
    ip: str | None = None
    network_aliases: Sequence[str] = ()     # the Engine API's EndpointsConfig Aliases (--network-alias)
    dns: Sequence[str] = ()
    dns_search: Sequence[str] = ()
    dns_options: Sequence[str] = ()
    add_hosts: Sequence[str] = ()
    # security (issue 12): --security-opt values, seccomp profile files already read (security.options)
    security_opts: Sequence[str] = ()
    # more run flags (issue 13): raw values, checked by skiff.engine.runflags
    sysctls: Sequence[str] = ()              # --sysctl KEY=VALUE
    group_add: Sequence[str] = ()            # --group-add NAME|GID
    shm_size: str | None = None              # --shm-size (Docker's size syntax); None: 64m
    oom_score_adj: str | None = None         # --oom-score-adj
    mac_address: str | None = None           # --mac-address
    domainname: str | None = None            # --domainname
    expose: Sequence[str] = ()               # --expose PORT[-PORT][/PROTO]
    cidfile: str | None = None               # --cidfile (the client's file; written by create/run)
    # security and namespaces (issue 13): Docker's values; caps normalized (security.capabilities)
    cap_add: Sequence[str] = ()
    cap_drop: Sequence[str] = ()
    privileged: bool = False
    userns: str = ""                 # "" | host
    pid: str = ""                    # "" | host | container:X
    ipc: str = ""                    # "" (private) | private | shareable | none | host | container:X
    uts: str = ""                    # "" | host
    cgroupns: str = ""               # "" (the host's cgroup version decides) | host | private
    # health checks (issue 13): --health-* flags, durations in nanoseconds as Go's flags parse them
    health_cmd: str | None = None
    health_interval: int = 0
    health_timeout: int = 0
    health_retries: int = 0
    health_start_period: int = 0
    no_healthcheck: bool = False
    health_test: Sequence[str] = ()  # the Engine API's Healthcheck.Test, any of Docker's forms (CMD, CMD-SHELL, NONE)
    # devices (issue 20): --device values as typed (HOST[:CONTAINER[:PERMS]] or a CDI name),
    # --device-cgroup-rule values, and Docker's DeviceRequests (--gpus, the API's)
    devices: Sequence[str] = ()
    device_cgroup_rules: Sequence[str] = ()
    device_requests: Sequence[Mapping[str, Any]] = ()
    # the Engine API's create (issue 15): HostConfig.CgroupParent, HostConfig.Links as NAME:ALIAS
    cgroup_parent: str | None = None         # the cgroup containers go under instead of SKIFF_CGROUP_PARENT's
    links: Sequence[str] = ()                # --link NAME:ALIAS (skiff.engine.links)
