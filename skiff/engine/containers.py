"""Container records: ``<root>/containers/<id>/container.json``, in Docker's inspect shape.

A record is written atomically and only under the store lock, so two skiff
commands never interleave their updates. Names and unique id prefixes resolve to
a record here, for every command that takes a container.

A record that cannot be used (truncated JSON, a missing field) is *broken*:
listings skip it with one warning naming the file, every other container stays
usable, and ``skiff rm -f`` (by id, or by name when the name can still be read)
removes it. Other commands on it fail with a StateError that says so.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from skiff.engine.state import State, Status
from skiff.errors import ContainerConflict, ContainerNotFound, InvalidArgument, StateError
from skiff.paths import Paths
from skiff.store import FileLock, parse_json, problem_of, read_bytes, read_json, warn_broken, write_json

if TYPE_CHECKING:
    from skiff.engine.listing import ListingCache

RECORD = "container.json"
NAME_CHARS = "[a-zA-Z0-9][a-zA-Z0-9_.-]"

# Fields every record has from its first write on, and the type each must have.
_REQUIRED: tuple[tuple[str, type], ...] = (
    ("Id", str), ("Name", str), ("Created", str), ("Image", str),
    ("Config", dict), ("HostConfig", dict), ("State", dict),
)


class Container:
    """A container record and where it lives."""

    __slots__ = ("paths", "data")

    def __init__(self, paths: Paths, data: dict[str, Any]) -> None:
        self.paths = paths
        self.data = data

    def __repr__(self) -> str:
        return f"Container({self.data.get('Id', '')[:12]!r})"

    @property
    def id(self) -> str:
        return str(self.data["Id"])

    @property
    def name(self) -> str:
        return str(self.data["Name"]).lstrip("/")

    @property
    def dir(self) -> Path:
        return self.paths.containers / self.id

    @property
    def bundle(self) -> Path:
        return self.dir / "bundle"

    @property
    def state(self) -> State:
        """The record's ``State``: read it as a dict, change it through its transitions (skiff.engine.state)."""
        return State(self.data["State"])

    @property
    def running(self) -> bool:
        return self.state.running

    @property
    def held(self) -> bool:
        """A process (monitor or foreground skiff) holds the container: running, paused or restarting."""
        return self.state.held

    @property
    def log_path(self) -> Path:
        return self.dir / f"{self.id}-json.log"

    def save(self, durable: bool = True) -> None:
        """Write the record; a container removed meanwhile is not brought back.

        ``durable=False`` skips the fsyncs, for states that do not outlive the
        machine anyway (a running container, one that ``--rm`` removes at exit).
        """
        if not self.dir.is_dir():
            raise ContainerNotFound(f"No such container: {self.id}")
        write_json(self.dir / RECORD, self.data, mode=0o600, durable=durable)

    def reload(self) -> bool:
        """Re-read the record from disk; False if it has been removed.

        A record broken meanwhile raises StateError (naming the file), never a KeyError later.
        """
        path = self.dir / RECORD
        data = read_json(path)
        if data is None:
            return False
        problem = record_problem(data, self.id)
        if problem:
            raise broken_error(BrokenRecord(self.id, path, problem, _name_of(data, path)))
        self.data = data
        return True


class BrokenRecord:
    """A container directory whose record cannot be used: what is known of it."""

    __slots__ = ("id", "path", "problem", "name", "data")

    def __init__(self, cid: str, path: Path, problem: str, name: str | None,
                 data: dict[str, Any] | None = None) -> None:
        self.id = cid
        self.path = path
        self.problem = problem
        self.name = name
        self.data = data or {}  # what could be parsed, if anything: still protects what it uses

    @property
    def remedy(self) -> str:
        return f"remove it with 'skiff rm -f {self.name or self.id}'"

    def stand_in(self, paths: Paths) -> Container:
        """A minimal record, enough for ``rm -f`` to release what it can and remove the directory."""
        return Container(paths, {
            "Id": self.id, "Name": f"/{self.name or self.id}", "Created": "", "Image": "",
            "Config": {}, "HostConfig": {}, "Mounts": [],
            # Unknown, so ask the network manager to drop whatever it holds for this id.
            "NetworkSettings": {"Unknown": True},
            "State": {"Status": Status.DEAD.value, "Running": False, "Pid": 0},
            "SkiffBroken": self.problem,
        })


def broken_error(broken: BrokenRecord) -> StateError:
    return StateError(f"container record {broken.path} is broken: {broken.problem}", hint=broken.remedy)


def record_problem(data: Any, cid: str) -> str | None:
    """Why ``data`` is not a usable record of container ``cid``; None when it is."""
    if not isinstance(data, dict):
        return f"expected a JSON object, found {type(data).__name__}"
    missing = [key for key, _ in _REQUIRED if key not in data]
    if missing:
        return f"incomplete record, missing {', '.join(missing)}"
    wrong = [key for key, kind in _REQUIRED if not isinstance(data[key], kind)]
    if wrong:
        return f"malformed record, wrong type for {', '.join(wrong)}"
    if data["Id"] != cid:
        return f"record names container {data['Id'][:64]!r}, not its directory {cid!r}"
    if not isinstance(data["State"].get("Status"), str):
        return "malformed record, State has no Status"
    return None


def _name_of(data: Any, path: Path) -> str | None:
    """The container's name from a broken record, if it can still be read (for ``rm -f NAME``)."""
    if isinstance(data, dict) and isinstance(data.get("Name"), str):
        name = data["Name"].lstrip("/")
        return name if valid_name(name) else None
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    import re

    # The record's own name is the only "Name" whose value starts with '/' (a restart policy has one too).
    match = re.search(rf'"Name":\s*"/({NAME_CHARS}*)"', text)
    return match.group(1) if match else None


def valid_name(name: str) -> bool:
    import re

    return re.fullmatch(f"{NAME_CHARS}*", name) is not None


def check_name(name: str) -> str:
    """A container name as Docker allows it (a leading ``/`` is dropped); else InvalidArgument."""
    bare = name[1:] if name.startswith("/") else name
    if not valid_name(bare):
        raise InvalidArgument(f"Invalid container name ({name}), only {NAME_CHARS} are allowed")
    return bare


@contextlib.contextmanager
def locked(container: Container) -> Iterator[Container]:
    """The record, re-read under the container's own lock, saved when the block ends.

    The monitor, ``stop``, ``rename`` and ``rm`` all update one record; each
    does read-modify-write under this lock, so no update is lost. Raises
    ContainerNotFound if the record has gone (removed meanwhile).
    """
    with FileLock(container.paths.containers / f".{container.id}.lock"):
        if not container.reload():
            raise ContainerNotFound(f"No such container: {container.id}")
        yield container
        container.save()


def new_id() -> str:
    return os.urandom(32).hex()  # as secrets.token_hex, without importing hashlib on the hot path


def scan(paths: Paths, cache: ListingCache | None = None) -> tuple[list[Container], list[BrokenRecord]]:
    """Every container record: the usable ones, and the broken ones (not reported here).

    With a ``cache`` (a long-lived process's, see skiff.engine.listing) the records are read
    again only once one may have changed, an unchanged record is not parsed again, and the
    usable records are shared, read-only (each in a Container of the caller's own).
    """
    generation = 0
    if cache is not None:
        kept, generation = cache.unchanged_scan(paths.containers)
        if kept is not None:
            return [Container(paths, data) for data in kept], []
    good: list[Container] = []
    broken: list[BrokenRecord] = []
    try:
        entries = os.scandir(paths.containers)
    except FileNotFoundError:
        return good, broken
    with entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if cache is not None:
                cache.watch.watch_container(entry.path)
            path = os.path.join(entry.path, RECORD)  # a string: a Path only for a broken record
            try:
                data = read_json(path) if cache is None else _read_cached(cache, entry.name, path)
            except (StateError, OSError) as exc:  # not JSON (truncated, garbage), or unreadable
                broken.append(BrokenRecord(entry.name, Path(path), problem_of(exc), _name_of(None, Path(path))))
                continue
            if data is None:
                continue  # a record being created (or a directory being removed)
            problem = record_problem(data, entry.name)
            if problem:
                broken.append(BrokenRecord(entry.name, Path(path), problem, _name_of(data, Path(path)),
                                           data if isinstance(data, dict) else None))
            else:
                good.append(Container(paths, data))
    if cache is not None:
        cache.retain(good)
        cache.scanned(generation, good, broken)
    return good, broken


def _read_cached(cache: ListingCache, cid: str, path: str) -> Any:
    raw = read_bytes(path)
    return None if raw is None else cache.record(cid, raw, lambda raw: parse_json(raw, path))


def all_containers(paths: Paths, cache: ListingCache | None = None) -> Iterator[Container]:
    """Every usable record; each broken one is reported on stderr (once) and skipped."""
    good, broken = scan(paths, cache)
    for b in broken:
        warn_broken(b.path, b.problem, b.remedy)
    yield from good


def find_container(paths: Paths, ref: str, broken_ok: bool = False, cache: ListingCache | None = None) -> Container:
    """Resolve a full id, a name, or a unique id prefix, as Docker does.

    A ref that names a broken record raises StateError saying how to remove it;
    with ``broken_ok`` (``rm -f``) a stand-in record is returned instead. A ``cache``
    resolves names and prefixes from its parses (a burst of ``docker rm -f`` parsed every
    record in every request); the container found is read anew, the caller's own.
    """
    if not ref:
        raise InvalidArgument("container name or ID cannot be empty")
    by_id = _by_full_id(paths, ref)
    if by_id is not None:
        return by_id
    found = _resolve(paths, ref, broken_ok, cache)
    if cache is not None and "SkiffBroken" not in found.data:
        found = Container(paths, found.data)  # shared with the cache: read its own copy
        if not found.reload():
            raise ContainerNotFound(f"No such container: {ref}")
    return found


def _resolve(paths: Paths, ref: str, broken_ok: bool, cache: ListingCache | None) -> Container:
    containers, broken = scan(paths, cache)
    bare = ref.lstrip("/")
    for c in containers:
        if c.id == ref or c.name == bare:
            return c
    hit: list[Container | BrokenRecord] = [b for b in broken if b.id == ref or b.name == bare]
    if not hit:
        hit = [c for c in containers if c.id.startswith(ref)] + [b for b in broken if b.id.startswith(ref)]
        if len(hit) > 1:
            raise ContainerConflict(f"multiple IDs found with provided prefix: {ref}")
    if hit and isinstance(hit[0], Container):
        return hit[0]
    if hit:
        assert isinstance(hit[0], BrokenRecord)
        if not broken_ok:
            raise broken_error(hit[0])
        return hit[0].stand_in(paths)
    raise ContainerNotFound(f"No such container: {ref}")


def _by_full_id(paths: Paths, ref: str) -> Container | None:
    """The container whose full id ``ref`` is, read alone (a full id wins over names, as in Docker):
    the clients of the API name containers by the ids they were given, and scanning every record
    for each request made a burst of them parse every record again and again. None when ``ref``
    is no full id of a usable record: the scan decides then (a name, a prefix, a broken record)."""
    if len(ref) != 64 or not _HEX.issuperset(ref):
        return None
    try:
        data = read_json(paths.containers / ref / RECORD)
    except (StateError, OSError):
        return None
    if data is None or record_problem(data, ref):
        return None
    return Container(paths, data)


_HEX = frozenset("0123456789abcdef")


def check_name_free(paths: Paths, name: str) -> None:
    good, broken = scan(paths)
    # A broken record keeps its name while it can be read: `rm -f NAME` must find that one.
    for cid in [c.id for c in good if c.name == name] + [b.id for b in broken if b.name == name]:
        raise ContainerConflict(
            f'Conflict. The container name "/{name}" is already in use by container "{cid}". '
            "You have to remove (or rename) that container to be able to reuse that name.")


def remove_record(container: Container) -> None:
    """Remove the container's directory under its lock.

    The lock file goes too, while still held: a command that was waiting for it
    then finds no record (``locked`` re-reads) instead of writing one back.
    """
    import shutil

    lock = container.paths.containers / f".{container.id}.lock"
    with FileLock(lock):
        shutil.rmtree(container.dir, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()


def _records_for_protection(paths: Paths) -> Iterator[tuple[str, dict[str, Any]]]:
    """(id, data) of every record, broken ones too: what a broken record still names stays protected."""
    good, broken = scan(paths)
    for b in broken:
        warn_broken(b.path, b.problem, b.remedy)
    yield from ((c.id, c.data) for c in good)
    yield from ((b.id, b.data) for b in broken)


def image_users(paths: Paths) -> dict[str, list[str]]:
    """Image id -> ids of the containers (running or not) created from it."""
    users: dict[str, list[str]] = {}
    for cid, data in _records_for_protection(paths):
        if data.get("Image"):
            users.setdefault(str(data["Image"]), []).append(cid)
    return users


def volume_users(paths: Paths) -> dict[str, list[str]]:
    """Volume name -> ids of the containers (running or not) that mount it."""
    users: dict[str, list[str]] = {}
    for cid, data in _records_for_protection(paths):
        mounts = data.get("Mounts")
        for mount in mounts if isinstance(mounts, list) else []:
            if isinstance(mount, dict) and mount.get("Type") == "volume" and mount.get("Name"):
                users.setdefault(str(mount["Name"]), []).append(cid)
    return users


_ADJECTIVES = ("admiring", "brave", "calm", "clever", "eager", "focused", "gallant", "happy", "jolly",
               "keen", "lucid", "nifty", "quirky", "serene", "stoic", "trusting", "vibrant", "zealous")
_NAMES = ("archimedes", "babbage", "curie", "darwin", "euler", "faraday", "galileo", "hopper", "kepler",
          "lovelace", "noether", "pascal", "ritchie", "shannon", "thompson", "turing", "wozniak", "yalow")


def generate_name(paths: Paths) -> str:
    """A Docker-style ``adjective_scientist`` name that no container has yet."""
    taken = {c.name for c in all_containers(paths)}
    while True:
        name = f"{_pick(_ADJECTIVES)}_{_pick(_NAMES)}"
        if name in taken:
            name = f"{name}{_pick('0123456789')}"
        if name not in taken:
            return name


def _pick(choices: Sequence[str]) -> str:
    return choices[int.from_bytes(os.urandom(2), "little") % len(choices)]
