"""`skiff events` (and `system events`): Docker's events from the log skiff writes.

The log and its reading are the engine's (skiff.engine.events), the filters too
(skiff.engine.filters); this module parses the flags and prints as Docker's client does.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``events`` to the top-level parser (``system events``: see skiff.cli.system)."""
    add_events_flags(sub.add_parser("events", help="get real time events from the server"))


def add_events_flags(p: argparse.ArgumentParser) -> None:
    from skiff.cli.filterflags import add_filter_flag

    add_filter_flag(p, "filter output based on conditions provided (container, event, image, label, network, "
                       "type, volume)")
    p.add_argument("--format", help="format the output using the given Go template ('{{json .}}')")
    p.add_argument("--since", help="show all events created since timestamp")
    p.add_argument("--until", help="stream events until this timestamp")
    p.set_defaults(func=cmd_events)


def cmd_events(args: argparse.Namespace) -> int:
    import signal
    import time

    from skiff.cli.filterflags import filter_args
    from skiff.cli.main import paths_from
    from skiff.engine import events
    from skiff.engine.filters import docker_time_ns, event_filter

    include = event_filter(filter_args(args))
    now = time.time()
    try:
        since = docker_time_ns(args.since, now) if args.since else None
        until = docker_time_ns(args.until, now) if args.until else None
    except ValueError as exc:  # the client's own error, as Docker's: the text alone, status 1
        from skiff.errors import InvalidTimeValue

        raise InvalidTimeValue(str(exc)) from None
    show = _printer(args.format)
    if args.format and args.format not in ("json", "{{json .}}"):
        from skiff.cli.gotemplate import parse

        parse(args.format)  # a template that does not parse fails before anything is printed
    paths = paths_from(args)
    # SIGTERM ends a follow as ^C does (130): quietly, with the status of the signal.
    signal.signal(signal.SIGTERM, _terminated)
    for event in events.stream(paths, include, since, until):
        show(event)
    return 0


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _printer(fmt: str | None) -> Callable[[dict[str, Any]], None]:
    """Docker's line for an event (``--format`` absent), or the template for each."""
    if not fmt:
        return lambda event: _write(pretty_event(event))
    if fmt in ("json", "{{json .}}"):
        import json

        return lambda event: _write(json.dumps(event, separators=(",", ":"), ensure_ascii=False))
    from skiff.cli.gotemplate import render

    return lambda event: _write(render(fmt, template_view(event), "events.Message"))


def _write(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def pretty_event(event: dict[str, Any]) -> str:
    """``2026-12-04T17:43:50.443036753Z container start ID (image=busybox, name=x)``: Docker's
    client's default line, the time in local time as Go's RFC3339Nano with fixed digits."""
    actor = event.get("Actor") or {}
    attributes = actor.get("Attributes") or {}
    line = f"{local_time_nano(int(event.get('timeNano') or 0))} {event.get('Type')} {event.get('Action')} " \
           f"{actor.get('ID', '')}"
    if attributes:
        line += " (" + ", ".join(f"{k}={attributes[k]}" for k in sorted(attributes)) + ")"
    return line


def local_time_nano(stamp_ns: int) -> str:
    """Go's ``2006-01-02T15:04:05.000000000Z07:00`` in local time ("Z" when the offset is 0)."""
    import time

    local = time.localtime(stamp_ns // 1_000_000_000)
    offset = local.tm_gmtoff or 0
    zone = "Z" if offset == 0 else f"{'+' if offset > 0 else '-'}{abs(offset) // 3600:02d}:{abs(offset) % 3600 // 60:02d}"
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', local)}.{stamp_ns % 1_000_000_000:09d}{zone}"


class _Message(dict):
    """An event for a template: Docker's Go field names (``.ID``, ``.Actor.Attributes``,
    ``.TimeNano``); ``{{json .}}`` prints its JSON form, as Go's json tags do."""

    json_form: dict[str, Any] = {}


def template_view(event: dict[str, Any]) -> dict[str, Any]:
    from skiff.cli.gotemplate import GoMap

    actor = event.get("Actor") or {}
    view = _Message({
        "Status": event.get("status", ""), "ID": event.get("id", ""), "From": event.get("from", ""),
        "Type": event.get("Type", ""), "Action": event.get("Action", ""),
        "Actor": {"ID": actor.get("ID", ""), "Attributes": GoMap(actor.get("Attributes") or {})},
        "Scope": event.get("scope", ""), "Time": event.get("time", 0), "TimeNano": event.get("timeNano", 0),
    })
    view.json_form = event
    return view
