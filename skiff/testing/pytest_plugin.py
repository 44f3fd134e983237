"""pytest fixtures for throwaway containers, built on ``skiff.testing.container``.

Enable it with ``pytest -p skiff.testing.pytest_plugin``, or in a conftest.py::

    pytest_plugins = ["skiff.testing.pytest_plugin"]

Then::

    def test_web(skiff_container):
        web = skiff_container("busybox", "httpd -f -p 80", ports={80: None})
        port = web.host_port(80)            # published on 127.0.0.1, already listening
        ...

Every container a test started is removed when the test ends, passed or failed.
The client uses SKIFF_ROOT and SKIFF_RUN_ROOT as the ``skiff`` command does;
override the ``skiff_client`` fixture for another root.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from skiff.client import Client, Container


@pytest.fixture
def skiff_client() -> Client:
    """The skiff client the fixtures use (root and run root from the environment)."""
    return Client()


@pytest.fixture
def skiff_container(skiff_client: Client) -> Iterator[Callable[..., Container]]:
    """A factory: ``skiff_container(image, command=None, **run_keywords)`` starts a container
    (as ``skiff.testing.container``) that is removed when the test ends."""
    from skiff.testing import container

    with contextlib.ExitStack() as started:

        def start(image: str, command: Any = None, **kwargs: Any) -> Container:
            return started.enter_context(container(image, command, client=skiff_client, **kwargs))

        yield start
