"""What a user asked ``skiff run`` for, independent of how the CLI spelled it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RunOptions:
    image: str
    command: list[str] = field(default_factory=list)
    pull: str = "missing"            # --pull missing|always|never
    platform: str | None = None      # --platform os/arch[/variant]
    name: str | None = None
    remove: bool = False
    detach: bool = False
    interactive: bool = False
    tty: bool = False
    init: bool = False
    restart: str = "no"                                   # no | on-failure[:N] | always | unless-stopped
    log_opts: list[str] = field(default_factory=list)     # max-size=, max-file=
    stop_timeout: int | None = None
    stop_signal: str | None = None
    env: list[str] = field(default_factory=list)
    env_files: list[str] = field(default_factory=list)
    workdir: str | None = None
    user: str | None = None
    hostname: str | None = None
    entrypoint: str | None = None
    network: str = "bridge"
    read_only: bool = False
    labels: list[str] = field(default_factory=list)
    # volumes (issue 3)
    volumes: list[str] = field(default_factory=list)
    mounts: list[str] = field(default_factory=list)
    tmpfs: list[str] = field(default_factory=list)
    volumes_from: list[str] = field(default_factory=list)
    # resources (issue 5): Docker flag name -> raw value
    resources: dict[str, str | None] = field(default_factory=dict)
    ulimits: list[str] = field(default_factory=list)
    # network (issue 6)
    publish: list[str] = field(default_factory=list)
    publish_all: bool = False
    ip: str | None = None
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_options: list[str] = field(default_factory=list)
    add_hosts: list[str] = field(default_factory=list)
