"""Security policy the engine applies to containers: seccomp profiles and ``--security-opt``.

It knows Docker's formats and defaults and turns them into OCI config fields; the
runtime applies whatever lands in config.json and never imports this package.
"""
