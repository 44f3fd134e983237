"""Runtime.run against `runc run` on the same bundle: skiff's runtime must not be the slow part."""

from __future__ import annotations

import statistics
import subprocess
import time
from pathlib import Path

import pytest

from tests.runtime.conftest import BundleFactory

RUNC = Path("/usr/sbin/runc")


def _median_seconds(action: object, rounds: int = 10) -> float:
    action()  # warm caches (page cache, imports) before measuring  # type: ignore[operator]
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()  # type: ignore[operator]
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


@pytest.mark.slow
@pytest.mark.skipif(not RUNC.exists(), reason="runc is not installed")
def test_run_true_is_within_3x_of_runc(bundle: BundleFactory, tmp_path: Path) -> None:
    bundle.write(["true"])

    def skiff_run() -> None:
        assert bundle.runtime.run("speed", bundle.path, stdio=(0, 1, 2)) == 0

    def runc_run() -> None:
        # Its own state root: never /run/runc.
        subprocess.run([str(RUNC), "--root", str(tmp_path / "runc"), "run", "--bundle", str(bundle.path),
                        f"skiff-speed-{id(bundle)}"], check=True)

    ours, theirs = _median_seconds(skiff_run), _median_seconds(runc_run)
    print(f"\nRuntime.run true: {ours * 1000:.1f} ms, runc run true: {theirs * 1000:.1f} ms "
          f"(median of 10, ratio {ours / theirs:.2f})")
    assert ours <= 3 * theirs
