"""The host ``skiff check`` looks at: its files under a root, and what no file tells.

Files (/proc, /sys, /etc, /usr, /lib) are read under ``root``: ``/`` on a real host, a
fake tree in the unit tests. The rest (system calls, libraries, commands, free space) is
one method each, which the unit tests replace with canned answers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from skiff.cgroups.detect import Setup


class Host:
    """``root``: where /proc, /sys, /etc ... are (``/``); ``skiff_root``: the root skiff would use;
    ``cgroup_parent``: the cgroup containers go under (SKIFF_CGROUP_PARENT, ``skiff``)."""

    def __init__(self, skiff_root: str | os.PathLike[str], root: str | os.PathLike[str] = "/",
                 cgroup_parent: str | None = None, euid: int | None = None, user: str | None = None,
                 debug: bool = False) -> None:
        self.root = os.fspath(root)
        self.skiff_root = os.fspath(skiff_root)
        if cgroup_parent is None:
            from skiff.engine.plan import cgroup_parent as engine_parent

            cgroup_parent = engine_parent()
        self.cgroup_parent = cgroup_parent.strip("/")
        self.euid = os.geteuid() if euid is None else euid
        self.user = user if user is not None else _user_name(self.euid)
        self.debug = debug  # a probe that breaks raises (``skiff --debug check``) instead of becoming a line

    @property
    def real(self) -> bool:
        """Whether this is the running host (the files under ``/``), not a fake tree."""
        return os.path.realpath(self.root) == "/"

    # --- files under the root ---------------------------------------------------------------
    def path(self, absolute: str) -> str:
        """``absolute`` (``/proc/filesystems``) under the root."""
        return os.path.join(self.root, absolute.lstrip("/"))

    def shown(self, path: str) -> str:
        """A path under the root as the host's own (``/sys/fs/cgroup``), for messages."""
        if self.real or not path.startswith(self.root.rstrip("/") + "/"):
            return path
        return "/" + path[len(self.root.rstrip("/")) + 1:]

    def read(self, absolute: str) -> str | None:
        """The file's text, or None if it is missing or unreadable."""
        try:
            with open(self.path(absolute), encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return None

    def sysctl(self, key: str) -> str | None:
        """``/proc/sys/<key with dots as slashes>``, stripped; None if the kernel has no such knob."""
        text = self.read("/proc/sys/" + key.replace(".", "/"))
        return None if text is None else text.strip()

    def exists(self, absolute: str) -> bool:
        return os.path.lexists(self.path(absolute))

    def executable(self, path: str) -> bool:
        """Whether this user may execute ``path`` (a path under the root already)."""
        return os.path.isfile(path) and os.access(path, os.X_OK)

    def writable(self, path: str) -> bool:
        """Whether this user may write ``path`` (a path under the root already)."""
        return os.access(path, os.W_OK)

    def cgroup_setup(self) -> Setup:
        """The cgroup layout: from the mount table on the real host, from the tree under a fake root.

        Raises CgroupError when no cgroup filesystem is mounted."""
        from skiff.cgroups.detect import detect

        return detect(None if self.real else self.path("/sys/fs/cgroup"))

    # --- what no file tells (replaced in the unit tests) ----------------------------------------
    def call(self, name: str) -> int:
        """0 when the kernel does what skiff needs of ``name`` (skiff.check.calls), else the errno."""
        from skiff.check import calls

        return calls.PROBES[name](self)

    def python_module(self, name: str) -> bool:
        """Whether skiff's interpreter finds ``name`` (found, not imported: no import cost)."""
        import importlib.util

        try:
            return importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            return False

    def library(self, soname: str) -> bool:
        """Whether ``soname`` (``libnftables.so.1``) loads."""
        import ctypes

        try:
            ctypes.CDLL(soname)
        except OSError:
            return False
        return True

    def command(self, name: str) -> str | None:
        """Where the command ``name`` is, root's sbin directories included."""
        import shutil

        return shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin:/usr/bin:/bin")

    def firewall_error(self, backend: str) -> str | None:
        """None when skiff can read the host's rules with ``backend``, else why not (no rule is changed)."""
        from skiff.check import calls

        return calls.firewall_error(backend)

    def firewall_backend(self) -> str:
        """The backend skiff's network code picks for this root (skiff.network.firewall.choose_backend)."""
        from skiff.network.firewall import choose_backend

        return choose_backend(self.firewall_preference())

    def firewall_preference(self) -> str:
        """The root's ``"firewall"`` setting (``<root>/network/config.json``): auto, nftables or iptables."""
        from skiff.errors import SkiffError
        from skiff.network.config import NetworkConfig

        try:
            return NetworkConfig.for_root(Path(self.skiff_root)).firewall
        except (SkiffError, OSError, TypeError, ValueError):
            return "auto"   # a broken config is reported by the commands that read it

    def free_bytes(self, path: str) -> int:
        """Bytes free to root on the filesystem of ``path`` (an existing directory)."""
        stat = os.statvfs(path)
        return stat.f_bavail * stat.f_frsize

    def fstype(self, path: str) -> str:
        """The filesystem type ``path`` is on, "" when it cannot be told."""
        if not self.real:
            return ""
        from skiff import mountinfo

        try:
            mount = mountinfo.containing(path)
        except OSError:
            return ""
        return mount.fstype if mount is not None else ""



def existing_ancestor(path: str) -> str:
    """``path`` or its nearest ancestor that exists (the skiff root may not be made yet)."""
    current = os.path.abspath(path)
    while not os.path.exists(current) and current != "/":
        current = os.path.dirname(current)
    return current


def _user_name(uid: int) -> str:
    """Who asks: the user behind sudo, else the owner of ``uid`` (its number if it has no name)."""
    sudo_user = os.environ.get("SUDO_USER")
    if sudo_user:
        return sudo_user
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
