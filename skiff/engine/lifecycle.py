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
from typing import Any, Sequence

from skiff.engine import containers as records
from skiff.engine.containers import Container
from skiff.errors import InvalidArgument, InvalidSignal, SkiffError
from skiff.paths import Paths

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


def parse_log_opts(opts: Sequence[str]) -> dict[str, str]:
    """json-file's max-size (bytes, with k/m/g) and max-file; returned as plain byte counts."""
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
    units = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    number, unit = value.rstrip("kKmMgGbB"), value[len(value.rstrip("kKmMgGbB")):].lower().rstrip("b")
    if not number.isdigit() or unit not in units or int(number) <= 0:
        raise InvalidArgument(f"invalid max-size '{value}': use a positive size such as 10k, 5m or 1g")
    return int(number) * units[unit]


def _positive(value: str, what: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise InvalidArgument(f"invalid {what} '{value}': it must be a positive number")
    return int(value)


def parse_signal(text: str) -> int:
    """SIGKILL, KILL, kill or 9, as ``docker kill -s``."""
    raw = str(text).strip()
    if raw.isdigit():
        number = int(raw)
        if 0 < number < signal.NSIG:
            return number
    else:
        name = raw.upper()
        name = name if name.startswith("SIG") else f"SIG{name}"
        value = getattr(signal.Signals, name, None) if name.isidentifier() else None
        if value is not None:
            return int(value)
    raise InvalidSignal(f"Invalid signal: {text}")


def parse_timeout(value: int | None, default: int) -> int:
    if value is None:
        return default
    if value < 0:
        raise InvalidArgument(f"invalid timeout {value}: it must be zero or more seconds")
    return value


# --- processes of other skiff commands ---------------------------------------------


def monitor_alive(state: dict[str, Any]) -> bool:
    from skiff.engine.engine import _alive

    return _alive(state)


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
        if not monitor_alive(container.state):
            return True  # nobody will finish it: reconcile will
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return False
        wait_for_pid(int(container.state.get("MonitorPid") or 0), min(left, 0.5) if left is not None else 0.5)


def send_signal(paths: Paths, container: Container, sig: int) -> None:
    from skiff.runtime import Runtime

    Runtime(paths.runtime_state).kill(container.id, sig)


def mark_manual_stop(container: Container) -> None:
    with records.locked(container) as c:
        c.state["ManualStop"] = True


def signal_monitor(container: Container, sig: int) -> None:
    """Wake a monitor waiting to restart (its container is not there to signal)."""
    pid = int(container.state.get("MonitorPid") or 0)
    if pid and monitor_alive(container.state):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def stop_signal(container: Container) -> int:
    try:
        return parse_signal(container.data["Config"].get("StopSignal") or "SIGTERM")
    except SkiffError:
        return int(signal.SIGTERM)
