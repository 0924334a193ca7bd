"""The event store: appends under pgbench against a plain insert, one hot aggregate, and reads of
one aggregate and of the global order from a store of --events events over 12 months, against an
unpartitioned copy, on one throwaway cluster with fsync and synchronous_commit on.

  append, one type   append_event of one event to a fresh aggregate of type `trip` per call (the
                     pgbench client's id and a counter of its own), pgbench -M prepared from
                     --clients clients
  append, a type per client
                     the same, each client appending to aggregate type `type-<client id>`: the
                     rate must not depend on how aggregates spread over types
  plain insert       the same row (event id, type, aggregate, event type, version 1, a position,
                     payload, metadata, actor, created_at) into an unpartitioned table whose only
                     index is unique (aggregate_type, aggregate_id, version), the same way, in the
                     same run. Target: append, one type >= 0.5 of it. These three alternate in
                     2 rounds of --seconds / 2 (the second in reverse order), each figure over
                     both, so load from elsewhere on the machine falls on all three alike
  floor              a PL/pgSQL function (made in the bench's database) that writes only what an
                     append with these guarantees must: the new aggregate's stream row and the
                     event row in its month's partition, both with their indexes; in the same
                     rounds
  hot aggregate      append_event to one aggregate from every client, p_expected_version null; any
                     error fails pgbench, and afterwards the aggregate's versions must be 1..N, one
                     per transaction pgbench counted, without a gap
  get_aggregate_events
                     get_aggregate_events(type, id, 100) of random aggregates of two kinds:
                     orders (200 consecutive events, 42 minutes at full size: one month's
                     partition) and wallets (500 events spread over all 12 months), timed inside
                     the server (clock_timestamp around each call, 1,000 calls after as many
                     unrecorded ones) and under pgbench
                     (calls/s, p50 and p99 per transaction), against the same query (type, id,
                     version >= 1, order by version, limit 100) on the unpartitioned copy
  catch-up           read_all_events from position 0 in pages of 1,000, each page after the last
                     position of the one before, until --catch-up events are read, inside the
                     server: events/s and each page's p50 and p99, against the same paging (order
                     by global_position, limit 1,000) on the unpartitioned copy. Both sides form
                     every row whole, as a reader receiving them would

The appends run in one database, on a store whose current month already holds 500,000 events
(the plain table holds the same rows), vacuumed and analyzed: a month's partition has statistics
after its first autoanalyze, and the plans chosen with them are what production runs. The reads
run in another database. The store is built by the table owner with set-based inserts straight
into public.event_store (logged: its two indexes are dropped for the load and rebuilt from their
own definitions): position p (1 to --events) is created at the
p-th of --events even steps over the 12 whole months before the current one, whose partitions
private.maintain_partitions makes first, so no row lands in the default partition. Half the events
are trips of 10, a quarter orders of 200, a quarter wallets of 500 (fewer wallets when --events is
small). private.event_streams gets each aggregate's version and first and last created_at from the
rows; private.event_ids is left empty for these rows: only an append reads it (a retried event
id), neither read measured here does. The dense positions 1..N lie far below the settled position
(the oldest running transaction's id times 2^20), so read_all_events returns them all. The
unpartitioned copy is CREATE TABLE AS SELECT of the store, then the same two indexes; both are
vacuumed and analyzed before any read.

    .venv/bin/python -m bench.event_store [--seconds 10] [--clients 8] [--events 10000000]
        [--catch-up 1000000]
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass

import psycopg

from bench.feature_flags import server_times
from bench.pgbench import PgbenchRun, pgbench
from bench.service_registry import merged
from tests.support.server import start_test_server

ROUNDS = 2
EARLIER_EVENTS = 500_000
CALLS = 1000
PAGE = 1000
READ_LIMIT = 100
ORDER_EVENTS = 200
WALLET_EVENTS = 500
PAYLOAD = '{"rider": "rider-1", "pickup": "Kimironko", "fare": 1500, "currency": "RWF"}'

PLAIN_TABLE = """
create table bench_plain_events (like public.event_store);
create unique index on bench_plain_events (aggregate_type, aggregate_id, version);
"""
# This month's events before the appends, created over the month so far (positions below any
# new one), in both tables, analyzed: a month's partition has statistics after its first
# autoanalyze, and the plans Postgres caches depend on them and on the partition's size (an
# empty, never analyzed partition, as a fresh clone has, gets other plans than production's).
EARLIER = f"""
insert into public.event_store (
    event_id, aggregate_type, aggregate_id, event_type, version, global_position, payload,
    metadata, actor, created_at
)
select gen_random_uuid(), 'trip', 'trip-earlier-' || n, 'trip_requested', 1, n, '{PAYLOAD}',
    '{{}}', 'service:bench',
    date_trunc('month', now()) + (now() - date_trunc('month', now())) * n / {EARLIER_EVENTS}
from generate_series(1, {EARLIER_EVENTS}) as n;
insert into private.event_streams (
    aggregate_type, aggregate_id, version, last_position, first_event_at, last_event_at
)
select aggregate_type, aggregate_id, version, global_position, created_at, created_at
from public.event_store;
insert into private.event_ids (
    event_id, aggregate_type, aggregate_id, global_position, digest, created_at
)
select event_id, aggregate_type, aggregate_id, global_position,
    md5(jsonb_build_array(aggregate_type, aggregate_id, event_type, payload)::text)::uuid,
    created_at
from public.event_store;
insert into bench_plain_events select * from public.event_store;
"""
PLAIN_INSERT = (
    "\\set n :n + 1\n"
    "insert into bench_plain_events (event_id, aggregate_type, aggregate_id, event_type, version,"
    " global_position, payload, metadata, correlation_id, causation_id, actor, created_at)"
    " values (gen_random_uuid(), 'trip', 'trip-' || :client_id || '-' || :n, 'trip_requested', 1,"
    f" pg_current_xact_id()::text::bigint << 20, '{PAYLOAD}', '{{}}', null, null,"
    " 'database:' || session_user, now());\n"
)
# The floor: what any append with these guarantees writes, and nothing else (made in the
# bench's database only): the aggregate's stream row (its version) and the event row in its
# month's partition, with both their indexes, from one PL/pgSQL function.
FLOOR_FUNCTION = """
create function public.bench_append_floor(
    p_aggregate_id text, p_aggregate_type text, p_event_type text, p_payload jsonb
)
returns bigint
language plpgsql
set search_path = ''
as $$
declare
    v_position bigint := pg_catalog.pg_current_xact_id()::text::bigint << 20;
begin
    insert into private.event_streams (
        aggregate_type, aggregate_id, version, last_position, first_event_at, last_event_at
    )
    values (p_aggregate_type, p_aggregate_id, 1, v_position, pg_catalog.now(), pg_catalog.now());
    insert into public.event_store (
        event_id, aggregate_type, aggregate_id, event_type, version, global_position, payload,
        metadata, actor, created_at
    )
    values (
        pg_catalog.gen_random_uuid(), p_aggregate_type, p_aggregate_id, p_event_type, 1,
        v_position, p_payload, '{}', 'database:bench', pg_catalog.now()
    );
    return v_position;
end;
$$
"""
FLOOR_APPEND = (
    "\\set n :n + 1\n"
    "select public.bench_append_floor('floor-' || :client_id || '-' || :n, 'trip',"
    f" 'trip_requested', '{PAYLOAD}');\n"
)
HOT_APPEND = f"select public.append_event('trip-hot', 'trip', 'trip_updated', '{PAYLOAD}');\n"
HOT_VERSIONS = """
select count(*), min(version), max(version), count(distinct version),
    (select s.version from private.event_streams as s
     where s.aggregate_type = 'trip' and s.aggregate_id = 'trip-hot')
from public.event_store
where aggregate_type = 'trip' and aggregate_id = 'trip-hot'
"""

# Position p's kind by (p - 1) % 4: two trips, an order, a wallet; q = (p - 1) / 4 numbers it
# within its kind. Trips and orders take consecutive positions (minutes), wallets one in every
# `wallets` of theirs (the whole 12 months).
LOAD = """
insert into public.event_store (
    event_id, aggregate_type, aggregate_id, event_type, version, global_position, payload,
    metadata, correlation_id, causation_id, actor, created_at
)
select
    gen_random_uuid(),
    k.aggregate_type,
    k.aggregate_type || '-' || k.aggregate,
    k.aggregate_type || (array['_created', '_changed', '_noted'])[g.p % 3 + 1],
    k.version,
    g.p,
    jsonb_build_object('amount', g.p % 100000, 'currency', 'RWF'),
    '{{}}',
    null,
    null,
    'service:bench',
    to_timestamp({start} + (g.p - 1) * {step})
from (
    select p, (p - 1) % 4 as r, (p - 1) / 4 as q from generate_series(1, {events}::bigint) as p
) as g
cross join lateral (
    select
        case when g.r < 2 then 'trip' when g.r = 2 then 'order' else 'wallet' end,
        case
            when g.r < 2 then (g.q * 2 + g.r) / 10
            when g.r = 2 then g.q / {orders}
            else g.q % {wallets}
        end,
        case
            when g.r < 2 then (g.q * 2 + g.r) % 10 + 1
            when g.r = 2 then g.q % {orders} + 1
            else g.q / {wallets} + 1
        end
) as k (aggregate_type, aggregate, version)
"""
STREAMS = """
insert into private.event_streams (
    aggregate_type, aggregate_id, version, last_position, first_event_at, last_event_at
)
select
    aggregate_type, aggregate_id, max(version), max(global_position), min(created_at),
    max(created_at)
from public.event_store
group by aggregate_type, aggregate_id
"""

AGGREGATE = "{kind}-' || ((pg_catalog.hashint4(i) % {count} + {count}) % {count})"
OURS_READ = "count(e.*) from public.get_aggregate_events('{kind}', '{id}, {limit}) as e"
FLAT_READ = (
    "count(e.*) from (select * from bench_flat_events where aggregate_type = '{kind}'"
    " and aggregate_id = '{id} and version >= 1 order by version limit {limit}) as e"
)
OURS_SCRIPT = (
    "\\set a random(0, {last})\n"
    "select * from public.get_aggregate_events('{kind}', '{kind}-' || :a, {limit});\n"
)
FLAT_SCRIPT = (
    "\\set a random(0, {last})\n"
    "select * from bench_flat_events where aggregate_type = '{kind}'"
    " and aggregate_id = '{kind}-' || :a and version >= 1 order by version limit {limit};\n"
)

CATCH_UP = """
do $$
declare
    v_after bigint := 0;
    v_last bigint;
    v_rows bigint;
    v_read bigint := 0;
    v_started timestamptz;
begin
    while v_read < %(total)s loop
        v_started := clock_timestamp();
        select max(e.global_position), count(e.*) into v_last, v_rows from %(page)s as e;
        exit when v_rows = 0;
        insert into bench_pages (what, ms, events)
        values (%(what)s, extract(epoch from clock_timestamp() - v_started) * 1000, v_rows);
        v_read := v_read + v_rows;
        v_after := v_last;
    end loop;
end;
$$
"""
OURS_PAGE = f"public.read_all_events(v_after, {PAGE})"
FLAT_PAGE = (
    "(select * from bench_flat_events where global_position > v_after"
    f" order by global_position limit {PAGE})"
)


@dataclass
class Store:
    events: int
    orders: int  # order-0 .. order-(orders - 1) each have ORDER_EVENTS events
    wallets: int  # wallet-0 .. wallet-(wallets - 1) each have at least WALLET_EVENTS
    load_seconds: float
    index_seconds: float
    copy_seconds: float


@dataclass
class Read:
    server: tuple[float, float]  # p50, p99 in ms inside the server
    run: PgbenchRun


@dataclass
class CatchUp:
    events: int
    seconds: float
    page_p50: float
    page_p99: float


def append_script(aggregate_type: str) -> str:
    """One event to a fresh aggregate of `aggregate_type` (an SQL expression) per transaction."""
    return (
        "\\set n :n + 1\n"
        "select public.append_event('trip-' || :client_id || '-' || :n, "
        f"{aggregate_type}, 'trip_requested', '{PAYLOAD}');\n"
    )


def measure_appends(url: str, seconds: float, clients: int) -> dict[str, PgbenchRun]:
    """The appends of distinct aggregates alternate in ROUNDS rounds (reversed in odd ones),
    so load from elsewhere on the machine and the cluster's drift fall on all alike; then the
    hot aggregate."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(PLAIN_TABLE)
        conn.execute(EARLIER)
        conn.execute(FLOOR_FUNCTION)
        conn.execute(
            "vacuum analyze public.event_store, private.event_streams, private.event_ids,"
            " bench_plain_events"
        )
    scripts = {
        "plain": PLAIN_INSERT,
        "floor": FLOOR_APPEND,
        "one type": append_script("'trip'"),
        "type per client": append_script("'type-' || :client_id"),
    }
    runs: dict[str, list[PgbenchRun]] = {name: [] for name in scripts}
    for n in range(ROUNDS):
        order = list(scripts) if n % 2 == 0 else list(reversed(scripts))
        for name in order:
            runs[name].append(
                pgbench(
                    url,
                    scripts[name],
                    seconds=seconds / ROUNDS,
                    concurrency=clients,
                    # Each round's counters start past the last round's: aggregates stay fresh.
                    defines={"n": str(n * 1_000_000_000)},
                    latencies=True,
                )
            )
    merged_runs = {name: merged(each) for name, each in runs.items()}
    merged_runs["hot"] = pgbench(
        url, HOT_APPEND, seconds=seconds, concurrency=clients, latencies=True
    )
    return merged_runs


def hot_versions(url: str, transactions: int) -> str:
    """The hot aggregate's versions must be 1..transactions, each once, and its stream row at
    the last."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(HOT_VERSIONS).fetchone()
    assert row is not None
    count, lowest, highest, distinct, stream = row
    assert (count, lowest, highest, distinct, stream) == (
        transactions,
        1,
        transactions,
        transactions,
        transactions,
    ), (row, transactions)
    return f"{count} events, versions 1..{highest} each once, stream at {stream}"


def build_store(url: str, events: int) -> Store:
    wallets = max(1, events // 4 // WALLET_EVENTS)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("set maintenance_work_mem = '1GB'")
        conn.execute("set work_mem = '256MB'")
        bounds = conn.execute(
            "select extract(epoch from m), extract(epoch from m + interval '12 months' - m), m"
            " from (select date_trunc('month', now()) - interval '12 months' as m) as s"
        ).fetchone()
        assert bounds is not None
        start, span, first_month = float(bounds[0]), float(bounds[1]), bounds[2]
        for month in range(13):
            conn.execute(
                "select count(*) from private.maintain_partitions(%s + %s * interval '1 month')",
                (first_month, month),
            )
        # Built after the load, as a restore would: the aggregate index from the catalog's own
        # definition (pg_indexes says ON ONLY for a partitioned table's index: the parent's
        # alone, left invalid), the primary key as the migration makes it.
        indexes = [
            row[0].replace(" ON ONLY ", " ON ")
            for row in conn.execute(
                "select indexdef from pg_indexes where schemaname = 'public'"
                " and tablename = 'event_store' and indexname = 'event_store_aggregate'"
            )
        ]
        assert len(indexes) == 1, indexes
        indexes.append(
            "alter table public.event_store"
            " add constraint event_store_pkey primary key (global_position, created_at)"
        )
        conn.execute("drop index public.event_store_aggregate")
        conn.execute("alter table public.event_store drop constraint event_store_pkey")
        started = time.monotonic()
        conn.execute(
            LOAD.format(
                start=start, step=span / events, events=events, wallets=wallets, orders=ORDER_EVENTS
            )
        )
        conn.execute(STREAMS)
        loaded = time.monotonic()
        for index in indexes:
            conn.execute(index)
        invalid = conn.execute(
            "select count(*) from pg_index"
            " where indrelid = 'public.event_store'::regclass and not indisvalid"
        ).fetchone()
        assert invalid == (0,), f"{invalid} invalid indexes on public.event_store"
        conn.execute("vacuum analyze public.event_store, private.event_streams")
        indexed = time.monotonic()
        stray = conn.execute("select count(*) from partitions.event_store_default").fetchone()
        assert stray is not None
        assert stray[0] == 0, f"{stray[0]} events in the default partition"
        settled = conn.execute("select private.settled_position()").fetchone()
        assert settled is not None
        assert settled[0] > events, "bulk positions must lie below the settled position"
        full = conn.execute(
            "select count(*) filter (where aggregate_id like 'order-%%' and version = %s),"
            " min(version) filter (where aggregate_id like 'wallet-%%')"
            " from private.event_streams",
            (ORDER_EVENTS,),
        ).fetchone()
        assert full is not None
        orders, fewest = int(full[0]), int(full[1])
        assert orders > 0, "no complete order"
        assert fewest >= READ_LIMIT, f"a wallet with {fewest} events"

        copy_started = time.monotonic()
        conn.execute("create table bench_flat_events as select * from public.event_store")
        for index in indexes:
            conn.execute(
                index.replace("public.event_store", "public.bench_flat_events")
                .replace("INDEX event_store_", "INDEX bench_flat_events_")
                .replace("constraint event_store_pkey", "constraint bench_flat_events_pkey")
            )
        conn.execute("vacuum analyze bench_flat_events")
        copied = time.monotonic()
        conn.execute("checkpoint")
    return Store(
        events,
        orders,
        wallets,
        loaded - started,
        indexed - loaded,
        copied - copy_started,
    )


def measure_reads(url: str, store: Store, seconds: float, clients: int) -> dict[str, Read]:
    reads = {}
    kinds = {"order": store.orders, "wallet": store.wallets}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create temporary table bench_times (what text, ms double precision)")
        for kind, count in kinds.items():
            chosen = AGGREGATE.format(kind=kind, count=count)
            for side, call in (("ours", OURS_READ), ("flat", FLAT_READ)):
                expression = call.format(kind=kind, id=chosen, limit=READ_LIMIT)
                server_times(conn, "warm-up", expression, CALLS)
                reads[f"{kind} {side}"] = Read(
                    server_times(conn, f"{kind} {side}", expression, CALLS),
                    PgbenchRun(0, 0, 0),
                )
    for kind, count in kinds.items():
        for side, script in (("ours", OURS_SCRIPT), ("flat", FLAT_SCRIPT)):
            reads[f"{kind} {side}"].run = pgbench(
                url,
                script.format(kind=kind, last=count - 1, limit=READ_LIMIT),
                seconds=seconds,
                concurrency=clients,
                latencies=True,
            )
    return reads


def measure_catch_up(url: str, total: int) -> dict[str, CatchUp]:
    results = {}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "create temporary table bench_pages (what text, ms double precision, events bigint)"
        )
        for what, page in (("ours", OURS_PAGE), ("flat", FLAT_PAGE)):
            conn.execute(
                CATCH_UP.replace("%(total)s", str(total))
                .replace("%(page)s", page)
                .replace("%(what)s", f"'{what}'")
            )
            row = conn.execute(
                "select sum(events), sum(ms) / 1000,"
                " percentile_cont(0.5) within group (order by ms),"
                " percentile_cont(0.99) within group (order by ms)"
                " from bench_pages where what = %s",
                (what,),
            ).fetchone()
            assert row is not None
            assert row[0] is not None, f"{what}: no events read"
            results[what] = CatchUp(int(row[0]), float(row[1]), float(row[2]), float(row[3]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--catch-up", type=int, default=1_000_000)
    args = parser.parse_args()
    if args.events < 4 * WALLET_EVENTS:
        parser.error(f"--events must be at least {4 * WALLET_EVENTS}")

    server = start_test_server(durable=True)
    try:
        appends_database = server.clone("bench_event_appends")
        appends_url = server.url(appends_database)
        appends = measure_appends(appends_url, args.seconds, args.clients)
        hot = hot_versions(appends_url, appends["hot"].transactions)
        server.drop(appends_database)
        reads_url = server.url(server.clone("bench_event_reads"))
        store = build_store(reads_url, args.events)
        reads = measure_reads(reads_url, store, args.seconds, args.clients)
        catch_up = measure_catch_up(reads_url, min(args.catch_up, args.events))
    finally:
        server.close()

    print(
        f"{os.cpu_count()} cores, {args.clients} clients, {args.seconds:.0f}s per pgbench row,"
        " fsync on"
    )
    print(f"{'appends':<34}{'calls/s':>9}{'mean ms':>9}{'p50':>8}{'p99':>8}")
    names = {
        "one type": "append_event, one type",
        "type per client": "append_event, a type per client",
        "plain": "plain insert (baseline)",
        "floor": "floor: stream row + event row",
        "hot": "one hot aggregate, version null",
    }
    for key, name in names.items():
        run = appends[key]
        print(
            f"{name:<34}{run.tps:>9.0f}{run.latency_ms:>9.2f}"
            f"{run.percentile(50):>8.2f}{run.percentile(99):>8.2f}"
        )
    one, plain = appends["one type"], appends["plain"]
    print(
        f"ratio one type / plain {one.tps / plain.tps:.2f} (target >= 0.5);"
        f" a type per client / one type {appends['type per client'].tps / one.tps:.2f}"
    )
    print(
        f"floor / plain {appends['floor'].tps / plain.tps:.2f};"
        f" one type / floor {one.tps / appends['floor'].tps:.2f}"
    )
    print(f"hot aggregate: 0 failed transactions, {hot}")
    print(
        f"store: {store.events:,} events over 12 months ({store.orders:,} orders of"
        f" {ORDER_EVENTS}, {store.wallets:,} wallets of >= {WALLET_EVENTS}, trips of 10);"
        f" load {store.load_seconds:.0f}s, indexes and vacuum {store.index_seconds:.0f}s,"
        f" unpartitioned copy {store.copy_seconds:.0f}s"
    )
    print(
        f"{f'get_aggregate_events(.., {READ_LIMIT})':<34}{'server p50':>11}{'p99':>8}"
        f"{'calls/s':>9}{'p50':>8}{'p99':>8}"
    )
    for kind, label in (("order", "order (1 month)"), ("wallet", "wallet (12 months)")):
        for side, name in (("ours", "event store"), ("flat", "unpartitioned")):
            read = reads[f"{kind} {side}"]
            print(
                f"{label + ', ' + name:<34}{read.server[0]:>11.3f}{read.server[1]:>8.3f}"
                f"{read.run.tps:>9.0f}{read.run.percentile(50):>8.2f}{read.run.percentile(99):>8.2f}"
            )
    print(
        f"{f'catch-up, pages of {PAGE:,}':<34}{'events':>11}{'events/s':>10}"
        f"{'page p50':>9}{'p99':>8}"
    )
    for side, name in (("ours", "read_all_events"), ("flat", "unpartitioned")):
        result = catch_up[side]
        print(
            f"{name:<34}{result.events:>11,}{result.events / result.seconds:>10.0f}"
            f"{result.page_p50:>9.3f}{result.page_p99:>8.3f}"
        )


if __name__ == "__main__":
    main()
