#!/usr/bin/env python3
"""Pull a multi-layer image from a local registry: skiff pull against tools doing the same or less work.

    sudo .venv/bin/python bench/pull.py [--runs 3] [--fs loop|host]

Builds an image offline from host files (a busybox layer plus layers of /usr
content, one of them over 100 MB), serves it from the CNCF distribution registry
on 127.0.0.1, then times, in the same run and on the same filesystem:

- ``skiff pull`` into a fresh store: fetch, verify (blob digests and diff_ids) and unpack every layer;
- skiff's download alone (the same client fetching and hashing every blob into files, nothing unpacked):
  the floor of ``skiff pull`` before any unpacking;
- ``skopeo copy docker://... dir:``: fetch and write blobs only (the issue's reference, goal ratio <= 1.0);
- ``skopeo copy docker://... containers-storage:[overlay@...]`` and ``podman pull`` into private
  temporary storage: fetch, verify and unpack into layered storage, the same work as skiff.

It also prints the CPU floors of the unpacking work itself: inflating every layer
once, and GNU tar extracting them. Every output goes to a scratch directory: on a
private loop-mounted ext4 by default (``--fs loop``), which other processes' file
churn cannot reach, or in the work directory (``--fs host``). Outputs are removed
only after every measurement: on an ext4 without a journal (this VM's root
filesystem) the inode allocator skips inodes freed in the last seconds to minutes
(``recently_deleted()``), one lookup each, so creating files right after deleting a
tree of them costs several times more system time; the tool that runs after a
cleanup would pay for it, and so would every tool of a bench started right after
another one's cleanup on the host filesystem. Read the medians of at least 3 runs.
"""

from __future__ import annotations

import argparse
import hashlib
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

LAYER_SOURCES = [("/usr/lib/python3.11", 60), ("/usr/bin", 120), ("/usr/share", 70)]
SCRATCH_FS_SIZE = 8 << 30  # sparse: only what is written takes space


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
    """Wall seconds and peak RSS (KiB) of one command, started after pending writes are flushed."""
    os.sync()  # the previous tool's dirty pages must not be written back on this one's time
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _RSS_WRAPPER, *args], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {proc.stderr}")
    return elapsed, int(proc.stderr.strip().splitlines()[-1])


# --- skiff's download alone ------------------------------------------------------------


def fetch_only(ref: str, dest: str) -> None:
    """Fetch the manifest, config and every layer blob of ``ref`` into ``dest`` with skiff's client.

    Each blob's size and sha256 are checked as it streams (BlobReader), in as many
    parallel downloads as ``skiff pull`` uses; nothing is decompressed or unpacked.
    """
    from skiff.image.reference import parse_reference
    from skiff.registry import auth
    from skiff.registry import manifest as mf
    from skiff.registry.client import BlobReader, RegistryClient
    from skiff.registry.config import RegistryConfig
    from skiff.registry.puller import PARALLEL_LAYERS

    reference = parse_reference(ref)
    config = RegistryConfig.load()
    out = Path(dest)
    out.mkdir()
    with RegistryClient(config.endpoint_host(reference.domain), config, auth.lookup(reference.domain)) as client:
        body, media_type, _ = client.get_manifest(reference.path, reference.tag or "latest", mf.ACCEPT)
        manifest = mf.image_manifest(mf.decode(body, media_type, ref), ref)
        (out / "manifest.json").write_bytes(body)
        (out / "config").write_bytes(client.get_blob_bytes(reference.path, manifest.config.digest,
                                                           manifest.config.size))

        def fetch(desc: mf.Descriptor) -> None:
            reader = BlobReader(client, reference.path, desc.digest, desc.size)
            try:
                with open(out / desc.digest.removeprefix("sha256:"), "wb") as f:
                    while chunk := reader.read(1 << 20):
                        f.write(chunk)
                    os.fsync(f.fileno())
            finally:
                reader.close()

        with ThreadPoolExecutor(PARALLEL_LAYERS) as pool:
            list(pool.map(fetch, manifest.layers))


# --- floors of the unpacking work -----------------------------------------------------------


def layer_blobs(blob_dir: Path) -> list[Path]:
    manifest = json.loads((blob_dir / "manifest.json").read_text())
    return [blob_dir / layer["digest"].removeprefix("sha256:") for layer in manifest["layers"]]


def inflate_seconds(blobs: list[Path]) -> tuple[float, float, float, int, int]:
    """Seconds to inflate every layer once on one core with zlib and with ISA-L (nan if absent),
    seconds to sha256 the output, compressed and uncompressed bytes."""
    import zlib

    modules = [zlib]
    try:
        from isal import isal_zlib

        modules.append(isal_zlib)
    except ImportError:
        pass
    data = [blob.read_bytes() for blob in blobs]
    times = []
    for module in modules:
        start = time.perf_counter()
        for blob in data:
            inflater = module.decompressobj(31)
            for i in range(0, len(blob), 1 << 20):
                inflater.decompress(blob[i:i + (1 << 20)])
        times.append(time.perf_counter() - start)
    sha_s, total_out = 0.0, 0
    for blob in data:
        tar = zlib.decompress(blob, 31)
        total_out += len(tar)
        start = time.perf_counter()
        hashlib.sha256(tar)
        sha_s += time.perf_counter() - start
    isal_s = times[1] if len(times) > 1 else float("nan")
    return times[0], isal_s, sha_s, sum(len(d) for d in data), total_out


def untar_seconds(blobs: list[Path], dest: Path, parallel: bool) -> float:
    """Seconds GNU tar needs to extract every layer, one after another or all at once (one dir each)."""
    dest.mkdir()
    os.sync()
    start = time.perf_counter()
    procs = []
    for i, blob in enumerate(blobs):
        target = dest / str(i) if parallel else dest
        target.mkdir(exist_ok=True)
        proc = subprocess.Popen(["tar", "-xf", str(blob), "-C", str(target)])
        if not parallel and proc.wait() != 0:
            raise SystemExit(f"tar failed on {blob}")
        procs.append(proc)
    if any(proc.wait() != 0 for proc in procs):
        raise SystemExit("tar failed")
    return time.perf_counter() - start


# --- scratch filesystem and the containers/storage tools ----------------------------------------


def mount_scratch(work: Path, kind: str) -> Path:
    scratch = work / "scratch"
    scratch.mkdir()
    if kind == "loop":
        image = work / "scratch.ext4"
        with open(image, "wb") as f:
            f.truncate(SCRATCH_FS_SIZE)
        subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
        subprocess.run(["mount", "-o", "loop", str(image), str(scratch)], check=True)
    return scratch


def unmount_under(path: Path) -> None:
    """Unmount everything at or below ``path`` (what containers/storage left), deepest first."""
    prefix = str(path)
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for point in sorted((p for p in points if p == prefix or p.startswith(prefix + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False)


def containers_env(env: dict[str, str], scratch: Path, work: Path) -> dict[str, str]:
    """Private registries/storage/engine configs, so podman and skopeo reach only the local registry."""
    conf = work / "containers"
    conf.mkdir(exist_ok=True)
    (conf / "registries.conf").write_text("unqualified-search-registries = []\n")
    (conf / "storage.conf").write_text(f'[storage]\ndriver = "overlay"\nrunroot = "{work}/podman-run"\n'
                                       f'graphroot = "{scratch}/podman-default"\n')
    (conf / "containers.conf").write_text(f'[engine]\nevents_logger = "none"\ncgroup_manager = "cgroupfs"\n'
                                          f'image_copy_tmp_dir = "{scratch}/tmp"\n')
    return {**env, "CONTAINERS_REGISTRIES_CONF": str(conf / "registries.conf"),
            "CONTAINERS_STORAGE_CONF": str(conf / "storage.conf"),
            "CONTAINERS_CONF": str(conf / "containers.conf")}


def reset_storage(root: Path, runroot: Path, env: dict[str, str]) -> None:
    from tests.conftest import PRIVATE_VAR_LIB

    subprocess.run([*PRIVATE_VAR_LIB, "podman", "--root", str(root), "--runroot", str(runroot),
                    "--storage-driver", "overlay", "system", "reset", "-f"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=False)
    unmount_under(root)


# --- the run ----------------------------------------------------------------------------


def report(name: str, times: list[float], skiff_s: float | None = None) -> float:
    median = statistics.median(times)
    ratio = f"   skiff/this = {skiff_s / median:.2f}" if skiff_s is not None else ""
    print(f"{name:38s} {median:6.2f}s  ({', '.join(f'{t:.2f}' for t in times)}){ratio}")
    return median


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--fs", choices=("loop", "host"), default="loop",
                        help="loop: outputs on a private ext4 (default); host: in the work directory")
    parser.add_argument("--fetch-only", nargs=2, metavar=("REF", "DEST"), help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.fetch_only:
        fetch_only(*opts.fetch_only)
        return
    from tests.registry import servers
    from tests.conftest import PRIVATE_VAR_LIB
    from tests.registry.images import Layout, push

    work = Path(tempfile.mkdtemp(prefix="skiff-bench-pull-"))
    registry = None
    scratch: Path | None = None
    storages: list[tuple[Path, Path]] = []
    env: dict[str, str] = {}
    try:
        subprocess.run([str(REPO / "scripts" / "busybox-rootfs"), str(work / "busybox.tar")], check=True)
        layers = [(work / "busybox.tar").read_bytes()] + [tar_of(d, mb) for d, mb in LAYER_SOURCES]
        layout = Layout(work / "oci")
        desc, _ = layout.image(layers)
        layout.tag("big", [desc])
        sizes = [len(layer) for layer in layers]
        # Free the layers: a forked child's peak RSS would otherwise count this process's pages.
        del layers
        registry = servers.start_registry(work / "registry")
        ref = f"{registry.host}/bench/big:1"
        push(layout.path, "big", ref, "--dest-tls-verify=false")

        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        (work / "etc").mkdir()
        (work / "etc" / "registries.json").write_text(json.dumps({"insecure": [registry.host]}))
        env.update(SKIFF_CONFIG_DIR=str(work / "etc"), SKIFF_AUTH_FILE=str(work / "auth.json"))
        scratch = mount_scratch(work, opts.fs)
        (scratch / "tmp").mkdir()
        env.update(TMPDIR=str(scratch / "tmp"))  # big temporary files of every tool, on the measured fs
        cenv = containers_env(env, scratch, work)

        names = ["skiff pull", "skiff download only (floor)", "skopeo copy dir:",
                 "skopeo copy containers-storage:", "podman pull"]
        times: dict[str, list[float]] = {name: [] for name in names}
        rss: dict[str, list[int]] = {name: [] for name in names}
        for run in range(opts.runs):
            # Rotate the order, so no tool always runs right after the same one.
            for name in names[run % len(names):] + names[:run % len(names)]:
                out = scratch / f"{name.split()[0]}-{names.index(name)}-{run}"
                if name == "skiff pull":
                    args = [sys.executable, "-m", "skiff", "--root", str(out), "--run-root",
                            str(work / f"run{run}"), "pull", "-q", ref]
                elif name.startswith("skiff download"):
                    args = [sys.executable, str(Path(__file__).resolve()), "--fetch-only", ref, str(out)]
                elif name == "skopeo copy dir:":
                    args = [*PRIVATE_VAR_LIB, "skopeo", "copy", "--quiet", "--src-tls-verify=false",
                            f"docker://{ref}", f"dir:{out}"]
                else:
                    runroot = work / f"runroot-{names.index(name)}-{run}"
                    storages.append((out, runroot))
                    if name == "podman pull":
                        args = [*PRIVATE_VAR_LIB, "podman", "--root", str(out), "--runroot", str(runroot),
                                "--storage-driver", "overlay", "pull", "-q", "--tls-verify=false", ref]
                    else:
                        args = [*PRIVATE_VAR_LIB, "skopeo", "copy", "--quiet", "--src-tls-verify=false",
                                f"docker://{ref}", f"containers-storage:[overlay@{out}+{runroot}]bench/big:1"]
                t, peak = timed(args, cenv if "containers" in name or "podman" in name else env)
                times[name].append(t)
                rss[name].append(peak)

        blobs = layer_blobs(scratch / f"skopeo-{names.index('skopeo copy dir:')}-0")
        zlib_s, isal_s, sha_s, blob_bytes, tar_bytes = inflate_seconds(blobs)
        untar_seq = untar_seconds(blobs, scratch / "untar-seq", parallel=False)
        untar_par = untar_seconds(blobs, scratch / "untar-par", parallel=True)

        print(f"image: {len(sizes)} layers, {sum(sizes) / 1e6:.0f} MB uncompressed, {blob_bytes / 1e6:.0f} MB "
              f"compressed; largest layer {max(sizes) / 1e6:.0f} MB; {os.cpu_count()} CPUs; outputs on "
              f"{'a private loop ext4' if opts.fs == 'loop' else 'the host filesystem'}")
        print(f"median of {opts.runs} runs (each run's times)")
        skiff_s = report("skiff pull (fetch+verify+unpack)", times["skiff pull"])
        report("skiff download only (no unpack)", times["skiff download only (floor)"], skiff_s)
        skopeo_s = report("skopeo copy dir: (blobs only)", times["skopeo copy dir:"], skiff_s)
        report("skopeo copy containers-storage:", times["skopeo copy containers-storage:"], skiff_s)
        report("podman pull", times["podman pull"], skiff_s)
        print(f"ratio skiff/skopeo dir: {skiff_s / skopeo_s:.2f} (issue goal <= 1.0)")
        print(f"peak RSS: skiff {max(rss['skiff pull']) / 1024:.0f} MB (goal < 100 MB), "
              f"podman {max(rss['podman pull']) / 1024:.0f} MB, skopeo dir: {max(rss['skopeo copy dir:']) / 1024:.0f} MB")
        print(f"floors, one core: inflating {blob_bytes / 1e6:.0f} MB -> {tar_bytes / 1e6:.0f} MB takes "
              f"{zlib_s:.2f}s with zlib, {isal_s:.2f}s with ISA-L; sha256 of the output {sha_s:.2f}s")
        print(f"floors, GNU tar extracting the layers (no download, no verification): {untar_seq:.2f}s one by one, "
              f"{untar_par:.2f}s all at once")
    finally:
        if registry is not None:
            registry.stop()
        if env:
            for root, runroot in storages:
                reset_storage(root, runroot, containers_env(env, scratch or work, work))
        if scratch is not None:
            unmount_under(scratch)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
