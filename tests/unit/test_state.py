"""The container state machine and crash recovery's decisions, against a fake process table (no root)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from skiff.engine.containers import Container
from skiff.engine.state import (HELD, Owner, Recovery, State, Status, decide, orphaned, shown)
from skiff.paths import Paths

OWNER = Owner(4242, 1000)
INIT = Owner(5151, 2000)


class Processes:
    """A process table: pid -> start time; a pid missing is gone (or a zombie)."""

    def __init__(self, table: dict[int, int]) -> None:
        self.table = table

    def start_time(self, pid: int) -> int | None:
        return self.table.get(pid)


OWNER_ALIVE = Processes({OWNER.pid: OWNER.start, INIT.pid: INIT.start})
OWNER_GONE = Processes({INIT.pid: INIT.start})
OWNER_PID_REUSED = Processes({OWNER.pid: OWNER.start + 7, INIT.pid: INIT.start})
INIT_GONE = Processes({})
INIT_PID_REUSED = Processes({INIT.pid: INIT.start + 7})


def state_of(status: Status, owner: Owner | None = OWNER, ran: bool = True, **extra: Any) -> State:
    fields = State.new()
    fields["Status"] = status.value
    if ran:
        fields["StartedAt"] = "2026-12-04T20:00:00.000000000Z"
    if owner is not None:
        fields.update(MonitorPid=owner.pid, MonitorStart=owner.start)
    fields.update(extra)
    return State(fields)


# --- who owns it ---------------------------------------------------------------------
@pytest.mark.parametrize("status", list(Status))
def test_a_live_owner_is_never_recovered(status: Status) -> None:
    assert not orphaned(state_of(status), OWNER_ALIVE)


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("table", [OWNER_GONE, OWNER_PID_REUSED, INIT_GONE], ids=["gone", "pid-reused", "all-gone"])
def test_a_named_owner_that_is_gone_or_whose_pid_was_reused_is_orphaned(status: Status, table: Processes) -> None:
    assert orphaned(state_of(status), table)


@pytest.mark.parametrize("status", sorted(HELD | {Status.STARTING}))
def test_a_held_or_starting_record_without_an_owner_is_orphaned(status: Status) -> None:
    assert orphaned(state_of(status, owner=None), OWNER_ALIVE)


@pytest.mark.parametrize("status", [Status.CREATED, Status.EXITED, Status.DEAD, Status.REMOVING])
def test_a_stopped_record_without_an_owner_is_left_alone(status: Status) -> None:
    assert not orphaned(state_of(status, owner=None), OWNER_GONE)


def test_an_owner_recorded_without_a_start_time_is_not_trusted() -> None:
    state = state_of(Status.RUNNING, owner=Owner(OWNER.pid, None))
    assert orphaned(state, OWNER_ALIVE)


# --- what recovery records ------------------------------------------------------------------
@pytest.mark.parametrize("status", [Status.RUNNING, Status.PAUSED, Status.RESTARTING])
def test_a_held_container_whose_init_still_runs_was_killed_with_its_owner(status: Status) -> None:
    assert decide(state_of(status), OWNER_GONE, INIT, startable=True) == Recovery(Status.EXITED, 137, died=True)


@pytest.mark.parametrize("status", [Status.RUNNING, Status.PAUSED, Status.RESTARTING])
@pytest.mark.parametrize("table,init", [(INIT_GONE, INIT), (INIT_PID_REUSED, INIT), (OWNER_GONE, None),
                                        (OWNER_GONE, Owner(INIT.pid, None))],
                         ids=["init-gone", "init-pid-reused", "no-runtime-state", "no-start-time"])
def test_a_held_container_whose_init_ended_unseen_lost_its_exit_code(status: Status, table: Processes,
                                                                      init: Owner | None) -> None:
    assert decide(state_of(status), table, init, startable=True) == Recovery(Status.EXITED, 255, died=True)


@pytest.mark.parametrize("table", [OWNER_GONE, INIT_GONE], ids=["init-alive", "init-gone"])
def test_a_start_that_never_ran_the_container_puts_it_back_to_created(table: Processes) -> None:
    assert decide(state_of(Status.STARTING, ran=False), table, INIT, startable=True) == Recovery(Status.CREATED)


def test_a_record_without_its_options_cannot_go_back_to_created() -> None:
    recovery = decide(state_of(Status.STARTING, ran=False), INIT_GONE, None, startable=False)
    assert recovery == Recovery(Status.EXITED, 137, died=True)


@pytest.mark.parametrize("table", [OWNER_GONE, INIT_GONE], ids=["init-alive", "init-gone"])
def test_a_restart_by_start_that_never_got_going_leaves_it_exited_with_its_code(table: Processes) -> None:
    assert decide(state_of(Status.STARTING), table, INIT, startable=True) == Recovery(Status.EXITED)


@pytest.mark.parametrize("status", [Status.CREATED, Status.EXITED, Status.DEAD, Status.REMOVING])
@pytest.mark.parametrize("table", [OWNER_GONE, INIT_GONE, OWNER_PID_REUSED], ids=["init-alive", "init-gone", "reused"])
def test_an_owner_that_died_while_releasing_leaves_a_true_state(status: Status, table: Processes) -> None:
    recovery = decide(state_of(status), table, INIT, startable=True)
    assert recovery == Recovery(None) and not recovery.kill


def test_owner_died_records_the_decision() -> None:
    state = state_of(Status.RUNNING, Pid=INIT.pid, Health={"Status": "healthy", "FailingStreak": 0, "Log": []})
    state.owner_died(Recovery(Status.EXITED, 137, died=True))
    assert (state.status, state.exit_code, state.running, state.pid) == (Status.EXITED, 137, False, 0)
    assert state["Error"] == f"the skiff process that held the container (pid {OWNER.pid}) died"
    assert state["Health"]["Status"] == "unhealthy"  # Docker's, once the checks stop
    assert state.owner == OWNER  # named until the release is done
    state.release_owner()
    assert state.owner is None and "MonitorStart" not in state


def test_owner_died_back_to_created_keeps_the_exit_code() -> None:
    state = state_of(Status.STARTING, ran=False, ExitCode=3)
    state.owner_died(Recovery(Status.CREATED))
    assert (state.status, state.exit_code) == (Status.CREATED, 3)


# --- the transitions -------------------------------------------------------------------
def test_a_foreground_run_writes_what_it_always_wrote() -> None:
    fields = State.new()
    state = State(fields)
    state.begin_start(OWNER)
    state.started(INIT.pid)
    state.exited(1, oom=True)
    state.release_owner()
    assert list(fields) == ["Status", "Running", "Pid", "ExitCode", "OOMKilled", "StartedAt", "FinishedAt", "Error"]
    assert (fields["Status"], fields["ExitCode"], fields["OOMKilled"], fields["Pid"]) == ("exited", 1, True, 0)
    assert type(fields["Status"]) is str  # plain JSON strings in the record
    json.dumps(fields)


def test_a_monitored_start_restart_and_stop() -> None:
    state = state_of(Status.EXITED, owner=None, ManualStop=True)
    state.begin_start(OWNER)
    assert not state.manual_stop and state.status == Status.STARTING and not state.can_start
    assert state.can_take_over
    state.started(INIT.pid, monitor=OWNER)
    assert state.held and state.can_exec and state.can_attach and state.can_pause and not state.can_unpause
    assert (state["Paused"], state["Restarting"], state["Error"]) == (False, False, "")
    state.init_ended(2, oom=False, error="", ran=True, restart=True)
    assert state.status == Status.RESTARTING and state.held and state.can_attach and not state.can_exec
    assert state.can_take_over
    state.stop_requested()
    state.restart_cancelled()
    assert state.status == Status.EXITED and not state.held and state.exit_code == 2 and state.manual_stop


def test_a_command_that_never_ran_leaves_the_container_created() -> None:
    state = state_of(Status.STARTING, ran=False)
    state.init_ended(127, oom=False, error="not found", ran=False, restart=False)
    assert (state.status, state.exit_code, state["Error"]) == (Status.CREATED, 127, "not found")
    state.release_owner(only=OWNER.pid + 1)
    assert state.owner == OWNER  # another monitor's record is not ours to let go
    state.release_owner(only=OWNER.pid)
    assert state.owner is None


def test_failed_and_abandoned_starts() -> None:
    state = state_of(Status.STARTING, ran=False)
    state.failed_start(126, "permission denied")
    assert (state.status, state.exit_code, state.owner) == (Status.CREATED, 126, None)
    state = state_of(Status.STARTING, ran=True)
    state.abandon_start()
    assert (state.status, state.owner) == (Status.EXITED, None)
    state = state_of(Status.STARTING, ran=False)
    state.abandon_start()
    assert state.status == Status.CREATED


def test_pause_and_unpause() -> None:
    state = state_of(Status.RUNNING)
    state.paused()
    assert state.status == Status.PAUSED and state["Paused"] and state.can_unpause and state.can_kill
    assert not state.can_exec and not state.can_attach and not state.can_pause and not state.can_start
    state.unpaused()
    assert state.status == Status.RUNNING and not state["Paused"]


@pytest.mark.parametrize("status,can_start,can_remove", [
    (Status.CREATED, True, True), (Status.EXITED, True, True), (Status.DEAD, True, True),
    (Status.STARTING, False, True), (Status.RUNNING, False, False), (Status.PAUSED, False, False),
    (Status.RESTARTING, False, False),
])
def test_what_each_status_allows(status: Status, can_start: bool, can_remove: bool) -> None:
    state = state_of(status)
    assert state.can_start == can_start
    assert state.can_remove(force=False) == can_remove and state.can_remove(force=True)
    assert state.can_stop == (status in HELD)


def test_the_view_is_read_only_and_reads_like_the_record() -> None:
    state = state_of(Status.RUNNING)
    assert state.get("Status") == "running" and dict(state)["Status"] == "running"
    with pytest.raises(TypeError):
        state["Status"] = "exited"  # type: ignore[index]
    assert not hasattr(state, "update") and not hasattr(state, "pop")


def test_an_unknown_status_reads_as_dead() -> None:
    assert state_of(Status.RUNNING, Status="frozen").status == Status.DEAD


def test_starting_is_shown_as_created() -> None:
    assert shown("starting") == "created" and shown("running") == "running"


def test_a_container_record_hands_out_the_view(tmp_path: Any) -> None:
    fields = State.new()
    State(fields).paused()
    container = Container(Paths(tmp_path / "root", tmp_path / "run"), {"Id": "c1", "State": fields})
    assert isinstance(container.state, State) and container.held and not container.running
