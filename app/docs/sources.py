"""Which file of the repository defines an object, for the reference to say where to read it.

Functions and views are read from supabase/functions-sql/ first (their current definition), then
from the newest migration that creates them; a table from the first migration that creates it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from app import paths

_CREATE = re.compile(
    r"\bcreate\s+(?:or\s+replace\s+)?(?:unlogged\s+)?(?:materialized\s+)?"
    r"(function|table|view)\s+(?:if\s+not\s+exists\s+)?([a-z_][a-z0-9_]*)\.([a-z_][a-z0-9_]*)\b",
    re.IGNORECASE,
)


@dataclass
class SourceFiles:
    """`schema.name` by kind (function, table, view) to the file that defines it."""

    defined_in: dict[tuple[str, str], str] = field(default_factory=dict)

    def of(self, kind: str, qualified_name: str) -> str | None:
        return self.defined_in.get((kind, qualified_name))


def read_sources(
    functions_sql: Path = paths.FUNCTIONS_SQL, migrations: Path = paths.MIGRATIONS
) -> SourceFiles:
    sources = SourceFiles()
    # Later assignments win: migrations oldest first, so a function's newest migration, then
    # functions-sql over any migration; a table keeps the migration that first created it.
    for path in sorted(migrations.glob("*.sql")) + sorted(functions_sql.glob("*.sql")):
        for kind, schema, name in _CREATE.findall(path.read_text(encoding="utf-8")):
            key = (kind.lower(), f"{schema}.{name}".lower())
            if key[0] == "table" and key in sources.defined_in:
                continue
            sources.defined_in[key] = paths.display(path)
    return sources
