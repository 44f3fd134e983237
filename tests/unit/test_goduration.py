"""Go's time.ParseDuration and Duration.String(), as Docker's --health-* flags and HEALTHCHECK use them."""

from __future__ import annotations

import pytest

from skiff import goduration


@pytest.mark.parametrize(("text", "ns", "shown"), [
    ("0", 0, "0s"), ("0s", 0, "0s"), ("200ms", 200_000_000, "200ms"), ("1.5s", 1_500_000_000, "1.5s"),
    ("1m30s", 90_000_000_000, "1m30s"), ("1h", 3_600_000_000_000, "1h0m0s"), ("300us", 300_000, "300µs"),
    ("1µs", 1000, "1µs"), ("1ns", 1, "1ns"), (".5s", 500_000_000, "500ms"), ("1.s", 1_000_000_000, "1s"),
    ("2h45m", 9_900_000_000_000, "2h45m0s"), ("-1s", -1_000_000_000, "-1s"), ("+30s", 30_000_000_000, "30s"),
    ("1.000000001s", 1_000_000_001, "1.000000001s"), ("1h1m1.25s", 3_661_250_000_000, "1h1m1.25s"),
])
def test_parse_and_format(text: str, ns: int, shown: str) -> None:
    assert goduration.parse(text) == ns
    assert goduration.format(ns) == shown


@pytest.mark.parametrize(("text", "message"), [
    ("", 'time: invalid duration ""'), ("bad", 'time: invalid duration "bad"'),
    ("0.5", 'time: missing unit in duration "0.5"'), ("10", 'time: missing unit in duration "10"'),
    ("1x", 'time: unknown unit "x" in duration "1x"'), (".s", 'time: invalid duration ".s"'),
    ("-", 'time: invalid duration "-"'), ("1s ", 'time: unknown unit "s " in duration "1s "'),
    ("١s", 'time: invalid duration "١s"'),  # an Arabic-Indic digit: Go takes ASCII digits only
])
def test_errors_as_go(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        goduration.parse(text)
    assert str(caught.value) == message
