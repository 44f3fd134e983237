"""The engine's side of volumes: from run flags to a mount plan, and release by record."""

from __future__ import annotations

from typing import TYPE_CHECKING

from skiff.engine import containers as records
from skiff.engine.containers import Container
from skiff.engine.options import RunOptions
from skiff.paths import Paths

if TYPE_CHECKING:
    from skiff.image.store import Image
    from skiff.volume.plan import MountPlan


def plan_container_mounts(paths: Paths, image: Image, opts: RunOptions) -> MountPlan:
    """Parse and check every mount flag; nothing is created until ``create_volumes``."""
    from skiff.volume.plan import plan_mounts
    from skiff.volume.spec import parse_run_mounts, parse_volumes_from
    from skiff.volume.store import VolumeStore

    specs = parse_run_mounts(volumes=opts.volumes, mounts=opts.mounts, tmpfs=opts.tmpfs)
    inherited = []
    for raw in opts.volumes_from:
        ref, read_only = parse_volumes_from(raw)
        inherited.append((records.find_container(paths, ref).data.get("Mounts", []), read_only))
    return plan_mounts(VolumeStore(paths), specs, image.config.get("Volumes"), inherited, opts.read_only)


def release_container_mounts(paths: Paths, container: Container, remove_anonymous: bool) -> None:
    """Drop the driver mounts a container held; remove its anonymous volumes if asked."""
    mounts = [m for m in container.data.get("Mounts", []) if m.get("Type") == "volume"]
    if not mounts:
        return
    from skiff.volume.plan import release_records
    from skiff.volume.store import VolumeStore

    release_records(VolumeStore(paths), mounts, container.id, remove_anonymous,
                    users=records.volume_users(paths) if remove_anonymous else None)


def volumes_in_use(paths: Paths) -> dict[str, list[str]]:
    """Volume name -> containers (running or stopped) that use it; also drops driver mounts of
    containers that vanished (a skiff killed with SIGKILL) so they do not count as users.
    What ``volume rm`` and ``volume prune`` (the CLI's and the Python API's) refuse to remove."""
    from skiff.volume.driver import reconcile

    users = records.volume_users(paths)
    reconcile(paths, [c.id for c in records.all_containers(paths)])
    return users
