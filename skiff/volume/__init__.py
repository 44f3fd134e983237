"""Volumes as Docker has them: records, mount-spec parsing, mount planning, copy-up, driver options.

    store = VolumeStore(paths)                       # skiff.volume.store
    specs = parse_run_mounts(volumes, mounts, tmpfs) # skiff.volume.spec
    plan = plan_mounts(store, specs, image_volumes, volumes_from, read_only_root, container_id)
    reconcile(paths, live_container_ids)             # skiff.volume.driver

Names are resolved lazily, so ``import skiff.volume`` costs nothing on the ``skiff run`` path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Volume": "skiff.volume.store",
    "VolumeStore": "skiff.volume.store",
    "ANONYMOUS_LABEL": "skiff.volume.store",
    "MountSpec": "skiff.volume.spec",
    "parse_volume": "skiff.volume.spec",
    "parse_mount": "skiff.volume.spec",
    "parse_tmpfs": "skiff.volume.spec",
    "parse_volumes_from": "skiff.volume.spec",
    "parse_run_mounts": "skiff.volume.spec",
    "MountPlan": "skiff.volume.plan",
    "PlannedMount": "skiff.volume.plan",
    "plan_mounts": "skiff.volume.plan",
    "release_records": "skiff.volume.plan",
    "reconcile": "skiff.volume.driver",
    "copy_up": "skiff.volume.copyup",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # the real types for checkers; at run time __getattr__ imports them on first use
    from skiff.volume.copyup import copy_up
    from skiff.volume.driver import reconcile
    from skiff.volume.plan import MountPlan, PlannedMount, plan_mounts, release_records
    from skiff.volume.spec import (MountSpec, parse_mount, parse_run_mounts, parse_tmpfs, parse_volume,
                                   parse_volumes_from)
    from skiff.volume.store import ANONYMOUS_LABEL, Volume, VolumeStore


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'skiff.volume' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # kept: the next lookup finds it without calling here
    return value
