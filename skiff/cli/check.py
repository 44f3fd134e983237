"""`skiff check [--json]`: whether this host can run containers, one requirement per line.

The probes are skiff.check's; this module prints them: aligned columns (status, name,
what was found) and, under each line that is not ok, the fix; or with ``--json`` one
JSON list of ``{"name", "status", "detail", "fix"}``. The status is 0 when no
requirement failed (warnings do not count), 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from skiff.check import Result


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``check`` to the top-level parser."""
    p = sub.add_parser("check", help="check whether this host has what skiff needs")
    p.add_argument("--json", action="store_true", help="print the results as one JSON list")
    p.set_defaults(func=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    from skiff.check import passed, run_checks
    from skiff.check.host import Host
    from skiff.cli.main import paths_from

    results = run_checks(Host(paths_from(args).root, debug=bool(getattr(args, "debug", False))))
    if args.json:
        import json

        sys.stdout.write(json.dumps([result._asdict() for result in results], indent=2) + "\n")
    else:
        sys.stdout.write(render(results))
    return 0 if passed(results) else 1


def render(results: list[Result]) -> str:
    """One aligned line per result, its fix on the next line under the detail, then a count."""
    width = max((len(result.name) for result in results), default=0)
    lines = []
    for result in results:
        lines.append(f"{result.status:<4}  {result.name:<{width}}  {result.detail}".rstrip())
        if result.fix:
            lines.append(f"{'':<4}  {'':<{width}}  fix: {result.fix}")
    counts = {status: sum(result.status == status for result in results) for status in ("ok", "warn", "fail")}
    verdict = "skiff can run containers here" if not counts["fail"] else "skiff cannot run containers here"
    lines.append(f"{counts['ok']} ok, {counts['warn']} warn, {counts['fail']} fail: {verdict}")
    return "\n".join(lines) + "\n"
