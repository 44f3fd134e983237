"""The package's ``pull`` stays the function after its implementation module is imported."""

from __future__ import annotations

import importlib


def test_pull_is_still_the_function_after_the_module_loads() -> None:
    import skiff.registry as registry

    importlib.import_module("skiff.registry.puller")
    assert callable(registry.pull) and registry.pull.__module__ == "skiff.registry"
    assert callable(registry.ensure_image) and registry.ensure_image.__module__ == "skiff.registry"
