"""Volume records: ``<root>/volumes/NAME/_data`` holds the data, ``NAME/meta.json`` the rest.

A volume appears atomically: it is assembled under a hidden temporary name and
renamed into place, so a crash never leaves a half-made volume that ``ls``
shows. Every change happens under ``volumes/.lock`` (flock: a killed skiff never
leaves it stale). Only the ``local`` driver exists, with Docker's options
(``type``, ``device``, ``o``) whose mounts live in ``skiff.volume.driver``.
"""

from __future__ import annotations

import builtins  # VolumeStore.list hides the builtin in the class's annotations
import contextlib
import os
from pathlib import Path
from typing import Any, Callable, Iterable

from skiff.errors import StateError, VolumeError, VolumeInUse, VolumeNotFound
from skiff.paths import Paths
from skiff.store import FileLock, fsync_dir, problem_of, read_json, warn_broken, write_json
from skiff.volume.spec import check_volume_name

ANONYMOUS_LABEL = "com.docker.volume.anonymous"
LOCAL_DRIVER = "local"
VALID_OPTIONS = ("type", "device", "o")
_META = "meta.json"
_DATA = "_data"


class Volume:
    def __init__(self, name: str, path: Path, driver: str = LOCAL_DRIVER, labels: dict[str, str] | None = None,
                 options: dict[str, str] | None = None, created_at: str = "", anonymous: bool = False) -> None:
        self.name = name
        self.path = path                # <root>/volumes/NAME
        self.driver = driver
        self.labels = labels or {}
        self.options = options or {}
        self.created_at = created_at
        self.anonymous = anonymous

    def __repr__(self) -> str:
        return f"Volume({self.name!r})"

    @property
    def data(self) -> Path:
        """The directory containers see (Docker's Mountpoint)."""
        return self.path / _DATA

    @property
    def needs_mount(self) -> bool:
        """True when driver options ask for a filesystem mounted onto ``_data`` while in use."""
        return bool(self.options.get("type") or self.options.get("device"))

    def inspect(self) -> dict[str, Any]:
        """Docker's ``volume inspect`` object."""
        return {
            "CreatedAt": self.created_at,
            "Driver": self.driver,
            "Labels": dict(self.labels),  # {} when empty, as Docker 20.10's `volume create`
            "Mountpoint": str(self.data),
            "Name": self.name,
            "Options": dict(self.options),
            "Scope": "local",
        }

    def record(self) -> dict[str, Any]:
        return {"Name": self.name, "Driver": self.driver, "Labels": self.labels, "Options": self.options,
                "CreatedAt": self.created_at, "Anonymous": self.anonymous}


def validate_options(driver: str, options: dict[str, str]) -> None:
    """The local driver's rules: known keys only; ``type`` and ``device`` go together."""
    if driver != LOCAL_DRIVER:
        raise VolumeError(f'error looking up volume plugin {driver}: plugin "{driver}" not found '
                          "(skiff supports only the local driver)")
    for key in options:
        if key not in VALID_OPTIONS:
            raise VolumeError(f'invalid option: "{key}" (the local driver accepts type, device and o)')
    if not options:
        return
    if not options.get("type"):
        raise VolumeError('missing required option: "type"')
    if not options.get("device"):
        raise VolumeError('missing required option: "device"')
    flags = options.get("o", "").split(",")
    if ("bind" in flags or "rbind" in flags) and not options["device"].startswith("/"):
        raise VolumeError(f"invalid device {options['device']!r} for a bind volume: it must be an absolute path")


def _now() -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def random_name() -> str:
    """A 64-hex name, as Docker gives anonymous and unnamed volumes."""
    return os.urandom(32).hex()


class VolumeStore:
    """Create, find, list and remove volumes under ``paths.volumes``."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self.root = paths.volumes

    def lock(self) -> FileLock:
        """Serialises volume changes between concurrent skiff commands."""
        return FileLock(self.root / ".lock")

    # --- lookups ----------------------------------------------------------
    def find(self, name: str) -> Volume | None:
        """The volume named ``name``, or None if there is none (a bad name is none)."""
        if not _safe_name(name):
            return None
        path = self.root / name
        meta = read_json(path / _META)
        if meta is None:
            return None
        if not isinstance(meta, dict):
            raise StateError(f"volume record {path / _META} is malformed: expected a JSON object")
        return Volume(name=name, path=path, driver=meta.get("Driver", LOCAL_DRIVER),
                      labels=meta.get("Labels") or {}, options=meta.get("Options") or {},
                      created_at=meta.get("CreatedAt", ""), anonymous=bool(meta.get("Anonymous")))

    def get(self, name: str) -> Volume:
        volume = self.find(name)
        if volume is None:
            raise VolumeNotFound(f"No such volume: {name}")
        return volume

    def exists(self, name: str) -> bool:
        return self.find(name) is not None

    def list(self) -> list[Volume]:
        try:
            names = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            if name.startswith("."):
                continue
            try:
                volume = self.find(name)
            except StateError as exc:  # one broken record must not hide the other volumes
                warn_broken(self.root / name / _META, problem_of(exc),
                            f"remove it with 'skiff volume rm {name}'")
                continue
            if volume is not None:
                found.append(volume)
        return found

    def inspect(self, name: str) -> dict[str, Any]:
        return self.get(name).inspect()

    # --- changes ----------------------------------------------------------
    def create(self, name: str | None = None, labels: dict[str, str] | None = None, driver: str = LOCAL_DRIVER,
               options: dict[str, str] | None = None, anonymous: bool = False) -> Volume:
        """A new volume, or the existing one of that name (as ``docker volume create`` does)."""
        labels = dict(labels or {})
        options = dict(options or {})
        if name:
            check_volume_name(name)
        validate_options(driver, options)
        with self.lock():
            volume = self.create_locked(name or random_name(), labels, driver, options, anonymous)
        emit_volume_event(self.paths, "create", volume)  # as Docker, for a volume that already existed too
        return volume

    def create_locked(self, name: str, labels: dict[str, str], driver: str, options: dict[str, str],
                       anonymous: bool) -> Volume:
        """``create`` for a caller that holds ``lock()`` already (a container's mounts, made together)."""
        existing = self.find(name)
        if existing is not None:
            if existing.driver != driver:
                raise VolumeError(f"create {name}: volume name already exists with a different driver "
                                  f"({existing.driver})")
            return existing
        if anonymous:
            labels = {**labels, ANONYMOUS_LABEL: ""}
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o701)  # others may reach _data by path, never list volume names
        self._sweep_locked()
        staging = self.root / f".new-{name}-{os.getpid()}"
        volume = Volume(name=name, path=self.root / name, driver=driver, labels=labels, options=options,
                        created_at=_now(), anonymous=anonymous)
        try:
            (staging / _DATA).mkdir(parents=True, mode=0o755)
            os.chmod(staging, 0o755)
            write_json(staging / _META, volume.record(), mode=0o600)
            os.rename(staging, volume.path)
        except BaseException:
            _remove_tree(staging)
            raise
        fsync_dir(self.root)
        return volume

    def _sweep_locked(self) -> None:
        """Delete what a skiff killed mid-create or mid-remove left: under the lock, nobody else
        is creating or removing, so every staging or trash entry is stale."""
        for entry in os.listdir(self.root):
            if entry.startswith((".new-", ".trash-")):
                _remove_tree(self.root / entry)

    def remove(self, name: str, users: Iterable[str] = (), force: bool = False) -> bool:
        """Remove a volume nobody uses; ``users`` are the ids of containers that mount it.

        With ``force`` a missing volume is not an error (returns False); a volume in use
        is refused either way, since removing it would pull data from under a container.
        """
        from skiff.volume import driver as volume_driver

        with self.lock():
            try:
                volume = self.find(name)
            except StateError:  # a broken record: removable all the same, its data with it
                volume = Volume(name=name, path=self.root / name, driver=LOCAL_DRIVER, labels={}, options={},
                                created_at="", anonymous=False)
            if volume is None:
                if force:
                    return False
                raise VolumeNotFound(f"No such volume: {name}")
            holders = sorted(set(users) | set(volume_driver.mount_users(self.paths, name)))
            if holders:
                raise VolumeInUse(f"remove {name}: volume is in use - [{', '.join(holders)}]")
            self.remove_locked(volume)
            return True

    def remove_locked(self, volume: Volume) -> None:
        """Take the volume out of sight with one rename, then delete it (the caller holds ``lock()``)."""
        _refuse_mounted(volume)
        trash = self.root / f".trash-{volume.name}-{os.getpid()}"
        os.rename(volume.path, trash)
        fsync_dir(self.root)
        _remove_tree(trash)
        emit_volume_event(self.paths, "destroy", volume)

    def prune(self, users: dict[str, builtins.list[str]], all: bool = False,
              labels: Iterable[str] = (),
              include: Callable[[Volume], bool] | None = None) -> tuple[builtins.list[str], int]:
        """Remove unused anonymous volumes (all unused ones with ``all``) that ``include`` accepts;
        return names and bytes freed."""
        from skiff.volume import driver as volume_driver

        removed: list[str] = []
        freed = 0
        with self.lock():
            for volume in self.list():
                if users.get(volume.name) or volume_driver.mount_users(self.paths, volume.name):
                    continue
                if not (all or volume.anonymous) or not matches_labels(volume, labels):
                    continue
                if include is not None and not include(volume):
                    continue
                size = disk_usage(volume.data) if not volume.needs_mount else 0
                self.remove_locked(volume)
                removed.append(volume.name)
                freed += size
        return removed, freed

    def remove_anonymous(self, names: Iterable[str],
                         users: dict[str, builtins.list[str]] | None = None) -> builtins.list[str]:
        """Remove those of ``names`` that are anonymous and unused: ``run --rm`` and ``rm -v``."""
        from skiff.volume import driver as volume_driver

        removed = []
        with self.lock():
            for name in names:
                volume = self.find(name)
                if volume is None or not volume.anonymous:
                    continue
                if (users or {}).get(name) or volume_driver.mount_users(self.paths, name):
                    continue
                self.remove_locked(volume)
                removed.append(name)
        return removed


def emit_volume_event(paths: Paths, action: str, volume: Volume) -> None:
    """A volume event in the root's events log (``skiff events``)."""
    from skiff.events import emit

    emit(paths, "volume", action, volume.name, {"driver": volume.driver})


def _safe_name(name: str) -> bool:
    """A cheap guard so a lookup never walks outside the volumes directory."""
    return bool(name) and "/" not in name and name not in (".", "..") and not name.startswith(".")


def matches_labels(volume: Volume, filters: Iterable[str]) -> bool:
    """Docker's label filter: ``key`` (present) or ``key=value`` (equal)."""
    for flt in filters:
        key, has_value, value = flt.partition("=")
        if key not in volume.labels or (has_value and volume.labels[key] != value):
            return False
    return True


def disk_usage(path: Path) -> int:
    """Bytes on disk below ``path``. Walked by directory fd (fwalk): a container using the
    volume may swap a directory for a symlink meanwhile, and nothing outside is ever counted."""
    total = 0
    for _dirpath, dirnames, filenames, dir_fd in os.fwalk(path, follow_symlinks=False):
        for entry in dirnames + filenames:
            with contextlib.suppress(OSError):
                total += os.stat(entry, dir_fd=dir_fd, follow_symlinks=False).st_blocks * 512
    return total


def _mounts_under(path: Path) -> list[str]:
    from skiff import mountinfo

    return [mount.mount_point for mount in mountinfo.under(path)]


def _refuse_mounted(volume: Volume) -> None:
    """Never delete through a mount: that would wipe a bind device or another filesystem."""
    mounted = _mounts_under(volume.path)
    if mounted:
        raise VolumeInUse(f"remove {volume.name}: volume is in use - {mounted[0]} is still mounted")


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
