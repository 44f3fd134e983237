"""skiff.api's pure parts: version prefixes, routing, the error table, create bodies as RunOptions,
Docker's container list entry; and the server stays off every other command's import path."""

from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys

import pytest

from skiff.api.create import run_options
from skiff.api.errors import BadRequest, MethodNotAllowed, NotImplementedYet, RouteNotFound, message_for, status_for
from skiff.api.messages import Request
from skiff.api.routes import ROUTES, resolve, split_version
from skiff import errors


@pytest.mark.parametrize("path, expected", [
    ("/_ping", (None, "/_ping")),
    ("/v1.12/version", ("1.12", "/version")),
    ("/v1.24/containers/json", ("1.24", "/containers/json")),
    ("/v1.41/containers/abc/json", ("1.41", "/containers/abc/json")),
    ("/v1.43/info", ("1.43", "/info")),
    ("/v1.41", (None, "/v1.41")),   # a prefix alone is no prefix: page not found later
])
def test_version_prefixes_are_split(path: str, expected: tuple[str | None, str]) -> None:
    assert split_version(path) == expected


@pytest.mark.parametrize("path, message", [
    ("/v1.11/version", "client version 1.11 is too old. Minimum supported API version is 1.12, please upgrade "
                       "your client to a newer version"),
    ("/v1.44/version", "client version 1.44 is too new. Maximum supported API version is 1.43"),
    ("/v2.0/version", "client version 2.0 is too new. Maximum supported API version is 1.43"),
])
def test_versions_out_of_range_are_refused(path: str, message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        split_version(path)
    assert str(caught.value) == message and status_for(caught.value) == 400


def test_the_minimum_is_what_version_reports() -> None:
    from skiff.api.routes import MIN_VERSION
    from skiff.engine.system import MIN_API_VERSION

    assert ".".join(map(str, MIN_VERSION)) == MIN_API_VERSION


@pytest.mark.parametrize("method, path, endpoint, params", [
    ("GET", "/_ping", "system.ping", {}),
    ("HEAD", "/_ping", "system.ping", {}),
    ("GET", "/containers/json", "containers.list_", {}),
    ("GET", "/containers/json/", "containers.list_", {}),
    ("POST", "/containers/create", "containers.create", {}),
    ("GET", "/containers/web/json", "containers.inspect", {"id": "web"}),
    ("DELETE", "/containers/web", "containers.remove", {"id": "web"}),
    ("POST", "/containers/a%2Fb/start", "containers.start", {"id": "a/b"}),
    ("GET", "/images/library/busybox:latest/json", "objects.image_inspect", {"name": "library/busybox:latest"}),
    ("GET", "/volumes/data", "objects.volume_inspect", {"name": "data"}),
    ("POST", "/volumes/create", "objects.volume_create", {}),
    ("DELETE", "/networks/n1", "objects.network_remove", {"id": "n1"}),
])
def test_routes(method: str, path: str, endpoint: str, params: dict[str, str]) -> None:
    assert resolve(method, path) == (endpoint, params)


def test_every_route_names_an_endpoint_that_exists() -> None:
    import importlib

    for route in ROUTES:
        module, _, function = route.endpoint.partition(".")
        assert callable(getattr(importlib.import_module(f"skiff.api.{module}"), function)), route


def test_routes_grouped_by_first_segment_resolve_as_the_whole_table_in_order() -> None:
    """resolve() looks only at the routes of a path's first segment: the same answer as trying
    the whole table in order, for a path of every route (a parameter filled in), either method."""
    import re

    from skiff.api.routes import NOT_YET

    table = ROUTES + NOT_YET

    def whole_table(method: str, path: str) -> str:
        matching = [route for route in table if route.pattern.fullmatch(path)]
        return next((route.endpoint for route in matching if route.method == method),
                    "405" if matching else "404")

    def resolved(method: str, path: str) -> str:
        try:
            return resolve(method, path)[0]
        except MethodNotAllowed:
            return "405"
        except RouteNotFound:
            return "404"

    for route in table:
        path = re.sub(r"\(\?P<\w+>[^)]*\)", "x", route.pattern.pattern).removesuffix("/?")
        for method in {route.method, "GET", "POST"}:
            assert resolved(method, path) == whole_table(method, path), (method, path)
    for path in ("", "_ping", "/", "//_ping", "/nowhere/json"):
        assert resolved("GET", path) == "404"


def test_unknown_paths_and_methods() -> None:
    with pytest.raises(RouteNotFound) as missing:
        resolve("GET", "/containers/a/b/c")
    assert (status_for(missing.value), str(missing.value)) == (404, "page not found")
    with pytest.raises(MethodNotAllowed) as wrong:
        resolve("PUT", "/containers/json")
    assert status_for(wrong.value) == 405


@pytest.mark.parametrize("exc, status", [
    (errors.ContainerNotFound("No such container: x"), 404),
    (errors.ImageNotFound("No such image: x"), 404),
    (errors.VolumeNotFound("no such volume"), 404),
    (errors.NetworkNotFound("network x not found"), 404),
    (errors.ContainerConflict("You cannot remove a running container"), 409),
    (errors.ContainerNotRunning("Container x is not running"), 409),
    (errors.VolumeInUse("volume is in use"), 409),
    (errors.NetworkInUse("has active endpoints"), 409),
    (errors.InvalidArgument("bad"), 400),
    (errors.InvalidSignal("bad signal"), 400),
    (errors.InvalidReference("bad reference"), 400),
    (errors.UsageError("bad flag"), 400),
    (BadRequest("bad JSON"), 400),
    (NotImplementedYet("HostConfig.Mounts"), 501),
    (errors.RuntimeError_("the runtime failed"), 500),
    (errors.SkiffError("anything else"), 500),
    (KeyError("Config"), 500),
    (OSError(28, "No space left on device"), 500),
])
def test_the_error_table(exc: BaseException, status: int) -> None:
    assert status_for(exc) == status


def test_a_bug_reaches_the_client_as_one_line() -> None:
    try:
        {}["Config"]
    except KeyError as exc:
        assert message_for(exc) == "internal error: KeyError: 'Config'"
    assert message_for(FileNotFoundError(2, "No such file or directory", "/x")) == "No such file or directory: /x"


# --- create bodies ------------------------------------------------------------------------------

DOCKER_CLI_BODY = {  # what `docker run -d` 20.10 sends (trimmed of its zero values, which are kept below)
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False, "Tty": False,
    "OpenStdin": False, "StdinOnce": False, "Env": ["A=1"], "Cmd": ["sh", "-c", "echo hi"], "Image": "busybox",
    "Volumes": {}, "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": {},
    "HostConfig": {"Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "", "Config": {}},
                   "NetworkMode": "default", "PortBindings": {}, "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
                   "AutoRemove": False, "VolumeDriver": "", "VolumesFrom": None, "CapAdd": None, "CapDrop": None,
                   "CgroupnsMode": "", "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": None,
                   "GroupAdd": None, "IpcMode": "", "Cgroup": "", "Links": None, "OomScoreAdj": 0, "PidMode": "",
                   "Privileged": False, "PublishAllPorts": False, "ReadonlyRootfs": False, "SecurityOpt": None,
                   "UTSMode": "", "UsernsMode": "", "ShmSize": 0, "ConsoleSize": [0, 0], "Isolation": "",
                   "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0,
                   "MemorySwappiness": -1, "OomKillDisable": False, "PidsLimit": None, "Ulimits": None,
                   "MaskedPaths": None, "ReadonlyPaths": None},
    "NetworkingConfig": {"EndpointsConfig": {}},
}


def test_the_docker_clis_plain_run_body() -> None:
    opts = run_options(DOCKER_CLI_BODY, "web")
    assert (opts.image, list(opts.command), list(opts.env), opts.name) == ("busybox", ["sh", "-c", "echo hi"],
                                                                           ["A=1"], "web")
    assert opts.network == "bridge" and opts.restart == "no" and opts.entrypoint is None
    assert opts.pull == "never" and opts.resources == {} and not opts.remove and not opts.tty


def test_config_and_host_config_fields() -> None:
    body = {
        "Image": "busybox", "Cmd": "true", "Entrypoint": ["/bin/sh", "-c"], "Tty": True, "OpenStdin": True,
        "WorkingDir": "/w", "User": "1:2", "Hostname": "h", "Labels": {"a": "b"}, "Volumes": {"/anon": {}},
        "HostConfig": {"Binds": ["data:/data:ro"], "AutoRemove": True, "NetworkMode": "none",
                       "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
                                        "53/udp": [{"HostIp": "", "HostPort": ""}], "443/tcp": None},
                       "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
                       "Memory": 64 << 20, "NanoCpus": 1_500_000_000, "PidsLimit": 100},
    }
    opts = run_options(body, None)
    assert opts.entrypoint == "/bin/sh" and list(opts.command) == ["-c", "true"]
    assert opts.tty and opts.interactive and opts.remove and opts.name is None
    assert (opts.workdir, opts.user, opts.hostname, list(opts.labels)) == ("/w", "1:2", "h", ["a=b"])
    assert list(opts.volumes) == ["data:/data:ro", "/anon"] and opts.network == "none"
    assert list(opts.publish) == ["127.0.0.1:8080:80/tcp", "53/udp", "443/tcp"]
    assert opts.restart == "on-failure:3"
    assert opts.resources == {"memory": str(64 << 20), "cpus": "1.5", "pids_limit": "100"}


def test_an_empty_entrypoint_resets_the_images() -> None:
    assert run_options({"Image": "i", "Entrypoint": []}, None).entrypoint == ""
    assert run_options({"Image": "i", "Entrypoint": [""]}, None).entrypoint == ""


@pytest.mark.parametrize("body, message", [
    ({}, "Image is required"),
    ({"Image": 3}, "Image must be a string"),
    ({"Image": "i", "Env": "A=1"}, "Env must be a list of strings"),
    ({"Image": "i", "Tty": "yes"}, "Tty must be true or false"),
    ({"Image": "i", "HostConfig": []}, "HostConfig must be a JSON object"),
    ({"Image": "i", "HostConfig": {"Memory": "1g"}}, "Memory must be an integer"),
    ({"Image": "i", "HostConfig": {"PortBindings": {"80/tcp": "8080"}}}, "HostConfig.PortBindings['80/tcp'] must be a list"),
    ({"Image": "i", "HostConfig": {"LogConfig": {"Type": "syslog"}}}, "logging driver 'syslog' is not supported: use json-file"),
])
def test_wrong_types_are_bad_requests(body: dict[str, object], message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        run_options(body, None)
    assert str(caught.value) == message


@pytest.mark.parametrize("body", [
    {"Image": "i", "HostConfig": {"Mounts": [{"Type": "bind", "Source": "/", "Target": "/x",
                                              "BindOptions": {"NonRecursive": True}}]}},
    {"Image": "i", "HostConfig": {"StorageOpt": {"size": "1G"}}},
    {"Image": "i", "OnBuild": ["RUN true"]},
    {"Image": "i", "NetworkingConfig": {"EndpointsConfig": {"n": {"MacAddress": "02:42:ac:11:00:02"}}}},
])
def test_fields_not_translated_yet_are_refused_not_dropped(body: dict[str, object]) -> None:
    with pytest.raises(NotImplementedYet) as caught:
        run_options(body, None)
    assert status_for(caught.value) == 501


def test_security_ulimits_cgroup_parent_links_translated() -> None:
    body = {"Image": "i", "HostConfig": {
        "SecurityOpt": ["seccomp=unconfined", "no-new-privileges"],
        "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}, {"Name": "core", "Soft": -1, "Hard": -1}],
        "CgroupParent": "/ci/jobs/", "Links": ["/db:/web/database", "cache"], "NetworkMode": "app"},
        "NetworkingConfig": {"EndpointsConfig": {"app": {"Links": ["db:database", "queue:q"]}}}}
    opts = run_options(body, None)
    assert list(opts.security_opts) == ["seccomp=unconfined", "no-new-privileges"]
    assert list(opts.ulimits) == ["nofile=1024:2048", "core=-1:-1"]
    assert opts.cgroup_parent == "ci/jobs"
    assert list(opts.links) == ["db:database", "cache:cache", "queue:q"]


@pytest.mark.parametrize("host, message", [
    ({"CgroupParent": "a/../../b"}, "invalid CgroupParent 'a/../../b': it must not leave the cgroup tree"),
    ({"Ulimits": {"Name": "nofile"}}, "HostConfig.Ulimits must be a list of objects"),
    ({"Ulimits": [{"Name": "nofile", "Soft": "1"}]}, "Soft must be an integer"),
    ({"Links": [":x"]}, "bad format for links: :x"),
])
def test_create_fields_refused(host: dict[str, object], message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        run_options({"Image": "i", "HostConfig": host}, None)
    assert str(caught.value) == message


# --- requests and summaries --------------------------------------------------------------------


def test_filters_in_both_of_dockers_forms() -> None:
    def request(filters: object) -> Request:
        return Request("GET", "/containers/json", {}, {"filters": [json.dumps(filters)]})

    assert request({"name": ["a", "b"]}).filters() == {"name": ["a", "b"]}
    assert request({"label": {"x=1": True, "y": False}}).filters() == {"label": ["x=1"]}
    with pytest.raises(BadRequest):
        Request("GET", "/", {}, {"filters": ["{"]}).filters()


def test_boolean_and_integer_parameters() -> None:
    query = {"all": ["1"], "size": ["false"], "limit": ["3"], "bad": ["maybe"], "t": ["x"]}
    request = Request("GET", "/", {}, query)
    assert request.flag("all") and not request.flag("size") and not request.flag("missing")
    assert request.integer("limit") == 3 and request.integer("missing") is None
    with pytest.raises(BadRequest):
        request.flag("bad")
    with pytest.raises(BadRequest):
        request.integer("t")


def test_the_container_list_entry() -> None:
    from skiff.engine.summary import container_summary

    document = {
        "Id": "c" * 64, "Created": "2026-01-01T00:00:00.5Z", "Path": "sh", "Args": ["-c", "sleep 1"],
        "State": {"Status": "exited", "ExitCode": 3, "StartedAt": "2026-01-01T00:00:01Z",
                  "FinishedAt": "2026-01-01T00:00:10Z"},
        "Image": "sha256:" + "1" * 64, "Name": "/web", "Mounts": [],
        "Config": {"Image": "busybox", "Labels": {"a": "b"}},
        "HostConfig": {"NetworkMode": "default"},
        "NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "53/udp": None},
                            "Networks": {"bridge": {"IPAddress": ""}}},
    }
    now = 1767225610.0 + 120  # two minutes after it finished
    entry = container_summary(document, now)
    assert list(entry) == ["Id", "Names", "Image", "ImageID", "Command", "Created", "Ports", "Labels", "State",
                           "Status", "HostConfig", "NetworkSettings", "Mounts"]
    assert entry["Names"] == ["/web"] and entry["Command"] == "sh -c sleep 1" and entry["Created"] == 1767225600
    assert entry["Ports"] == [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                              {"PrivatePort": 53, "Type": "udp"}]
    assert entry["State"] == "exited" and entry["Status"] == "Exited (3) 2 minutes ago"
    assert "SizeRw" not in entry
    assert list(container_summary({**document, "SizeRw": 1, "SizeRootFs": 2}, now))[7:9] == ["SizeRw", "SizeRootFs"]


def test_the_server_is_on_no_other_commands_import_path() -> None:
    """``skiff run`` (and ``system`` without ``service``) never load the server or http.server."""
    code = ("import sys; from skiff.cli.main import build_parser; build_parser('run'); build_parser('system'); "
            "print(sorted(m for m in sys.modules if m.startswith(('skiff.api', 'http.server', 'socketserver'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_push_is_served() -> None:
    assert resolve("POST", "/images/127.0.0.1:5000/library/busybox/push") == (
        "push.push", {"name": "127.0.0.1:5000/library/busybox"})


@pytest.mark.parametrize("method, path", [
    ("POST", "/auth"), ("GET", "/distribution/library/busybox/json"), ("POST", "/session"),
])
def test_endpoints_not_served_yet_are_named_501s(method: str, path: str) -> None:
    from skiff.api import system

    endpoint, _ = resolve(method, path)
    assert endpoint == "system.not_yet"
    with pytest.raises(NotImplementedYet) as caught:
        system.not_yet(None, Request(method, path, {}, {}))  # type: ignore[arg-type]
    assert status_for(caught.value) == 501 and str(caught.value).startswith(f"{method} {path} is not served")


@pytest.mark.parametrize("state, text", [
    ({"Status": "running", "StartedAt": "2026-01-01T00:00:00Z"}, "Up 2 minutes"),
    ({"Status": "paused", "StartedAt": "2026-01-01T00:00:00Z"}, "Up 2 minutes (Paused)"),
    ({"Status": "restarting", "ExitCode": 1, "FinishedAt": "2026-01-01T00:01:59Z"}, "Restarting (1) 1 second ago"),
    ({"Status": "exited", "ExitCode": 0, "FinishedAt": "2026-01-01T00:00:00Z"}, "Exited (0) 2 minutes ago"),
    ({"Status": "created"}, "Created"),
    ({"Status": "removing"}, "Removal In Progress"),
    ({"Status": "dead"}, "Dead"),
])
def test_status_text_is_dockers_state_string(state: dict[str, object], text: str) -> None:
    from skiff.engine.summary import status_text

    assert status_text(state, now=1767225600.0 + 120) == text


def test_a_listing_body_is_its_entries_json_each_entry_encoded_once(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from skiff.api import server
    from skiff.api.messages import encode_json
    from skiff.paths import Paths

    encoded: list[object] = []
    monkeypatch.setattr(server, "compact_json", lambda entry: encoded.append(entry) or json.dumps(
        entry, separators=(",", ":")).encode())
    context = server.Context(Paths(tmp_path / "root", tmp_path / "run"))
    first, second = {"Id": "1", "Names": ["/caf\u00e9"], "Status": "Up 2 seconds"}, {"Id": "2", "Labels": {}}
    assert context.encoded_listing([first, second]) == encode_json([first, second])
    assert context.encoded_listing([first, second]) == encode_json([first, second]) and len(encoded) == 2
    changed = dict(second, Status="Up 3 seconds")  # what the listings' cache hands out for a change
    assert context.encoded_listing([changed, first]) == encode_json([changed, first])
    assert encoded == [first, second, changed]  # only the new entry was encoded
    assert context.encoded_listing([]) == encode_json([]) == b"[]\n"
