"""The general cache: get_cache and set_cache under pgbench against plain SQL on a table of the same
shape, on a throwaway cluster with fsync and synchronous_commit on.

  get_cache          get_cache('route:<k>', 'routes') of a random key of --keys, every one set and
                     fresh (a hit, counted on the type's sequence), pgbench -M prepared from
                     --clients clients
  plain select       `select value from <table> where key = $1` of the same keys from a copy of
                     public.cache_entries (CREATE UNLOGGED TABLE ... LIKE ... INCLUDING ALL: the
                     same columns, checks, primary key, GIN and expiry indexes, the same rows),
                     the same way. Target: get_cache >= 0.7 of it
  set_cache          set_cache of a random key of --keys (an update of an existing entry: a value
                     of about 100 bytes, an hour, type routes, one tag)
  plain upsert       `insert ... on conflict (key) do update` of the same row into the copy.
                     Target: set_cache >= 0.7 of it
  plain upsert, logged
                     the same upsert into a logged copy: what UNLOGGED saves a write
  set_cache, logged  set_cache after `alter table public.cache_entries set logged` (in the bench's
                     database only), against the logged plain upsert

Each pair alternates in --rounds rounds of --seconds / rounds (reversed in odd rounds), each figure
over all its rounds, so load from elsewhere on the machine falls on both alike. p50 and p99 are
per transaction, from pgbench's log.

    .venv/bin/python -m bench.cache [--seconds 20] [--clients 8] [--keys 100000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os

import psycopg

from bench.pgbench import PgbenchRun, pgbench
from bench.service_registry import merged
from tests.support.server import start_test_server

VALUE = '{"km": 4.2, "minutes": 11, "polyline": "_p~iF~ps|U_ulLnnqC_mqNvxq`@", "fare": 1500}'
KEY = "\\set k random(1, {keys})\n"
GET = KEY + "select public.get_cache('route:' || :k, 'routes');\n"
PLAIN_GET = KEY + "select value from {table} where key = 'route:' || :k;\n"
SET = (
    KEY + f"select public.set_cache('route:' || :k, '{VALUE}', 3600, 'routes',"
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
        f"{name:<24}{run.tps:>10.0f}{run.percentile(50):>9.3f}{run.percentile(99):>9.3f}"
        f"{run.transactions:>10}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    run = {"seconds": args.seconds, "clients": args.clients, "rounds": args.rounds}

    server = start_test_server(durable=True)
    try:
        url = server.url(server.clone("bench_cache"))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(script(FILL, args.keys))
            conn.execute(COPIES)
            conn.execute("vacuum analyze public.cache_entries, bench_plain, bench_plain_logged")
        reads = alternated(
            url,
            {
                "get_cache": script(GET, args.keys),
                "plain select": script(PLAIN_GET, args.keys, "bench_plain"),
            },
            **run,
        )
        writes = alternated(
            url,
            {
                "set_cache": script(SET, args.keys),
                "plain upsert": script(PLAIN_SET, args.keys, "bench_plain"),
                "plain upsert, logged": script(PLAIN_SET, args.keys, "bench_plain_logged"),
            },
            **run,
        )
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("alter table public.cache_entries set logged")
            conn.execute("vacuum analyze public.cache_entries")
            hits = conn.execute(
                "select private.counter_value('cache_hits_' || private.cache_counter('routes')),"
                " private.counter_value('cache_misses_' || private.cache_counter('routes'))"
            ).fetchone()
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
    print(f"{'':<24}{'calls/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'calls':>10}")
    for name, each in reads.items():
        line(name, each)
    print(
        f"get_cache / plain select: {reads['get_cache'].tps / reads['plain select'].tps:.2f}"
        f" (target >= 0.7); hits counted {hits[0]}, misses {hits[1]}"
    )
    for name, each in writes.items():
        line(name, each)
    print(
        f"set_cache / plain upsert: {writes['set_cache'].tps / writes['plain upsert'].tps:.2f}"
        " (target >= 0.7)"
    )
    print(
        "plain upsert, unlogged / logged: "
        f"{writes['plain upsert'].tps / writes['plain upsert, logged'].tps:.2f}"
    )
    for name, each in logged.items():
        line(name, each)
    print(
        "set_cache, unlogged / logged: "
        f"{writes['set_cache'].tps / logged['set_cache, logged'].tps:.2f}; "
        "set_cache, logged / plain upsert, logged: "
        f"{logged['set_cache, logged'].tps / logged['plain upsert, logged'].tps:.2f}"
    )


if __name__ == "__main__":
    main()
