"""skiff-oci: runc's command line over skiff's OCI runtime core (skiff.runtime.Runtime).

containerd, podman and docker drive any runtime through this command line.
"""
