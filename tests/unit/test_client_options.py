"""docker-py's keywords of ``containers.run`` as the ``docker run`` flags skiff's engine takes
(skiff.client.options): pure translation, no containers, no root.

The expected strings are what the matching flag of ``docker run`` takes, so the engine
checks and applies them as for the CLI. docker-py's shapes are those of its documentation
(ContainerCollection.run).
"""

from __future__ import annotations

import pytest

from skiff.client import options
from skiff.client.options import run_options
from skiff.errors import InvalidArgument


def test_defaults_match_a_bare_docker_run() -> None:
    opts = run_options("busybox")
    assert opts.image == "busybox" and list(opts.command) == [] and opts.network == "bridge"
    assert not opts.remove and not opts.detach and opts.restart == "no" and dict(opts.resources) == {}


def test_command_string_is_split_as_a_shell_would() -> None:
    assert options.command_list("sh -c 'echo a b'") == ["sh", "-c", "echo a b"]
    assert options.command_list(["echo", 1]) == ["echo", "1"]
    assert options.command_list(None) == []


@pytest.mark.parametrize(("given", "flags"), [
    ({"A": "1", "B": None, "C": 2}, ["A=1", "B", "C=2"]),
    (["A=1", "B"], ["A=1", "B"]),
    (None, []),
])
def test_environment(given: object, flags: list[str]) -> None:
    assert options.environment(given) == flags  # type: ignore[arg-type]


@pytest.mark.parametrize(("given", "flags"), [
    ({"/srv": {"bind": "/data", "mode": "ro"}}, ["/srv:/data:ro"]),
    ({"named": {"bind": "/data"}}, ["named:/data"]),
    ({"named": "/data"}, ["named:/data"]),
    (["/srv:/data:rw", "/cache"], ["/srv:/data:rw", "/cache"]),
])
def test_volumes(given: object, flags: list[str]) -> None:
    assert options.volumes(given) == flags  # type: ignore[arg-type]


def test_a_volume_without_bind_is_refused_with_the_shape_expected() -> None:
    with pytest.raises(InvalidArgument, match="bind"):
        options.volumes({"/srv": {"mode": "ro"}})


@pytest.mark.parametrize(("given", "flags"), [
    ({80: None}, ["80/tcp"]),
    ({"53/udp": 5353}, ["5353:53/udp"]),
    ({"80/tcp": ("127.0.0.1", 8080)}, ["127.0.0.1:8080:80/tcp"]),
    ({"80/tcp": ("127.0.0.1", None)}, ["127.0.0.1::80/tcp"]),
    ({"80/tcp": ("127.0.0.1",)}, ["127.0.0.1::80/tcp"]),
    ({"80/tcp": [8080, 8081]}, ["8080:80/tcp", "8081:80/tcp"]),
])
def test_ports(given: object, flags: list[str]) -> None:
    assert options.ports(given) == flags  # type: ignore[arg-type]


def test_a_port_binding_of_another_kind_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="ports"):
        options.ports({80: {"HostPort": 1}})


@pytest.mark.parametrize(("nano", "cpus"), [(1_500_000_000, "1.5"), (1_000_000_000, "1"), (250_000_000, "0.25"),
                                            (1, "0.000000001")])
def test_nano_cpus_is_exact(nano: int, cpus: str) -> None:
    assert options.nano_cpus(nano) == cpus


@pytest.mark.parametrize("bad", [-1, 1.5, "1", True])
def test_nano_cpus_must_be_an_int(bad: object) -> None:
    with pytest.raises(InvalidArgument, match="nano_cpus"):
        options.nano_cpus(bad)  # type: ignore[arg-type]


def test_resources_int_or_docker_size_string() -> None:
    opts = run_options("busybox", mem_limit=64 * 1024 * 1024, memswap_limit="128m", nano_cpus=500_000_000,
                       pids_limit=10)
    assert dict(opts.resources) == {"memory": "67108864", "memory_swap": "128m", "cpus": "0.5", "pids_limit": "10"}


def test_labels_dict_or_names() -> None:
    assert options.labels({"a": "1"}) == ["a=1"]
    assert options.labels(["a", "b"]) == ["a=", "b="]


def test_entrypoint_list_splits_back_into_the_same_words() -> None:
    import shlex

    joined = options.entrypoint(["sh", "-c", "echo 'a b'"])
    assert shlex.split(joined) == ["sh", "-c", "echo 'a b'"]
    assert options.entrypoint("") == ""


def test_network_and_network_mode() -> None:
    assert run_options("busybox", network="none").network == "none"
    assert run_options("busybox", network_mode="host").network == "host"
    with pytest.raises(InvalidArgument, match="network_mode"):
        run_options("busybox", network="a", network_mode="host")


def test_restart_policy() -> None:
    assert options.restart_policy({"Name": "on-failure", "MaximumRetryCount": 3}) == "on-failure:3"
    assert options.restart_policy({"Name": "always"}) == "always"
    assert options.restart_policy(None) == "no"


def test_the_other_docker_py_keywords() -> None:
    opts = run_options("busybox", "true", name="web", user=1000, working_dir="/tmp", tty=True, stdin_open=True,
                       labels={"k": "v"}, remove=True, environment={"A": "1"}, tmpfs={"/run": "size=1m"},
                       extra_hosts={"db": "10.0.0.2"}, sysctls={"net.ipv4.ip_forward": "1"},
                       cap_add=["net_admin"], restart_policy=None, shm_size="128m",
                       ulimits=[{"Name": "nofile", "Soft": 10, "Hard": 20}])
    assert (opts.name, opts.user, opts.workdir, opts.tty, opts.interactive, opts.remove) == \
        ("web", "1000", "/tmp", True, True, True)
    assert list(opts.labels) == ["k=v"] and list(opts.env) == ["A=1"] and list(opts.tmpfs) == ["/run:size=1m"]
    assert list(opts.add_hosts) == ["db:10.0.0.2"] and list(opts.sysctls) == ["net.ipv4.ip_forward=1"]
    assert list(opts.cap_add) == ["CAP_NET_ADMIN"] and opts.shm_size == "128m"
    assert list(opts.ulimits) == ["nofile=10:20"]


def test_an_unknown_keyword_is_a_type_error_as_in_python() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        run_options("busybox", bogus=1)


def test_auto_remove_is_remove() -> None:
    assert run_options("busybox", auto_remove=True).remove
