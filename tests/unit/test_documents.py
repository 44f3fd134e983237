"""The pure builders of Docker's inspect documents (skiff/engine/documents.py), on records."""

from __future__ import annotations

from typing import Any

from skiff.engine.documents import (ContainerFacts, container_document, mount_object, port_bindings,
                                    resource_fields)


def record(**host_config: Any) -> dict[str, Any]:
    return {"Id": "a" * 64, "Name": "/web", "Created": "2026-01-01T00:00:00Z", "Image": "sha256:" + "b" * 64,
            "Path": "sh", "Args": [], "State": {"Status": "running", "MonitorPid": 7, "Running": True},
            "Config": {"Env": ["PATH=/bin", "HOSTNAME=web", "HOME=/", "A=1"], "Entrypoint": [""],
                       "StopSignal": "SIGTERM", "WorkingDir": "/"},
            "HostConfig": {"NetworkMode": "none", **host_config}, "Mounts": [], "NetworkSettings": {},
            "SkiffOptions": {"env": ["A=1"], "detach": True}, "LogPath": "/r/c/x-json.log"}


def test_port_bindings_as_docker_shows_them() -> None:
    assert port_bindings(["8080:80", "127.0.0.1:53:53/udp", "81", "9000-9001:90-91", "7000-7009:70"]) == {
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}], "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "53"}],
        "81/tcp": [{"HostIp": "", "HostPort": ""}], "90/tcp": [{"HostIp": "", "HostPort": "9000"}],
        "91/tcp": [{"HostIp": "", "HostPort": "9001"}], "70/tcp": [{"HostIp": "", "HostPort": "7000-7009"}]}


def test_mount_strings_become_dockers_mount_objects() -> None:
    assert mount_object("type=bind,src=/a,dst=/b,readonly,bind-propagation=rshared") == {
        "Type": "bind", "Source": "/a", "Target": "/b", "ReadOnly": True, "BindOptions": {"Propagation": "rshared"}}
    assert mount_object('target=/v,"volume-label=x=y",volume-nocopy,volume-opt=type=tmpfs') == {
        "Type": "volume", "Target": "/v",
        "VolumeOptions": {"NoCopy": True, "Labels": {"x": "y"}, "DriverConfig": {"Options": {"type": "tmpfs"}}}}
    assert mount_object("type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1777") == {
        "Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1 << 20, "Mode": 0o1777}}


def test_cpus_and_cpu_quota_show_as_the_flag_the_user_gave() -> None:
    oci = {"cpu": {"period": 100000, "quota": 150000}, "memory": {"limit": 1 << 26, "swap": 1 << 27}}
    by_cpus = resource_fields(oci, {"cpus": "1.5"})
    assert (by_cpus["NanoCpus"], by_cpus["CpuPeriod"], by_cpus["CpuQuota"]) == (1_500_000_000, 0, 0)
    by_quota = resource_fields(oci, {"cpu_quota": "150000", "cpu_period": "100000"})
    assert (by_quota["NanoCpus"], by_quota["CpuPeriod"], by_quota["CpuQuota"]) == (0, 100000, 150000)
    assert (by_quota["Memory"], by_quota["MemorySwap"], by_quota["PidsLimit"]) == (1 << 26, 1 << 27, None)


def test_record_keys_pass_through_with_dockers_type_and_private_ones_never() -> None:
    doc = container_document(record(CapAdd=["NET_ADMIN"], Privileged=True, Sysctls={"a": "1"}, Memory="big",
                                    OomKillDisable=True, Resources={"memory": {"limit": 5}}, ShmSize=1 << 20, FutureKey="x"),
                             ContainerFacts(image_config={"Env": ["PATH=/bin"]}))
    host = doc["HostConfig"]
    assert host["CapAdd"] == ["NET_ADMIN"] and host["Privileged"] is True and host["Sysctls"] == {"a": "1"}
    assert host["Memory"] == 5 and host["ShmSize"] == 1 << 20  # derived from Resources; passed through
    assert host["OomKillDisable"] is True  # not in the OCI object: the record's Docker-named value shows
    assert host["FutureKey"] == "x" and "Resources" not in host
    assert "MonitorPid" not in doc["State"] and "SkiffOptions" not in doc
    # Docker's merge: the user's variables (-e A=1), then the image's
    assert doc["Config"]["Entrypoint"] is None and doc["Config"]["Env"] == ["A=1", "PATH=/bin"]
    assert "StopSignal" not in doc["Config"] and doc["Config"]["WorkingDir"] == ""
    assert doc["Config"]["AttachStdout"] is False and doc["HostsPath"] == ""
    assert list(doc["NetworkSettings"]["Networks"]) == ["none"]
