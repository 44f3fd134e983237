"""Docker 20.10's ``inspect`` document of a container, built from skiff's record.

skiff's record (``container.json``) keeps what skiff needs to start the container again:
its resources as an OCI ``linux.resources`` object, the ``-v``/``--mount``/``-p``/``--tmpfs``
strings as the user typed them, the run options (``SkiffOptions``). Docker's document is
another shape: flat resource fields (``Memory``, ``NanoCpus`` ...), mounts and port bindings
as objects, every field of its Go structs present with its zero value, omitempty fields left
out. The pure functions here turn one into the other at inspect time, so the record can
change (other commands add fields) without a migration:

* a field skiff converts (``Memory`` from ``Resources``, ``Mounts`` from ``--mount``
  strings ...) is derived from the record;
* any other field the record has under Docker's name passes through (``CapAdd``,
  ``Privileged``, ``State.Health`` ... as soon as a command writes them), when its type
  is the type Docker gives that field;
* every remaining field gets Docker's zero value (``null``, ``""``, ``0``, ``[]``, ``{}``
  exactly as Docker 20.10 prints it), never left out; omitempty fields are left out
  unless set, as Docker does.

The engine gathers what is not in the record (the live network attachment, the image's
config, the overlay's directories, sizes) into ``ContainerFacts``.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, NamedTuple, Sequence

from skiff.image.documents import CONFIG_FIELDS, OMIT, ZERO_TIME, healthcheck_document, is_empty

Doc = dict[str, Any]
Fields = Sequence[tuple[str, Any]]


class Shown(NamedTuple):
    """A derived value of an omitempty pointer field that is shown even when zero (SizeRw: 0)."""

    value: Any


# Record keys that are skiff's own bookkeeping, never shown.
PRIVATE_KEYS = frozenset({"SkiffOptions", "SkiffBroken", "RestartDelayMs", "MonitorPid", "MonitorStart",
                          "ManualStop", "Resources", "Unknown"})
DEFAULT_SHM_SIZE = 64 << 20  # Docker's default /dev/shm (skiff's default spec mounts 65536k)

# Docker 20.10's structs, fields in Go's order with their zero values as its JSON shows them.
STATE_FIELDS: Fields = (
    ("Status", "created"), ("Running", False), ("Paused", False), ("Restarting", False), ("OOMKilled", False),
    ("Dead", False), ("Pid", 0), ("ExitCode", 0), ("Error", ""), ("StartedAt", ZERO_TIME),
    ("FinishedAt", ZERO_TIME), ("Health", OMIT),
)
HOST_CONFIG_FIELDS: Fields = (
    ("Binds", None), ("ContainerIDFile", ""), ("LogConfig", None), ("NetworkMode", ""), ("PortBindings", {}),
    ("RestartPolicy", None), ("AutoRemove", False), ("VolumeDriver", ""), ("VolumesFrom", None),
    ("CapAdd", None), ("CapDrop", None), ("CgroupnsMode", ""), ("Dns", []), ("DnsOptions", []),
    ("DnsSearch", []), ("ExtraHosts", None), ("GroupAdd", None), ("IpcMode", ""), ("Cgroup", ""),
    ("Links", None), ("OomScoreAdj", 0), ("PidMode", ""), ("Privileged", False), ("PublishAllPorts", False),
    ("ReadonlyRootfs", False), ("SecurityOpt", None), ("StorageOpt", OMIT), ("Tmpfs", OMIT), ("UTSMode", ""),
    ("UsernsMode", ""), ("ShmSize", 0), ("Sysctls", OMIT), ("Runtime", ""), ("ConsoleSize", [0, 0]),
    ("Isolation", ""),
    # container.Resources, embedded
    ("CpuShares", 0), ("Memory", 0), ("NanoCpus", 0), ("CgroupParent", ""), ("BlkioWeight", 0),
    ("BlkioWeightDevice", []), ("BlkioDeviceReadBps", None), ("BlkioDeviceWriteBps", None),
    ("BlkioDeviceReadIOps", None), ("BlkioDeviceWriteIOps", None), ("CpuPeriod", 0), ("CpuQuota", 0),
    ("CpuRealtimePeriod", 0), ("CpuRealtimeRuntime", 0), ("CpusetCpus", ""), ("CpusetMems", ""),
    ("Devices", []), ("DeviceCgroupRules", None), ("DeviceRequests", None), ("KernelMemory", 0),
    ("KernelMemoryTCP", 0), ("MemoryReservation", 0), ("MemorySwap", 0), ("MemorySwappiness", None),
    ("OomKillDisable", False), ("PidsLimit", None), ("Ulimits", None), ("CpuCount", 0), ("CpuPercent", 0),
    ("IOMaximumIOps", 0), ("IOMaximumBandwidth", 0),
    ("Mounts", OMIT), ("MaskedPaths", None), ("ReadonlyPaths", None), ("Init", OMIT),
)
ENDPOINT_FIELDS: Fields = (
    ("IPAMConfig", None), ("Links", None), ("Aliases", None), ("NetworkID", ""), ("EndpointID", ""),
    ("Gateway", ""), ("IPAddress", ""), ("IPPrefixLen", 0), ("IPv6Gateway", ""), ("GlobalIPv6Address", ""),
    ("GlobalIPv6PrefixLen", 0), ("MacAddress", ""), ("DriverOpts", None),
)
NETWORK_SETTINGS_FIELDS: Fields = (
    ("Bridge", ""), ("SandboxID", ""), ("HairpinMode", False), ("LinkLocalIPv6Address", ""),
    ("LinkLocalIPv6PrefixLen", 0), ("Ports", {}), ("SandboxKey", ""), ("SecondaryIPAddresses", None),
    ("SecondaryIPv6Addresses", None), ("EndpointID", ""), ("Gateway", ""), ("GlobalIPv6Address", ""),
    ("GlobalIPv6PrefixLen", 0), ("IPAddress", ""), ("IPPrefixLen", 0), ("IPv6Gateway", ""), ("MacAddress", ""),
    ("Networks", {}),
)
CONTAINER_FIELDS: Fields = (
    ("Id", ""), ("Created", ""), ("Path", ""), ("Args", []), ("State", None), ("Image", ""),
    ("ResolvConfPath", ""), ("HostnamePath", ""), ("HostsPath", ""), ("LogPath", ""), ("Node", OMIT),
    ("Name", ""), ("RestartCount", 0), ("Driver", "overlay2"), ("Platform", "linux"), ("MountLabel", ""),
    ("ProcessLabel", ""), ("AppArmorProfile", ""), ("ExecIDs", None), ("HostConfig", None),
    ("GraphDriver", None), ("SizeRw", OMIT), ("SizeRootFs", OMIT), ("Mounts", []), ("Config", None),
    ("NetworkSettings", None),
)


class ContainerFacts(NamedTuple):
    """What a container's document needs beyond its record; the engine gathers it."""

    image_config: Mapping[str, Any] | None = None     # the image's config (None: the image is gone)
    network: Mapping[str, Any] | None = None          # the live attachment's settings (None: not attached)
    network_ids: Mapping[str, str] = {}               # network name -> id, for predefined ones too
    graph_driver: Mapping[str, str] = {}              # overlay dirs: LowerDir, MergedDir, UpperDir, WorkDir
    etc_files: bool = False                           # hosts, hostname, resolv.conf written (it has started)
    env_file_keys: frozenset[str] = frozenset()       # names set by its --env-file files
    masked_paths: Sequence[str] | None = None
    readonly_paths: Sequence[str] | None = None
    size: tuple[int, int] | None = None               # (SizeRw, SizeRootFs) for inspect --size


# --- the generic part: one of Docker's structs from derived values, the record, zeros ---------

def _fits(value: Any, zero: Any) -> bool:
    """Whether a record's value has the JSON type Docker gives the field (so it may pass through)."""
    if zero is None or zero is OMIT:
        return True
    if value is None:
        return isinstance(zero, (list, dict))
    if isinstance(zero, bool) or isinstance(value, bool):
        return isinstance(zero, bool) and isinstance(value, bool)
    return isinstance(value, type(zero))


def struct(fields: Fields, record: Mapping[str, Any] | None = None, derived: Mapping[str, Any] | None = None,
           extra: bool = True) -> Doc:
    """Docker's struct: each field derived, else the record's (when its type fits), else zero.

    ``extra``: the record's other Docker-named keys follow (a field skiff writes that this
    table does not know yet still shows); skiff's private keys never do.
    """
    record = record or {}
    derived = derived or {}
    doc: Doc = {}
    for key, zero in fields:
        if key in derived:
            value = derived[key]
        elif key in record and _fits(record[key], zero):
            value = record[key]
        else:
            value = zero
        if isinstance(value, Shown):
            value = value.value
        elif zero is OMIT and is_empty(value):
            continue
        doc[key] = [*zero] if value is zero and isinstance(zero, list) else \
            dict(zero) if value is zero and isinstance(zero, dict) else value
    if extra:
        known = {key for key, _ in fields}
        doc.update((k, v) for k, v in record.items()
                   if k not in known and k not in PRIVATE_KEYS and not k.startswith("Skiff") and k[:1].isupper())
    return doc


# --- the container -------------------------------------------------------------------------

def container_document(record: Mapping[str, Any], facts: ContainerFacts = ContainerFacts()) -> Doc:
    """``docker inspect CONTAINER`` for a skiff container record."""
    options = record.get("SkiffOptions") or {}
    cid = str(record.get("Id", ""))
    host_config = record.get("HostConfig") or {}
    directory = str(record.get("LogPath", "")).rpartition("/")[0]
    started = facts.etc_files and directory
    derived: Doc = {
        "State": state_document(record.get("State") or {}),
        "Name": "/" + str(record.get("Name", "")).lstrip("/"),
        "ResolvConfPath": f"{directory}/resolv.conf" if started else "",
        "HostnamePath": f"{directory}/hostname" if started else "",
        "HostsPath": f"{directory}/hosts" if started else "",
        "LogPath": str(record.get("LogPath", "")) if started else "",
        "HostConfig": {**host_config_document(host_config, options, facts), **_links(record, host_config)},
        "GraphDriver": {"Data": dict(facts.graph_driver) or None, "Name": "overlay2"},
        "Mounts": mount_points(record.get("Mounts") or [], host_config.get("Tmpfs")),
        "Config": config_document(record.get("Config") or {}, options, facts, host_config),
        "NetworkSettings": network_settings(cid, str(record.get("Name", "")).lstrip("/"),
                                            host_config.get("NetworkMode") or "bridge",
                                            record.get("NetworkSettings") or {}, facts, options.get("ip")),
    }
    if facts.size is not None:
        derived["SizeRw"], derived["SizeRootFs"] = Shown(facts.size[0]), Shown(facts.size[1])
    return struct(CONTAINER_FIELDS, record, derived)


def state_document(state: Mapping[str, Any]) -> Doc:
    from skiff.engine.state import Status, shown

    status = state.get("Status")
    derived = {"Status": shown(status)} if status == Status.STARTING else {}
    return struct(STATE_FIELDS, state, derived)


def config_document(config: Mapping[str, Any], options: Mapping[str, Any], facts: ContainerFacts,
                    host_config: Mapping[str, Any]) -> Doc:
    image = facts.image_config
    detached = bool(options.get("detach"))
    entrypoint = config.get("Entrypoint")
    derived: Doc = {
        # --entrypoint '' clears it: Docker stores no entrypoint at all.
        "Entrypoint": None if entrypoint in ([""], []) else entrypoint,
        "AttachStdout": not detached, "AttachStderr": not detached,
        "Env": docker_env(config.get("Env"), options, image, facts.env_file_keys),
        "WorkingDir": _working_dir(config, options, image),
        "ExposedPorts": exposed_ports(config.get("ExposedPorts"), options, host_config),
        "Volumes": _config_volumes(config.get("Volumes"), options),
        "StopSignal": _stop_signal(config, options, image),
        "Healthcheck": healthcheck_document(config.get("Healthcheck")),
    }
    if "StdinOnce" not in config:
        derived["StdinOnce"] = bool(config.get("AttachStdin"))  # docker run -i: closed when the client's ends
    return struct(CONFIG_FIELDS, config, derived)


def docker_env(env: Sequence[str] | None, options: Mapping[str, Any], image: Mapping[str, Any] | None,
               env_file_keys: Iterable[str]) -> list[str] | None:
    """The image's variables and the user's (-e, --env-file): Docker's Config.Env.

    skiff's record holds the process environment, to which PATH, HOSTNAME, HOME (and TERM
    with -t) are added when nobody set them; Docker adds those in the runtime, not the config.
    """
    if env is None:
        return None
    if image is None:  # the image is gone: what it set can no longer be told apart
        return list(env) or None
    from_image = {item.partition("=")[0] for item in image.get("Env") or []}
    from_user = {item.partition("=")[0] for item in options.get("env") or []} | set(env_file_keys)
    # Docker's merge: the user's variables first, then the image's they do not name
    shown = [item for item in env if item.partition("=")[0] in from_user]
    shown += [item for item in env if item.partition("=")[0] in from_image - from_user]
    return shown or None


def _working_dir(config: Mapping[str, Any], options: Mapping[str, Any], image: Mapping[str, Any] | None) -> str:
    if image is None:
        return str(config.get("WorkingDir") or "")
    return str(options.get("workdir") or image.get("WorkingDir") or "")


def _stop_signal(config: Mapping[str, Any], options: Mapping[str, Any], image: Mapping[str, Any] | None) -> Any:
    """Shown only when the user or the image set one (skiff's record always names the default)."""
    if options.get("stop_signal") or (image or {}).get("StopSignal"):
        return config.get("StopSignal")
    return config.get("StopSignal") if image is None and config.get("StopSignal") != "SIGTERM" else OMIT


def exposed_ports(exposed: Mapping[str, Any] | None, options: Mapping[str, Any],
                  host_config: Mapping[str, Any]) -> Doc | None:
    """The image's exposed ports, --expose's and -p's: Docker exposes every published port."""
    ports: Doc = dict(exposed or {})
    for spec in options.get("publish") or host_config.get("PortBindings") or []:
        if isinstance(spec, str):
            ports.update((key, {}) for key in port_bindings([spec]))
    return ports or None


def _config_volumes(volumes: Mapping[str, Any] | None, options: Mapping[str, Any]) -> Doc | None:
    """The image's volumes and ``-v /path`` (anonymous) ones; named volumes and binds are Binds."""
    found: Doc = dict(volumes or {})
    found.update((spec, {}) for spec in options.get("volumes") or [] if ":" not in spec)
    return found or None


def host_config_document(host_config: Mapping[str, Any], options: Mapping[str, Any],
                         facts: ContainerFacts) -> Doc:
    """HostConfig, flat as Docker's: resources from the OCI object, flags' strings as objects."""
    resources = host_config.get("Resources") or {}
    binds = host_config.get("Binds")
    log_config = dict(host_config.get("LogConfig") or {"Type": "json-file"})
    log_opts = options.get("log_opts")
    log_config["Config"] = dict(o.partition("=")[::2] for o in log_opts) if log_opts else \
        dict(log_config.get("Config") or {})
    # A resource the OCI object does not set may still be in the record under Docker's name
    # (a flag that writes HostConfig.OomKillDisable, say): then the record's value shows.
    limits = {key: value for key, value in resource_fields(resources, options.get("resources") or {}).items()
              if not (is_empty(value) and key in host_config)}
    derived: Doc = {
        **limits,
        "Binds": list(binds) if binds else None,
        "RestartPolicy": _restart_policy(host_config.get("RestartPolicy")),
        "LogConfig": {"Type": log_config.get("Type", "json-file"), "Config": log_config["Config"]},
        "PortBindings": _map_or(host_config.get("PortBindings"), port_bindings),
        "Mounts": [mount_object(m) if isinstance(m, str) else m for m in host_config.get("Mounts") or []],
        "Tmpfs": _map_or(host_config.get("Tmpfs"), tmpfs_map),
        "Ulimits": _ulimits(host_config.get("Ulimits")),
        "VolumesFrom": list(host_config.get("VolumesFrom") or []) or None,
        "ExtraHosts": list(host_config.get("ExtraHosts") or []) or None,
        "SecurityOpt": list(host_config.get("SecurityOpt") or []) or None,
        "Init": True if host_config.get("Init") else OMIT,
        **_device_fields(host_config),
    }
    defaults = {"CgroupnsMode": "private", "IpcMode": "private", "ShmSize": DEFAULT_SHM_SIZE, "Runtime": "runc",
                "MaskedPaths": list(facts.masked_paths) if facts.masked_paths is not None else None,
                "ReadonlyPaths": list(facts.readonly_paths) if facts.readonly_paths is not None else None}
    for key, value in defaults.items():  # skiff's behaviour, unless the record says otherwise
        if key not in host_config:
            derived[key] = value
    return struct(HOST_CONFIG_FIELDS, host_config, derived)


# Docker's DeviceMapping and DeviceRequest structs, fields in Go's order (a record's JSON sorts them).
DEVICE_MAPPING_KEYS = ("PathOnHost", "PathInContainer", "CgroupPermissions")
DEVICE_REQUEST_KEYS = ("Driver", "Count", "DeviceIDs", "Capabilities", "Options")


def _device_fields(host_config: Mapping[str, Any]) -> Doc:
    """HostConfig.Devices and DeviceRequests in Docker's field order, where the record has them."""
    fields: Doc = {}
    for name, keys in (("Devices", DEVICE_MAPPING_KEYS), ("DeviceRequests", DEVICE_REQUEST_KEYS)):
        items = host_config.get(name)
        if isinstance(items, list) and items:
            fields[name] = [{key: item.get(key) for key in keys} if isinstance(item, dict) else item
                            for item in items]
    return fields


def _links(record: Mapping[str, Any], host_config: Mapping[str, Any]) -> Doc:
    """``--link NAME:ALIAS`` as Docker shows it: ``/NAME:/SELF/ALIAS``."""
    links = host_config.get("Links")
    if not links:
        return {}
    self_name = str(record.get("Name", "")).lstrip("/")
    return {"Links": [f"/{name}:/{self_name}/{alias}" for name, _, alias in (link.partition(":") for link in links)]}


def _restart_policy(policy: Mapping[str, Any] | None) -> Doc:
    policy = policy or {}
    return {"Name": str(policy.get("Name") or "no"), "MaximumRetryCount": int(policy.get("MaximumRetryCount") or 0)}


def _map_or(value: Any, convert: Any) -> Any:
    """A record's list of flag strings as Docker's map; a map (a newer record) as it is."""
    if isinstance(value, dict):
        return value
    return convert(list(value or []))


def resource_fields(resources: Mapping[str, Any], flags: Mapping[str, Any]) -> Doc:
    """Docker's resource fields from an OCI ``linux.resources`` object.

    ``--cpus`` and ``--cpu-period``/``--cpu-quota`` both end as a CFS quota and period; the
    run's flags (``SkiffOptions``) tell which one the user gave, as Docker shows only that.
    """
    memory = resources.get("memory") or {}
    cpu = resources.get("cpu") or {}
    pids = (resources.get("pids") or {}).get("limit")
    period, quota = int(cpu.get("period") or 0), int(cpu.get("quota") or 0)
    nano_cpus = 0
    if flags.get("cpus") and period and quota > 0:
        nano_cpus, period, quota = quota * 1_000_000_000 // period, 0, 0
    swappiness = memory.get("swappiness")
    return {
        "Memory": int(memory.get("limit") or 0),
        "MemorySwap": int(memory.get("swap") or 0),
        "MemoryReservation": int(memory.get("reservation") or 0),
        "MemorySwappiness": swappiness if isinstance(swappiness, int) and swappiness >= 0 else None,
        "KernelMemory": int(memory.get("kernel") or 0),
        "KernelMemoryTCP": int(memory.get("kernelTCP") or 0),
        "OomKillDisable": bool(memory.get("disableOOMKiller")),
        "NanoCpus": nano_cpus, "CpuPeriod": period, "CpuQuota": quota,
        "CpuShares": int(cpu.get("shares") or 0),
        "CpuRealtimePeriod": int(cpu.get("realtimePeriod") or 0),
        "CpuRealtimeRuntime": int(cpu.get("realtimeRuntime") or 0),
        "CpusetCpus": str(cpu.get("cpus") or ""), "CpusetMems": str(cpu.get("mems") or ""),
        "PidsLimit": int(pids) if pids else None,
        "BlkioWeight": int((resources.get("blockIO") or {}).get("weight") or 0),
    }


def port_bindings(specs: Iterable[str]) -> Doc:
    """``-p`` strings as Docker's PortBindings: ``{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}``.

    The record's strings were checked at run; this only reshapes them (a range published on
    a range gives one entry per port, as Docker's nat.ParsePortSpecs).
    """
    bindings: Doc = {}
    for spec in specs:
        body, _, proto = spec.partition("/")
        parts = body.rsplit(":", 2)
        container = parts[-1]
        host = parts[-2] if len(parts) > 1 else ""
        host_ip = parts[0] if len(parts) > 2 else ""
        ports = _port_range(container)
        host_ports = _port_range(host) if host else []
        for i, port in enumerate(ports):
            host_port = str(host_ports[i]) if len(host_ports) == len(ports) else host
            bindings.setdefault(f"{port}/{proto.lower() or 'tcp'}", []).append(
                {"HostIp": host_ip, "HostPort": host_port})
    return bindings


def _port_range(text: str) -> list[int]:
    start, _, end = text.partition("-")
    try:
        return list(range(int(start), int(end or start) + 1))
    except ValueError:
        return []


def tmpfs_map(specs: Iterable[str]) -> Doc | Any:
    """``--tmpfs /run:size=1m`` strings as Docker's map ``{"/run": "size=1m"}``; none: omitted."""
    found = {target: opts for target, _, opts in (spec.partition(":") for spec in specs)}
    return found or OMIT


def _ulimits(value: Any) -> list[Doc] | None:
    """``--ulimit nofile=1024:2048`` strings as Docker's objects (Name, Hard, Soft)."""
    found = []
    for item in value or []:
        if isinstance(item, dict):
            found.append(item)
            continue
        name, _, limits = str(item).partition("=")
        soft, _, hard = limits.partition(":")
        try:
            found.append({"Name": name, "Hard": int(hard or soft), "Soft": int(soft)})
        except ValueError:
            continue
    return found or None


def mount_object(spec: str) -> Doc:
    """A ``--mount`` string as Docker's mount.Mount (Type, Source, Target, ReadOnly, options).

    The string was checked at run; here it is only reshaped, with Docker's omitempty rules.
    """
    values: dict[str, str] = {}
    labels: dict[str, str] = {}
    driver_options: dict[str, str] = {}
    for item in _csv(spec):
        key, has_value, value = item.partition("=")
        key = key.lower()
        if key == "volume-label":
            labels.setdefault(*value.partition("=")[::2])
        elif key == "volume-opt":
            driver_options.setdefault(*value.partition("=")[::2])
        else:
            values[key] = value if has_value else "true"
    kind = values.get("type", "volume").lower()
    mount: Doc = {"Type": kind}
    source = values.get("source") or values.get("src")
    target = values.get("target") or values.get("dst") or values.get("destination")
    if source:
        mount["Source"] = source
    if target:
        mount["Target"] = target
    if _true(values.get("readonly") or values.get("ro")):
        mount["ReadOnly"] = True
    if values.get("bind-propagation"):
        mount["BindOptions"] = {"Propagation": values["bind-propagation"].lower()}
    volume_options: Doc = {}
    if _true(values.get("volume-nocopy")):
        volume_options["NoCopy"] = True
    if labels:
        volume_options["Labels"] = labels
    if values.get("volume-driver") or driver_options:
        volume_options["DriverConfig"] = {k: v for k, v in (("Name", values.get("volume-driver")),
                                                             ("Options", driver_options)) if v}
    if volume_options:
        mount["VolumeOptions"] = volume_options
    tmpfs = {**_tmpfs_size(values.get("tmpfs-size")), **_tmpfs_mode(values.get("tmpfs-mode"))}
    if tmpfs:
        mount["TmpfsOptions"] = tmpfs
    return mount


def _csv(text: str) -> list[str]:
    import csv

    try:
        return next(csv.reader([text]))
    except (csv.Error, StopIteration):
        return text.split(",")


def _true(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


def _tmpfs_size(value: str | None) -> Doc:
    if not value:
        return {}
    from skiff.errors import VolumeError
    from skiff.volume.spec import parse_size

    try:
        return {"SizeBytes": parse_size(value)}
    except VolumeError:
        return {}


def _tmpfs_mode(value: str | None) -> Doc:
    try:
        return {"Mode": int(value, 8)} if value else {}
    except ValueError:
        return {}


def mount_points(mounts: Iterable[Mapping[str, Any]], tmpfs: Any) -> list[Doc]:
    """The ``Mounts`` list: volumes, binds and ``--mount type=tmpfs``; ``--tmpfs`` ones are
    HostConfig.Tmpfs only, as in Docker."""
    flag_tmpfs = set(tmpfs) if isinstance(tmpfs, dict) else {str(t).partition(":")[0] for t in tmpfs or []}
    return [mount_point(m) for m in mounts
            if not (m.get("Type") == "tmpfs" and m.get("Destination") in flag_tmpfs)]


def mount_point(mount: Mapping[str, Any]) -> Doc:
    """A ``Mounts`` entry: skiff records Docker's MountPoint already; Name and Driver only for volumes."""
    doc: Doc = {"Type": mount.get("Type", "")}
    if mount.get("Name"):
        doc["Name"] = mount["Name"]
    doc.update({"Source": mount.get("Source", ""), "Destination": mount.get("Destination", "")})
    if mount.get("Driver"):
        doc["Driver"] = mount["Driver"]
    mode = mount.get("Mode", "")
    if doc["Type"] == "volume" and not mode:
        mode = "z"  # Docker 20.10's default mode of a volume (a relabel request where SELinux is on)
    doc.update({"Mode": mode, "RW": bool(mount.get("RW", True)),
                "Propagation": mount.get("Propagation", "")})
    return doc


# --- NetworkSettings -------------------------------------------------------------------------

def network_name(mode: str) -> str | None:
    """The network a NetworkMode puts a container on (None: another container's namespace)."""
    if mode.startswith("container:"):
        return None
    return "bridge" if mode in ("", "default") else mode


def network_settings(cid: str, name: str, mode: str, recorded: Mapping[str, Any], facts: ContainerFacts,
                     requested_ip: str | None = None) -> Doc:
    """Docker's NetworkSettings: every network the container is on; top-level fields from ``bridge``.

    The live attachment (``facts.network``) is the truth while the container holds one (it
    follows ``network connect``/``disconnect``). A container that holds none shows the
    networks it was last on with their ids only (a stopped container has no address, as in
    Docker); one never started, the network it asked for.
    """
    live = facts.network
    networks = networks_document(cid, name, mode, recorded, facts, requested_ip)
    top = networks.get("bridge", {}) if live else {}
    sandbox = str(live.get("SandboxKey") or "") if live else ""
    derived: Doc = {
        "SandboxKey": sandbox, "SandboxID": cid if sandbox else "",
        "Ports": dict(live.get("Ports") or {}) if live else {},
        "Networks": networks,
        **{key: top.get(key, zero) for key, zero in (("EndpointID", ""), ("Gateway", ""), ("IPAddress", ""),
                                                    ("IPPrefixLen", 0), ("MacAddress", ""))},
    }
    return struct(NETWORK_SETTINGS_FIELDS, {}, derived)


def networks_document(cid: str, name: str, mode: str, recorded: Mapping[str, Any], facts: ContainerFacts,
                      requested_ip: str | None = None) -> Doc:
    """``NetworkSettings.Networks`` (also the list entry's): each network's EndpointSettings, by name."""
    live = facts.network
    if live is not None:
        entries = list((live.get("Networks") or {}).items())
    else:
        # With what `network connect` gave a container that was not running (Docker keeps them).
        entries = [(net, {key: entry[key] for key in ("NetworkID", "Aliases", "IPAMConfig") if key in entry}
                    if isinstance(entry, dict) else {})
                   for net, entry in (recorded.get("Networks") or {}).items()]
    wanted = network_name(mode)
    if wanted is not None and not entries and "Networks" not in recorded:  # {}: disconnected from all
        entries = [(wanted, {})]
    networks: Doc = {}
    for position, (net, entry) in sorted(enumerate(entries), key=lambda item: item[1][0]):  # a Go map: sorted
        ip = requested_ip if position == 0 else None
        networks[net] = endpoint_document(net, entry, facts.network_ids.get(net, ""), cid, name,
                                          connected=position > 0, requested_ip=ip)
    return networks


def endpoint_document(network: str, entry: Mapping[str, Any], network_id: str, cid: str, name: str,
                      connected: bool = False, requested_ip: str | None = None) -> Doc:
    """One network's EndpointSettings as Docker 20.10 shows it."""
    derived: Doc = {"NetworkID": entry.get("NetworkID") or network_id}
    if network not in ("bridge", "none", "host"):
        if entry.get("IPAddress"):
            # Docker 20.10 lists the short id and the --network-alias values (not the name, which
            # resolves anyway); later Docker lists the name too.
            derived["Aliases"] = [cid[:12], *[a for a in entry.get("Aliases") or [] if a not in (cid[:12], name)]]
        if connected:  # `network connect` sends empty settings objects, which Docker keeps
            derived.update(IPAMConfig={}, DriverOpts={})
    else:
        derived["Aliases"] = None  # Docker has no aliases on the predefined networks
    if requested_ip:
        derived["IPAMConfig"] = {"IPv4Address": requested_ip}
    return struct(ENDPOINT_FIELDS, entry, derived, extra=False)
