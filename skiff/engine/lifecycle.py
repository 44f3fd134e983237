"""Docker's lifecycle rules: restart policies, log options, signals, stop and wait.

Everything here works on container records and the runtime core's state, so
any skiff command can stop, kill or wait for a container held by a monitor
(or by a foreground ``skiff run``) in another process.
"""

from __future__ import annotations

import os
import select
import signal
import time
from typing import Any, Iterable

from skiff.engine import containers as records
from skiff.engine.containers import Container
from skiff.errors import InvalidArgument, SkiffError
from skiff.paths import Paths
from skiff.signals import parse_signal as parse_signal  # re-exported: Docker's names (the CLI's kill and stop)

DEFAULT_STOP_TIMEOUT = 10


def parse_restart_policy(text: str) -> dict[str, Any]:
    name, _, count = (text or "no").partition(":")
    if name not in ("no", "on-failure", "always", "unless-stopped"):
        raise InvalidArgument(f"invalid restart policy '{text}'",
                              hint="use no, on-failure[:max-retries], always or unless-stopped")
    if count and (name != "on-failure" or not count.isdigit()):
        raise InvalidArgument(f"invalid restart policy '{text}': maximum retry count only with on-failure, "
                              "and a non-negative number")
    return {"Name": name, "MaximumRetryCount": int(count or 0)}


def parse_log_opts(opts: Iterable[str]) -> dict[str, str]:
    """json-file's max-size (bytes, with k/m/g, decimal as Docker's) and max-file; returned as plain byte counts."""
    config: dict[str, str] = {}
    for item in opts:
        key, sep, value = item.partition("=")
        if not sep or key not in ("max-size", "max-file"):
            raise InvalidArgument(f"unknown log opt '{key}' for json-file log driver",
                                  hint="supported: max-size=SIZE, max-file=N")
        config[key] = str(_size(value) if key == "max-size" else _positive(value, "max-file"))
    if "max-file" in config and int(config["max-file"]) > 1 and "max-size" not in config:
        raise InvalidArgument("max-file cannot be set without max-size")
    return config


def _size(value: str) -> int:
    """max-size as Docker's json-file driver reads it: go-units FromHumanSize, so decimal (10k is 10000)."""
    from skiff.units import from_human_size

    try:
        size = from_human_size(value)
    except ValueError:
        size = 0
    if size <= 0:
        raise InvalidArgument(f"invalid max-size '{value}': use a positive size such as 10k, 5m or 1g")
    return size


def _positive(value: str, what: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise InvalidArgument(f"invalid {what} '{value}': it must be a positive number")
    return int(value)


def parse_timeout(value: int | None, default: int) -> int:
    if value is None:
        return default
    if value < 0:
        raise InvalidArgument(f"invalid timeout {value}: it must be zero or more seconds")
    return value


# --- processes of other skiff commands ---------------------------------------------


def wait_for_pid(pid: int, timeout: float | None) -> bool:
    """Wait (not as parent) for ``pid`` to exit; True if it did within ``timeout``."""
    if pid <= 0:
        return True
    try:
        pidfd = os.pidfd_open(pid)
    except (ProcessLookupError, OSError):
        return True
    try:
        ready, _, _ = select.select([pidfd], [], [], timeout)
        return bool(ready)
    finally:
        os.close(pidfd)


def wait_released(container: Container, timeout: float | None = None) -> bool:
    """Wait until the container's holder (monitor or foreground skiff) has finished with it."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        if not container.reload() or not container.held:
            return True
        owner = container.state.owner
        if owner is None or not container.state.owner_alive():
            return True  # nobody will finish it: reconcile will
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return False
        wait_for_pid(owner.pid, min(left, 0.5) if left is not None else 0.5)


def send_signal(paths: Paths, container: Container, sig: int) -> None:
    from skiff.runtime import Runtime

    Runtime(paths.runtime_state).kill(container.id, sig)


def mark_manual_stop(container: Container) -> None:
    with records.locked(container) as c:
        c.state.stop_requested()


def signal_monitor(container: Container, sig: int) -> None:
    """Wake a monitor waiting to restart (its container is not there to signal)."""
    owner = container.state.owner
    if owner is not None and container.state.owner_alive():
        try:
            os.kill(owner.pid, sig)
        except ProcessLookupError:
            pass


def stop_signal(container: Container) -> int:
    try:
        return parse_signal(container.data["Config"].get("StopSignal") or "SIGTERM")
    except SkiffError:
        return int(signal.SIGTERM)
