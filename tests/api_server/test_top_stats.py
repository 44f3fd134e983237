"""``docker top``, ``docker stats`` and ``docker update`` with the real docker CLI 20.10 through
``skiff system service``; the stats document and the status codes over raw HTTP."""

from __future__ import annotations

import json

from tests.api_server.conftest import Service
from tests.api_server.conftest import UnixHTTPConnection


def _run(service: Service, name: str, *flags: str) -> str:
    return service.docker("run", "-d", "--network", "none", "--name", name, *flags, "busybox",
                          "sleep", "60").stdout.strip()


def test_top(service: Service) -> None:
    _run(service, "ts-top")
    try:
        lines = service.docker("top", "ts-top").stdout.splitlines()
        assert lines[0].split()[:3] == ["UID", "PID", "PPID"] and lines[0].split()[-1] == "CMD"
        assert len(lines) == 2 and lines[1].endswith("sleep 60")
        custom = service.docker("top", "ts-top", "-o", "pid,comm").stdout.splitlines()
        assert custom[0].split() == ["PID", "COMMAND"] and custom[1].split()[1] == "sleep"
        status, _, body = service.request("GET", "/v1.41/containers/ts-top/top?ps_args=-o%20pid,args")
        assert status == 200
        document = json.loads(body)
        assert document["Titles"] == ["PID", "COMMAND"] and document["Processes"][0][1] == "sleep 60"
        service.docker("stop", "-t", "0", "ts-top")
        status, _, body = service.request("GET", "/v1.41/containers/ts-top/top")
        assert status == 409 and "is not running" in json.loads(body)["message"]
        assert service.request("GET", "/v1.41/containers/ts-none/top")[0] == 404
    finally:
        service.docker("rm", "-f", "ts-top")


def test_stats_one_shot_and_streamed(service: Service) -> None:
    cid = _run(service, "ts-stats", "--pids-limit", "50")
    try:
        row = service.docker("stats", "--no-stream", "--format", "{{.ID}} {{.Name}} {{.PIDs}} {{.MemUsage}}",
                             "ts-stats").stdout.split()
        assert row[:3] == [cid[:12], "ts-stats", "1"] and row[3].endswith("B")
        status, _, body = service.request("GET", "/v1.41/containers/ts-stats/stats?stream=false")
        assert status == 200
        document = json.loads(body)
        for key in ("read", "preread", "cpu_stats", "precpu_stats", "memory_stats", "pids_stats", "blkio_stats",
                    "networks"):
            assert key in document, key
        assert document["pids_stats"] == {"current": 1, "limit": 50}
        assert document["cpu_stats"]["system_cpu_usage"] > document["precpu_stats"]["system_cpu_usage"]
        assert document["memory_stats"]["usage"] > 0 and document["name"] == "/ts-stats"
        connection = UnixHTTPConnection(str(service.socket))
        try:
            connection.request("GET", "/v1.41/containers/ts-stats/stats")
            response = connection.getresponse()
            first, second = (json.loads(response.readline()) for _ in range(2))
            assert first["id"] == second["id"] == cid and second["read"] > first["read"]
        finally:
            connection.close()
        assert service.request("GET", "/v1.41/containers/ts-none/stats?stream=0")[0] == 404
    finally:
        service.docker("rm", "-f", "ts-stats")


def test_update(service: Service) -> None:
    _run(service, "ts-update", "--memory", "32m")
    try:
        assert service.docker("update", "--memory", "64m", "--memory-swap", "128m", "--cpus", "0.5",
                              "ts-update").stdout.strip() == "ts-update"
        shown = service.docker("inspect", "--format", "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} "
                               "{{.HostConfig.NanoCpus}}", "ts-update").stdout.split()
        assert shown == [str(64 << 20), str(128 << 20), "500000000"]
        assert service.skiff("inspect", "--format", "{{.HostConfig.Memory}}", "ts-update").strip() == str(64 << 20)
        status, _, body = service.request("POST", "/v1.41/containers/ts-update/update",
                                          {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}})
        assert status == 200 and json.loads(body) == {"Warnings": []}
        policy = service.docker("inspect", "--format", "{{json .HostConfig.RestartPolicy}}", "ts-update").stdout
        assert json.loads(policy) == {"Name": "on-failure", "MaximumRetryCount": 3}
        status, _, body = service.request("POST", "/v1.41/containers/ts-update/update", {"Memory": 1024})
        assert status == 400 and "Minimum memory limit allowed is 6MB" in json.loads(body)["message"]
        status, _, body = service.request("POST", "/v1.41/containers/ts-update/update", {"Memory": "lots"})
        assert status == 400
        assert service.request("POST", "/v1.41/containers/ts-none/update", {"Memory": 64 << 20})[0] == 404
        refused = service.docker("update", "--memory", "1k", "ts-update", check=False)
        assert refused.returncode == 1 and "Minimum memory limit allowed is 6MB" in refused.stderr
    finally:
        service.docker("rm", "-f", "ts-update")
