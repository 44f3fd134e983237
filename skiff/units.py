"""Docker's size strings: github.com/docker/go-units (size.go), as Docker 20.10 uses it.

Parsing, both with go-units' pattern ``^(\\d+(\\.\\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$``:

- ``ram_in_bytes("1.5g")``: RAMInBytes, binary multiples (k = 1024): ``--memory``,
  ``--shm-size``, ``--mount tmpfs-size``, ``SKIFF_MAX_LAYER_SIZE``.
- ``from_human_size("10k")``: FromHumanSize, decimal multiples (k = 1000): the json-file log
  driver's ``--log-opt max-size``.

Both raise ValueError("invalid size: '<text>'"); callers wrap it in their flag's message.
go-units lets ``1.2.3m`` through its pattern and then fails in ParseFloat; skiff says
"invalid size" for it too.

Printing:

- ``human_size(n)``: HumanSizeWithPrecision(n, 3), decimal units (``1.23MB``): the CLI's
  SIZE columns, ``stats``' NET I/O and BLOCK I/O; ``system df`` and prune reports use 4,
  which is go-units' HumanSize.
- ``bytes_size(n)``: BytesSize, binary units, 4 digits (``1.465MiB``): ``stats``' MEM USAGE,
  ``info``'s Total Memory.
- ``human_duration(seconds)``: go-units' HumanDuration (duration.go): ``ps``' CREATED and STATUS,
  the Engine API's container ``Status``.

Standard library only, no ``re`` (``--shm-size`` and ``--memory`` parse on ``skiff run``'s path).
"""

from __future__ import annotations

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30

_BINARY = {"": 1, "k": KiB, "m": MiB, "g": GiB, "t": 1 << 40, "p": 1 << 50}
_DECIMAL = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4, "p": 1000**5}
_DECIMAL_NAMES = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_BINARY_NAMES = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")
_DIGITS = frozenset("0123456789")


def ram_in_bytes(text: str) -> int:
    """go-units RAMInBytes: ``512m``, ``1.5g``, ``1024``, ``2 GiB``; binary multiples."""
    return _parse(text, _BINARY)


def from_human_size(text: str) -> int:
    """go-units FromHumanSize: ``10k`` is 10000, ``1.5MB`` 1500000; decimal multiples."""
    return _parse(text, _DECIMAL)


def human_size(size: float, precision: int = 3) -> str:
    """go-units HumanSizeWithPrecision: decimal units, ``precision`` significant digits (``4.26MB``)."""
    value, name = _scaled(float(size), 1000.0, _DECIMAL_NAMES)
    return f"{value:.{precision}g}{name}"


def bytes_size(size: float) -> str:
    """go-units BytesSize: binary units, four significant digits (``1.5KiB``, ``8GiB``)."""
    value, name = _scaled(float(size), 1024.0, _BINARY_NAMES)
    return f"{value:.4g}{name}"


def _scaled(size: float, base: float, names: tuple[str, ...]) -> tuple[float, str]:
    """go-units getSizeAndUnit: divide by ``base`` while the size is at least that, up to the last unit."""
    index = 0
    while size >= base and index < len(names) - 1:
        size /= base
        index += 1
    return size, names[index]


def _parse(text: str, multiples: dict[str, int]) -> int:
    end = 0
    while end < len(text) and (text[end] in _DIGITS or text[end] == "."):
        end += 1
    number, rest = text[:end], text[end:]
    parts = number.split(".")
    # \d+(\.\d+)? : go-units' pattern allows more dots, which its ParseFloat then refuses
    if len(parts) > 2 or not all(parts):
        raise ValueError(f"invalid size: '{text}'")
    rest = rest.removeprefix(" ")
    unit = rest[:1].lower() if rest[:1] and rest[:1] in "kKmMgGtTpP" else ""
    rest = rest[len(unit):]
    rest = rest[1:] if rest[:1] and rest[:1] in "iI" else rest
    rest = rest[1:] if rest[:1] and rest[:1] in "bB" else rest
    if rest:
        raise ValueError(f"invalid size: '{text}'")
    return int(float(number) * multiples[unit])


__all__ = ["GiB", "KiB", "MiB", "bytes_size", "from_human_size", "human_duration", "human_size", "ram_in_bytes"]


def human_duration(seconds: float) -> str:
    """Docker's go-units HumanDuration: 'Less than a second', '3 minutes', 'About an hour'."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(s / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"
