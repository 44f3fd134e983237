"""One private dockerd and one skiff root for the whole parity suite, both with the same busybox.

The daemon starts when the first parity test needs it (tests/dockerd.py: its own data root, exec
root, socket and cgroup parent, no bridge, no iptables) and stops when the session ends, leaving
nothing behind. busybox goes into it through ``docker load`` of ``skiff save`` of the tests'
busybox image: both sides run the same image bytes under the same name, ``busybox:latest``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.conftest import REPO, Skiff, private_skiff_env
from tests.dockerd import DOCKER, NOT_INSTALLED, Dockerd, docker_installed, private_dockerd
from tests.e2e.test_installed import CLEAN_PATH, INSTALLED, LAUNCHER, PASSED_ON
from tests.parity.runner import Side

TIMEOUT = 60


@pytest.fixture(scope="package")
def parity_skiff(tmp_path_factory: pytest.TempPathFactory, busybox_tar: Path) -> Iterator[Skiff]:
    """The ``skiff`` fixture's CLI on a root kept for the parity suite, with busybox imported."""
    with private_skiff_env(tmp_path_factory.mktemp("parity-skiff")) as env:
        skiff = Skiff(env)
        skiff.ok("import", str(busybox_tar), "busybox:latest", "--change", 'CMD ["sh"]')
        yield skiff
        left = skiff.ok("ps", "-aq").split()
        skiff("rm", "-f", *left) if left else None
        assert not left, f"parity scenarios left skiff containers: {left}"


@pytest.fixture(scope="package")
def dockerd(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Dockerd]:
    """The parity suite's private dockerd, with skiff's busybox:latest loaded. Package-scoped:
    the daemon is a child of pytest and must be gone before other packages check for children."""
    if not docker_installed():
        pytest.skip(NOT_INSTALLED)
    parity_skiff: Skiff = request.getfixturevalue("parity_skiff")
    base = tmp_path_factory.mktemp("parity-docker")
    archive = base / "busybox.tar"
    parity_skiff.ok("save", "-o", str(archive), "busybox:latest")
    with private_dockerd(base / "docker") as engine:
        loaded = engine.docker("load", "-i", str(archive))
        assert "Loaded image: busybox:latest" in loaded.stdout, loaded.stderr
        yield engine
        left = engine.docker("ps", "-aq").stdout.split()
        engine.docker("rm", "-f", *left) if left else None
        assert not left, f"parity scenarios left docker containers: {left}"


def data_dir(base: Path) -> str:
    """The files scenarios name as ``{data}``: one copy a side, since a run may create files there."""
    base.mkdir()
    (base / "seed").write_text("seeded\n")
    (base / "env.list").write_text("# a comment\nFROM_FILE=file value\nEMPTY=\nSPACES= a b \nPARITY_UNSET\n")
    return str(base)


@pytest.fixture(scope="package")
def docker_side(dockerd: Dockerd, tmp_path_factory: pytest.TempPathFactory) -> Side:
    def cli(argv: Sequence[str], input: str | None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(DOCKER), "-H", f"unix://{dockerd.socket}", *argv], env=dockerd.env,
                              input=input or "", capture_output=True, text=True, timeout=TIMEOUT)

    data = data_dir(tmp_path_factory.mktemp("parity-data") / "docker")
    return Side("docker", cli, (str(dockerd.data_root), str(dockerd.exec_root), data), data)


@pytest.fixture(scope="package")
def skiff_side(parity_skiff: Skiff, tmp_path_factory: pytest.TempPathFactory) -> Side:
    def cli(argv: Sequence[str], input: str | None) -> subprocess.CompletedProcess[str]:
        return parity_skiff(*argv, input=input or "", timeout=TIMEOUT)

    data = data_dir(tmp_path_factory.mktemp("parity-data") / "skiff")
    return Side("skiff", cli, (str(parity_skiff.root), str(parity_skiff.run_root), data), data)


@pytest.fixture(scope="package")
def launcher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """/usr/local/bin/skiff when it is this checkout's launcher; otherwise the same launcher
    (scripts/install-launchers) for this checkout, in a temporary directory."""
    bindir = tmp_path_factory.mktemp("parity-bin")
    subprocess.run([str(REPO / "scripts" / "install-launchers"), str(bindir), str(REPO)], check=True,
                   capture_output=True)
    ours = bindir / "skiff"
    assert LAUNCHER.fullmatch(ours.read_text()), ours.read_text()
    return INSTALLED if INSTALLED.exists() and INSTALLED.read_text() == ours.read_text() else ours


@pytest.fixture(scope="package")
def installed_side(launcher: Path, parity_skiff: Skiff, tmp_path_factory: pytest.TempPathFactory) -> Side:
    """The launcher as a user runs it: a clean environment, the parity root."""
    env = {"PATH": CLEAN_PATH, **{name: parity_skiff.env[name] for name in PASSED_ON}}

    def cli(argv: Sequence[str], input: str | None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(launcher), *argv], env=env, input=input or "", capture_output=True,
                              text=True, timeout=TIMEOUT, cwd="/")

    data = data_dir(tmp_path_factory.mktemp("parity-data") / "installed")
    return Side("installed skiff", cli, (str(parity_skiff.root), str(parity_skiff.run_root), data), data)
