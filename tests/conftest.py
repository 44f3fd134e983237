"""Fixtures shared by every test: a private skiff root, a busybox image, the CLI.

Tests run as root against the real kernel, except ``tests/unit``: pure logic (parsers,
the state machine, reconcile decisions, templates, filters) that any user can run.
Each test gets its own skiff root and run root in a temporary directory (never
/var/lib/skiff), and the session checks at the end that nothing of skiff's is left
in the host's mount table.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


UNIT = REPO / "tests" / "unit"
ROOT = os.geteuid() == 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without root only the unit tests can run: say so instead of failing in the kernel."""
    if ROOT:
        return
    kernel = [item for item in items if UNIT not in Path(item.path).parents]
    if kernel:
        pytest.exit(f"{len(kernel)} of the selected tests need root (the kernel's): run them with "
                    "scripts/test (sudo), or run tests/unit alone", returncode=2)


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


@pytest.fixture(scope="session", autouse=True)
def restore_ip_forward() -> Iterator[None]:
    """skiff turns forwarding on as Docker does; the suite puts the host's value back."""
    if not ROOT:  # unit tests alone: nothing here touches the host
        yield
        return
    path = Path("/proc/sys/net/ipv4/ip_forward")
    before = path.read_text()
    yield
    path.write_text(before)


CGROUP_PARENT = f"skiff-test-{secrets.token_hex(3)}"


@pytest.fixture(scope="session", autouse=True)
def private_cgroup_parent() -> Iterator[None]:
    """Containers of the tests live under their own parent cgroup, removed when the session ends.

    Then no cgroup with 'skiff' in its name may remain that was not there before.
    """
    if not ROOT:
        yield
        return
    before = _skiff_cgroup_dirs()
    # The runtime core gives every container a cgroup under SKIFF_CGROUP_PARENT: in-process
    # runtime tests must use the private parent too.
    previous = os.environ.get("SKIFF_CGROUP_PARENT")
    os.environ["SKIFF_CGROUP_PARENT"] = CGROUP_PARENT
    yield
    if previous is None:
        os.environ.pop("SKIFF_CGROUP_PARENT", None)
    else:
        os.environ["SKIFF_CGROUP_PARENT"] = previous
    from skiff import cgroups

    parent = cgroups.open(f"/{CGROUP_PARENT}")
    parent.destroy()
    assert not parent.exists(), f"cgroup /{CGROUP_PARENT} could not be removed"
    leaked = {d for d in _skiff_cgroup_dirs() - before if not _another_sessions(d)}
    assert not leaked, f"tests left cgroups behind: {sorted(leaked)}"


def _another_sessions(cgroup_dir: str) -> bool:
    """Under another test session's private parent (6 hex digits here, 8 in tests/cgroups): a suite running beside this one owns it."""
    top = Path(cgroup_dir).relative_to("/sys/fs/cgroup").parts[1]
    return top != CGROUP_PARENT and re.fullmatch(r"skiff-test-[0-9a-f]{6,8}", top) is not None


# Where containerd, dockerd, podman, skopeo, runc and skiff-oci keep state by default (the first
# four even when given other paths): the tests run them all privately, so none of these may change.
DEFAULT_STATE_DIRS = ("/var/lib/containers", "/var/lib/containerd", "/run/containerd", "/opt/containerd",
                      "/var/lib/docker", "/run/docker", "/run/runc", "/run/skiff-oci")


# Run as root, skopeo and podman keep a blob-info cache in /var/lib/containers/cache whatever
# their other paths: commands behind this prefix see a private, empty /var/lib instead.
PRIVATE_VAR_LIB = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                   'mount -t tmpfs -o mode=0755 skiff-test-var-lib /var/lib && exec "$@"', "sh"]


@pytest.fixture(scope="session", autouse=True)
def default_state_dirs_unchanged() -> Iterator[None]:
    if not ROOT:  # unit tests start no engine; the directories are root's to read
        yield
        return
    before = {path: _entries(path) for path in DEFAULT_STATE_DIRS}
    yield
    changed = [path for path in DEFAULT_STATE_DIRS if _entries(path) != before[path]]
    assert not changed, f"tests changed the host's default state directories: {changed}"


def _entries(path: str) -> list[str] | None:
    try:
        return sorted(os.listdir(path))
    except NotADirectoryError:
        return [path]
    except FileNotFoundError:
        return None


def _skiff_cgroup_dirs() -> set[str]:
    """Every directory with 'skiff' in its name, one or two levels below each hierarchy."""
    root = Path("/sys/fs/cgroup")
    return {str(d) for pattern in ("*/*", "*/*/*") for d in root.glob(pattern)
            if d.is_dir() and "skiff" in d.name}


@pytest.fixture
def skiff_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment for a skiff subprocess with a private root, run root and network names.

    The default bridge, veth prefix, nft table and subnet are private to the test
    (see skiff/network/config.py), so a test never touches a real skiff0 or the
    host's routes; afterwards every kernel object of that network is removed.
    """
    with private_skiff_env(tmp_path) as env:
        yield env


@contextmanager
def private_skiff_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """``skiff_env``'s environment under any directory (tests/parity keeps one for a session)."""
    from tests.network.conftest import free_subnet, links_gone, links_with, tables_named

    env = dict(os.environ)
    env["SKIFF_ROOT"] = str(tmp_path / "root")
    env["SKIFF_RUN_ROOT"] = str(tmp_path / "run")
    env["SKIFF_CGROUP_PARENT"] = CGROUP_PARENT
    env.pop("SKIFF_DEBUG", None)
    # A pull of an unknown image must never leave this machine: registries other than
    # the tests' own on loopback are reached only through a proxy that is not there.
    env["HTTP_PROXY"] = env["HTTPS_PROXY"] = "http://127.0.0.1:9"
    env["NO_PROXY"] = "localhost,127.0.0.1,::1"
    for name in ("http_proxy", "https_proxy", "no_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(name, None)
    tag = secrets.token_hex(3)
    config = {"default_bridge": f"skt{tag}0", "bridge_prefix": f"skt{tag}", "veth_prefix": f"sv{tag}",
              "nft_table": f"skiff_test_{tag}", "subnet_candidates": [free_subnet()]}
    (tmp_path / "root" / "network").mkdir(parents=True)
    (tmp_path / "root" / "network" / "config.json").write_text(json.dumps(config))
    yield env
    subprocess.run([sys.executable, "-m", "skiff", "network", "prune", "-f"], env=env, capture_output=True)
    leaked = links_with(f"skt{tag}") + links_gone(f"sv{tag}")
    for link in leaked:
        subprocess.run(["ip", "link", "del", link], capture_output=True)
    tables = tables_named(config["nft_table"])
    if tables:
        subprocess.run(["nft", "delete", "table", "ip", config["nft_table"]], capture_output=True)
    assert not leaked and not tables, f"test left network objects behind: {leaked} {tables}"


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
