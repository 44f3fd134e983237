"""Health checks as Docker 20.10 has them: the configuration, and what each probe does to the state.

The configuration (``Config.Healthcheck`` of the record, Docker's ``HealthConfig``:
``Test``, ``Interval``, ``Timeout``, ``StartPeriod`` in nanoseconds, ``Retries``)
is the image's, overridden field by field by the ``--health-*`` flags, or
``{"Test": ["NONE"]}`` with ``--no-healthcheck``. The probes run in the
container's monitor (``skiff.engine.monitor.health``); each result goes through
``record_result``, Docker's ``handleProbeResult``, into ``State.Health``:
``Status`` (starting, healthy, unhealthy), ``FailingStreak`` and the last
five results in ``Log``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from skiff.errors import InvalidArgument

if TYPE_CHECKING:
    from skiff.engine.containers import Container

DEFAULT_INTERVAL = 30_000_000_000      # ns, Docker's defaultProbeInterval
DEFAULT_TIMEOUT = 30_000_000_000       # ns, defaultProbeTimeout
DEFAULT_RETRIES = 3
MINIMUM_DURATION = 1_000_000           # ns: Docker refuses a non-zero interval below 1ms
MAX_LOG_ENTRIES = 5
MAX_OUTPUT_LEN = 4096

STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"

_DURATION_FIELDS = (("Interval", "--health-interval"), ("Timeout", "--health-timeout"),
                    ("StartPeriod", "--health-start-period"))


def config_from_flags(cmd: str | None, interval: int, timeout: int, retries: int, start_period: int,
                      disabled: bool) -> dict[str, Any] | None:
    """What the flags ask for (None: nothing), checked as Docker's client checks them."""
    wanted = bool(cmd) or bool(interval or timeout or start_period or retries)
    if disabled:
        if wanted:
            raise InvalidArgument("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    if not wanted:
        return None
    for value, flag in ((interval, "--health-interval"), (timeout, "--health-timeout"),
                        (retries, "--health-retries"), (start_period, "--health-start-period")):
        if value < 0:
            raise InvalidArgument(f"{flag} cannot be negative")
    config: dict[str, Any] = {"Test": ["CMD-SHELL", cmd] if cmd else []}
    config.update(Interval=interval, Timeout=timeout, StartPeriod=start_period, Retries=retries)
    return config


def merged_config(flags: dict[str, Any] | None, image: dict[str, Any] | None) -> dict[str, Any] | None:
    """The container's configuration: the flags', each unset field taken from the image (Docker's merge)."""
    if flags is not None:
        check(flags)
    if not image:
        return _without_zeros(flags) if flags is not None else None
    if flags is None:
        return _without_zeros(image)
    merged = dict(flags)
    for key in ("Test", "Interval", "Timeout", "StartPeriod", "Retries"):
        if not merged.get(key):
            merged[key] = image.get(key)
    return _without_zeros(merged)


def check(config: dict[str, Any]) -> None:
    """The daemon's validation (``validateHealthCheck``): non-zero durations of at least 1ms."""
    for field, _ in _DURATION_FIELDS:
        value = int(config.get(field) or 0)
        if value and value < MINIMUM_DURATION:
            raise InvalidArgument(f"{field} in Healthcheck cannot be less than 1ms")
    if int(config.get("Retries") or 0) < 0:
        raise InvalidArgument("Retries in Healthcheck cannot be negative")


def _without_zeros(config: dict[str, Any]) -> dict[str, Any]:
    """As Docker's JSON (every field ``omitempty``)."""
    return {key: value for key, value in config.items() if value}


def probe_command(config: dict[str, Any] | None, shell: list[str] | None = None) -> list[str] | None:
    """The command a probe runs, or None when the container has no health check (Docker's getProbe)."""
    test = list((config or {}).get("Test") or [])
    if not test:
        return None
    if test[0] == "CMD":
        return test[1:] or None
    if test[0] == "CMD-SHELL":
        return [*(shell or ["/bin/sh", "-c"]), *test[1:]] if test[1:] else None
    return None  # NONE, or a type Docker does not know (it logs a warning and runs nothing)


def active(config: dict[str, Any] | None) -> bool:
    return probe_command(config) is not None


def interval(config: dict[str, Any]) -> int:
    return int(config.get("Interval") or DEFAULT_INTERVAL)


def timeout(config: dict[str, Any]) -> int:
    return int(config.get("Timeout") or DEFAULT_TIMEOUT)


def on_start(data: dict[str, Any]) -> None:
    """A (re)started container with a health check is ``starting`` again; its log is kept (Docker)."""
    if not active(data["Config"].get("Healthcheck")):
        return
    earlier = data["State"].get("Health")
    log = earlier.get("Log") if isinstance(earlier, dict) else None
    data["State"]["Health"] = {"Status": STARTING, "FailingStreak": 0, "Log": log if isinstance(log, list) else []}


def on_stop(state: dict[str, Any]) -> None:
    """The checks have stopped with the container: Docker then says unhealthy, "for compatibility"."""
    health = state.get("Health")
    if isinstance(health, dict):
        health["Status"] = UNHEALTHY


def record_result(data: dict[str, Any], result: dict[str, Any], started_at: float,
                  probe_start: float) -> str | None:
    """One probe's result into ``State.Health``, as Docker's handleProbeResult; the new status if it changed.

    A failure while the container has never been healthy and is still within its
    start period does not count; ``retries`` failures in a row make it unhealthy.
    """
    config = data["Config"].get("Healthcheck") or {}
    health = data["State"].setdefault("Health", {"Status": STARTING, "FailingStreak": 0, "Log": []})
    before = health.get("Status") or UNHEALTHY
    health["Log"] = [*(health.get("Log") or []), result][-MAX_LOG_ENTRIES:]
    if result["ExitCode"] == 0:
        health.update(Status=HEALTHY, FailingStreak=0)
    else:
        start_period = int(config.get("StartPeriod") or 0) / 1e9
        if not (before == STARTING and probe_start - started_at < start_period):
            health["FailingStreak"] = int(health.get("FailingStreak") or 0) + 1
            if health["FailingStreak"] >= int(config.get("Retries") or DEFAULT_RETRIES):
                health["Status"] = UNHEALTHY
    return str(health["Status"]) if health.get("Status") != before else None


def health_status_changed(container: Container, status: str) -> None:
    """Docker's ``health_status: <status>`` event (``container``: a records.Container).

    Called by the probe once the new status is recorded.
    """
    from skiff.engine import events

    events.emit_container(container.paths, container.data, f"health_status: {status}")


def capped_output(output: bytes, truncated: bool) -> str:
    """Docker's limitedBuffer: the first 4096 bytes, ``...`` after them when more was written."""
    text = output[:MAX_OUTPUT_LEN].decode("utf-8", "replace")
    return text + "..." if truncated or len(output) > MAX_OUTPUT_LEN else text


def status_suffix(state: dict[str, Any]) -> str:
    """`` (healthy)``, `` (unhealthy)``, `` (health: starting)`` after ``Up ...`` in ``ps``; else nothing."""
    health = state.get("Health")
    if not isinstance(health, dict):
        return ""
    status = health.get("Status") or UNHEALTHY
    return " (health: starting)" if status == STARTING else f" ({status})"
