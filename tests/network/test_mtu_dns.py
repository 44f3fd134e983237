"""Docker's network details (issue 13): ``-o com.docker.network.driver.mtu``, ``NAME.NETWORK``
names, and /etc/resolv.conf and /etc/hosts on a user network as Docker 20.10 writes them.

Recorded from a private dockerd 20.10.24 on a user network: ``search a.example`` /
``nameserver 127.0.0.11`` / ``options rotate ndots:0`` (``ndots:0`` only when no ndots is
given); the own line of /etc/hosts is ``IP<TAB>hostname``; ``c3.NET`` resolves, the container
part in any case, the network's name only as it is spelled; ``-o ...mtu=1400`` gives eth0 an
MTU of 1400.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from skiff.errors import InvalidArgument
from skiff.network import NetworkManager
from skiff.network.manager import MTU_OPTION, NetworkRequest
from tests.conftest import Skiff

from .conftest import free_subnet, ns


def cid() -> str:
    return secrets.token_hex(32)


def link_mtu(netns: Path, name: str) -> int:
    """From netlink inside the namespace (the host's /sys shows the host's links, not its)."""
    fields = ns(netns, "ip", "-o", "link", "show", name, check=True).stdout.split()
    return int(fields[fields.index("mtu") + 1])


def test_the_mtu_option_sets_the_bridge_and_the_veths(nm: NetworkManager) -> None:
    record = nm.create_network("small", subnet=free_subnet(), options={MTU_OPTION: "1500"})
    assert record["Options"][MTU_OPTION] == "1500"
    att = nm.attach(cid(), NetworkRequest(network="small"))
    assert link_mtu(att.netns_path, "eth0") == 1500
    bridge = nm._load_network("small")["Bridge"]
    assert int(Path(f"/sys/class/net/{bridge}/mtu").read_text()) == 1500
    # Without the option a network keeps skiff's 64 KiB MTU (the root's "mtu" in config.json).
    nm.create_network("big", subnet=free_subnet())
    assert link_mtu(nm.attach(cid(), NetworkRequest(network="big")).netns_path, "eth0") == nm.config.mtu == 65535


@pytest.mark.parametrize("value", ["abc", "10", "70000"])
def test_a_bad_mtu_option_is_refused_before_anything_is_made(nm: NetworkManager, value: str) -> None:
    with pytest.raises(InvalidArgument, match=MTU_OPTION):
        nm.create_network("bad", subnet=free_subnet(), options={MTU_OPTION: value})
    assert nm._load_network("bad") is None


def test_name_dot_network_resolves_as_dockers_embedded_dns(nm: NetworkManager) -> None:
    nm.create_network("appnet", subnet=free_subnet())
    web = nm.attach(cid(), NetworkRequest(network="appnet", aliases=["web"]), name="web")
    client = nm.attach(cid(), NetworkRequest(network="appnet"), name="client")
    gateway, address = web.settings()["Gateway"], web.settings()["IPAddress"]

    def resolves(name: str) -> bool:
        answer = ns(client.netns_path, "busybox", "nslookup", name, gateway)
        return address in answer.stdout.split("Name:", 1)[-1]

    assert resolves("web.appnet") and resolves("WEB.appnet")
    assert not resolves("web.APPNET") and not resolves("web.othernet") and not resolves("web.bridge")


def test_user_network_files_are_dockers(nm: NetworkManager) -> None:
    nm.create_network("filenet", subnet=free_subnet())
    att = nm.attach(cid(), NetworkRequest(network="filenet", hostname="box", aliases=["web"],
                                          dns_search=["a.example"], dns_options=["rotate"],
                                          add_hosts=["db:10.1.2.3"]), name="web")
    gateway, address = att.settings()["Gateway"], att.settings()["IPAddress"]
    assert att.resolv_conf == f"search a.example\nnameserver {gateway}\noptions rotate ndots:0\n"
    assert att.hosts.endswith(f"ff02::2\tip6-allrouters\n10.1.2.3\tdb\n{address}\tbox\n")  # not its name
    other = nm.attach(cid(), NetworkRequest(network="filenet", hostname="db.example.com", dns_options=["ndots:3"]))
    assert other.resolv_conf.endswith(f"nameserver {gateway}\noptions ndots:3\n")
    assert other.hosts.endswith(f"\t{'db.example.com db'}\n")  # a FQDN, then the short name


def test_network_create_takes_the_mtu_option(skiff: Skiff, busybox_image: str) -> None:
    skiff.ok("network", "create", "--subnet", free_subnet(), "-o", f"{MTU_OPTION}=1400", "smallnet")
    options = json.loads(skiff.ok("network", "inspect", "-f", "{{json .Options}}", "smallnet"))
    assert options[MTU_OPTION] == "1400"
    assert skiff.ok("run", "--rm", "--network", "smallnet", busybox_image,
                    "cat", "/sys/class/net/eth0/mtu") == "1400\n"
    proc = skiff("network", "create", "-o", f"{MTU_OPTION}=abc", "badnet")
    assert proc.returncode != 0 and f"failed to parse {MTU_OPTION} value: abc" in proc.stderr
    skiff.ok("network", "rm", "smallnet")
