"""Signal names and numbers, read the one way both front ends need.

``parse_signal("KILL")``: Docker's (``docker kill -s``, ``--stop-signal``, an image's
STOPSIGNAL): ``KILL``, ``SIGKILL``, ``kill``, ``9``, ``RTMIN+3``, ``RTMAX-1``; a number must
be a signal of this host (1 to NSIG-1); a bad one raises InvalidSignal ("Invalid signal: X",
exit 1 in ``kill``).

``parse_signal("KILL", runc=True)``: runc's (``skiff-oci kill``): the same names (not the
``RTMIN+N`` forms, which runc's table lacks) and any number, 0 included, passed on as it is
(kill(2) says whether the kernel knows it); a bad name raises InvalidArgument ("unknown
signal 'X'").

The names come from the C module ``_signal``: ``signal.Signals`` would import ``enum``, and
skiff-oci's kill is a process of its own, run for every container.
"""

from __future__ import annotations

TYPE_CHECKING = False   # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    import signal as _signal  # the same names; typeshed has stubs for this one
else:
    import _signal

from skiff.errors import InvalidArgument, InvalidSignal

RTMIN_OFFSETS = 15   # Docker's table: RTMIN+1 .. RTMIN+15
RTMAX_OFFSETS = 14   # and RTMAX-14 .. RTMAX-1


def parse_signal(text: str, runc: bool = False) -> int:
    """The signal number ``text`` names; see the module's text for the two flavours."""
    raw = str(text) if runc else str(text).strip()
    if raw.isascii() and raw.isdigit():
        number = int(raw)
        if runc or 0 < number < _signal.NSIG:
            return number
    else:
        named = signal_number(raw, realtime_offsets=not runc)
        if named is not None:
            return named
    if runc:
        raise InvalidArgument(f"unknown signal {text!r}")
    raise InvalidSignal(f"Invalid signal: {text}")


def signal_number(name: str, realtime_offsets: bool = True) -> int | None:
    """``KILL``, ``SIGKILL`` or ``kill`` -> 9; ``RTMIN+2`` -> SIGRTMIN + 2 (Docker's names); None if unknown."""
    upper = name.upper()
    upper = upper if upper.startswith("SIG") else "SIG" + upper
    base, plus, offset = upper.partition("+")
    if not plus:
        base, plus, offset = upper.partition("-")
    if plus:
        if not realtime_offsets or not (offset.isascii() and offset.isdigit()):
            return None
        step = int(offset)
        if base == "SIGRTMIN" and plus == "+" and 1 <= step <= RTMIN_OFFSETS:
            return int(_signal.SIGRTMIN) + step
        if base == "SIGRTMAX" and plus == "-" and 1 <= step <= RTMAX_OFFSETS:
            return int(_signal.SIGRTMAX) - step
        return None
    if not upper[3:].isalnum():  # SIG_DFL, SIG_BLOCK...: constants of _signal, not signals
        return None
    number: object = getattr(_signal, upper, None)
    return int(number) if isinstance(number, int) else None


__all__ = ["parse_signal", "signal_number"]
