"""JSON for the commands that only read a container's state: CPython's C codec without ``json``.

``import json`` costs ``re`` and ``enum`` too, several milliseconds of a skiff-oci ``state``,
``start``, ``kill`` or ``delete`` that otherwise does little more than read one small file. The
C scanner and string encoder behind ``json`` (the ``_json`` module) need neither; where it is
missing, ``json`` itself is used.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class _ScannerContext:
    """The settings json.JSONDecoder hands the C scanner: plain ints and floats, strict strings."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo: dict[str, str] = {}

    @staticmethod
    def parse_constant(name: str) -> float:
        return {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}[name]


def loads(text: str) -> Any:
    """Decode one JSON document (ValueError if ``text`` is not exactly one)."""
    try:
        from _json import make_scanner
    except ImportError:
        import json

        return json.loads(text)
    # typeshed types the context as a scanner; the C scanner reads only the decoder settings above
    scan = make_scanner(_ScannerContext())  # type: ignore[arg-type]
    try:
        value, end = scan(text, _skip_space(text, 0))
    except Exception:  # noqa: BLE001 - the C scanner raises its errors through json.decoder
        end = -1
    if end < 0 or _skip_space(text, end) != len(text):
        import json

        return json.loads(text)  # raises json's own error, with its line and column
    return value


def dumps(value: Any, indent: int | None = None) -> str:
    """Encode dicts, lists, strings, numbers, booleans and None as json.dumps does (ASCII)."""
    try:
        from _json import encode_basestring_ascii as quote
    except ImportError:
        import json

        return json.dumps(value, indent=indent)
    parts: list[str] = []
    _encode(value, quote, indent, 0, parts)
    return "".join(parts)


def _encode(value: Any, quote: Any, indent: int | None, depth: int, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(quote(value))
    elif value is None or isinstance(value, bool):
        out.append({None: "null", True: "true", False: "false"}[value])
    elif isinstance(value, (int, float)):
        out.append(repr(int(value)) if isinstance(value, int) else float.__repr__(value))
    elif isinstance(value, dict):
        _encode_items([(quote(str(k)) + ": ", v) for k, v in value.items()], "{}", quote, indent, depth, out)
    elif isinstance(value, (list, tuple)):
        _encode_items([("", v) for v in value], "[]", quote, indent, depth, out)
    else:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _encode_items(items: list[tuple[str, Any]], brackets: str, quote: Any, indent: int | None, depth: int,
                  out: list[str]) -> None:
    if not items:
        out.append(brackets)
        return
    inner = "" if indent is None else "\n" + " " * (indent * (depth + 1))
    out.append(brackets[0])
    for i, (prefix, item) in enumerate(items):
        out.append(("" if not i else "," if indent is not None else ", ") + inner + prefix)
        _encode(item, quote, indent, depth + 1, out)
    out.append(("" if indent is None else "\n" + " " * (indent * depth)) + brackets[1])


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\n\r":
        i += 1
    return i
