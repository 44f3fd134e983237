"""docs/python-api.md's examples, run as written: every ```python block, in order, in one
namespace, against a private root with busybox (a page that lies fails here)."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest

import skiff

DOC = Path(__file__).resolve().parents[2] / "docs" / "python-api.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_the_page_has_examples_of_every_call() -> None:
    code = "\n".join(python_blocks(DOC.read_text()))
    for call in ("containers.run(", "containers.create(", "containers.get(", "containers.list(", "containers.prune(",
                 ".exec_run(", ".top(", ".stats(", ".logs(", ".wait(", ".pause(", ".unpause(", ".stop(",
                 ".start(", ".restart(", ".kill(", ".remove(", ".reload(", ".rename(", "images.pull(",
                 "images.load(", "images.import_(", "images.list(", "images.get(", "images.remove(",
                 "images.tag(", "images.prune(", "volumes.create(", "volumes.get(", "volumes.list(",
                 "volumes.prune(", "networks.create(", "networks.list(", "networks.prune(", ".connect(",
                 ".disconnect(", "skiff.testing.container(", "skiff_container("):
        assert call in code, f"docs/python-api.md has no example of {call}"


def test_the_examples_run(client: skiff.Client, busybox: str, skiff_env: dict[str, str],
                          monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("SKIFF_ROOT", "SKIFF_RUN_ROOT", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"):
        monkeypatch.setenv(key, skiff_env[key])  # skiff.Client() in the page finds the private root
    namespace: dict[str, object] = {"__name__": "python_api_doc"}
    blocks = python_blocks(DOC.read_text())
    assert len(blocks) > 20
    for number, block in enumerate(blocks, 1):
        try:
            exec(compile(block, f"docs/python-api.md block {number}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"block {number} of docs/python-api.md failed:\n{block}") from exc
    with contextlib.ExitStack() as started:  # the page's pytest example, with the plugin's factory
        namespace["test_web_page"](  # type: ignore[operator]
            lambda image, command=None, **kw: started.enter_context(
                skiff.testing.container(image, command, client=client, **kw)))
    assert client.containers.list(all=True) == []  # the page cleans up after itself
