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
    """Docker's --env-file: KEY=VALUE lines; '#' comments; a bare KEY takes the host's value."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise InvalidArgument(f"open {path}: {exc.strerror}") from None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def environment(image_config: dict[str, Any], opts: RunOptions, hostname: str, home: str) -> list[str]:
    """Image Env, then --env-file, then -e; PATH, HOSTNAME and HOME defaulted as Docker does."""
    env: dict[str, str] = {}
    for item in image_config.get("Env") or []:
        key, _, value = item.partition("=")
        env[key] = value
    entries = [item for path in opts.env_files for item in read_env_file(path)] + list(opts.env)
    for item in entries:
        key, sep, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid environment variable: {item}")
        if sep:
            env[key] = value
        elif key in os.environ:  # `-e NAME` passes the host's value through, if it has one
            env[key] = os.environ[key]
    env.setdefault("PATH", DEFAULT_PATH)
    env["HOSTNAME"] = env.get("HOSTNAME", hostname)
    env.setdefault("HOME", home)
    if opts.tty:
        env.setdefault("TERM", "xterm")  # as Docker: programs on the pseudo-terminal need a terminal type
    return [f"{k}={v}" for k, v in env.items()]


def working_dir(image_config: dict[str, Any], opts: RunOptions) -> str:
    cwd = opts.workdir or image_config.get("WorkingDir") or "/"
    if not cwd.startswith("/"):
        raise InvalidArgument(f"the working directory '{cwd}' is invalid, it needs to be an absolute path")
    return cwd
