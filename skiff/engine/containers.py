"""Container records: ``<root>/containers/<id>/container.json``, in Docker's inspect shape.

A record is written atomically and only under the store lock, so two skiff
commands never interleave their updates. Names and unique id prefixes resolve to
a record here, for every command that takes a container.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Iterator, Sequence

from skiff.errors import ContainerConflict, ContainerNotFound, InvalidArgument
from skiff.paths import Paths
from skiff.store import FileLock, read_json, write_json

RECORD = "container.json"


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
    def state(self) -> dict[str, Any]:
        return self.data["State"]

    @property
    def running(self) -> bool:
        return bool(self.state.get("Running"))

    @property
    def held(self) -> bool:
        """A process (monitor or foreground skiff) holds the container: running, paused or restarting."""
        return self.state.get("Status") in ("running", "paused", "restarting")

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
        """Re-read the record from disk; False if it has been removed."""
        data = read_json(self.dir / RECORD)
        if data is None:
            return False
        self.data = data
        return True


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


def all_containers(paths: Paths) -> Iterator[Container]:
    try:
        entries = os.scandir(paths.containers)
    except FileNotFoundError:
        return
    with entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            data = read_json(Path(entry.path) / RECORD)
            if data is not None:
                yield Container(paths, data)


def find_container(paths: Paths, ref: str) -> Container:
    """Resolve a full id, a name, or a unique id prefix, as Docker does."""
    if not ref:
        raise InvalidArgument("container name or ID cannot be empty")
    containers = list(all_containers(paths))
    for c in containers:
        if c.id == ref or c.name == ref.lstrip("/"):
            return c
    matches = [c for c in containers if c.id.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise ContainerConflict(f"multiple IDs found with provided prefix: {ref}")
    raise ContainerNotFound(f"No such container: {ref}")


def check_name_free(paths: Paths, name: str) -> None:
    for c in all_containers(paths):
        if c.name == name:
            raise ContainerConflict(
                f'Conflict. The container name "/{name}" is already in use by container "{c.id}". '
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


def image_users(paths: Paths) -> dict[str, list[str]]:
    """Image id -> ids of the containers (running or not) created from it."""
    users: dict[str, list[str]] = {}
    for c in all_containers(paths):
        users.setdefault(str(c.data.get("Image", "")), []).append(c.id)
    return users


def volume_users(paths: Paths) -> dict[str, list[str]]:
    """Volume name -> ids of the containers (running or not) that mount it."""
    users: dict[str, list[str]] = {}
    for c in all_containers(paths):
        for mount in c.data.get("Mounts", []):
            if mount.get("Type") == "volume" and mount.get("Name"):
                users.setdefault(mount["Name"], []).append(c.id)
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
