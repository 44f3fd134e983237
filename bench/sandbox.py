"""A private skiff for a benchmark: a temporary root and run root and its own cgroup parent.

Benchmarks run real containers; like the tests they must leave nothing behind, the
parent cgroup (which skiff keeps, as Docker keeps /docker) included.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def private_skiff(prefix: str = "skiff-bench-", dir: str | None = None) -> Iterator[tuple[Path, dict[str, str]]]:
    """(temporary directory, environment for skiff commands); everything is removed afterwards."""
    parent = f"skiff-bench-{os.urandom(3).hex()}"
    with tempfile.TemporaryDirectory(prefix=prefix, dir=dir) as tmpdir:
        tmp = Path(tmpdir)
        env = dict(os.environ, SKIFF_ROOT=str(tmp / "root"), SKIFF_RUN_ROOT=str(tmp / "run"),
                   SKIFF_CGROUP_PARENT=parent)
        try:
            yield tmp, env
        finally:
            from skiff import cgroups

            cgroups.open(f"/{parent}").destroy()
