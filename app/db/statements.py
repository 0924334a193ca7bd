"""Split a SQL file into statements, the way psql and the Supabase CLI do.

Executing statements one at a time is what lets a failed migration be reported by file and
line, and the list is what supabase_migrations.schema_migrations.statements records. The lexer
knows only what can hide a semicolon: quoted strings and identifiers, dollar quotes, comments,
and SQL-standard function bodies (BEGIN ATOMIC ... END).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$")
_WORD = re.compile(r"[A-Za-z_][A-Za-z_0-9$]*")


@dataclass(frozen=True)
class Statement:
    text: str
    offset: int  # character offset of the statement's first character in the file
    line: int  # 1-based line of that character

    def keyword_text(self) -> str:
        """The statement without its leading comments, for recognising what kind it is."""
        return _strip_leading_comments(self.text)

    @property
    def code_line(self) -> int:
        """The line of the first character past the leading comments."""
        skipped = self.text[: len(self.text) - len(self.keyword_text())]
        return self.line + skipped.count("\n")


class UnterminatedSQL(ValueError):
    """A quote, dollar quote, comment or BEGIN ATOMIC block runs to the end of the file."""


def split_statements(sql: str) -> list[Statement]:
    statements: list[Statement] = []
    start = 0
    atomic_depth = 0  # > 0 inside BEGIN ATOMIC, where `;` ends inner statements only
    previous_word = ""
    i = 0
    while i < len(sql):
        skipped_to = _skip_literal_or_comment(sql, i)
        if skipped_to is not None:
            i = skipped_to
        elif (match := _WORD.match(sql, i)) and not _is_word_char(sql, i - 1):
            word = match.group(0).lower()
            atomic_depth += _atomic_step(word, previous_word, atomic_depth)
            previous_word = word
            i = match.end()
        elif sql[i] == ";" and not atomic_depth:
            _append(statements, sql, start, i + 1)
            start = i = i + 1
            previous_word = ""
        else:
            if not sql[i].isspace():
                previous_word = ""
            i += 1
    if atomic_depth:
        raise UnterminatedSQL("a BEGIN ATOMIC block is never closed with END")
    _append(statements, sql, start, len(sql))
    return statements


def _atomic_step(word: str, previous_word: str, depth: int) -> int:
    """BEGIN ATOMIC opens a body; inside it CASE opens and END closes a level."""
    if word == "atomic" and previous_word == "begin":
        return 1
    if depth and word == "case":
        return 1
    if depth and word == "end":
        return -1
    return 0


def _skip_literal_or_comment(sql: str, i: int) -> int | None:
    """Where the comment, quoted string, identifier or dollar quote starting at i ends."""
    char = sql[i]
    if char == "-" and sql.startswith("--", i):
        end = sql.find("\n", i)
        return len(sql) if end < 0 else end + 1
    if char == "/" and sql.startswith("/*", i):
        return _skip_block_comment(sql, i)
    if char == "'":
        escapes = i > 0 and sql[i - 1] in "eE" and not _is_word_char(sql, i - 2)
        return _skip_quoted(sql, i, "'", backslash_escapes=escapes)
    if char == '"':
        return _skip_quoted(sql, i, '"', backslash_escapes=False)
    if char == "$" and (match := _DOLLAR_TAG.match(sql, i)) and not _is_word_char(sql, i - 1):
        closing = sql.find(match.group(0), match.end())
        if closing < 0:
            raise UnterminatedSQL(
                f"dollar quote {match.group(0)} opened at line {_line_of(sql, i)} is never closed"
            )
        return closing + len(match.group(0))
    return None


def _append(statements: list[Statement], sql: str, start: int, end: int) -> None:
    chunk = sql[start:end]
    stripped = chunk.strip()
    if not stripped or stripped == ";" or _only_comments(stripped):
        return
    leading = len(chunk) - len(chunk.lstrip())
    offset = start + leading
    statements.append(Statement(stripped, offset, _line_of(sql, offset)))


def _only_comments(text: str) -> bool:
    return not _strip_leading_comments(text).strip("; \t\r\n")


def _strip_leading_comments(text: str) -> str:
    i = 0
    while i < len(text):
        if text[i].isspace():
            i += 1
        elif text.startswith("--", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end + 1
        elif text.startswith("/*", i):
            i = _skip_block_comment(text, i)
        else:
            break
    return text[i:]


def _skip_block_comment(sql: str, i: int) -> int:
    depth = 0  # Postgres block comments nest
    start = i
    while i < len(sql):
        if sql.startswith("/*", i):
            depth += 1
            i += 2
        elif sql.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    raise UnterminatedSQL(f"comment opened at line {_line_of(sql, start)} is never closed")


def _skip_quoted(sql: str, i: int, quote: str, *, backslash_escapes: bool) -> int:
    start = i
    i += 1
    while i < len(sql):
        char = sql[i]
        if backslash_escapes and char == "\\":
            i += 2
        elif char == quote:
            if sql.startswith(quote * 2, i):
                i += 2
            else:
                return i + 1
        else:
            i += 1
    raise UnterminatedSQL(f"{quote} opened at line {_line_of(sql, start)} is never closed")


def _is_word_char(sql: str, i: int) -> bool:
    return i >= 0 and (sql[i].isalnum() or sql[i] in "_$")


def _line_of(sql: str, offset: int) -> int:
    return sql.count("\n", 0, offset) + 1
