"""The output of a foreground container that outlives its run: shown here and kept in its log.

Docker's foreground ``run`` streams the container's output to the terminal and
writes it to the json-file log, so ``logs`` works afterwards. A ``--rm``
container is gone at exit, so it gets the user's stdout and stderr directly (no
copy at all); any other gets two pipes that a thread copies to both places.
"""

from __future__ import annotations

import os
import select
import threading

from skiff.engine.containers import Container


class OutputRelay:
    def __init__(self, container: Container, targets: tuple[int, int] = (1, 2)) -> None:
        """``targets``: where the output is shown (this process's stdout and stderr by default)."""
        from skiff.engine.monitor.idle import Log  # the monitor's json-file writer, rotation included

        config = container.data["HostConfig"].get("LogConfig", {}).get("Config", {})
        self._log = Log(str(container.log_path), int(config.get("max-size", 0)), int(config.get("max-file", 1)))
        out_r, self._out_w = os.pipe2(os.O_CLOEXEC)
        err_r, self._err_w = os.pipe2(os.O_CLOEXEC)
        self._streams = {out_r: ("stdout", targets[0]), err_r: ("stderr", targets[1])}
        self._thread = threading.Thread(target=self._copy, name="output-relay", daemon=True)
        self._thread.start()

    def container_ends(self) -> tuple[int, int]:
        """The write ends, to be the container's stdout and stderr."""
        return self._out_w, self._err_w

    def close_container_ends(self) -> None:
        """Once the container holds its own copies: EOF then means every writer in it is gone."""
        for fd in (self._out_w, self._err_w):
            os.close(fd)
        self._out_w = self._err_w = -1

    def finish(self, timeout: float = 5.0) -> None:
        if self._out_w >= 0:
            self.close_container_ends()
        self._thread.join(timeout)
        os.close(self._log.fd)

    def _copy(self) -> None:
        poller = select.poll()
        for fd in self._streams:
            poller.register(fd, select.POLLIN)
        open_fds = set(self._streams)
        while open_fds:
            for fd, _ in poller.poll():
                stream, target = self._streams[fd]
                data = os.read(fd, 65536)
                if not data:
                    poller.unregister(fd)
                    open_fds.discard(fd)
                    os.close(fd)
                    self._log.flush(stream)
                    continue
                self._log.write(stream, data)
                _write_all(target, data)


def _write_all(fd: int, data: bytes) -> None:
    try:
        while data:
            data = data[os.write(fd, data):]
    except OSError:  # the user's side has gone (a closed pipe): the log still gets everything
        pass
