#!/usr/bin/env python3
"""Push an image of about 117 MB to a local registry: ``skiff push`` against ``skopeo copy``.

    sudo .venv/bin/python bench/push.py [--runs 3] [--mb 117]

Builds an image offline from host files (a busybox layer plus gzip layers of /usr content, about
117 MB of blobs), writes it as an OCI layout and loads the same layout into a private skiff root.
Then, in the same run, each measurement pushes every blob into a registry that has none of them
(a fresh CNCF distribution registry on 127.0.0.1 each time):

- ``skiff push``: HEAD, upload (monolithic or chunked), config, manifest, from skiff's store;
- ``skopeo copy oci:LAYOUT docker://``: the same blobs from the OCI layout (the issue's reference,
  goal ratio <= 1.0).

Read the medians of at least 3 runs on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.pull import tar_of, timed  # noqa: E402  (after the path is set)

LAYER_SOURCES = [("/usr/lib/python3.11", 60), ("/usr/bin", 80), ("/usr/share", 60)]


def build_layout(work: Path, target_mb: int) -> tuple[Path, int]:
    """An OCI layout ``big`` of gzip layers whose blobs add up to about ``target_mb``; its path
    and its blobs' bytes."""
    from tests.registry.images import Layout

    subprocess.run([str(REPO / "scripts" / "busybox-rootfs"), str(work / "busybox.tar")], check=True)
    layers = [(work / "busybox.tar").read_bytes()]
    for directory, mb in LAYER_SOURCES:
        layers.append(tar_of(directory, mb))
    layout = Layout(work / "oci")
    desc, _ = layout.image(layers)
    layout.tag("big", [desc])
    blobs = sum(p.stat().st_size for p in (layout.path / "blobs" / "sha256").iterdir())
    if blobs < target_mb * 0.8e6:   # the host's files compress better than expected: add some
        extra = tar_of("/usr/lib", int((target_mb * 1e6 - blobs) / 1e6 * 2.5))
        shutil.rmtree(layout.path)
        layout = Layout(work / "oci")
        desc, _ = layout.image(layers + [extra])
        layout.tag("big", [desc])
        blobs = sum(p.stat().st_size for p in (layout.path / "blobs" / "sha256").iterdir())
    return layout.path, blobs


def layout_archive(layout: Path, out: Path) -> None:
    """The layout as a tar (``skiff load`` reads OCI archives)."""
    with tarfile.open(out, "w") as tar:
        for entry in sorted(layout.iterdir()):
            tar.add(entry, arcname=entry.name)


def report(name: str, times: list[float], skiff_s: float | None = None) -> float:
    median = statistics.median(times)
    ratio = f"   skiff/this = {skiff_s / median:.2f}" if skiff_s is not None else ""
    print(f"{name:34s} {median:6.2f}s  ({', '.join(f'{t:.2f}' for t in times)}){ratio}")
    return median


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mb", type=int, default=117, help="about how many MB of blobs the image has")
    opts = parser.parse_args()
    from tests.conftest import PRIVATE_VAR_LIB
    from tests.registry import servers

    work = Path(tempfile.mkdtemp(prefix="skiff-bench-push-"))
    registries: list[servers.Registry] = []
    try:
        layout, blob_bytes = build_layout(work, opts.mb)
        layout_archive(layout, work / "big.tar")
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        (work / "etc").mkdir()
        env.update(SKIFF_CONFIG_DIR=str(work / "etc"), SKIFF_AUTH_FILE=str(work / "auth.json"),
                   SKIFF_ROOT=str(work / "root"), SKIFF_RUN_ROOT=str(work / "run"))
        subprocess.run([sys.executable, "-m", "skiff", "load", "-q", "-i", str(work / "big.tar")], env=env,
                       check=True)
        image_id = subprocess.run([sys.executable, "-m", "skiff", "images", "-q", "--no-trunc"], env=env, check=True,
                                  capture_output=True, text=True).stdout.split()[0]
        names = ["skiff push", "skopeo copy oci: docker://"]
        times: dict[str, list[float]] = {name: [] for name in names}
        rss: dict[str, list[int]] = {name: [] for name in names}
        for run in range(opts.runs):
            for name in names[run % 2:] + names[:run % 2]:   # alternate who goes first
                registry = servers.start_registry(work / f"registry-{run}-{names.index(name)}")
                registries.append(registry)
                (work / "etc" / "registries.json").write_text(json.dumps({"insecure": [registry.host]}))
                ref = f"{registry.host}/bench/big:1"
                if name == "skiff push":
                    subprocess.run([sys.executable, "-m", "skiff", "tag", image_id, ref], env=env, check=True)
                    args = [sys.executable, "-m", "skiff", "push", "-q", ref]
                else:
                    args = [*PRIVATE_VAR_LIB, "skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                            f"oci:{layout}:big", f"docker://{ref}"]
                elapsed, peak = timed(args, env)
                times[name].append(elapsed)
                rss[name].append(peak)
                registry.stop()
        print(f"image: {blob_bytes / 1e6:.0f} MB of blobs (gzip layers); {os.cpu_count()} CPUs; "
              f"a fresh registry for every push")
        print(f"median of {opts.runs} runs (each run's times)")
        skiff_s = report("skiff push", times["skiff push"])
        skopeo_s = report("skopeo copy oci: -> docker://", times["skopeo copy oci: docker://"], skiff_s)
        print(f"ratio skiff/skopeo: {skiff_s / skopeo_s:.2f} (issue goal <= 1.0)")
        print(f"peak RSS: skiff {max(rss['skiff push']) / 1024:.0f} MB, "
              f"skopeo {max(rss['skopeo copy oci: docker://']) / 1024:.0f} MB")
    finally:
        for registry in registries:
            if registry.proc.poll() is None:
                registry.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
