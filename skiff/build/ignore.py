"""``.dockerignore``: Docker's pattern rules (fileutils.PatternMatcher).

One pattern a line, ``#`` comments, each cleaned as a path (a leading ``/`` dropped); ``*`` and
``?`` stay within one path component, ``**`` crosses any number of them; a pattern that matches a
directory excludes everything below it; ``!pattern`` re-includes, and the last pattern that matches
a path decides.
"""

from __future__ import annotations

import posixpath
import re
from typing import NamedTuple


class _Pattern(NamedTuple):
    exclusion: bool
    regex: re.Pattern[str]
    depth: int          # components of the pattern, for matching a parent directory


class IgnoreRules:
    def __init__(self, text: str = "") -> None:
        self.patterns: list[_Pattern] = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            exclusion = line.startswith("!")
            line = line[1:].strip() if exclusion else line
            cleaned = posixpath.normpath(line).lstrip("/") or "."
            if cleaned == ".":
                continue
            self.patterns.append(_Pattern(exclusion, re.compile(_regex(cleaned)), cleaned.count("/") + 1))

    @property
    def has_exceptions(self) -> bool:
        """Whether a directory that matches may still hold an entry that does not (``!`` rules)."""
        return any(p.exclusion for p in self.patterns)

    def ignored(self, path: str) -> bool:
        """Whether the context path (relative, ``a/b``) is left out."""
        if not self.patterns:
            return False
        path = posixpath.normpath(path).lstrip("/")
        parts = path.split("/")
        matched = False
        for pattern in self.patterns:
            hit = bool(pattern.regex.fullmatch(path))
            if not hit and len(parts) > 1 and pattern.depth <= len(parts) - 1:
                hit = bool(pattern.regex.fullmatch("/".join(parts[:pattern.depth])))
            if hit:
                matched = not pattern.exclusion
        return matched


def _regex(pattern: str) -> str:
    """Go's filepath.Match syntax plus ``**``, as Docker's regexpMatch builds it."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            if pattern[i:i + 2] == "**":
                i += 2
                if pattern[i:i + 1] == "/":  # "**/" matches zero or more directories
                    i += 1
                    out.append("(.*/)?")
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i)
            if end < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1:end].replace("\\", "\\\\")
                out.append("[" + ("^" + body[1:] if body.startswith("^") or body.startswith("!") else body) + "]")
                i = end
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)
