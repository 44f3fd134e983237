"""``skiff build``: Dockerfiles parsed (``parser``, ``shell``), contexts read (``context``,
``ignore``), steps run and cached (``builder``, ``cache``). See docs/building.md."""
