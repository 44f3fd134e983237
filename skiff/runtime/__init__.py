"""The OCI runtime core: run an OCI bundle (config.json + rootfs) as a container.

Knows only the OCI runtime-spec; it imports nothing of the engine, images,
volumes, networks or the CLI. Names are resolved on first use, so that
``from skiff.runtime import Runtime`` does not import the spec machinery.
"""

from __future__ import annotations

__all__ = ["Runtime", "default_spec", "load_config"]

TYPE_CHECKING = False
if TYPE_CHECKING:  # the real types for checkers; at run time __getattr__ imports them on first use
    from skiff.runtime.runtime import Runtime
    from skiff.runtime.spec import default_spec, load_config


def __getattr__(name: str) -> object:
    if name == "Runtime":
        from skiff.runtime.runtime import Runtime

        return Runtime
    if name in ("default_spec", "load_config"):
        from skiff.runtime import spec

        return getattr(spec, name)
    raise AttributeError(f"module 'skiff.runtime' has no attribute {name!r}")
