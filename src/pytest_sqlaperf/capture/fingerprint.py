"""Statement fingerprints: a tokenizer-based SQL normalizer, its display form and its cache.

Two statements get the same fingerprint when they differ only in values, parameter style, casts on
parameters, IN-list length, VALUES row count, layout, keyword case, comments or savepoint names.
"""

from __future__ import annotations

import functools
import hashlib
import re
from typing import NamedTuple

__all__ = ["Shape", "normalize", "shape_of", "statement_kind"]

# One alternative per token type, the commonest first, each after its leading whitespace (which
# findall would otherwise try every alternative on); `\S` catches any other character.  Group 2
# exists for the dollar-quote tag back-reference.
# Operators stop before `%(` and `%s`, which start pyformat parameters (`name=%(name)s`).
_TOKEN = re.compile(
    r"""\s*(
      (?!__\[|[EeBbXxNn]'|[Uu]&')[^\W\d][\w$]*
    | [(),;\[\]]
    | \.(?!\d)
    | ::
    | \$\d+
    | %\([^)]*\)s | %s
    | "(?:[^"]|"")*"
    | '(?:[^']|'')*'
    | [Ee]'(?:[^'\\]|\\.|'')*'
    | (?:[BbXxNn]|[Uu]&)'(?:[^']|'')*'
    | __\[POSTCOMPILE_[^\]]*\]
    | (?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?
    | --[^\n]*
    | /\*
    | \$((?:[^\W\d]\w*)?)\$[\s\S]*?\$\2\$
    | :[^\W\d]\w*
    | (?:[+*<>=~!@\#^&|`?]|-(?!-)|/(?!\*)|%(?![(s]))+
    | \S
    )""",
    re.VERBOSE,
)

# Displayed upper case; every other unquoted word is an identifier and displayed lower case.
# Type names are upper-cased by position (after `::`, in CAST(... AS type)) instead, so that
# columns called `text` or `date` keep their case.
_KEYWORDS = frozenset(
    """
    ABORT ALL ALTER ANALYZE AND ANY ARRAY AS ASC ASYMMETRIC AT BEGIN BETWEEN BOTH BY CALL CASCADE
    CASE CAST CHECK COLLATE COLUMN COMMENT COMMIT CONCURRENTLY CONFLICT CONSTRAINT COPY CREATE
    CROSS CURRENT CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER DEFAULT DEFERRABLE
    DELETE DESC DISTINCT DO DROP ELSE END ESCAPE EXCEPT EXISTS EXPLAIN FALSE FETCH FILTER FIRST
    FOR FOREIGN FROM FULL GRANT GROUP HAVING ILIKE IN INDEX INNER INSERT INTERSECT INTERVAL INTO
    IS ISNULL ISOLATION JOIN KEY LAST LATERAL LEFT LEVEL LIKE LIMIT LOCAL LOCALTIME
    LOCALTIMESTAMP LOCK LOCKED MATERIALIZED MERGE NATURAL NEXT NO NOT NOTHING NOTNULL NOWAIT NULL
    NULLS OF OFFSET ON ONLY OR ORDER OUTER OVER PARTITION PRECISION PRIMARY RECURSIVE REFERENCES
    RELEASE RESET RETURNING REVOKE RIGHT ROLLBACK ROW ROWS SAVEPOINT SELECT SESSION_USER SET SHARE
    SHOW SIMILAR SKIP SOME START SYMMETRIC TABLE TABLESAMPLE THEN TIME TO TRANSACTION TRUE TRUNCATE
    UNION UNIQUE UPDATE USER USING VACUUM VALUES VARYING WHEN WHERE WINDOW WITH WITHOUT WORK ZONE
    """.split()  # noqa: SIM905  a word block reads better than 150 quoted strings
)

_KIND_OF_VERB = {
    verb: kind
    for kind, verbs in (
        ("select", "SELECT VALUES TABLE"),
        ("insert", "INSERT"),
        ("update", "UPDATE"),
        ("delete", "DELETE"),
        ("tcl", "BEGIN START COMMIT END ROLLBACK ABORT SAVEPOINT RELEASE"),
        ("ddl", "CREATE ALTER DROP TRUNCATE COMMENT GRANT REVOKE"),
    )
    for verb in verbs.split()
}
_MAIN_VERBS = frozenset({"SELECT", "VALUES", "TABLE", "INSERT", "UPDATE", "DELETE", "MERGE"})

_PUNCTUATION = frozenset("(),;[].:")
_ENDS_VALUE = frozenset(
    {"?", ")", "]", "END", "NULL", "TRUE", "FALSE", "CURRENT_DATE", "CURRENT_TIME"}
    | {"CURRENT_TIMESTAMP", "LOCALTIME", "LOCALTIMESTAMP"}
)
_SAVEPOINT_LEADS = frozenset({"SAVEPOINT", "TO", "RELEASE"})
_VALUE_LIST = frozenset({"?", ",", "(", ")"})
# PostgreSQL drops a trailing + or - from a multi-character operator (`=-1` is `=` then `-1`)
# unless the operator contains one of these.
_OPERATOR_KEEPS_SIGN = frozenset("~!@#%^&|`?")
_NO_SPACE_BEFORE = frozenset({",", ")", ".", "::", "[", "]", ";"})
_NO_SPACE_AFTER = frozenset({"(", ".", "::", "["})
_CALLS_WITHOUT_SPACE = frozenset({"CAST", "VARCHAR", "NUMERIC", "TIMESTAMP", "TIME"})
_TABLE_INTRODUCERS = frozenset({"INTO", "TABLE", "REFERENCES"})

# Test suites run a few hundred to a few thousand distinct statement strings (each IN-list length
# is one); 4096 keeps them all while bounding memory to a few MB of SQL text.
_CACHE_SIZE = 4096


class Shape(NamedTuple):
    """The shape of one SQL statement.

    A named tuple: the C listener reads its fields by index (see _speedups.c).
    """

    fingerprint: str
    """Stable id of the shape: 16 hex characters, a digest of :attr:`display_sql`."""
    display_sql: str
    """Normalized text for humans: values as ``?``, value lists as ``(...)``."""
    kind: str
    """One of ``select``, ``insert``, ``update``, ``delete``, ``ddl``, ``tcl``, ``other``."""


@functools.lru_cache(maxsize=_CACHE_SIZE)
def shape_of(sql: str) -> Shape:
    """Return the shape of *sql*, cached by the raw SQL string."""
    tokens = _normalized_tokens(sql)
    display_sql = _render(tokens)
    fingerprint = hashlib.blake2b(display_sql.encode(), digest_size=8).hexdigest()
    return Shape(fingerprint=fingerprint, display_sql=display_sql, kind=_kind(tokens))


def normalize(sql: str) -> str:
    """Return the normalized text of *sql* (uncached); :func:`shape_of` hashes this."""
    return _render(_normalized_tokens(sql))


def statement_kind(sql: str) -> str:
    """Return the kind of *sql*: the main statement's verb, classified (shares the shape cache)."""
    return shape_of(sql).kind


def _raw_tokens(sql: str) -> list[str]:
    if "--" not in sql and "/*" not in sql:
        return [token for token, _ in _TOKEN.findall(sql)]
    tokens: list[str] = []
    position = 0
    while match := _TOKEN.search(sql, position):
        token = match.group(1)
        if token.startswith("/*"):
            position = _block_comment_end(sql, match.start(1))
        else:
            position = match.end()
            if not token.startswith("--"):
                tokens.append(token)
    return tokens


def _block_comment_end(sql: str, start: int) -> int:
    # PostgreSQL block comments nest, which no regular expression can match.
    depth = 0
    position = start
    while position < len(sql):
        pair = sql[position : position + 2]
        if pair == "/*":
            depth += 1
            position += 2
        elif pair == "*/":
            depth -= 1
            position += 2
            if depth == 0:
                return position
        else:
            position += 1
    return position


def _normalized_tokens(sql: str) -> list[str]:
    raw = _raw_tokens(sql)
    out: list[str] = []
    append = out.append
    open_parens: list[int] = []  # indexes in `out` of the "(" not closed yet
    last_row = (-1, -1)  # out[start:end] of the last kept VALUES row
    count = len(raw)
    index = 0
    while index < count:
        token = raw[index]
        index += 1
        first = token[0]
        previous = out[-1] if out else ""

        if first.isalpha() or first == "_":
            if token[-1] in "']":  # E'..' strings, __[POSTCOMPILE_x] lists
                _append_value(out)
                continue
            upper = token.upper()
            if previous in _SAVEPOINT_LEADS and _is_savepoint_name(out, upper):
                append("?")
            elif previous == "::" or (
                previous == "AS" and open_parens and out[open_parens[-1] - 1] == "CAST"
            ):
                append(upper)
            elif upper not in _KEYWORDS or previous == ".":
                append(token.lower())
            elif upper == "NULL":
                if previous in ("IS", "NOT"):
                    append(upper)
                else:
                    _append_value(out)
            elif upper == "ASC":
                continue  # the default order; `ORDER BY x ASC` is `ORDER BY x`
            elif upper == "AS" and previous == "?" and out[-3:-1] == ["CAST", "("]:
                end = _type_end(raw, index)
                if end < count and raw[end] == ")":
                    del out[-3:]
                    open_parens.pop()
                    _append_value(out)
                    index = end + 1
                else:
                    append(upper)
            else:
                append(upper)
        elif token in _PUNCTUATION:
            if token == "(":
                open_parens.append(len(out))
                append(token)
            elif token == ")":
                if not open_parens:
                    append(token)
                    continue
                start = open_parens.pop()
                before = out[start - 1] if start else ""
                if before == "IN" and all(t in _VALUE_LIST for t in out[start + 1 :]):
                    del out[start:]
                    append("(...)")
                    continue
                append(token)
                if before == "VALUES":
                    last_row = (start, len(out))
                elif before == "," and last_row[1] == start - 1:
                    if out[last_row[0] : last_row[1]] == out[start:]:
                        del out[start - 1 :]  # a repeat of the row before: one shape, any count
                    else:
                        last_row = (start, len(out))
            elif token == "]":
                if not _collapse_array(out):
                    append(token)
            elif token == "." and previous.isupper() and previous[0] != '"':
                out[-1] = previous.lower()  # a keyword-like word qualifying a name is a name
                append(token)
            else:
                append(token)
        elif first == "'" or first.isdigit() or (first == "." and len(token) > 1):
            _append_value(out)
        elif first == '"':
            if previous in _SAVEPOINT_LEADS and _is_savepoint_name(out, token):
                append("?")
            else:
                append(token)
        elif first == "$":
            if len(token) > 1:
                _append_value(out)
            else:
                append(token)
        elif token == "%s" or token.startswith("%(") or token == "?":
            _append_value(out)
        elif first == ":":
            if token == "::":
                if previous == "?":  # a cast on a value says nothing about the statement's shape
                    index = _type_end(raw, index)
                else:
                    append(token)
            elif len(token) > 1:
                _append_value(out)
            else:
                append(token)
        else:
            _append_operator(out, token)
    if out and out[-1] == ";":
        out.pop()
    return out


def _append_value(out: list[str]) -> None:
    # A sign directly before a value is part of the value, unless it follows a value (`a - 1`).
    if out and out[-1] in ("-", "+"):
        before = out[-2] if len(out) > 1 else ""
        if not (before in _ENDS_VALUE or _is_name(before)):
            out[-1] = "?"
            return
    out.append("?")


def _is_name(token: str) -> bool:
    """Whether *token* (normalized) is an identifier: quoted, or a word not shown as keyword."""
    first = token[:1]
    return first == '"' or ((first.isalpha() or first == "_") and not token.isupper())


def _append_operator(out: list[str], token: str) -> None:
    if "%" in token:
        token = token.replace("%%", "%")  # pyformat's escaped modulo is asyncpg's plain one
    elif token == "<>":
        token = "!="  # one operator to PostgreSQL's lexer
    if len(token) > 1 and token[-1] in "+-" and _OPERATOR_KEEPS_SIGN.isdisjoint(token):
        stem = token.rstrip("+-")
        if stem:
            out.append(stem)
        out.extend(token[len(stem) :])
    else:
        out.append(token)


def _is_savepoint_name(out: list[str], word: str) -> bool:
    previous = out[-1]
    if previous == "SAVEPOINT":
        return True
    if word == "SAVEPOINT":
        return False
    if previous == "TO":
        return out[0] == "ROLLBACK"
    return len(out) == 1  # RELEASE name


def _collapse_array(out: list[str]) -> bool:
    """Turn ``ARRAY[?, ?, ...]`` at the end of *out* into one value; report whether it did."""
    index = len(out) - 1
    if index < 0 or out[index] != "?":
        return False
    while index >= 2 and out[index - 1] == "," and out[index - 2] == "?":
        index -= 2
    if index >= 2 and out[index - 1] == "[" and out[index - 2] == "ARRAY":
        del out[index - 2 :]
        _append_value(out)
        return True
    return False


def _type_end(raw: list[str], index: int) -> int:
    """Return the index just past the type name starting at ``raw[index]``."""
    count = len(raw)
    if index >= count:
        return index
    name = raw[index].upper()
    index += 1
    while index + 1 < count and raw[index] == ".":
        name = raw[index + 1].upper()
        index += 2
    if index < count:
        following = raw[index].upper()
        if (name == "DOUBLE" and following == "PRECISION") or (
            name in ("CHARACTER", "CHAR", "BIT") and following == "VARYING"
        ):
            index += 1
    if index < count and raw[index] == "(":
        index = _group_end(raw, index, "(", ")")
    if name in ("TIMESTAMP", "TIME") and [t.upper() for t in raw[index : index + 3]] in (
        ["WITH", "TIME", "ZONE"],
        ["WITHOUT", "TIME", "ZONE"],
    ):
        index += 3
    while index < count and raw[index] == "[":
        index = _group_end(raw, index, "[", "]")
    return index


def _group_end(raw: list[str], index: int, opening: str, closing: str) -> int:
    depth = 0
    for position in range(index, len(raw)):
        if raw[position] == opening:
            depth += 1
        elif raw[position] == closing:
            depth -= 1
            if depth == 0:
                return position + 1
    return len(raw)


def _kind(tokens: list[str]) -> str:
    verb = next((t.upper() for t in tokens if t != "("), "")
    if verb == "WITH":
        depth = 0
        for token in tokens:
            if token == "(":
                depth += 1
            elif token == ")":
                depth -= 1
            elif depth == 0 and token in _MAIN_VERBS:
                return _KIND_OF_VERB.get(token, "other")
        return "other"
    return _KIND_OF_VERB.get(verb, "other")


def _render(tokens: list[str]) -> str:
    parts: list[str] = []
    previous = before_previous = ""
    for token in tokens:
        if parts and not (
            token in _NO_SPACE_BEFORE
            or previous in _NO_SPACE_AFTER
            or (token == "(" and _is_callee(previous, before_previous))
        ):
            parts.append(" ")
        parts.append(token)
        before_previous, previous = previous, token
    return "".join(parts)


def _is_callee(name: str, before: str) -> bool:
    if name in _CALLS_WITHOUT_SPACE:
        return True
    return _is_name(name) and before not in _TABLE_INTRODUCERS  # `INTO users (name)` is no call
