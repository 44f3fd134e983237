"""``POST /containers/create``: Docker's Config and HostConfig as the ``RunOptions`` a ``run`` takes.

The engine checks every value as it checks the CLI's flags, so this module only moves fields
into the flags' spelling (``PortBindings`` -> ``-p`` strings, ``Memory`` -> ``--memory`` bytes ...).
A field skiff's API does not translate yet is refused when it is set (501), never dropped:
a container must not silently differ from what the client asked for.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Mapping

from skiff.api.errors import BadRequest, NotImplementedYet
from skiff.api.fields import boolean, integer_or_none, json_object, string, strings, strslice
from skiff.engine.options import RunOptions

# Set values of these are refused until the API translates them.
NOT_YET = {
    "HostConfig": ("StorageOpt", "VolumeDriver", "BlkioWeightDevice", "BlkioDeviceReadBps", "BlkioDeviceWriteBps",
                   "BlkioDeviceReadIOps", "BlkioDeviceWriteIOps", "CpuRealtimePeriod", "CpuRealtimeRuntime",
                   "MaskedPaths", "ReadonlyPaths"),
    "Config": ("OnBuild", "Shell"),
}


def run_options(body: Mapping[str, Any], name: str | None) -> RunOptions:
    """The create request's body (Docker's ``container.Config`` with ``HostConfig`` inside it)."""
    host = json_object(body, "HostConfig")
    _refuse_untranslated(body, host)
    network = _network_mode(string(host, "NetworkMode"))
    ip, aliases, endpoint_links = _endpoint(body, network)
    entrypoint, command = _command(body)
    mounts = _mounts(host)
    restart = json_object(host, "RestartPolicy")
    log_config = json_object(host, "LogConfig")
    if (log_config.get("Type") or "json-file") != "json-file":
        raise BadRequest(f"logging driver {log_config['Type']!r} is not supported: use json-file")
    return RunOptions(
        image=string(body, "Image") or _missing("Image"),
        command=command,
        pull="never",  # as Docker's daemon: create never pulls; its client pulls first
        name=name or None,
        remove=boolean(host, "AutoRemove"),
        interactive=boolean(body, "OpenStdin"),
        # Config.AttachStdin (and so StdinOnce) as the client sent it: `docker run -d -i` sends false,
        # and its container's stdin stays open when an attach's input ends, as in Docker
        detach=not boolean(body, "AttachStdin"),
        tty=boolean(body, "Tty"),
        init=boolean(host, "Init"),
        restart=_restart(restart),
        log_opts=[f"{k}={v}" for k, v in _str_map(log_config, "Config").items()],
        stop_timeout=integer_or_none(body, "StopTimeout"),
        stop_signal=string(body, "StopSignal") or None,
        env=strings(body, "Env"),
        workdir=string(body, "WorkingDir") or None,
        user=string(body, "User") or None,
        hostname=string(body, "Hostname") or None,
        domainname=string(body, "Domainname") or None,
        entrypoint=entrypoint,
        network=network,
        ip=ip,
        network_aliases=aliases,
        read_only=boolean(host, "ReadonlyRootfs"),
        labels=[f"{k}={v}" for k, v in _str_map(body, "Labels").items()],
        volumes=_volumes(strings(host, "Binds"), json_object(body, "Volumes"), mounts),
        mounts=mounts,
        tmpfs=[f"{path}:{opts}" if opts else path for path, opts in _str_map(host, "Tmpfs").items()],
        volumes_from=strings(host, "VolumesFrom"),
        resources=_resources(host),
        publish=_publish(host),
        publish_all=boolean(host, "PublishAllPorts"),
        dns=strings(host, "Dns"),
        dns_search=strings(host, "DnsSearch"),
        dns_options=strings(host, "DnsOptions"),
        add_hosts=strings(host, "ExtraHosts"),
        expose=list(json_object(body, "ExposedPorts")),
        sysctls=[f"{k}={v}" for k, v in _str_map(host, "Sysctls").items()],
        group_add=strings(host, "GroupAdd"),
        shm_size=str(host["ShmSize"]) if integer_or_none(host, "ShmSize") else None,
        oom_score_adj=str(host["OomScoreAdj"]) if integer_or_none(host, "OomScoreAdj") else None,
        mac_address=string(body, "MacAddress") or None,
        cap_add=_capabilities(strings(host, "CapAdd")),
        cap_drop=_capabilities(strings(host, "CapDrop")),
        privileged=boolean(host, "Privileged"),
        userns=string(host, "UsernsMode"),
        pid=string(host, "PidMode"),
        ipc=string(host, "IpcMode"),
        uts=string(host, "UTSMode"),
        cgroupns=string(host, "CgroupnsMode"),
        security_opts=strings(host, "SecurityOpt"),  # the client has read a seccomp profile file already
        ulimits=_ulimits(host),
        cgroup_parent=_cgroup_parent(string(host, "CgroupParent")),
        links=_links([*strings(host, "Links"), *endpoint_links]),
        **_healthcheck(json_object(body, "Healthcheck")),
        **_devices(host),
    )


def _devices(host: Mapping[str, Any]) -> dict[str, Any]:
    """``Devices`` as ``--device`` strings, ``DeviceCgroupRules``, and ``DeviceRequests`` as they are
    (``--gpus``' requests, Docker 25's ``cdi`` ones); the engine checks them as the flags'."""
    devices, requests = host.get("Devices") or [], host.get("DeviceRequests") or []
    if not isinstance(devices, list) or not all(isinstance(d, dict) for d in devices):
        raise BadRequest("HostConfig.Devices must be a list of objects")
    if not isinstance(requests, list) or not all(isinstance(r, dict) for r in requests):
        raise BadRequest("HostConfig.DeviceRequests must be a list of objects")
    flags = []
    for device in devices:
        source = string(device, "PathOnHost")
        target = string(device, "PathInContainer") or source
        flags.append(f"{source}:{target}:{string(device, 'CgroupPermissions') or 'rwm'}")
    return {"devices": flags, "device_cgroup_rules": strings(host, "DeviceCgroupRules"),
            "device_requests": [{"Driver": string(r, "Driver"), "Count": integer_or_none(r, "Count") or 0,
                                 "DeviceIDs": strings(r, "DeviceIDs") or None,
                                 "Capabilities": r.get("Capabilities"), "Options": json_object(r, "Options")}
                                for r in requests]}


def _volumes(binds: list[str], anonymous: Mapping[str, Any], mounts: list[str]) -> list[str]:
    """``Binds`` and ``Config.Volumes`` (anonymous ones, as ``-v /data``) as ``-v`` strings.

    A ``Config.Volumes`` path that a bind or a ``Mounts`` entry also mounts is theirs, as dockerd
    has it: docker-compose and docker-py send both for every volume (``Volumes: {"/www": {}}``
    beside ``Binds: ["project_site:/www:rw"]``).
    """
    from skiff.volume.spec import parse_mount, parse_volume

    bound = {parse_volume(bind).target for bind in binds} | {parse_mount(mount).target for mount in mounts}
    return [*binds, *(path for path in anonymous if path.rstrip("/") not in bound and path not in bound)]


def _mounts(host: Mapping[str, Any]) -> list[str]:
    """``HostConfig.Mounts`` as ``--mount`` strings: one CSV record each, as the flag reads them
    (a value holding a comma or a quote is quoted), so the engine checks them as it checks the flag's."""
    import csv
    import io

    value = host.get("Mounts")
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
        raise BadRequest("HostConfig.Mounts must be a list of objects")
    flags = []
    for mount in value:
        record = io.StringIO()
        csv.writer(record, lineterminator="").writerow(_mount_fields(mount))
        flags.append(record.getvalue())
    return flags


def _mount_fields(mount: Mapping[str, Any]) -> list[str]:
    """One ``Mounts`` entry (Docker's ``mount.Mount``) as ``--mount``'s fields."""
    kind = string(mount, "Type")
    if kind not in ("bind", "volume", "tmpfs"):
        raise BadRequest(f'invalid mount config for type "{kind}": mount type unknown')
    fields = [f"type={kind}", f"target={string(mount, 'Target')}"]
    if string(mount, "Source"):
        fields.append(f"source={mount['Source']}")
    if boolean(mount, "ReadOnly"):
        fields.append("readonly")
    bind, volume, tmpfs = (json_object(mount, key) for key in ("BindOptions", "VolumeOptions", "TmpfsOptions"))
    if boolean(bind, "NonRecursive"):
        raise NotImplementedYet("Mounts.BindOptions.NonRecursive is not supported by skiff's Engine API yet")
    if string(bind, "Propagation"):
        fields.append(f"bind-propagation={bind['Propagation']}")
    if boolean(volume, "NoCopy"):
        fields.append("volume-nocopy")
    fields += [f"volume-label={k}={v}" for k, v in _str_map(volume, "Labels").items()]
    driver = json_object(volume, "DriverConfig")
    if string(driver, "Name"):
        fields.append(f"volume-driver={driver['Name']}")
    fields += [f"volume-opt={k}={v}" for k, v in _str_map(driver, "Options").items()]
    if integer_or_none(tmpfs, "SizeBytes"):
        fields.append(f"tmpfs-size={tmpfs['SizeBytes']}")
    if integer_or_none(tmpfs, "Mode"):
        fields.append(f"tmpfs-mode={tmpfs['Mode']:o}")  # a file mode as a number: the flag's is octal
    return fields


def _healthcheck(config: Mapping[str, Any]) -> dict[str, Any]:
    """``Config.Healthcheck`` (Docker's ``HealthConfig``, durations in nanoseconds) as the health
    options; the engine merges it with the image's field by field, as dockerd does."""
    durations = {field: integer_or_none(config, key) or 0 for field, key in (
        ("health_interval", "Interval"), ("health_timeout", "Timeout"), ("health_start_period", "StartPeriod"))}
    return {"health_test": strings(config, "Test"), "health_retries": integer_or_none(config, "Retries") or 0,
            **durations}


def _refuse_untranslated(body: Mapping[str, Any], host: Mapping[str, Any]) -> None:
    for section, document in (("Config", body), ("HostConfig", host)):
        for key in NOT_YET[section]:
            if document.get(key):
                raise NotImplementedYet(f"{section}.{key} is not supported by skiff's Engine API yet")


def _endpoint(body: Mapping[str, Any], network: str) -> tuple[str | None, list[str], list[str]]:
    """``NetworkingConfig.EndpointsConfig``: the address (``--ip``), aliases and links of the one
    network the container starts on; several networks are refused with Docker 20.10's message."""
    from skiff.api.networking import endpoint_settings

    endpoints = json_object(json_object(body, "NetworkingConfig"), "EndpointsConfig")
    if len(endpoints) > 1:
        raise BadRequest(f"Container cannot be connected to network endpoints: {', '.join(endpoints)}")
    if not endpoints:
        return None, [], []
    name, settings = next(iter(endpoints.items()))
    where = f"NetworkingConfig.EndpointsConfig[{name!r}]"
    ip, aliases = endpoint_settings(settings, where, links_ok=True)
    if aliases and (network in ("bridge", "host", "none") or network.startswith("container:")):
        raise BadRequest("network-scoped alias is supported only for containers in user defined networks")
    return ip, aliases, strings(settings or {}, "Links")


def _command(body: Mapping[str, Any]) -> tuple[str | None, list[str]]:
    """``Entrypoint`` and ``Cmd`` as ``--entrypoint`` and the command words.

    ``--entrypoint`` takes one word: the rest of a longer Entrypoint leads the command, which runs
    the same process. ``[]`` or ``[""]`` resets the image's (``--entrypoint ''``); null keeps it.
    """
    command = strslice(body, "Cmd")
    if body.get("Entrypoint") is None:
        return None, command
    entrypoint = strslice(body, "Entrypoint")
    if not entrypoint or entrypoint == [""]:
        return "", command
    return entrypoint[0], [*entrypoint[1:], *command]


def _restart(policy: Mapping[str, Any]) -> str:
    name = policy.get("Name") or "no"
    if not isinstance(name, str):
        raise BadRequest("HostConfig.RestartPolicy.Name must be a string")
    retries = policy.get("MaximumRetryCount") or 0
    if not isinstance(retries, int):
        raise BadRequest("HostConfig.RestartPolicy.MaximumRetryCount must be an integer")
    return f"{name}:{retries}" if name == "on-failure" and retries else name


def _network_mode(mode: str) -> str:
    """Docker's clients send ``default`` (or nothing): the daemon's default network, ``bridge``."""
    return "bridge" if mode in ("", "default") else mode


def _publish(host: Mapping[str, Any]) -> list[str]:
    """``{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}`` -> ``-p 8080:80/tcp``."""
    result = []
    for port, bindings in json_object(host, "PortBindings").items():
        if bindings is None:
            bindings = []
        if not isinstance(bindings, list):
            raise BadRequest(f"HostConfig.PortBindings[{port!r}] must be a list")
        for binding in bindings or [{}]:
            if not isinstance(binding, dict):
                raise BadRequest(f"HostConfig.PortBindings[{port!r}] must hold objects")
            ip, host_port = binding.get("HostIp") or "", binding.get("HostPort") or ""
            if ":" in ip:
                ip = f"[{ip}]"
            result.append(f"{ip}:{host_port}:{port}" if ip else f"{host_port}:{port}" if host_port else port)
    return result


def _resources(host: Mapping[str, Any]) -> dict[str, str | bool | None]:
    """Docker's resource fields as the flags' values (numbers in bytes, CPUs as a decimal)."""
    resources: dict[str, str | bool | None] = {}
    for key, flag in (("Memory", "memory"), ("MemorySwap", "memory_swap"),
                      ("MemoryReservation", "memory_reservation"), ("CpuShares", "cpu_shares"),
                      ("CpuPeriod", "cpu_period"), ("CpuQuota", "cpu_quota"), ("BlkioWeight", "blkio_weight")):
        value = integer_or_none(host, key)
        if value:
            resources[flag] = str(value)
    nano = integer_or_none(host, "NanoCpus")
    if nano:
        resources["cpus"] = str((Decimal(nano) / Decimal(10 ** 9)).normalize())
    pids = integer_or_none(host, "PidsLimit")
    if pids:
        resources["pids_limit"] = str(pids)
    swappiness = integer_or_none(host, "MemorySwappiness")
    if swappiness is not None and swappiness >= 0:
        resources["memory_swappiness"] = str(swappiness)
    for key, flag in (("CpusetCpus", "cpuset_cpus"), ("CpusetMems", "cpuset_mems")):
        if string(host, key):
            resources[flag] = string(host, key)
    if boolean(host, "OomKillDisable"):
        resources["oom_kill_disable"] = True
    return resources


def _ulimits(host: Mapping[str, Any]) -> list[str]:
    """``[{"Name": "nofile", "Soft": 1024, "Hard": 2048}]`` -> ``--ulimit nofile=1024:2048``."""
    value = host.get("Ulimits")
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(u, dict) for u in value):
        raise BadRequest("HostConfig.Ulimits must be a list of objects")
    flags = []
    for ulimit in value:
        soft, hard = integer_or_none(ulimit, "Soft"), integer_or_none(ulimit, "Hard")
        flags.append(f"{string(ulimit, 'Name')}={soft or 0}:{hard or 0}")
    return flags


def _cgroup_parent(parent: str) -> str | None:
    """``HostConfig.CgroupParent``: the cgroup the container's goes under, in every hierarchy (cgroupfs
    paths, as Docker's cgroupfs driver; relative ones are taken from the root, where skiff's live)."""
    if not parent:
        return None
    if ".." in parent.split("/") or "\0" in parent:
        raise BadRequest(f"invalid CgroupParent {parent!r}: it must not leave the cgroup tree")
    return parent.strip("/") or None


def _links(links: list[str]) -> list[str]:
    """``HostConfig.Links`` as ``--link NAME[:ALIAS]`` (the client's form; an inspect document's
    ``/name:/self/alias`` form is read too, as dockerd does)."""
    out: list[str] = []
    for link in links:
        name, _, alias = link.partition(":")
        name = name.lstrip("/")
        alias = alias.rsplit("/", 1)[-1] or name
        if not name:
            raise BadRequest(f"bad format for links: {link}")
        if f"{name}:{alias}" not in out:  # the docker CLI sends a user network's links twice
            out.append(f"{name}:{alias}")
    return out


def _capabilities(values: list[str]) -> list[str]:
    if not values:
        return []
    from skiff.security.capabilities import normalize

    return normalize(values)


# --- typed access: a field of the wrong JSON type is a 400, as Go's decoder refuses it ----------


def _missing(field: str) -> str:
    raise BadRequest(f"{field} is required")








def _str_map(document: Mapping[str, Any], key: str) -> dict[str, str]:
    value = json_object(document, key)
    if not all(isinstance(v, str) for v in value.values()):
        raise BadRequest(f"{key} must map strings to strings")
    return value
