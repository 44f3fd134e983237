"""Signal names: one parser, Docker's flavour (kill -s, --stop-signal, STOPSIGNAL) and runc's (skiff-oci kill)."""

from __future__ import annotations

import signal

import pytest

from skiff.errors import InvalidArgument, InvalidSignal
from skiff.signals import parse_signal


@pytest.mark.parametrize("text", ["KILL", "SIGKILL", "kill", "sigkill", "Kill", "9"])
def test_a_name_with_or_without_sig_in_any_case_or_the_number(text: str) -> None:
    assert parse_signal(text) == parse_signal(text, runc=True) == signal.SIGKILL


def test_aliases_and_realtime_bounds() -> None:
    assert parse_signal("CLD") == parse_signal("CHLD") == signal.SIGCHLD
    assert parse_signal("IOT", runc=True) == signal.SIGABRT
    assert parse_signal("RTMIN") == signal.SIGRTMIN and parse_signal("SIGRTMAX", runc=True) == signal.SIGRTMAX


def test_docker_knows_the_realtime_offsets_of_its_table() -> None:
    assert parse_signal("RTMIN+3") == signal.SIGRTMIN + 3
    assert parse_signal("sigrtmax-1") == signal.SIGRTMAX - 1
    assert parse_signal("RTMIN+15") == signal.SIGRTMIN + 15
    for bad in ("RTMIN+16", "RTMIN-1", "RTMAX+1", "RTMAX-15", "RTMIN+x", "KILL+1"):
        with pytest.raises(InvalidSignal):
            parse_signal(bad)
    with pytest.raises(InvalidArgument, match="unknown signal 'RTMIN\\+3'"):
        parse_signal("RTMIN+3", runc=True)  # runc's table has no such names


def test_docker_strips_and_wants_a_signal_of_this_host() -> None:
    assert parse_signal(" TERM\n") == signal.SIGTERM
    for bad in ("0", str(signal.NSIG), "99", "-9", "SIGFOO", "", "SIG", "SIG_DFL", "SIG_BLOCK", "NSIG", "k ill",
                "\u0663"):
        with pytest.raises(InvalidSignal) as info:
            parse_signal(bad)
        assert str(info.value) == f"Invalid signal: {bad}" and info.value.exit_code == 1


def test_runc_passes_any_number_on_and_names_the_bad_one() -> None:
    assert parse_signal("0", runc=True) == 0  # kill(2) with 0: does the process exist
    assert parse_signal("99", runc=True) == 99
    for bad in ("SIGFOO", " TERM", "-9", "SIG_DFL", "", "\u0663"):
        with pytest.raises(InvalidArgument) as info:
            parse_signal(bad, runc=True)
        assert str(info.value) == f"unknown signal {bad!r}" and not isinstance(info.value, InvalidSignal)


def test_the_engine_and_the_run_plan_use_the_same_parser() -> None:
    from skiff.engine import lifecycle

    assert lifecycle.parse_signal is parse_signal
