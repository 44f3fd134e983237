"""``/images``, ``/volumes``, ``/networks``: the stores the CLI uses, in Docker 20.10's shapes."""

from __future__ import annotations

from typing import Any

from skiff.api.errors import BadRequest, NotImplementedYet
from skiff.api.messages import Request, Response
from skiff.api.server import Context
from skiff.errors import VolumeError

# --- images ------------------------------------------------------------------------------------


def images(context: Context, request: Request) -> Response:
    """``GET /images/json``: Docker's ImageSummary per image (``filters``; ``all`` changes nothing:
    skiff keeps no intermediate images)."""
    from skiff.engine.filters import FilterArgs, image_list_filter
    from skiff.image.store import ImageStore

    store = ImageStore(context.paths)
    listed = image_list_filter(context.paths, FilterArgs(request.filters()))
    summaries = []
    for image in store.list():
        names = listed(image)
        if names is not None:
            summaries.append(_image_summary(image, *names))
    return Response(200, summaries)


def _image_summary(image: Any, tags: list[str], digests: list[str]) -> dict[str, Any]:
    from skiff.timestamps import parse

    return {
        "Containers": -1, "Created": int(parse(image.created)), "Id": image.id,
        "Labels": (image.config or {}).get("Labels") or None, "ParentId": "",
        "RepoDigests": digests or (["<none>@<none>"] if not tags else []),
        "RepoTags": tags or ["<none>:<none>"], "SharedSize": -1, "Size": image.size, "VirtualSize": image.size,
    }


def image_inspect(context: Context, request: Request) -> Response:
    from skiff.image.store import ImageStore

    return Response(200, ImageStore(context.paths).inspect(request.params["name"]))


# --- volumes -----------------------------------------------------------------------------------


def volumes(context: Context, request: Request) -> Response:
    """``GET /volumes``: ``{"Volumes": [...], "Warnings": null}`` (``filters``: name, label, driver, dangling)."""
    from skiff.engine.filters import FilterArgs, volume_list_filter
    from skiff.engine.volumes import volumes_in_use
    from skiff.volume.store import VolumeStore

    store = VolumeStore(context.paths)
    include = volume_list_filter(FilterArgs(request.filters()), lambda: volumes_in_use(context.paths))
    return Response(200, {"Volumes": [v.inspect() for v in store.list() if include(v)], "Warnings": None})


def volume_create(context: Context, request: Request) -> Response:
    """``POST /volumes/create``: ``{Name, Driver, DriverOpts, Labels}``; 201 and the volume."""
    from skiff.volume.store import VolumeStore

    body = request.json_object(required=False)
    name, driver = body.get("Name") or None, body.get("Driver") or "local"
    labels, options = body.get("Labels") or {}, body.get("DriverOpts") or {}
    if not isinstance(name, (str, type(None))) or not isinstance(driver, str):
        raise BadRequest("Name and Driver must be strings")
    for field, value in (("Labels", labels), ("DriverOpts", options)):
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise BadRequest(f"{field} must map strings to strings")
    try:
        volume = VolumeStore(context.paths).create(name, labels=labels, driver=driver, options=options)
    except VolumeError as exc:  # a driver or option skiff does not take: the request's fault
        raise BadRequest(str(exc)) from None
    return Response(201, volume.inspect())


def volume_inspect(context: Context, request: Request) -> Response:
    from skiff.volume.store import VolumeStore

    return Response(200, VolumeStore(context.paths).inspect(request.params["name"]))


def volume_remove(context: Context, request: Request) -> Response:
    """204; 404 unknown (unless ``force``), 409 in use."""
    from skiff.engine.volumes import volumes_in_use
    from skiff.volume.store import VolumeStore

    name = request.params["name"]
    users = volumes_in_use(context.paths).get(name, [])
    VolumeStore(context.paths).remove(name, users, force=request.flag("force"))
    return Response(204)


# --- networks ----------------------------------------------------------------------------------


def networks(context: Context, request: Request) -> Response:
    """``GET /networks``: the inspect document of each (``filters``: driver, id, label, name, scope, type)."""
    from skiff.engine.filters import FilterArgs, network_list_filter
    from skiff.network import NetworkManager

    manager = NetworkManager(context.paths)
    include = network_list_filter(FilterArgs(request.filters()))
    return Response(200, [_as_dockerd_shows(manager.inspect_network(n["Name"])) for n in manager.list_networks()
                          if include(n)])


def network_inspect(context: Context, request: Request) -> Response:
    from skiff.engine.network import predefined_members
    from skiff.network import NetworkManager

    ref = request.params["id"]
    members = predefined_members(context.paths, ref)
    return Response(200, _as_dockerd_shows(NetworkManager(context.paths).inspect_network(ref, members=members)))


def _as_dockerd_shows(document: dict[str, Any]) -> dict[str, Any]:
    """A user network's document without the bridge name skiff adds to ``Options``.

    dockerd shows only the options it was given; docker-compose compares a network's
    ``Options`` with its file's ``driver_opts`` and, on any difference, refuses to go on
    (``needs to be recreated - option "com.docker.network.bridge.name" has changed``).
    """
    options = document.get("Options")
    if document.get("Name") != "bridge" and isinstance(options, dict):
        options.pop("com.docker.network.bridge.name", None)
    return document


def network_create(context: Context, request: Request) -> Response:
    """``POST /networks/create``: a bridge network; 201 ``{"Id": ..., "Warning": ""}``."""
    from skiff.engine.network import check_network_driver
    from skiff.network import NetworkManager

    body = request.json_object()
    name = body.get("Name")
    if not isinstance(name, str) or not name:
        raise BadRequest("Name is required")
    driver = body.get("Driver") or None
    if not isinstance(driver, (str, type(None))):
        raise BadRequest("Driver must be a string")
    check_network_driver(driver)
    if body.get("EnableIPv6"):  # refused rather than made IPv4-only behind the client's back
        raise NotImplementedYet("EnableIPv6: skiff's networks are IPv4 only")
    ipam = body.get("IPAM") or {}
    configs = ipam.get("Config") or [] if isinstance(ipam, dict) else None
    if not isinstance(configs, list) or len(configs) > 1 or not all(isinstance(c, dict) for c in configs):
        raise BadRequest("IPAM.Config: at most one subnet (IPv4) is supported")
    subnet = configs[0].get("Subnet") if configs else None
    if isinstance(subnet, str) and ":" in subnet:
        raise NotImplementedYet(f"IPAM.Config: {subnet} is an IPv6 subnet: skiff's networks are IPv4 only")
    gateway = configs[0].get("Gateway") if configs else None
    labels, options = body.get("Labels") or {}, body.get("Options") or {}
    for field, value in (("Labels", labels), ("Options", options)):
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise BadRequest(f"{field} must map strings to strings")
    record = NetworkManager(context.paths).create_network(name, subnet=subnet, gateway=gateway,
                                                          internal=bool(body.get("Internal")), labels=labels,
                                                          options=options)
    return Response(201, {"Id": record["Id"], "Warning": ""})


def network_remove(context: Context, request: Request) -> Response:
    from skiff.network import NetworkManager

    NetworkManager(context.paths).remove_network(request.params["id"])
    return Response(204)
