"""The Dockerfile parser, word lexer and .dockerignore rules (skiff.build): pure logic, no root."""

from __future__ import annotations

import pytest

from skiff.build.ignore import IgnoreRules
from skiff.build.parser import key_values, parse
from skiff.build.shell import expand, split_words
from skiff.errors import BuildError


def test_directives_comments_continuations_and_forms() -> None:
    df = parse("# syntax=docker/dockerfile:1\n# escape=`\nFROM busybox AS base\n# a comment\n"
               "RUN echo a `\n  # inside\n  && echo b\nCMD [\"sh\", \"-c\", \"x\"]\nENTRYPOINT echo hi\n")
    assert df.directives == {"syntax": "docker/dockerfile:1", "escape": "`"}
    keywords = [(i.keyword, i.line) for i in df.instructions]
    assert keywords == [("FROM", 3), ("RUN", 5), ("CMD", 8), ("ENTRYPOINT", 9)]
    run = df.instructions[1]
    assert run.rest == "echo a   && echo b" and run.json_args is None
    assert df.instructions[2].json_args == ["sh", "-c", "x"]
    assert df.instructions[3].json_args is None


def test_a_directive_after_an_instruction_is_a_comment() -> None:
    df = parse("FROM busybox\n# escape=`\nRUN a \\\n b\n")
    assert df.escape == "\\" and df.instructions[1].rest == "a  b"


def test_flags_and_heredocs() -> None:
    df = parse("FROM x\nCOPY --from=base --chown=1:2 --chmod=755 a b /d/\nRUN <<EOF\necho hi\n  two\nEOF\n"
               "RUN <<-'END'\n\techo $X\n\tEND\n")
    copy, run, run2 = df.instructions[1:]
    assert copy.flags == {"from": ["base"], "chown": ["1:2"], "chmod": ["755"]} and copy.rest == "a b /d/"
    assert run.heredocs[0].content == "echo hi\n  two\n" and run.heredocs[0].expand
    assert run2.heredocs[0].content == "echo $X\n" and not run2.heredocs[0].expand


@pytest.mark.parametrize("text, message", [
    ("FROM x\nFOO bar\n", "line 2: unknown instruction: FOO"),
    ("FROM x\nSHELL sh -c\n", "line 2: SHELL requires the arguments to be in JSON form"),
    ("FROM x\nRUN <<EOF\necho\n", "line 2: unterminated heredoc EOF"),
    ("FROM x\nWORKDIR\n", "line 2: WORKDIR requires at least one argument"),
])
def test_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(BuildError, match=message):
        parse(text)


@pytest.mark.parametrize("word, expected", [
    ("$A", "x"), ("${A}", "x"), ("${B:-def}", "def"), ("${E:-d}", "d"), ("${E-d}", ""), ("${B-d}", "d"),
    ("${A:+alt}", "alt"), ("${B:+alt}", ""), ("${E+alt}", "alt"), ("'$A'", "$A"), ('"$A b"', "x b"),
    ("\\$A", "$A"), ("a${A}b", "axb"), ("${B:-${A}y}", "xy"), ("$", "$"), ('"a\\"b"', 'a"b'),
])
def test_variable_expansion(word: str, expected: str) -> None:
    assert expand(word, {"A": "x", "E": ""}) == expected


def test_unset_with_question_mark_is_an_error() -> None:
    with pytest.raises(BuildError, match="B: must be set"):
        expand("${B:?must be set}", {})


def test_words_keep_quotes_for_expansion() -> None:
    assert split_words('A="b c" D=e\\ f') == ['A="b c"', "D=e\\ f"]
    df = parse('FROM x\nENV A="b c" D=e\nENV LEGACY some value\n')
    assert key_values(df.instructions[1], "\\") == [("A", '"b c"'), ("D", "e")]
    assert key_values(df.instructions[2], "\\") == [("LEGACY", "some value")]


@pytest.mark.parametrize("path, ignored", [
    ("a.log", True), ("sub/a.log", False), ("deep/x/y.tmp", True), ("y.tmp", True), ("keep.log", False),
    ("build", True), ("build/out/file", True), ("docs/readme.md", True), ("docs/important.md", False),
    ("src/main.py", False), ("Dockerfile", False),
])
def test_dockerignore_rules(path: str, ignored: bool) -> None:
    rules = IgnoreRules("# comment\n*.log\n!keep.log\n**/*.tmp\n/build\ndocs\n!docs/important.md\n")
    assert rules.ignored(path) is ignored


def test_expansion_stops_at_a_heredoc_and_keeps_multiple() -> None:
    df = parse("FROM x\nRUN cat <<A >a && cat <<B >b\none\nA\ntwo\nB\nCMD x\n")
    run = df.instructions[1]
    assert [(d.name, d.content) for d in run.heredocs] == [("A", "one\n"), ("B", "two\n")]
    assert df.instructions[2].keyword == "CMD" and df.instructions[2].line == 7
