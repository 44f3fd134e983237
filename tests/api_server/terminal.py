"""The docker CLI on a pseudo-terminal of its own, talking to skiff's socket (tests/ptyterm.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api_server.conftest import DOCKER, Service
from tests.ptyterm import PtyCommand, killed_at_the_end


class Terminal(PtyCommand):
    def __init__(self, service: Service, rows: int, cols: int, *args: str) -> None:
        env = {k: v for k, v in service.env.items() if not k.startswith("DOCKER_")}
        env["DOCKER_CONFIG"] = str(service.socket.parent / "docker-config")
        env["TERM"] = "xterm"
        super().__init__([DOCKER, "-H", f"unix://{service.socket}", *args], env, rows, cols)


@pytest.fixture
def terminals() -> Iterator[list[PtyCommand]]:
    yield from killed_at_the_end([])
