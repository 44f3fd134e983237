"""What ``skiff pull`` shows: a bar per layer on a terminal, a line per layer otherwise, or nothing.

The reporters are called from the download threads, so each one serialises its
output.
"""

from __future__ import annotations

import threading
from typing import TextIO


class Reporter:
    """Silent: ``-q`` prints only the reference, which the caller does.

    The pull calls these from its download threads; the CLI's reporters print text, the Engine
    API's (skiff.api.images) sends each call as one of Docker's JSON progress messages.
    """

    def pulling(self, tag: str, repository: str) -> None:
        """The pull of ``repository`` (its path in the registry) at ``tag`` (or digest) starts."""
        self.header(f"{tag}: Pulling from {repository}")

    # What a layer's bytes are called while they move: a push sets "Pushing".
    transfer_status = "Downloading"

    def header(self, text: str) -> None: ...
    def layer_waiting(self, layer: str, total: int) -> None: ...
    def layer_bytes(self, layer: str, count: int) -> None: ...
    def layer_status(self, layer: str, status: str, final: bool = False) -> None: ...
    def line(self, text: str) -> None: ...
    def close(self) -> None: ...

    def layer_note(self, layer: str, status: str) -> None:
        """A layer's state that is neither progress nor its end (a push's ``Preparing``,
        ``Waiting``): a line without a terminal, the bar's label on one."""
        self.layer_status(layer, status)

    def pushed(self, tag: str, digest: str, size: int) -> None:
        """A push's last line for one tag, as Docker's daemon writes it."""
        self.line(f"{tag}: digest: {digest} size: {size}")


class LineReporter(Reporter):
    """One line per layer when it is done, as Docker prints without a terminal."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._lock = threading.Lock()

    def header(self, text: str) -> None:
        self.line(text)

    def layer_status(self, layer: str, status: str, final: bool = False) -> None:
        if final:
            self.line(f"{layer}: {status}")

    def layer_note(self, layer: str, status: str) -> None:
        self.line(f"{layer}: {status}")

    def line(self, text: str) -> None:
        with self._lock:
            print(text, file=self.out, flush=True)


class BarReporter(Reporter):
    """A rich progress bar per layer: bytes, speed, and its state."""

    def __init__(self, out: TextIO) -> None:
        from rich.console import Console
        from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn)

        self.console = Console(file=out)
        self.progress = Progress(TextColumn("{task.fields[layer]}:"), TextColumn("{task.fields[status]:<16}"),
                                 BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                                 console=self.console, transient=False)
        self._tasks: dict[str, object] = {}
        self._totals: dict[str, int] = {}
        self._lock = threading.Lock()
        self._started = False

    def header(self, text: str) -> None:
        self.console.print(text, highlight=False)

    def _start(self) -> None:
        if not self._started:
            self.progress.start()
            self._started = True

    def layer_waiting(self, layer: str, total: int) -> None:
        with self._lock:
            self._start()
            self._totals[layer] = total
            self._tasks[layer] = self.progress.add_task("", total=total, layer=layer, status="Waiting")

    def layer_bytes(self, layer: str, count: int) -> None:
        task = self._tasks.get(layer)
        if task is not None:
            self.progress.update(task, advance=count, status=self.transfer_status)  # type: ignore[arg-type]

    def layer_status(self, layer: str, status: str, final: bool = False) -> None:
        task = self._tasks.get(layer)
        if task is not None:
            self.progress.update(task, status=status)  # type: ignore[arg-type]
            if final:
                self.progress.update(task, completed=self._totals.get(layer, 0))  # type: ignore[arg-type]

    def line(self, text: str) -> None:
        self.close()
        self.console.print(text, highlight=False, soft_wrap=True)

    def close(self) -> None:
        with self._lock:
            if self._started:
                self.progress.stop()
                self._started = False


def reporter_for(out: TextIO, quiet: bool) -> Reporter:
    if quiet:
        return Reporter()
    isatty = getattr(out, "isatty", None)
    if isatty is not None and isatty():
        return BarReporter(out)
    return LineReporter(out)
