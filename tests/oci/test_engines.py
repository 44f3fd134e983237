"""containerd and podman drive skiff-oci through runc's command line.

Each test starts its engine itself, with every state directory, socket and cgroup private to the
test, runs busybox with a volume through skiff-oci, checks its output and exit code, and leaves
nothing behind: no engine processes, mounts, cgroups or state outside its temporary directory.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CGROUP_PARENT

SKIFF_OCI = shutil.which("skiff-oci") or "/usr/local/bin/skiff-oci"
NAMESPACE = "skiff-test"


def _mounts_under(prefix: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p == str(prefix) or p.startswith(f"{prefix}/")]


def _unmount_all_under(prefix: Path) -> None:
    """An engine killed mid-way may leave its snapshots mounted: lazily unmount, deepest first."""
    for point in sorted(_mounts_under(prefix), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


def _kill_processes_mentioning(text: str) -> None:
    """Shims and conmons outlive their engine; ours are the ones whose command line names our temp dir."""
    for cmdline in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(cmdline, "rb") as f:
                if text.encode() in f.read():
                    os.kill(int(cmdline.split("/")[2]), signal.SIGKILL)
        except (OSError, ValueError):
            continue


def _cgroup_dirs(path: str) -> list[str]:
    return glob.glob(f"/sys/fs/cgroup/*{path}") + glob.glob(f"/sys/fs/cgroup{path}")


def _remove_cgroup(path: str) -> None:
    from skiff import cgroups

    cgroups.open(path).destroy()
    for directory in sorted(_cgroup_dirs(path), key=len, reverse=True):  # hierarchies skiff does not manage
        for sub, _, _ in sorted(os.walk(directory), key=lambda w: len(w[0]), reverse=True):
            try:
                os.rmdir(sub)
            except OSError:
                pass
    assert not _cgroup_dirs(path), f"cgroup {path} was left behind"


# --- containerd ---------------------------------------------------------------------------------


class Containerd:
    """A containerd with a private root, state and socket; ``ctr`` against it."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.socket = base / "containerd.sock"
        config = base / "config.toml"
        config.write_text(
            "version = 2\n"
            f'root = "{base}/root"\nstate = "{base}/state"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            f'[grpc]\n  address = "{self.socket}"\n'
            f'[ttrpc]\n  address = "{base}/containerd-ttrpc.sock"\n'
            '[debug]\n  address = ""\n[metrics]\n  address = ""\n')
        self.log = open(base / "containerd.log", "w")
        self.process = subprocess.Popen(["containerd", "--config", str(config)], stdout=self.log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self._wait_until_serving()

    def _wait_until_serving(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"containerd exited: {(self.base / 'containerd.log').read_text()}")
            if self.socket.exists() and self.ctr("version").returncode == 0:
                return
            time.sleep(0.1)
        raise AssertionError("containerd did not serve within 20 s")

    def ctr(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ctr", "-a", str(self.socket), "-n", NAMESPACE, *args], capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        _kill_processes_mentioning(str(self.base))
        _unmount_all_under(self.base)


@pytest.fixture
def containerd(tmp_path: Path) -> Iterator[Containerd]:
    if not (shutil.which("containerd") and shutil.which("ctr")):
        pytest.skip("containerd is not installed")
    base = tmp_path / "containerd"
    base.mkdir()
    engine = Containerd(base)
    try:
        yield engine
    finally:
        engine.stop()
    assert not _mounts_under(base), f"containerd left mounts: {_mounts_under(base)}"


def test_containerd_runs_busybox_with_a_volume_through_skiff_oci(
        containerd: Containerd, skiff: object, busybox_image: str, tmp_path: Path) -> None:
    archive = tmp_path / "busybox-oci.tar"
    skiff.ok("save", "-o", str(archive), busybox_image)  # type: ignore[attr-defined]
    imported = containerd.ctr("images", "import", str(archive))
    assert imported.returncode == 0, imported.stderr
    volume = tmp_path / "volume"
    volume.mkdir()
    (volume / "seed").write_text("from the host\n")
    oci_root = tmp_path / "skiff-oci-state"
    cgroup = f"/{CGROUP_PARENT}/ctr-{secrets.token_hex(3)}"
    try:
        result = containerd.ctr(
            "run", "--rm", "--runc-binary", SKIFF_OCI, "--runc-root", str(oci_root), "--cgroup", cgroup,
            "--mount", f"type=bind,src={volume},dst=/data,options=rbind:rw",
            "docker.io/library/busybox:latest", f"skiff-{secrets.token_hex(3)}",
            "sh", "-c", "cat /data/seed; echo from the container > /data/out; exit 7")
    finally:
        _remove_cgroup(cgroup)
    assert (result.returncode, result.stdout) == (7, "from the host\n"), result.stderr
    assert (volume / "out").read_text() == "from the container\n"
    assert containerd.ctr("containers", "ls", "-q").stdout == ""
    assert not [p for p in oci_root.rglob("*") if p.is_file()], "skiff-oci left container state behind"


# --- podman -------------------------------------------------------------------------------------


def test_podman_runs_busybox_with_a_volume_through_skiff_oci(busybox_rootfs: Path, tmp_path: Path) -> None:
    """Podman with its state, storage and cgroups private to the test, and no network.

    Podman adds RLIMIT_NOFILE and RLIMIT_NPROC of 1048576 unless ``default_ulimits`` names them;
    this VM's hard limits are lower and CAP_SYS_RESOURCE is withheld, so both are given within
    them. The image is the busybox rootfs (``--rootfs``): importing an image would write podman's
    global blob-info cache in /var/lib/containers, outside the test's directory.
    """
    if not shutil.which("podman"):
        pytest.skip("podman is not installed")
    import resource

    nofile = min(1024, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    nproc = min(4096, resource.getrlimit(resource.RLIMIT_NPROC)[1])
    base = tmp_path / "podman"
    base.mkdir()
    conf = base / "containers.conf"
    conf.write_text(f'[containers]\ndefault_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
                    '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "none"\n')
    # podman passes --runtime-flag to create and start but not to the delete of its cleanup: a
    # one-line wrapper gives every call the test's private --root.
    oci_root = base / "skiff-oci-state"
    runtime = base / "skiff-oci"
    runtime.write_text(f'#!/bin/sh\nexec {SKIFF_OCI} --root {oci_root} "$@"\n')
    runtime.chmod(0o755)
    rootfs = base / "rootfs"
    shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
    volume = base / "volume"
    volume.mkdir()
    (volume / "seed").write_text("from the host\n")
    cgroup = f"/{CGROUP_PARENT}/podman-{secrets.token_hex(3)}"
    run_root = Path(tempfile.mkdtemp(prefix="skpm-"))  # podman refuses a runroot over 50 characters
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    command = ["podman", "--root", str(base / "storage"), "--runroot", str(run_root), "--tmpdir",
               str(base / "tmp"), "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs",
               "--events-backend", "none", "--runtime", str(runtime),
               "run", "--rm", "--network", "none", "--cgroup-parent", cgroup, "-v", f"{volume}:/data",
               "--rootfs", str(rootfs), "sh", "-c", "cat /data/seed; echo from the container > /data/out; exit 6"]
    try:
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120,
                                stdin=subprocess.DEVNULL)
    finally:
        for directory in (base, run_root):
            _kill_processes_mentioning(str(directory))
            _unmount_all_under(directory)
        shutil.rmtree(run_root)
        _remove_cgroup(cgroup)
    assert (result.returncode, result.stdout) == (6, "from the host\n"), result.stderr
    assert (volume / "out").read_text() == "from the container\n"
    assert not [p for p in oci_root.rglob("*") if p.is_file()], "skiff-oci left container state behind"
    assert not _mounts_under(base)
