"""One Kubernetes node without a kubelet: a private containerd with its CRI plugin, driven over gRPC.

``CriNode`` starts containerd 1.6 with everything private to a temporary directory: root, state,
gRPC and ttrpc sockets, CNI configuration and IPAM state, and the two runtime handlers compared
here: ``runc`` (BinaryName /usr/sbin/runc) and ``skiff`` (BinaryName skiff-oci), each with its own
state root. containerd keeps shim sockets in /run/containerd/s and plugin state in /opt whatever
its configured paths, and the CRI plugin's network namespaces go to /var/run/netns and go-cni's
result cache to /var/lib/cni: so it runs in a mount namespace of its own with tmpfs over /run, /opt
and /var/lib, which goes with it. The pod network is a CNI bridge on a /24 that no host route
overlaps, with neither IP masquerade nor a gateway (no iptables rule, no ip_forward change). The
pause and busybox images come from the tests' local registry (docker-registry on loopback, the
images built offline from the host's busybox-static). ``stop`` removes every pod left, stops
containerd, and checks that no process, mount, bridge, veth or cgroup of it is left.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import CGROUP_PARENT
from tests.dockerd import (HOST_CONTAINERD_PATHS, SKIFF_OCI, cgroup_dirs, host_state, kill_processes_mentioning,
                           mounts_under, remove_cgroup, terminate, unmount_all_under,
                           wait_until_serving)

RUNC = "/usr/sbin/runc"
CNI_BIN_DIR = "/usr/lib/cni"
HANDLERS = ("runc", "skiff")
TIMEOUT = 60  # seconds for one CRI call: a call that hangs fails the test instead of hanging it
# A hybrid host (v1 controllers, an empty v2 hierarchy at /sys/fs/cgroup/unified) is a v1 one here.
CGROUP_V2 = not Path("/sys/fs/cgroup/memory").is_dir()
# The kubelet's default masked and read-only paths (pkg/securitycontext), sent with every container
# that is not privileged.
MASKED_PATHS = ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
# The daemon's own /run, /opt and /var/lib (see the module's docstring); the host's cgroup
# hierarchies, /tmp and the CNI plugins stay visible.
PRIVATE_DIRS = ("mount -t tmpfs -o mode=0755 skiff-cri-run /run && mount -t tmpfs -o mode=0755 skiff-cri-opt /opt "
                '&& mount -t tmpfs -o mode=0755 skiff-cri-var-lib /var/lib && exec "$@"')


def containerd_installed() -> bool:
    return bool(shutil.which("containerd"))


@dataclass
class Images:
    """References in the local registry: the sandbox (pause) image and busybox."""
    pause: str
    busybox: str


def push_images(registry_host: str, busybox_tar: Path, work: Path) -> Images:
    """busybox (CMD sh) and a pause image (the same layer, ``sleep`` until killed) pushed as OCI."""
    from tests.registry.images import Layout, push

    layout = Layout(work / "oci")
    layer = busybox_tar.read_bytes()
    busybox, _ = layout.image([layer])
    layout.tag("busybox", [busybox])
    # containerd's StopPodSandbox kills the sandbox's process with SIGKILL: a sleep is a pause.
    pause, _ = layout.image([layer], cmd=["sleep", "2147483647"])
    layout.tag("pause", [pause])
    images = Images(f"{registry_host}/skiff-test/pause:1", f"{registry_host}/skiff-test/busybox:1")
    push(layout.path, "pause", images.pause, "--dest-tls-verify=false")
    push(layout.path, "busybox", images.busybox, "--dest-tls-verify=false")
    return images


def free_subnet() -> str:
    from tests.network.conftest import free_subnet as free

    return free("10.232")


class CriNode:
    """containerd with the CRI plugin and the ``runc`` and ``skiff`` handlers; ``runtime`` and
    ``image_service`` are the CRI v1 gRPC stubs the kubelet uses, ``api`` their messages."""

    def __init__(self, base: Path, registry_host: str, images: Images, skiff_oci: str = SKIFF_OCI,
                 cgroup_root: str = CGROUP_PARENT) -> None:
        from cri_api.v1 import api_pb2, api_pb2_grpc
        import grpc

        if not Path(CNI_BIN_DIR, "bridge").exists():
            raise AssertionError(f"no CNI bridge plugin in {CNI_BIN_DIR}: install containernetworking-plugins "
                                 "(scripts/setup does)")
        self.api = api_pb2
        self.base = base
        self.images_ref = images
        self.tag = secrets.token_hex(3)
        self.bridge = f"skcri{self.tag}"
        self.subnet = free_subnet()
        self.cgroup_parent = f"/{cgroup_root}/cri-{self.tag}"
        self.socket = base / "containerd.sock"
        self.logs = base / "pod-logs"
        self.logs.mkdir(parents=True)
        self._write_cni_config()
        config = base / "config.toml"
        config.write_text(self._config(registry_host, images.pause, skiff_oci))
        self.host_before = host_state(HOST_CONTAINERD_PATHS)
        self.log = open(base / "containerd.log", "w")
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root"}
        self.process = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", PRIVATE_DIRS, "sh",
             "containerd", "--config", str(config)],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        self.channel = grpc.insecure_channel(f"unix://{self.socket}")
        # the generated stubs have no annotations
        self.runtime = api_pb2_grpc.RuntimeServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.image_service = api_pb2_grpc.ImageServiceStub(self.channel)  # type: ignore[no-untyped-call]
        try:
            wait_until_serving("containerd", self.process, base / "containerd.log", 30, self._network_ready)
        except BaseException:
            self.stop()
            raise

    # --- configuration --------------------------------------------------------------------

    def _config(self, registry_host: str, pause: str, skiff_oci: str) -> str:
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        runtimes = "\n".join(
            f'[{cri}.containerd.runtimes.{name}]\n  runtime_type = "io.containerd.runc.v2"\n'
            f'[{cri}.containerd.runtimes.{name}.options]\n  BinaryName = "{binary}"\n'
            f'  Root = "{self.base}/{name}-state"\n  SystemdCgroup = false\n'
            for name, binary in (("runc", RUNC), ("skiff", skiff_oci)))
        return (
            "version = 2\n"
            f'root = "{self.base}/root"\nstate = "{self.base}/state"\n'
            f'[grpc]\n  address = "{self.socket}"\n'
            f'[ttrpc]\n  address = "{self.base}/containerd-ttrpc.sock"\n'
            '[debug]\n  address = ""\n[metrics]\n  address = ""\n'
            f'[{cri}]\n  sandbox_image = "{pause}"\n  disable_apparmor = true\n  enable_selinux = false\n'
            # this VM withholds CAP_SYS_RESOURCE: no oom_score_adj below containerd's own (-998 for pods)
            '  stats_collect_period = 1\n  restrict_oom_score_adj = true\n'
            f'[{cri}.containerd]\n  default_runtime_name = "runc"\n  snapshotter = "overlayfs"\n'
            f"{runtimes}"
            f'[{cri}.cni]\n  bin_dir = "{CNI_BIN_DIR}"\n  conf_dir = "{self.base}/net.d"\n  max_conf_num = 1\n'
            f'[{cri}.registry.mirrors."{registry_host}"]\n  endpoint = ["http://{registry_host}"]\n')

    def _write_cni_config(self) -> None:
        """A bridge of the test's own, no gateway and no masquerade: nothing in iptables, no forwarding."""
        conf_dir = self.base / "net.d"
        conf_dir.mkdir()
        network = {
            "cniVersion": "0.4.0", "name": f"skiff-cri-{self.tag}",
            "plugins": [{"type": "bridge", "bridge": self.bridge, "isGateway": False, "ipMasq": False,
                         "ipam": {"type": "host-local", "ranges": [[{"subnet": self.subnet}]],
                                  "dataDir": str(self.base / "cni-ipam")}}]}
        (conf_dir / "10-skiff-cri.conflist").write_text(json.dumps(network))

    def _network_ready(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            status = self.runtime.Status(self.api.StatusRequest(), timeout=2)
        except Exception:
            return False
        return all(c.status for c in status.status.conditions)

    # --- pods ------------------------------------------------------------------------------

    def pod_config(self, name: str, *, network: int = 0, pid: int = 1, ipc: int = 0, privileged: bool = False,
                   run_as_user: int | None = None, sysctls: dict[str, str] | None = None, dns: Any = None) -> Any:
        """A PodSandboxConfig as the kubelet writes it: metadata, log directory, cgroup parent, the
        pod's namespaces (network POD or NODE; pid CONTAINER, or POD for shareProcessNamespace)."""
        api = self.api
        uid = secrets.token_hex(8)
        log_directory = self.logs / f"{name}_{uid}"
        log_directory.mkdir()
        security = api.LinuxSandboxSecurityContext(
            namespace_options=api.NamespaceOption(network=network, pid=pid, ipc=ipc), privileged=privileged)
        if run_as_user is not None:
            security.run_as_user.value = run_as_user
        return api.PodSandboxConfig(
            metadata=api.PodSandboxMetadata(name=name, uid=uid, namespace="default", attempt=0),
            # the kubelet sends no hostname for a pod on the host's network (it keeps the host's UTS)
            hostname="" if network == api.NODE else name, log_directory=str(log_directory), dns_config=dns,
            labels={"io.kubernetes.pod.name": name},
            linux=api.LinuxPodSandboxConfig(cgroup_parent=f"{self.cgroup_parent}/pod{uid}",
                                            security_context=security, sysctls=sysctls or {}))

    def run_pod(self, config: Any, handler: str) -> str:
        request = self.api.RunPodSandboxRequest(config=config, runtime_handler=handler)
        return str(self.runtime.RunPodSandbox(request, timeout=TIMEOUT).pod_sandbox_id)

    def pull(self, image: str, pod: Any) -> str:
        request = self.api.PullImageRequest(image=self.api.ImageSpec(image=image), sandbox_config=pod)
        return str(self.image_service.PullImage(request, timeout=TIMEOUT).image_ref)

    def container_config(self, name: str, command: list[str], *, mounts: list[Any] | None = None,
                         envs: dict[str, str] | None = None, working_dir: str = "", tty: bool = False,
                         **linux: Any) -> Any:
        """A ContainerConfig with the kubelet's log path (NAME/0.log) and the given Linux settings."""
        api = self.api
        return api.ContainerConfig(
            metadata=api.ContainerMetadata(name=name, attempt=0), image=api.ImageSpec(image=self.images_ref.busybox),
            command=command, log_path=f"{name}/0.log", labels={"io.kubernetes.container.name": name},
            mounts=mounts or [], envs=[api.KeyValue(key=k, value=v) for k, v in (envs or {}).items()],
            working_dir=working_dir, tty=tty, stdin=tty, linux=api.LinuxContainerConfig(**linux))

    def create(self, pod_id: str, pod: Any, config: Any) -> str:
        Path(pod.log_directory, config.metadata.name).mkdir(exist_ok=True)  # the kubelet makes it
        context = config.linux.security_context
        if not context.HasField("namespace_options"):  # the kubelet gives each container the pod's
            context.namespace_options.CopyFrom(pod.linux.security_context.namespace_options)
        if not context.privileged and not context.masked_paths:  # and its default masks
            context.masked_paths.extend(MASKED_PATHS)
            context.readonly_paths.extend(READONLY_PATHS)
        request = self.api.CreateContainerRequest(pod_sandbox_id=pod_id, config=config, sandbox_config=pod)
        return str(self.runtime.CreateContainer(request, timeout=TIMEOUT).container_id)

    def start(self, container_id: str) -> None:
        self.runtime.StartContainer(self.api.StartContainerRequest(container_id=container_id), timeout=TIMEOUT)

    def status(self, container_id: str) -> Any:
        request = self.api.ContainerStatusRequest(container_id=container_id)
        return self.runtime.ContainerStatus(request, timeout=TIMEOUT).status

    def wait_exited(self, container_id: str, seconds: float = 30) -> Any:
        deadline = time.monotonic() + seconds
        while (status := self.status(container_id)).state != self.api.CONTAINER_EXITED:
            if time.monotonic() > deadline:
                raise AssertionError(f"container {container_id} still {status.state} after {seconds:g} s")
            time.sleep(0.1)
        return status

    def exec_sync(self, container_id: str, command: list[str], timeout: int = 20) -> Any:
        request = self.api.ExecSyncRequest(container_id=container_id, cmd=command, timeout=timeout)
        return self.runtime.ExecSync(request, timeout=timeout + TIMEOUT)

    def stop_container(self, container_id: str, timeout: int = 2) -> None:
        request = self.api.StopContainerRequest(container_id=container_id, timeout=timeout)
        self.runtime.StopContainer(request, timeout=TIMEOUT)

    def remove_container(self, container_id: str) -> None:
        self.runtime.RemoveContainer(self.api.RemoveContainerRequest(container_id=container_id), timeout=TIMEOUT)

    def stop_pod(self, pod_id: str) -> None:
        self.runtime.StopPodSandbox(self.api.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=TIMEOUT)

    def remove_pod(self, pod_id: str) -> None:
        self.runtime.RemovePodSandbox(self.api.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=TIMEOUT)

    def pod_status(self, pod_id: str) -> Any:
        request = self.api.PodSandboxStatusRequest(pod_sandbox_id=pod_id)
        return self.runtime.PodSandboxStatus(request, timeout=TIMEOUT).status

    def pod_ids(self) -> list[str]:
        return [p.id for p in self.runtime.ListPodSandbox(self.api.ListPodSandboxRequest(), timeout=TIMEOUT).items]

    def container_ids(self, pod_id: str | None = None) -> list[str]:
        flt = self.api.ContainerFilter(pod_sandbox_id=pod_id) if pod_id else None
        request = self.api.ListContainersRequest(filter=flt)
        return [c.id for c in self.runtime.ListContainers(request, timeout=TIMEOUT).containers]

    def remove_everything(self) -> None:
        """Stop and remove every pod: its containers go with it (containerd removes them)."""
        for pod_id in self.pod_ids():
            self.stop_pod(pod_id)
            self.remove_pod(pod_id)

    @contextmanager
    def pod(self, name: str, handler: str, **options: Any) -> Iterator[tuple[str, Any]]:
        """A running pod sandbox, stopped and removed afterwards whatever happened inside."""
        config = self.pod_config(name, **options)
        pod_id = self.run_pod(config, handler)
        try:
            yield pod_id, config
        finally:
            self.stop_pod(pod_id)
            self.remove_pod(pod_id)

    # --- host views --------------------------------------------------------------------------

    def bridge_ports(self) -> list[str]:
        out = subprocess.run(["ip", "-o", "link", "show", "master", self.bridge], capture_output=True, text=True)
        return [line.split(":")[1].strip().split("@")[0] for line in out.stdout.splitlines()]

    def firewall_rules(self) -> list[str]:
        """iptables or nftables rules naming the pod network (the bridge plugin's ipMasq would add some)."""
        dumps = [subprocess.run(command, capture_output=True, text=True).stdout
                 for command in (["iptables-save"], ["nft", "list", "ruleset"])]
        network = self.subnet.split("/")[0].rsplit(".", 1)[0] + "."
        return [line for dump in dumps for line in dump.splitlines() if self.bridge in line or network in line]

    def cgroup_of(self, pod: Any, container_id: str, controller: str) -> Path:
        """A container's cgroup directory (cgroupfs driver: PARENT/ID), in the controller's v1
        hierarchy or in the v2 one."""
        hierarchy = Path("/sys/fs/cgroup") if CGROUP_V2 else Path("/sys/fs/cgroup", controller)
        return hierarchy / str(pod.linux.cgroup_parent).lstrip("/") / container_id

    # --- teardown ------------------------------------------------------------------------------

    def stop(self) -> list[str]:
        """Stop containerd and remove what it and its pods made; returns what had been left."""
        left: list[str] = []
        if self.process.poll() is None:
            try:
                self.remove_everything()
            except Exception as error:  # a broken daemon: the kills and removals below still run
                left.append(f"pods could not be removed through the CRI: {error}")
        self.channel.close()
        terminate(self.process, 10)
        self.log.close()
        if killed := kill_processes_mentioning(str(self.base)):
            left.append(f"processes {killed}")
        if mounts := mounts_under(self.base):
            left.append(f"mounts {mounts}")
            unmount_all_under(self.base)
        if ports := self.bridge_ports():
            left.append(f"veths {ports}")
        subprocess.run(["ip", "link", "delete", self.bridge], capture_output=True)
        if cgroups := cgroup_dirs(self.cgroup_parent):
            for directory in cgroups:
                if any(Path(d).is_dir() for d in _subdirs(directory)):
                    left.append(f"cgroups under {directory}")
        remove_cgroup(self.cgroup_parent)
        for handler in HANDLERS:  # each runtime's state root: every deleted container's state gone
            if state := [str(p) for p in (self.base / f"{handler}-state").rglob("*") if p.is_file()]:
                left.append(f"{handler} state {state}")
        if rules := self.firewall_rules():
            left.append(f"firewall rules {rules}")
        if host_state(HOST_CONTAINERD_PATHS) != self.host_before:
            left.append("containerd changed the host's default paths")
        return left


def _subdirs(directory: str) -> list[str]:
    """Container cgroups left under a pod cgroup (the pod's own directory is the kubelet's to remove)."""
    return [str(p) for pod in Path(directory).iterdir() if pod.is_dir() for p in pod.iterdir() if p.is_dir()]


@contextmanager
def cri_node(base: Path, busybox_tar: Path, cgroup_root: str = CGROUP_PARENT) -> Iterator[CriNode]:
    """A local registry with the images, and a CRI node using it; everything stopped afterwards."""
    from tests.registry import servers

    base.mkdir(parents=True, exist_ok=True)
    registry = servers.start_registry(base / "registry")
    node = None
    try:
        images = push_images(registry.host, busybox_tar, base)
        node = CriNode(base / "node", registry.host, images, cgroup_root=cgroup_root)
        yield node
    finally:
        left = node.stop() if node is not None else []
        registry.stop()
    assert not left, f"the CRI node left {left}"


__all__ = ["CriNode", "Images", "HANDLERS", "containerd_installed", "cri_node"]
