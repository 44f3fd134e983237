"""Parsing of ``-v``, ``--mount``, ``--tmpfs`` and ``--volumes-from`` into typed ``MountSpec``s.

The rules and messages are Docker's (moby ``volume/mounts/linux_parser.go`` and
docker/cli ``opts/mount.go``), so a user's muscle memory and scripts keep working.
Parsing only reads: nothing is created here, so bad input fails before anything
exists (exit 125).
"""

from __future__ import annotations

import os
import re
from typing import Literal, Sequence

from skiff.errors import VolumeError

MountType = Literal["volume", "bind", "tmpfs"]

VOLUME_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave")
_RW_MODES = ("rw", "ro")
_LABEL_MODES = ("z", "Z")
_COPY_MODES = ("nocopy",)
# --tmpfs defaults, as Docker's: a scratch dir must not become a way to run binaries or devices.
TMPFS_DEFAULT_FLAGS = ("nosuid", "nodev", "noexec")
_TMPFS_FLAGS = {"exec", "noexec", "suid", "nosuid", "dev", "nodev", "ro", "rw", "atime", "noatime",
                "relatime", "strictatime", "diratime", "nodiratime", "sync", "async", "dirsync"}


class MountSpec:
    """One mount a user (or an image) asked for, validated, before anything exists.

    A plain class, not a dataclass: importing dataclasses costs 5 ms on the run path.
    """

    def __init__(self, type: MountType, target: str, source: str = "", read_only: bool = False,
                 copy: bool = True, propagation: str = "", mode: str = "",
                 volume_labels: dict[str, str] | None = None, volume_driver: str = "",
                 volume_options: dict[str, str] | None = None, tmpfs_size: int | None = None,
                 tmpfs_mode: int | None = None, tmpfs_flags: list[str] | None = None,
                 create_source: bool = False) -> None:
        self.type = type
        self.target = target                  # absolute, cleaned, never "/"
        self.source = source                  # volume name ("" = anonymous) or absolute host path
        self.read_only = read_only
        self.copy = copy                      # copy image content into a new empty volume
        self.propagation = propagation        # "" = default (rprivate)
        self.mode = mode                      # the raw -v mode, kept for the record's "Mode"
        self.volume_labels = volume_labels or {}
        self.volume_driver = volume_driver
        self.volume_options = volume_options or {}
        self.tmpfs_size = tmpfs_size          # bytes
        self.tmpfs_mode = tmpfs_mode
        self.tmpfs_flags = tmpfs_flags or []
        self.create_source = create_source    # -v /host:/x creates /host when missing; --mount does not

    def __repr__(self) -> str:
        return f"MountSpec({self.type}, {self.source!r} -> {self.target!r}{', ro' if self.read_only else ''})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MountSpec) and vars(self) == vars(other)


def invalid_spec(raw: str) -> VolumeError:
    return VolumeError(f"invalid volume specification: '{raw}'")


def check_volume_name(name: str, action: str = "create") -> None:
    """Docker's local-driver name rule, with Docker's messages."""
    if len(name) == 1:
        raise VolumeError(f"{action} {name}: volume name is too short, names should be at least "
                          "two alphanumeric characters")
    if not VOLUME_NAME.fullmatch(name):  # fullmatch: '$' would let a trailing newline through
        raise VolumeError(f'{action} {name}: "{name}" includes invalid characters for a local volume name, '
                          'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
                          "directory, use absolute path")


def clean_target(target: str, kind: str = "volume") -> str:
    """An absolute, normalised container path that is not ``/`` and does not climb out with ``..``."""
    prefix = f'invalid mount config for type "{kind}": '
    if not target:
        raise VolumeError(prefix + "field Target must not be empty")
    if not target.startswith("/"):
        raise VolumeError(prefix + f"invalid mount path: '{target}' mount path must be absolute")
    depth = 0
    for part in target.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                raise VolumeError(prefix + f"invalid mount path: '{target}' escapes the container root with '..'")
        elif part not in ("", "."):
            depth += 1
    cleaned = os.path.normpath(target)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    if cleaned == "/":
        raise VolumeError(prefix + "invalid specification: destination can't be '/'")
    return cleaned


def _valid_mode(mode: str) -> bool:
    """Docker's linuxValidMountMode: comma-separated, at most one of each kind."""
    if mode == "":
        return True
    counts = {"rw": 0, "label": 0, "prop": 0, "copy": 0}
    for part in mode.split(","):
        if part in _RW_MODES:
            counts["rw"] += 1
        elif part in _LABEL_MODES:
            counts["label"] += 1
        elif part in PROPAGATIONS:
            counts["prop"] += 1
        elif part in _COPY_MODES:
            counts["copy"] += 1
        else:
            return False
    return all(n <= 1 for n in counts.values())


def parse_volume(raw: str) -> MountSpec:
    """``-v [SOURCE:]TARGET[:MODE]``: SOURCE is a volume name or an absolute host path."""
    parts = raw.split(":", 3)
    if parts[0] == "":
        raise invalid_spec(raw)
    mode = ""
    if len(parts) == 1:
        source, target = "", parts[0]
    elif len(parts) == 2:
        if _valid_mode(parts[1]):  # "/foo:rw" names no source; "x:" names no target
            raise invalid_spec(raw)
        source, target = parts
    elif len(parts) == 3:
        source, target, mode = parts
    else:
        raise invalid_spec(raw)
    if not target:
        raise invalid_spec(raw)
    if not _valid_mode(mode):
        raise VolumeError(f"invalid mode: {mode}")
    fields = mode.split(",") if mode else []
    kind: MountType = "bind" if source.startswith("/") else "volume"
    try:
        cleaned = clean_target(target, kind)
    except VolumeError as exc:  # Docker names the whole -v value first
        raise exc.within(f"invalid volume specification: '{raw}'") from None
    spec = MountSpec(type=kind, target=cleaned, source=source, mode=mode,
                     read_only="ro" in fields, copy="nocopy" not in fields)
    spec.propagation = next((f for f in fields if f in PROPAGATIONS), "")
    if kind == "bind":
        if "nocopy" in fields:
            raise VolumeError('invalid mount config for type "bind": field VolumeOptions must not be specified')
        spec.source = _clean_host_path(source)
        spec.create_source = True
    else:
        if spec.propagation:
            raise VolumeError('invalid mount config for type "volume": field BindOptions must not be specified')
        if source:
            check_volume_name(source)
        elif spec.read_only:
            raise VolumeError('invalid mount config for type "volume": must not set ReadOnly mode when using '
                              "anonymous volumes")
    return spec


def _clean_host_path(path: str) -> str:
    cleaned = os.path.normpath(path)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def _parse_bool(key: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "t", "true"):
        return True
    if lowered in ("0", "f", "false"):
        return False
    raise VolumeError(f"invalid value for {key}: {value}")


def _split_csv(raw: str) -> list[str]:
    """Docker reads --mount as one CSV record: a field may be quoted to hold commas."""
    import csv

    try:
        rows = list(csv.reader([raw]))
    except csv.Error as exc:
        raise VolumeError(f'invalid argument "{raw}" for "--mount" flag: {exc}') from None
    return rows[0] if rows else []


def parse_mount(raw: str) -> MountSpec:
    """``--mount type=volume|bind|tmpfs,source=,target=,readonly,...``."""
    def fail(message: str) -> VolumeError:
        return VolumeError(f'invalid argument "{raw}" for "--mount" flag: {message}')

    kind = "volume"
    source = target = propagation = ""
    read_only, copy = False, True
    labels: dict[str, str] = {}
    options: dict[str, str] = {}
    driver = ""
    size: int | None = None
    tmode: int | None = None
    used = {"volume": False, "bind": False, "tmpfs": False}
    for item in _split_csv(raw):
        key, has_value, value = item.partition("=")
        key = key.lower()
        if not has_value:
            if key in ("readonly", "ro"):
                read_only = True
            elif key == "volume-nocopy":
                copy, used["volume"] = False, True
            else:
                raise fail(f"invalid field '{item}' must be a key=value pair")
            continue
        if key == "type":
            kind = value.lower()
        elif key in ("source", "src"):
            source = value
        elif key in ("target", "dst", "destination"):
            target = value
        elif key in ("readonly", "ro"):
            read_only = _parse_bool(key, value)
        elif key == "bind-propagation":
            propagation, used["bind"] = value.lower(), True
        elif key == "volume-nocopy":
            copy, used["volume"] = not _parse_bool(key, value), True
        elif key == "volume-label":
            k, _, v = value.partition("=")
            if k:
                labels[k] = v
            used["volume"] = True
        elif key == "volume-driver":
            driver, used["volume"] = value, True
        elif key == "volume-opt":
            k, _, v = value.partition("=")
            if k:
                options[k] = v
            used["volume"] = True
        elif key == "tmpfs-size":
            try:
                size = parse_size(value)
            except VolumeError:
                raise fail(f"invalid value for {key}: {value}") from None
            used["tmpfs"] = True
        elif key == "tmpfs-mode":
            try:
                tmode = int(value, 8)
            except ValueError:
                raise fail(f"invalid value for {key}: {value}") from None
            used["tmpfs"] = True
        else:
            raise fail(f"unexpected key '{key}' in '{item}'")
    if kind not in ("volume", "bind", "tmpfs"):
        raise VolumeError(f'invalid mount config for type "{kind}": mount type unknown')
    if not target:
        raise fail("target is required")
    for group, was_used in used.items():
        if was_used and group != kind:
            raise fail(f"cannot mix '{group}-*' options with mount type '{kind}'")
    spec = MountSpec(type=kind, target=clean_target(target, kind), read_only=read_only,  # type: ignore[arg-type]
                     copy=copy, propagation=propagation, volume_labels=labels, volume_driver=driver,
                     volume_options=options, tmpfs_size=size, tmpfs_mode=tmode)
    if kind == "bind":
        _check_bind_source(spec, source)
    elif kind == "volume":
        if source:
            check_volume_name(source)
        elif read_only:
            raise VolumeError('invalid mount config for type "volume": must not set ReadOnly mode when using '
                              "anonymous volumes")
        spec.source = source
    else:
        if source:
            raise VolumeError('invalid mount config for type "tmpfs": field Source must not be specified')
        spec.tmpfs_flags = list(TMPFS_DEFAULT_FLAGS)
    return spec


def _check_bind_source(spec: MountSpec, source: str) -> None:
    if not source:
        raise VolumeError('invalid mount config for type "bind": field Source must not be empty')
    if not source.startswith("/"):
        raise VolumeError(f"invalid mount path: '{source}' mount path must be absolute")
    if spec.propagation and spec.propagation not in PROPAGATIONS:
        raise VolumeError(f'invalid mount config for type "bind": invalid propagation mode: {spec.propagation}')
    spec.source = _clean_host_path(source)
    if not os.path.exists(spec.source):
        raise VolumeError(f'invalid mount config for type "bind": bind source path does not exist: {spec.source}')


def parse_tmpfs(raw: str) -> MountSpec:
    """``--tmpfs /path[:size=64m,mode=1777,exec,...]``; nosuid,nodev,noexec unless overridden."""
    target, _, opts = raw.partition(":")
    spec = MountSpec(type="tmpfs", target=clean_target(target, "tmpfs"))
    flags = list(TMPFS_DEFAULT_FLAGS)
    for opt in filter(None, opts.split(",")):
        key, has_value, value = opt.partition("=")
        if key == "size" and has_value:
            spec.tmpfs_size = _tmpfs_size(value)
        elif key == "mode" and has_value:
            try:
                spec.tmpfs_mode = int(value, 8)
            except ValueError:
                raise VolumeError(f"invalid tmpfs mode: '{value}' (an octal number such as 1777)") from None
        elif not has_value and opt in _TMPFS_FLAGS:
            opposite = opt[2:] if opt.startswith("no") else f"no{opt}"
            flags = [f for f in flags if f not in (opt, opposite)] + [opt]
            if opt in ("ro", "rw"):
                spec.read_only = opt == "ro"
        elif has_value and key in ("uid", "gid", "nr_inodes", "nr_blocks", "huge", "mpol"):
            flags.append(opt)
        else:
            raise VolumeError(f"invalid tmpfs option: '{opt}' in '{raw}'")
    spec.tmpfs_flags = [f for f in flags if f not in ("ro", "rw")]
    return spec


def _tmpfs_size(value: str) -> int:
    try:
        return parse_size(value)
    except VolumeError:
        raise VolumeError(f"invalid tmpfs size: '{value}' (use bytes or a k, m, g suffix, such as 64m)") from None


def parse_size(value: str) -> int:
    """go-units RAMInBytes: ``64m``, ``1.5g``, ``512k``, ``100`` (binary units); more than 0."""
    from skiff.units import ram_in_bytes

    try:
        size = ram_in_bytes(value.strip())
    except ValueError:
        size = 0
    if size <= 0:
        raise VolumeError(f"invalid size: '{value}'")
    return size


def parse_volumes_from(raw: str) -> tuple[str, bool]:
    """``--volumes-from CONTAINER[:ro|:rw]`` -> (container reference, read_only)."""
    ref, sep, mode = raw.partition(":")
    if not ref or (sep and not mode):
        raise VolumeError(f"invalid volumes-from specification: '{raw}'")
    if mode and mode not in _RW_MODES:
        raise VolumeError(f"invalid mode: {mode}")
    return ref, mode == "ro"


def parse_run_mounts(volumes: Sequence[str] = (), mounts: Sequence[str] = (),
                     tmpfs: Sequence[str] = ()) -> list[MountSpec]:
    """Every mount flag of ``skiff run``, validated; two mounts on one target are refused."""
    specs = ([parse_volume(v) for v in volumes] + [parse_mount(m) for m in mounts]
             + [parse_tmpfs(t) for t in tmpfs])
    seen: set[str] = set()
    for spec in specs:
        if spec.target in seen:
            raise VolumeError(f"Duplicate mount point: {spec.target}")
        seen.add(spec.target)
    return specs
