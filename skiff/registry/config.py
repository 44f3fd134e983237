"""Registry settings: insecure registries, docker.io mirrors, TLS material, where credentials live.

``/etc/skiff/registries.json`` (``SKIFF_REGISTRIES_CONF`` moves it)::

    {"insecure": ["myhost:5000"], "mirrors": ["https://mirror.example.com"]}

Only registries listed as insecure are spoken to over plain HTTP (or HTTPS
without verification). Unlike Docker, loopback addresses are not insecure by
default: a test registry must be listed like any other.

TLS material follows Docker's ``certs.d``: ``/etc/skiff/certs.d/HOST:PORT/``
holds ``*.crt`` CA certificates and ``NAME.cert``/``NAME.key`` client pairs
(``SKIFF_CERTS_D`` moves it).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from skiff.errors import RegistryError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ssl

DEFAULT_CONFIG_DIR = Path("/etc/skiff")
DOCKER_HUB = "docker.io"
DOCKER_HUB_ENDPOINT = "registry-1.docker.io"
DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"


def config_dir() -> Path:
    return Path(os.environ.get("SKIFF_CONFIG_DIR") or DEFAULT_CONFIG_DIR)


@dataclass
class RegistryConfig:
    insecure: set[str] = field(default_factory=set)
    mirrors: list[str] = field(default_factory=list)
    certs_d: Path = field(default_factory=lambda: config_dir() / "certs.d")
    registries_file: Path = field(default_factory=lambda: config_dir() / "registries.json")

    @classmethod
    def load(cls) -> "RegistryConfig":
        path = Path(os.environ.get("SKIFF_REGISTRIES_CONF") or config_dir() / "registries.json")
        certs_d = Path(os.environ.get("SKIFF_CERTS_D") or config_dir() / "certs.d")
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return cls(certs_d=certs_d, registries_file=path)
        except (OSError, ValueError) as exc:
            raise RegistryError(f"cannot read registry configuration {path}: {exc}") from None
        if not isinstance(data, dict):
            raise RegistryError(f"registry configuration {path} must be a JSON object")
        insecure = data.get("insecure", data.get("insecure-registries", []))
        mirrors = data.get("mirrors", data.get("registry-mirrors", []))
        if not (isinstance(insecure, list) and isinstance(mirrors, list)
                and all(isinstance(x, str) for x in [*insecure, *mirrors])):
            raise RegistryError(f"registry configuration {path}: 'insecure' and 'mirrors' must be lists of strings")
        return cls(insecure=set(insecure), mirrors=[m.rstrip("/") for m in mirrors], certs_d=certs_d,
                   registries_file=path)

    def is_insecure(self, host: str) -> bool:
        return host in self.insecure

    def endpoint_host(self, domain: str) -> str:
        """The host that serves a reference's domain: docker.io is served at registry-1.docker.io."""
        return DOCKER_HUB_ENDPOINT if domain == DOCKER_HUB else domain

    def certs_dir(self, host: str) -> Path | None:
        """``certs.d/HOST:PORT`` or ``certs.d/HOST``, whichever exists first."""
        for name in (host, host.rsplit(":", 1)[0]):
            candidate = self.certs_d / name
            if candidate.is_dir():
                return candidate
        return None

    def ssl_context(self, host: str) -> ssl.SSLContext:
        """System CAs plus the host's certs.d CAs and client certificate, if any."""
        import ssl

        ctx = ssl.create_default_context()
        directory = self.certs_dir(host)
        if directory is None:
            return ctx
        for entry in sorted(directory.iterdir()):
            try:
                if entry.suffix == ".crt":
                    ctx.load_verify_locations(cafile=str(entry))
                elif entry.suffix == ".cert":
                    key = entry.with_suffix(".key")
                    if not key.exists():
                        raise RegistryError(f"client certificate {entry} has no matching key {key}")
                    ctx.load_cert_chain(str(entry), str(key))
            except ssl.SSLError as exc:
                raise RegistryError(f"invalid TLS material {entry}: {exc}") from None
        return ctx
