"""The parity runner: one scenario, as data, run on Docker and on skiff, and what to compare.

A scenario is a list of steps; a step is one command line (without ``docker``/``skiff``) and the
aspects of its result that must be the same on both sides:

- ``code``: the exit status;
- ``stdout``: the output, byte for byte;
- ``out``: the output after ``normalise`` (ids, times, durations, sizes, state roots, the
  width of table columns);
- ``head``: the first line of the output, normalised (a table's header, when its rows cannot match);
- ``err``: the first line of stderr after ``normalise_error``: the client's prefix (``docker:``,
  ``skiff:``, ``Error response from daemon:``, ``Error:``) goes, since skiff has no daemon; Docker's
  wording after it must be skiff's;
- ``shape``: the output read as JSON, compared by ``shape``: the keys of every object and the type
  of every value (a list by the shape of its first item).

Each side runs its steps in order in a thread of its own, so the two sides overlap; a scenario
names the containers it makes with ``--name``, and the volumes and tags it makes, and the runner
removes them on both sides afterwards, whatever happened.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

ASPECTS = frozenset({"code", "stdout", "out", "head", "err", "shape"})
DEFAULT = ("code", "out", "err")

Cli = Callable[[Sequence[str], "str | None"], subprocess.CompletedProcess[str]]


@dataclass(frozen=True)
class Step:
    argv: tuple[str, ...]
    compare: tuple[str, ...] = DEFAULT
    input: str | None = None

    def __post_init__(self) -> None:
        unknown = set(self.compare) - ASPECTS
        assert not unknown, f"unknown aspects {unknown} in {self.argv}"


def step(*argv: str, compare: str | tuple[str, ...] = DEFAULT, input: str | None = None) -> Step:
    """``step("run", "--rm", "busybox", "true", compare="code stdout")``."""
    aspects = tuple(compare.split()) if isinstance(compare, str) else compare
    return Step(tuple(argv), aspects, input)


def setup(*argv: str) -> Step:
    """A step whose exit status only must agree (it prepares what the next steps look at)."""
    return step(*argv, compare="code")


@dataclass(frozen=True)
class Scenario:
    id: str
    steps: tuple[Step, ...]
    # Why skiff differs from Docker today (the test is an expected failure until it does not).
    known: str | None = None
    volumes: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    # Containers the steps name otherwise than with --name (a rename's new name).
    containers: tuple[str, ...] = ()

    def names(self) -> list[str]:
        """Every container this scenario names: ``--name X`` in its steps, and ``containers``."""
        names = list(self.containers)
        for s in self.steps:
            for flag, value in zip(s.argv, s.argv[1:]):
                if flag == "--name":
                    names.append(value)
            names += [a.split("=", 1)[1] for a in s.argv if a.startswith("--name=")]
        return list(dict.fromkeys(names))


def scenario(id: str, *steps: Step | Sequence[str], known: str | None = None, volumes: Sequence[str] = (),
             images: Sequence[str] = (), containers: Sequence[str] = ()) -> Scenario:
    """A scenario from steps; a plain argv list is a step with the default aspects."""
    made = tuple(s if isinstance(s, Step) else Step(tuple(s)) for s in steps)
    return Scenario(id, made, known, tuple(volumes), tuple(images), tuple(containers))


# --- normalising --------------------------------------------------------------------------------

_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?( ?Z| ?[+-]\d\d:?\d\d)?( [A-Z]{3,4})?")
_DURATION = re.compile(r"\b(Less than a second|About an? (minute|hour)"
                       r"|\d+ (second|minute|hour|day|week|month|year)s?)\b")
_SIZE = re.compile(r"\b\d+(\.\d+)?\s?(B|[kKMGT]i?B)\b")
_LONG_ID = re.compile(r"\b[0-9a-f]{64}\b")
_SHORT_ID = re.compile(r"\b[0-9a-f]{12}\b")
_PREFIXES = re.compile(r"^((docker|skiff): )?(Error response from daemon: )?(Error: )?")


def normalise(text: str, roots: Sequence[str] = ()) -> str:
    """What may differ between two correct engines becomes a placeholder: state roots, ids,
    times, durations, sizes; runs of spaces (table columns are as wide as their values) become two."""
    for root in roots:
        text = text.replace(root, "<root>")
    text = _LONG_ID.sub("<id>", text)
    text = _SHORT_ID.sub("<id>", text)
    text = _TIME.sub("<time>", text)
    text = _DURATION.sub("<duration>", text)
    text = _SIZE.sub("<size>", text)
    text = re.sub(r"\bdocker\b", "skiff", text)
    return "\n".join(re.sub(r" {2,}", "  ", line).rstrip() for line in text.splitlines())


def normalise_error(stderr: str, roots: Sequence[str] = ()) -> str:
    """The first line of stderr without the client's framing: its prefix (skiff has no daemon to
    answer), and the full stop ``docker run`` puts after a daemon's message when it adds
    ``See 'docker run --help'.`` on the next line."""
    lines = stderr.splitlines() or [""]
    prefix = _PREFIXES.match(lines[0])
    assert prefix is not None  # every part of it is optional
    first = lines[0][prefix.end():]
    framed = prefix.group(2) is not None and len(lines) > 1 and lines[1].startswith("See '")
    if framed and first.endswith("."):
        first = first[:-1]
    return normalise(first, roots)


def shape(value: object) -> object:
    """Keys and value types: a dict maps its keys to their shapes, a list is its first item's."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__ if value is not None else "null"


def shape_differences(docker: object, skiff: object, path: str = "") -> list[str]:
    """One line per key missing in skiff, extra in skiff, or of another type."""
    if isinstance(docker, dict) and isinstance(skiff, dict):
        lines = [f"{path}.{k}: missing" for k in docker if k not in skiff]
        lines += [f"{path}.{k}: extra" for k in skiff if k not in docker]
        for key in docker.keys() & skiff.keys():
            lines += shape_differences(docker[key], skiff[key], f"{path}.{key}")
        return lines
    if isinstance(docker, list) and isinstance(skiff, list):
        if docker and skiff:
            return shape_differences(docker[0], skiff[0], f"{path}[]")
        return []  # an empty list is a list of anything
    if docker != skiff:
        return [f"{path or '.'}: {_kind(docker)} in docker, {_kind(skiff)} in skiff"]
    return []


def _kind(s: object) -> str:
    return "object" if isinstance(s, dict) else "list" if isinstance(s, list) else str(s)


def _json(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        # ps/images --format '{{json .}}' print one object a line
        try:
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError:
            return f"<not JSON: {text[:200]!r}>"


# --- running ------------------------------------------------------------------------------------


@dataclass
class Side:
    """One engine's command line and the state roots that appear in its outputs."""

    name: str
    cli: Cli
    roots: tuple[str, ...]
    # "{data}" in a step's argv: a directory of files the scenarios read (an env file, a bind source).
    data: str = ""

    def run_all(self, steps: Sequence[Step]) -> list[subprocess.CompletedProcess[str]]:
        return [self.cli([a.replace("{data}", self.data) for a in s.argv], s.input) for s in steps]

    def clean(self, sc: Scenario) -> None:
        names = sc.names()
        if names:
            self.cli(["rm", "-f", *names], None)
        if sc.volumes:
            self.cli(["volume", "rm", "-f", *sc.volumes], None)
        if sc.images:
            self.cli(["rmi", *sc.images], None)


def differences(sc: Scenario, docker: Side, skiff: Side) -> list[str]:
    """Run ``sc`` on both sides at once; one line per aspect in which a step differs."""
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(_run_and_clean, side, sc) for side in (docker, skiff)]
        theirs, ours = (f.result() for f in futures)
    found = []
    for s, d, k in zip(sc.steps, theirs, ours):
        for aspect in s.compare:
            a, b = _aspect(aspect, d, docker.roots), _aspect(aspect, k, skiff.roots)
            if aspect == "shape":
                diff = shape_differences(a, b)
                if diff:
                    found.append(f"{' '.join(s.argv)}: shape: " + "; ".join(sorted(diff)))
            elif a != b:
                found.append(f"{' '.join(s.argv)}: {aspect}: docker {a!r} skiff {b!r}")
    return found


def _run_and_clean(side: Side, sc: Scenario) -> list[subprocess.CompletedProcess[str]]:
    try:
        return side.run_all(sc.steps)
    finally:
        side.clean(sc)


def _aspect(aspect: str, proc: subprocess.CompletedProcess[str], roots: Sequence[str]) -> object:
    if aspect == "code":
        return proc.returncode
    if aspect == "stdout":
        return proc.stdout
    if aspect == "out":
        return normalise(proc.stdout, roots)
    if aspect == "head":
        return normalise(proc.stdout, roots).split("\n")[0]
    if aspect == "err":
        return normalise_error(proc.stderr, roots)
    return shape(_json(proc.stdout))
