"""runc's log lines: logrus text (``time=... level=... msg=...``) or JSON, which containerd reads."""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO


class Logger:
    """Writes to ``--log FILE`` when given, else to stderr, in ``--log-format``."""

    def __init__(self, path: str | None, fmt: str, debug: bool) -> None:
        self.path = path
        self.fmt = fmt
        self.debug_enabled = debug
        self._fd = -1

    def open(self) -> None:
        """Open ``--log`` before the command runs, as runc does: a path that cannot be written
        fails the command at once (OSError) instead of losing its messages later."""
        if not self.path:
            return
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            self.path = None  # the error itself goes to stderr
            raise OSError(exc.errno, f"open {exc.filename}: {(exc.strerror or '').lower()}") from None

    def _write(self, level: str, msg: str) -> None:
        from skiff.runtime.jsonlite import dumps  # json itself costs re and enum: milliseconds a command

        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if self.fmt == "json":
            line = dumps({"level": level, "msg": msg, "time": now})
        else:
            line = f'time="{now}" level={level} msg={dumps(msg)}'
        if self._fd >= 0:
            try:
                os.write(self._fd, (line + "\n").encode(errors="replace"))
                return
            except OSError:
                pass
        _stream().write(line + "\n")

    def error(self, msg: str) -> None:
        self._write("error", msg)
        if self.path:  # runc also says it plainly on stderr when the log goes to a file
            _stream().write(msg + "\n")

    def warning(self, msg: str) -> None:
        self._write("warning", msg)

    def debug(self, msg: str) -> None:
        if self.debug_enabled:
            self._write("debug", msg)


def _stream() -> TextIO:
    return sys.stderr
