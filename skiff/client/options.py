"""docker-py's keyword arguments of ``containers.run`` and ``create``, as skiff's RunOptions.

docker-py's users pass Python values where the CLI passes strings: ``environment``
as a dict, ``volumes`` as a dict of ``{source: {"bind": target, "mode": mode}}``,
``ports`` as ``{"80/tcp": None}``, ``mem_limit`` as an int. Each is turned here into
the string the matching ``docker run`` flag takes, so the engine checks and applies
them exactly as it does for the CLI (one implementation of every flag). Pure logic:
tests/unit/test_client_options.py runs without root.
"""

from __future__ import annotations

import shlex
from typing import Any, Iterable, Mapping, Sequence

from skiff.engine.options import RunOptions
from skiff.errors import InvalidArgument

# docker-py's keyword -> RunOptions field, for values that pass as they are (a str, a bool).
_SAME = {
    "name": "name",
    "hostname": "hostname",
    "domainname": "domainname",
    "working_dir": "workdir",
    "tty": "tty",
    "stdin_open": "interactive",
    "read_only": "read_only",
    "privileged": "privileged",
    "init": "init",
    "stop_signal": "stop_signal",
    "mac_address": "mac_address",
    "platform": "platform",
    "publish_all_ports": "publish_all",
    "ipc_mode": "ipc",
    "pid_mode": "pid",
    "uts_mode": "uts",
    "userns_mode": "userns",
    "cgroupns": "cgroupns",
}
# docker-py's keyword -> the RunOptions.resources key (the docker run flag of the same limit).
_RESOURCES = {
    "mem_limit": "memory",
    "memswap_limit": "memory_swap",
    "mem_reservation": "memory_reservation",
    "mem_swappiness": "memory_swappiness",
    "cpu_shares": "cpu_shares",
    "cpu_period": "cpu_period",
    "cpu_quota": "cpu_quota",
    "cpuset_cpus": "cpuset_cpus",
    "cpuset_mems": "cpuset_mems",
    "pids_limit": "pids_limit",
    "blkio_weight": "blkio_weight",
}
# Keywords whose value is a list of strings, as the repeated flag takes them.
_LISTS = {"dns": "dns", "dns_search": "dns_search", "dns_opt": "dns_options", "group_add": "group_add",
          "volumes_from": "volumes_from"}
# Keywords handled by a function below, or by the client itself (detach).
_CONVERTED = {"command", "environment", "volumes", "ports", "labels", "entrypoint", "user", "network",
              "network_mode", "remove", "auto_remove", "nano_cpus", "cap_add", "cap_drop", "security_opt",
              "restart_policy", "tmpfs", "extra_hosts", "sysctls", "shm_size", "oom_kill_disable",
              "oom_score_adj", "stop_timeout", "detach", "ulimits"}
# Devices (issue 20): --device and --device-cgroup-rule strings; docker-py's DeviceRequest (a dict of
# Docker's keys: Driver, Count, DeviceIDs, Capabilities, Options) as --gpus makes them.
_LISTS.update({"devices": "devices", "device_cgroup_rules": "device_cgroup_rules"})
_CONVERTED = _CONVERTED | {"device_requests"}
ACCEPTED = frozenset(_SAME) | frozenset(_RESOURCES) | frozenset(_LISTS) | _CONVERTED


def run_options(image: str, command: str | Sequence[str] | None = None, **kwargs: Any) -> RunOptions:
    """RunOptions for ``containers.run(image, command, **kwargs)``; a keyword skiff does not know
    is a TypeError, as an unexpected keyword of any Python function."""
    unknown = sorted(set(kwargs) - ACCEPTED)
    if unknown:
        raise TypeError(f"run() got an unexpected keyword argument {unknown[0]!r}")
    fields: dict[str, Any] = {"image": _text(image, "image"), "command": command_list(command)}
    for key, field in _SAME.items():
        if kwargs.get(key) is not None:
            fields[field] = kwargs[key]
    for key, field in _LISTS.items():
        if kwargs.get(key):
            fields[field] = [str(item) for item in kwargs[key]]
    fields["remove"] = bool(kwargs.get("remove") or kwargs.get("auto_remove"))
    fields["detach"] = bool(kwargs.get("detach"))
    fields["env"] = environment(kwargs.get("environment"))
    fields["volumes"] = volumes(kwargs.get("volumes"))
    fields["publish"] = ports(kwargs.get("ports"))
    fields["labels"] = labels(kwargs.get("labels"))
    fields["tmpfs"] = tmpfs(kwargs.get("tmpfs"))
    fields["add_hosts"] = extra_hosts(kwargs.get("extra_hosts"))
    fields["sysctls"] = [f"{key}={value}" for key, value in (kwargs.get("sysctls") or {}).items()]
    fields["ulimits"] = ulimits(kwargs.get("ulimits"))
    fields["network"] = network(kwargs.get("network"), kwargs.get("network_mode"))
    fields["restart"] = restart_policy(kwargs.get("restart_policy"))
    if kwargs.get("entrypoint") is not None:
        fields["entrypoint"] = entrypoint(kwargs["entrypoint"])
    if kwargs.get("user") is not None:
        fields["user"] = str(kwargs["user"])
    for key in ("shm_size", "oom_score_adj"):
        if kwargs.get(key) is not None:
            fields[key] = str(kwargs[key])
    if kwargs.get("stop_timeout") is not None:
        fields["stop_timeout"] = int(kwargs["stop_timeout"])
    fields["resources"] = resources(kwargs)
    fields["cap_add"] = _normalized_caps(kwargs.get("cap_add"))
    fields["cap_drop"] = _normalized_caps(kwargs.get("cap_drop"))
    if kwargs.get("security_opt"):
        from skiff.security.options import normalize

        fields["security_opts"] = normalize(list(kwargs["security_opt"]))
    if kwargs.get("device_requests"):
        fields["device_requests"] = [dict(request) for request in kwargs["device_requests"]]
    return RunOptions(**fields)


def command_list(command: str | Sequence[str] | None) -> list[str]:
    """docker-py's ``command``: a string is split as a shell would (without running one)."""
    if command is None:
        return []
    if isinstance(command, str):
        return shlex.split(command)
    return [str(word) for word in command]


def entrypoint(value: str | Sequence[str]) -> str:
    """The engine's ``--entrypoint`` string, which it splits as a shell would: a list is joined
    so that it splits back into the same words ("" clears the image's, as the flag's)."""
    if isinstance(value, str):
        return value
    return shlex.join(str(word) for word in value)


def environment(value: Mapping[str, Any] | Iterable[str] | None) -> list[str]:
    """``{"A": "1", "B": None}`` or ``["A=1", "B"]`` -> ``-e`` values (a bare name takes this
    process's value, as ``-e NAME`` does)."""
    if not value:
        return []
    if isinstance(value, Mapping):
        return [str(key) if item is None else f"{key}={item}" for key, item in value.items()]
    return [str(item) for item in value]


def volumes(value: Mapping[str, Any] | Iterable[str] | None) -> list[str]:
    """``{"/src": {"bind": "/dst", "mode": "ro"}}`` or ``["/src:/dst:ro"]`` -> ``-v`` values.

    A dict's value may also be the bare target (``{"data": "/data"}``); a name that is not a
    path is a named volume, as with ``-v``.
    """
    if not value:
        return []
    if not isinstance(value, Mapping):
        return [str(item) for item in value]
    specs = []
    for source, target in value.items():
        if isinstance(target, str):
            specs.append(f"{source}:{target}")
            continue
        if not isinstance(target, Mapping) or not target.get("bind"):
            raise InvalidArgument(f"volumes[{source!r}]: expected {{'bind': '/path', 'mode': 'rw'}}, "
                                  f"got {target!r}")
        mode = target.get("mode")
        specs.append(f"{source}:{target['bind']}" + (f":{mode}" if mode else ""))
    return specs


def ports(value: Mapping[Any, Any] | None) -> list[str]:
    """docker-py's ``ports`` -> ``-p`` values. Keys: ``"80/tcp"``, ``"53/udp"`` or ``80``.
    Values: None (a free host port), a host port, ``(host_ip, host_port)`` (port None: a free
    one), ``(host_ip,)``, or a list of any of these (one mapping each)."""
    if not value:
        return []
    specs = []
    for key, bindings in value.items():
        port, _, proto = str(key).partition("/")
        container = f"{port}/{proto or 'tcp'}"
        for binding in bindings if isinstance(bindings, list) else [bindings]:
            specs.append(_publish(container, binding))
    return specs


def _publish(container: str, binding: Any) -> str:
    if binding is None:
        return container
    if isinstance(binding, tuple):
        host_ip = str(binding[0]) if binding else ""
        host_port = binding[1] if len(binding) > 1 and binding[1] is not None else ""
        return f"{host_ip}:{host_port}:{container}"
    if isinstance(binding, (int, str)) and not isinstance(binding, bool):
        return f"{binding}:{container}"
    raise InvalidArgument(f"ports[{container!r}]: expected None, a host port, (host_ip, host_port) or a list "
                          f"of these, got {binding!r}")


def labels(value: Mapping[str, str] | Iterable[str] | None) -> list[str]:
    """``{"k": "v"}`` -> ``-l k=v``; a list of names gives each an empty value (docker-py's)."""
    if not value:
        return []
    if isinstance(value, Mapping):
        return [f"{key}={item}" for key, item in value.items()]
    return [f"{name}=" for name in value]


def tmpfs(value: Mapping[str, str] | Iterable[str] | None) -> list[str]:
    """``{"/run": "size=64m"}`` or ``["/run:size=64m"]`` -> ``--tmpfs`` values."""
    if not value:
        return []
    if isinstance(value, Mapping):
        return [f"{path}:{opts}" if opts else str(path) for path, opts in value.items()]
    return [str(item) for item in value]


def extra_hosts(value: Mapping[str, str] | Iterable[str] | None) -> list[str]:
    """``{"db": "10.0.0.2"}`` or ``["db:10.0.0.2"]`` -> ``--add-host`` values."""
    if not value:
        return []
    if isinstance(value, Mapping):
        return [f"{host}:{address}" for host, address in value.items()]
    return [str(item) for item in value]


def ulimits(value: Iterable[Any] | None) -> list[str]:
    """docker-py's Ulimit objects or dicts (``{"Name": "nofile", "Soft": 1024, "Hard": 2048}``) ->
    ``--ulimit nofile=1024:2048``."""
    specs = []
    for item in value or []:
        get = item.get if isinstance(item, Mapping) else lambda key, obj=item: getattr(obj, key.lower(), None)
        name, soft, hard = get("Name"), get("Soft"), get("Hard")
        if not name or soft is None:
            raise InvalidArgument(f"ulimits: expected {{'Name': ..., 'Soft': ..., 'Hard': ...}}, got {item!r}")
        specs.append(f"{name}={soft}" + (f":{hard}" if hard is not None else ""))
    return specs


def network(name: str | None, mode: str | None) -> str:
    """docker-py has both: ``network_mode`` ("none", "host", "container:X") and ``network`` (a name)."""
    if name and mode:
        raise InvalidArgument("network and network_mode cannot be combined: give one of them")
    return str(name or mode or "bridge")


def restart_policy(value: Mapping[str, Any] | None) -> str:
    """``{"Name": "on-failure", "MaximumRetryCount": 3}`` -> ``--restart on-failure:3``."""
    if not value or not value.get("Name"):
        return "no"
    name = str(value["Name"])
    retries = value.get("MaximumRetryCount")
    return f"{name}:{retries}" if name == "on-failure" and retries else name


def resources(kwargs: Mapping[str, Any]) -> dict[str, str | None]:
    """The resource keywords as the matching ``docker run`` flags' values (ints as decimal bytes
    or counts, strings such as ``"128m"`` as they are); ``nano_cpus`` as ``--cpus``."""
    limits: dict[str, str | None] = {}
    for key, field in _RESOURCES.items():
        value = kwargs.get(key)
        if value is not None:
            limits[field] = str(value)
    if kwargs.get("nano_cpus"):
        limits["cpus"] = nano_cpus(kwargs["nano_cpus"])
    if kwargs.get("oom_kill_disable"):
        limits["oom_kill_disable"] = True  # type: ignore[assignment]  # as the CLI passes the flag
    return limits


def nano_cpus(value: int) -> str:
    """Billionths of a CPU -> ``--cpus``'s decimal text, exactly (1500000000 -> "1.5")."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgument(f"nano_cpus: expected a non-negative int (1e9 per CPU), got {value!r}")
    whole, part = divmod(value, 1_000_000_000)
    return f"{whole}.{part:09d}".rstrip("0").rstrip(".")


def _normalized_caps(values: Iterable[str] | None) -> list[str]:
    if not values:
        return []
    from skiff.security.capabilities import normalize

    return normalize(list(values))


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"{what}: expected a non-empty string, got {value!r}")
    return value
