"""containerd, podman and dockerd drive skiff-oci through runc's command line.

Each test starts its engine itself, with every state directory, socket and cgroup private to the
test, runs busybox with a volume through skiff-oci, checks its output and exit code, and leaves
nothing behind: no engine processes, mounts, cgroups or state outside its temporary directory.
"""

from __future__ import annotations

import glob
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
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


def _processes_mentioning(text: str) -> list[int]:
    """Shims and conmons outlive their engine; ours are the ones whose command line names our temp dir."""
    pids = []
    for cmdline in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(cmdline, "rb") as f:
                if text.encode() in f.read():
                    pids.append(int(cmdline.split("/")[2]))
        except (OSError, ValueError):
            continue
    return [pid for pid in pids if pid != os.getpid()]


def _kill_processes_mentioning(text: str) -> list[int]:
    """SIGKILL every process whose command line names ``text``; returns their pids."""
    pids = _processes_mentioning(text)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return pids


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


# A daemon's own /run and /opt: what containerd and dockerd keep there whatever their state dirs
# (shim sockets, plugin state, containerd's /opt/containerd) stays private, and goes with the
# mount namespace.
PRIVATE_RUN = ('mount -t tmpfs -o mode=0755 skiff-test-run /run && mount -t tmpfs -o mode=0755 skiff-test-opt /opt '
               '&& exec "$@"')


def _terminate(process: subprocess.Popen[bytes], seconds: float) -> None:
    """SIGTERM a daemon, SIGKILL it if it is still there after ``seconds``; reaped either way."""
    process.terminate()
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_until_serving(name: str, process: subprocess.Popen[bytes], log: Path, seconds: float,
                        serving: Callable[[], bool]) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{name} exited: {log.read_text()[-3000:]}")
        if serving():
            return
        time.sleep(0.1)
    raise AssertionError(f"{name} did not serve within {seconds:g} s")


HOST_CONTAINERD_PATHS = ("/run/containerd", "/opt/containerd", "/var/lib/containerd")


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
        _wait_until_serving("containerd", self.process, self.base / "containerd.log", 20,
                            lambda: self.socket.exists() and self.ctr("version").returncode == 0)

    def ctr(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ctr", "-a", str(self.socket), "-n", NAMESPACE, *args], capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def stop(self) -> None:
        _terminate(self.process, 10)
        self.log.close()
        _kill_processes_mentioning(str(self.base))
        _unmount_all_under(self.base)


@pytest.fixture
def containerd(tmp_path: Path) -> Iterator[Containerd]:
    if not (shutil.which("containerd") and shutil.which("ctr")):
        pytest.skip("containerd is not installed")
    base = tmp_path / "containerd"
    base.mkdir()
    host_before = _host_state(HOST_CONTAINERD_PATHS)
    engine = Containerd(base)
    try:
        yield engine
    finally:
        engine.stop()
    assert not _mounts_under(base), f"containerd left mounts: {_mounts_under(base)}"
    assert _host_state(HOST_CONTAINERD_PATHS) == host_before, "containerd or ctr changed the host's default paths"


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


# --- dockerd ------------------------------------------------------------------------------------

# Debian's docker.io, named in full: another docker client may come first on PATH.
DOCKERD = Path("/usr/sbin/dockerd")
DOCKER = Path("/usr/bin/docker")
# dockerd raises these host-wide at start (to 1000000 keys, 25 bytes each): the test puts them back.
KEY_LIMITS = (Path("/proc/sys/kernel/keys/root_maxkeys"), Path("/proc/sys/kernel/keys/root_maxbytes"))
# What a dockerd or docker client keeps on the host by default: the test's must leave all of it as it was.
HOST_DOCKER_PATHS = ("/var/lib/docker", "/run/docker", "/var/run/docker.sock", "/etc/docker", "/root/.docker",
                     *HOST_CONTAINERD_PATHS)
# The client's own settings could point it at another daemon.
DOCKER_CLIENT_ENV = ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_API_VERSION")


def _host_state(paths: tuple[str, ...]) -> dict[str, list[str] | None]:
    """Each path: its entries (a file: itself), or None when absent."""
    state: dict[str, list[str] | None] = {}
    for path in map(Path, paths):
        if path.is_dir():
            state[str(path)] = sorted(child.name for child in path.iterdir())
        else:
            state[str(path)] = [path.name] if path.exists() else None
    return state


def _docker_cgroups() -> set[str]:
    """dockerd's default parent cgroup, in every hierarchy: the test's daemon must not make it."""
    return set(glob.glob("/sys/fs/cgroup/*/docker")) | set(glob.glob("/sys/fs/cgroup/docker"))


class Dockerd:
    """A dockerd whose data root, exec root, socket, pidfile, daemon.json, trust key and cgroup
    parent are the test's, with no bridge, iptables, forwarding or userland proxy.

    dockerd 20.10 keeps its plugins' state in /run/docker/plugins whatever its exec root (and
    unmounts everything below it at shutdown), and containerd's shims put their sockets in
    /run/containerd/s. So the daemon runs in a mount namespace of its own with a tmpfs over
    /run: those stay private, and the mounts it and its containers make (overlays, shm, netns)
    go when its last process exits. The containerd it starts itself (no ``--containerd``) lives
    under its exec root.
    """

    def __init__(self, base: Path, exec_root: Path, cgroup_parent: str) -> None:
        self.base, self.exec_root, self.cgroup_parent = base, exec_root, cgroup_parent
        self.data_root = base / "data"
        self.socket = exec_root / "docker.sock"
        self.pidfile = base / "dockerd.pid"
        config = base / "daemon.json"
        config.write_text(json.dumps({"runtimes": {"skiff": {"path": SKIFF_OCI}},
                                      "deprecated-key-path": str(base / "key.json")}))
        self.env = {**os.environ, "DOCKER_HOST": f"unix://{self.socket}", "DOCKER_CONFIG": str(base / "client"),
                    # an image that is not loaded must never be pulled from the internet
                    "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
                    "NO_PROXY": "localhost,127.0.0.1,::1"}
        for name in (*DOCKER_CLIENT_ENV, "http_proxy", "https_proxy", "no_proxy", "ALL_PROXY", "all_proxy"):
            self.env.pop(name, None)
        daemon = [str(DOCKERD), "--data-root", str(self.data_root), "--exec-root", str(exec_root),
                  "-H", f"unix://{self.socket}", "--pidfile", str(self.pidfile), "--config-file", str(config),
                  "--storage-driver", "overlay2", "--cgroup-parent", cgroup_parent,
                  "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
                  "--ip-forward=false", "--userland-proxy=false"]
        self.log = open(base / "dockerd.log", "w")
        self.process = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", PRIVATE_RUN, "sh", *daemon],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            self._wait_until_serving()
        except BaseException:
            self.stop()
            raise

    def _wait_until_serving(self) -> None:
        _wait_until_serving("dockerd", self.process, self.base / "dockerd.log", 30,
                            lambda: self.socket.exists() and self.docker("version").returncode == 0)

    def docker(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(DOCKER), *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def run(self, *args: str) -> tuple[subprocess.CompletedProcess[str], str]:
        """``docker run --runtime skiff`` of busybox, removed when it exits; returns the result and its id."""
        cidfile = self.base / f"cid-{secrets.token_hex(3)}"
        result = self.docker("run", "--runtime", "skiff", "--rm", "--pull", "never", "--network", "none",
                             "--cidfile", str(cidfile), *args)
        return result, cidfile.read_text() if cidfile.exists() else ""

    def managed_containerd(self) -> list[int]:
        """The containerd processes dockerd started under its exec root."""
        config = f"{self.exec_root}/containerd/containerd.toml"
        return [pid for pid in _processes_mentioning(config) if _parent_pid(pid) == self.process.pid]

    def container_mounts(self) -> list[str]:
        """Mounts in the daemon's namespace under the test's dirs, but for the data root itself
        (dockerd binds it onto itself to make it shared)."""
        with open(f"/proc/{self.process.pid}/mountinfo") as f:
            points = [line.split()[4] for line in f]
        return [p for p in points if p != str(self.data_root)
                and any(p == str(d) or p.startswith(f"{d}/") for d in (self.base, self.exec_root))]

    def stop(self) -> list[int]:
        """SIGTERM (then SIGKILL) dockerd; kill whatever of its outlived it and return those pids."""
        _terminate(self.process, 20)
        self.log.close()
        survivors = _kill_processes_mentioning(str(self.exec_root)) + _kill_processes_mentioning(str(self.base))
        for directory in (self.base, self.exec_root):
            _unmount_all_under(directory)
        return survivors


def _parent_pid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


@pytest.fixture
def dockerd(tmp_path: Path) -> Iterator[Dockerd]:
    if not (DOCKERD.exists() and DOCKER.exists()):
        pytest.skip("Debian's docker.io (/usr/sbin/dockerd, /usr/bin/docker) is not installed")
    host_before, cgroups_before = _host_state(HOST_DOCKER_PATHS), _docker_cgroups()
    key_limits = {path: path.read_text() for path in KEY_LIMITS}
    base = tmp_path / "docker"
    base.mkdir()
    exec_root = Path(tempfile.mkdtemp(prefix="skdk-"))  # unix sockets below it: a path of 108 bytes at most
    cgroup = f"/{CGROUP_PARENT}/docker-{secrets.token_hex(3)}"
    survivors: list[int] = []
    try:
        engine = Dockerd(base, exec_root, cgroup)
        try:
            yield engine
        finally:
            survivors = engine.stop()
    finally:
        for path, value in key_limits.items():
            if path.read_text() != value:
                path.write_text(value)
        _unmount_all_under(exec_root)
        shutil.rmtree(exec_root)
        _remove_cgroup(cgroup)
    assert not survivors, f"processes of dockerd outlived it: {survivors}"
    assert not _mounts_under(base) and not _mounts_under(exec_root), "dockerd left mounts on the host"
    assert _host_state(HOST_DOCKER_PATHS) == host_before, "dockerd or docker changed the host's default docker paths"
    assert _docker_cgroups() == cgroups_before, "dockerd made a 'docker' cgroup"


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
        assert container and not _cgroup_dirs(f"{dockerd.cgroup_parent}/{container}"), \
            f"container {container} left its cgroup"
