"""Fixtures shared by every test: a private skiff root, a busybox image, the CLI.

Tests run as root against the real kernel. Each test gets its own skiff root and
run root in a temporary directory (never /var/lib/skiff), and the session checks
at the end that nothing of skiff's is left in the host's mount table.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    if os.geteuid() != 0:
        pytest.exit("skiff's tests need root: run them with scripts/test (sudo)", returncode=2)


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rootfs tarball built from the host's busybox-static (scripts/busybox-rootfs)."""
    out = tmp_path_factory.mktemp("busybox") / "busybox.tar"
    subprocess.run([str(REPO / "scripts" / "busybox-rootfs"), str(out)], check=True)
    return out


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory, busybox_tar: Path) -> Path:
    """The busybox rootfs unpacked into a plain directory (for runtime-core tests)."""
    root = tmp_path_factory.mktemp("busybox-rootfs")
    subprocess.run(["tar", "--numeric-owner", "-xpf", str(busybox_tar), "-C", str(root)], check=True)
    return root


@pytest.fixture
def skiff_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a skiff subprocess with a private root and run root."""
    env = dict(os.environ)
    env["SKIFF_ROOT"] = str(tmp_path / "root")
    env["SKIFF_RUN_ROOT"] = str(tmp_path / "run")
    env.pop("SKIFF_DEBUG", None)
    return env


class Skiff:
    """Runs the ``skiff`` CLI as a user would, against a private root."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.root = Path(env["SKIFF_ROOT"])
        self.run_root = Path(env["SKIFF_RUN_ROOT"])

    def __call__(self, *args: str, input: bytes | str | None = None, check: bool = False,
                 timeout: float = 60) -> subprocess.CompletedProcess[str]:
        if isinstance(input, bytes):
            input = input.decode()
        proc = subprocess.run([sys.executable, "-m", "skiff", *args], env=self.env, input=input,
                              capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"skiff {' '.join(args)} exited {proc.returncode}:\n"
                                 f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
        return proc

    def ok(self, *args: str, **kwargs: object) -> str:
        """Run and require exit 0; return stdout."""
        return self(*args, check=True, **kwargs).stdout  # type: ignore[arg-type]


@pytest.fixture
def skiff(skiff_env: dict[str, str]) -> Skiff:
    return Skiff(skiff_env)


@pytest.fixture
def busybox_image(skiff: Skiff, busybox_tar: Path) -> str:
    """``busybox:latest`` imported into the test's private store."""
    skiff.ok("import", str(busybox_tar), "busybox:latest", "--change", 'CMD ["sh"]')
    return "busybox:latest"


def _mounts_under(prefixes: tuple[str, ...]) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if line.split()[4].startswith(prefixes)]


@pytest.fixture(scope="session", autouse=True)
def no_mounts_left_behind(tmp_path_factory: pytest.TempPathFactory) -> object:
    """Nothing this session mounted (under its temp dirs or skiff's default dirs) may remain."""
    prefixes = (str(tmp_path_factory.getbasetemp()), "/var/lib/skiff", "/run/skiff")
    before = set(_mounts_under(prefixes))
    yield
    leaked = [m for m in _mounts_under(prefixes) if m not in before]
    assert not leaked, "tests left mounts behind:\n" + "".join(leaked)
