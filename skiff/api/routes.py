"""The Engine API's paths: version prefixes, and which endpoint serves a method and path.

Docker 20.10 speaks API 1.41 and accepts every older version down to its minimum, 1.12; its
clients put ``/v1.NN`` before each path once they have negotiated (or no prefix before). skiff
accepts the prefixes 1.12 (Docker 20.10's minimum, which ``/version`` reports) to 1.43 (what the
clients of Docker 20.10 to 24, docker-py and compose send) and the unprefixed paths, and answers
as 1.41 in every case.
"""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import unquote

from skiff.api.errors import BadRequest, MethodNotAllowed, RouteNotFound

API_VERSION = "1.41"
MIN_VERSION = (1, 12)   # skiff.engine.system.MIN_API_VERSION: Docker 20.10's
MAX_VERSION = (1, 43)

_PREFIX = re.compile(r"/v(\d+)\.(\d+)(?=/)")


def split_version(path: str) -> tuple[str | None, str]:
    """``/v1.41/containers/json`` -> ``("1.41", "/containers/json")``; no prefix: ``(None, path)``.

    A version outside 1.12..1.43 is refused with Docker's words (400).
    """
    match = _PREFIX.match(path)
    if not match:
        return None, path
    version = (int(match.group(1)), int(match.group(2)))
    text = f"{version[0]}.{version[1]}"
    if version < MIN_VERSION:
        raise BadRequest(f"client version {text} is too old. Minimum supported API version is "
                         f"{MIN_VERSION[0]}.{MIN_VERSION[1]}, please upgrade your client to a newer version")
    if version > MAX_VERSION:
        raise BadRequest(f"client version {text} is too new. Maximum supported API version is "
                         f"{MAX_VERSION[0]}.{MAX_VERSION[1]}")
    return text, path[match.end():]


class Route(NamedTuple):
    method: str
    pattern: re.Pattern[str]
    endpoint: str            # "module.function" under skiff.api


def _route(method: str, template: str, endpoint: str) -> Route:
    """``/containers/{id}/json`` -> a pattern whose groups are the path's parameters.

    ``{name*}`` may hold slashes (an image's name: ``library/busybox``).
    """
    regex = re.sub(r"\{(\w+)\*\}", r"(?P<\1>.+)", template)
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex)
    return Route(method, re.compile(f"{regex}/?"), endpoint)


ROUTES: tuple[Route, ...] = (
    _route("GET", "/_ping", "system.ping"),
    _route("HEAD", "/_ping", "system.ping"),
    _route("GET", "/version", "system.version"),
    _route("GET", "/info", "system.info"),
    _route("GET", "/events", "system.events"),
    _route("GET", "/containers/json", "containers.list_"),
    _route("POST", "/containers/create", "containers.create"),
    _route("GET", "/containers/{id}/json", "containers.inspect"),
    _route("POST", "/containers/{id}/start", "containers.start"),
    _route("POST", "/containers/{id}/stop", "containers.stop"),
    _route("POST", "/containers/{id}/kill", "containers.kill"),
    _route("POST", "/containers/{id}/restart", "containers.restart"),
    _route("POST", "/containers/{id}/pause", "containers.pause"),
    _route("POST", "/containers/{id}/unpause", "containers.unpause"),
    _route("POST", "/containers/{id}/rename", "containers.rename"),
    _route("POST", "/containers/{id}/wait", "containers.wait"),
    _route("GET", "/containers/{id}/logs", "containers.logs"),
    _route("DELETE", "/containers/{id}", "containers.remove"),
    _route("GET", "/containers/{id}/archive", "archive.get"),
    _route("HEAD", "/containers/{id}/archive", "archive.stat"),
    _route("PUT", "/containers/{id}/archive", "archive.put"),
    _route("GET", "/containers/{id}/export", "archive.export"),
    _route("GET", "/containers/{id}/changes", "archive.changes"),
    _route("GET", "/containers/{id}/top", "inspection.top"),
    _route("GET", "/containers/{id}/stats", "inspection.stats"),
    _route("POST", "/containers/{id}/update", "inspection.update"),
    _route("POST", "/containers/{id}/attach", "attach.attach"),
    _route("GET", "/containers/{id}/attach/ws", "attach.attach_ws"),
    _route("POST", "/containers/{id}/resize", "attach.resize"),
    _route("POST", "/containers/{id}/exec", "execs.create"),
    _route("POST", "/exec/{id}/start", "execs.start"),
    _route("POST", "/exec/{id}/resize", "execs.resize"),
    _route("GET", "/exec/{id}/json", "execs.inspect"),
    _route("GET", "/images/json", "objects.images"),
    _route("GET", "/images/{name*}/json", "objects.image_inspect"),
    _route("GET", "/volumes", "objects.volumes"),
    _route("POST", "/volumes/create", "objects.volume_create"),
    _route("GET", "/volumes/{name}", "objects.volume_inspect"),
    _route("DELETE", "/volumes/{name}", "objects.volume_remove"),
    _route("GET", "/networks", "objects.networks"),
    _route("POST", "/networks/create", "objects.network_create"),
    _route("GET", "/networks/{id}", "objects.network_inspect"),
    _route("DELETE", "/networks/{id}", "objects.network_remove"),
    _route("POST", "/images/create", "images.create"),
    _route("POST", "/images/load", "images.load"),
    _route("GET", "/images/get", "images.get"),
    _route("POST", "/images/prune", "images.prune"),
    _route("GET", "/images/{name*}/get", "images.get"),
    _route("GET", "/images/{name*}/history", "images.history"),
    _route("POST", "/images/{name*}/tag", "images.tag"),
    _route("POST", "/images/{name*}/push", "push.push"),
    _route("DELETE", "/images/{name*}", "images.remove"),
    _route("POST", "/containers/prune", "prunes.containers"),
    _route("POST", "/volumes/prune", "prunes.volumes"),
    _route("POST", "/networks/prune", "prunes.networks"),
    _route("GET", "/system/df", "prunes.disk_usage"),
    _route("POST", "/networks/{id}/connect", "networking.connect"),
    _route("POST", "/networks/{id}/disconnect", "networking.disconnect"),
    _route("POST", "/commit", "commit.commit"),
    _route("POST", "/build", "build.build"),
)


# Endpoints of Docker's API that skiff does not serve yet: a 501 that names them, rather than
# "page not found", so a client (``docker run`` without -d attaches) says what is missing.
NOT_YET: tuple[Route, ...] = tuple(_route(method, template, "system.not_yet") for method, template in (
    ("POST", "/auth"), ("GET", "/distribution/{name*}/json"), ("POST", "/session"),
))


def _by_first_segment(routes: tuple[Route, ...]) -> dict[str, tuple[Route, ...]]:
    """The routes grouped by their path's first segment, in table order (no template has a
    parameter there): a path is matched against its group's few patterns, not all of them."""
    groups: dict[str, list[Route]] = {}
    for route in routes:
        groups.setdefault(_first_segment(route.pattern.pattern), []).append(route)
    return {segment: tuple(group) for segment, group in groups.items()}


def _first_segment(path: str) -> str:
    return path.split("/", 2)[1]


_GROUPS = _by_first_segment(ROUTES + NOT_YET)


def resolve(method: str, path: str) -> tuple[str, dict[str, str]]:
    """The endpoint for a method and an unprefixed path, with the path's parameters (decoded).

    A path no route has: 404 ``page not found``; a path with other methods only: 405.
    """
    known_path = False
    for route in _GROUPS.get(_first_segment(path), ()) if path.startswith("/") else ():
        match = route.pattern.fullmatch(path)
        if not match:
            continue
        if route.method == method:
            return route.endpoint, {key: unquote(value) for key, value in match.groupdict().items()}
        known_path = True
    if known_path:
        raise MethodNotAllowed()
    raise RouteNotFound()
