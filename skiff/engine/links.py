"""Docker's legacy container links (``HostConfig.Links``, ``--link NAME[:ALIAS]``), as Docker 20.10.

At create each linked container must exist (``could not get container for NAME``); at start it must
run, and the container gets, for each link:

- an ``/etc/hosts`` line ``IP<TAB>ALIAS HOSTNAME [NAME]``: the linked container's address on the
  network they share (Docker writes this line on the default bridge; on a user-defined network
  its embedded DNS resolves the alias for this container alone: skiff's hosts line gives the
  same answer to the same container);
- on the default bridge only, Docker's link environment: ``ALIAS_PORT=tcp://IP:PORT`` (the lowest
  exposed port), for each run of three or more consecutive port numbers
  ``ALIAS_PORT_8000_TCP_{START,END,PORT_START,PORT_END}`` (with its ``_ADDR`` and ``_PROTO``) first,
  then ``ALIAS_PORT_80_TCP{,_ADDR,_PORT,_PROTO}`` for each exposed port, ``ALIAS_NAME=/self/alias``
  and ``ALIAS_ENV_KEY=VALUE`` for the linked container's ``Env`` (not ``HOME`` or ``PATH``), with
  ``ALIAS`` upper-cased and ``-`` as ``_``. A name set twice keeps its first place.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

from skiff.errors import ContainerConflict, ContainerNotFound, InvalidArgument
from skiff.paths import Paths


class Link(NamedTuple):
    name: str           # the linked container's name, without the slash
    alias: str
    hostname: str       # its Config.Hostname (its short id unless -h)
    ip: str             # its address on the network this container joins
    env: list[str]      # its Config.Env
    ports: list[str]    # its exposed ports, "80/tcp"


def parse(link: str) -> tuple[str, str]:
    """``NAME[:ALIAS]`` -> (name, alias), as Docker's opts.ParseLink."""
    name, _, alias = link.partition(":")
    name = name.lstrip("/")
    if not name or ":" in alias:
        raise InvalidArgument(f"bad format for links: {link}")
    return name, alias or name


def check(paths: Paths, links: Sequence[str], network: str) -> None:
    """At create: every linked container exists; links need a network of their own."""
    if not links:
        return
    from skiff.engine.containers import find_container

    if network == "host":
        raise InvalidArgument("conflicting options: host type networking can't be used with links. "
                              "This would result in undefined behavior")
    if network.startswith("container:"):
        raise InvalidArgument("conflicting options: container type network can't be used with links. "
                              "This would result in undefined behavior")
    for link in links:
        name, _ = parse(link)
        try:
            find_container(paths, name)
        except ContainerNotFound as exc:  # invalid, not "not found": a client would pull the image (moby#39823)
            raise InvalidArgument(f"could not get container for {name}: {exc}") from None


def resolve(paths: Paths, links: Sequence[str], network: str, self_name: str) -> list[Link]:
    """At start: each linked container, which must run and share ``network`` with this one."""
    from skiff.engine.containers import find_container

    found = []
    for link in links:
        name, alias = parse(link)
        try:
            child = find_container(paths, name)
        except ContainerNotFound as exc:  # invalid, not "not found": a client would pull the image (moby#39823)
            raise InvalidArgument(f"could not get container for {name}: {exc}") from None
        if not child.state.running:
            raise ContainerConflict(f"Cannot link to a non running container: /{child.name} AS /{self_name}/{alias}")
        networks = (child.data.get("NetworkSettings") or {}).get("Networks") or {}
        ip = (networks.get(network) or {}).get("IPAddress") or ""
        if not ip:
            raise ContainerConflict(f"Cannot link to /{child.name}, as it does not belong to the network {network!r}")
        config = child.data.get("Config") or {}
        found.append(Link(child.name, alias, config.get("Hostname") or child.id[:12], ip, _config_env(child.data),
                          sorted(config.get("ExposedPorts") or {}, key=_port_key)))
    return found


def _config_env(record: dict[str, Any]) -> list[str]:
    """Docker's Config.Env of the linked container: skiff's record holds its process environment,
    where HOSTNAME and TERM were added unless the user set them (Docker adds them at run time)."""
    user = {item.partition("=")[0] for item in (record.get("SkiffOptions") or {}).get("env") or []}
    return [item for item in (record.get("Config") or {}).get("Env") or []
            if item.partition("=")[0] not in ("HOSTNAME", "TERM") or item.partition("=")[0] in user]


def hosts(links: Sequence[Link]) -> list[str]:
    """``--add-host`` entries, one line each: ``IP<TAB>ALIAS HOSTNAME [NAME]`` as Docker's."""
    out = []
    for link in links:
        names = f"{link.alias} {link.hostname}" + (f" {link.name}" if link.alias != link.name else "")
        out.append(f"{names}:{link.ip}")
    return out


def environment(links: Sequence[Link], self_name: str) -> list[str]:
    """Docker's link variables (daemon/links/links.go ToEnv), links in their order."""
    env: dict[str, str] = {}  # a name set twice keeps its first place, as in Docker's merged Env
    for link in links:
        prefix = link.alias.upper().replace("-", "_")
        if link.ports:
            port, proto = _split_port(link.ports[0])
            env[f"{prefix}_PORT"] = f"{proto}://{link.ip}:{port}"
        env.update(_range_variables(prefix, link))
        for exposed in link.ports:
            port, proto = _split_port(exposed)
            key = f"{prefix}_PORT_{port}_{proto.upper()}"
            env.update({key: f"{proto}://{link.ip}:{port}", f"{key}_ADDR": link.ip, f"{key}_PORT": port,
                        f"{key}_PROTO": proto})
        env[f"{prefix}_NAME"] = f"/{self_name}/{link.alias}"
        for item in link.env:
            key, sep, value = item.partition("=")
            if sep and key not in ("HOME", "PATH"):
                env[f"{prefix}_ENV_{key}"] = value
    return [f"{key}={value}" for key, value in env.items()]


def _range_variables(prefix: str, link: Link) -> dict[str, str]:
    """The ``_START``/``_END`` variables of each run of at least three consecutive port numbers.

    As Docker's, a run is found by number alone (80/tcp, 80/udp, 81/tcp is one run) and named
    after its first port, with its last port's protocol in the ``_END`` names.
    """
    ports = [_split_port(exposed) for exposed in link.ports]
    numbers = [int(port) if port.isdigit() else 0 for port, _ in ports]
    env: dict[str, str] = {}
    first = 0
    while first < len(ports):
        last = _run_end(numbers, first)
        if last > first + 1:
            (port, proto), (end_port, end_proto) = ports[first], ports[last]
            key, end_key = f"{prefix}_PORT_{port}_{proto.upper()}", f"{prefix}_PORT_{port}_{end_proto.upper()}"
            env.update({f"{key}_START": f"{proto}://{link.ip}:{port}", f"{key}_ADDR": link.ip,
                        f"{key}_PROTO": proto, f"{key}_PORT_START": port,
                        f"{end_key}_END": f"{end_proto}://{link.ip}:{end_port}", f"{end_key}_PORT_END": end_port})
            first = last + 1
        else:
            first += 1
    return env


def _run_end(numbers: list[int], first: int) -> int:
    """The index of the last port of the run starting at ``first``: each next number at most one more."""
    expected = numbers[first]
    for index in range(first + 1, len(numbers)):
        if numbers[index] > expected + 1:
            return index - 1
        expected += 1
    return len(numbers) - 1


def _split_port(exposed: str) -> tuple[str, str]:
    port, _, proto = exposed.partition("/")
    return port, proto or "tcp"


def _port_key(exposed: str) -> tuple[int, bool]:
    """Docker sorts the linked ports by number, tcp first (links.go's withTCP)."""
    port, proto = _split_port(exposed)
    return (int(port) if port.isdigit() else 0, proto != "tcp")


def with_environment(env: list[str], links: Sequence[Link], self_name: str) -> list[str]:
    """The process's environment with the link variables where Docker puts them: after PATH,
    HOSTNAME (and TERM), before the container's own ``Env``, which wins on a clash."""
    keys = {item.partition("=")[0] for item in env}
    added = [item for item in environment(links, self_name) if item.partition("=")[0] not in keys]
    at = next((i for i, item in enumerate(env) if not item.startswith(("PATH=", "HOSTNAME=", "TERM="))), len(env))
    return [*env[:at], *added, *env[at:]]
