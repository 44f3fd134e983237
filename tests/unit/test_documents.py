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


def _listed(record: dict[str, Any], facts: ContainerFacts, now: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """The list entry built from the record, and the one the whole inspect document gives."""
    from skiff.engine.summary import container_summary, list_document

    document = list_document(record, dict(facts.network) if facts.network is not None else None,
                             dict(facts.network_ids))
    if facts.size is not None:
        document = dict(document, SizeRw=facts.size[0], SizeRootFs=facts.size[1])
    entry = container_summary(document, now)
    return entry, container_summary(container_document(record, facts), now)


def test_the_list_entry_from_the_record_is_the_inspect_documents() -> None:
    """``GET /containers/json`` builds its entries from the records (not from whole inspect documents):
    the same fields, values and order as the inspect document's summary, in every shape a record takes."""
    now = 1767225600.0 + 300
    ids = {"bridge": "1" * 64, "none": "2" * 64, "web": "3" * 64}
    live = {"SandboxKey": "/run/netns/x", "Ports": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
                                                    "53/udp": None},
            "Networks": {"web": {"IPAddress": "10.0.0.2", "IPPrefixLen": 24, "Aliases": ["db"]},
                         "bridge": {"IPAddress": "172.17.0.2", "IPPrefixLen": 16}}}
    mounts = [{"Type": "volume", "Name": "data", "Source": "/v/data", "Destination": "/data", "Driver": "local",
               "RW": True},
              {"Type": "bind", "Source": "/tmp", "Destination": "/h", "Mode": "ro", "RW": False,
               "Propagation": "rprivate"},
              {"Type": "tmpfs", "Source": "", "Destination": "/run", "RW": True}]
    running = record(NetworkMode="web", Tmpfs=["/run:size=1m"])
    running.update(Mounts=mounts, Args=["-c", "sleep 1"], State={
        "Status": "running", "Running": True, "StartedAt": "2026-01-01T00:00:00.123456789Z", "MonitorPid": 7},
        Config={**running["Config"], "Image": "busybox", "Labels": {"a": "b"}})
    exited = record(NetworkMode="none")
    exited.update(State={"Status": "exited", "ExitCode": 3, "OOMKilled": True, "StartedAt": "2026-01-01T00:00:00Z",
                         "FinishedAt": "2026-01-01T00:01:00Z"},
                  NetworkSettings={"Networks": {"none": {"NetworkID": "2" * 64}}})
    created = record()  # default network, never started: no live attachment
    created.update(State={"Status": "created"}, Config={**created["Config"], "Image": "sha256:" + "b" * 64})
    starting = record(NetworkMode="host")
    starting.update(State={"Status": "starting"})
    for rec, facts in ((running, ContainerFacts(network=live, network_ids=ids)),
                       (exited, ContainerFacts(network_ids=ids, size=(4096, 1 << 20))),
                       (created, ContainerFacts(network_ids=ids)), (starting, ContainerFacts(network_ids=ids))):
        entry, expected = _listed(rec, facts, now)
        assert entry == expected and list(entry) == list(expected), rec["State"]
    entry, _ = _listed(exited, ContainerFacts(network_ids=ids, size=(4096, 1 << 20)), now)
    assert (entry["SizeRw"], entry["SizeRootFs"], entry["Status"]) == (4096, 1 << 20, "Exited (3) (OOMKilled) 4 minutes ago")
    entry, _ = _listed(running, ContainerFacts(network=live, network_ids=ids), now)
    assert entry["Ports"] == [{"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                              {"PrivatePort": 53, "Type": "udp"}]
    assert [m["Destination"] for m in entry["Mounts"]] == ["/data", "/h"]  # --tmpfs is HostConfig.Tmpfs only
