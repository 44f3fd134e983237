"""Mount planning: a container's mount flags and its image's VOLUMEs -> OCI mounts and records.

The engine calls, in order:

    plan = plan_mounts(store, specs, image_volumes, volumes_from, read_only_root, container_id)
    plan.create_volumes()                      # at create, as Docker: listed and in use from then on
    config["mounts"] += plan.oci_mounts()      # before or after prepare: sources are fixed here
    plan.prepare(rootfs)                       # driver mounts up, copy-up done (a missing volume made)
    record["Mounts"] = plan.records()
    ...                                        # the runtime mounts them in the container's namespace
    plan.release(remove_anonymous=opts.rm)     # when the container has ended

Precedence is Docker's: ``--volumes-from`` first, then ``-v``/``--mount``/``--tmpfs``
replace what they share a destination with, and the image's VOLUMEs get an
anonymous volume only where nothing is mounted yet.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

from skiff.errors import VolumeError
from skiff.volume import driver
from skiff.volume.spec import TMPFS_DEFAULT_FLAGS, MountSpec, clean_target
from skiff.volume.store import LOCAL_DRIVER, Volume, VolumeStore, random_name, validate_options


class PlannedMount:
    """One mount of the container, with everything needed to prepare, mount and record it."""

    def __init__(self, spec: MountSpec, name: str = "", anonymous: bool = False, inherited: bool = False,
                 host_path: str = "") -> None:
        self.spec = spec
        self.name = name                # volume name (anonymous ones get theirs at planning time)
        self.anonymous = anonymous      # created for this container: ``--rm`` / ``rm -v`` remove it
        self.inherited = inherited      # came with --volumes-from: never copied into, never removed
        self.host_path = host_path      # bind source, or the volume's _data

    @property
    def destination(self) -> str:
        return self.spec.target

    def oci(self) -> dict[str, Any]:
        spec = self.spec
        if spec.type == "tmpfs":
            options = list(spec.tmpfs_flags or TMPFS_DEFAULT_FLAGS)
            if spec.tmpfs_size is not None:
                options.append(f"size={spec.tmpfs_size}")
            if spec.tmpfs_mode is not None:
                options.append(f"mode={spec.tmpfs_mode:o}")
            if spec.read_only:
                options.append("ro")
            return {"destination": spec.target, "type": "tmpfs", "source": "tmpfs", "options": options}
        options = ["rbind", spec.propagation or "rprivate"]
        if spec.read_only:
            # ro for this mount, rro (mount_setattr AT_RECURSIVE) for every submount below it.
            options += ["ro", "rro"]
        return {"destination": spec.target, "type": "bind", "source": self.host_path, "options": options}

    def record(self) -> dict[str, Any]:
        """Docker's ``Mounts`` entry of ``docker inspect``."""
        spec = self.spec
        if spec.type == "volume":
            return {"Type": "volume", "Name": self.name, "Source": self.host_path, "Destination": spec.target,
                    "Driver": spec.volume_driver or LOCAL_DRIVER, "Mode": spec.mode, "RW": not spec.read_only,
                    "Propagation": ""}
        if spec.type == "bind":
            return {"Type": "bind", "Source": self.host_path, "Destination": spec.target, "Mode": spec.mode,
                    "RW": not spec.read_only, "Propagation": spec.propagation or "rprivate"}
        return {"Type": "tmpfs", "Source": "", "Destination": spec.target, "Mode": "", "RW": not spec.read_only,
                "Propagation": ""}


class MountPlan:
    def __init__(self, store: VolumeStore, mounts: list[PlannedMount], read_only_root: bool = False,
                 container_id: str = "") -> None:
        self.store = store
        self.mounts = mounts
        self.read_only_root = read_only_root
        self.container_id = container_id
        self._acquired: list[Volume] = []

    def oci_mounts(self) -> list[dict[str, Any]]:
        """OCI ``mounts`` entries, parents before what is mounted below them."""
        return [m.oci() for m in self.mounts]

    def records(self) -> list[dict[str, Any]]:
        return [m.record() for m in self.mounts]

    def rootfs_propagation(self) -> str | None:
        """``linux.rootfsPropagation`` the mounts need, as Docker sets it: a shared or slave bind
        only receives host mounts if the container's root is not private. None: leave the default."""
        wanted = {m.spec.propagation for m in self.mounts}
        if wanted & {"shared", "rshared"}:
            return "rshared"
        if wanted & {"slave", "rslave"}:
            return "rslave"
        return None

    def anonymous_volumes(self) -> list[str]:
        """Volumes created for this container alone (not those shared by --volumes-from)."""
        return [m.name for m in self.mounts if m.anonymous and not m.inherited]

    def create_volumes(self) -> None:
        """Make the volumes the container names, as Docker's ``create`` does: from then on
        ``volume ls`` lists them and ``volume rm`` finds them in use (the container's record
        names them, so write it first: a skiff killed in between leaves nothing unnamed).

        Copy-up needs the image's rootfs and driver mounts a user, so both wait for
        ``prepare``. A failure removes the volumes this call made.
        """
        from skiff.volume.store import emit_volume_event

        wanted = [m for m in self.mounts if m.spec.type == "volume"]
        if not wanted:
            return
        made: list[Volume] = []
        with self.store.lock():
            try:
                for m in wanted:
                    volume, new = self._find_or_create(m)
                    if new:
                        made.append(volume)
                    if not m.inherited:  # Docker reports a create for each volume a container names, new or not
                        emit_volume_event(self.store.paths, "create", volume)
            except BaseException:
                for volume in made:
                    self.store.remove_locked(volume)
                raise

    def _find_or_create(self, m: PlannedMount) -> tuple[Volume, bool]:
        """The volume ``m`` names, made if missing (call under the store's lock); True if made now."""
        volume = self.store.find(m.name)
        if volume is not None:
            return volume, False
        if m.inherited:
            raise VolumeError(f"No such volume: {m.name} (used by the container named in --volumes-from)")
        spec = m.spec
        return self.store.create_locked(m.name, dict(spec.volume_labels), spec.volume_driver or LOCAL_DRIVER,
                                         dict(spec.volume_options), m.anonymous), True

    def prepare(self, rootfs: Path | str, container_id: str | None = None) -> None:
        """Make every source exist before the container starts; undone by ``release``.

        Driver-option volumes are mounted (counted per container), new empty volumes
        receive the image content at their target, and a volume ``create_volumes`` did
        not make (a skiff killed before it did) is made now. A failure keeps the volumes:
        they are the container's until it is removed (``rm -v``).
        """
        if container_id:
            self.container_id = container_id
        if not self.container_id:
            raise VolumeError("a container id is needed to prepare its volumes")
        for m in self.mounts:
            if m.spec.type == "bind" and m.spec.create_source and not os.path.lexists(m.host_path):
                os.makedirs(m.host_path, mode=0o755, exist_ok=True)  # as docker -v does (a file is kept)
        if not any(m.spec.type == "volume" for m in self.mounts):
            return
        try:
            with self.store.lock():
                for m in self.mounts:
                    if m.spec.type == "volume":
                        self._prepare_volume(m, Path(rootfs))
        except BaseException:
            self.release()
            raise

    def _prepare_volume(self, m: PlannedMount, rootfs: Path) -> None:
        spec = m.spec
        volume, new = self._find_or_create(m)
        if new:
            from skiff.volume.store import emit_volume_event

            emit_volume_event(self.store.paths, "create", volume)
        if volume.needs_mount:
            driver.acquire(self.store.paths, volume, self.container_id)
            self._acquired.append(volume)
        if spec.copy and not m.inherited:
            from skiff.volume.copyup import copy_up

            copy_up(rootfs, spec.target, volume.data)

    def release(self, remove_anonymous: bool = False, users: dict[str, list[str]] | None = None) -> list[str]:
        """Undo ``prepare``: drop driver mounts this container held; remove its anonymous volumes
        if asked (``run --rm``). Idempotent. Returns the volumes removed."""
        if self._acquired:
            with self.store.lock():
                for volume in self._acquired:
                    driver.release(self.store.paths, volume, self.container_id)
            self._acquired = []
        if not remove_anonymous:
            return []
        return self.store.remove_anonymous(self.anonymous_volumes(), _others(users, self.container_id))


def _others(users: dict[str, list[str]] | None, container_id: str) -> dict[str, list[str]]:
    return {name: [c for c in ids if c != container_id] for name, ids in (users or {}).items()}


def release_records(store: VolumeStore, records: Iterable[dict[str, Any]], container_id: str,
                    remove_anonymous: bool = False, users: dict[str, list[str]] | None = None) -> list[str]:
    """Like ``MountPlan.release`` for a container known only by its record (``rm -v``, or after
    a restart of skiff). ``users`` (volume -> container ids) protects volumes that other
    containers still use, such as one shared by ``--volumes-from``."""
    names = [r["Name"] for r in records if r.get("Type") == "volume" and r.get("Name")]
    with store.lock():
        for name in names:
            volume = store.find(name)
            if volume is not None and volume.needs_mount:
                driver.release(store.paths, volume, container_id)
    if not remove_anonymous:
        return []
    return store.remove_anonymous(names, _others(users, container_id))


def plan_mounts(store: VolumeStore, specs: list[MountSpec], image_volumes: dict[str, Any] | None = None,
                volumes_from: Iterable[tuple[list[dict[str, Any]], bool]] = (), read_only_root: bool = False,
                container_id: str = "") -> MountPlan:
    """Decide every mount of a container; nothing is created until ``create_volumes``."""
    by_target: dict[str, PlannedMount] = {}
    for records, read_only in volumes_from:
        for record in records:
            inherited = _from_record(store, record, read_only)
            if inherited is not None:
                by_target[inherited.destination] = inherited
    for spec in specs:
        by_target[spec.target] = _plan_spec(store, spec)
    for target in sorted(image_volumes or {}):
        cleaned = clean_target(target)
        if cleaned not in by_target:
            spec = MountSpec(type="volume", target=cleaned)
            by_target[cleaned] = _plan_spec(store, spec)
    ordered = sorted(by_target.values(), key=lambda m: len(m.destination.rstrip("/").split("/")))
    return MountPlan(store, ordered, read_only_root, container_id)


def _plan_spec(store: VolumeStore, spec: MountSpec) -> PlannedMount:
    if spec.type == "bind":
        return PlannedMount(spec, host_path=spec.source)
    if spec.type == "tmpfs":
        return PlannedMount(spec)
    validate_options(spec.volume_driver or LOCAL_DRIVER, spec.volume_options)
    name = spec.source or random_name()
    return PlannedMount(spec, name=name, anonymous=not spec.source, host_path=str(store.root / name / "_data"))


def _from_record(store: VolumeStore, record: dict[str, Any], read_only: bool) -> PlannedMount | None:
    """A mount of the container named by --volumes-from, as this container gets it."""
    kind = record.get("Type")
    target = record.get("Destination", "")
    rw = bool(record.get("RW", True)) and not read_only
    if kind == "volume" and record.get("Name"):
        name = record["Name"]
        spec = MountSpec(type="volume", target=target, source=name, read_only=not rw, copy=False,
                         mode=record.get("Mode", ""))
        volume = store.find(name)
        return PlannedMount(spec, name=name, anonymous=bool(volume and volume.anonymous), inherited=True,
                            host_path=str(store.root / name / "_data"))
    if kind == "bind" and record.get("Source"):
        propagation = record.get("Propagation", "")
        spec = MountSpec(type="bind", target=target, source=record["Source"], read_only=not rw,
                         propagation="" if propagation == "rprivate" else propagation, mode=record.get("Mode", ""))
        return PlannedMount(spec, host_path=record["Source"])
    return None  # a tmpfs belongs to its container alone
