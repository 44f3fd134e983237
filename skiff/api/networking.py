"""``POST /networks/{id}/connect`` and ``/disconnect``: what ``skiff network connect|disconnect`` do."""

from __future__ import annotations

from typing import Any

from skiff.api.errors import BadRequest, NotImplementedYet
from skiff.api.messages import Request, Response
from skiff.api.server import Context


def connect(context: Context, request: Request) -> Response:
    """``{"Container", "EndpointConfig": {"Aliases", "IPAMConfig": {"IPv4Address"}}}``: 200."""
    from skiff.engine.network import connect

    body = request.json_object()
    container = _container(context, body)
    ip, aliases = endpoint_settings(body.get("EndpointConfig"), "EndpointConfig")
    connect(context.paths, container, request.params["id"], ip=ip, aliases=aliases)
    return Response(200)


def disconnect(context: Context, request: Request) -> Response:
    """``{"Container", "Force"}``: 200; 409 when it is not connected (unless ``Force``)."""
    from skiff.engine.network import disconnect
    from skiff.errors import Conflict

    body = request.json_object()
    container = _container(context, body)
    force = body.get("Force") or False
    if not isinstance(force, bool):
        raise BadRequest("Force must be true or false")
    try:
        disconnect(context.paths, container, request.params["id"])
    except Conflict:
        if not force:
            raise
    return Response(200)


def _container(context: Context, body: dict[str, Any]) -> str:
    name = body.get("Container")
    if not isinstance(name, str) or not name:
        raise BadRequest("Container is required")
    return context.engine().find(name).id


def endpoint_settings(settings: Any, where: str, links_ok: bool = False) -> tuple[str | None, list[str]]:
    """Docker's EndpointSettings as ``--ip`` and ``--network-alias``: the address and the aliases.

    The fields skiff does not take (MAC, driver options) are refused when set; ``Links`` too, but on
    create (``links_ok``), where the client sends ``HostConfig.Links`` again in them. The output fields
    (``IPAddress``, ``GlobalIPv6Address``, ``IPv6Gateway``...) are ignored, as dockerd ignores them.
    An IPv6 address is refused as Docker refuses it on a network with no IPv6 subnet: skiff's
    networks have none (400)."""
    import ipaddress

    if settings is None:
        return None, []
    if not isinstance(settings, dict):
        raise BadRequest(f"{where} must be an object")
    for key in ("DriverOpts", "MacAddress", *(() if links_ok else ("Links",))):
        if settings.get(key):
            raise NotImplementedYet(f"{where}.{key} is not supported by skiff's Engine API yet")
    aliases = settings.get("Aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise BadRequest(f"{where}.Aliases must be a list of strings")
    ipam = settings.get("IPAMConfig") or {}
    if not isinstance(ipam, dict):
        raise BadRequest(f"{where}.IPAMConfig must be an object")
    if ipam.get("LinkLocalIPs"):
        raise NotImplementedYet(f"{where}.IPAMConfig.LinkLocalIPs is not supported by skiff's Engine API yet")
    ip, ip6 = ipam.get("IPv4Address") or None, ipam.get("IPv6Address") or None
    for value, key in ((ip, "IPv4Address"), (ip6, "IPv6Address")):
        if not isinstance(value, (str, type(None))):
            raise BadRequest(f"{where}.IPAMConfig.{key} must be a string")
    if ip6 is not None:
        try:
            if ipaddress.ip_address(ip6).version != 6:
                raise ValueError(ip6)
        except ValueError:
            raise BadRequest(f"invalid IPv6 address: {ip6}") from None
        raise BadRequest("user specified IP address is supported only when connecting to networks with user "
                         "configured subnets (skiff's networks have no IPv6 subnet)")
    return ip, list(aliases)
