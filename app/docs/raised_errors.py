"""Which SQLSTATEs an RPC can raise, found by reading text, not by running it.

Three sources, each named in the reference: the codes its `comment on function` text states (a
PTxyz, or a code Postgres knows, such as 22023 or 42501); the `errcode = '...'` and
`raise sqlstate '...'` of its own body; and the same in every function of ours it can reach, that
is every `schema.name(` of a function in the API or in `private` its body names, and every
trigger function on a table it writes (`insert into`, `update`, `delete from`, `merge into`,
`truncate` of a schema-qualified table), followed to the end.

What this cannot see: a function reached through dynamic SQL (`execute format(...)`), errors
Postgres raises by itself (a CHECK or unique violation, a cast, a timeout) unless the comment
states them, and codes passed in a variable. Branches that never raise are counted all the same:
the list is what the text can raise, a superset of what a call will.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import psycopg.errors

from app.docs.catalog import Catalog, Function

_RAISED = re.compile(
    r"(?:errcode\s*=\s*|raise\s+(?:exception\s+)?sqlstate\s+)'([0-9A-Z]{5})'", re.IGNORECASE
)
_MENTIONED = re.compile(r"\b(PT\d{3}|[0-9A-Z]{5})\b")
_CALLED = re.compile(r"\b([a-z_][a-z0-9_]*)\.([a-z_][a-z0-9_]*)\s*\(", re.IGNORECASE)
_WRITTEN = re.compile(
    r"\b(insert\s+into|update|delete\s+from|merge\s+into|truncate(?:\s+table)?)\s+"
    r"(?:only\s+)?([a-z_][a-z0-9_]*)\.([a-z_][a-z0-9_]*)",
    re.IGNORECASE,
)
_UPSERT = re.compile(r"\bdo\s+update\b", re.IGNORECASE)
_EVENTS = {
    "insert": {"insert"},
    "update": {"update"},
    "delete": {"delete"},
    "merge": {"insert", "update", "delete"},
    "truncate": {"truncate"},
}
COMMENT = "comment"
BODY = "body"


@dataclass(frozen=True)
class RaisedError:
    sqlstate: str
    found_in: tuple[str, ...]  # COMMENT, BODY, or the "schema.name" of a function reached

    @property
    def condition(self) -> str:
        """Postgres' condition name (invalid_parameter_value), or PostgREST's PTxyz convention."""
        if is_postgrest_status(self.sqlstate):
            return f"HTTP {self.sqlstate[2:]} through PostgREST"
        return _condition_name(self.sqlstate)


def raised_errors(function: Function, catalog: Catalog) -> tuple[RaisedError, ...]:
    sources: dict[str, set[str]] = {}
    for code in _mentioned(function.comment):
        sources.setdefault(code, set()).add(COMMENT)
    for code in _RAISED.findall(function.definition):
        sources.setdefault(code.upper(), set()).add(BODY)
    for reached in _reached(function, catalog):
        for code in _RAISED.findall(reached.definition):
            sources.setdefault(code.upper(), set()).add(reached.qualified_name)
    return tuple(
        RaisedError(code, tuple(sorted(found, key=_source_order)))
        for code, found in sorted(sources.items())
    )


def is_postgrest_status(sqlstate: str) -> bool:
    return sqlstate.startswith("PT") and sqlstate[2:].isdigit()


def _mentioned(comment: str) -> Iterable[str]:
    for code in _MENTIONED.findall(comment):
        if is_postgrest_status(code) or _condition_name(code):
            yield code


def _condition_name(sqlstate: str) -> str:
    try:
        error_class = psycopg.errors.lookup(sqlstate)
    except KeyError:
        return ""
    # psycopg names classes after the condition: InvalidParameterValue, invalid_parameter_value.
    return re.sub(r"(?<!^)(?=[A-Z])", "_", error_class.__name__).lower()


def _reached(function: Function, catalog: Catalog) -> list[Function]:
    by_name: dict[str, list[Function]] = {}
    for candidate in catalog.functions:
        by_name.setdefault(candidate.qualified_name, []).append(candidate)
    seen = {function.qualified_name}
    reached: list[Function] = []
    pending = [function]
    while pending:
        current = pending.pop()
        for name in sorted(_callees(current.definition, catalog)):
            if name in seen or name not in by_name:
                continue
            seen.add(name)
            reached.extend(by_name[name])
            pending.extend(by_name[name])
    return reached


def _callees(definition: str, catalog: Catalog) -> set[str]:
    called = {f"{schema}.{name}".lower() for schema, name in _CALLED.findall(definition)}
    upserts = _UPSERT.search(definition) is not None
    for verb, schema, table in _WRITTEN.findall(definition):
        events = _EVENTS[verb.split()[0].lower()]
        if events == {"insert"} and upserts:
            events = {"insert", "update"}
        called.update(
            trigger.function
            for trigger in catalog.triggers.get(f"{schema}.{table}".lower(), ())
            if trigger.events & events
        )
    return called


def _source_order(source: str) -> tuple[int, str]:
    return ({COMMENT: 0, BODY: 1}.get(source, 2), source)
