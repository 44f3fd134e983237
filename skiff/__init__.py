"""skiff: a container engine for one Linux host, with Docker's behaviour."""

__version__ = "0.1.0"
