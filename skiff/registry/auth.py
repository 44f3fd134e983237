"""Registry credentials and the ``WWW-Authenticate`` challenge.

Credentials are kept in Docker's ``config.json`` format (``{"auths": {KEY:
{"auth": base64(user:password)}}}``), mode 0600. skiff writes its own file
(``SKIFF_AUTH_FILE``, else ``REGISTRY_AUTH_FILE`` as podman reads it, else
``~/.config/skiff/auth.json``) and also reads Docker's
(``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``). Credential
helpers (``credsStore``) are not run.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skiff.errors import RegistryError
from skiff.registry.config import DOCKER_HUB, DOCKER_HUB_AUTH_KEY, DOCKER_HUB_ENDPOINT

_DOCKER_HUB_ALIASES = {DOCKER_HUB, DOCKER_HUB_ENDPOINT, "index.docker.io", DOCKER_HUB_AUTH_KEY}


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def basic_header(self) -> str:
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return f"Basic {token}"


def skiff_auth_file() -> Path:
    explicit = os.environ.get("SKIFF_AUTH_FILE") or os.environ.get("REGISTRY_AUTH_FILE")
    if explicit:
        return Path(explicit)
    return Path.home() / ".config" / "skiff" / "auth.json"


def docker_config_file() -> Path:
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def auth_key(registry: str) -> str:
    """The key under ``auths`` for a registry, as Docker writes it."""
    host = normalize_registry(registry)
    return DOCKER_HUB_AUTH_KEY if host == DOCKER_HUB else host


def normalize_registry(registry: str) -> str:
    """``https://host:5000/v2/`` -> ``host:5000``; every Docker Hub alias -> ``docker.io``."""
    if registry in _DOCKER_HUB_ALIASES:
        return DOCKER_HUB
    host = re.sub(r"^[a-z]+://", "", registry).split("/", 1)[0]
    return DOCKER_HUB if host in _DOCKER_HUB_ALIASES else host


def lookup(registry: str) -> Credentials | None:
    """Credentials for ``registry`` from skiff's file, then Docker's."""
    wanted = normalize_registry(registry)
    for path in (skiff_auth_file(), docker_config_file()):
        for key, entry in _read(path).get("auths", {}).items():
            if normalize_registry(key) == wanted and isinstance(entry, dict):
                creds = _decode(entry, path)
                if creds is not None:
                    return creds
    return None


def store(registry: str, creds: Credentials) -> Path:
    from skiff.store import write_json

    path = skiff_auth_file()
    data = _read(path)
    auths = data.setdefault("auths", {})
    for key in [k for k in auths if normalize_registry(k) == normalize_registry(registry)]:
        del auths[key]
    token = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
    auths[auth_key(registry)] = {"auth": token}
    _private_dir(path.parent)
    write_json(path, data, mode=0o600)
    return path


def _private_dir(directory: Path) -> None:
    """Make the directory that holds credentials, mode 0700 whatever the umask.

    Directories made here are 0700; skiff's own default directory is brought
    back to 0700 if it exists with more (older skiff made it 0755). A directory
    the user named (``SKIFF_AUTH_FILE``) and already has is theirs, left alone.
    """
    missing = []
    parent = directory
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for new in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(new, 0o700)
        os.chmod(new, 0o700)  # mkdir's mode is filtered by the umask; chmod's is not
    if directory == Path.home() / ".config" / "skiff" and directory.stat().st_mode & 0o077:
        os.chmod(directory, 0o700)


def remove(registry: str) -> bool:
    """Forget the credentials skiff stored for ``registry``; False when there were none."""
    from skiff.store import write_json

    path = skiff_auth_file()
    data = _read(path)
    auths = data.get("auths", {})
    doomed = [k for k in auths if normalize_registry(k) == normalize_registry(registry)]
    for key in doomed:
        del auths[key]
    if doomed:
        _private_dir(path.parent)
        write_json(path, data, mode=0o600)
    return bool(doomed)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise RegistryError(f"cannot read credentials file {path}: {exc}") from None
    return data if isinstance(data, dict) else {}


def _decode(entry: dict[str, Any], path: Path) -> Credentials | None:
    if entry.get("auth"):
        try:
            user, sep, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise RegistryError(f"credentials file {path} holds an invalid 'auth' value") from None
        return Credentials(user, password) if sep else None
    if entry.get("username") and entry.get("password"):
        return Credentials(entry["username"], entry["password"])
    return None


# --- challenges ---------------------------------------------------------------

_PARAM_RE = re.compile(r'([A-Za-z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclass(frozen=True)
class Challenge:
    scheme: str                 # "bearer" or "basic", lower case
    params: dict[str, str]


def parse_challenge(header: str) -> Challenge | None:
    """``Bearer realm="...",service="...",scope="..."`` -> Challenge; None if empty."""
    header = header.strip()
    if not header:
        return None
    scheme, _, rest = header.partition(" ")
    params = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3)).replace('\\"', '"')
              for m in _PARAM_RE.finditer(rest)}
    return Challenge(scheme.lower(), params)
