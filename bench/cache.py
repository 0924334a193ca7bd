"""The general cache: get_cache and set_cache under pgbench against plain SQL on a table of the same
shape, and against their floor, on a throwaway cluster with fsync and synchronous_commit on.

  get_cache          get_cache('route:<k>', 'routes') of a random key of --keys, every one set and
                     fresh (a hit, counted on the type's sequence), pgbench -M prepared from
                     --clients clients
  floor select       the least an RPC reading the entry costs (bench/cache_floor.sql): a PL/pgSQL
                     security definer function with `set search_path = ''`, as get_cache is, whose
                     body is only the plain select (of public.cache_entries): no checks, no
                     expiry, no count. get_cache above it is its logic; it above the plain
                     select is being an RPC at all
  floor, counted     the floor and a nextval in its select, as get_cache counts a hit: one
                     sequence every client shares, logged (as the cache's counters were until
                     they were made unlogged)
  floor, counted unlogged
                     the same on an unlogged sequence (Postgres 15), as the cache's counters
                     are: no WAL, so no xid and no flush at commit every 32 counts
  plain select       `select value from <table> where key = $1` of the same keys from a copy of
                     public.cache_entries (CREATE UNLOGGED TABLE ... LIKE ... INCLUDING ALL: the
                     same columns, checks, primary key, GIN and expiry indexes, the same rows),
                     the same way. Target: get_cache >= 0.7 of it
  set_cache          set_cache of a random key of --keys (an update of an existing entry: a value
                     of about 100 bytes, an hour, type routes, one tag)
  floor upsert       the floor function whose body is only the plain upsert (of
                     public.cache_entries)
  plain upsert       `insert ... on conflict (key) do update` of the same row into the copy.
                     Target: set_cache >= 0.7 of it
  plain upsert, logged
                     the same upsert into a logged copy: what UNLOGGED saves a write
  set_cache, logged  set_cache after `alter table public.cache_entries set logged` (in the bench's
                     database only), against the logged plain upsert

Each group alternates in --rounds rounds of --seconds / rounds (reversed in odd rounds), each
figure over all its rounds, so load from elsewhere on the machine falls on all alike. p50 and p99
are per transaction, from pgbench's log.

    .venv/bin/python -m bench.cache [--seconds 20] [--clients 8] [--keys 100000] [--rounds 4]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import psycopg

from bench.pgbench import PgbenchRun, pgbench
from bench.service_registry import merged
from tests.support.server import start_test_server

VALUE = '{"km": 4.2, "minutes": 11, "polyline": "_p~iF~ps|U_ulLnnqC_mqNvxq`@", "fare": 1500}'
KEY = "\\set k random(1, {keys})\n"
GET = KEY + "select public.get_cache('route:' || :k, 'routes');\n"
FLOOR_GET = KEY + "select public.bench_floor_get('route:' || :k);\n"
FLOOR_COUNTED = (
    KEY + "select public.bench_floor_get_counted('route:' || :k, 'public.bench_count_{counter}');\n"
)
PLAIN_GET = KEY + "select value from {table} where key = 'route:' || :k;\n"
SET = (
    KEY + f"select public.set_cache('route:' || :k, '{VALUE}', 3600, 'routes',"
    " array['driver:' || :k % 1000]);\n"
)
FLOOR_SET = (
    KEY + f"select public.bench_floor_set('route:' || :k, '{VALUE}', 3600, 'routes',"
    " array['driver:' || :k % 1000]);\n"
)
PLAIN_SET = (
    KEY + "insert into {table} as e (key, value, cache_type, tags, expires_at)"
    f" values ('route:' || :k, '{VALUE}', 'routes', array['driver:' || :k % 1000],"
    " now() + make_interval(secs => 3600))"
    " on conflict (key) do update set value = excluded.value, cache_type = excluded.cache_type,"
    " tags = excluded.tags, expires_at = excluded.expires_at, updated_at = now();\n"
)
FILL = f"""
select public.set_cache('route:' || k, '{VALUE}', 86400, 'routes', array['driver:' || k % 1000])
from generate_series(1, {{keys}}) as k
"""
COPIES = """
create unlogged table bench_plain (like public.cache_entries including all);
create table bench_plain_logged (like public.cache_entries including all);
insert into bench_plain select * from public.cache_entries;
insert into bench_plain_logged select * from public.cache_entries;
"""
FLOOR = Path(__file__).with_name("cache_floor.sql")


def alternated(
    url: str, scripts: dict[str, str], *, seconds: float, clients: int, rounds: int
) -> dict[str, PgbenchRun]:
    """Each script in turn, `rounds` times (reversed in odd rounds), merged per script."""
    runs: dict[str, list[PgbenchRun]] = {name: [] for name in scripts}
    for n in range(rounds):
        order = list(scripts) if n % 2 == 0 else list(reversed(scripts))
        for name in order:
            runs[name].append(
                pgbench(
                    url,
                    scripts[name],
                    seconds=seconds / rounds,
                    concurrency=clients,
                    latencies=True,
                )
            )
    return {name: merged(each) for name, each in runs.items()}


def script(template: str, keys: int, table: str = "") -> str:
    """A script with its number of keys and table filled in (the value's JSON has braces)."""
    return template.replace("{keys}", str(keys)).replace("{table}", table)


def line(name: str, run: PgbenchRun) -> None:
    print(
        f"{name:<30}{run.tps:>10.0f}{run.percentile(50):>9.3f}{run.percentile(99):>9.3f}"
        f"{run.transactions:>10}"
    )


def ratio(runs: dict[str, PgbenchRun], top: str, bottom: str) -> str:
    return f"{top} / {bottom}: {runs[top].tps / runs[bottom].tps:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    run = {"seconds": args.seconds, "clients": args.clients, "rounds": args.rounds}
    plain_get = script(PLAIN_GET, args.keys, "bench_plain")
    floor_get = script(FLOOR_GET, args.keys)

    server = start_test_server(durable=True)
    try:
        url = server.url(server.clone("bench_cache"))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(script(FILL, args.keys))
            conn.execute(COPIES)
            conn.execute(FLOOR.read_text())  # type: ignore[arg-type]  # our own file
            conn.execute("vacuum analyze public.cache_entries, bench_plain, bench_plain_logged")
        reads = alternated(
            url,
            {
                "get_cache": script(GET, args.keys),
                "floor select": floor_get,
                "floor, counted": script(FLOOR_COUNTED, args.keys).replace("{counter}", "logged"),
                "floor, counted unlogged": script(FLOOR_COUNTED, args.keys).replace(
                    "{counter}", "unlogged"
                ),
                "plain select": plain_get,
            },
            **run,
        )
        with psycopg.connect(url, autocommit=True) as conn:
            hits = conn.execute(
                "select private.counter_value('cache_hits_' || private.cache_counter('routes')),"
                " private.counter_value('cache_misses_' || private.cache_counter('routes'))"
            ).fetchone()
        writes = alternated(
            url,
            {
                "set_cache": script(SET, args.keys),
                "floor upsert": script(FLOOR_SET, args.keys),
                "plain upsert": script(PLAIN_SET, args.keys, "bench_plain"),
                "plain upsert, logged": script(PLAIN_SET, args.keys, "bench_plain_logged"),
            },
            **run,
        )
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("alter table public.cache_entries set logged")
            conn.execute("vacuum analyze public.cache_entries")
        logged = alternated(
            url,
            {
                "set_cache, logged": script(SET, args.keys),
                "plain upsert, logged": script(PLAIN_SET, args.keys, "bench_plain_logged"),
            },
            **run,
        )
    finally:
        server.close()

    assert hits is not None
    print(
        f"{os.cpu_count()} cores, {args.clients} clients, {args.keys} keys, "
        f"{args.seconds:.0f}s per row in {args.rounds} rounds, fsync and synchronous_commit on"
    )
    print(f"{'':<30}{'calls/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'calls':>10}")
    for name, each in reads.items():
        line(name, each)
    print(
        f"{ratio(reads, 'get_cache', 'plain select')} (target >= 0.7); "
        f"hits counted {hits[0]}, misses {hits[1]}"
    )
    print(f"{ratio(reads, 'get_cache', 'floor select')} (its checks, expiry and count)")
    print(f"{ratio(reads, 'floor select', 'plain select')} (being an RPC at all)")
    print(
        f"{ratio(reads, 'floor, counted', 'floor select')}; "
        f"{ratio(reads, 'floor, counted unlogged', 'floor select')}"
    )
    for name, each in writes.items():
        line(name, each)
    print(f"{ratio(writes, 'set_cache', 'plain upsert')} (target >= 0.7)")
    print(f"{ratio(writes, 'set_cache', 'floor upsert')} (its checks and counter lookup)")
    print(f"{ratio(writes, 'floor upsert', 'plain upsert')} (being an RPC at all)")
    print(
        "plain upsert, unlogged / logged: "
        f"{writes['plain upsert'].tps / writes['plain upsert, logged'].tps:.2f}"
    )
    for name, each in logged.items():
        line(name, each)
    print(
        "set_cache, unlogged / logged: "
        f"{writes['set_cache'].tps / logged['set_cache, logged'].tps:.2f}; "
        f"{ratio(logged, 'set_cache, logged', 'plain upsert, logged')}"
    )


if __name__ == "__main__":
    main()
