"""Go's ``time.Duration`` text, as Docker's flags and Dockerfile options take and print it.

``parse("1m30s")`` is Go's ``time.ParseDuration`` (nanoseconds, the same error
texts); ``format(90_000_000_000)`` is ``Duration.String()`` (``1m30s``, ``200ms``,
``0s``). Docker stores health-check intervals as these nanoseconds and prints
them with ``String()`` (``Health check exceeded timeout (200ms)``).

Standard library only: the CLI parses ``--health-*`` flags with it.
"""

from __future__ import annotations

NANOSECOND = 1
MICROSECOND = 1000
MILLISECOND = 1000 * MICROSECOND
SECOND = 1000 * MILLISECOND
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

_UNITS = {"ns": NANOSECOND, "us": MICROSECOND, "\u00b5s": MICROSECOND, "\u03bcs": MICROSECOND,
          "ms": MILLISECOND, "s": SECOND, "m": MINUTE, "h": HOUR}
_MAX = (1 << 63) - 1


def parse(text: str) -> int:
    """Nanoseconds; ValueError with Go's message (``time: invalid duration "x"``)."""
    rest = text
    negative = False
    if rest[:1] in ("-", "+"):
        negative, rest = rest[0] == "-", rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise ValueError(f"time: invalid duration {_quote(text)}")
    total = 0
    while rest:
        if not (rest[0] == "." or _digit(rest[0])):
            raise ValueError(f"time: invalid duration {_quote(text)}")
        whole, rest = _leading_digits(rest)
        fraction = ""
        if rest[:1] == ".":
            fraction, rest = _leading_digits(rest[1:])
            if not whole and not fraction:
                raise ValueError(f"time: invalid duration {_quote(text)}")
        elif not whole:
            raise ValueError(f"time: invalid duration {_quote(text)}")
        end = 0
        while end < len(rest) and not (rest[end] == "." or _digit(rest[end])):
            end += 1
        if end == 0:
            raise ValueError(f"time: missing unit in duration {_quote(text)}")
        unit_name, rest = rest[:end], rest[end:]
        unit = _UNITS.get(unit_name)
        if unit is None:
            raise ValueError(f"time: unknown unit {_quote(unit_name)} in duration {_quote(text)}")
        value = int(whole or "0") * unit
        if fraction:
            value += int(fraction) * unit // 10 ** len(fraction)
        total += value
        if total > _MAX + (1 if negative else 0):
            raise ValueError(f"time: invalid duration {_quote(text)}")
    return -total if negative else total


def format(ns: int) -> str:  # noqa: A001 - Go's name for it is String
    """Go's ``Duration.String()``: ``1h2m3.5s``, ``1.5ms``, ``0s``."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = abs(ns)
    if u < SECOND:
        if u < MICROSECOND:
            return f"{sign}{u}ns"
        if u < MILLISECOND:
            return f"{sign}{_with_fraction(u, 3)}\u00b5s"
        return f"{sign}{_with_fraction(u, 6)}ms"
    text = f"{_with_fraction(u % MINUTE, 9)}s"
    minutes = u // MINUTE
    if minutes:
        text = f"{minutes % 60}m{text}"
        if minutes // 60:
            text = f"{minutes // 60}h{text}"
    return sign + text


def _with_fraction(value: int, precision: int) -> str:
    """``value / 10**precision`` without trailing zeros (Go's fmtFrac and fmtInt)."""
    whole, fraction = divmod(value, 10 ** precision)
    digits = f"{fraction:0{precision}d}".rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)


def _leading_digits(text: str) -> tuple[str, str]:
    end = 0
    while end < len(text) and _digit(text[end]):
        end += 1
    return text[:end], text[end:]


def _digit(char: str) -> bool:
    return "0" <= char <= "9"  # ASCII only, as Go: str.isdigit() takes other scripts' digits too


def _quote(text: str) -> str:
    """Go's strconv.Quote, for the texts a duration can hold."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
