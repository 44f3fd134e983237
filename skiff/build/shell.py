"""Docker's Dockerfile word lexer: splitting into words and expanding variables where Docker does.

``split_words`` splits on blanks outside quotes and keeps the quotes and escapes in each word
(Docker's parser does that first: ``ENV a="b c" d=e``); ``expand`` then processes one word as
Docker's shell lexer (ProcessWord): quotes removed, escapes applied, ``$VAR``, ``${VAR}``,
``${VAR:-word}``, ``${VAR-word}``, ``${VAR:+word}``, ``${VAR+word}``, ``${VAR:?msg}`` replaced from
the build's environment. Single quotes keep everything literal.
"""

from __future__ import annotations

from typing import Mapping

from skiff.errors import BuildError

NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def split_words(text: str, escape: str = "\\") -> list[str]:
    """Blank-separated words; quotes and escapes stay in the word for ``expand``."""
    words: list[str] = []
    word: list[str] = []
    quote = ""
    i = 0
    while i < len(text):
        c = text[i]
        if c == escape and quote != "'" and i + 1 < len(text):
            word.append(c + text[i + 1])
            i += 2
            continue
        if quote:
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c.isspace():
            if word:
                words.append("".join(word))
                word = []
            i += 1
            continue
        word.append(c)
        i += 1
    if word:
        words.append("".join(word))
    return words


def expand(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """One word as Docker's ProcessWord returns it."""
    return _Lexer(word, env, escape).process(stop="")


class _Lexer:
    def __init__(self, text: str, env: Mapping[str, str], escape: str) -> None:
        self.text = text
        self.env = env
        self.escape = escape
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        c = self.peek()
        self.pos += 1
        return c

    def process(self, stop: str) -> str:
        """Up to ``stop`` (``}`` inside a ``${...}`` word) or the end."""
        out: list[str] = []
        while self.pos < len(self.text):
            c = self.peek()
            if stop and c == stop:
                break
            self.pos += 1
            if c == self.escape:
                out.append(self.next() if self.pos < len(self.text) else c)
            elif c == "'":
                out.append(self._single_quoted())
            elif c == '"':
                out.append(self._double_quoted())
            elif c == "$":
                out.append(self._dollar())
            else:
                out.append(c)
        return "".join(out)

    def _single_quoted(self) -> str:
        end = self.text.find("'", self.pos)
        if end < 0:
            raise BuildError("unexpected end of statement while looking for matching single-quote")
        value = self.text[self.pos:end]
        self.pos = end + 1
        return value

    def _double_quoted(self) -> str:
        out: list[str] = []
        while True:
            if self.pos >= len(self.text):
                raise BuildError("unexpected end of statement while looking for matching double-quote")
            c = self.next()
            if c == '"':
                return "".join(out)
            if c == "$":
                out.append(self._dollar())
            elif c == self.escape and self.peek() in ('"', "$", self.escape):
                out.append(self.next())
            else:
                out.append(c)

    def _name(self) -> str:
        start = self.pos
        while self.peek() and self.peek() in NAME_CHARS:
            self.pos += 1
        return self.text[start:self.pos]

    def _dollar(self) -> str:
        if self.peek() != "{":
            name = self._name()
            return self.env.get(name, "") if name else "$"
        self.pos += 1
        name = self._name()
        if not name:
            raise BuildError(f"missing ':' in substitution: {self.text}")
        c = self.next()
        if c == "}":
            return self.env.get(name, "")
        colon = c == ":"
        if colon:
            c = self.next()
        if c not in ("-", "+", "?"):
            raise BuildError(f"unsupported modifier ({c}) in substitution: {self.text}")
        word = self.process(stop="}")
        if self.next() != "}":
            raise BuildError(f"missing '}}' in substitution: {self.text}")
        value = self.env.get(name)
        is_set = value is not None and (value != "" or not colon)
        if c == "-":
            return value if is_set and value is not None else word
        if c == "+":
            return word if is_set else ""
        if not is_set:
            raise BuildError(f"{name}: {word or 'is not allowed to be unset'}")
        return value or ""
