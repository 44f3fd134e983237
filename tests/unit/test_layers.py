"""The import graph points one way: no cycle between skiff's packages, the packages below the
engine never import it (lazily either), the monitor never calls back into ``Engine``, the leaf
modules import (almost) nothing of skiff, and skiff.cgroups holds cgroups only.

Every import counts, the lazy ones inside functions too: a cycle hidden in a function is still a
cycle for a reader and for the next refactor."""

from __future__ import annotations

import ast
from collections import defaultdict
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

import skiff

ROOT = Path(skiff.__file__).parent
BELOW_THE_ENGINE = ["image", "volume", "network", "registry", "runtime", "cgroups", "storage", "store", "linux",
                    "security", "oci"]
# leaf module -> the skiff modules it may import
LEAVES = {"mountinfo": set(), "units": set(), "signals": {"skiff.errors"}, "events": {"skiff.paths"}}
LEAVES["explain"] = set()


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


def _package_of(path: Path) -> str:
    """``skiff.engine`` for skiff/engine/monitor/idle.py; ``skiff.errors`` for skiff/errors.py."""
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:2])


def _package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in ROOT.rglob("*.py"):
        package = _package_of(path)
        graph[package] |= {".".join(name.split(".")[:2]) for name in _skiff_imports(path)} - {package}
    return graph


def test_no_cycle_between_packages() -> None:
    graph = _package_graph()
    assert "skiff.runtime" in graph["skiff.engine"]  # lazy imports are seen: engine.py imports the runtime in functions
    try:
        list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise AssertionError(f"import cycle between skiff's packages: {' -> '.join(exc.args[1])}") from None


def test_the_monitor_never_imports_the_engine_proper() -> None:
    """Engine starts monitors; a monitor changes its container through state and teardown only."""
    back = {f"{path.relative_to(ROOT)}: {name}" for path in _files("engine/monitor") for name in _skiff_imports(path)
            if name in ("skiff.engine.engine", "skiff.engine.Engine")}
    assert not back


def test_the_api_server_is_a_front_end_beside_the_cli() -> None:
    """skiff.api serves the engine as the CLI does: only the CLI starts it, and it never calls the CLI."""
    graph = _package_graph()
    assert {package for package, imported in graph.items() if "skiff.api" in imported} == {"skiff.cli"}
    assert "skiff.cli" not in graph["skiff.api"]
    assert "skiff.engine" in graph["skiff.api"]
