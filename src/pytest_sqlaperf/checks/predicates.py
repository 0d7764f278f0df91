"""Predicates as EXPLAIN (VERBOSE) prints them, split into conjuncts and classified by the kind of
index that could serve each: btree equality or range, LIKE prefix, trigram, GIN (no pytest here)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(
    r"""
    (?P<string>'(?:[^']|'')*')
    |(?P<ident>"(?:[^"]|"")*")
    |(?P<param>\$\d+)
    |(?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
    |(?P<word>[A-Za-z_][A-Za-z0-9_$]*)
    |(?P<cast>::)
    |(?P<punct>[(),\[\].])
    |(?P<op>[-+*/<>=~!@\#%^&|`?]+)
    |(?P<space>\s+)
    |(?P<other>.)
    """,
    re.VERBOSE,
)

EQUALITY = "eq"
RANGE = "range"
PREFIX = "prefix"  # LIKE 'abc%': a btree (text_pattern_ops unless the collation is C)
TRIGRAM = "trigram"  # LIKE '%abc%', ILIKE, regular expressions: GIN with pg_trgm
GIN = "gin"  # jsonb/array containment and existence, full-text match
NULL = "null"  # IS NULL: a btree serves it
JOIN = "join"  # equality with a column of another table
FLAG = "flag"  # a boolean column, NOT col, IS NOT NULL: material for a partial index
OR = "or"
OTHER = "other"  # nothing an index serves (<>, NOT LIKE, SubPlan, ...)

INDEXABLE = frozenset({EQUALITY, RANGE, PREFIX, TRIGRAM, GIN, NULL, JOIN})

_RANGE_OPERATORS = frozenset({"<", ">", "<=", ">="})
_TRIGRAM_OPERATORS = frozenset({"~~*", "~", "~*"})
_GIN_OPERATORS = frozenset({"@>", "<@", "?", "?|", "?&", "@?", "@@", "&&"})
# Casts that keep a btree on the column usable (varchar and text are binary compatible).
_TEXT_TYPES = frozenset({"text", "varchar", "bpchar", "name", "character"})
_TEXT_CAST = re.compile(r"\(([A-Za-z_][A-Za-z0-9_$]*)\)::(?:text|varchar|bpchar)\b")


@dataclass(frozen=True)
class Token:
    kind: str
    text: str


@dataclass(frozen=True)
class Conjunct:
    """One ANDed part of a predicate, seen from one table (its alias in the plan).

    ``text`` names the table's columns without the alias (as an index's WHERE would);
    ``column`` is set when the table's side is a plain column, ``expression`` when it is an
    expression such as ``lower(email)``; ``parts`` holds the disjuncts of an OR.
    """

    kind: str
    text: str
    column: str | None = None
    expression: str | None = None
    parts: tuple[Conjunct, ...] = ()

    @property
    def key(self) -> str | None:
        """What an index would be built on: the column, or the expression."""
        return self.column if self.column is not None else self.expression

    @property
    def indexable(self) -> bool:
        if self.kind == OR:
            return bool(self.parts) and all(part.indexable for part in self.parts)
        return self.kind in INDEXABLE and self.key is not None


def tokenize(text: str) -> list[Token]:
    """The tokens of a deparsed expression, whitespace left out."""
    tokens = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "other"
        if kind != "space":
            tokens.append(Token(kind, match.group()))
    return tokens


def _name(token: Token) -> str:
    return token.text[1:-1].replace('""', '"') if token.kind == "ident" else token.text


def _is_name(token: Token) -> bool:
    return token.kind in ("word", "ident")


def column_refs(tokens: list[Token]) -> list[tuple[str, str]]:
    """``(qualifier, column)`` of every qualified column reference (VERBOSE qualifies them all)."""
    refs = []
    for i in range(len(tokens) - 2):
        first, dot, second = tokens[i], tokens[i + 1], tokens[i + 2]
        if not (_is_name(first) and dot.text == "." and _is_name(second)):
            continue
        before = tokens[i - 1].text if i > 0 else ""
        after = tokens[i + 3].text if i + 3 < len(tokens) else ""
        # A schema-qualified function or type is not a column.
        if before in ("::", ".") or after == "(":
            continue
        refs.append((_name(first), _name(second)))
    return refs


def render(tokens: list[Token], drop_qualifier: str | None = None) -> str:
    """Tokens back to text; ``alias.col`` becomes ``col`` when the alias is ``drop_qualifier``."""
    out: list[str] = []
    skip = 0
    for i, token in enumerate(tokens):
        if skip:
            skip -= 1
            continue
        if (
            drop_qualifier is not None
            and _is_name(token)
            and _name(token) == drop_qualifier
            and i + 2 < len(tokens)
            and tokens[i + 1].text == "."
        ):
            skip = 1
            continue
        out.append(_spaced(out, token))
    return "".join(out).strip()


def _spaced(out: list[str], token: Token) -> str:
    previous = out[-1] if out else ""
    tight_after = previous.endswith(("(", "[", ".", "::")) or not previous
    tight_before = token.text in (")", "]", ",", ".", "::", "[") or (
        token.text == "(" and previous[-1:].isalnum()
    )
    if tight_after or tight_before:
        return token.text
    return " " + token.text


def _closing(tokens: list[Token], start: int) -> int:
    depth = 0
    for i in range(start, len(tokens)):
        if tokens[i].text in ("(", "["):
            depth += 1
        elif tokens[i].text in (")", "]"):
            depth -= 1
            if depth == 0:
                return i
    return len(tokens) - 1


def _unwrap(tokens: list[Token]) -> list[Token]:
    while len(tokens) >= 2 and tokens[0].text == "(" and _closing(tokens, 0) == len(tokens) - 1:
        tokens = tokens[1:-1]
    return tokens


def _split_top(tokens: list[Token], word: str) -> list[list[Token]]:
    parts: list[list[Token]] = [[]]
    depth = 0
    for token in tokens:
        if token.text in ("(", "["):
            depth += 1
        elif token.text in (")", "]"):
            depth -= 1
        if depth == 0 and token.kind == "word" and token.text.upper() == word:
            parts.append([])
        else:
            parts[-1].append(token)
    return [part for part in parts if part]


def conjuncts(text: str) -> list[list[Token]]:
    """The ANDed parts of a predicate, each as tokens."""
    return [_unwrap(part) for part in _split_top(_unwrap(tokenize(text)), "AND")]


def classify_all(text: str | None, alias: str) -> list[Conjunct]:
    """Every conjunct of ``text`` classified for the table known as ``alias`` in the plan."""
    if not text:
        return []
    return [classify(part, alias) for part in conjuncts(text)]


def _plain_column(tokens: list[Token], alias: str) -> str | None:
    """The column when ``tokens`` are ``alias.col``, maybe in parentheses and cast to text."""
    tokens = _unwrap(tokens)
    while len(tokens) >= 3 and tokens[-2].text == "::" and tokens[-1].text in _TEXT_TYPES:
        tokens = _unwrap(tokens[:-2])
    if len(tokens) == 3 and column_refs(tokens) == [(alias, _name(tokens[2]))]:
        return _name(tokens[2])
    return None


def classify(tokens: list[Token], alias: str) -> Conjunct:
    """What kind of index could serve one conjunct, seen from the table known as ``alias``."""
    tokens = _unwrap(tokens)
    text = render(tokens, drop_qualifier=alias)
    disjuncts = _split_top(tokens, "OR")
    if len(disjuncts) > 1:
        parts = tuple(classify(part, alias) for part in disjuncts)
        return Conjunct(OR, text, parts=parts)
    if tokens and tokens[0].kind == "word" and tokens[0].text.upper() == "NOT":
        column = _plain_column(tokens[1:], alias)
        return Conjunct(FLAG, text, column=column) if column else Conjunct(OTHER, text)
    column = _plain_column(tokens, alias)
    if column is not None:
        return Conjunct(FLAG, text, column=column)
    if tokens and tokens[0].kind == "word" and tokens[0].text.upper() == "ANY":
        inner = classify(tokens[1:], alias)
        return inner if inner.kind in (EQUALITY, JOIN) else Conjunct(OTHER, text)
    words = [token.text.upper() if token.kind == "word" else "" for token in tokens]
    if "IS" in words:
        return _classify_is(tokens, words.index("IS"), alias, text)
    return _classify_operator(tokens, alias, text)


def _classify_is(tokens: list[Token], position: int, alias: str, text: str) -> Conjunct:
    side = tokens[:position]
    rest = " ".join(token.text.upper() for token in tokens[position + 1 :])
    column = _plain_column(side, alias)
    expression = None if column else _own_expression(side, alias)
    if rest == "NULL" and (column or expression):
        return Conjunct(NULL, text, column=column, expression=expression)
    if column is not None:
        return Conjunct(FLAG, text, column=column)
    return Conjunct(OTHER, text)


def _top_operator(tokens: list[Token]) -> int | None:
    depth = 0
    for i, token in enumerate(tokens):
        if token.text in ("(", "["):
            depth += 1
        elif token.text in (")", "]"):
            depth -= 1
        elif depth == 0 and token.kind == "op":
            return i
    return None


def own_key(tokens: list[Token], alias: str) -> tuple[str | None, str | None]:
    """``(column, expression)``: what an index on ``alias`` would be built on to serve
    ``tokens``; both None when they involve other tables or no column at all."""
    column = _plain_column(tokens, alias)
    return column, (None if column else _own_expression(tokens, alias))


def _own_expression(tokens: list[Token], alias: str) -> str | None:
    """The unqualified text of an expression over ``alias``'s columns only, else None."""
    refs = column_refs(tokens)
    if not refs or any(qualifier != alias for qualifier, _ in refs):
        return None
    if any(token.kind == "word" and token.text == "SubPlan" for token in tokens):
        return None
    # lower((title)::text) is lower(title) on a varchar column: the index stores it either way.
    return _TEXT_CAST.sub(r"\1", render(_unwrap(tokens), drop_qualifier=alias))


def _classify_operator(tokens: list[Token], alias: str, text: str) -> Conjunct:
    position = _top_operator(tokens)
    if position is None or position == 0:
        return Conjunct(OTHER, text)
    operator = tokens[position].text
    left, right = tokens[:position], tokens[position + 1 :]
    if right and right[0].kind == "word" and right[0].text.upper() in ("ANY", "ALL"):
        if right[0].text.upper() == "ALL" or operator != "=":
            return Conjunct(OTHER, text)
        right = right[1:]
    left_refs, right_refs = column_refs(left), column_refs(right)
    left_own = any(q == alias for q, _ in left_refs)
    right_own = any(q == alias for q, _ in right_refs)
    if left_own and not right_own:
        side, value, value_refs = left, right, right_refs
    elif right_own and not left_own:
        side, value, value_refs = right, left, left_refs
    else:
        return Conjunct(OTHER, text)
    column = _plain_column(side, alias)
    expression = None if column else _own_expression(side, alias)
    if column is None and expression is None:
        return Conjunct(OTHER, text)
    kind = _operator_kind(operator, value)
    if value_refs:
        # Compared with another table's column: an index serves it as a join key (equality).
        kind = JOIN if kind == EQUALITY else OTHER
    return Conjunct(kind, text, column=column, expression=expression)


def _operator_kind(operator: str, value: list[Token]) -> str:
    if operator == "=":
        return EQUALITY
    if operator in _RANGE_OPERATORS:
        return RANGE
    if operator == "~~":
        pattern = next((_name(token) for token in value if token.kind == "string"), None)
        if pattern is not None and pattern[1:2] not in ("%", "_", "'", ""):
            return PREFIX
        return TRIGRAM
    if operator in _TRIGRAM_OPERATORS:
        return TRIGRAM
    if operator in _GIN_OPERATORS:
        return GIN
    return OTHER


_NOT_SIGNIFICANT = re.compile(r"\s+|[()]|::(?:text|character varying|varchar|bpchar)\b")


def same_key(first: str, second: str) -> bool:
    """Whether two index keys are the same column or expression, however printed (EXPLAIN and
    pg_get_indexdef differ in parentheses and in casts of varchar to text)."""
    return first == second or _NOT_SIGNIFICANT.sub("", first) == _NOT_SIGNIFICANT.sub("", second)


_STRING = re.compile(r"'(?:[^']|'')*'")
_NUMBER = re.compile(r"(?<![\w$.])(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)(?![\w.])")
_PLAN_NUMBER = re.compile(r"(?:SubPlan|InitPlan|CTE)\s+$")


def mask_values(text: str) -> str:
    """``text`` with literal values replaced by ``?`` (plans show bound parameters as literals,
    and parameters are never written to files unless the user asks)."""
    text = _STRING.sub("'?'", text)

    def number(match: re.Match[str]) -> str:
        if _PLAN_NUMBER.search(text[: match.start()]):
            return match.group()
        return "?"

    return _NUMBER.sub(number, text)
