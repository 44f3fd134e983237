"""A private dockerd for the tests, and the helpers that leave nothing of an engine behind.

``private_dockerd`` starts Debian's dockerd 20.10 with every state directory, socket, pidfile and
cgroup private to the test and no bridge, iptables or forwarding, and checks when it stops that no
process, mount, host docker path or 'docker' cgroup of it is left. tests/oci/test_engines.py drives
skiff-oci through it; tests/parity compares skiff's command line with Docker's on it.
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
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import CGROUP_PARENT

SKIFF_OCI = shutil.which("skiff-oci") or "/usr/local/bin/skiff-oci"


def mounts_under(prefix: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p == str(prefix) or p.startswith(f"{prefix}/")]


def unmount_all_under(prefix: Path) -> None:
    """An engine killed mid-way may leave its snapshots mounted: lazily unmount, deepest first."""
    for point in sorted(mounts_under(prefix), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


def processes_mentioning(text: str) -> list[int]:
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


def kill_processes_mentioning(text: str) -> list[int]:
    """SIGKILL every process whose command line names ``text``; returns their pids."""
    pids = processes_mentioning(text)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return pids


def cgroup_dirs(path: str) -> list[str]:
    return glob.glob(f"/sys/fs/cgroup/*{path}") + glob.glob(f"/sys/fs/cgroup{path}")


def remove_cgroup(path: str) -> None:
    from skiff import cgroups

    cgroups.open(path).destroy()
    for directory in sorted(cgroup_dirs(path), key=len, reverse=True):  # hierarchies skiff does not manage
        for sub, _, _ in sorted(os.walk(directory), key=lambda w: len(w[0]), reverse=True):
            try:
                os.rmdir(sub)
            except OSError:
                pass
    assert not cgroup_dirs(path), f"cgroup {path} was left behind"


# A daemon's own /run and /opt: what containerd and dockerd keep there whatever their state dirs
# (shim sockets, plugin state, containerd's /opt/containerd) stays private, and goes with the
# mount namespace.
PRIVATE_RUN = ('mount -t tmpfs -o mode=0755 skiff-test-run /run && mount -t tmpfs -o mode=0755 skiff-test-opt /opt '
               '&& exec "$@"')


def terminate(process: subprocess.Popen[bytes], seconds: float) -> None:
    """SIGTERM a daemon, SIGKILL it if it is still there after ``seconds``; reaped either way."""
    process.terminate()
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_until_serving(name: str, process: subprocess.Popen[bytes], log: Path, seconds: float,
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


def host_state(paths: tuple[str, ...]) -> dict[str, list[str] | None]:
    """Each path: its entries (a file: itself), or None when absent."""
    state: dict[str, list[str] | None] = {}
    for path in map(Path, paths):
        if path.is_dir():
            state[str(path)] = sorted(child.name for child in path.iterdir())
        else:
            state[str(path)] = [path.name] if path.exists() else None
    return state


def docker_cgroups() -> set[str]:
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
        wait_until_serving("dockerd", self.process, self.base / "dockerd.log", 30,
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
        return [pid for pid in processes_mentioning(config) if parent_pid(pid) == self.process.pid]

    def container_mounts(self) -> list[str]:
        """Mounts in the daemon's namespace under the test's dirs, but for the data root itself
        (dockerd binds it onto itself to make it shared)."""
        with open(f"/proc/{self.process.pid}/mountinfo") as f:
            points = [line.split()[4] for line in f]
        return [p for p in points if p != str(self.data_root)
                and any(p == str(d) or p.startswith(f"{d}/") for d in (self.base, self.exec_root))]

    def stop(self) -> list[int]:
        """SIGTERM (then SIGKILL) dockerd; kill whatever of its outlived it and return those pids."""
        terminate(self.process, 20)
        self.log.close()
        survivors = kill_processes_mentioning(str(self.exec_root)) + kill_processes_mentioning(str(self.base))
        for directory in (self.base, self.exec_root):
            unmount_all_under(directory)
        return survivors


def parent_pid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def docker_installed() -> bool:
    return DOCKERD.exists() and DOCKER.exists()


NOT_INSTALLED = "Debian's docker.io (/usr/sbin/dockerd, /usr/bin/docker) is not installed"


@contextmanager
def private_dockerd(base: Path) -> Iterator[Dockerd]:
    """A Dockerd under ``base`` (made here), stopped on exit; then nothing of it may remain.

    No process of it, no mount under its directories, no change to the host's default docker
    paths, no 'docker' cgroup; the kernel key limits it raised are put back.
    """
    host_before, cgroups_before = host_state(HOST_DOCKER_PATHS), docker_cgroups()
    key_limits = {path: path.read_text() for path in KEY_LIMITS}
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
        unmount_all_under(exec_root)
        shutil.rmtree(exec_root)
        remove_cgroup(cgroup)
    assert not survivors, f"processes of dockerd outlived it: {survivors}"
    assert not mounts_under(base) and not mounts_under(exec_root), "dockerd left mounts on the host"
    assert host_state(HOST_DOCKER_PATHS) == host_before, "dockerd or docker changed the host's default docker paths"
    assert docker_cgroups() == cgroups_before, "dockerd made a 'docker' cgroup"
