"""Go's text/template, as Docker's ``--format`` uses it, for skiff's documents.

No well-kept Python implementation exists (PyPI has only a CGo wrapper), so this is one:
a lexer (``_lex``), a parser to nodes (``_Parser``), an evaluator (``_State``), Docker's
functions (``json split join title lower upper pad truncate``) beside Go's built-ins, and the
``table`` mode with Go's tabwriter. Imported only when ``--format`` is given.

Skiff's documents are dicts, Docker's are Go structs holding maps. The rule that gives
Docker's behaviour for a missing key:

* a dict is a *struct* (a missing key is an error, as Docker's "can't evaluate field" /
  "map has no entry for key") unless it is reached through one of ``FREE_FORM`` keys
  (``Labels``, ``Options``, ``Ports`` ...): those are Go maps, where a missing key prints
  ``<no value>`` and ``index`` of a missing key gives ``""``;
* the values of ``Networks`` and ``Containers`` maps are structs again (EndpointSettings,
  EndpointResource); the values of other maps are maps.

Printing follows Go's ``%v``: maps as ``map[k:v]`` (keys sorted), structs as ``{v1 v2}``,
lists as ``[a b]``, nil as ``<nil>``; ``json`` sorts map keys and keeps a struct's order.
Not supported (an error, never echoed back): ``define``, ``template``, ``block``,
``break``, ``continue``, ``call``, ``html``, ``js``, ``urlquery``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterator, NamedTuple

from skiff.errors import TemplateError

# Keys whose dict values are Go maps in Docker's types (free-form keys), not structs.
FREE_FORM = frozenset({
    "Labels", "Options", "ExposedPorts", "Volumes", "Ports", "PortBindings", "Networks",
    "Containers", "Sysctls", "Data", "DriverOpts", "Status", "Annotations", "Tmpfs",
    "StorageOpt", "DriverOptions", "Aux", "Plugins",
})
# Maps whose values are structs again.
MAPS_OF_STRUCTS = frozenset({"Networks", "Containers"})


class GoMap(dict):
    """A dict that stands for a Go map: missing keys give ``<no value>``; prints as map[..]."""

    structs = False  # whether its dict values are structs


class _StructMap(GoMap):
    structs = True


class _Missing:
    """Go's invalid value: what a missing map key evaluates to."""

    def __repr__(self) -> str:
        return "<no value>"


MISSING = _Missing()


# --- lexer ------------------------------------------------------------------------------


class Token(NamedTuple):
    kind: str  # text, left, right, space, ident, field, var, dot, string, number, char, bool,
    #            nil, pipe, lparen, rparen, declare, assign, comma, eof
    value: str
    pos: int


_KEYWORDS = frozenset({"if", "else", "end", "range", "with", "define", "template", "block",
                       "break", "continue"})


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[Token] = []

    def run(self) -> list[Token]:
        pos = 0
        text = self.text
        while True:
            start = text.find("{{", pos)
            if start < 0:
                self._text(pos, len(text))
                break
            end_text = start
            if text.startswith("{{- ", start) or text[start:start + 4] in ("{{-\t", "{{-\n", "{{-\r"):
                end_text = len(text[pos:start].rstrip(" \t\r\n")) + pos
            self._text(pos, end_text)
            pos = self._action(start)
        self.tokens.append(Token("eof", "", len(text)))
        return self.tokens

    def _text(self, start: int, end: int) -> None:
        if end > start:
            self.tokens.append(Token("text", self.text[start:end], start))

    def _trim_after(self, pos: int) -> int:
        while pos < len(self.text) and self.text[pos] in " \t\r\n":
            pos += 1
        return pos

    def _action(self, start: int) -> int:
        """Lex one ``{{ ... }}``; returns the offset after it (and after trimmed space)."""
        text = self.text
        pos = start + 2
        if text.startswith("- ", pos) or text[pos:pos + 2] in ("-\t", "-\n", "-\r"):
            pos += 1
        after_space = pos
        while after_space < len(text) and text[after_space] in " \t\r\n":
            after_space += 1
        if text.startswith("/*", after_space):
            return self._comment(start, after_space)
        self.tokens.append(Token("left", "{{", start))
        while True:
            if pos >= len(text):
                raise _parse_error(text, start, "unclosed action")
            c = text[pos]
            if c in " \t\r\n":
                end = pos
                while end < len(text) and text[end] in " \t\r\n":
                    end += 1
                if text.startswith("-}}", end) and end > pos:
                    self.tokens.append(Token("right", "}}", end))
                    return self._trim_after(end + 3)
                self.tokens.append(Token("space", " ", pos))
                pos = end
            elif text.startswith("}}", pos):
                self.tokens.append(Token("right", "}}", pos))
                return pos + 2
            else:
                pos = self._item(pos)

    def _comment(self, start: int, pos: int) -> int:
        text = self.text
        end = text.find("*/", pos + 2)
        if end < 0:
            raise _parse_error(text, start, "unclosed comment")
        rest = end + 2
        if text.startswith(" -}}", rest) or text[rest:rest + 4] in ("\t-}}", "\n-}}", "\r-}}"):
            return self._trim_after(rest + 4)
        if text.startswith("}}", rest):
            return rest + 2
        raise _parse_error(text, start, "comment ends before closing delimiter")

    def _item(self, pos: int) -> int:
        text = self.text
        c = text[pos]
        simple = {"|": "pipe", "(": "lparen", ")": "rparen", ",": "comma", "=": "assign"}
        if text.startswith(":=", pos):
            self.tokens.append(Token("declare", ":=", pos))
            return pos + 2
        if c in simple:
            self.tokens.append(Token(simple[c], c, pos))
            return pos + 1
        if c == '"':
            return self._quoted(pos)
        if c == "`":
            end = text.find("`", pos + 1)
            if end < 0:
                raise _parse_error(text, pos, "unterminated raw quoted string")
            self.tokens.append(Token("string", text[pos + 1:end], pos))
            return end + 1
        if c == "'":
            return self._char(pos)
        if c == "$":
            end = self._word_end(pos + 1)
            self.tokens.append(Token("var", text[pos:end], pos))
            return end
        if c == ".":
            if pos + 1 < len(text) and text[pos + 1].isdigit():
                return self._number(pos)
            end = self._word_end(pos + 1)
            self.tokens.append(Token("field", text[pos:end], pos) if end > pos + 1 else Token("dot", ".", pos))
            return end
        if c.isdigit() or (c in "+-" and pos + 1 < len(text) and (text[pos + 1].isdigit() or text[pos + 1] == ".")):
            return self._number(pos)
        if c.isalpha() or c == "_":
            end = self._word_end(pos)
            word = text[pos:end]
            kind = "bool" if word in ("true", "false") else "nil" if word == "nil" else "ident"
            self.tokens.append(Token(kind, word, pos))
            return end
        raise _parse_error(text, pos, f"unexpected {c!r} in command")

    def _word_end(self, pos: int) -> int:
        while pos < len(self.text) and (self.text[pos].isalnum() or self.text[pos] == "_"):
            pos += 1
        return pos

    def _quoted(self, pos: int) -> int:
        text = self.text
        i = pos + 1
        while i < len(text) and text[i] != '"':
            if text[i] == "\n":
                break
            i += 2 if text[i] == "\\" else 1
        if i >= len(text) or text[i] != '"':
            raise _parse_error(text, pos, "unterminated quoted string")
        self.tokens.append(Token("string", _unquote(text[pos + 1:i], text, pos), pos))
        return i + 1

    def _char(self, pos: int) -> int:
        text = self.text
        end = text.find("'", pos + 2 if text.startswith("'\\", pos) else pos + 1)
        if end < 0:
            raise _parse_error(text, pos, "unterminated character constant")
        value = _unquote(text[pos + 1:end], text, pos)
        if len(value) != 1:
            raise _parse_error(text, pos, f"malformed character constant: {text[pos:end + 1]}")
        self.tokens.append(Token("char", value, pos))
        return end + 1

    def _number(self, pos: int) -> int:
        text = self.text
        end = pos + 1
        while end < len(text) and (text[end].isalnum() or text[end] in "._" or
                                   (text[end] in "+-" and text[end - 1] in "eEpP")):
            end += 1
        self.tokens.append(Token("number", text[pos:end], pos))
        return end


_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
            "\\": "\\", '"': '"', "'": "'"}


def _unquote(body: str, text: str, pos: int) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        e = body[i + 1: i + 2]
        if e in _ESCAPES:
            out.append(_ESCAPES[e])
            i += 2
            continue
        size = {"x": 2, "u": 4, "U": 8}.get(e)
        try:
            if size:
                out.append(chr(int(body[i + 2:i + 2 + size], 16)))
                i += 2 + size
                continue
            if e.isdigit():
                out.append(chr(int(body[i + 1:i + 4], 8)))
                i += 4
                continue
        except ValueError:
            pass
        raise _parse_error(text, pos, f"invalid syntax: {body!r}")
    return "".join(out)


# --- nodes ------------------------------------------------------------------------------


class Node:
    pos: int = 0

    def __str__(self) -> str:  # what Go's errors show between < and >
        return ""


class Text(Node):
    def __init__(self, text: str, pos: int) -> None:
        self.text, self.pos = text, pos


class Literal(Node):
    def __init__(self, value: Any, source: str, pos: int) -> None:
        self.value, self.source, self.pos = value, source, pos

    def __str__(self) -> str:
        return self.source


class Dot(Node):
    def __init__(self, pos: int) -> None:
        self.pos = pos

    def __str__(self) -> str:
        return "."


class Field(Node):
    """``.A.B``: fields of dot."""

    def __init__(self, names: list[str], pos: int) -> None:
        self.names, self.pos = names, pos

    def __str__(self) -> str:
        return "".join("." + n for n in self.names)


class Variable(Node):
    """``$x.A.B``: a variable and fields of it."""

    def __init__(self, name: str, names: list[str], pos: int) -> None:
        self.name, self.names, self.pos = name, names, pos

    def __str__(self) -> str:
        return self.name + "".join("." + n for n in self.names)


class Ident(Node):
    """A function's name."""

    def __init__(self, name: str, pos: int) -> None:
        self.name, self.pos = name, pos

    def __str__(self) -> str:
        return self.name


class Chain(Node):
    """``(pipeline).A.B``."""

    def __init__(self, node: Node, names: list[str], pos: int) -> None:
        self.node, self.names, self.pos = node, names, pos

    def __str__(self) -> str:
        return f"{self.node}" + "".join("." + n for n in self.names)


class Command(Node):
    def __init__(self, args: list[Node], pos: int) -> None:
        self.args, self.pos = args, pos

    def __str__(self) -> str:
        return " ".join(str(a) for a in self.args)


class Pipeline(Node):
    def __init__(self, decl: list[str], assign: bool, commands: list[Command], pos: int) -> None:
        self.decl, self.assign, self.commands, self.pos = decl, assign, commands, pos

    def __str__(self) -> str:
        head = ", ".join(self.decl) + (" = " if self.assign else " := ") if self.decl else ""
        return head + " | ".join(str(c) for c in self.commands)


class Paren(Node):
    def __init__(self, pipe: Pipeline, pos: int) -> None:
        self.pipe, self.pos = pipe, pos

    def __str__(self) -> str:
        return f"({self.pipe})"


class Action(Node):
    def __init__(self, pipe: Pipeline, pos: int) -> None:
        self.pipe, self.pos = pipe, pos

    def __str__(self) -> str:
        return "{{" + str(self.pipe) + "}}"


class Branch(Node):
    """``if``, ``range`` or ``with``: a pipeline, a body and an optional else body."""

    def __init__(self, kind: str, pipe: Pipeline, body: list[Node], orelse: list[Node], pos: int) -> None:
        self.kind, self.pipe, self.body, self.orelse, self.pos = kind, pipe, body, orelse, pos

    def __str__(self) -> str:
        return "{{" + f"{self.kind} {self.pipe}" + "}}"


# --- parser -----------------------------------------------------------------------------


def _parse_error(text: str, pos: int, message: str) -> TemplateError:
    line = text.count("\n", 0, pos) + 1
    return TemplateError(f"template: :{line}: {message}", parse=True)


class _Parser:
    def __init__(self, text: str, functions: frozenset[str]) -> None:
        self.text = text
        self.tokens = _Lexer(text).run()
        self.i = 0
        self.functions = functions
        self.vars: list[str] = ["$"]

    def error(self, message: str, pos: int | None = None) -> TemplateError:
        return _parse_error(self.text, self.peek().pos if pos is None else pos, message)

    def peek(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def next_non_space(self) -> Token:
        tok = self.next()
        while tok.kind == "space":
            tok = self.next()
        return tok

    def peek_non_space(self) -> Token:
        j = self.i
        while self.tokens[j].kind == "space":
            j += 1
        return self.tokens[j]

    def parse(self) -> list[Node]:
        nodes, end = self.list_until(())
        if end is not None:
            raise self.error(f"unexpected {{{{{end}}}}}")
        return nodes

    def list_until(self, enders: tuple[str, ...]) -> tuple[list[Node], str | None]:
        """Nodes up to ``{{end}}``/``{{else}}`` (consumed up to the keyword) or EOF."""
        nodes: list[Node] = []
        while True:
            tok = self.next()
            if tok.kind == "eof":
                if enders:
                    raise self.error("unexpected EOF", tok.pos)
                return nodes, None
            if tok.kind == "text":
                nodes.append(Text(tok.value, tok.pos))
                continue
            word = self.peek_non_space()
            if word.kind == "ident" and word.value in ("end", "else"):
                if word.value not in enders:
                    raise self.error(f"unexpected {{{{{word.value}}}}}", word.pos)
                self.next_non_space()
                return nodes, word.value
            nodes.append(self.action(tok.pos))

    def action(self, pos: int) -> Node:
        tok = self.peek_non_space()
        if tok.kind == "ident" and tok.value in ("if", "range", "with"):
            self.next_non_space()
            return self.branch(tok.value, tok.pos)
        if tok.kind == "ident" and tok.value in _KEYWORDS:
            raise self.error(f"{{{{{tok.value}}}}} is not supported by skiff's templates", tok.pos)
        return Action(self.pipeline("command", tok.pos), pos)

    def branch(self, kind: str, pos: int) -> Branch:
        saved = len(self.vars)
        pipe = self.pipeline(kind, pos)
        body, end = self.list_until(("end", "else"))
        orelse: list[Node] = []
        if end == "else":
            nxt = self.peek_non_space()
            if kind == "if" and nxt.kind == "ident" and nxt.value == "if":
                # {{else if x}} is {{else}}{{if x}} ... sharing the one {{end}}
                self.next_non_space()
                orelse = [self.branch("if", nxt.pos)]
            else:
                self.expect_right("else")
                orelse, _ = self.list_until(("end",))
                self.expect_right("end")
        else:
            self.expect_right("end")
        del self.vars[saved:]
        return Branch(kind, pipe, body, orelse, pos)

    def expect_right(self, context: str) -> None:
        tok = self.next_non_space()
        if tok.kind != "right":
            raise self.error(f"unexpected {_describe(tok)} in {context}", tok.pos)

    def pipeline(self, context: str, pos: int) -> Pipeline:
        decl, assign = self.declarations(context)
        commands: list[Command] = []
        while True:
            tok = self.peek_non_space()
            if tok.kind == "right":
                self.next_non_space()
                break
            if tok.kind == "rparen" and context == "parenthesized pipeline":
                self.next_non_space()
                break
            if tok.kind == "eof":
                raise self.error("unclosed action", tok.pos)
            commands.append(self.command(context))
            tok = self.peek_non_space()
            if tok.kind == "pipe":
                self.next_non_space()
                if self.peek_non_space().kind in ("right", "rparen"):
                    raise self.error("missing command")
        if not commands:
            raise self.error(f"missing value for {context}", pos)
        for stage, c in enumerate(commands[1:], start=2):
            if isinstance(c.args[0], (Literal, Dot)):
                raise self.error(f"non executable command in pipeline stage {stage}", c.pos)
        return Pipeline(decl, assign, commands, pos)

    def declarations(self, context: str) -> tuple[list[str], bool]:
        """``$x :=``, ``$x =`` or (range) ``$i, $v :=``; consumed only when present."""
        start = self.i
        first = self.peek_non_space()
        if first.kind != "var":
            return [], False
        self.next_non_space()
        sep = self.peek_non_space()
        names = [first.value]
        if sep.kind == "comma" and context == "range":
            self.next_non_space()
            second = self.next_non_space()
            if second.kind != "var":
                raise self.error("range can only initialize variables", second.pos)
            names.append(second.value)
            sep = self.peek_non_space()
            if sep.kind != "declare":
                raise self.error(f"expected := after {first.value}, {second.value}", sep.pos)
        if sep.kind in ("declare", "assign"):
            self.next_non_space()
            if sep.kind == "declare":
                self.vars.extend(names)
            elif first.value not in self.vars:
                raise self.error(f"undefined variable \"{first.value}\"", first.pos)
            return names, sep.kind == "assign"
        self.i = start
        return [], False

    def command(self, context: str) -> Command:
        args: list[Node] = []
        pos = self.peek_non_space().pos
        while True:
            tok = self.peek_non_space()
            if tok.kind in ("right", "pipe", "rparen", "eof"):
                if tok.kind == "rparen" and context != "parenthesized pipeline":
                    raise self.error("unexpected right paren", tok.pos)
                break
            if args and self.peek().kind != "space":
                raise self.error(f"unexpected {_describe(tok)} in operand", tok.pos)
            args.append(self.operand())
        if not args:
            raise self.error("empty command", pos)
        return Command(args, pos)

    def operand(self) -> Node:
        node = self.term()
        if self.peek().kind == "field":
            names = []
            pos = self.peek().pos
            while self.peek().kind == "field":
                names.extend(self.next().value[1:].split("."))
            if isinstance(node, Field):
                return Field(node.names + names, pos)
            if isinstance(node, Variable):
                return Variable(node.name, node.names + names, pos)
            if isinstance(node, (Literal, Dot)) and not isinstance(node, Paren):
                raise self.error(f"unexpected . after term {str(node)!r}", pos)
            return Chain(node, names, pos)
        return node

    def term(self) -> Node:
        tok = self.next_non_space()
        kind, value, pos = tok
        if kind == "field":
            return Field(value[1:].split("."), pos)
        if kind == "var":
            if value not in self.vars:
                raise self.error(f"undefined variable \"{value}\"", pos)
            return Variable(value, [], pos)
        if kind == "dot":
            return Dot(pos)
        if kind == "ident":
            if value in _KEYWORDS:
                raise self.error(f"unexpected <{value}> in command", pos)
            if value not in self.functions:
                raise self.error(f"function \"{value}\" not defined", pos)
            return Ident(value, pos)
        if kind == "string":
            return Literal(value, self.text[pos:self._end(pos)], pos)
        if kind == "bool":
            return Literal(value == "true", value, pos)
        if kind == "nil":
            return Literal(None, "nil", pos)
        if kind == "char":
            return Literal(ord(value), self.text[pos:self._end(pos)], pos)
        if kind == "number":
            return Literal(self.number(value, pos), value, pos)
        if kind == "lparen":
            return Paren(self.pipeline("parenthesized pipeline", pos), pos)
        raise self.error(f"unexpected {_describe(tok)} in command", pos)

    def _end(self, pos: int) -> int:
        return self.tokens[self.i].pos if self.i < len(self.tokens) else len(self.text)

    def number(self, text: str, pos: int) -> int | float:
        clean = text.replace("_", "")
        try:
            return int(clean, 0)
        except ValueError:
            pass
        try:
            return float(clean)
        except ValueError:
            raise self.error(f"bad number syntax: \"{text}\"", pos) from None


def _describe(tok: Token) -> str:
    names = {"right": "\"}}\"", "eof": "EOF", "pipe": "\"|\"", "rparen": "\")\"", "comma": "\",\""}
    return names.get(tok.kind, f"<{tok.value}>")


# --- values: Go's printing and JSON -----------------------------------------------------


def child(container: Any, key: str, value: Any) -> Any:
    """``value`` found under ``key`` in ``container``, tagged as a Go map where it is one."""
    if not isinstance(value, dict) or isinstance(value, GoMap):
        return value
    if isinstance(container, GoMap):
        return value if container.structs else GoMap(value)
    if key in FREE_FORM:
        return _StructMap(value) if key in MAPS_OF_STRUCTS else GoMap(value)
    return value


def go_type(value: Any) -> str:
    """Go's name for the type of ``value``, for error messages."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, GoMap):
        return "map[string]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    return "interface {}"


def go_float(f: float) -> str:
    """Go's %v for a float64: shortest digits, exponent form when exp < -4 or exp >= 6
    (``1e+06``, ``1.5``, ``123456``)."""
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if math.isnan(f):
        return "NaN"
    if f == 0:
        return "0"
    digits = repr(abs(f))
    if "e" in digits:
        digits = digits.partition("e")[0]
    sig = digits.replace(".", "").lstrip("0").rstrip("0") or "0"
    exp = int(f"{float(repr(f)):e}".partition("e")[2])
    sign = "-" if f < 0 else ""
    if exp < -4 or exp >= 6:
        return f"{sign}{sig[0]}{'.' + sig[1:] if len(sig) > 1 else ''}e{exp:+03d}"
    from decimal import Decimal

    text = format(Decimal(repr(abs(f))), "f")
    return sign + (text.rstrip("0").rstrip(".") if "." in text else text)


def go_str(value: Any) -> str:
    """Go's ``%v`` of a value, as ``{{.X}}`` prints it."""
    if value is MISSING:
        return "<no value>"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, (str, int)):
        return str(value)
    if isinstance(value, list):
        return "[" + " ".join(_nested_str(v) for v in value) + "]"
    if isinstance(value, GoMap):
        return "map[" + " ".join(f"{k}:{_nested_str(child(value, k, value[k]))}" for k in sorted(value)) + "]"
    if isinstance(value, dict):
        return "{" + " ".join(_nested_str(child(value, k, v)) for k, v in value.items() if not callable(v)) + "}"
    return str(value)


def _nested_str(value: Any) -> str:
    if value is None:
        return "<nil>"
    return go_str(value)


def go_json(value: Any) -> str:
    """Go's json.Marshal without HTML escaping, as Docker's ``json`` function."""
    import json

    def encode(v: Any, key: str | None, parent: Any) -> str:
        v = child(parent, key, v) if key is not None else v
        v = getattr(v, "json_form", v)  # a struct whose json tags differ from its field names
        if v is None or v is MISSING:
            return "null"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, float):
            return _json_float(v)
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
        if isinstance(v, (list, tuple)):
            return "[" + ",".join(encode(e, None, None) for e in v) + "]"
        if isinstance(v, dict):
            keys = sorted(v) if isinstance(v, GoMap) else [k for k in v if not callable(v[k])]
            return "{" + ",".join(f"{encode(str(k), None, None)}:{encode(v[k], k, v)}" for k in keys) + "}"
        return encode(str(v), None, None)

    return encode(value, None, None)


def _json_float(f: float) -> str:
    if f == int(f) and abs(f) < 1e21:
        return str(int(f))
    text = repr(f)
    if "e" in text:
        m, _, e = text.partition("e")
        return f"{m}e{int(e):+03d}" if abs(f) < 1e-6 or abs(f) >= 1e21 else format(f, "f").rstrip("0")
    return text


def go_quote(s: str) -> str:
    """Go's strconv.Quote."""
    out = ['"']
    for c in s:
        if c in '"\\':
            out.append("\\" + c)
        elif c in "\a\b\f\n\r\t\v":
            out.append("\\" + "abfnrtv"["\a\b\f\n\r\t\v".index(c)])
        elif c.isprintable() or c == " ":
            out.append(c)
        elif ord(c) < 0x80:
            out.append(f"\\x{ord(c):02x}")
        elif ord(c) < 0x10000:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(f"\\U{ord(c):08x}")
    out.append('"')
    return "".join(out)


# --- functions --------------------------------------------------------------------------


class _CallError(Exception):
    """A function failed: Go reports it as 'error calling NAME: ...'."""


def truth(value: Any) -> bool:
    if value is None or value is MISSING:
        return False
    if isinstance(value, (bool, int, float, str, list, dict)):
        return bool(value) if not isinstance(value, dict) or isinstance(value, GoMap) else True
    return True


def _basic(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number" if not isinstance(value, float) else "float"
    if isinstance(value, str):
        return "string"
    if value is None or value is MISSING:
        return "nil"
    return "other"


def _eq(a: Any, *others: Any) -> bool:
    if not others:
        raise _CallError("missing argument for comparison")
    for b in others:
        if _basic(a) == "nil" or _basic(b) == "nil":
            if (a is None or a is MISSING) and (b is None or b is MISSING):
                return True
            if _basic(a) == "other" or _basic(b) == "other":
                raise _CallError("non-comparable types")
            raise _CallError("incompatible types for comparison")
        if _basic(a) == "other" or _basic(b) == "other":
            raise _CallError("non-comparable types" if _basic(a) == _basic(b) else "incompatible types for comparison")
        if _basic(a) != _basic(b):
            raise _CallError("incompatible types for comparison")
        if a == b:
            return True
    return False


def _lt(a: Any, b: Any) -> bool:
    kinds = (_basic(a), _basic(b))
    if kinds[0] != kinds[1]:
        raise _CallError("incompatible types for comparison")
    if kinds[0] not in ("number", "float", "string"):
        raise _CallError("invalid type for comparison")
    return a < b


def _index(item: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(item, dict):
            if not isinstance(key, str):
                raise _CallError(f"value has type {go_type(key)}; should be string")
            if key in item:
                item = child(item, key, item[key])
            else:
                item = "" if isinstance(item, GoMap) and not item.structs else MISSING
        elif isinstance(item, (list, str)):
            if isinstance(key, bool) or not isinstance(key, int):
                raise _CallError(f"cannot index slice/array with type {go_type(key)}")
            if not 0 <= key < len(item):
                raise _CallError(f"index out of range: {key}")
            item = item[key] if isinstance(item, list) else ord(item[key])
        elif item is None or item is MISSING:
            raise _CallError("index of untyped nil")
        else:
            raise _CallError(f"can't index item of type {go_type(item)}")
    return item


def _slice(item: Any, *indexes: Any) -> Any:
    if not isinstance(item, (list, str)):
        raise _CallError(f"can't slice item of type {go_type(item)}")
    if len(indexes) > 2:
        raise _CallError("too many slice indexes")
    bounds = [i for i in indexes]
    start = bounds[0] if bounds else 0
    end = bounds[1] if len(bounds) > 1 else len(item)
    if not 0 <= start <= end <= len(item):
        raise _CallError(f"index out of range: {end if end > len(item) else start}")
    return item[start:end]


def _len(item: Any) -> int:
    if isinstance(item, (str, list, dict)):
        return len(item)
    raise _CallError(f"len of type {go_type(item)}")


def _not(value: Any) -> bool:
    return not truth(value)


def _title(s: str) -> str:
    """strings.Title: upper-case the first letter of each word (words end at non-alnum)."""
    out, prev_sep = [], True
    for c in s:
        out.append(c.upper() if prev_sep else c)
        prev_sep = not (c.isalnum() or c == "_")
    return "".join(out)


def _join(items: Any, sep: str) -> str:
    if not isinstance(items, list):
        raise _CallError(f"wrong type for value; expected []string; got {go_type(items)}")
    return sep.join(go_str(i) for i in items)


def _split(s: str, sep: str) -> list[str]:
    if sep == "":
        return list(s)
    return s.split(sep)


def _print(*args: Any) -> str:
    out = []
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(go_str(a))
    return "".join(out)


def _println(*args: Any) -> str:
    return " ".join(go_str(a) for a in args) + "\n"


def _pad(s: str, prefix: int, suffix: int) -> str:
    return " " * prefix + s + " " * suffix


def _truncate(s: str, length: int) -> str:
    return s[:length] if len(s) > length else s


def _need_string(name: str, fn: Callable[..., Any], count: int) -> Callable[..., Any]:
    """Docker's string functions take strings: Go rejects other types before the call."""
    def call(*args: Any) -> Any:
        for a in args[:count]:
            if not isinstance(a, str):
                raise _TypeError(f"wrong type for value; expected string; got {go_type(a)}")
        return fn(*args)
    call.__name__ = name
    return call


class _TypeError(Exception):
    """An argument of the wrong type: Go reports it without 'error calling'."""


def _json(value: Any) -> str:
    return go_json(value)


# name -> (function, number of arguments or None for variadic, minimum when variadic)
FUNCTIONS: dict[str, tuple[Callable[..., Any], int | None]] = {
    "and": (lambda *a: a, None), "or": (lambda *a: a, None),  # evaluated lazily in _State
    "not": (_not, 1), "len": (_len, 1), "index": (_index, None), "slice": (_slice, None),
    "print": (_print, None), "printf": (lambda *a: a, None), "println": (_println, None),
    "eq": (_eq, None), "ne": (lambda a, b: not _eq(a, b), 2), "lt": (_lt, 2),
    "le": (lambda a, b: _lt(a, b) or _eq(a, b), 2), "gt": (lambda a, b: not (_lt(a, b) or _eq(a, b)), 2),
    "ge": (lambda a, b: not _lt(a, b), 2),
    # Docker's additions
    "json": (_json, 1), "split": (_need_string("split", _split, 2), 2),
    "join": (_join, 2), "title": (_need_string("title", _title, 1), 1),
    "lower": (_need_string("lower", str.lower, 1), 1), "upper": (_need_string("upper", str.upper, 1), 1),
    "pad": (_pad, 3), "truncate": (_truncate, 2),
}
_UNSUPPORTED = ("call", "html", "js", "urlquery")
_NAMES = frozenset(FUNCTIONS) | frozenset(_UNSUPPORTED)

# In a table's header row Docker's functions return their first argument unchanged.
HEADER_FUNCTIONS: dict[str, tuple[Callable[..., Any], int | None]] = {
    **FUNCTIONS,
    **{name: (lambda v, *_: v, FUNCTIONS[name][1])
       for name in ("json", "split", "join", "title", "lower", "upper", "pad", "truncate")},
}


# --- printf -----------------------------------------------------------------------------


def go_sprintf(fmt: str, *args: Any) -> str:
    """fmt.Sprintf for the verbs templates use: %s %d %v %q %t %x %X %f %e %g %c %%."""
    import re

    out: list[str] = []
    used = 0
    pos = 0
    for m in re.finditer(r"%([-+# 0]*)(\d+)?(?:\.(\d*))?(.|$)", fmt):
        out.append(fmt[pos:m.start()])
        pos = m.end()
        flags, width, prec, verb = m.groups()
        if verb == "%":
            out.append("%")
            continue
        if not verb:
            out.append("%!(NOVERB)")
            continue
        if used >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[used]
        used += 1
        text = _verb(verb, arg, flags, None if prec is None else int(prec or 0))
        if width and len(text) < int(width):
            fill = "0" if "0" in flags and "-" not in flags and verb in "dxXfeg" else " "
            if "-" in flags:
                text = text.ljust(int(width))
            elif fill == "0" and text[:1] in "+-":
                text = text[0] + text[1:].rjust(int(width) - 1, "0")
            else:
                text = text.rjust(int(width), fill)
        out.append(text)
    out.append(fmt[pos:])
    for extra in args[used:]:
        out.append(f"%!(EXTRA {go_type(extra)}={go_str(extra)})")
    return "".join(out)


def _verb(verb: str, arg: Any, flags: str, prec: int | None) -> str:
    bad = f"%!{verb}({go_type(arg)}={go_str(arg)})"
    if verb == "v":
        return go_str(arg)
    if verb == "s":
        if isinstance(arg, (bool, int, float)) or arg is None:
            return bad if arg is not None else "%!s(<nil>)"
        text = go_str(arg)
        return text[:prec] if prec is not None else text
    if verb == "q":
        if isinstance(arg, str):
            return go_quote(arg)
        if isinstance(arg, int) and not isinstance(arg, bool):
            return "'" + go_quote(chr(arg))[1:-1].replace("\\\"", '"').replace("'", "\\'") + "'"
        if isinstance(arg, list):
            return "[" + " ".join(_verb("q", a, flags, prec) for a in arg) + "]"
        return bad
    if verb == "t":
        return go_str(arg) if isinstance(arg, bool) else bad
    if verb in "dxXoc":
        if isinstance(arg, bool) or not isinstance(arg, int):
            if verb in "xX" and isinstance(arg, str):
                return arg.encode().hex() if verb == "x" else arg.encode().hex().upper()
            return bad
        sign = "+" if "+" in flags and arg >= 0 else ""
        return sign + {"d": str(arg), "x": format(arg, "x"), "X": format(arg, "X"), "o": format(arg, "o"),
                       "c": chr(arg) if arg >= 0 else "\ufffd"}[verb]
    if verb in "feEgG":
        if isinstance(arg, bool) or not isinstance(arg, (int, float)):
            return bad
        if isinstance(arg, int):
            return bad
        if verb in "gG" and prec is None:
            return go_float(arg)
        text = format(arg, f"{'+' if '+' in flags else ''}.{6 if prec is None else prec}{verb}")
        return text.replace("e+0", "e+0").replace("inf", "+Inf") if verb in "fF" else text
    return f"%!{verb}({go_type(arg)}={go_str(arg)})"


# --- evaluator --------------------------------------------------------------------------


class _ExecError(Exception):
    def __init__(self, node: Node, message: str) -> None:
        super().__init__(message)
        self.node, self.message = node, message


class Template:
    """A parsed template; ``execute`` renders it for one object."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.nodes = _Parser(text, _NAMES).parse()

    def execute(self, data: Any, type_name: str | None = None, header: bool = False,
                out: list[str] | None = None) -> str:
        """Render for ``data``. ``type_name``: the Go type Docker's errors name for a missing
        top-level field (a listing's row); without it a missing key reads as Docker's inspect
        fallback ("map has no entry for key"). ``out`` receives the text as it is made, so a
        caller keeps what came before an error (as Go's Execute writes to its writer)."""
        state = _State(self, data, type_name, HEADER_FUNCTIONS if header else FUNCTIONS, out)
        try:
            state.walk(self.nodes, data)
        except _ExecError as exc:
            raise TemplateError(self.exec_message(exc)) from None
        return "".join(state.out)

    def exec_message(self, exc: _ExecError) -> str:
        pos = exc.node.pos
        line = self.text.count("\n", 0, pos) + 1
        col = pos - (self.text.rfind("\n", 0, pos) + 1)
        context = str(exc.node)
        if len(context) > 20:
            context = context[:20] + "..."
        return f"template: :{line}:{col}: executing \"\" at <{context}>: {exc.message}"


class _State:
    def __init__(self, template: Template, data: Any, type_name: str | None,
                 functions: dict[str, tuple[Callable[..., Any], int | None]], out: list[str] | None) -> None:
        self.template = template
        self.type_name = type_name
        self.functions = functions
        self.vars: list[tuple[str, Any]] = [("$", data)]
        self.out: list[str] = out if out is not None else []
        self.root = data

    # statements

    def walk(self, nodes: list[Node], dot: Any) -> None:
        for node in nodes:
            if isinstance(node, Text):
                self.out.append(node.text)
            elif isinstance(node, Action):
                value = self.pipeline(node.pipe, dot)
                if not node.pipe.decl:
                    self.out.append(self.printable(node, value))
            else:
                self.branch(node, dot)  # type: ignore[arg-type]

    def printable(self, node: Node, value: Any) -> str:
        return go_str(value)

    def branch(self, node: Branch, dot: Any) -> None:
        mark = len(self.vars)
        value = self.pipeline(node.pipe, dot, declare=node.kind != "range")
        try:
            if node.kind == "range":
                self.range(node, dot, value)
            elif truth(value):
                self.walk(node.body, value if node.kind == "with" else dot)
            else:
                self.walk(node.orelse, dot)
        finally:
            del self.vars[mark:]

    def range(self, node: Branch, dot: Any, value: Any) -> None:
        items: Iterator[tuple[Any, Any]]
        if isinstance(value, list):
            items = iter(list(enumerate(value)))
        elif isinstance(value, dict):
            items = iter([(k, child(value, k, value[k])) for k in sorted(value) if not callable(value[k])])
        elif value is None or value is MISSING:
            items = iter(())
        else:
            raise _ExecError(node.pipe.commands[-1].args[0] if node.pipe.commands else node,
                             f"range can't iterate over {go_str(value)}")
        mark = len(self.vars)
        ran = False
        for key, elem in items:
            ran = True
            if len(node.pipe.decl) == 1:
                self.vars.append((node.pipe.decl[0], elem))
            elif len(node.pipe.decl) == 2:
                self.vars.append((node.pipe.decl[0], key))
                self.vars.append((node.pipe.decl[1], elem))
            self.walk(node.body, elem)
            del self.vars[mark:]
        if not ran:
            self.walk(node.orelse, dot)

    # expressions

    def pipeline(self, pipe: Pipeline, dot: Any, declare: bool = True) -> Any:
        """The pipeline's value; its variable declared or assigned (range's are set per element)."""
        value: Any = MISSING
        for i, cmd in enumerate(pipe.commands):
            value = self.command(cmd, dot, value, i > 0)
        if pipe.decl and declare:
            if pipe.assign:
                self.set_var(pipe.decl[0], value)
            else:
                self.vars.append((pipe.decl[0], value))
        return value

    def set_var(self, name: str, value: Any) -> None:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value)
                return

    def var(self, node: Variable) -> Any:
        for name, value in reversed(self.vars):
            if name == node.name:
                return value
        raise _ExecError(node, f"undefined variable: {node.name}")

    def command(self, cmd: Command, dot: Any, piped: Any, has_piped: bool) -> Any:
        first = cmd.args[0]
        extra = [self.arg(a, dot) for a in cmd.args[1:]] if not isinstance(first, Ident) else []
        if has_piped and not isinstance(first, Ident):
            extra.append(piped)
        if isinstance(first, Ident):
            return self.call(first, cmd, dot, piped, has_piped)
        if isinstance(first, Field):
            return self.fields(first, dot, first.names, extra)
        if isinstance(first, Variable):
            return self.fields(first, self.var(first), first.names, extra)
        if isinstance(first, Chain):
            return self.fields(first, self.arg(first.node, dot), first.names, extra)
        if extra:
            raise _ExecError(first, f"can't give argument to non-function {first}")
        return self.arg(first, dot)

    def arg(self, node: Node, dot: Any) -> Any:
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Dot):
            return dot
        if isinstance(node, Field):
            return self.fields(node, dot, node.names, [])
        if isinstance(node, Variable):
            return self.fields(node, self.var(node), node.names, [])
        if isinstance(node, Paren):
            return self.pipeline(node.pipe, dot)
        if isinstance(node, Chain):
            return self.fields(node, self.arg(node.node, dot), node.names, [])
        if isinstance(node, Ident):
            return self.call(node, Command([node], node.pos), dot, MISSING, False)
        raise _ExecError(node, "can't evaluate")

    def fields(self, node: Node, value: Any, names: list[str], args: list[Any]) -> Any:
        for i, name in enumerate(names):
            value = self.field(node, value, name, args if i == len(names) - 1 else [])
        return value

    def field(self, node: Node, value: Any, name: str, args: list[Any]) -> Any:
        if value is MISSING:
            return MISSING
        if value is None:
            raise _ExecError(node, f"nil pointer evaluating interface {{}}.{name}")
        if isinstance(value, dict):
            if name in value:
                found = value[name]
                if callable(found):
                    try:
                        return found(*args)
                    except TypeError:
                        raise _ExecError(node, f"wrong number of args for {name}: want 1 got {len(args)}") from None
                if args and self.type_name and value is self.root:  # a row's fields are Go methods
                    raise _ExecError(node, f"wrong number of args for {name}: want 0 got {len(args)}")
                if args:
                    raise _ExecError(node, f"{name} has arguments but cannot be invoked as function")
                return child(value, name, found)
            if isinstance(value, GoMap):
                if args:
                    raise _ExecError(node, f"{name} is not a method but has arguments")
                return MISSING
            if self.type_name and value is self.root:
                raise _ExecError(node, f"can't evaluate field {name} in type {self.type_name}")
            raise _ExecError(node, f"map has no entry for key \"{name}\"")
        raise _ExecError(node, f"can't evaluate field {name} in type {go_type(value)}")

    def call(self, ident: Ident, cmd: Command, dot: Any, piped: Any, has_piped: bool) -> Any:
        name = ident.name
        if name in _UNSUPPORTED:
            raise _ExecError(ident, f"function \"{name}\" is not supported by skiff's templates")
        fn, arity = self.functions[name]
        arg_nodes = cmd.args[1:]
        count = len(arg_nodes) + (1 if has_piped else 0)
        if arity is not None and count != arity:
            raise _ExecError(ident, f"wrong number of args for {name}: want {arity} got {count}")
        if name in ("and", "or"):
            return self.and_or(ident, cmd, name, arg_nodes, dot, piped, has_piped)
        args = [self.arg(a, dot) for a in arg_nodes] + ([piped] if has_piped else [])
        if name in ("index", "slice", "eq") and not args:
            raise _ExecError(ident, f"wrong number of args for {name}: want at least 1 got 0")
        if name == "printf":
            if not args:
                raise _ExecError(ident, "wrong number of args for printf: want at least 1 got 0")
            if not isinstance(args[0], str):
                raise _ExecError(ident, f"wrong type for value; expected string; got {go_type(args[0])}")
            return go_sprintf(args[0], *args[1:])
        try:
            return fn(*args)
        except _CallError as exc:
            raise _ExecError(cmd, f"error calling {name}: {exc}") from None
        except _TypeError as exc:
            raise _ExecError(ident, str(exc)) from None

    def and_or(self, ident: Ident, cmd: Command, name: str, nodes: list[Node], dot: Any,
               piped: Any, has_piped: bool) -> Any:
        if not nodes and not has_piped:
            raise _ExecError(ident, f"wrong number of args for {name}: want at least 1 got 0")
        value: Any = MISSING
        values = [lambda n=n: self.arg(n, dot) for n in nodes] + ([lambda: piped] if has_piped else [])
        for get in values:
            value = get()
            if truth(value) != (name == "and"):
                return value
        return value


# --- entry points -----------------------------------------------------------------------

_CACHE: dict[str, Template] = {}


def parse(text: str) -> Template:
    """Parse (once per text) or raise TemplateError(parse=True)."""
    if text not in _CACHE:
        _CACHE[text] = Template(text)
    return _CACHE[text]


def render(template: str, obj: Any, type_name: str | None = None) -> str:
    """``template`` executed for ``obj`` (an inspect document or a listing's row)."""
    return parse(template).execute(obj, type_name)


def is_table(fmt: str) -> bool:
    return fmt.startswith("table")


def render_rows(fmt: str, rows: list[dict[str, Any]], headers: dict[str, str], default_table: str,
                type_name: str | None = None) -> str:
    """A listing with ``--format``, as Docker's formatter: ``table ...`` prints a header row
    (the template run on ``headers`` with Docker's header functions) and aligns columns with
    Go's tabwriter; otherwise each row's output ends with a newline. ``\\t`` and ``\\n``
    written literally in the format become tab and newline, as Docker's do."""
    table = is_table(fmt)
    body = fmt[len("table"):] if table else fmt
    body = body.strip(" ") or (default_table[len("table"):].strip(" ") if table else "")
    body = body.replace("\\t", "\t").replace("\\n", "\n")
    template = parse(body)
    out: list[str] = []
    for row in rows:
        template.execute(row, type_name, out=out)
        out.append("\n")
    if not table:
        return "".join(out)
    head: list[str] = []
    try:
        template.execute(headers, None, header=True, out=head)
    except TemplateError:
        pass  # as Docker: the header row keeps what came before the error
    return tabwrite("".join(head) + "\n" + "".join(out))


def tabwrite(text: str, minwidth: int = 10, padding: int = 3) -> str:
    """Go's text/tabwriter with Docker's settings (minwidth 10, tabwidth 1, padding 3,
    padding char ' ', no flags): tab-terminated cells are aligned in column blocks."""
    lines = [line.split("\t") for line in text.split("\n")]
    out: list[str] = []

    def emit(start: int, end: int, widths: list[int]) -> None:
        for cells in lines[start:end]:
            parts = []
            for j, cell in enumerate(cells):
                if j < len(cells) - 1 and j < len(widths):
                    parts.append(cell.ljust(widths[j]))
                else:
                    parts.append(cell)
            out.append("".join(parts))

    def block(start: int, end: int, widths: list[int]) -> None:
        column = len(widths)
        line0 = start
        this = start
        while this < end:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            emit(line0, this, widths)
            line0 = this
            width = minwidth
            while this < end and column < len(lines[this]) - 1:
                width = max(width, len(lines[this][column]) + padding)
                this += 1
            block(line0, this, widths + [width])
            line0 = this
        emit(line0, end, widths)

    block(0, len(lines), [])
    return "\n".join(out)
