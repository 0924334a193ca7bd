"""One statement on a fresh connection, for tests that set up or check a database directly."""

from __future__ import annotations

from typing import Any

import psycopg


def query(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Runs `sql` in its own transaction; returns its rows, or [] for a statement without."""
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(sql, params)  # type: ignore[arg-type]  # tests' own SQL
        return cursor.fetchall() if cursor.description else []
