"""Each scenario of tests/parity/scenarios.py on Docker 20.10 (the tests' private dockerd) and on
skiff: its steps must agree in what each names (exit status, output, error, document shape).

``scripts/test tests/parity`` runs them; without docker.io they skip. A scenario with a ``known``
difference is an expected failure (strict: when skiff comes to match, XPASS says to drop the mark).
"""

from __future__ import annotations

import pytest

from tests.parity.runner import Scenario, Side, differences
from tests.parity.scenarios import INSTALLED, SCENARIOS


def params(scenarios: list[Scenario]) -> list[object]:
    ids = [sc.id for sc in scenarios]
    assert len(set(ids)) == len(ids), "scenario ids must be unique"
    return [pytest.param(sc, id=sc.id, marks=[pytest.mark.xfail(reason=sc.known, strict=True)] if sc.known else [])
            for sc in scenarios]


@pytest.mark.parametrize("sc", params(SCENARIOS))
def test_skiff_as_docker(sc: Scenario, docker_side: Side, skiff_side: Side) -> None:
    found = differences(sc, docker_side, skiff_side)
    assert not found, "skiff differs from docker:\n" + "\n".join(found)


@pytest.mark.parametrize("sc", params(INSTALLED))
def test_installed_skiff_as_docker(sc: Scenario, docker_side: Side, installed_side: Side) -> None:
    """The same through the launcher users run (/usr/local/bin/skiff), from a clean environment."""
    found = differences(sc, docker_side, installed_side)
    assert not found, "installed skiff differs from docker:\n" + "\n".join(found)


def test_scenario_names_are_unique_across_scenarios() -> None:
    """Scenarios share one root on each side: two that named the same container would collide."""
    seen: dict[str, str] = {}
    for sc in SCENARIOS + INSTALLED:
        for name in sc.names():
            assert seen.setdefault(name, sc.id) == sc.id, f"{name} is used by {seen[name]} and {sc.id}"
