#!/usr/bin/env python3
"""Build the same context with skiff, docker (its classic builder or BuildKit) and buildah; print ratios.

    sudo .venv/bin/python bench/build.py [--runs 1]

The context (the issue's): FROM the busybox image, 10 steps mixing RUN and COPY, one of them a
COPY of 50 MB in 2,000 files. For each tool, in the same run, on the same host filesystem:

- a cold build: every cache of the tool emptied first (skiff builder prune, docker builder prune
  and rmi, a fresh buildah storage), the base image already local;
- a rebuild with no change (skiff and docker: every step a cache hit; buildah bud --layers).

docker is the tests' private dockerd (tests/dockerd.py: own data root, no bridge, no iptables);
``DOCKER_BUILDKIT=1`` is tried first and the classic builder used when BuildKit fails there.
buildah is Debian's, with private --root/--runroot. A tool that is missing is skipped. Goals
(issue 16): skiff's cold build <= 1.0x the fastest other tool's; its rebuild <= 0.5x theirs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SKIFF = [sys.executable, "-m", "skiff"]
FILES, TOTAL_BYTES = 2000, 50 << 20
DOCKERFILE = """\
FROM busybox
RUN echo one > /one
COPY small.txt /small.txt
RUN mkdir -p /work && echo two > /work/two
COPY data/ /data/
RUN du -s /data > /data.size
ENV STAGE=bench
COPY small.txt /work/small2.txt
RUN cat /work/small2.txt > /work/three
WORKDIR /work
RUN ls > /listing
"""


def make_context(directory: Path) -> None:
    """The Dockerfile, a small file and 50 MB of half-compressible data in 2,000 files."""
    directory.mkdir()
    (directory / "Dockerfile").write_text(DOCKERFILE)
    (directory / "small.txt").write_text("small\n")
    data = directory / "data"
    size = TOTAL_BYTES // FILES
    for index in range(FILES):
        sub = data / f"d{index // 100:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        chunk = os.urandom(size // 2).hex()[: size]  # hex of random bytes: compresses about 2:1
        (sub / f"f{index:04d}").write_text(chunk)


def timed(cmd: list[str], env: dict[str, str], runs: int, before: list[list[str]] | None = None) -> float:
    """Median seconds of ``cmd``; the ``before`` commands run (untimed) before each run."""
    samples = []
    for _ in range(runs):
        for prep in before or []:
            subprocess.run(prep, env=env, capture_output=True)
        start = time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:4])}... failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        samples.append(elapsed)
    return statistics.median(samples)


def bench_skiff(tmp: Path, busybox_tar: Path, context: Path, runs: int) -> tuple[float, float]:
    from bench.sandbox import private_skiff

    with private_skiff(dir=str(tmp)) as (_, env):
        env = {**env, "PYTHONPATH": str(REPO)}
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed skiff has its bytecode compiled
        subprocess.run([*SKIFF, "import", str(busybox_tar), "busybox:latest"], env=env, check=True,
                       capture_output=True)
        build = [*SKIFF, "build", "--network", "none", "-t", "bench:1", str(context)]
        cold = timed(build, env, runs, before=[[*SKIFF, "rmi", "-f", "bench:1"], [*SKIFF, "builder", "prune", "-f"]])
        warm = timed(build, env, runs)
        return cold, warm


def bench_docker(tmp: Path, busybox_tar: Path, context: Path, runs: int) -> tuple[str, float, float] | None:
    from tests.dockerd import docker_installed, private_dockerd

    if not docker_installed():
        print("docker: not installed; skipped")
        return None
    with private_dockerd(tmp / "dockerd") as engine:
        engine.docker("import", str(busybox_tar), "busybox:latest")
        build = ["/usr/bin/docker", "build", "--network", "none", "-t", "bench:1", str(context)]
        clean = [["/usr/bin/docker", "rmi", "-f", "bench:1"], ["/usr/bin/docker", "builder", "prune", "-af"]]
        for buildkit in ("1", "0"):
            env = {**engine.env, "DOCKER_BUILDKIT": buildkit}
            try:
                cold = timed(build, env, runs, before=clean)
            except RuntimeError as exc:
                print(f"docker build (DOCKER_BUILDKIT={buildkit}) failed, {str(exc).splitlines()[-1][:160]}")
                continue
            warm = timed(build, env, runs)
            return ("docker build (BuildKit)" if buildkit == "1" else "docker build (classic)"), cold, warm
    return None


def bench_buildah(tmp: Path, context: Path, oci_archive: Path, runs: int) -> tuple[float, float] | None:
    if not shutil.which("buildah"):
        print("buildah: not installed; skipped")
        return None
    from tests.conftest import PRIVATE_VAR_LIB

    store = tmp / "buildah"
    base = [*PRIVATE_VAR_LIB, "buildah", "--root", str(store / "root"), "--runroot", str(store / "run"),
            "--storage-driver", "overlay"]
    env = dict(os.environ)
    try:
        subprocess.run([*base, "pull", f"oci-archive:{oci_archive}"], env=env, check=True, capture_output=True)
        build = [*base, "bud", "--layers", "--pull=false", "--network", "none", "--isolation", "oci",
                 "-t", "bench:1", str(context)]
        clean = [[*base, "rmi", "-f", "bench:1"], [*base, "rmi", "--prune"]]
        cold = timed(build, env, runs, before=clean)
        warm = timed(build, env, runs)
        return cold, warm
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"buildah skipped: {str(exc).strip().splitlines()[-1][:200]}")
        return None
    finally:
        subprocess.run([*base, "rm", "--all"], env=env, capture_output=True)
        subprocess.run([*base, "rmi", "--all", "-f"], env=env, capture_output=True)
        subprocess.run(["umount", "-R", "-l", str(store / "root" / "overlay")], capture_output=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=3)
    runs = parser.parse_args().runs
    results: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="skiff-bench-build-") as tmpdir:
        tmp = Path(tmpdir)
        busybox_tar = tmp / "busybox.tar"
        subprocess.run([str(REPO / "scripts" / "busybox-rootfs"), str(busybox_tar)], check=True)
        context = tmp / "context"
        make_context(context)
        results["skiff build"] = bench_skiff(tmp, busybox_tar, context, runs)
        docker = bench_docker(tmp, busybox_tar, context, runs)
        if docker:
            results[docker[0]] = docker[1:]
        oci = tmp / "busybox-oci.tar"
        from bench.sandbox import private_skiff

        with private_skiff(dir=str(tmp)) as (_, env):
            env = {**env, "PYTHONPATH": str(REPO)}
            subprocess.run([*SKIFF, "import", str(busybox_tar), "docker.io/library/busybox:latest"], env=env,
                           check=True, capture_output=True)
            subprocess.run([*SKIFF, "save", "-o", str(oci), "busybox:latest"], env=env, check=True)
        buildah = bench_buildah(tmp, context, oci, runs)
        if buildah:
            results["buildah bud --layers"] = buildah
    others = {name: value for name, value in results.items() if name != "skiff build"}
    print(f"medians of {runs} run(s); context: 10 steps, one COPY of {TOTAL_BYTES >> 20} MB in {FILES} files")
    print(f"{'tool':28} {'cold s':>8} {'rebuild s':>10}")
    for name, (cold, warm) in results.items():
        print(f"{name:28} {cold:8.2f} {warm:10.2f}")
    if others:
        best_cold = min(cold for cold, _ in others.values())
        best_warm = min(warm for _, warm in others.values())
        skiff_cold, skiff_warm = results["skiff build"]
        print(f"skiff cold / fastest other cold: {skiff_cold / best_cold:.2f} (goal <= 1.0)")
        print(f"skiff rebuild / fastest other rebuild: {skiff_warm / best_warm:.2f} (goal <= 0.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
