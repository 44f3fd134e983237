"""A Dockerfile as instructions: Docker's parser (parser directives, comments, line continuations,
heredocs, JSON and shell forms, builder flags), independent of how the steps are run.

What is parsed here is syntax only: variables are expanded later, step by step, because their
values are the build's (``skiff.build.shell.expand``). Errors name the line, as Docker's do.
"""

from __future__ import annotations

import json
import re
from typing import NamedTuple

from skiff.build.shell import split_words
from skiff.errors import BuildError

INSTRUCTIONS = frozenset({"FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY",
                          "ENTRYPOINT", "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL",
                          "HEALTHCHECK", "SHELL"})
JSON_FORMS = frozenset({"RUN", "CMD", "ENTRYPOINT", "SHELL", "VOLUME", "COPY", "ADD"})
HEREDOC_FORMS = frozenset({"RUN", "COPY", "ADD"})
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_HEREDOC = re.compile(r"<<(-?)(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\2")


class Heredoc(NamedTuple):
    name: str
    content: str
    expand: bool      # an unquoted name: variables are expanded in the content


class Instruction(NamedTuple):
    keyword: str                      # upper case
    rest: str                         # what follows the keyword and its flags, continuations joined
    flags: dict[str, list[str]]       # --name=value words before the arguments (--from, --chown...)
    line: int                         # where it starts (1-based)
    original: str                     # the instruction as written, continuations joined
    json_args: list[str] | None       # the exec (JSON) form's strings, else None
    heredocs: tuple[Heredoc, ...] = ()

    def where(self) -> str:
        return f"Dockerfile line {self.line}"


class Dockerfile(NamedTuple):
    directives: dict[str, str]
    instructions: list[Instruction]
    escape: str


def parse(text: str) -> Dockerfile:
    """The instructions of a Dockerfile's text; BuildError names the line of the first fault."""
    lines = text.splitlines()
    directives, start = _directives(lines)
    escape = directives.get("escape", "\\")
    if escape not in ("\\", "`"):
        raise BuildError(f"invalid ESCAPE '{escape}'. Must be ` or \\")
    instructions: list[Instruction] = []
    i = start
    while i < len(lines):
        stripped = lines[i].strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        first = i
        logical, i = _logical_line(lines, i, escape)
        keyword, _, rest = logical.strip().partition(" ")
        if not re.fullmatch(r"[A-Za-z]+", keyword):
            keyword = re.split(r"\s", logical.strip(), maxsplit=1)[0]
        keyword_upper = keyword.upper()
        if keyword_upper not in INSTRUCTIONS:
            raise BuildError(f"dockerfile parse error line {first + 1}: unknown instruction: {keyword_upper}")
        rest = rest.strip()
        heredocs: tuple[Heredoc, ...] = ()
        if keyword_upper in HEREDOC_FORMS and "<<" in rest:
            heredocs, i = _heredocs(lines, i, rest, first)
        instructions.append(_instruction(keyword_upper, rest, first + 1, logical.strip(), heredocs))
    return Dockerfile(directives, instructions, escape)


def _directives(lines: list[str]) -> tuple[dict[str, str], int]:
    """``# syntax=`` and ``# escape=`` at the very top; the first other line ends them."""
    found: dict[str, str] = {}
    for index, line in enumerate(lines):
        match = _DIRECTIVE.match(line.strip())
        if not match or match.group(1).lower() not in ("syntax", "escape"):
            return found, index
        key = match.group(1).lower()
        if key in found:
            raise BuildError(f"dockerfile parse error line {index + 1}: only one {key} parser directive can be used")
        found[key] = match.group(2)
    return found, len(lines)


def _logical_line(lines: list[str], i: int, escape: str) -> tuple[str, int]:
    """A line and its continuations (comment and empty lines inside are dropped, as Docker)."""
    parts: list[str] = []
    while i < len(lines):
        line = lines[i]
        i += 1
        if parts and (not line.strip() or line.lstrip().startswith("#")):
            continue
        trimmed = line.rstrip()
        if trimmed.endswith(escape):
            parts.append(trimmed[:-1])
            continue
        parts.append(line)
        return "".join(parts), i
    return "".join(parts), i


def _heredocs(lines: list[str], i: int, rest: str, first: int) -> tuple[tuple[Heredoc, ...], int]:
    docs = []
    for match in _HEREDOC.finditer(rest):
        strip_tabs, quote, name = match.group(1), match.group(2), match.group(3)
        body: list[str] = []
        while True:
            if i >= len(lines):
                raise BuildError(f"dockerfile parse error line {first + 1}: unterminated heredoc {name}")
            line = lines[i]
            i += 1
            if (line.lstrip("\t") if strip_tabs else line) == name:
                break
            body.append(line.lstrip("\t") if strip_tabs else line)
        docs.append(Heredoc(name, "".join(b + "\n" for b in body), expand=not quote))
    return tuple(docs), i


def _instruction(keyword: str, rest: str, line: int, original: str, heredocs: tuple[Heredoc, ...]) -> Instruction:
    flags: dict[str, list[str]] = {}
    if keyword in ("FROM", "RUN", "COPY", "ADD", "HEALTHCHECK"):
        while rest.startswith("--"):
            word, _, remainder = rest.partition(" ")
            if word == "--":
                rest = remainder.lstrip()
                break
            name, sep, value = word[2:].partition("=")
            if keyword == "HEALTHCHECK":
                break  # its flags are skiff.image.changes' to read
            flags.setdefault(name, []).append(value if sep else "")
            rest = remainder.lstrip()
    json_args: list[str] | None = None
    if keyword in JSON_FORMS and rest.startswith("["):
        try:
            parsed: object = json.loads(rest)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and all(isinstance(v, str) for v in parsed):
            json_args = parsed
    if keyword == "SHELL" and json_args is None:
        raise BuildError(f"dockerfile parse error line {line}: SHELL requires the arguments to be in JSON form")
    if not rest and keyword not in ("RUN", "CMD", "ENTRYPOINT") and not heredocs:
        raise BuildError(f"dockerfile parse error line {line}: {keyword} requires at least one argument")
    return Instruction(keyword, rest, flags, line, original, json_args, heredocs)


def key_values(inst: Instruction, escape: str) -> list[tuple[str, str]]:
    """ENV, LABEL and ARG's ``K=V`` words (values still to expand), or the legacy ``K V``."""
    words = split_words(inst.rest, escape)
    if inst.keyword == "ARG":
        return [(w.partition("=")[0], w) for w in words]
    if not words:
        raise BuildError(f"{inst.where()}: {inst.keyword} requires at least one argument")
    if "=" not in words[0]:
        if len(words) < 2:
            raise BuildError(f"{inst.where()}: {inst.keyword} must have two arguments")
        key, _, value = inst.rest.partition(" ")
        return [(key, value.strip())]
    from skiff.image.changes import assignments

    try:
        return assignments(words)
    except ValueError as exc:
        raise BuildError(f"{inst.where()}: {inst.keyword} {exc}") from None
