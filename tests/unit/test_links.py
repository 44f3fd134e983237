"""Docker's legacy links as skiff writes them: the hosts line and the link variables (links.go)."""

from __future__ import annotations

import pytest

from skiff.engine.links import Link, environment, hosts, parse, with_environment
from skiff.errors import InvalidArgument

DB = Link("db-1", "db", "0123456789ab", "172.17.0.2", ["PATH=/bin", "HOME=/root", "PASSWORD=x=y"],
          ["80/tcp", "5432/tcp", "53/udp"])


def test_parse() -> None:
    assert parse("db") == ("db", "db")
    assert parse("/db:alias") == ("db", "alias")
    with pytest.raises(InvalidArgument):
        parse(":x")


def test_hosts_line_names_alias_hostname_and_name() -> None:
    assert hosts([DB]) == ["db 0123456789ab db-1:172.17.0.2"]
    assert hosts([DB._replace(alias="db-1")]) == ["db-1 0123456789ab:172.17.0.2"]


def test_environment_as_dockers_to_env() -> None:
    ordered = DB._replace(ports=sorted(DB.ports, key=lambda p: (int(p.split("/")[0]), not p.endswith("tcp"))))
    assert environment([ordered._replace(alias="my-db")], "web") == [
        "MY_DB_PORT=udp://172.17.0.2:53",
        "MY_DB_PORT_53_UDP=udp://172.17.0.2:53", "MY_DB_PORT_53_UDP_ADDR=172.17.0.2", "MY_DB_PORT_53_UDP_PORT=53",
        "MY_DB_PORT_53_UDP_PROTO=udp",
        "MY_DB_PORT_80_TCP=tcp://172.17.0.2:80", "MY_DB_PORT_80_TCP_ADDR=172.17.0.2", "MY_DB_PORT_80_TCP_PORT=80",
        "MY_DB_PORT_80_TCP_PROTO=tcp",
        "MY_DB_PORT_5432_TCP=tcp://172.17.0.2:5432", "MY_DB_PORT_5432_TCP_ADDR=172.17.0.2",
        "MY_DB_PORT_5432_TCP_PORT=5432", "MY_DB_PORT_5432_TCP_PROTO=tcp",
        "MY_DB_NAME=/web/my-db", "MY_DB_ENV_PASSWORD=x=y"]


def test_link_variables_go_before_the_containers_own() -> None:
    env = ["PATH=/bin", "HOSTNAME=h", "DB_NAME=mine", "HOME=/root"]
    merged = with_environment(env, [DB._replace(ports=[], env=[])], "web")
    assert merged == ["PATH=/bin", "HOSTNAME=h", "DB_NAME=mine", "HOME=/root"]  # the container's own wins
    merged = with_environment(["PATH=/bin", "HOSTNAME=h", "X=1"], [DB._replace(ports=[], env=["A=b"])], "web")
    assert merged == ["PATH=/bin", "HOSTNAME=h", "DB_NAME=/web/db", "DB_ENV_A=b", "X=1"]


def test_runs_of_consecutive_ports_get_dockers_start_and_end_variables() -> None:
    # Docker 20.10's `env` in a container run with --link db:my-db, where db was run with
    # --expose 8000-8002 --expose 53/udp --expose 80 --expose 9000-9001 --expose 7000-7002/udp -e SECRET=x
    ports = ["53/udp", "80/tcp", "7000/udp", "7001/udp", "7002/udp", "8000/tcp", "8001/tcp", "8002/tcp",
             "9000/tcp", "9001/tcp"]
    db = Link("db", "my-db", "0123456789ab", "10.231.77.2", ["SECRET=x"], ports)
    ip = "10.231.77.2"
    expected = [
        f"MY_DB_PORT=udp://{ip}:53",
        f"MY_DB_PORT_7000_UDP_START=udp://{ip}:7000", f"MY_DB_PORT_7000_UDP_ADDR={ip}", "MY_DB_PORT_7000_UDP_PROTO=udp",
        "MY_DB_PORT_7000_UDP_PORT_START=7000", f"MY_DB_PORT_7000_UDP_END=udp://{ip}:7002",
        "MY_DB_PORT_7000_UDP_PORT_END=7002",
        f"MY_DB_PORT_8000_TCP_START=tcp://{ip}:8000", f"MY_DB_PORT_8000_TCP_ADDR={ip}", "MY_DB_PORT_8000_TCP_PROTO=tcp",
        "MY_DB_PORT_8000_TCP_PORT_START=8000", f"MY_DB_PORT_8000_TCP_END=tcp://{ip}:8002",
        "MY_DB_PORT_8000_TCP_PORT_END=8002"]
    for port in ports:
        number, proto = port.split("/")
        key = f"MY_DB_PORT_{number}_{proto.upper()}"
        expected += [f"{key}={proto}://{ip}:{number}", f"{key}_ADDR={ip}", f"{key}_PORT={number}",
                     f"{key}_PROTO={proto}"]
    expected += ["MY_DB_NAME=/web/my-db", "MY_DB_ENV_SECRET=x"]
    unique = list(dict.fromkeys(expected))  # Docker's Env keeps a name set twice in its first place
    assert environment([db], "web") == unique


def test_a_run_is_found_by_number_alone_as_dockers() -> None:
    db = Link("db", "db", "h", "10.0.0.2", [], ["80/tcp", "80/udp", "81/tcp"])
    env = environment([db], "web")
    assert "DB_PORT_80_TCP_START=tcp://10.0.0.2:80" in env
    assert "DB_PORT_80_TCP_END=tcp://10.0.0.2:81" in env and "DB_PORT_80_TCP_PORT_END=81" in env
    two = environment([db._replace(ports=["9000/tcp", "9001/tcp"])], "web")
    assert not [item for item in two if "_START=" in item or "_END=" in item]
