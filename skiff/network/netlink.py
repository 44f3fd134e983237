"""A minimal rtnetlink client: just the link, address and route requests skiff needs.

Why not pyroute2: importing it costs 70-85 ms (its package ``__init__`` pulls
in asyncio and every netlink family), three times the 25 ms budget that bridge
networking may add to ``skiff run``. These few requests are plain structs over
an AF_NETLINK socket, so the stdlib is enough and the socket is CLOEXEC.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
from types import TracebackType

from skiff.errors import SyscallError

# include/uapi/linux/netlink.h, rtnetlink.h, if_link.h, if_addr.h
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_DUMP = 0x300

RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_NEWADDR = 20
RTM_NEWROUTE = 24

IFF_UP = 0x1
IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_MASTER = 10
IFLA_LINKINFO = 18
IFLA_NET_NS_FD = 28
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
VETH_INFO_PEER = 1
NLA_F_NESTED = 0x8000

IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_BROADCAST = 4

RTA_DST = 1
RTA_OIF = 4
RTA_GATEWAY = 5
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3
RT_SCOPE_UNIVERSE = 0
RTN_UNICAST = 1

_NLMSGHDR = struct.Struct("=IHHII")
_IFINFOMSG = struct.Struct("=BxHiII")
_IFADDRMSG = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def _str_attr(kind: int, value: str) -> bytes:
    return _attr(kind, value.encode() + b"\0")


def _u32_attr(kind: int, value: int) -> bytes:
    return _attr(kind, struct.pack("=I", value))


def _ifinfo(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return _IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, flags, change)


def mac_bytes(mac: str) -> bytes:
    return bytes(int(part, 16) for part in mac.split(":"))


class Netlink:
    """One NETLINK_ROUTE socket, bound to the network namespace it was created in."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                  socket.NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self._seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Netlink":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def request(self, msg_type: int, flags: int, body: bytes, what: str) -> None:
        """Send one request and wait for its ACK; a kernel error becomes SyscallError naming ``what``."""
        self._seq += 1
        header = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), msg_type,
                                flags | NLM_F_REQUEST | NLM_F_ACK, self._seq, 0)
        self.sock.send(header + body)
        while True:
            data = self.sock.recv(65536)
            offset = 0
            while offset < len(data):
                length, kind, _, seq, _ = _NLMSGHDR.unpack_from(data, offset)
                if kind == NLMSG_ERROR and seq == self._seq:
                    code = -struct.unpack_from("=i", data, offset + _NLMSGHDR.size)[0]
                    if code:
                        raise SyscallError("netlink", code, what)
                    return
                offset += (length + 3) & ~3

    # --- links ------------------------------------------------------------

    def add_bridge(self, name: str, mtu: int) -> None:
        linkinfo = _attr(IFLA_LINKINFO | NLA_F_NESTED, _str_attr(IFLA_INFO_KIND, "bridge"))
        body = (_ifinfo(flags=IFF_UP, change=IFF_UP) + _str_attr(IFLA_IFNAME, name) + _u32_attr(IFLA_MTU, mtu)
                + linkinfo)
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body, f"create bridge {name}")

    def add_veth(self, host_name: str, master_index: int, peer_name: str, peer_netns_fd: int,
                 peer_mac: str, mtu: int) -> None:
        """A veth pair: the host end up and enslaved to the bridge, the peer created inside the netns."""
        peer = (_ifinfo() + _str_attr(IFLA_IFNAME, peer_name) + _u32_attr(IFLA_NET_NS_FD, peer_netns_fd)
                + _attr(IFLA_ADDRESS, mac_bytes(peer_mac)) + _u32_attr(IFLA_MTU, mtu))
        data = _attr(IFLA_INFO_DATA | NLA_F_NESTED, _attr(VETH_INFO_PEER, peer))
        linkinfo = _attr(IFLA_LINKINFO | NLA_F_NESTED, _str_attr(IFLA_INFO_KIND, "veth") + data)
        body = (_ifinfo(flags=IFF_UP, change=IFF_UP) + _str_attr(IFLA_IFNAME, host_name)
                + _u32_attr(IFLA_MTU, mtu) + _u32_attr(IFLA_MASTER, master_index) + linkinfo)
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body, f"create veth {host_name}")

    def set_up(self, index: int, what: str) -> None:
        self.request(RTM_NEWLINK, 0, _ifinfo(index, IFF_UP, IFF_UP), f"set {what} up")

    def delete_link(self, name: str) -> bool:
        """Delete a link by name; False when it did not exist."""
        try:
            self.request(RTM_DELLINK, 0, _ifinfo() + _str_attr(IFLA_IFNAME, name), f"delete link {name}")
        except SyscallError as exc:
            if exc.errno in (errno.ENODEV, errno.ENOENT):
                return False
            raise
        return True

    # --- addresses and routes ---------------------------------------------

    def add_address(self, index: int, interface: ipaddress.IPv4Interface, what: str) -> None:
        packed = interface.ip.packed
        body = (_IFADDRMSG.pack(socket.AF_INET, interface.network.prefixlen, 0, RT_SCOPE_UNIVERSE, index)
                + _attr(IFA_LOCAL, packed) + _attr(IFA_ADDRESS, packed)
                + _attr(IFA_BROADCAST, interface.network.broadcast_address.packed))
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body, f"add address {interface} to {what}")

    def add_default_route(self, gateway: ipaddress.IPv4Address, index: int) -> None:
        body = (_RTMSG.pack(socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE,
                            RTN_UNICAST, 0)
                + _attr(RTA_GATEWAY, gateway.packed) + _u32_attr(RTA_OIF, index))
        self.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, body, f"add default route via {gateway}")


def link_index(name: str) -> int | None:
    """The index of a link in the calling thread's network namespace, or None."""
    try:
        return socket.if_nametoindex(name)
    except OSError:
        return None

