"""Pure parts of the listings' Docker rules: ``images --filter`` (reference globs, dangling,
label), ``top``'s cut of the host's ps output, ``ps -s``'s SIZE text, ``logs --tail``."""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest

from skiff.cli.ps import size_text
from skiff.engine.logs import tail_lines
from skiff.engine.filters import FilterArgs, image_list_filter
from skiff.engine.top import parse_ps_output
from skiff.errors import InvalidFilter, ProcessListFailed


class FakeImage(NamedTuple):
    repo_tags: list[str]
    repo_digests: list[str]
    config: dict[str, Any]
    created: str = "2026-01-01T00:00:00Z"


TAGGED = FakeImage(["busybox:latest", "example.com/team/app:1"], ["busybox@sha256:" + "a" * 64], {"Labels": {"a": "b"}})
UNTAGGED = FakeImage([], [], {})


def names(image: FakeImage, *filters: str) -> Any:
    return image_list_filter(None, FilterArgs.parse(filters))(image)


def test_reference_is_a_go_path_glob_on_the_name_with_and_without_tag() -> None:
    assert names(TAGGED, "reference=busybox") == (["busybox:latest"], ["busybox@sha256:" + "a" * 64])
    assert names(TAGGED, "reference=busy*:lat?st") == (["busybox:latest"], [])
    assert names(TAGGED, "reference=*/app") is None  # as Go's path.Match: * stops at /
    assert names(TAGGED, "reference=*/*/app:[0-9]") == (["example.com/team/app:1"], [])
    assert names(TAGGED, "reference=nope") is None
    assert names(UNTAGGED, "reference=*") is None  # as Docker: no names, nothing to match


def test_dangling_and_label() -> None:
    assert names(UNTAGGED, "dangling=true") == ([], [])
    assert names(TAGGED, "dangling=true") is None
    assert names(UNTAGGED, "dangling=false") is None
    assert names(TAGGED, "label=a=b") is not None and names(TAGGED, "label=a=c") is None
    assert names(UNTAGGED, "label=a") is None
    with pytest.raises(InvalidFilter, match=r"Invalid filter 'dangling=\[maybe\]'"):
        names(TAGGED, "dangling=maybe")
    with pytest.raises(InvalidFilter, match="Invalid filter 'id'"):
        names(TAGGED, "id=x")


def test_top_keeps_the_containers_rows_and_the_last_columns_spaces() -> None:
    output = "UID PID PPID CMD\nroot 1 0 init\nroot 42 1 sleep 300 now\nroot 43 1 other\n"
    assert parse_ps_output(output, {42}) == (["UID", "PID", "PPID", "CMD"], [["root", "42", "1", "sleep 300 now"]])
    with pytest.raises(ProcessListFailed, match="Couldn't find PID field in ps output"):
        parse_ps_output("COMMAND\nsleep\n", {42})


def test_size_text_and_tail_as_docker() -> None:
    assert size_text(2, 1_234_567) == "2B (virtual 1.23MB)"
    assert size_text(0, 0) == "0B"
    assert [tail_lines(v) for v in ("x", "all", "-1", "-5", "0", "3")] == [None, None, None, None, 0, 3]
