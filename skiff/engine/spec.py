"""From an image config and run options to the ``process`` of an OCI config.

Docker's rules, in one place: which command runs (Entrypoint and Cmd, and how
``--entrypoint`` and arguments override them), which environment it gets, and
in which directory.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

from skiff.engine.options import RunOptions
from skiff.errors import InvalidArgument

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def command_line(image_config: dict[str, Any], opts: RunOptions) -> list[str]:
    """Entrypoint + Cmd, as ``docker run`` composes them.

    ``--entrypoint`` replaces the image's entrypoint and drops the image's Cmd
    (an empty string clears the entrypoint); arguments after the image replace Cmd.
    """
    if opts.entrypoint is not None:
        entrypoint = shlex.split(opts.entrypoint) if opts.entrypoint else []
        cmd = list(opts.command)
    else:
        entrypoint = list(image_config.get("Entrypoint") or [])
        cmd = list(opts.command) or list(image_config.get("Cmd") or [])
    args = entrypoint + cmd
    if not args:
        raise InvalidArgument("No command specified", hint="give a command after the image name")
    return args


def read_env_file(path: str) -> list[str]:
    """Docker's --env-file (its client's parseKeyValueFile).

    Leading white space of a line is dropped, '#' starts a comment line; a value is kept
    as written, trailing spaces too; a bare KEY takes the host's value, or is left out.
    """
    try:
        text = Path(path).read_bytes().removeprefix(b"\xef\xbb\xbf").decode()
    except OSError as exc:
        raise InvalidArgument(f"open {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidArgument(f"env file {path} contains invalid utf8 bytes") from None
    entries: list[str] = []
    for raw in text.split("\n"):
        line = raw.removesuffix("\r").lstrip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.lstrip(" \t")
        if not key:
            raise InvalidArgument(f"poorly formatted environment: no variable name on line '{line}'")
        if " " in key or "\t" in key:
            raise InvalidArgument(f"poorly formatted environment: variable '{key}' contains whitespaces")
        if sep:
            entries.append(f"{key}={value}")
        elif line.strip() in os.environ:
            entries.append(f"{line.strip()}={os.environ[line.strip()]}")
    return entries


def _user_env(opts: RunOptions) -> list[str]:
    """--env-file's then -e's, as Docker's client sends them: ``-e NAME`` takes the host's
    value, and stays a bare NAME (which unsets the variable) when the host has none."""
    entries = [item for path in opts.env_files for item in read_env_file(path)]
    for item in opts.env:
        key, sep, _ = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid environment variable: {item}")
        entries.append(item if sep or key not in os.environ else f"{key}={os.environ[key]}")
    return entries


def config_env(image_config: dict[str, Any], opts: RunOptions) -> list[str]:
    """Docker's Config.Env: the user's variables, then the image's they do not name (its merge)."""
    user = _user_env(opts)
    named = {item.partition("=")[0] for item in user}
    return user + [item for item in image_config.get("Env") or [] if item.partition("=")[0] not in named]


def _replace_or_append(defaults: list[str], overrides: list[str]) -> list[str]:
    """Docker's ReplaceOrAppendEnvValues: a default is set in place, a new variable appended,
    a bare NAME removes it."""
    env = list(defaults)
    at = {item.partition("=")[0]: i for i, item in enumerate(env)}
    for item in overrides:
        key, sep, _ = item.partition("=")
        if not sep:
            if key in at:
                env[at[key]] = ""
        elif key in at:
            env[at[key]] = item
        else:
            env.append(item)
    return _set_in_order([item for item in env if item])


def _set_in_order(env: list[str]) -> list[str]:
    """As runc sets the variables one by one: a repeated name keeps its first place, its last value."""
    values: dict[str, str] = {}
    for item in env:
        key = item.partition("=")[0]
        values[key] = item
    return list(values.values())


def environment(image_config: dict[str, Any], opts: RunOptions, hostname: str, home: str) -> list[str]:
    """The process's environment in Docker's order: PATH, HOSTNAME (TERM with -t), Config.Env
    over them, then HOME as runc adds it when nobody set it."""
    defaults = [f"PATH={DEFAULT_PATH}", f"HOSTNAME={hostname}"]
    if opts.tty:
        defaults.append("TERM=xterm")  # programs on the pseudo-terminal need a terminal type
    env = _replace_or_append(defaults, config_env(image_config, opts))
    homes = [i for i, item in enumerate(env) if item.startswith("HOME=")]
    if not homes:
        env.append(f"HOME={home}")
    elif env[homes[0]] == "HOME=":  # runc: an empty HOME is replaced too
        env[homes[0]] = f"HOME={home}"
    return env


def working_dir(image_config: dict[str, Any], opts: RunOptions) -> str:
    cwd = opts.workdir or image_config.get("WorkingDir") or "/"
    if not cwd.startswith("/"):
        raise InvalidArgument(f"the working directory '{cwd}' is invalid, it needs to be an absolute path")
    return cwd
