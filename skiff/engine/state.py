"""A container's state: the ``State`` object of its record, and the only code that changes it.

The record keeps Docker's ``State`` shape on disk (``Status``, ``Running``, ``Pid``,
``ExitCode`` ...), plus who holds the container now (``MonitorPid`` and its start
time ``MonitorStart``: see ``Engine.reconcile``) and whether the user stopped it
(``ManualStop``: no restart follows). ``State`` is a read-only view over that dict
(a Mapping, so documents, filters and templates read it as before) whose methods
are the transitions: nothing else writes a State field, except ``State.Health``,
which the health checks own (skiff.engine.health). Each transition writes exactly
the fields it always wrote, in the same order, so records stay byte-identical.

The statuses::

    created --begin_start--> starting --started--> running <--paused/unpaused--> paused
       ^                        |                     |
       +----- abandon_start ----+                 exited / init_ended
                                                      v
                             restarting <--init_ended-- (restart policy) --> exited

``starting`` is skiff's own (a command is starting it; ``ps`` and ``inspect`` show
``created``); ``removing`` and ``dead`` are Docker's and are only read here (a broken
record stands in as ``dead``).

``decide`` is crash recovery's decision, a pure function of the state and a process
table, so it is tested without root (tests/unit/test_state.py); the engine carries it out.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple, Protocol

from skiff import proc
from skiff.timestamps import now as now_rfc3339

ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time: StartedAt of a container that never ran


class Status(enum.StrEnum):
    """``State.Status`` as Docker's (plus skiff's ``starting``); compares equal to the plain string."""

    CREATED = "created"
    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"
    EXITED = "exited"
    REMOVING = "removing"
    DEAD = "dead"


HELD = frozenset({Status.RUNNING, Status.PAUSED, Status.RESTARTING})  # a process holds it
STOPPED = frozenset({Status.CREATED, Status.EXITED, Status.DEAD})  # what prune removes


def shown(status: str) -> str:
    """The status Docker would show for a recorded one: skiff's own ``starting`` (a run or start that
    has reserved the record) is ``created``, as Docker shows a container whose start has not run it."""
    return Status.CREATED.value if status == Status.STARTING else status


class Owner(NamedTuple):
    """A process that holds a container (a monitor, a foreground run, a start): pid and start time."""

    pid: int
    start: int | None

    @classmethod
    def this_process(cls) -> Owner:
        pid = os.getpid()
        return cls(pid, proc.start_time(pid))


class ProcessTable(Protocol):
    """Where ``decide`` learns which processes run: skiff.proc, or a fake in the tests."""

    def start_time(self, pid: int) -> int | None: ...


class State(Mapping[str, Any]):
    """A view over a record's ``State`` dict: read like a dict, changed only by the methods below."""

    __slots__ = ("_fields",)

    def __init__(self, fields: dict[str, Any]) -> None:
        self._fields = fields

    @staticmethod
    def new() -> dict[str, Any]:
        """The ``State`` of a new record: created, never started."""
        return {"Status": Status.CREATED.value, "Running": False, "Pid": 0, "ExitCode": 0, "OOMKilled": False,
                "StartedAt": ZERO_TIME, "FinishedAt": ZERO_TIME, "Error": ""}

    # --- Mapping: reading ------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        return self._fields[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __repr__(self) -> str:
        return f"State({self._fields!r})"

    # --- reading ------------------------------------------------------------------
    @property
    def status(self) -> Status:
        """The recorded status; one this skiff does not know reads as ``dead`` (only ``rm`` helps)."""
        try:
            return Status(str(self._fields.get("Status")))
        except ValueError:
            return Status.DEAD

    @property
    def running(self) -> bool:
        return bool(self._fields.get("Running"))

    @property
    def pid(self) -> int:
        """The init's pid while it runs; 0 otherwise."""
        return int(self._fields.get("Pid") or 0)

    @property
    def exit_code(self) -> int:
        return int(self._fields.get("ExitCode") or 0)

    @property
    def owner(self) -> Owner | None:
        """The process that holds the container, as recorded (None: nobody)."""
        pid = int(self._fields.get("MonitorPid") or 0)
        return Owner(pid, self._fields.get("MonitorStart")) if pid > 0 else None

    @property
    def started_at(self) -> str:
        """When it last started (RFC 3339; Go's zero time if never): a start is seen by its change."""
        return str(self._fields.get("StartedAt", ""))

    @property
    def never_ran(self) -> bool:
        return str(self._fields.get("StartedAt", "")).startswith("0001")

    @property
    def manual_stop(self) -> bool:
        return bool(self._fields.get("ManualStop"))

    @property
    def held(self) -> bool:
        """A process (monitor or foreground skiff) holds it: running, paused or restarting."""
        return self.status in HELD

    @property
    def stopped(self) -> bool:
        """Created, exited or dead: nothing holds it (what ``container prune`` removes)."""
        return self.status in STOPPED

    def owner_alive(self, processes: ProcessTable = proc) -> bool:
        owner = self.owner
        return owner is not None and owner.start is not None and processes.start_time(owner.pid) == owner.start

    # --- what a command may do now (Docker's rules) ------------------------------
    @property
    def can_start(self) -> bool:
        """Not held and not being started: ``start`` on anything else leaves it as it is."""
        return not self.held and self.status != Status.STARTING

    @property
    def can_stop(self) -> bool:
        return self.held

    @property
    def can_kill(self) -> bool:
        return self.status in (Status.RUNNING, Status.PAUSED)

    @property
    def can_pause(self) -> bool:
        return self.status == Status.RUNNING

    @property
    def can_unpause(self) -> bool:
        return self.status == Status.PAUSED

    @property
    def can_exec(self) -> bool:
        return self.status == Status.RUNNING

    @property
    def can_attach(self) -> bool:
        return self.status in (Status.RUNNING, Status.RESTARTING)

    def can_remove(self, force: bool) -> bool:
        """Anything with ``-f`` (it is killed first); only one nothing holds without."""
        return force or not self.held

    @property
    def can_take_over(self) -> bool:
        """A new monitor may take it: its start (or restart) is still under way."""
        return self.status in (Status.STARTING, Status.RESTARTING)

    # --- transitions ------------------------------------------------------------------
    def begin_start(self, owner: Owner) -> None:
        """``start`` (or a foreground ``run``) takes it: starting, held by ``owner`` until it runs.

        Of two concurrent starts the second sees ``starting`` and leaves; if the owner
        dies before the container runs, reconcile puts it back (see ``decide``).
        """
        self._fields.update(Status=Status.STARTING.value, MonitorPid=owner.pid, MonitorStart=owner.start)
        self._fields.pop("ManualStop", None)

    def taken_over(self, owner: Owner) -> None:
        """The monitor takes over from the ``start`` that forked it."""
        self._fields.update(MonitorPid=owner.pid, MonitorStart=owner.start)

    def abandon_start(self) -> None:
        """A start that failed before the container ran: back to what it was, nobody holds it."""
        self._fields["Status"] = (Status.CREATED if self.never_ran else Status.EXITED).value
        self.release_owner()

    def failed_start(self, exit_code: int, error: str) -> None:
        """As Docker: a command that cannot run leaves the container created, with 126 or 127 recorded."""
        self._fields.update(Status=Status.CREATED.value, Running=False, Pid=0, ExitCode=exit_code,
                            Error=error, FinishedAt=now_rfc3339())
        self.release_owner()

    def started(self, pid: int, monitor: Owner | None = None) -> None:
        """The init runs as ``pid``.

        Under a ``monitor`` (which it names) the start may follow a restart or an
        error, so those fields are reset too; a foreground run's record was written
        created a moment ago and only changes what running changes.
        """
        if monitor is None:
            self._fields.update(Status=Status.RUNNING.value, Running=True, Pid=pid, StartedAt=now_rfc3339())
            return
        self._fields.update(Status=Status.RUNNING.value, Running=True, Paused=False, Restarting=False, Pid=pid,
                            StartedAt=now_rfc3339(), Error="", MonitorPid=monitor.pid, MonitorStart=monitor.start)

    def exited(self, exit_code: int, oom: bool) -> None:
        """A foreground run's init ended with ``exit_code`` (the owner lets go after the teardown)."""
        self._fields["OOMKilled"] = oom
        self._fields.update(Status=Status.EXITED.value, Running=False, Pid=0, ExitCode=exit_code,
                            FinishedAt=now_rfc3339())

    def init_ended(self, exit_code: int, oom: bool, error: str, ran: bool, restart: bool) -> None:
        """A monitored init ended: ``restarting`` if the policy restarts it, else exited (created if its
        command never ran). The monitor stays named until the teardown is done."""
        self._fields.update(ExitCode=exit_code, OOMKilled=oom, Pid=0, FinishedAt=now_rfc3339(), Error=error)
        self._checks_stopped()
        if restart:
            self._fields.update(Status=Status.RESTARTING.value, Running=True, Restarting=True)
        else:
            self._fields.update(Status=(Status.EXITED if ran else Status.CREATED).value, Running=False,
                                Restarting=False, Paused=False)

    def restart_cancelled(self) -> None:
        """Stopped while it waited to restart: exited, with the exit it had."""
        self._fields.update(Status=Status.EXITED.value, Running=False, Restarting=False)

    def paused(self) -> None:
        self._fields.update(Status=Status.PAUSED.value, Paused=True)

    def unpaused(self) -> None:
        self._fields.update(Status=Status.RUNNING.value, Paused=False)

    def stop_requested(self) -> None:
        """``stop``, ``kill`` or ``rm -f`` by the user: as Docker, no restart policy applies."""
        self._fields["ManualStop"] = True

    def release_owner(self, only: int | None = None) -> None:
        """Nobody holds it any more (``only``: if the recorded holder is that pid)."""
        if only is not None and self._fields.get("MonitorPid") != only:
            return
        self._fields.pop("MonitorPid", None)
        self._fields.pop("MonitorStart", None)

    def owner_died(self, recovery: Recovery) -> None:
        """Record what ``decide`` found for a container whose owner died (the engine has killed the init)."""
        if recovery.status is None:
            return
        owner = self.owner
        self._fields.update(Running=False, Paused=False, Restarting=False, Pid=0)
        self._checks_stopped()
        if recovery.exit_code is None:
            self._fields["Status"] = recovery.status.value
            return
        self._fields.update(Status=recovery.status.value, ExitCode=recovery.exit_code, FinishedAt=now_rfc3339(),
                            Error=f"the skiff process that held the container (pid {owner.pid if owner else 0}) died")

    def _checks_stopped(self) -> None:
        from skiff.engine import health

        health.on_stop(self._fields)


class Recovery(NamedTuple):
    """What ``reconcile`` does for a record whose owner died."""

    status: Status | None  # the status to record; None: the recorded one is still true, only release
    exit_code: int | None = None  # with exited after a death: 137 or 255; None: the code is kept
    died: bool = False  # a ``die`` event is due

    @property
    def kill(self) -> bool:
        """The init (if any) is killed before the state is recorded."""
        return self.status is not None


def orphaned(state: State, processes: ProcessTable = proc) -> bool:
    """Its record names an owner (or should: it is held or starting), and that process is gone."""
    owned = state.owner is not None or state.held or state.status == Status.STARTING
    return owned and not state.owner_alive(processes)


def decide(state: State, processes: ProcessTable, init: Owner | None, startable: bool) -> Recovery:
    """The state to record for an orphaned container (see ``orphaned``).

    ``init``: the container's init as the runtime core recorded it (None: it has no
    runtime state); ``startable``: the record has the options ``start`` needs.

    A container that was held (or whose init still runs) was killed with its owner, or
    by us now: Exited (137), as SIGKILL gives. One whose init had already ended while
    nobody watched: 255, its exit code is lost. One that never ran goes back to
    created, as Docker shows a container whose run never started it (a record without
    its options, an older skiff's, is Exited (137)); a start of an exited container that
    never got going leaves it exited. A created or exited one was being released when
    its owner died: the release is finished, the state is true already.
    """
    status = state.status
    if status not in HELD and status != Status.STARTING:
        return Recovery(None)
    if status == Status.STARTING and state.never_ran:
        return Recovery(Status.CREATED) if startable else Recovery(Status.EXITED, 137, died=True)
    if status == Status.STARTING:
        return Recovery(Status.EXITED)
    init_alive = init is not None and init.start is not None and processes.start_time(init.pid) == init.start
    return Recovery(Status.EXITED, 137 if init_alive else 255, died=True)
