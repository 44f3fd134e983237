"""The high-level engine: images become OCI bundles, bundles become containers.

``Engine`` is the library API the CLI calls. Import cost matters here: the
modules for images, volumes, networks and the runtime are imported where they
are used, not at the top. ``Engine`` and ``RunOptions`` are loaded when first
asked for, so the monitor and the health probe, which import the engine's lower
modules (``containers``, ``state``, ``teardown``, ``events``), never load
``skiff.engine.engine``: the monitor has no edge back into the engine proper.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from skiff.engine.engine import Engine
    from skiff.engine.options import RunOptions

__all__ = ["Engine", "RunOptions"]


def __getattr__(name: str) -> Any:
    value: Any
    if name == "Engine":
        from skiff.engine.engine import Engine as value
    elif name == "RunOptions":
        from skiff.engine.options import RunOptions as value
    else:
        raise AttributeError(f"module 'skiff.engine' has no attribute {name!r}")
    globals()[name] = value  # kept: the API service asks for the Engine on every request
    return value
