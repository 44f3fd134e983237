"""The OCI runtime core: run an OCI bundle (config.json + rootfs) as a container.

Knows only the OCI runtime-spec; it imports nothing of the engine, images,
volumes, networks or the CLI.
"""

from __future__ import annotations

from skiff.runtime.runtime import Runtime
from skiff.runtime.spec import default_spec, load_config

__all__ = ["Runtime", "default_spec", "load_config"]
