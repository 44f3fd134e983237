"""A container's root filesystem: overlayfs over the image's layers plus a private upper dir.

The mount options must fit in one page (4096 bytes). An image store that keeps
short links (``<layers>/l/<name> -> ../<hex>/diff`` plus ``<hex>/link``, as
``skiff.image.store`` does) lets us name each lower layer as ``l/<name>``
relative to the layers directory: we chdir there for the mount(2) call only.
Layer directories without a short link are passed by absolute path.
"""

from __future__ import annotations

import _thread  # a lock without importing threading (not on `skiff run`'s path otherwise)
import errno
import json
import os
import time
from pathlib import Path

from skiff import explain, linux
from skiff.errors import SyscallError

PAGE_SIZE = 4096
UMOUNT_RETRIES = 5
LINK_DIR = "l"
# The working directory is the process's: a server that mounts from several threads (skiff.api)
# must not let one thread's chdir back pull the directory from under another's mount(2).
_CWD_LOCK = _thread.allocate_lock()


def mount_rootfs(layer_dirs: list[Path], container_dir: Path) -> Path:
    """Mount ``container_dir/rootfs`` as an overlay of ``layer_dirs`` (bottom first).

    ``container_dir/upper`` takes the container's writes, ``container_dir/work`` is
    overlayfs' scratch dir. Returns the rootfs path.
    """
    if not layer_dirs:
        raise SyscallError("mount overlay", errno.EINVAL, str(container_dir), hint="an image needs at least one layer")
    upper, work, rootfs = (container_dir / name for name in ("upper", "work", "rootfs"))
    for directory in (upper, work, rootfs):
        directory.mkdir(parents=True, exist_ok=True)
    base, lowers = _lower_names(layer_dirs)
    if explain.on:
        explain.mark()
        for number, layer in enumerate(layer_dirs, 1):
            explain.step(explain.IMAGE, f"image layer {number} of {len(layer_dirs)}"
                         f"{' (the bottom one)' if number == 1 else ''}: a directory unpacked once, shared read-only "
                         "by every container of the image", "", {"dir": str(layer)})
            explain.mark()
        explain.step(explain.IMAGE, "the container's own directories: upper takes its writes, work is overlayfs' "
                     "scratch space", "mkdir", {"upper": str(upper), "work": str(work)})
    # overlayfs lists the top layer first; images list the bottom layer first.
    options = (f"lowerdir={':'.join(_escape(name) for name in reversed(lowers))},"
               f"upperdir={_escape(str(upper))},workdir={_escape(str(work))},index=off")
    if len(options) >= PAGE_SIZE:
        raise SyscallError("mount overlay", errno.E2BIG, str(rootfs),
                           hint=f"{len(layer_dirs)} layers give {len(options)} bytes of mount options")
    with _CWD_LOCK:
        cwd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            if base is not None:
                os.chdir(base)
            linux.mount("overlay", rootfs, "overlay", 0, options)
        finally:
            os.fchdir(cwd)
            os.close(cwd)
    # `/` is private here, but say so: nothing mounted in the rootfs may propagate back.
    linux.mount(None, rootfs, None, linux.MS_PRIVATE)
    if explain.on:
        explain.step(explain.IMAGE, f"mount the root filesystem: an overlay of the {len(layer_dirs)} read-only "
                     "layer(s) (top first) under the writable upper dir, private to the host", "mount",
                     {"source": "overlay", "target": str(rootfs), "type": "overlay",
                      "data": explain.overlay_options(options), "then": "MS_PRIVATE",
                      **({"cwd": str(base)} if base is not None else {})})
    return rootfs


def unmount_rootfs(container_dir: Path) -> None:
    """Unmount ``container_dir/rootfs``; fine if it is not mounted. Lazy after EBUSY retries."""
    rootfs = container_dir / "rootfs"
    for attempt in range(UMOUNT_RETRIES):
        if not is_mountpoint(rootfs):
            return
        try:
            linux.umount(rootfs, linux.UMOUNT_NOFOLLOW)
            if explain.on:
                explain.step(explain.TEARDOWN, "unmount the container's root filesystem (the overlay); its upper "
                             "dir keeps what it wrote", "umount2", {"target": str(rootfs), "flags": "UMOUNT_NOFOLLOW"})
            continue
        except SyscallError as exc:
            if exc.errno in (errno.EINVAL, errno.ENOENT):
                return
            if exc.errno != errno.EBUSY:
                raise
        time.sleep(0.05 * (attempt + 1))
    if is_mountpoint(rootfs):
        linux.umount(rootfs, linux.MNT_DETACH | linux.UMOUNT_NOFOLLOW)


def is_mountpoint(path: Path) -> bool:
    """Whether ``path`` is a mount point, from /proc/self/mountinfo (not fooled by bind mounts)."""
    from skiff import mountinfo

    return mountinfo.is_mount_point(path)


def _lower_names(layer_dirs: list[Path]) -> tuple[Path | None, list[str]]:
    """The directory to mount from and each layer's name relative to it (or absolute)."""
    roots = {layer.parent.parent for layer in layer_dirs}
    if len(roots) == 1:
        root = roots.pop()
        links = [_short_link(layer) for layer in layer_dirs]
        if all(links):
            return root, [f"{LINK_DIR}/{link}" for link in links]
    return None, [str(layer) for layer in layer_dirs]


def _short_link(layer_dir: Path) -> str | None:
    """The layer's short link name if ``l/<name>`` really points at this layer."""
    try:
        with open(layer_dir.parent / "layer.json") as f:
            name = json.load(f).get("link")
    except (OSError, ValueError):
        return None
    if not name:
        return None
    link = layer_dir.parent.parent / LINK_DIR / name
    try:
        if os.readlink(link) != f"../{layer_dir.parent.name}/{layer_dir.name}":
            return None
    except OSError:
        return None
    return name


def _escape(path: str) -> str:
    # overlayfs splits lowerdir on ':' and the option string on ','; both escape with '\'.
    return path.replace("\\", "\\\\").replace(":", "\\:").replace(",", "\\,")
