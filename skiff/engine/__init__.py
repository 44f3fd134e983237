"""The high-level engine: images become OCI bundles, bundles become containers.

``Engine`` is the library API the CLI calls. Import cost matters here: the
modules for images, volumes, networks and the runtime are imported where they
are used, not at the top.
"""

from skiff.engine.engine import Engine
from skiff.engine.options import RunOptions

__all__ = ["Engine", "RunOptions"]
