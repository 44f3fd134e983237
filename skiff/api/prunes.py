"""``POST /containers|volumes|networks/prune`` and ``GET /system/df``: Docker 20.10's reports over the
engine's own prune and disk-usage functions (the ones ``skiff * prune`` and ``system df`` use)."""

from __future__ import annotations

import time
from typing import Any

from skiff.api.messages import Request, Response
from skiff.api.server import Context


def containers(context: Context, request: Request) -> Response:
    """Stopped containers (filters ``until``, ``label``): ``{"ContainersDeleted", "SpaceReclaimed"}``."""
    from skiff.engine.filters import FilterArgs, container_prune_filter
    from skiff.engine.system import container_size

    include = container_prune_filter(FilterArgs(request.filters()))
    engine = context.engine()
    sizes = {c.id: container_size(c) for c in engine.containers(all_=True) if c.state.stopped}
    removed = engine.prune(include)
    return Response(200, {"ContainersDeleted": removed or None,
                          "SpaceReclaimed": sum(sizes.get(cid, 0) for cid in removed)})


def volumes(context: Context, request: Request) -> Response:
    """Unused local volumes, named ones too as API 1.41 (filters ``label``, ``label!``):
    ``{"VolumesDeleted", "SpaceReclaimed"}`` (an empty list, where the other prunes say null: dockerd's)."""
    from skiff.engine.filters import FilterArgs, volume_prune_filter
    from skiff.engine.system import prune_volumes

    removed, freed = prune_volumes(context.paths, volume_prune_filter(FilterArgs(request.filters())))
    return Response(200, {"VolumesDeleted": removed, "SpaceReclaimed": freed})  # [] when none, as dockerd


def networks(context: Context, request: Request) -> Response:
    """Networks without containers (filters ``until``, ``label``): ``{"NetworksDeleted"}``."""
    from skiff.engine.filters import FilterArgs, network_prune_filter
    from skiff.engine.system import prune_networks

    removed = prune_networks(context.engine(), network_prune_filter(FilterArgs(request.filters())))
    return Response(200, {"NetworksDeleted": removed or None})


def disk_usage(context: Context, request: Request) -> Response:
    """``GET /system/df``: ``LayersSize``, image summaries (with ``Containers`` and ``SharedSize``),
    container summaries (with ``SizeRw``, ``SizeRootFs``), volumes (with ``UsageData``), ``BuildCache``."""
    from skiff.engine.summary import container_summary
    from skiff.engine.system import disk_usage as usage_of

    usage = usage_of(context.paths)
    engine = context.engine()
    now = time.time()
    container_rows = []
    for row in usage.containers:
        summary = container_summary(engine.document(row["Container"], True), now)  # SizeRw, SizeRootFs
        container_rows.append(summary)
    return Response(200, {"LayersSize": usage.layers_size, "Images": [image_row(i) for i in usage.images],
                          "Containers": container_rows, "Volumes": [volume_row(v) for v in usage.volumes],
                          "BuildCache": None, "BuilderSize": 0})  # skiff builds nothing; dockerd's nulls


def image_row(image: dict[str, Any]) -> dict[str, Any]:
    """A ``disk_usage`` image row as Docker's ImageSummary."""
    from skiff.timestamps import parse

    tags, digests = image["RepoTags"], image["RepoDigests"]
    return {"Containers": image["Containers"], "Created": int(parse(image["Created"])), "Id": image["Id"],
            "Labels": image["Labels"] or None, "ParentId": "", "RepoDigests": digests or
            (["<none>@<none>"] if not tags else None), "RepoTags": tags or ["<none>:<none>"],
            "SharedSize": image["SharedSize"], "Size": image["Size"], "VirtualSize": image["VirtualSize"]}


def volume_row(row: dict[str, Any]) -> dict[str, Any]:
    """A ``disk_usage`` volume row as Docker's Volume with ``UsageData``."""
    return {**row["Volume"].inspect(), "UsageData": {"RefCount": row["RefCount"], "Size": row["Size"]}}
