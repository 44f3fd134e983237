"""skiff's Python API: docker-py's high-level client, with no daemon.

    import skiff

    client = skiff.Client()                      # or Client(root=..., run_root=...)
    print(client.containers.run("busybox", "echo hello", remove=True))

The nouns and keywords are docker-py's (``client.containers``, ``client.images``,
``client.volumes``, ``client.networks``), so code written for docker-py needs
little change; docs/python-api.md has every call. Each call runs in this process
over skiff's engine library, the same calls the ``skiff`` command makes. Errors are
skiff's typed exceptions (skiff.errors), under docker-py's names too.
"""

from __future__ import annotations

import os
from typing import Any

from skiff.client.containers import Container, ContainerCollection, ExecResult
from skiff.client.images import Image, ImageCollection
from skiff.client.networks import Network, NetworkCollection
from skiff.client.volumes import Volume, VolumeCollection
from skiff.engine import Engine
from skiff.paths import Paths

__all__ = ["Client", "Container", "ExecResult", "Image", "Network", "Volume", "from_env"]


class Client:
    """Containers, images, volumes and networks of one skiff root.

    ``root`` and ``run_root`` default as the CLI's ``--root``/``--run-root``: the
    ``SKIFF_ROOT`` and ``SKIFF_RUN_ROOT`` environment variables, else /var/lib/skiff
    and /run/skiff. Cheap to make and holds nothing open: no ``close`` is needed
    (one is there for docker-py's users).
    """

    def __init__(self, root: str | os.PathLike[str] | None = None,
                 run_root: str | os.PathLike[str] | None = None) -> None:
        self.paths = Paths.from_env(root, run_root)
        self.engine = Engine(self.paths)
        self.containers = ContainerCollection(self)
        self.images = ImageCollection(self)
        self.volumes = VolumeCollection(self)
        self.networks = NetworkCollection(self)

    @classmethod
    def from_env(cls, **kwargs: Any) -> "Client":
        """docker-py's ``docker.from_env()``: the root and run root from the environment."""
        return cls(**kwargs)

    def ping(self) -> bool:
        """docker-py's health check of the daemon: skiff has none, so always True."""
        return True

    def close(self) -> None:
        """Nothing to close: no connection is held."""

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<skiff.Client root={str(self.paths.root)!r} run_root={str(self.paths.run_root)!r}>"


def from_env(**kwargs: Any) -> Client:
    """``skiff.client.from_env()``, as ``docker.from_env()``."""
    return Client(**kwargs)
