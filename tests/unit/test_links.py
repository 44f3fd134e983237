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
