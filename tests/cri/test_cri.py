"""skiff-oci as a runtime handler behind containerd's CRI, driven over gRPC as the kubelet drives it.

One containerd (tests/cri/node.py: private root, state, sockets, CNI bridge and mount namespace) serves
the module, with the ``runc`` handler and the ``skiff`` handler (BinaryName: skiff-oci); every
scenario of tests/cri/scenarios.py runs with both, runc first, and must pass with both. The node's
teardown checks that no process, mount, netns, veth, bridge or cgroup of it is left.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cri.node import HANDLERS, CriNode, containerd_installed, cri_node
from tests.cri.scenarios import SCENARIOS, Steps


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, busybox_tar: Path) -> Iterator[CriNode]:
    if not containerd_installed():
        pytest.skip("containerd is not installed")
    with cri_node(tmp_path_factory.mktemp("cri"), busybox_tar) as started:
        yield started


@pytest.mark.parametrize("handler", HANDLERS)
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_scenario(node: CriNode, scenario: str, handler: str) -> None:
    steps = Steps()
    SCENARIOS[scenario](node, handler, steps)
    assert node.pod_ids() == [], "the scenario left a pod"

