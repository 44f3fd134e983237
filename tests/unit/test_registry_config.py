"""registries.json: ``insecure`` and ``mirrors`` are lists of strings, or the file is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from skiff.errors import RegistryError
from skiff.registry.config import RegistryConfig


def _load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, document: object) -> RegistryConfig:
    path = tmp_path / "registries.json"
    path.write_text(json.dumps(document))
    monkeypatch.setenv("SKIFF_REGISTRIES_CONF", str(path))
    monkeypatch.setenv("SKIFF_CERTS_D", str(tmp_path / "certs.d"))
    return RegistryConfig.load()


def test_lists_of_strings_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _load(tmp_path, monkeypatch, {"insecure-registries": ["myhost:5000"],
                                           "registry-mirrors": ["https://mirror.example/"]})
    assert config.insecure == {"myhost:5000"}
    assert config.mirrors == ["https://mirror.example"]


# A string or an object used to pass (a set of its characters, or of its keys, came out).
@pytest.mark.parametrize("document", [
    {"insecure": "myhost:5000"},
    {"mirrors": "https://mirror.example"},
    {"insecure": {"myhost:5000": True}},
    {"insecure": ["myhost:5000", 5000]},
])
def test_anything_else_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, document: object) -> None:
    with pytest.raises(RegistryError, match="must be lists of strings"):
        _load(tmp_path, monkeypatch, document)
