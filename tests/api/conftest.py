"""A skiff.Client on the test's private root (tests/conftest.py's skiff_env), busybox imported.

The client runs in the test's own process, as a user's program would; whatever a test
leaves running is removed at its end, so no mount or cgroup outlives it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import skiff


@pytest.fixture
def client(skiff_env: dict[str, str]) -> Iterator[skiff.Client]:
    made = skiff.Client(root=skiff_env["SKIFF_ROOT"], run_root=skiff_env["SKIFF_RUN_ROOT"])
    yield made
    for container in made.containers.list(all=True):
        container.remove(force=True, v=True)


@pytest.fixture
def busybox(client: skiff.Client, busybox_tar: Path) -> str:
    """``busybox:latest`` in the client's store, imported through the API."""
    client.images.import_(busybox_tar, "busybox", "latest", changes=['CMD ["sh"]'])
    return "busybox:latest"
