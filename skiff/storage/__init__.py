"""Container root filesystems: an overlay of the image's layers and a private upper dir.

See ``skiff.storage.overlay`` (``mount_rootfs``, ``unmount_rootfs``).
"""
