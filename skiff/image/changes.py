"""``--change`` instructions of ``skiff import``, in Dockerfile syntax.

Supported as ``docker import`` does: CMD, ENTRYPOINT, ENV, WORKDIR, USER,
EXPOSE, VOLUME, LABEL, STOPSIGNAL, HEALTHCHECK. CMD, ENTRYPOINT and VOLUME take
the JSON form (``["sh", "-c", "x"]``) or the shell form; HEALTHCHECK is
``[--interval=D] [--timeout=D] [--start-period=D] [--retries=N] CMD ...`` or
``NONE``, with Docker's errors.
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
    try:
        return assignments(words)
    except ValueError as exc:
        raise InvalidArgument(f"{keyword} {rest}: {exc}") from None


def assignments(words: list[str]) -> list[tuple[str, str]]:
    """``K=V`` words as pairs (ENV, LABEL: here and in a Dockerfile); ValueError names a bad word."""
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise ValueError(f"{word!r} is not KEY=VALUE")
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


_HEALTHCHECK_FLAGS = {"interval": "Interval", "timeout": "Timeout", "start-period": "StartPeriod",
                      "retries": "Retries"}


def _healthcheck(config: Config, rest: str) -> None:
    """``HEALTHCHECK [--flag=value...] CMD command`` or ``HEALTHCHECK NONE``, as Docker's builder parses it."""
    flags, rest = _builder_flags(rest)
    kind, _, command = rest.partition(" ")
    kind, command = kind.upper(), command.strip()
    if kind == "NONE":
        if command:
            raise InvalidArgument("HEALTHCHECK NONE takes no arguments")
        config["Healthcheck"] = {"Test": ["NONE"]}  # Docker ignores the flags here
        return
    for name in flags:
        if name not in _HEALTHCHECK_FLAGS:
            raise InvalidArgument(f"Unknown flag: {name}")
    if kind != "CMD":
        raise InvalidArgument(f'Unknown type "{kind}" in HEALTHCHECK (try CMD)')
    words = _json_list(command)
    test = ["CMD", *words] if words is not None else ["CMD-SHELL", command] if command else ["CMD"]
    if len(test) == 1:
        raise InvalidArgument("Missing command after HEALTHCHECK CMD")
    health: dict[str, Any] = {"Test": test}
    for name, field in _HEALTHCHECK_FLAGS.items():
        value = flags.get(name, "")
        if value and name == "retries":
            health[field] = _retries(value)
        elif value:
            health[field] = _interval(name, value)
    config["Healthcheck"] = health


def _builder_flags(rest: str) -> tuple[dict[str, str], str]:
    """The leading ``--name=value`` words of an instruction (Docker's BFlags), and what follows them."""
    flags: dict[str, str] = {}
    while rest.startswith("--"):
        word, _, rest = rest.partition(" ")
        rest = rest.lstrip()
        if word == "--":
            break
        name, sep, value = word[2:].partition("=")
        if not sep:
            raise InvalidArgument(f"Missing a value on flag: {name}")
        flags[name] = value
    return flags, rest


def _interval(name: str, value: str) -> int:
    from skiff import goduration

    try:
        duration = goduration.parse(value)
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None
    if duration < 1_000_000:  # 1ms, Docker's MinimumDuration
        raise InvalidArgument(f'Interval "{name}" cannot be less than 1ms')
    return duration


def _retries(value: str) -> int:
    digits = value[1:] if value[:1] in ("+", "-") else value
    if not digits or not all("0" <= c <= "9" for c in digits):
        raise InvalidArgument(f'strconv.ParseInt: parsing "{value}": invalid syntax')
    if int(value) < 1:
        raise InvalidArgument(f"--retries must be at least 1 (not {int(value)})")
    return int(value)


_HANDLERS: dict[str, Callable[[Config, str], None]] = {
    "CMD": _cmd, "ENTRYPOINT": _entrypoint, "ENV": _env, "LABEL": _label, "WORKDIR": _workdir,
    "USER": _user, "EXPOSE": _expose, "VOLUME": _volume, "STOPSIGNAL": _stopsignal, "HEALTHCHECK": _healthcheck,
}
