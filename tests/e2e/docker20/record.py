#!/usr/bin/env python3
"""Record Docker 20.10's inspect documents into this directory (run by hand, as root).

    python3 tests/e2e/docker20/record.py

A private dockerd (own data root, exec root, socket, cgroup parent; ``--bridge none
--iptables=false``) runs in a mount namespace *and a network namespace* of its own, so the
user networks it makes (bridges) exist only there and the host's network and iptables are
never touched; everything goes when it exits. Ids, times and temporary paths are replaced by
placeholders of the same type, keys in Docker's order: the tests compare shapes (keys, their order
and value types), not values.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from full_container import full_container_args  # run as a script: this directory is on sys.path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
DOCKERD = "/usr/sbin/dockerd"
DOCKER = "/usr/bin/docker"  # the 20.10 client (another one may be first on PATH)
PRIVATE = ("ip link set lo up && mount -t tmpfs -o mode=0755 p13-run /run && "
           "mount -t tmpfs -o mode=0755 p13-opt /opt && exec \"$@\"")


class Daemon:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.exec_root = base / "x"
        self.socket = self.exec_root / "docker.sock"
        self.cgroup_parent = f"p13-record-{os.getpid()}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        self.env.update(DOCKER_HOST=f"unix://{self.socket}", DOCKER_CONFIG=str(base / "client"),
                        HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9")
        (base / "daemon.json").write_text(json.dumps({"deprecated-key-path": str(base / "key.json")}))
        daemon = [DOCKERD, "--data-root", str(base / "data"), "--exec-root", str(self.exec_root),
                  "-H", f"unix://{self.socket}", "--pidfile", str(base / "dockerd.pid"),
                  "--config-file", str(base / "daemon.json"), "--storage-driver", "overlay2",
                  "--cgroup-parent", self.cgroup_parent, "--bridge=none", "--iptables=false",
                  "--ip6tables=false", "--ip-masq=false", "--ip-forward=false", "--userland-proxy=false"]
        self.log = open(base / "dockerd.log", "w")
        self.process = subprocess.Popen(
            ["unshare", "--mount", "--net", "--propagation", "private", "--", "sh", "-c", PRIVATE, "sh", *daemon],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not (self.socket.exists() and self.docker("version", check=False).returncode == 0):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("dockerd did not start:\n" + (base / "dockerd.log").read_text()[-3000:])
            time.sleep(0.2)

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([DOCKER, *args], env=self.env, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise SystemExit(f"docker {' '.join(args)}: {result.stderr.strip()}")
        return result

    def inspect(self, *args: str) -> dict[str, Any]:
        return json.loads(self.docker(*args).stdout)[0]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        for root in ("/sys/fs/cgroup", *[str(p) for p in Path("/sys/fs/cgroup").iterdir()]):
            path = Path(root) / self.cgroup_parent
            for sub in sorted(path.glob("**/"), key=lambda p: len(str(p)), reverse=True) if path.is_dir() else []:
                with contextlib.suppress(OSError):  # a controller mounted twice (cpu,cpuacct) lists it twice
                    os.rmdir(sub)


def scrub(value: Any, base: str) -> Any:
    """Ids, times, addresses of this run and temporary paths replaced by stable placeholders."""
    if isinstance(value, dict):
        return {scrub(k, base): scrub(v, base) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, base) for v in value]
    if isinstance(value, str):
        value = value.replace(base, "/BASE")
        value = re.sub(r"[0-9a-f]{64}", "<id>", value)
        value = re.sub(r"\b[0-9a-f]{12}\b", "<short-id>", value)
        value = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", "<time>", value)
        return value
    return value


def record(daemon: Daemon, base: Path) -> dict[str, Any]:
    tar = base / "busybox.tar"
    subprocess.run([str(REPO / "scripts" / "busybox-rootfs"), str(tar)], check=True)
    d = daemon.docker
    d("import", "--change", 'CMD ["sh"]', str(tar), "busybox:latest")
    d("volume", "create", "plain")
    d("volume", "create", "--label", "a=b", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", "o=size=1m",
      "withopts")
    d("network", "create", "--subnet", "10.213.0.0/24", "given")
    d("network", "create", "--subnet", "10.214.0.0/24", "--gateway", "10.214.0.254", "--label", "x=y",
      "--internal", "withgw")
    d("network", "create", "chosen")
    bind = base / "bind"
    bind.mkdir()
    d("run", *full_container_args(bind, blkio_weight=True))
    d("run", "-d", "--name", "onhost", "--network", "host", "busybox", "sleep", "1000")
    d("run", "-d", "--name", "onuser", "--network", "given", "-p", "8080:80", "--expose", "81",
      "busybox", "sleep", "1000")
    d("network", "connect", "chosen", "onuser")
    d("create", "--name", "created", "busybox")
    d("run", "--name", "exited", "--network", "none", "busybox", "true")
    docs = {
        "container_full": daemon.inspect("inspect", "--size", "full"),
        "container_host": daemon.inspect("inspect", "onhost"),
        "container_user_network": daemon.inspect("inspect", "onuser"),
        "container_created": daemon.inspect("inspect", "created"),
        "container_exited": daemon.inspect("inspect", "exited"),
        "volume_plain": daemon.inspect("volume", "inspect", "plain"),
        "volume_options": daemon.inspect("volume", "inspect", "withopts"),
        "network_given_subnet": daemon.inspect("network", "inspect", "given"),
        "network_given_gateway": daemon.inspect("network", "inspect", "withgw"),
        "network_chosen_subnet": daemon.inspect("network", "inspect", "chosen"),
        "network_none": daemon.inspect("network", "inspect", "none"),
        "network_host": daemon.inspect("network", "inspect", "host"),
        "image": daemon.inspect("image", "inspect", "busybox:latest"),
    }
    d("rm", "-f", "full", "onhost", "onuser", "created", "exited")
    return docs


def main() -> int:
    if not (shutil.which(DOCKERD) and Path(DOCKER).exists()):
        print("needs Debian's docker.io (dockerd 20.10)", file=sys.stderr)
        return 1
    base = Path(tempfile.mkdtemp(prefix="p13rec-"))
    daemon = Daemon(base)
    try:
        version = daemon.docker("version", "--format", "{{.Server.Version}} {{.Server.APIVersion}}").stdout.strip()
        docs = record(daemon, base)
    finally:
        daemon.stop()
        subprocess.run(["umount", "-R", str(base)], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
    for name, doc in docs.items():
        (HERE / f"{name}.json").write_text(json.dumps(scrub(doc, str(base)), indent=4) + "\n")
    print(f"recorded {len(docs)} documents from dockerd {version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
