"""The import graph points one way: the packages below the engine never import it (lazily either),
the leaf modules import (almost) nothing of skiff, and skiff.cgroups holds cgroups only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import skiff

ROOT = Path(skiff.__file__).parent
BELOW_THE_ENGINE = ["image", "volume", "network", "registry", "runtime", "cgroups", "storage", "store", "linux",
                    "security", "oci"]
# leaf module -> the skiff modules it may import
LEAVES = {"mountinfo": set(), "units": set(), "signals": {"skiff.errors"}, "events": {"skiff.paths"}}


def _skiff_imports(path: Path) -> set[str]:
    """Every skiff module a file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("skiff"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("skiff"):
            found.update(f"{node.module}.{alias.name}" if node.module == "skiff" else node.module
                         for alias in node.names)
    return found


def _files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", BELOW_THE_ENGINE)
def test_no_package_below_the_engine_imports_it(package: str) -> None:
    upward = {f"{path.relative_to(ROOT)}: {name}" for path in _files(package) for name in _skiff_imports(path)
              if name.split(".")[1] in ("engine", "cli", "monitor")}
    assert not upward


@pytest.mark.parametrize("leaf, allowed", LEAVES.items())
def test_leaf_modules_stay_leaves(leaf: str, allowed: set[str]) -> None:
    assert _skiff_imports(ROOT / f"{leaf}.py") <= allowed


def test_cgroups_holds_cgroups_only() -> None:
    import skiff.cgroups as cgroups

    modules = {path.stem for path in _files("cgroups")}
    assert not modules & {"flags", "ulimits"}
    for name in ("resources_from_flags", "rlimits_from_ulimits", "cpu_percent"):
        assert not hasattr(cgroups, name), name
    from skiff.cgroups import stats

    assert not {"cpu_percent", "memory_limit_shown", "host_memory_bytes"} & set(vars(stats))


def test_mountinfo_is_read_in_one_place() -> None:
    readers = sorted(str(path.relative_to(ROOT)) for path in ROOT.rglob("*.py")
                     if "mountinfo\"" in path.read_text() or "/mountinfo'" in path.read_text())
    assert readers == ["mountinfo.py"]
