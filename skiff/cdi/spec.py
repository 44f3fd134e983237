"""One CDI spec file, read and checked against the Container Device Interface specification.

A spec (``/etc/cdi/*.json``, ``/var/run/cdi/*.yaml``) names a kind (``vendor.com/class``), its
devices, and the ``containerEdits`` each device (and the spec as a whole) makes to a container's
OCI config. Versions 0.3.0 to 0.8.0 are read; a field newer than the spec's ``cdiVersion`` says
is refused, as the reference implementation refuses it. Every error names the file and the field
(``devices[0].containerEdits.deviceNodes[1].path``) so a vendor's broken file is quick to find.

Pure logic: nothing here touches a device or the container; skiff.cdi.edits applies the edits.
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

from skiff.errors import CDIError

# The versions this reader knows, and the first version that has each newer field.
SUPPORTED = ((0, 3), (0, 4), (0, 5), (0, 6), (0, 7), (0, 8))
HOOK_NAMES = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
DEVICE_TYPES = ("b", "c", "u", "p")
# The specification's names: vendor a DNS-like name, class letters/digits/-/_ (dots from 0.6.0),
# device names alphanumeric at both ends with - _ . : between (':' as in MIG names "0:1").
_VENDOR = re.compile(r"[A-Za-z](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?")
_CLASS = re.compile(r"[A-Za-z](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?")
_DEVICE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.:-]*[A-Za-z0-9])?")


class Device:
    """One device of a spec: ``kind=name`` and its own edits."""

    __slots__ = ("spec", "name", "edits", "annotations")

    def __init__(self, spec: Spec, name: str, edits: Mapping[str, Any], annotations: Mapping[str, str]) -> None:
        self.spec = spec
        self.name = name
        self.edits = edits
        self.annotations = annotations

    @property
    def qualified_name(self) -> str:
        return f"{self.spec.kind}={self.name}"


class Spec:
    """A checked spec file: its kind, version, spec-wide edits and devices by name."""

    def __init__(self, path: str, data: Mapping[str, Any], priority: int = 0) -> None:
        self.path = path
        self.priority = priority           # index of its directory: a later directory overrides
        self.version = str(data["cdiVersion"])
        self.kind = str(data["kind"])
        self.vendor, _, self.device_class = self.kind.partition("/")
        self.edits: Mapping[str, Any] = data.get("containerEdits") or {}
        self.annotations: Mapping[str, str] = data.get("annotations") or {}
        self.devices: dict[str, Device] = {}
        for entry in data["devices"]:
            self.devices[entry["name"]] = Device(self, entry["name"], entry.get("containerEdits") or {},
                                                 entry.get("annotations") or {})


def load(path: str, priority: int = 0) -> Spec:
    """Read and check the spec file at ``path`` (JSON, or YAML for .yaml/.yml)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise CDIError(f"CDI spec {path}: {exc.strerror}") from None
    return parse(raw, path, priority)


def parse(raw: bytes, path: str, priority: int = 0) -> Spec:
    data = _decode(raw, path)
    check(data, path)
    return Spec(path, data, priority)


def _decode(raw: bytes, path: str) -> Any:
    if path.endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError:
            raise CDIError(f"CDI spec {path}: a YAML spec needs PyYAML (pip install pyyaml), "
                           "or write the spec as JSON") from None
        try:
            return yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError as exc:
            raise CDIError(f"CDI spec {path}: not valid YAML: {' '.join(str(exc).split())}") from None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise CDIError(f"CDI spec {path}: not valid JSON: {exc}") from None


# --- checks ---------------------------------------------------------------------------------

class _Checker:
    """Walks one spec, raising CDIError at the first bad field with its path."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.needs: tuple[tuple[int, int], str] = ((0, 3), "")   # the newest feature used, and where

    def fail(self, field: str, problem: str) -> CDIError:
        return CDIError(f"CDI spec {self.path}: {field}: {problem}")

    def need(self, version: tuple[int, int], field: str) -> None:
        if version > self.needs[0]:
            self.needs = (version, field)

    def obj(self, value: Any, field: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(field, f"must be an object, not {_json_type(value)}")
        return value

    def string(self, value: Any, field: str, required: bool = False) -> str:
        if value is None and not required:
            return ""
        if not isinstance(value, str) or (required and not value):
            raise self.fail(field, "is required" if value in (None, "") else
                            f"must be a string, not {_json_type(value)}")
        return value

    def strings(self, value: Any, field: str) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(field, "must be a list of strings")
        return value

    def integer(self, value: Any, field: str, low: int, high: int) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(field, f"must be an integer from {low} to {high}, not {value!r}")
        return value

    def absolute(self, value: Any, field: str) -> str:
        text = self.string(value, field, required=True)
        if not text.startswith("/"):
            raise self.fail(field, f"{text!r} is not an absolute path")
        return text

    def annotations(self, value: Any, field: str) -> None:
        if value is None:
            return
        self.need((0, 6), field)
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                  for k, v in value.items()):
            raise self.fail(field, "must be an object of strings")

    def edits(self, value: Any, field: str) -> None:
        if value is None:
            return
        edits = self.obj(value, field)
        for key in edits:
            if key not in ("env", "deviceNodes", "mounts", "hooks", "intelRdt", "additionalGIDs"):
                raise self.fail(f"{field}.{key}", "unknown field")
        for i, item in enumerate(self.strings(edits.get("env"), f"{field}.env")):
            if "=" not in item or item.startswith("="):
                raise self.fail(f"{field}.env[{i}]", f"{item!r} is not NAME=VALUE")
        for i, node in enumerate(self.list(edits.get("deviceNodes"), f"{field}.deviceNodes")):
            self.device_node(node, f"{field}.deviceNodes[{i}]")
        for i, mount in enumerate(self.list(edits.get("mounts"), f"{field}.mounts")):
            self.mount(mount, f"{field}.mounts[{i}]")
        for i, hook in enumerate(self.list(edits.get("hooks"), f"{field}.hooks")):
            self.hook(hook, f"{field}.hooks[{i}]")
        if edits.get("intelRdt") is not None:
            self.need((0, 7), f"{field}.intelRdt")
            self.obj(edits["intelRdt"], f"{field}.intelRdt")
        if edits.get("additionalGIDs") is not None:
            self.need((0, 7), f"{field}.additionalGIDs")
            gids = edits["additionalGIDs"]
            if not isinstance(gids, list):
                raise self.fail(f"{field}.additionalGIDs", "must be a list of group ids")
            for i, gid in enumerate(gids):
                self.integer(gid, f"{field}.additionalGIDs[{i}]", 0, (1 << 32) - 1)

    def list(self, value: Any, field: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(field, f"must be a list, not {_json_type(value)}")
        return value

    def device_node(self, value: Any, field: str) -> None:
        node = self.obj(value, field)
        self.absolute(node.get("path"), f"{field}.path")
        if node.get("hostPath") is not None:
            self.need((0, 5), f"{field}.hostPath")
            self.absolute(node["hostPath"], f"{field}.hostPath")
        kind = self.string(node.get("type"), f"{field}.type")
        if kind and kind not in DEVICE_TYPES:
            raise self.fail(f"{field}.type", f"{kind!r} is not a device type (b, c, u or p)")
        for key in ("major", "minor"):
            self.integer(node.get(key), f"{field}.{key}", 0, (1 << 32) - 1)
        if kind == "p" and (node.get("major") or node.get("minor")):
            raise self.fail(field, "a fifo (type p) has no major and minor numbers")
        self.integer(node.get("fileMode"), f"{field}.fileMode", 0, 0o7777 | 0o170000)
        permissions = self.string(node.get("permissions"), f"{field}.permissions")
        if permissions and (set(permissions) - set("rwm") or len(set(permissions)) != len(permissions)):
            raise self.fail(f"{field}.permissions", f"{permissions!r} is not made of r, w and m")
        for key in ("uid", "gid"):
            self.integer(node.get(key), f"{field}.{key}", 0, (1 << 32) - 1)

    def mount(self, value: Any, field: str) -> None:
        mount = self.obj(value, field)
        self.absolute(mount.get("containerPath"), f"{field}.containerPath")
        self.string(mount.get("hostPath"), f"{field}.hostPath", required=True)
        if mount.get("type") is not None:
            self.need((0, 4), f"{field}.type")
            self.string(mount["type"], f"{field}.type")
        self.strings(mount.get("options"), f"{field}.options")

    def hook(self, value: Any, field: str) -> None:
        hook = self.obj(value, field)
        name = self.string(hook.get("hookName"), f"{field}.hookName", required=True)
        if name not in HOOK_NAMES:
            raise self.fail(f"{field}.hookName", f"{name!r} is not an OCI hook ({', '.join(HOOK_NAMES[1:])})")
        self.absolute(hook.get("path"), f"{field}.path")
        self.strings(hook.get("args"), f"{field}.args")
        self.strings(hook.get("env"), f"{field}.env")
        timeout = self.integer(hook.get("timeout"), f"{field}.timeout", 1, (1 << 31) - 1)
        if hook.get("timeout") is not None and timeout is None:
            raise self.fail(f"{field}.timeout", "must be greater than zero")


def check(data: Any, path: str) -> None:
    """Raise CDIError naming ``path`` and the first field of ``data`` the specification refuses."""
    c = _Checker(path)
    spec = c.obj(data, "the document")
    version = parse_version(c.string(spec.get("cdiVersion"), "cdiVersion", required=True), c)
    kind = c.string(spec.get("kind"), "kind", required=True)
    vendor, slash, device_class = kind.partition("/")
    if not slash or not _VENDOR.fullmatch(vendor) or not _CLASS.fullmatch(device_class):
        raise c.fail("kind", f"{kind!r} is not vendor.com/class (letters, digits, '-', '_', '.')")
    if "." in device_class:
        c.need((0, 6), "kind (a '.' in its class)")
    c.annotations(spec.get("annotations"), "annotations")
    c.edits(spec.get("containerEdits"), "containerEdits")
    devices = spec.get("devices")
    if not isinstance(devices, list) or not devices:
        raise c.fail("devices", "must list at least one device")
    seen: set[str] = set()
    for i, entry in enumerate(devices):
        field = f"devices[{i}]"
        device = c.obj(entry, field)
        name = c.string(device.get("name"), f"{field}.name", required=True)
        if not _DEVICE.fullmatch(name):
            raise c.fail(f"{field}.name", f"{name!r} is not a device name (letters and digits at both ends, "
                                          "'-', '_', '.', ':' between)")
        if name in seen:
            raise c.fail(f"{field}.name", f"device {name!r} is defined twice")
        seen.add(name)
        c.annotations(device.get("annotations"), f"{field}.annotations")
        c.edits(device.get("containerEdits"), f"{field}.containerEdits")
        for key in device:
            if key not in ("name", "annotations", "containerEdits"):
                raise c.fail(f"{field}.{key}", "unknown field")
    needed, where = c.needs
    if version < needed:
        raise c.fail(where, f"needs cdiVersion {needed[0]}.{needed[1]}.0 or later (the spec says {spec['cdiVersion']})")


def parse_version(text: str, c: _Checker) -> tuple[int, int]:
    """``0.X.Y`` (an optional ``v``) within the versions this reader knows."""
    match = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)", text)
    if not match:
        raise c.fail("cdiVersion", f"{text!r} is not a semantic version")
    version = (int(match[1]), int(match[2]))
    if version not in SUPPORTED:
        raise c.fail("cdiVersion", f"version {text} is not supported (skiff reads 0.3.0 to 0.8.0)")
    return version


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def parse_qualified_name(name: str) -> tuple[str, str]:
    """``vendor.com/class=device`` -> (kind, device), or CDIError."""
    kind, eq, device = name.partition("=")
    vendor, slash, device_class = kind.partition("/")
    if not (eq and slash and _VENDOR.fullmatch(vendor) and _CLASS.fullmatch(device_class)
            and _DEVICE.fullmatch(device)):
        raise CDIError(f"{name!r} is not a CDI device name (vendor.com/class=name)")
    return kind, device


def is_qualified_name(name: str) -> bool:
    """Whether a --device value is a CDI name rather than a path (as Docker 25's client decides)."""
    try:
        parse_qualified_name(name)
    except CDIError:
        return False
    return True
