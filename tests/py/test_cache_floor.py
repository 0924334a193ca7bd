"""The cache bench's floor (bench/cache_floor.sql) does get_cache's and set_cache's work: it reads
the value get_cache returns for a fresh entry and null for a key with none, its counted form
counts once per call, and it writes the row set_cache writes, new or replaced (all but the
counter the row names). Should either RPC come to do other work, the floor would no longer be its
floor, and this fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

FLOOR = Path(__file__).parents[2] / "bench" / "cache_floor.sql"
VALUE = {"km": 4.2, "minutes": 11, "fare": 1500}
ROW = (
    "select value, cache_type, tags, expires_at, updated_at from public.cache_entries"
    " where key = %s"
)


def one(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...]) -> Any:
    row = conn.execute(sql, params).fetchone()  # type: ignore[arg-type]  # our own statements
    assert row is not None
    return row[0] if len(row) == 1 else tuple(row)


def test_the_floor_reads_what_get_cache_returns(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(FLOOR.read_text())  # type: ignore[arg-type]  # our own file
        conn.execute(
            "select public.set_cache('route:1', %s, 3600, 'routes', array['driver:1'])",
            (Jsonb(VALUE),),
        )
        for key in ("route:1", "route:absent"):
            by_rpc = one(conn, "select public.get_cache(%s, 'routes')", (key,))
            assert one(conn, "select public.bench_floor_get(%s)", (key,)) == by_rpc
        assert by_rpc is None
        for counter in ("public.bench_count_logged", "public.bench_count_unlogged"):
            for _ in range(3):
                assert (
                    one(conn, "select public.bench_floor_get_counted('route:1', %s)", (counter,))
                    == VALUE
                )
            assert one(conn, "select pg_sequence_last_value(%s::regclass)", (counter,)) == 3


def test_the_floor_writes_the_row_set_cache_writes(database_url: str) -> None:
    args = (Jsonb(VALUE), 3600, "routes", ["driver:1"])
    replacing = (Jsonb({"km": 5}), 60, "fares", ["zone:kigali", "driver:2"])
    with psycopg.connect(database_url) as conn:
        conn.execute(FLOOR.read_text())  # type: ignore[arg-type]  # our own file
        # One transaction: now() is the same for both writers.
        for replaced in (args, replacing):
            by_rpc = one(conn, "select public.set_cache('by-rpc', %s, %s, %s, %s)", replaced)
            by_floor = one(
                conn, "select public.bench_floor_set('by-floor', %s, %s, %s, %s)", replaced
            )
            assert by_floor == by_rpc
            assert one(conn, ROW, ("by-floor",)) == one(conn, ROW, ("by-rpc",))
        assert one(conn, ROW, ("by-rpc",))[:3] == ({"km": 5}, "fares", ["zone:kigali", "driver:2"])
