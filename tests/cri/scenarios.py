"""What the kubelet asks of a runtime handler, as scenarios run against a ``CriNode``.

Each scenario drives the CRI for one handler and records every step it checked in ``Steps``: the
step's name and what was seen. A check that fails raises ``AssertionError`` naming the step, so
the tests fail on it and ``tests/cri/report.py`` writes it in its table (the steps after it: not
reached). Both handlers run the same scenarios; what differs is a skiff-oci bug or a documented reason.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from tests.cri.node import CGROUP_V2, CriNode

# A CRI log line: RFC 3339 time, stream, P(artial) or F(ull), the text.
CRI_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d) (stdout|stderr) [PF] .*$")


class Steps:
    """The steps of one scenario for one handler, each with what was seen."""

    def __init__(self) -> None:
        self.done: list[tuple[str, str]] = []

    def check(self, step: str, passed: bool, seen: str) -> None:
        if not passed:
            raise AssertionError(f"{step}: {seen}")
        self.done.append((step, seen))


def wait_for(what: str, condition: Callable[[], Any], seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds:g} s")
        time.sleep(0.1)
    return value


def log_of(pod: Any, name: str) -> str:
    path = Path(pod.log_directory, name, "0.log")
    return path.read_text() if path.exists() else ""


def log_text(pod: Any, name: str, stream: str = "stdout") -> str:
    """The text a container wrote on one stream, from its CRI log file."""
    lines = [line.split(" ", 3) for line in log_of(pod, name).splitlines()]
    return "".join(text + ("\n" if tag == "F" else "") for _, s, tag, text in lines if s == stream)


def cgroup_value(node: CriNode, pod: Any, container_id: str, controller: str, name: str) -> str:
    return node.cgroup_of(pod, container_id, controller).joinpath(name).read_text().strip()


def limits(node: CriNode, pod: Any, container_id: str) -> tuple[str, str, str]:
    """A container's memory limit, CFS quota and CPU shares (v2: weight), read from its live cgroup."""
    if CGROUP_V2:
        return (cgroup_value(node, pod, container_id, "", "memory.max"),
                cgroup_value(node, pod, container_id, "", "cpu.max").split()[0],
                cgroup_value(node, pod, container_id, "", "cpu.weight"))
    return (cgroup_value(node, pod, container_id, "memory", "memory.limit_in_bytes"),
            cgroup_value(node, pod, container_id, "cpu", "cpu.cfs_quota_us"),
            cgroup_value(node, pod, container_id, "cpu", "cpu.shares"))


def expected_limits(memory: int, quota: int, shares: int) -> tuple[str, str, str]:
    """What ``limits`` reads after these were set: v2 has a weight, converted from shares as runc does."""
    return str(memory), str(quota), str(1 + (shares - 2) * 9999 // 262142 if CGROUP_V2 else shares)


# --- a pod of two containers, every call of the kubelet ------------------------------------------------

# As root in the server: the kubelet's masked paths are empty (/proc/timer_list: /dev/null over it,
# /sys/firmware: an empty tmpfs), its read-only ones refuse a write.
PROTECTED = ("wc -c < /proc/timer_list; ls /sys/firmware | wc -l; "
             "(echo h > /proc/sysrq-trigger) 2>/dev/null && echo sysrq-rw || echo sysrq-ro; "
             "(echo 1 > /proc/sys/kernel/shm_rmid_forced) 2>/dev/null && echo proc-sys-rw || echo proc-sys-ro")
SERVER = ["sh", "-c", "echo serving; echo on-stderr >&2; mkdir -p /tmp/www; echo hello-from-$(hostname) "
          "> /tmp/www/index.html; exec httpd -f -p 8080 -h /tmp/www"]
CLIENT = ["sh", "-c", "until wget -q -O - http://127.0.0.1:8080/; do sleep 0.1; done; exec sleep 3600"]


def two_container_pod(node: CriNode, handler: str, steps: Steps) -> None:
    api = node.api
    name = f"web-{handler}"
    pod = node.pod_config(name)
    pod_id = node.run_pod(pod, handler)
    try:
        status = node.pod_status(pod_id)
        address = status.network.ip
        steps.check("RunPodSandbox", status.state == api.SANDBOX_READY and address != "" and
                    ipaddress.ip_address(address) in ipaddress.ip_network(node.subnet),
                    f"{api.PodSandboxState.Name(status.state)}, pod IP {address}")
        image_ref = node.pull(node.images_ref.busybox, pod)
        steps.check("PullImage", image_ref.startswith("sha256:"), "from the local registry")
        server = node.create(pod_id, pod, node.container_config("server", SERVER))
        node.start(server)
        client = node.create(pod_id, pod, node.container_config("client", CLIENT))
        node.start(client)
        states = {c: api.ContainerState.Name(node.status(c).state) for c in (server, client)}
        steps.check("CreateContainer, StartContainer", set(states.values()) == {"CONTAINER_RUNNING"},
                    "two containers running")
        body = wait_for("the client's wget of the server on localhost", lambda: log_text(pod, "client"))
        steps.check("shared network namespace", body == f"hello-from-{name}\n",
                    f"the client reached the server on 127.0.0.1:8080: {body.strip()!r}")
        status = node.status(server)
        steps.check("ContainerStatus", status.state == api.CONTAINER_RUNNING and status.started_at > 0
                    and status.log_path.endswith("server/0.log") and status.image_ref != "",
                    "RUNNING, started_at, image_ref, log_path")
        lines = wait_for("the server's two log lines", lambda: len(log_of(pod, "server").splitlines()) >= 2 and
                         log_of(pod, "server").splitlines())
        steps.check("CRI log files", all(CRI_LOG_LINE.match(line) for line in lines) and
                    log_text(pod, "server") == "serving\n" and log_text(pod, "server", "stderr") == "on-stderr\n",
                    "TIME stdout|stderr F TEXT")
        init = node.exec_sync(client, ["cat", "/proc/1/cmdline"])
        steps.check("own PID namespace", init.stdout == b"sleep\x003600\x00",
                    f"PID 1 of the client is {init.stdout.replace(bytes(1), b' ').decode().strip()!r}")
        fetched = node.exec_sync(client, ["wget", "-q", "-O", "-", "http://localhost:8080/"])
        failed = node.exec_sync(client, ["sh", "-c", "echo out; echo err >&2; exit 3"])
        steps.check("ExecSync", (fetched.exit_code, fetched.stdout) == (0, f"hello-from-{name}\n".encode()) and
                    (failed.exit_code, failed.stdout, failed.stderr) == (3, b"out\n", b"err\n"),
                    f"exit {fetched.exit_code} and {failed.exit_code}, stdout and stderr apart")
        started = time.monotonic()
        try:  # an exec probe that outlives its timeout: the kubelet gets an error, the process is killed
            late = node.exec_sync(client, ["sleep", "30"], timeout=1)
            answer = f"exit {late.exit_code}"
        except grpc.RpcError as error:
            answer = f"{error.code().name}"
        took = time.monotonic() - started
        steps.check("ExecSync timeout", took < 10 and answer == "DEADLINE_EXCEEDED", f"{answer} in {took:.1f} s")
        masked = node.exec_sync(server, ["sh", "-c", PROTECTED])
        steps.check("masked and read-only paths", masked.stdout == b"0\n0\nsysrq-ro\nproc-sys-ro\n",
                    masked.stdout.decode().strip().replace("\n", ", "))
        stats = node.runtime.ContainerStats(api.ContainerStatsRequest(container_id=server), timeout=60).stats
        steps.check("ContainerStats", stats.cpu.usage_core_nano_seconds.value > 0 and
                    stats.memory.working_set_bytes.value > 0,
                    f"cpu {stats.cpu.usage_core_nano_seconds.value} ns, "
                    f"working set {stats.memory.working_set_bytes.value} B")
        listed_stats = node.runtime.ListContainerStats(api.ListContainerStatsRequest(
            filter=api.ContainerStatsFilter(pod_sandbox_id=pod_id)), timeout=60).stats
        memory = {s.attributes.id: s.memory.working_set_bytes.value for s in listed_stats}
        steps.check("ListContainerStats", set(memory) == {server, client} and all(memory.values()),
                    "both containers, with their working sets")
        resources = api.LinuxContainerResources(memory_limit_in_bytes=64 << 20, cpu_period=100000,
                                                cpu_quota=20000, cpu_shares=256)
        node.runtime.UpdateContainerResources(
            api.UpdateContainerResourcesRequest(container_id=client, linux=resources), timeout=60)
        seen = limits(node, pod, client)
        steps.check("UpdateContainerResources", seen == expected_limits(64 << 20, 20000, 256),
                    f"the live cgroup: memory {seen[0]}, cfs quota {seen[1]}, shares {seen[2]}")
        listed = set(node.container_ids(pod_id))
        steps.check("ListContainers, ListPodSandbox", listed == {server, client} and pod_id in node.pod_ids(),
                    "the pod and its two containers")
        started = time.monotonic()
        node.stop_container(client, timeout=1)
        status = node.status(client)
        steps.check("StopContainer", status.state == api.CONTAINER_EXITED and status.finished_at > 0,
                    f"EXITED {status.exit_code} ({status.reason}) in {time.monotonic() - started:.1f} s")
        cgroups = [node.cgroup_of(pod, c, "memory") for c in (server, client)]
        node.stop_container(server, timeout=1)
        node.remove_container(client)
        node.remove_container(server)
        steps.check("RemoveContainer", node.container_ids(pod_id) == [] and not any(c.exists() for c in cgroups),
                    "listed no more, cgroups gone")
    finally:
        node.stop_pod(pod_id)
        stopped = node.pod_status(pod_id).state
        node.remove_pod(pod_id)
    steps.check("StopPodSandbox", stopped == api.SANDBOX_NOTREADY, api.PodSandboxState.Name(stopped))
    steps.check("RemovePodSandbox", pod_id not in node.pod_ids() and node.bridge_ports() == [],
                "listed no more, its veth gone")


# --- security contexts and resources ------------------------------------------------------------------


def security_context(node: CriNode, **fields: Any) -> Any:
    api = node.api
    user = fields.pop("run_as_user", None)
    context = api.LinuxContainerSecurityContext(**fields)
    if user is not None:
        context.run_as_user.value = user
    return context


def run_to_exit(node: CriNode, handler: str, name: str, command: list[str], pod_options: dict[str, Any],
                **options: Any) -> tuple[Any, str]:
    """A one-container pod whose container runs to its end: its final status and its stdout."""
    with node.pod(f"{name}-{handler}", handler, **pod_options) as (pod_id, pod):
        node.pull(node.images_ref.busybox, pod)
        container = node.create(pod_id, pod, node.container_config(name, command, **options))
        node.start(container)
        status = node.wait_exited(container)
        return status, log_text(pod, name) + log_text(pod, name, "stderr")


PROBE = ("id -u; id -G; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status | tr -d '\\t'; "
         "touch /probe 2>/dev/null && echo root-rw || echo root-ro; "
         "grep -q ' /sys sysfs rw' /proc/mounts && echo sys-rw || echo sys-ro")


def restricted_pod(node: CriNode, handler: str, steps: Steps) -> None:
    """Pod Security "restricted": runAsNonRoot (the kubelet checks the uid), runAsUser 1000,
    runAsGroup 3000, a supplemental group, allowPrivilegeEscalation false, drop ALL, seccomp
    RuntimeDefault, readOnlyRootFilesystem; the same seen by the container and by an ExecSync in it."""
    api = node.api
    context = security_context(
        node, run_as_user=1000, no_new_privs=True, readonly_rootfs=True, supplemental_groups=[4000],
        capabilities=api.Capability(drop_capabilities=["ALL"]),
        seccomp=api.SecurityProfile(profile_type=api.SecurityProfile.RuntimeDefault))
    context.run_as_group.value = 3000
    # containerd adds the groups /etc/group gives user 1000 ("user": wheel, users), as runc's users do
    expected = "1000\n3000 10 100 4000\nCapEff:0000000000000000\nNoNewPrivs:1\nSeccomp:2\nroot-ro\nsys-ro\n"
    with node.pod(f"restricted-{handler}", handler, run_as_user=1000) as (pod_id, pod):
        node.pull(node.images_ref.busybox, pod)
        config = node.container_config("restricted", ["sh", "-c", f"{PROBE}; exec sleep 3600"],
                                       security_context=context)
        container = node.create(pod_id, pod, config)
        node.start(container)
        out = wait_for("the probe's output", lambda: (text := log_text(pod, "restricted")).count("\n") >= 7 and text)
        steps.check("restricted pod", out == expected, out.strip().replace("\n", ", "))
        execd = node.exec_sync(container, ["sh", "-c", PROBE])
        steps.check("restricted pod: ExecSync", (execd.exit_code, execd.stdout.decode()) == (0, expected),
                    f"exit {execd.exit_code}: {(execd.stdout + execd.stderr).decode().strip()}".replace("\n", ", "))
        node.stop_container(container, timeout=0)


def privileged_pod(node: CriNode, handler: str, steps: Steps) -> None:
    with open("/proc/self/status") as f:
        bounding = next(line.split()[1] for line in f if line.startswith("CapBnd:"))
    context = node.api.LinuxContainerSecurityContext(privileged=True)
    status, out = run_to_exit(node, handler, "privileged", ["sh", "-c", PROBE], {"privileged": True},
                              security_context=context)
    # /sys stays read-only: containerd 1.6 mounts it so for a pod with its own network namespace
    expected = f"0\n0 10\nCapEff:{bounding}\nNoNewPrivs:0\nSeccomp:0\nroot-rw\nsys-ro\n"
    steps.check("privileged pod", (status.exit_code, out) == (0, expected),
                f"exit {status.exit_code}: " + (out.strip().replace("\n", ", ") or status.message))


def resource_limits(node: CriNode, handler: str, steps: Steps) -> None:
    api = node.api
    resources = api.LinuxContainerResources(memory_limit_in_bytes=48 << 20, cpu_period=100000, cpu_quota=50000,
                                            cpu_shares=512)
    with node.pod(f"limits-{handler}", handler) as (pod_id, pod):
        node.pull(node.images_ref.busybox, pod)
        container = node.create(pod_id, pod, node.container_config("limited", ["sleep", "3600"],
                                                                   resources=resources))
        node.start(container)
        seen = limits(node, pod, container)
        # what a program in the container reads for its limit (cgroup v1: its own cgroup mounted at
        # /sys/fs/cgroup/memory, as runc mounts it; v2: its cgroup namespace's root)
        inside = node.exec_sync(container, ["sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
                                            "/sys/fs/cgroup/memory.max 2>/dev/null"])
        node.stop_container(container, timeout=0)
    steps.check("CPU and memory limits", seen == expected_limits(48 << 20, 50000, 512),
                f"memory {seen[0]}, cfs quota {seen[1]}, shares {seen[2]}")
    steps.check("limit seen inside", inside.stdout == f"{48 << 20}\n".encode(),
                f"/sys/fs/cgroup in the container says {inside.stdout.decode().strip() or inside.stderr!r}")


def oom_killed(node: CriNode, handler: str, steps: Steps) -> None:
    """dd's 64 MiB buffer in a 32 MiB container: the kernel kills it, the CRI says OOMKilled."""
    resources = node.api.LinuxContainerResources(memory_limit_in_bytes=32 << 20, memory_swap_limit_in_bytes=32 << 20)
    status, out = run_to_exit(node, handler, "oom", ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"], {},
                              resources=resources)
    steps.check("OOMKilled", (status.exit_code, status.reason) == (137, "OOMKilled"),
                f"exit {status.exit_code}, reason {status.reason or '(none)'}")


def host_namespaces(node: CriNode, handler: str, steps: Steps) -> None:
    """hostNetwork, hostPID and hostIPC: the container is in the host's namespaces."""
    kinds = ("net", "pid", "ipc")
    host = "".join(f"{os.readlink(f'/proc/self/ns/{kind}')}\n" for kind in kinds)
    command = ["sh", "-c", " ".join(f"readlink /proc/self/ns/{kind};" for kind in kinds)]
    status, out = run_to_exit(node, handler, "hostns", command, {"network": 2, "pid": 2, "ipc": 2})
    steps.check("hostNetwork, hostPID, hostIPC", (status.exit_code, out) == (0, host),
                f"exit {status.exit_code}, the host's {out.strip() or status.message}".replace("\n", ", "))


def tty_container(node: CriNode, handler: str, steps: Steps) -> None:
    """tty: true, stdin: true (kubectl run -it): the runtime gets a console socket; the log is the terminal's."""
    status, out = run_to_exit(node, handler, "tty", ["sh", "-c", "tty; [ -t 0 ] && [ -t 1 ] && echo in-and-out"], {},
                              tty=True)
    steps.check("tty container", (status.exit_code, out.replace("\r", "")) == (0, "/dev/pts/0\nin-and-out\n"),
                f"exit {status.exit_code}: {out!r}")


def failing_start(node: CriNode, handler: str, steps: Steps) -> None:
    """A container whose command does not exist: StartContainer answers an error, in time; so does
    RunPodSandbox for a sandbox the runtime refuses."""
    with node.pod(f"failing-{handler}", handler) as (pod_id, pod):
        node.pull(node.images_ref.busybox, pod)
        container = node.create(pod_id, pod, node.container_config("failing", ["/no/such/command"]))
        started = time.monotonic()
        try:
            node.start(container)
            error = ""
        except grpc.RpcError as failure:
            error = str(failure.details())
        took = time.monotonic() - started
        status = node.status(container)
    steps.check("failing start reported", "/no/such/command" in error and "no such file" in error and took < 30
                and status.state == node.api.CONTAINER_EXITED,
                f"StartContainer error in {took:.1f} s: {error[-160:]!r}; then {status.reason} {status.exit_code}")
    # a sandbox the runtime cannot create (a sysctl this kernel lacks): RunPodSandbox answers the
    # runtime's error, and containerd leaves no pod, veth or shim behind
    pod = node.pod_config(f"bad-sysctl-{handler}", sysctls={"net.ipv4.no_such_knob": "1"})
    started = time.monotonic()
    try:
        pod_id = node.run_pod(pod, handler)
        error = ""
    except grpc.RpcError as failure:
        error = str(failure.details())
    took = time.monotonic() - started
    if not error:
        node.stop_pod(pod_id)
        node.remove_pod(pod_id)
    steps.check("failing sandbox reported", "no_such_knob" in error and took < 30 and node.pod_ids() == []
                and node.bridge_ports() == [], f"RunPodSandbox error in {took:.1f} s: {error[-160:]!r}")


def kubelet_mounts(node: CriNode, handler: str, steps: Steps) -> None:
    """The mounts the kubelet sends: a read-only hostPath, an emptyDir, /etc/hosts and the
    termination log (files), with env and workingDir; the pod's hostname and DNS configuration."""
    api = node.api
    volumes = node.base / "volumes" / secrets.token_hex(4)
    for directory in ("host", "empty"):
        (volumes / directory).mkdir(parents=True)
    (volumes / "host" / "seed").write_text("from the host\n")
    (volumes / "hosts").write_text("127.0.0.1\tlocalhost\n192.0.2.250\textra-host\n")
    (volumes / "termination-log").write_text("")
    mounts = [api.Mount(container_path="/data", host_path=str(volumes / "host"), readonly=True),
              api.Mount(container_path="/cache", host_path=str(volumes / "empty")),
              api.Mount(container_path="/etc/hosts", host_path=str(volumes / "hosts")),
              api.Mount(container_path="/dev/termination-log", host_path=str(volumes / "termination-log"))]
    script = ("pwd; echo $GREETING; cat seed; touch /data/x 2>/dev/null && echo data-rw || echo data-ro; "
              "echo cached > /cache/out; echo bye > /dev/termination-log; grep -c extra-host /etc/hosts; "
              "hostname; cat /etc/hostname; cat /etc/resolv.conf")
    dns = api.DNSConfig(servers=["192.0.2.53"], searches=["default.svc.cluster.local"], options=["ndots:5"])
    status, out = run_to_exit(node, handler, "mounts", ["sh", "-c", script], {"dns": dns}, mounts=mounts,
                              envs={"GREETING": "hello"}, working_dir="/data")
    written = ((volumes / "empty" / "out").read_text(), (volumes / "termination-log").read_text())
    steps.check("kubelet mounts, env, workingDir",
                (status.exit_code, out, written) == (0, "/data\nhello\nfrom the host\ndata-ro\n1\n"
                                                     f"mounts-{handler}\nmounts-{handler}\n"
                                                     "search default.svc.cluster.local\nnameserver 192.0.2.53\n"
                                                     "options ndots:5\n", ("cached\n", "bye\n")),
                f"exit {status.exit_code}: " + out.strip().replace("\n", ", ") + f"; the host reads {written}")


def shared_pid_and_sysctls(node: CriNode, handler: str, steps: Steps) -> None:
    """shareProcessNamespace (pid POD: the pause process is seen) and namespaced sysctls set on the pod."""
    sysctls = {"net.ipv4.ip_unprivileged_port_start": "0", "kernel.shm_rmid_forced": "1"}
    script = ("ps -o args | grep -c '^[s]leep 2147483647'; "
              "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shm_rmid_forced")
    status, out = run_to_exit(node, handler, "shared", ["sh", "-c", script], {"pid": 0, "sysctls": sysctls})
    steps.check("shareProcessNamespace, sysctls", (status.exit_code, out) == (0, "1\n0\n1\n"),
                f"exit {status.exit_code}: pause seen, sysctls: {out.strip()}".replace("\n", ", "))


SCENARIOS: dict[str, Callable[[CriNode, str, Steps], None]] = {
    "two-container pod": two_container_pod,
    "restricted pod": restricted_pod,
    "privileged pod": privileged_pod,
    "CPU and memory limits": resource_limits,
    "OOMKilled": oom_killed,
    "host namespaces": host_namespaces,
    "tty container": tty_container,
    "failing start": failing_start,
    "kubelet mounts": kubelet_mounts,
    "shared PID namespace, sysctls": shared_pid_and_sysctls,
}
