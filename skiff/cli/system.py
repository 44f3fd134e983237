"""`skiff` commands for systems."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the top-level parser."""
    system = sub.add_parser("system", help="manage skiff")
    commands = system.add_subparsers(dest="system_command", metavar="COMMAND")
    commands.required = True
    from skiff.cli.events import add_events_flags

    add_events_flags(commands.add_parser("events", help="get real time events from the server"))
