#!/usr/bin/env python3
"""Pull a multi-layer image from a local registry: skiff pull against skopeo copy to dir:.

    sudo .venv/bin/python bench/pull.py [--runs 3] [--mb 250]

Builds an image offline from host files (a busybox layer plus layers of /usr
content, one of them over 100 MB), serves it from the CNCF distribution registry
on 127.0.0.1, then times, in the same run, ``skiff pull`` into a fresh store and
``skopeo copy docker://... dir:`` into a fresh directory. Prints the median times,
their ratio (goal <= 1.0) and skiff's peak RSS (goal < 100 MB). skopeo only
writes blobs; skiff also verifies and unpacks every layer.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.registry import servers  # noqa: E402
from tests.registry.images import Layout, push  # noqa: E402

LAYER_SOURCES = [("/usr/lib/python3.11", 60), ("/usr/bin", 120), ("/usr/share", 70)]


def tar_of(directory: str, budget_mb: int) -> bytes:
    """Regular files, dirs and symlinks of ``directory`` up to ``budget_mb`` of file content."""
    buf = io.BytesIO()
    budget = budget_mb << 20
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for root, dirs, files in os.walk(directory):
            dirs.sort()
            for name in sorted(files):
                path = os.path.join(root, name)
                if os.path.islink(path) or os.path.isfile(path):
                    if not os.path.islink(path) and os.path.getsize(path) > budget:
                        continue  # before gettarinfo, which would remember it as a hardlink target
                    info = tar.gettarinfo(path, arcname=path.lstrip("/"))
                    if info.isreg():
                        budget -= info.size
                        with open(path, "rb") as f:
                            tar.addfile(info, f)
                    else:
                        tar.addfile(info)
                if budget <= 0:
                    return buf.getvalue()
    return buf.getvalue()


# Peak RSS is read by a small wrapper process: a child forked straight from this (large) process
# would report this process's pages too, since ru_maxrss survives exec.
_RSS_WRAPPER = ("import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
                "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(rc)")


def timed(args: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one command."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _RSS_WRAPPER, *args], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {proc.stderr}")
    return elapsed, int(proc.stderr.strip().splitlines()[-1])


def untar_all(blob_dir: Path, dest: Path) -> float:
    """Seconds GNU tar needs to extract every layer blob of a ``dir:`` copy: the unpacking floor."""
    manifest = json.loads((blob_dir / "manifest.json").read_text())
    dest.mkdir()
    start = time.perf_counter()
    for layer in manifest["layers"]:
        subprocess.run(["tar", "-xf", str(blob_dir / layer["digest"].removeprefix("sha256:")), "-C", str(dest)],
                       check=True)
    elapsed = time.perf_counter() - start
    shutil.rmtree(dest)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    opts = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="skiff-bench-pull-"))
    registry = None
    try:
        subprocess.run([str(REPO / "scripts" / "busybox-rootfs"), str(work / "busybox.tar")], check=True)
        layers = [(work / "busybox.tar").read_bytes()] + [tar_of(d, mb) for d, mb in LAYER_SOURCES]
        layout = Layout(work / "oci")
        desc, _ = layout.image(layers)
        layout.tag("big", [desc])
        sizes = [len(layer) for layer in layers]
        # Free the layers: a forked child's peak RSS would otherwise count this process's pages.
        del layers
        blob_bytes = sum(json.loads((layout.path / "blobs/sha256" / str(desc["digest"])[7:]).read_bytes())["layers"][i]["size"]
                         for i in range(len(sizes)))
        registry = servers.start_registry(work / "registry")
        ref = f"{registry.host}/bench/big:1"
        push(layout.path, "big", ref, "--dest-tls-verify=false")
        print(f"image: {len(sizes)} layers, {sum(sizes) / 1e6:.0f} MB uncompressed, "
              f"{blob_bytes / 1e6:.0f} MB compressed; largest layer {max(sizes) / 1e6:.0f} MB")

        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        (work / "etc").mkdir()
        (work / "etc" / "registries.json").write_text(json.dumps({"insecure": [registry.host]}))
        env.update(SKIFF_CONFIG_DIR=str(work / "etc"), SKIFF_AUTH_FILE=str(work / "auth.json"))
        skiff_times, skopeo_times, rss = [], [], []
        for run in range(opts.runs):
            root = work / f"root{run}"
            t, peak = timed([sys.executable, "-m", "skiff", "--root", str(root), "--run-root", str(work / "run"),
                             "pull", "-q", ref], env)
            skiff_times.append(t)
            rss.append(peak)
            shutil.rmtree(root)
            target = work / f"dir{run}"
            t, _ = timed(["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{ref}", f"dir:{target}"], env)
            skopeo_times.append(t)
            if run == 0:
                untar_s = untar_all(target, work / "untar")
            shutil.rmtree(target)
        skiff_s, skopeo_s = statistics.median(skiff_times), statistics.median(skopeo_times)
        print(f"skiff pull:        {skiff_s:.2f}s median of {opts.runs} ({', '.join(f'{t:.2f}' for t in skiff_times)})")
        print(f"skopeo copy dir:   {skopeo_s:.2f}s median of {opts.runs} ({', '.join(f'{t:.2f}' for t in skopeo_times)})")
        print(f"ratio skiff/skopeo: {skiff_s / skopeo_s:.2f} (goal <= 1.0)")
        print(f"for scale: GNU tar extracting the same layers one by one takes {untar_s:.2f}s on this filesystem")
        print(f"skiff peak RSS:    {max(rss) / 1024:.0f} MB (goal < 100 MB)")
    finally:
        if registry is not None:
            registry.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
