"""PostgREST's query-string grammar for tables: `select`, filters, `and`/`or` trees, `order`,
`on_conflict` and `columns`, read into typed values. A text that does not parse is PGRST100,
its message naming the parameter and the position as PostgREST's parser does.

Nothing here is ever written into SQL: names become identifiers and values literals later.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from app.gateway.errors import GatewayError

T = TypeVar("T")

QUANTIFIABLE = ("eq", "gte", "gt", "lte", "lt", "like", "ilike", "match", "imatch")
SIMPLE = ("neq", "cs", "cd", "ov", "sl", "sr", "nxr", "nxl", "adj")
FULL_TEXT = ("fts", "plfts", "phfts", "wfts")
IS_VALUES = ("null", "not_null", "true", "false", "unknown")
_FIELD_NAME = "field name (* or [a..z0..9_$])"
_OPERATOR = "operator (eq, gt, ...)"
# Deeper trees are refused before they exhaust the parser's (or Postgres's) stack.
MAX_LOGIC_DEPTH = 64


@dataclass(frozen=True)
class JsonStep:
    arrow: str  # -> or ->>
    key: str | None  # a key, or None for an index
    index: int | None = None


@dataclass(frozen=True)
class Field:
    name: str
    path: tuple[JsonStep, ...] = ()

    def output_name(self) -> str:
        """PostgREST's default name for a selected field: the last json key, else the column."""
        keys = [step.key for step in self.path if step.key is not None]
        return keys[-1] if keys else self.name


@dataclass(frozen=True)
class SelectItem:
    field: Field  # name "*" for every column
    alias: str | None = None
    cast: str | None = None


@dataclass(frozen=True)
class Embed:
    """A related resource named in `select`: `alias:clients!hint!inner(id,name)`. A spread
    (`...clients(*)`) and an order by a related column are recognised to be refused."""

    name: str
    alias: str | None = None
    hint: str | None = None
    join: str | None = None  # inner or left
    spread: bool = False
    items: tuple[SelectItem | Embed | Aggregate, ...] = ()


@dataclass(frozen=True)
class Aggregate:
    """`count()` or `col.sum()` in `select`: refused later, as PostgREST does by default."""


@dataclass(frozen=True)
class Condition:
    field: Field
    negated: bool
    operator: str  # eq, in, is, isdistinct, fts, cs...
    value: str | tuple[str, ...]  # a list for `in`
    quantifier: str | None = None  # any or all
    language: str | None = None  # fts(english)


@dataclass(frozen=True)
class Logic:
    negated: bool
    operator: str  # and, or
    children: tuple[Condition | Logic, ...]


@dataclass(frozen=True)
class OrderTerm:
    field: Field
    direction: str | None  # asc, desc
    nulls: str | None  # nullsfirst, nullslast


@dataclass(frozen=True)
class RelatedOrder:
    """`order=owner(name).desc`: by a column of an embedded resource this one points to."""

    name: str  # the embedded resource's name or alias
    field: Field
    direction: str | None
    nulls: str | None


class _Failure(Exception):
    def __init__(self, position: int, expecting: str, unexpected: str | None = None) -> None:
        super().__init__(expecting)
        self.position = position
        self.expecting = expecting
        self.unexpected = unexpected


class _TooDeep(_Failure):
    """Not a wrong turn to back out of: the whole text is refused."""


def parse_select(text: str) -> list[SelectItem | Embed | Aggregate]:
    return _parse(text, f"failed to parse select parameter ({text})", _Parser.select)


def parse_filter(key: str, value: str) -> tuple[list[str], Condition]:
    """`col=op.value`: the embed path (empty for the table itself) and the condition."""
    names, field = _parse(key, f"failed to parse tree path ({key})", _Parser.tree_path)
    parser = _Parser(value)
    condition = _run(parser, f"failed to parse filter ({value})", lambda p: p.operation(field))
    return names, condition


def parse_logic(key: str, value: str) -> tuple[list[str], Logic]:
    """`or=(a.eq.1,b.gt.2)` or `not.and=(...)`: the embed path and the tree."""
    words = key.split(".")
    path = [w for w in words[:-1] if w != "not"]
    operator = ("not." if "not" in words[:-1] else "") + words[-1]
    text = operator + value
    tree = _parse(text, f"failed to parse logic tree ({value})", _Parser.logic_tree)
    return path, tree


def parse_order(value: str) -> list[OrderTerm | RelatedOrder]:
    return _parse(value, f"failed to parse order ({value})", _Parser.order)


def parse_columns(value: str, parameter: str) -> list[str]:
    return _parse(value, f"failed to parse {parameter} parameter ({value})", _Parser.columns)


def _parse(text: str, source: str, rule: Callable[[_Parser, bool], T]) -> T:
    """The whole of `text` by `rule` (True: nothing may follow)."""
    return _run(_Parser(text), source, lambda parser: rule(parser, True))


def _run(parser: _Parser, source: str, rule: Callable[[_Parser], T]) -> T:
    try:
        return rule(parser)
    except _Failure as failure:
        unexpected = failure.unexpected
        if unexpected is None:
            at = parser.text[failure.position : failure.position + 1]
            unexpected = f'"{at}"' if at else "end of input"
        raise GatewayError(
            400,
            "PGRST100",
            f"{_haskell_show(source)} (line 1, column {failure.position + 1})",
            f"unexpected {unexpected} expecting {failure.expecting}",
        ) from None


def _mismatch(text: str, keyword: str) -> str:
    """What Parsec's `string keyword` says it found in `text`: the first differing character."""
    for found, wanted in zip(text, keyword, strict=False):
        if found != wanted:
            return _haskell_show(found)
    return "end of input" if len(text) < len(keyword) else _haskell_show(text[len(keyword)])


def _haskell_show(text: str) -> str:
    """A string quoted as PostgREST's messages quote it (Haskell's `show`)."""
    out = ['"']
    for i, char in enumerate(text):
        if char == '"':
            out.append('\\"')
        elif char == "\\":
            out.append("\\\\")
        elif " " <= char <= "~":
            out.append(char)
        else:
            out.append(f"\\{ord(char)}")
            if i + 1 < len(text) and text[i + 1].isdigit():
                out.append("\\&")
    out.append('"')
    return "".join(out)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0
        self.depth = 0

    # Characters -------------------------------------------------------------------------------

    def peek(self, size: int = 1) -> str:
        return self.text[self.at : self.at + size]

    def done(self) -> bool:
        return self.at >= len(self.text)

    def take(self, word: str) -> bool:
        if self.text.startswith(word, self.at):
            self.at += len(word)
            return True
        return False

    def expect(self, word: str, expecting: str | None = None) -> None:
        if not self.take(word):
            raise _Failure(self.at, expecting or f'"{word}"')

    def spaces(self) -> None:
        while self.peek() in (" ", "\t") and not self.done():
            self.at += 1

    def at_end_of_item(self, closers: str = ",") -> bool:
        return self.done() or self.peek() in closers

    # Names ------------------------------------------------------------------------------------

    def quoted(self) -> str:
        self.expect('"')
        out = []
        while True:
            if self.done():
                raise _Failure(self.at, '"\\"" or any character')
            char = self.text[self.at]
            self.at += 1
            if char == '"':
                return "".join(out)
            if char == "\\":
                if self.done():
                    raise _Failure(self.at, "any character")
                char = self.text[self.at]
                self.at += 1
            out.append(char)

    def identifier(self) -> str:
        start = self.at
        while not self.done() and (self.peek().isalnum() or self.peek() in "_ $"):
            self.at += 1
        if self.at == start:
            raise _Failure(self.at, _FIELD_NAME)
        return self.text[start : self.at].strip()

    def field_name(self) -> str:
        if self.peek() == '"':
            return self.quoted()
        parts = [self.identifier()]
        while self.peek() == "-" and self.peek(2) != "->":
            self.at += 1
            parts.append(self.identifier())
        return "-".join(parts)

    def json_path(self) -> tuple[JsonStep, ...]:
        steps = []
        while self.peek(2) == "->":
            arrow = "->>" if self.take("->>") else "->"
            if arrow == "->":
                self.at += 2
            steps.append(self.json_operand(arrow))
        return tuple(steps)

    def json_operand(self, arrow: str) -> JsonStep:
        start = self.at
        digits = self.text[start + (1 if self.peek() == "-" else 0) :]
        length = len(digits) - len(digits.lstrip("0123456789"))
        end = start + (1 if self.peek() == "-" else 0) + length
        rest = self.text[end:]
        if length and (not rest or rest[:2] in ("->", "::") or rest[:1] in ".,"):
            self.at = end
            return JsonStep(arrow, None, int(self.text[start:end]))
        if self.peek() == '"':
            return JsonStep(arrow, self.quoted())
        parts = [self.json_key_part()]
        while self.peek() == "-" and self.peek(2) != "->":
            self.at += 1
            parts.append(self.json_key_part())
        return JsonStep(arrow, "-".join(parts))

    def json_key_part(self) -> str:
        start = self.at
        while not self.done() and self.peek() not in "(-:.,>)":
            self.at += 1
        if self.at == start:
            raise _Failure(self.at, "any non reserved character different from: .,>()")
        return self.text[start : self.at].strip()

    def field(self) -> Field:
        self.spaces()
        name = self.field_name()
        field = Field(name, self.json_path())
        self.spaces()
        return field

    def cast_name(self) -> str:
        start = self.at
        while not self.done() and (self.peek().isalnum() or self.peek() in "_ $"):
            self.at += 1
        if self.at == start:
            raise _Failure(self.at, "letter or digit")
        return self.text[start : self.at].strip()

    # select -----------------------------------------------------------------------------------

    def select(self, whole: bool) -> list[SelectItem | Embed | Aggregate]:
        items: list[SelectItem | Embed | Aggregate] = []
        self.spaces()
        if self.done():
            return items
        while True:
            items.append(self.select_item())
            self.spaces()
            if not self.take(","):
                break
            self.spaces()
        if whole and not self.done():
            raise _Failure(self.at, '",", "(" or end of input')
        return items

    def select_item(self) -> SelectItem | Embed | Aggregate:
        self.spaces()
        if self.take("..."):
            return self.embedded(self.field_name(), None, spread=True)
        if self.peek() == "*":
            self.at += 1
            self.spaces()
            if not self.at_end_of_item(",)"):
                raise _Failure(self.at, '")", "," or end of input')
            return SelectItem(Field("*"))
        alias = self.alias()
        if self.take("count()"):
            self.skip_cast()
            return Aggregate()
        start = self.at
        name = self.field_name()
        if self.peek() in ("!", "(") and name != "count":
            return self.embedded(name, alias)
        self.at = start
        field = self.field()
        cast = self.cast_name() if self.take("::") else None
        if self.peek() == "." and self.aggregate_follows():
            self.at = self.text.index("()", self.at) + 2
            self.skip_cast()
            return Aggregate()
        self.spaces()
        if not self.at_end_of_item(",)"):
            raise _Failure(self.at, '"->>", "->", "::", ".", ")", "," or end of input')
        return SelectItem(field, alias, cast)

    def alias(self) -> str | None:
        start = self.at
        try:
            name = self.field_name()
        except _Failure:
            self.at = start
            return None
        if self.peek() == ":" and self.peek(2) != "::":
            self.at += 1
            return name
        self.at = start
        return None

    def aggregate_follows(self) -> bool:
        rest = self.text[self.at + 1 :]
        return any(rest.startswith(f"{f}()") for f in ("sum", "avg", "count", "max", "min"))

    def skip_cast(self) -> None:
        if self.take("::"):
            self.cast_name()

    def embedded(self, name: str, alias: str | None, *, spread: bool = False) -> Embed:
        hint = join = None
        for _ in range(2):
            if not self.take("!"):
                break
            word = self.field_name()
            if word in ("inner", "left"):
                join = word
            else:
                hint = word
        self.expect("(", '"("')
        self.depth += 1
        if self.depth > MAX_LOGIC_DEPTH:
            raise _TooDeep(self.at, f"at most {MAX_LOGIC_DEPTH} nested embedded resources")
        items = self.select(False)
        self.depth -= 1
        self.spaces()
        self.expect(")", '")" or ","')
        return Embed(name, alias, hint, join, spread, tuple(items))

    # filters ----------------------------------------------------------------------------------

    def tree_path(self, whole: bool) -> tuple[list[str], Field]:
        names = [self.field_name()]
        while self.take("."):
            names.append(self.field_name())
        path = self.json_path()
        if whole and not self.done():
            raise _Failure(self.at, '"->>", "->", delimiter (.) or end of input')
        return names[:-1], Field(names[-1], path)

    def operation(self, field: Field, *, in_logic: bool = False) -> Condition:
        negated = self.take("not.")
        if self.take("in."):
            return Condition(field, negated, "in", self.list_value())
        if self.take("isdistinct."):
            return Condition(field, negated, "isdistinct", self.single_value(in_logic))
        if self.take("is."):
            return Condition(field, negated, "is", self.is_value())
        for word in SIMPLE:
            if self.take(word + "."):
                return Condition(field, negated, word, self.single_value(in_logic))
        condition = self.full_text(field, negated, in_logic) or self.quantified(
            field, negated, in_logic
        )
        if condition is None:
            if negated:
                raise _Failure(self.at, _OPERATOR)
            # Parsec tries "not." first and reports the first character that is not it.
            raise _Failure(
                self.at, f'"not" or {_OPERATOR}', _mismatch(self.text[self.at :], "not.")
            )
        return condition

    def full_text(self, field: Field, negated: bool, in_logic: bool) -> Condition | None:
        start = self.at
        for word in FULL_TEXT:
            if self.take(word):
                language = None
                if self.take("("):
                    language = self.cast_name()
                    self.expect(")", '")"')
                if self.take("."):
                    value = self.single_value(in_logic)
                    return Condition(field, negated, word, value, language=language)
                self.at = start
        return None

    def quantified(self, field: Field, negated: bool, in_logic: bool) -> Condition | None:
        start = self.at
        for word in QUANTIFIABLE:
            if self.take(word):
                quantifier = next(
                    (q for q in ("any", "all") if self.take(f"({q})")),
                    None,
                )
                if self.take("."):
                    value = self.single_value(in_logic)
                    return Condition(field, negated, word, value, quantifier)
                self.at = start
        return None

    def single_value(self, in_logic: bool) -> str:
        if not in_logic:
            value = self.text[self.at :]
            self.at = len(self.text)
            return value
        start = self.at
        if self.peek() == '"':
            value = self.quoted()
            if self.at_end_of_item(",)"):
                return value
            self.at = start
        if self.peek() == "{":
            end = self.text.find("}", self.at)
            inner = self.text[self.at + 1 : end] if end >= 0 else ""
            if end >= 0 and "{" not in inner:
                self.at = end + 1
                return self.text[start : self.at]
        while not self.done() and self.peek() not in ",)":
            self.at += 1
        return self.text[start : self.at]

    def list_value(self) -> tuple[str, ...]:
        self.spaces()
        self.expect("(", '"("')
        self.spaces()
        values = [self.list_element()]
        while self.take(","):
            values.append(self.list_element())
        self.spaces()
        self.expect(")", '")"')
        self.spaces()
        return tuple(values)

    def list_element(self) -> str:
        start = self.at
        if self.peek() == '"':
            value = self.quoted()
            if self.at_end_of_item(",)"):
                return value
            self.at = start
        while not self.done() and self.peek() not in ",)":
            self.at += 1
        return self.text[start : self.at]

    def is_value(self) -> str:
        for word in IS_VALUES:
            candidate = self.text[self.at : self.at + len(word)]
            if len(candidate) == len(word) and all(
                c in (w, w.upper()) for c, w in zip(candidate, word, strict=True)
            ):
                self.at += len(word)
                return word
        raise _Failure(self.at, "isVal: (null, not_null, true, false, unknown)")

    # and / or ---------------------------------------------------------------------------------

    def logic_tree(self, whole: bool) -> Logic:
        tree = self.logic_expression()
        if whole and not self.done():
            raise _Failure(self.at, "end of input")
        return tree

    def logic_expression(self) -> Logic:
        self.depth += 1
        try:
            return self.logic_operation()
        finally:
            self.depth -= 1

    def logic_operation(self) -> Logic:
        if self.depth > MAX_LOGIC_DEPTH:
            raise _TooDeep(self.at, f"at most {MAX_LOGIC_DEPTH} nested logic trees")
        negated = self.take("not.")
        if self.take("and"):
            operator = "and"
        elif self.take("or"):
            operator = "or"
        else:
            raise _Failure(self.at, "logic operator (and, or)")
        self.spaces()
        self.expect("(", '"("')
        children: list[Condition | Logic] = []
        while True:
            self.spaces()
            children.append(self.logic_child())
            self.spaces()
            if not self.take(","):
                break
        self.expect(")", '")" or ","')
        self.spaces()
        return Logic(negated, operator, tuple(children))

    def logic_child(self) -> Condition | Logic:
        start = self.at
        try:
            field = self.field()
            self.expect(".", "delimiter (.)")
            return self.operation(field, in_logic=True)
        except _Failure as failure:
            self.at = start
            try:
                return self.logic_expression()
            except _TooDeep:
                raise
            except _Failure as deeper:
                if max(deeper.position, failure.position) == start:
                    raise _Failure(
                        start,
                        f"{_FIELD_NAME}, negation operator (not) or logic operator (and, or)",
                    ) from None
                # The alternative that read furthest is the one that went wrong, as in Parsec.
                raise (deeper if deeper.position > failure.position else failure) from None

    # order, columns ---------------------------------------------------------------------------

    def order(self, whole: bool) -> list[OrderTerm | RelatedOrder]:
        terms: list[OrderTerm | RelatedOrder] = []
        while True:
            self.spaces()
            start = self.at
            name = self.field_name()
            if self.peek() == "(":
                self.expect("(")
                field = self.field()
                self.expect(")", '")"')
                terms.append(RelatedOrder(name, field, *self.order_modifiers()))
            else:
                self.at = start
                field = self.field()
                direction, nulls = self.order_modifiers()
                terms.append(OrderTerm(field, direction, nulls))
            self.spaces()
            if not self.take(","):
                break
        if whole and not self.done():
            raise _Failure(self.at, '"," or end of input')
        return terms

    def order_modifiers(self) -> tuple[str | None, str | None]:
        direction = nulls = None
        if self.peek() == ".":
            self.at += 1
            for word in ("asc", "desc"):
                if self.take(word):
                    direction = word
                    break
            else:
                for word in ("nullsfirst", "nullslast"):
                    if self.take(word):
                        nulls = word
                        break
                else:
                    raise _Failure(self.at, '"asc", "desc", "nullsfirst" or "nullslast"')
        if direction and self.peek() == ".":
            self.at += 1
            for word in ("nullsfirst", "nullslast"):
                if self.take(word):
                    nulls = word
                    break
            else:
                raise _Failure(self.at, '"nullsfirst" or "nullslast"')
        self.spaces()
        if not self.at_end_of_item():
            raise _Failure(self.at, 'delimiter (.), "," or end of input')
        return direction, nulls

    def columns(self, whole: bool) -> list[str]:
        names = []
        while True:
            self.spaces()
            names.append(self.field_name())
            self.spaces()
            if not self.take(","):
                break
        if whole and not self.done():
            raise _Failure(self.at, '"," or end of input')
        return names
