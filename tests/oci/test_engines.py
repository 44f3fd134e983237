"""containerd, podman and dockerd drive skiff-oci through runc's command line.

Each test starts its engine itself, with every state directory, socket and cgroup private to the
test, runs busybox with a volume through skiff-oci, checks its output and exit code, and leaves
nothing behind: no engine processes, mounts, cgroups or state outside its temporary directory.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CGROUP_PARENT
from tests.dockerd import (HOST_CONTAINERD_PATHS, NOT_INSTALLED, PRIVATE_RUN, SKIFF_OCI, Dockerd, cgroup_dirs,
                           docker_installed, host_state, kill_processes_mentioning, mounts_under, private_dockerd,
                           remove_cgroup, terminate, unmount_all_under, wait_until_serving)

NAMESPACE = "skiff-test"


# --- containerd ---------------------------------------------------------------------------------


class Containerd:
    """A containerd with a private root, state, opt dir and socket; ``ctr`` against it.

    containerd 1.6 puts its shims' sockets in /run/containerd/s whatever its state dir, and
    makes /opt/containerd, so it runs in a mount namespace of its own with a tmpfs over /run and
    /opt (as dockerd below); ``ctr run`` gets a fifo dir of the test's.
    """

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
        self.fifo_dir = base / "fifo"
        self.log = open(base / "containerd.log", "w")
        self.process = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", PRIVATE_RUN, "sh",
             "containerd", "--config", str(config)],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self._wait_until_serving()

    def _wait_until_serving(self) -> None:
        wait_until_serving("containerd", self.process, self.base / "containerd.log", 20,
                            lambda: self.socket.exists() and self.ctr("version").returncode == 0)

    def ctr(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ctr", "-a", str(self.socket), "-n", NAMESPACE, *args], capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def stop(self) -> None:
        terminate(self.process, 10)
        self.log.close()
        kill_processes_mentioning(str(self.base))
        unmount_all_under(self.base)


@pytest.fixture
def containerd(tmp_path: Path) -> Iterator[Containerd]:
    if not (shutil.which("containerd") and shutil.which("ctr")):
        pytest.skip("containerd is not installed")
    base = tmp_path / "containerd"
    base.mkdir()
    host_before = host_state(HOST_CONTAINERD_PATHS)
    engine = Containerd(base)
    try:
        yield engine
    finally:
        engine.stop()
    assert not mounts_under(base), f"containerd left mounts: {mounts_under(base)}"
    assert host_state(HOST_CONTAINERD_PATHS) == host_before, "containerd or ctr changed the host's default paths"


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
            "run", "--rm", "--fifo-dir", str(containerd.fifo_dir), "--runc-binary", SKIFF_OCI,
            "--runc-root", str(oci_root), "--cgroup", cgroup,
            "--mount", f"type=bind,src={volume},dst=/data,options=rbind:rw",
            "docker.io/library/busybox:latest", f"skiff-{secrets.token_hex(3)}",
            "sh", "-c", "cat /data/seed; echo from the container > /data/out; exit 7")
    finally:
        remove_cgroup(cgroup)
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
            kill_processes_mentioning(str(directory))
            unmount_all_under(directory)
        shutil.rmtree(run_root)
        remove_cgroup(cgroup)
    assert (result.returncode, result.stdout) == (6, "from the host\n"), result.stderr
    assert (volume / "out").read_text() == "from the container\n"
    assert not [p for p in oci_root.rglob("*") if p.is_file()], "skiff-oci left container state behind"
    assert not mounts_under(base)


# --- dockerd ------------------------------------------------------------------------------------


@pytest.fixture
def dockerd(tmp_path: Path) -> Iterator[Dockerd]:
    if not docker_installed():
        pytest.skip(NOT_INSTALLED)
    with private_dockerd(tmp_path / "docker") as engine:
        yield engine


def test_dockerd_runs_busybox_with_a_volume_through_skiff_oci(
        dockerd: Dockerd, skiff: object, busybox_image: str, tmp_path: Path) -> None:
    """``docker run --runtime skiff``: dockerd's containerd starts its runc shim (io.containerd.runc.v2)
    with skiff-oci as the runc binary, which gets ``--root <exec-root>/runtime-runc/moby --log
    <bundle>/log.json --log-format json`` and then create (--bundle, --pid-file), start, kill and
    delete (delete --force again when the shim cleans up).
    """
    archive = tmp_path / "busybox-docker.tar"
    skiff.ok("save", "-o", str(archive), busybox_image)  # type: ignore[attr-defined]
    loaded = dockerd.docker("load", "-i", str(archive))
    assert "Loaded image: busybox:latest" in loaded.stdout, loaded.stderr
    assert int(dockerd.pidfile.read_text()) == dockerd.process.pid
    assert len(dockerd.managed_containerd()) == 1, "dockerd did not start its own containerd"
    volume = f"skiff-{secrets.token_hex(3)}"
    written, first = dockerd.run("-v", f"{volume}:/data", "busybox",
                                 "sh", "-c", "echo hi > /data/f; cat /data/f; exit 7")
    assert (written.returncode, written.stdout) == (7, "hi\n"), written.stderr
    read, second = dockerd.run("-v", f"{volume}:/data", "busybox", "cat", "/data/f")
    assert (read.returncode, read.stdout) == (0, "hi\n"), read.stderr
    assert (dockerd.data_root / "volumes" / volume / "_data" / "f").read_text() == "hi\n"

    # Running, the container is skiff-oci's (its state, in the shim's root) and in the test's cgroup;
    # docker kill reaches it through skiff-oci kill.
    started, third = dockerd.run("-d", "busybox", "sleep", "60")
    assert started.returncode == 0, started.stderr
    state = subprocess.run([SKIFF_OCI, "--root", str(dockerd.exec_root / "runtime-runc" / "moby"), "state", third],
                           capture_output=True, text=True, timeout=30)
    assert state.returncode == 0, state.stderr
    running = json.loads(state.stdout)
    assert running["status"] == "running"
    with open(f"/proc/{running['pid']}/cgroup") as f:
        assert f"{dockerd.cgroup_parent}/{third}" in f.read()
    assert [p for p in dockerd.container_mounts() if p.endswith("/merged")], "its rootfs is not seen mounted"
    killed = dockerd.docker("kill", third)
    assert killed.returncode == 0, killed.stderr
    deadline = time.monotonic() + 20
    while dockerd.docker("ps", "-aq").stdout and time.monotonic() < deadline:
        time.sleep(0.1)

    assert dockerd.docker("ps", "-aq").stdout == ""
    assert not dockerd.container_mounts(), f"containers left mounts: {dockerd.container_mounts()}"
    assert not [p for p in (dockerd.exec_root / "runtime-runc").rglob("*") if p.is_file()], \
        "skiff-oci left container state behind"
    for container in (first, second, third):
        assert container and not cgroup_dirs(f"{dockerd.cgroup_parent}/{container}"), \
            f"container {container} left its cgroup"
