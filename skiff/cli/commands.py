"""Which module adds each command, so that ``skiff run`` imports only the run module.

``main`` imports the module of the command word given (or every module, in this order, for
``--help`` and for a word that is not a command) and calls its ``register(subparsers)``.
A command family module lists its commands in a ``COMMANDS`` table of ``Command``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

# Every top-level command word and the module (skiff.cli.X) that adds it, in --help's order.
MODULES: dict[str, str] = {
    "run": "run", "ps": "ps", "rm": "lifecycle", "create": "run", "start": "run", "stop": "lifecycle",
    "restart": "lifecycle", "kill": "lifecycle", "wait": "lifecycle", "pause": "lifecycle",
    "unpause": "lifecycle", "rename": "lifecycle", "inspect": "inspect", "logs": "exec", "top": "ps",
    "exec": "exec", "attach": "exec", "stats": "ps", "port": "ps",
    "container": "container",
    "import": "image", "load": "image", "save": "image", "images": "image", "tag": "image", "rmi": "image",
    "image": "image",
    "pull": "registry", "login": "registry", "logout": "registry",
    "volume": "volume",
    "network": "network",
    "info": "system", "version": "system", "update": "lifecycle", "system": "system",
    "events": "events",
    "cp": "authoring", "export": "authoring", "diff": "authoring", "history": "authoring", "push": "authoring",
    "check": "check",
}


class Command:
    """One command of a family: its name, what adds its flags and handler, its help line.

    A plain class: a NamedTuple costs ~0.1 ms more to define, on every ``skiff run``."""

    __slots__ = ("name", "add", "help", "own_help")

    def __init__(self, name: str, add: Callable[[argparse.ArgumentParser], None], help: str,
                 own_help: bool = False) -> None:
        self.name = name
        self.add = add
        self.help = help
        # ``run`` and ``create`` take -h for --hostname, so their --help is added by hand.
        self.own_help = own_help


def add_commands(sub: Any, commands: tuple[Command, ...], aliases: dict[str, tuple[str, list[str]]] | None = None,
                 ) -> None:
    """Add ``commands`` to ``sub``; ``aliases`` renames some inside a group (``container ls``
    for ``ps``, with its other names)."""
    for command in commands:
        name, other_names = (aliases or {}).get(command.name, (command.name, []))
        command.add(sub.add_parser(name, help=command.help, aliases=other_names, add_help=not command.own_help))
