"""The CDI specs of this host, and ``vendor.com/class=name`` resolved to their devices.

Specs are read from ``/etc/cdi`` then ``/var/run/cdi`` (``SKIFF_CDI_SPEC_DIRS``, a colon-separated
list, replaces them: tests, or a vendor's own directory). A device defined in a later directory
overrides an earlier one, as the reference implementation's priorities; the same device twice in
one directory is a conflict. A spec that does not parse is an error naming its file and field
whenever a device of its kind (or of a kind it may be, when even its kind cannot be read) is asked
for; specs of other kinds still serve their devices.
"""

from __future__ import annotations

import json
import os

from skiff.cdi.spec import Device, Spec, load, parse_qualified_name
from skiff.errors import CDIError

DEFAULT_DIRS = ("/etc/cdi", "/var/run/cdi")
EXTENSIONS = (".json", ".yaml", ".yml")


def spec_dirs() -> list[str]:
    override = os.environ.get("SKIFF_CDI_SPEC_DIRS")
    if override is not None:
        return [d for d in override.split(":") if d]
    return list(DEFAULT_DIRS)


class Registry:
    """Every spec of the given directories, read once."""

    def __init__(self, dirs: list[str] | None = None) -> None:
        self.dirs = spec_dirs() if dirs is None else dirs
        self.specs: list[Spec] = []
        self.errors: list[tuple[str | None, CDIError]] = []   # (the broken spec's kind if readable, error)
        for priority, directory in enumerate(self.dirs):
            for path in _spec_files(directory):
                try:
                    self.specs.append(load(path, priority))
                except CDIError as exc:
                    self.errors.append((_kind_of(path), exc))

    def devices(self) -> list[Device]:
        """Every device, the overridden ones left out, sorted by qualified name."""
        found: dict[str, Device] = {}
        for spec in self.specs:
            for device in spec.devices.values():
                name = device.qualified_name
                other = found.get(name)
                if other is not None and other.spec.priority == spec.priority:
                    raise CDIError(f"CDI device {name} is defined in both {other.spec.path} and {spec.path}")
                if other is None or other.spec.priority < spec.priority:
                    found[name] = device
        return [found[name] for name in sorted(found)]

    def kinds(self) -> set[str]:
        return {spec.kind for spec in self.specs}

    def resolve(self, names: list[str]) -> list[Device]:
        """The devices ``names`` ask for, in order, each once; ``kind=all`` is every device of
        the kind unless a spec defines a device named ``all``."""
        wanted = [parse_qualified_name(name) for name in names]
        self._raise_broken({kind for kind, _ in wanted})
        devices = self.devices()
        by_name = {d.qualified_name: d for d in devices}
        chosen: dict[str, Device] = {}
        for (kind, device), name in zip(wanted, names):
            if name in by_name:
                chosen.setdefault(name, by_name[name])
            elif device == "all" and any(d.spec.kind == kind for d in devices):
                chosen.update((d.qualified_name, d) for d in devices if d.spec.kind == kind)
            else:
                where = " and ".join(self.dirs) or "no directory"
                raise CDIError(f"unresolvable CDI devices {name}: no CDI spec in {where} defines it")
        return list(chosen.values())

    def _raise_broken(self, kinds: set[str]) -> None:
        for kind, error in self.errors:
            if kind is None or kind in kinds:
                raise error


def _spec_files(directory: str) -> list[str]:
    try:
        names = sorted(os.listdir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise CDIError(f"CDI spec directory {directory}: {exc.strerror}") from None
    paths = [os.path.join(directory, name) for name in names if name.endswith(EXTENSIONS)]
    return [path for path in paths if os.path.isfile(path)]


def _kind_of(path: str) -> str | None:
    """A broken spec's kind, when at least that much reads (JSON specs only: cheap and certain)."""
    if not path.endswith(".json"):
        return None
    try:
        with open(path, "rb") as f:
            kind = json.load(f).get("kind")
    except (OSError, ValueError, AttributeError):
        return None
    return kind if isinstance(kind, str) else None
