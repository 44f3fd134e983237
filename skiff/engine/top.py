"""``top``: Docker 20.10's ContainerTop (daemon/top_unix.go), the host's ``ps`` cut to a container.

Docker runs ``ps ARGS -q PIDS`` on the host (``-ef`` when no ARGS are given), retries plain
``ps ARGS`` when ps refuses ``-q`` with those options, then keeps the rows whose PID column is
one of the container's processes. The titles are ps's own header, so any ps option works as
it does on the host; an output without a PID column is an error, as Docker's.
"""

from __future__ import annotations

import re
import subprocess

from skiff.errors import ProcessListFailed

Table = tuple[list[str], list[list[str]]]

# Docker's validatePSArgs: ``-o x=PID`` would rename the PID column out of sight; only pid= may.
_RENAMED_PID = re.compile(r"\s+(\S*)=\s*(PID\S*)")


def process_table(ps_args: list[str], pids: list[int]) -> Table:
    """ps's titles and the rows of ``pids`` for the ``ps`` options ``ps_args`` (words as given)."""
    args = " ".join(ps_args) or "-ef"
    _validate(args)
    words = args.split(" ")  # as Docker: split on single spaces, after the client joined the words
    output = _run_ps([*words, "-q", ",".join(str(p) for p in pids)])
    if output is None:  # some options (f) do not go with -q: all processes, filtered below
        output = _run_ps(words, check=True) or ""
    return parse_ps_output(output, set(pids))


def _validate(args: str) -> None:
    for key, value in _RENAMED_PID.findall(args):
        if key != "pid":
            raise ProcessListFailed(f'specifying "{key}={value}" is not allowed')


def _run_ps(words: list[str], check: bool = False) -> str | None:
    """ps's output, or None when it fails (with ``check``: its first line of stderr, as Docker)."""
    try:
        done = subprocess.run(["ps", *words], capture_output=True, text=True, check=False)
    except OSError as exc:
        if check:
            raise ProcessListFailed(f"ps: {exc.strerror}") from None
        return None
    if done.returncode == 0:
        return done.stdout
    if check:
        first = done.stderr.split("\n", 1)[0] or f"exit status {done.returncode}"
        raise ProcessListFailed(f"ps: {first}")
    return None


def parse_ps_output(output: str, pids: set[int]) -> Table:
    """Docker's parsePSOutput: the header's words, and the rows whose PID is one of ``pids`` (the
    last column keeps its spaces: a command line)."""
    lines = output.split("\n")
    titles = lines[0].split()
    if "PID" not in titles:
        raise ProcessListFailed("Couldn't find PID field in ps output")
    index = titles.index("PID")
    rows = []
    for line in lines[1:]:
        if not line:
            continue
        fields = line.split()
        value = fields[index] if index < len(fields) else ""
        if not value.isdigit():
            raise ProcessListFailed(f"Unexpected pid '{value}': strconv.Atoi: parsing \"{value}\": invalid syntax")
        pid = int(value)
        if pid in pids:
            last = len(titles) - 1
            rows.append([*fields[:last], " ".join(fields[last:])])
    return titles, rows
