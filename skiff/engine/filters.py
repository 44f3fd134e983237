"""Docker's ``--filter`` for every listing, prune and ``events``, in one place.

``FilterArgs`` is Docker's ``filters.Args``: each key holds a set of values; values of one
key are OR-ed, keys AND-ed, except ``label`` whose values must all match (``MatchKVList``).
Each kind of object has its accepted keys and a function that turns the arguments into a
predicate, checking the values first with Docker 20.10's own error texts (the daemon's
errors: ``Invalid filter 'x'``, exit 1). The CLI and an Engine API server both call these.

Docker's matching rules, kept as they are: ``name`` and ``id`` of containers, volumes and
networks are regular expressions searched in the value (a container's name begins with
``/``: ``name=^/web$``); ``container``, ``volume``, ``network`` of events match an id or
name by prefix; ``before``/``since`` name a container; ``until`` takes Docker's times.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from skiff.engine.state import Status, shown
from skiff.errors import InvalidFilter

if TYPE_CHECKING:
    from skiff.image.store import Image
    from skiff.paths import Paths
    from skiff.volume.store import Volume

Predicate = Callable[[Any], bool]

CONTAINER_LIST_FILTERS = frozenset({"ancestor", "before", "exited", "expose", "health", "id", "label", "name",
                                    "status", "since", "volume", "network", "is-task", "publish", "isolation"})
CONTAINER_PRUNE_FILTERS = frozenset({"label", "label!", "until"})
IMAGE_PRUNE_FILTERS = frozenset({"dangling", "label", "label!", "until"})
IMAGE_LIST_FILTERS = frozenset({"before", "dangling", "label", "reference", "since"})
VOLUME_LIST_FILTERS = frozenset({"dangling", "driver", "label", "name"})
VOLUME_PRUNE_FILTERS = frozenset({"label", "label!"})
NETWORK_PRUNE_FILTERS = frozenset({"label", "label!", "until"})
NETWORK_LIST_FILTERS = frozenset({"dangling", "driver", "id", "label", "name", "scope", "type"})
# Docker 20.10 does not check the keys of ``events`` filters: an unknown key is ignored.
EVENT_FILTERS = frozenset({"config", "container", "daemon", "event", "image", "label", "network", "node",
                           "plugin", "scope", "secret", "service", "type", "volume"})

CONTAINER_STATES = tuple(s.value for s in (Status.PAUSED, Status.RESTARTING, Status.RUNNING, Status.DEAD,
                                           Status.CREATED, Status.EXITED, Status.REMOVING))  # Docker's order
HEALTH_STATES = ("starting", "healthy", "unhealthy", "none")
PREDEFINED_NETWORKS = ("bridge", "host", "none")


class FilterArgs:
    """Docker's filters.Args: key -> the set of values given for it."""

    def __init__(self, fields: Mapping[str, Iterable[str]] | None = None) -> None:
        self.fields: dict[str, list[str]] = {k: list(dict.fromkeys(v)) for k, v in (fields or {}).items()}

    @classmethod
    def parse(cls, items: Iterable[str]) -> "FilterArgs":
        """``name=value`` words as the client's ``--filter`` takes them; ValueError names a bad one."""
        fields: dict[str, list[str]] = {}
        for item in items:
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(item)
            fields.setdefault(key.strip().lower(), []).append(value.strip())
        return cls(fields)

    def __bool__(self) -> bool:
        return bool(self.fields)

    def get(self, key: str) -> list[str]:
        return list(self.fields.get(key, []))

    def contains(self, key: str) -> bool:
        return key in self.fields

    def validate(self, accepted: Iterable[str]) -> None:
        for key in self.fields:
            if key not in accepted:
                raise InvalidFilter(f"Invalid filter '{key}'")

    def exact_match(self, key: str, source: str) -> bool:
        values = self.fields.get(key)
        return not values or source in values

    def fuzzy_match(self, key: str, source: str) -> bool:
        """Equal to, or begins with, one of the values (Docker's FuzzyMatch)."""
        values = self.fields.get(key)
        return not values or any(source.startswith(v) for v in values)

    def match(self, key: str, source: str) -> bool:
        """Equal to, or the regular expression of one of the values is found in it (Docker's Match)."""
        values = self.fields.get(key)
        if not values or source in values:
            return True
        for value in values:
            try:
                if re.search(value, source):
                    return True
            except re.error:
                continue  # Go skips a value that does not compile
        return False

    def match_kv_list(self, key: str, sources: dict[str, str] | None) -> bool:
        """Every value (``k`` or ``k=v``) holds for ``sources`` (Docker's MatchKVList)."""
        values = self.fields.get(key)
        if not values:
            return True
        sources = sources or {}
        for value in values:
            name, has_value, wanted = value.partition("=")
            if name not in sources or (has_value and sources[name] != wanted):
                return False
        return True

    def bool_or_default(self, key: str, default: bool) -> bool:
        """Docker's GetBoolOrDefault: ``true``/``1`` or ``false``/``0``, else its error."""
        values = self.fields.get(key)
        if not values:
            return default
        for value in values:
            if value.lower() not in ("true", "1", "false", "0"):
                raise InvalidFilter(f"invalid value for filter '{key}', must be \"true\" (or \"1\"), or "
                                    "\"false\" (or \"0\")")
        return values[0].lower() in ("true", "1")


def _go_list(values: list[str]) -> str:
    """How Go's %v prints a []string (Docker's errors quote the values so): ``[a b]``."""
    return "[" + " ".join(values) + "]"


def _labels_match(args: FilterArgs, labels: dict[str, str] | None) -> bool:
    """``label`` all hold and, if given, not all of ``label!`` hold (Docker's prune rule)."""
    if not args.match_kv_list("label", labels):
        return False
    return not (args.contains("label!") and args.match_kv_list("label!", labels))


# --- times -------------------------------------------------------------------------

_GO_DURATION = re.compile(r"([-+]?)((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+")
_GO_UNIT = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration(text: str) -> float | None:
    """Seconds of a Go duration (``10m``, ``1h30m``, ``-5s``), or None."""
    if text == "0":
        return 0.0
    found = _GO_DURATION.fullmatch(text)
    if not found:
        return None
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _GO_UNIT.findall(text))
    return -seconds if found.group(1) == "-" else seconds


def docker_time_ns(value: str, now: float | None = None) -> int:
    """Docker's ``--since``/``--until``/``until=`` (timetypes.GetTimestamp): a Go duration before
    now, a Unix time (``1607104800.5``), or RFC 3339 and its shorter forms (``2020-12-04``,
    ``2020-12-04T17``, ``2020-12-04T17:00``, with or without a zone; local time without).
    Nanoseconds since the epoch; ValueError with Docker's text otherwise."""
    now = time.time() if now is None else now
    seconds = go_duration(value)
    if seconds is not None and value != "0":
        return int((now - seconds) * 1e9)
    stamp = _rfc3339_ns(value)
    if stamp is not None:
        return stamp
    if "-" in value:
        raise ValueError(f'parsing time "{value}": cannot parse as a time')
    unix = re.fullmatch(r"(\d+)(?:\.(\d{1,9}))?", value)
    if not unix:
        raise ValueError(f'failed to parse value as time or duration: "{value}"')
    return int(unix.group(1)) * 1_000_000_000 + int((unix.group(2) or "0").ljust(9, "0"))


def _rfc3339_ns(value: str) -> int | None:
    from datetime import datetime

    found = re.fullmatch(r"(\d{4}-\d{2}-\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?)?"
                         r"(Z|z|[+-]\d{2}:\d{2})?", value)
    if not found:
        return None
    date, hour, minute, second, fraction, zone = found.groups()
    text = f"{date}T{hour or '00'}:{minute or '00'}:{second or '00'}"
    if zone and zone not in ("Z", "z"):
        text += zone
    elif zone:
        text += "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    whole = int(parsed.timestamp()) if parsed.tzinfo else int(time.mktime(parsed.timetuple()))
    return whole * 1_000_000_000 + int((fraction or "0").ljust(9, "0"))


def _until_ns(args: FilterArgs) -> int | None:
    values = args.get("until")
    if not values:
        return None
    if len(values) > 1:
        raise InvalidFilter("more than one until filter specified")
    try:
        return docker_time_ns(values[0])
    except ValueError as exc:
        raise InvalidFilter(str(exc)) from None


def _created_ns(stamp: str) -> int:
    from skiff.timestamps import parse

    try:
        return int(parse(stamp) * 1e9)
    except (ValueError, TypeError):
        return 0


# --- containers -----------------------------------------------------------------------


def _every(data: dict[str, Any]) -> bool:
    return True


def container_list_filter(paths: Paths, args: FilterArgs) -> tuple[Predicate, bool]:
    """``ps --filter``: a predicate on container records, and whether the filters ask for every
    container (a ``status`` filter does, as Docker's)."""
    if not args:
        return _every, False  # a plain ``ps``: nothing to check for each container
    args.validate(CONTAINER_LIST_FILTERS)
    for value in args.get("status"):
        if value not in CONTAINER_STATES:
            raise InvalidFilter(f"Invalid filter 'status={value}'")
    for value in args.get("health"):
        if value not in HEALTH_STATES:
            raise InvalidFilter(f"Unrecognised filter value for health: {value}")
    exited = [_atoi(v) for v in args.get("exited")]
    if args.contains("is-task"):
        values = args.get("is-task")
        if any(v not in ("true", "false") for v in values) or len(values) > 1:
            raise InvalidFilter(f"Invalid filter 'is-task={_go_list(values)}'")
    publish = _ports(args.get("publish"), "publish")
    expose = _ports(args.get("expose"), "expose")
    before = _created_of(paths, args.get("before"))
    since = _created_of(paths, args.get("since"))
    ancestors = _ancestor_ids(paths, args.get("ancestor"))

    def include(data: dict[str, Any]) -> bool:
        state = data.get("State") or {}
        config = data.get("Config") or {}
        labels = config.get("Labels") or {}
        created = _created_ns(data.get("Created", ""))
        checks = (
            args.exact_match("status", _state_string(state)),
            args.match("name", "/" + str(data.get("Name", "")).lstrip("/")),
            args.match("id", str(data.get("Id", ""))),
            args.match_kv_list("label", labels),
            not exited or (state.get("Status") == Status.EXITED and int(state.get("ExitCode") or 0) in exited),
            before is None or created < before,
            since is None or created > since,
            not args.contains("ancestor") or data.get("Image") in ancestors
            or config.get("Image") in args.get("ancestor"),
            not args.contains("volume") or _uses_volume(data, args.get("volume")),
            not args.contains("network") or _on_network(data, args.get("network")),
            not (publish or expose) or _port_matches(data, publish, expose),
            args.exact_match("health", ((state.get("Health") or {}).get("Status")) or "none"),
            args.exact_match("isolation", str((data.get("HostConfig") or {}).get("Isolation") or "")),
            not args.contains("is-task")
            or ("com.docker.swarm.task" in labels) == (args.get("is-task")[0] == "true"),
        )
        return all(checks)

    return include, args.contains("status")


def container_prune_filter(args: FilterArgs) -> Predicate:
    """``container prune --filter``: ``until`` (created before), ``label``, ``label!``."""
    args.validate(CONTAINER_PRUNE_FILTERS)
    until = _until_ns(args)

    def include(data: dict[str, Any]) -> bool:
        if until is not None and _created_ns(data.get("Created", "")) >= until:
            return False
        return _labels_match(args, (data.get("Config") or {}).get("Labels"))

    return include


def _state_string(state: dict[str, Any]) -> str:
    return shown(str(state.get("Status") or ""))


def _atoi(value: str) -> int:
    if not re.fullmatch(r"[+-]?\d+", value):
        raise InvalidFilter(f'strconv.Atoi: parsing "{value}": invalid syntax')
    return int(value)


def _ports(values: list[str], what: str) -> set[str]:
    """``80``, ``80/udp``, ``8000-8080/tcp`` -> ``{"80/tcp", ...}`` (Docker's nat.ParsePortRange)."""
    found: set[str] = set()
    for value in values:
        if ":" in value:
            raise InvalidFilter(f"filter for '{what}' should not contain ':': {value}")
        port, _, proto = value.partition("/")
        start, _, end = port.partition("-")
        for bound in (start, end) if end else (start,):
            if not bound.isdigit() or int(bound) > 65535:
                raise InvalidFilter(f"error while looking up for {what} {value}: strconv.ParseUint: "
                                    f'parsing "{bound}": invalid syntax')
        low, high = int(start), int(end or start)
        if high < low:
            raise InvalidFilter(f"error while looking up for {what} {value}: invalid range specified for "
                                f"the Port: {port}")
        found.update(f"{n}/{proto or 'tcp'}" for n in range(low, high + 1))
    return found


def _created_of(paths: Paths, refs: list[str]) -> int | None:
    """The creation time of the container ``before=``/``since=`` names (the last given wins, as Docker)."""
    from skiff.engine.containers import find_container
    from skiff.errors import ContainerNotFound

    created = None
    for ref in refs:
        try:
            created = _created_ns(find_container(paths, ref).data.get("Created", ""))
        except ContainerNotFound:
            raise InvalidFilter(f"no such container {ref}") from None
    return created


def _ancestor_ids(paths: Paths, refs: list[str]) -> set[str]:
    """Image ids the ``ancestor`` values name; one that names no image matches nothing (as Docker)."""
    if not refs:
        return set()
    from skiff.errors import SkiffError
    from skiff.image.store import ImageStore

    store = ImageStore(paths)
    found = set()
    for ref in refs:
        try:
            found.add(store.get(ref).id)
        except SkiffError:
            continue
    return found


def _uses_volume(data: dict[str, Any], values: list[str]) -> bool:
    for mount in data.get("Mounts") or []:
        if mount.get("Destination") in values or (mount.get("Name") or mount.get("Source")) in values:
            return True
    return False


def _on_network(data: dict[str, Any], values: list[str]) -> bool:
    networks = (data.get("NetworkSettings") or {}).get("Networks") or {}
    if not networks:
        mode = str((data.get("HostConfig") or {}).get("NetworkMode") or "")
        networks = {mode: {}} if mode and not mode.startswith("container:") else {}
    for value in values:
        if value in networks:
            return True
        if any(value and str((net or {}).get("NetworkID") or "").startswith(value) for net in networks.values()):
            return True
    return False


def _port_matches(data: dict[str, Any], publish: set[str], expose: set[str]) -> bool:
    ports = (data.get("NetworkSettings") or {}).get("Ports") or {}
    for key, bindings in ports.items():
        proto = key.partition("/")[2] or "tcp"
        if key in expose:
            return True
        for binding in bindings or []:
            if f"{binding.get('HostPort')}/{proto}" in publish:
                return True
    return False


# --- images ---------------------------------------------------------------------------


def image_prune_filter(args: FilterArgs, all_images: bool) -> tuple[Predicate, bool]:
    """``image prune --filter``: ``until``, ``label``, ``label!``, ``dangling`` (false: as ``-a``).
    A predicate on Image objects, and whether tagged images go too."""
    args.validate(IMAGE_PRUNE_FILTERS)
    dangling_only = args.bool_or_default("dangling", not all_images)
    until = _until_ns(args)

    def include(image: Image) -> bool:
        if until is not None and _created_ns(image.created) >= until:
            return False
        return _labels_match(args, (image.config or {}).get("Labels"))

    return include, not dangling_only


ImageNames = tuple[list[str], list[str]]


def image_list_filter(paths: Paths, args: FilterArgs) -> Callable[[Image], ImageNames | None]:
    """``images --filter`` (Docker 20.10's daemon/images/images.go): ``dangling``, ``label``,
    ``before``/``since`` (an image), ``reference`` (a glob on its names). A function giving the
    names an Image is listed with, (tags, digests), or None when the image is left out."""
    args.validate(IMAGE_LIST_FILTERS)
    dangling: bool | None = None
    if args.contains("dangling"):
        if not (args.exact_match("dangling", "true") or args.exact_match("dangling", "false")):
            raise InvalidFilter(f"Invalid filter 'dangling={_go_list(args.get('dangling'))}'")
        dangling = args.exact_match("dangling", "true")
    before = _image_created_of(paths, args.get("before"))
    since = _image_created_of(paths, args.get("since"))
    references = args.get("reference")

    def listed(name: str) -> bool:
        return not references or any(_familiar_match(pattern, name) for pattern in references)

    def names(image: Image) -> ImageNames | None:
        created = _created_ns(image.created)
        if (before is not None and created >= before) or (since is not None and created <= since):
            return None
        if args.contains("label") and not args.match_kv_list("label", (image.config or {}).get("Labels") or {}):
            return None
        tags = [t for t in image.repo_tags if listed(t)]
        digests = [d for d in image.repo_digests if listed(d)]
        if not tags and not digests:  # untagged: listed as <none> unless a filter asks for names
            return None if dangling is False or references else (tags, digests)
        return None if dangling and tags else (tags, digests)

    return names


def _image_created_of(paths: Paths, refs: list[str]) -> int | None:
    """The creation time of the image ``before=``/``since=`` names (the last wins); a missing one is an error."""
    if not refs:
        return None
    from skiff.errors import ImageNotFound
    from skiff.image.store import ImageStore

    store = ImageStore(paths)
    created = None
    for ref in refs:
        try:
            created = _created_ns(store.get(ref).created)
        except ImageNotFound:
            raise ImageNotFound(f"No such image: {ref}") from None  # the name as given, as Docker's daemon
    return created


def _familiar_match(pattern: str, name: str) -> bool:
    """Docker's reference.FamiliarMatch: Go's path.Match on ``busybox:latest``, then on ``busybox``."""
    return _path_match(pattern, name) or _path_match(pattern, _strip_tag(name))


def _path_match(pattern: str, name: str) -> bool:
    """Go's path.Match: ``*`` and ``?`` stop at ``/``; ``[...]`` classes, ``[^...]`` negated, ``\\``
    escapes; a bad pattern matches nothing."""
    regex, i = "", 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            regex += "[^/]*"
        elif char == "?":
            regex += "[^/]"
        elif char == "\\" and i + 1 < len(pattern):
            i += 1
            regex += re.escape(pattern[i])
        elif char == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                return False
            body = pattern[i + 1:end]
            negated = body.startswith("^")
            body = body[1:] if negated else body
            regex += "[" + ("^" if negated else "") + body + "]"
            i = end
        else:
            regex += re.escape(char)
        i += 1
    try:
        return re.fullmatch(regex, name) is not None
    except re.error:
        return False


# --- volumes ----------------------------------------------------------------------------


def volume_list_filter(args: FilterArgs, users: Callable[[], dict[str, list[str]]]) -> Predicate:
    """``volume ls --filter``: ``name`` (regexp), ``driver``, ``label``, ``dangling``; ``users``
    gives volume name -> containers, asked for only with ``dangling``."""
    args.validate(VOLUME_LIST_FILTERS)
    dangling: bool | None = None
    if args.contains("dangling"):
        if args.exact_match("dangling", "true") or args.exact_match("dangling", "1"):
            dangling = True
        elif args.exact_match("dangling", "false") or args.exact_match("dangling", "0"):
            dangling = False
        else:
            raise InvalidFilter(f"Invalid filter 'dangling={_go_list(args.get('dangling'))}'")
    used = users() if dangling is not None else {}

    def include(volume: Volume) -> bool:
        return (args.exact_match("driver", volume.driver) and args.match("name", volume.name)
                and _labels_match(args, volume.labels)
                and (dangling is None or (not used.get(volume.name)) == dangling))

    return include


def volume_prune_filter(args: FilterArgs) -> Predicate:
    """``volume prune --filter``: ``label`` and ``label!`` (20.10 has no ``until`` here)."""
    args.validate(VOLUME_PRUNE_FILTERS)
    return lambda volume: _labels_match(args, volume.labels)


# --- networks ---------------------------------------------------------------------------


def network_prune_filter(args: FilterArgs) -> Predicate:
    """``network prune --filter`` (and ``system prune``'s): ``until`` (created before), ``label``,
    ``label!``; a predicate on network records."""
    args.validate(NETWORK_PRUNE_FILTERS)
    until = _until_ns(args)

    def include(network: dict[str, Any]) -> bool:
        if until is not None and _created_ns(network.get("Created", "")) >= until:
            return False
        return _labels_match(args, network.get("Labels"))

    return include


def network_list_filter(args: FilterArgs) -> Predicate:
    """``network ls --filter`` on network documents (``network inspect``'s shape)."""
    args.validate(NETWORK_LIST_FILTERS)
    for value in args.get("type"):
        if value not in ("custom", "builtin"):
            raise InvalidFilter(f"invalid filter: 'type'='{value}'")
    dangling = args.bool_or_default("dangling", False) if args.contains("dangling") else None

    def include(network: dict[str, Any]) -> bool:
        name = str(network.get("Name") or "")
        predefined = name in PREDEFINED_NETWORKS
        in_use = bool(network.get("Containers"))
        kind = "builtin" if predefined else "custom"
        return (args.exact_match("driver", str(network.get("Driver") or "")) and args.match("name", name)
                and args.match("id", str(network.get("Id") or "")) and args.exact_match("scope", "local")
                and args.match_kv_list("label", network.get("Labels")) and args.exact_match("type", kind)
                and (dangling is None or (not predefined and not in_use) == dangling))

    return include


# --- events -----------------------------------------------------------------------------


def event_filter(args: FilterArgs) -> Predicate:
    """``events --filter`` (Docker's daemon/events/filter.go): unknown keys are ignored, as 20.10."""

    def by_name(event: dict[str, Any], key: str) -> bool:
        actor = event.get("Actor") or {}
        if not args.contains(key):
            return True
        return args.fuzzy_match(key, str(actor.get("ID") or "")) or \
            args.fuzzy_match(key, str((actor.get("Attributes") or {}).get("name") or ""))

    def image_matches(event: dict[str, Any]) -> bool:
        if not args.contains("image"):
            return True
        actor = event.get("Actor") or {}
        attrs = actor.get("Attributes") or {}
        name = str(attrs.get("name" if event.get("Type") == "image" else "image") or "")
        ident = str(actor.get("ID") or "")
        return any(args.exact_match("image", candidate) for candidate in (ident, name, _strip_tag(ident),
                                                                          _strip_tag(name)))

    def action_matches(event: dict[str, Any]) -> bool:
        action = str(event.get("Action") or "")
        fuzzy = {"health_status", "exec_create", "exec_start"} & set(args.get("event"))
        return args.fuzzy_match("event", action) if fuzzy else args.exact_match("event", action)

    def include(event: dict[str, Any]) -> bool:
        attrs = (event.get("Actor") or {}).get("Attributes") or {}
        return (action_matches(event) and args.exact_match("type", str(event.get("Type") or ""))
                and args.exact_match("scope", str(event.get("scope") or "local"))
                and (not args.contains("daemon") or event.get("Type") == "daemon")
                and by_name(event, "container") and by_name(event, "volume") and by_name(event, "network")
                and image_matches(event) and args.match_kv_list("label", attrs))

    return include


def _strip_tag(ref: str) -> str:
    """``busybox:1.36`` -> ``busybox`` (a digest or a registry port is left alone)."""
    if "@" in ref:
        return ref.partition("@")[0]
    name, sep, tag = ref.rpartition(":")
    return name if sep and "/" not in tag else ref
