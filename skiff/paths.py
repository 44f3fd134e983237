"""Where skiff keeps its state.

Persistent data (images, layers, volumes, container records) lives under the
*root*, ``/var/lib/skiff``; runtime state that must not survive a reboot (OCI
runtime state, locks of running containers) under the *run root*,
``/run/skiff``. Both can be moved with ``--root`` / ``--run-root`` or the
``SKIFF_ROOT`` / ``SKIFF_RUN_ROOT`` environment variables, which is how the
tests keep away from the real ones.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

DEFAULT_ROOT = Path("/var/lib/skiff")
DEFAULT_RUN_ROOT = Path("/run/skiff")


class Paths(NamedTuple):
    root: Path
    run_root: Path

    @classmethod
    def from_env(cls, root: str | os.PathLike[str] | None = None,
                 run_root: str | os.PathLike[str] | None = None) -> "Paths":
        """Explicit arguments win over the environment, which wins over defaults."""
        chosen_root = Path(root or os.environ.get("SKIFF_ROOT") or DEFAULT_ROOT)
        chosen_run = Path(run_root or os.environ.get("SKIFF_RUN_ROOT") or DEFAULT_RUN_ROOT)
        return cls(chosen_root.absolute(), chosen_run.absolute())

    # --- persistent -------------------------------------------------------
    @property
    def images(self) -> Path:
        """Image store: blobs by digest, the repositories index, layer records."""
        return self.root / "image"

    @property
    def layers(self) -> Path:
        """Unpacked layers, one directory per diff_id, shared by all images."""
        return self.root / "overlay"

    @property
    def containers(self) -> Path:
        """One directory per container id: record, bundle, upper/work dirs, logs."""
        return self.root / "containers"

    @property
    def volumes(self) -> Path:
        """Named and anonymous volumes: ``volumes/NAME/_data`` plus metadata."""
        return self.root / "volumes"

    @property
    def networks(self) -> Path:
        return self.root / "network"

    @property
    def tmp(self) -> Path:
        """Scratch space on the same filesystem as the store, for atomic renames."""
        return self.root / "tmp"

    @property
    def lock_file(self) -> Path:
        """Guards the store's indexes against concurrent skiff commands."""
        return self.root / "skiff.lock"

    # --- runtime ----------------------------------------------------------
    @property
    def runtime_state(self) -> Path:
        """The OCI runtime core's state directory (one subdirectory per container)."""
        return self.run_root / "runtime"

    @property
    def seccomp_cache(self) -> Path:
        """Compiled seccomp filters the runtime core keeps between containers (one file per profile)."""
        return self.run_root / "seccomp"

    @property
    def netns(self) -> Path:
        return self.run_root / "netns"
