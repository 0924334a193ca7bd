"""Whether a request changed what a database holds, for tests that must show it did not.

The evidence is the tables' rows: one md5 per table (every ordinary and partitioned table of
every schema, partitions through their parent, rows as text, sorted), so two fingerprints
differ exactly when some row did. Reading them all costs tens of milliseconds, so they are read
only when a write may have happened: a row is written only by a transaction holding an xid,
and if no xid handed out since the mark committed, nothing can differ."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

_TABLES_SQL = """
select n.nspname, c.relname
from pg_catalog.pg_class as c
inner join pg_catalog.pg_namespace as n on c.relnamespace = n.oid
where
    c.relkind in ('r', 'p')
    and not c.relispartition
    and n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast')
    and n.nspname not like 'pg\\_temp\\_%'
    and n.nspname not like 'pg\\_toast\\_temp\\_%'
order by 1, 2
"""
# The next xid to be handed out; reading it hands none out.
_NEXT_XID_SQL = "select pg_snapshot_xmax(pg_current_snapshot())::text::bigint"
_ANY_COMMITTED_SQL = """
select coalesce(bool_or(pg_xact_status(x::text::xid8) = 'committed'), false)
from generate_series(%s::bigint, %s::bigint - 1) as x
"""


@dataclass(frozen=True)
class Mark:
    next_xid: int
    tables: dict[str, str]


class Fingerprints:
    """One connection (a superuser's, so RLS hides nothing) for the life of a test."""

    def __init__(self, database_url: str) -> None:
        self._conn: psycopg.Connection[Any] = psycopg.connect(database_url, autocommit=True)
        tables = self._conn.execute(_TABLES_SQL).fetchall()
        self._query = sql.SQL(" union all ").join(
            sql.SQL(
                "select {name}, md5(coalesce(string_agg(t::text, ',' order by t::text), '')) "
                "from {table} as t"
            ).format(
                name=sql.Literal(f"{schema}.{table}"),
                table=sql.Identifier(schema, table),
            )
            for schema, table in tables
        )
        self._last: Mark | None = None
        self.full_reads = 0  # how often the tables themselves were read

    def mark(self) -> Mark:
        """What the database holds now; the last reading while nothing has committed since."""
        next_xid = self._next_xid()
        if self._last is None or self._committed(self._last.next_xid, next_xid):
            self._last = Mark(next_xid, self._tables())
        return self._last

    def changed_since(self, mark: Mark) -> list[str]:
        """The tables whose rows differ from the mark's."""
        if not self._committed(mark.next_xid, self._next_xid()):
            return []
        now = self.mark()
        names = now.tables.keys() | mark.tables.keys()
        return sorted(name for name in names if now.tables.get(name) != mark.tables.get(name))

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Fingerprints:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _tables(self) -> dict[str, str]:
        self.full_reads += 1
        return dict(self._conn.execute(self._query).fetchall())  # type: ignore[arg-type]

    def _next_xid(self) -> int:
        row = self._conn.execute(_NEXT_XID_SQL).fetchone()
        assert row is not None
        return int(row[0])

    def _committed(self, since: int, until: int) -> bool:
        """Whether a transaction given an xid in [since, until) has committed."""
        if until <= since:
            return False
        row = self._conn.execute(_ANY_COMMITTED_SQL, (since, until)).fetchone()
        assert row is not None
        return bool(row[0])
