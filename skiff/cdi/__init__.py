"""The Container Device Interface (CDI): vendor specs of devices and the edits they make.

``skiff.cdi.spec`` reads and checks one spec file, ``skiff.cdi.registry`` finds the specs of a
host and resolves ``vendor.com/class=name``, ``skiff.cdi.edits`` applies a device's edits to an
OCI config, ``skiff.cdi.nvidia`` writes a spec for the NVIDIA devices a host has. Below the
engine: it knows OCI configs, not containers.
"""
