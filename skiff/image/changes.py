"""``--change`` instructions of ``skiff import``, in Dockerfile syntax.

Supported as ``docker import`` does: CMD, ENTRYPOINT, ENV, WORKDIR, USER,
EXPOSE, VOLUME, LABEL, STOPSIGNAL. CMD, ENTRYPOINT and VOLUME take the JSON
form (``["sh", "-c", "x"]``) or the shell form.
"""

from __future__ import annotations

import json
import shlex
from typing import Any, Callable

from skiff.errors import InvalidArgument

Config = dict[str, Any]


def apply_changes(config: Config, changes: list[str]) -> Config:
    """Apply each change line to the image config's ``config`` object (a copy is returned)."""
    result = json.loads(json.dumps(config))
    for line in changes:
        keyword, _, rest = line.strip().partition(" ")
        handler = _HANDLERS.get(keyword.upper())
        if handler is None:
            raise InvalidArgument(f'{keyword or line!r} is not a valid change command',
                                  hint="use one of " + ", ".join(sorted(_HANDLERS)))
        rest = rest.strip()
        if not rest:
            raise InvalidArgument(f"{keyword.upper()} requires at least one argument")
        handler(result, rest)
    return result


def _json_or_shell(rest: str) -> list[str]:
    """The exec form (a JSON array of strings) or the shell form wrapped in ``/bin/sh -c``."""
    words = _json_list(rest)
    return words if words is not None else ["/bin/sh", "-c", rest]


def _json_list(rest: str) -> list[str] | None:
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(rest)
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def _key_values(keyword: str, rest: str) -> list[tuple[str, str]]:
    """``K=V K2="v 2"`` pairs, or the legacy ``K V`` form of ENV and LABEL."""
    try:
        words = shlex.split(rest)
    except ValueError as exc:
        raise InvalidArgument(f"{keyword} {rest}: {exc}") from None
    if "=" not in words[0]:
        key, _, value = rest.partition(" ")
        if not value.strip():
            raise InvalidArgument(f"{keyword} {rest}: expected KEY=VALUE or KEY VALUE")
        return [(key, value.strip())]
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"{keyword} {rest}: {word!r} is not KEY=VALUE")
        pairs.append((key, value))
    return pairs


def _cmd(config: Config, rest: str) -> None:
    config["Cmd"] = _json_or_shell(rest)


def _entrypoint(config: Config, rest: str) -> None:
    config["Entrypoint"] = _json_or_shell(rest)


def _env(config: Config, rest: str) -> None:
    env = list(config.get("Env") or [])
    for key, value in _key_values("ENV", rest):
        env = [e for e in env if e.partition("=")[0] != key]
        env.append(f"{key}={value}")
    config["Env"] = env


def _label(config: Config, rest: str) -> None:
    labels = dict(config.get("Labels") or {})
    labels.update(_key_values("LABEL", rest))
    config["Labels"] = labels


def _workdir(config: Config, rest: str) -> None:
    config["WorkingDir"] = rest


def _user(config: Config, rest: str) -> None:
    config["User"] = rest


def _expose(config: Config, rest: str) -> None:
    ports = dict(config.get("ExposedPorts") or {})
    for word in rest.split():
        port, _, proto = word.partition("/")
        if not port.isdigit() or proto not in ("", "tcp", "udp", "sctp"):
            raise InvalidArgument(f"EXPOSE {rest}: invalid port {word!r}")
        ports[f"{int(port)}/{proto or 'tcp'}"] = {}
    config["ExposedPorts"] = ports


def _volume(config: Config, rest: str) -> None:
    volumes = dict(config.get("Volumes") or {})
    for path in _json_list(rest) or rest.split():
        volumes[path] = {}
    config["Volumes"] = volumes


def _stopsignal(config: Config, rest: str) -> None:
    config["StopSignal"] = rest


_HANDLERS: dict[str, Callable[[Config, str], None]] = {
    "CMD": _cmd, "ENTRYPOINT": _entrypoint, "ENV": _env, "LABEL": _label, "WORKDIR": _workdir,
    "USER": _user, "EXPOSE": _expose, "VOLUME": _volume, "STOPSIGNAL": _stopsignal,
}
