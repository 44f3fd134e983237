"""Docker 20.10's capability rules (client normalization, daemon TweakCapabilities), without containers."""

from __future__ import annotations

import pytest

from skiff.errors import InvalidArgument
from skiff.runtime.spec import DOCKER_DEFAULT_CAPS
from skiff.security import capabilities


def test_normalize_as_docker_20_10s_client() -> None:
    assert capabilities.normalize(["net_admin", " CAP_net_admin", "all", "Chown"]) == \
        ["ALL", "CAP_CHOWN", "CAP_NET_ADMIN"]


def test_effective_follows_tweak_capabilities(monkeypatch: pytest.MonkeyPatch) -> None:
    everything = ["CAP_CHOWN", "CAP_KILL", "CAP_SYS_ADMIN"]
    monkeypatch.setattr(capabilities, "available", lambda: list(everything))
    assert capabilities.effective([], [], False) == DOCKER_DEFAULT_CAPS
    assert capabilities.effective(["ALL"], ["chown"], False) == ["CAP_KILL", "CAP_SYS_ADMIN"]
    assert capabilities.effective(["net_admin"], ["ALL"], False) == ["CAP_NET_ADMIN"]
    assert capabilities.effective([], ["ALL"], True) == everything  # --privileged ignores drops
    both = capabilities.effective(["sys_admin"], ["sys_admin", "chown"], False)
    assert "CAP_SYS_ADMIN" in both and "CAP_CHOWN" not in both
    with pytest.raises(InvalidArgument, match='invalid CapDrop: unknown capability: "CAP_NOPE"'):
        capabilities.effective([], ["nope"], False)


def test_every_capability_is_what_the_kernel_knows_and_skiff_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capabilities, "_bounding_set", lambda: ~(1 << 24))  # no CAP_SYS_RESOURCE
    monkeypatch.setattr(capabilities, "_read_int", lambda path, default: 37)  # a kernel up to CAP_AUDIT_READ
    found = capabilities.available()
    assert "CAP_SYS_RESOURCE" not in found and "CAP_PERFMON" not in found
    assert found[0] == "CAP_CHOWN" and found[-1] == "CAP_AUDIT_READ" and len(found) == 37
