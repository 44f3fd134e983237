"""The ``container`` group: ``skiff container run|ls|rm|...``, the same commands as the top-level
ones (skiff.cli.run, lifecycle, exec, ps, inspect), some under Docker's group names."""

from __future__ import annotations

import argparse

from skiff.cli.commands import Command, add_commands

# The group's names for top-level commands: ``container ls`` (also ps, list) is ``ps``.
GROUP_NAMES = {"ps": ("ls", ["ps", "list"]), "rm": ("rm", ["remove"])}


def register(sub: argparse._SubParsersAction) -> None:
    from skiff.cli import exec as exec_, inspect, lifecycle, ps, run
    from skiff.cli import authoring

    group = sub.add_parser("container", help="manage containers")
    commands = group.add_subparsers(dest="container_command", metavar="COMMAND")
    commands.required = True
    add_commands(commands, (*run.COMMANDS, *ps.COMMANDS, *lifecycle.COMMANDS, *exec_.COMMANDS,
                            Command("inspect", inspect.add_container_flags,
                                    "display detailed information on one or more containers"),
                            *authoring.COMMANDS,
                            Command("prune", lifecycle.add_prune_flags, "remove all stopped containers")),
                 GROUP_NAMES)
