"""Docker's size strings (go-units size.go): the cases of go-units' own size_test.go, and where skiff uses each."""

from __future__ import annotations

import pytest

from skiff import units
from skiff.errors import InvalidArgument, VolumeError

KB, MB, GB, TB, PB = 1000, 1000**2, 1000**3, 1000**4, 1000**5
KiB, MiB, GiB, TiB, PiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40, 1 << 50


@pytest.mark.parametrize("text, expected", [
    ("32", 32), ("32b", 32), ("32B", 32), ("32k", 32 * KiB), ("32K", 32 * KiB), ("32kb", 32 * KiB),
    ("32Kb", 32 * KiB), ("32Mb", 32 * MiB), ("32Gb", 32 * GiB), ("32Tb", 32 * TiB), ("32Pb", 32 * PiB),
    ("32PB", 32 * PiB), ("32P", 32 * PiB), ("32MiB", 32 * MiB), ("32 mb", 32 * MiB), ("32.3", 32),
    ("1.5g", 3 * GiB // 2), ("0.3 K", 307), ("7i", 7),
])
def test_ram_in_bytes_is_binary(text: str, expected: int) -> None:
    assert units.ram_in_bytes(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("32", 32), ("32b", 32), ("32B", 32), ("32k", 32 * KB), ("32K", 32 * KB), ("32kb", 32 * KB),
    ("32Kb", 32 * KB), ("32Mb", 32 * MB), ("32Gb", 32 * GB), ("32Tb", 32 * TB), ("32Pb", 32 * PB),
    ("32PB", 32 * PB), ("32P", 32 * PB), ("32.3", 32), ("32.5kb", 32500), ("0.3 K", 300),
    ("32.3kb", 32299),  # float64 arithmetic truncated, as Go's int64(32.3 * 1000): 32299.999...
])
def test_from_human_size_is_decimal(text: str, expected: int) -> None:
    assert units.from_human_size(text) == expected


@pytest.mark.parametrize("text", ["", "hello", "-32", ".3kB", " 32 ", "32m b", "32bm", "32  m", "1.2.3m", "3.",
                                  "1e3", "\u0663", "32x"])
def test_bad_sizes_say_invalid_size_in_both_parsers(text: str) -> None:
    for parse in (units.ram_in_bytes, units.from_human_size):
        with pytest.raises(ValueError, match=f"^invalid size: '{text}'$"):
            parse(text)


@pytest.mark.parametrize("size, shown", [
    (1000, "1kB"), (1024, "1.024kB"), (MB, "1MB"), (MiB, "1.049MB"), (2 * MB, "2MB"), (3.42 * GB, "3.42GB"),
    (5.372 * TB, "5.372TB"), (2.22 * PB, "2.22PB"), (10_000_000_000_000 * PB, "1e+04YB"), (0, "0B"),
])
def test_human_size_with_go_units_precision_4(size: float, shown: str) -> None:
    assert units.human_size(size, 4) == shown


def test_human_size_defaults_to_the_clis_3_digits() -> None:
    assert [units.human_size(n) for n in (336, 999_500, 1226, 5_242_880, 12_345_678_901)] == [
        "336B", "1e+03kB", "1.23kB", "5.24MB", "12.3GB"]


@pytest.mark.parametrize("size, shown", [
    (1024, "1KiB"), (MiB, "1MiB"), (2 * MiB, "2MiB"), (3.42 * GiB, "3.42GiB"), (5.372 * TiB, "5.372TiB"),
    (2.22 * PiB, "2.22PiB"), (1, "1B"), (1536, "1.5KiB"), (1_536_000, "1.465MiB"), (2 * 1024**8, "2YiB"),
])
def test_bytes_size_is_binary_with_4_digits(size: float, shown: str) -> None:
    assert units.bytes_size(size) == shown


def test_log_max_size_is_decimal_as_dockers_json_file_driver() -> None:
    from skiff.engine.lifecycle import parse_log_opts

    assert parse_log_opts(["max-size=10k", "max-file=3"]) == {"max-size": "10000", "max-file": "3"}
    assert parse_log_opts(["max-size=1.5m"]) == {"max-size": "1500000"}
    assert parse_log_opts(["max-size=2KiB"]) == {"max-size": "2000"}  # FromHumanSize: a unit's "i" changes nothing
    for bad in ("0", "-1k", "lots", "1.2.3k"):
        with pytest.raises(InvalidArgument, match=f"^invalid max-size '{bad}': use a positive size"):
            parse_log_opts([f"max-size={bad}"])


def test_every_size_flag_takes_the_same_syntax() -> None:
    from skiff.engine.runflags import shm_size
    from skiff.volume.spec import parse_size

    assert shm_size("1.5g") == parse_size("1.5g") == units.ram_in_bytes("1.5g") == 3 * GiB // 2
    assert shm_size("64 MiB") == parse_size("64 MiB") == 64 * MiB
    with pytest.raises(InvalidArgument, match="""^invalid argument "64  m" for "--shm-size" flag: invalid size"""):
        shm_size("64  m")
    for bad in ("64  m", "64\tm"):  # go-units allows one space between number and unit, no more
        with pytest.raises(VolumeError, match=f"^invalid size: '{bad}'$"):
            parse_size(bad)
