"""message_queue against pgmq's shapes, side by side on one throwaway cluster with fsync and
synchronous_commit on, which side runs first changing round by round.

  enqueue     enqueue_message (validation, the wake-up check, NOTIFY when the queue was empty)
              against pgmq.send's INSERT
  claim 1     claim_messages(1), then ack_messages, each its own transaction as a worker runs
              them, with 200,000 queued, against pgmq.read's UPDATE of the first visible row
              (FOR UPDATE SKIP LOCKED), then pgmq.delete's DELETE
  claim 10    the same, 10 at a time, 600,000 queued (messages/s)
  bulk        200,000 enqueues in one statement into a table analysed while empty, with an ANALYZE
              from another session a second in, against pgmq.send called 200,000 times in one
              statement and one INSERT of 200,000 rows
  decay       claim 10 + ack at full speed for --decay-seconds with --decay-queued queued, for
              message_queue, background_jobs (claim_jobs + complete_job),
              whatsapp_message_queue (claim_whatsapp_messages + record_whatsapp_sends, 100,000
              recipients) and pgmq: the last 10 s as a share of the first 10 s

pgbench -M prepared, -c 8 -j 2 by default; autovacuum as the migrations leave it. pgmq is not
installed: its functions are written below as it runs them, and the same statements sent bare
are a third column. Neither has priorities, idempotency keys, retries, dead letters,
per-worker leases or wake-ups. Each run starts from vacuumed tables.

    .venv/bin/python -m bench.queues [--seconds 10] [--rounds 3] [--decay-seconds 60]
        [--decay-queued 2500000] [--clients 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from bench.pgbench import pgbench
from tests.support.server import start_test_server

PGMQ_QUEUE = """
create table bench_pgmq (
    msg_id bigint generated always as identity primary key,
    read_ct integer not null default 0,
    enqueued_at timestamptz not null default now(),
    vt timestamptz not null,
    message jsonb,
    headers jsonb
);
create index bench_pgmq_vt on bench_pgmq (vt);
"""
# pgmq's functions as it runs them: PL/pgSQL that checks the queue's name, then builds the
# statement for that queue's table and EXECUTEs it. Written here from pgmq's documented
# behaviour, for the one table above.
PGMQ_FUNCTIONS = """
create function bench_pgmq_table(p_queue text) returns text language plpgsql immutable as $$
begin
    if p_queue !~ '^[a-z0-9_]{1,47}$' then
        raise exception 'queue name % is not valid', p_queue;
    end if;
    return 'bench_' || p_queue;
end;
$$;
create function bench_pgmq_send(p_queue text, p_message jsonb, p_delay integer default 0)
returns setof bigint language plpgsql as $$
begin
    return query execute format(
        'insert into %I (vt, message) values (clock_timestamp() + %L, $1) returning msg_id',
        bench_pgmq_table(p_queue), make_interval(secs => p_delay)
    ) using p_message;
end;
$$;
create function bench_pgmq_read(p_queue text, p_vt integer, p_qty integer)
returns setof bench_pgmq language plpgsql as $$
begin
    return query execute format(
        'with cte as (select msg_id from %1$I where vt <= clock_timestamp() order by msg_id'
        ' limit $1 for update skip locked)'
        ' update %1$I as m set vt = clock_timestamp() + %2$L, read_ct = m.read_ct + 1'
        ' from cte where m.msg_id = cte.msg_id returning m.*',
        bench_pgmq_table(p_queue), make_interval(secs => p_vt)
    ) using p_qty;
end;
$$;
create function bench_pgmq_delete(p_queue text, p_ids bigint[])
returns setof bigint language plpgsql as $$
begin
    return query execute format(
        'delete from %I where msg_id = any($1) returning msg_id', bench_pgmq_table(p_queue)
    ) using p_ids;
end;
$$;
"""
ENQUEUE = "select public.enqueue_message('bench', 'job', '{\"n\": 1}', 5);\n"
PGMQ_SEND = "select bench_pgmq_send('pgmq', '{\"n\": 1}');\n"
BARE_SEND = "insert into bench_pgmq (vt, message) values (clock_timestamp(), '{\"n\": 1}');\n"
CLAIM = (
    "select coalesce(array_agg(c.id), '{{}}') as ids"
    " from public.claim_messages('bench', {batch}, 30, 'w') as c \\gset\n"
    "select public.ack_messages(:ids::bigint[], 'w');\n"
)
PGMQ_READ = (
    "select coalesce(array_agg(r.msg_id), '{{}}') as ids"
    " from bench_pgmq_read('pgmq', 30, {batch}) as r \\gset\n"
    "select count(*) from bench_pgmq_delete('pgmq', :ids::bigint[]);\n"
)
BARE_READ = (
    "with picked as (select q.msg_id from bench_pgmq as q where q.vt <= clock_timestamp()"
    " order by q.msg_id limit {batch} for update skip locked),"
    " read as (update bench_pgmq as m set vt = clock_timestamp() + interval '30 seconds',"
    " read_ct = m.read_ct + 1 from picked where m.msg_id = picked.msg_id returning m.*)"
    " select coalesce(array_agg(r.msg_id), '{{}}') as ids from read as r \\gset\n"
    "delete from bench_pgmq where msg_id = any(:ids::bigint[]);\n"
)
JOB_CLAIM = (
    "select coalesce(array_agg(c.id), '{{}}') as ids"
    " from public.claim_jobs(null, {batch}, 'w') as c \\gset\n"
    "select count(public.complete_job(j.id, null, 'w')) from unnest(:ids::bigint[]) as j (id);\n"
)
WHATSAPP_CLAIM = (
    "select coalesce(jsonb_agg(jsonb_build_object('id', c.id, 'outcome', 'sent', 'provider',"
    " 'meta', 'provider_message_id', 'wamid.bench.' || c.id)), '[]') as results"
    " from public.claim_whatsapp_messages({batch}, 60, 'w') as c \\gset\n"
    "select public.record_whatsapp_sends(:results::jsonb, 'w');\n"
)
# Written directly, as top_up writes message_queue: filling is not measured.
FILL = {
    "background_jobs": (
        "insert into public.background_jobs (job_type, payload)"
        " select 'bench', jsonb_build_object('n', n) from generate_series(1, %s) as n"
    ),
    "whatsapp_message_queue": (
        "insert into public.whatsapp_message_queue (recipient_phone, message_type, payload)"
        " select '+2507' || lpad((n %% 100000)::text, 8, '0'), 'template',"
        ' \'{"name": "ride_update", "language": {"code": "en_US"}}\''
        " from generate_series(1, %s) as n"
    ),
}


BULK = 200_000
BULK_ENQUEUE = (
    "select count(public.enqueue_message('bench', 'job', jsonb_build_object('n', n), 5))"
    " from generate_series(1, %s) as n"
)
BULK_SEND = (
    "select count(s.msg_id) from generate_series(1, %s) as n"
    " cross join lateral bench_pgmq_send('pgmq', jsonb_build_object('n', n)) as s (msg_id)"
)
BULK_INSERT = (
    "insert into bench_pgmq (vt, message)"
    " select clock_timestamp(), jsonb_build_object('n', n) from generate_series(1, %s) as n"
)
SIDES = ("ours", "pgmq", "bare")


@dataclass
class Row:
    """One round of one scenario: per side, calls (or transactions) per second and mean ms."""

    rate: dict[str, float]
    ms: dict[str, float]

    def ratio(self, baseline: str) -> float:
        return self.rate["ours"] / self.rate[baseline]


def make_head(conn: psycopg.Connection[Any], queue: str, queue_name: str) -> None:
    """The head the first enqueue of priority 5 would have made, for rows written directly."""
    conn.execute(
        "insert into private.queue_heads (queue, queue_name, priority)"
        " values (%s, %s, 5) on conflict do nothing",
        (queue, queue_name),
    )


def top_up(url: str, queued: int) -> None:
    """Both queues hold `queued` visible messages, written directly: filling is not measured.
    Written past enqueue_message, ours need the head enqueue would have made."""
    with psycopg.connect(url, autocommit=True) as conn:
        make_head(conn, "message_queue", "bench")
        conn.execute(
            "insert into public.message_queue (queue_name, message_type, payload)"
            " select 'bench', 'job', jsonb_build_object('n', n) from generate_series(1,"
            " greatest(0, %s - (select count(*) from public.message_queue))) as n",
            (queued,),
        )
        conn.execute(
            "insert into bench_pgmq (vt, message)"
            " select now(), jsonb_build_object('n', n) from generate_series(1,"
            " greatest(0, %s - (select count(*) from bench_pgmq))) as n",
            (queued,),
        )
    vacuum(url)


def vacuum(url: str) -> None:
    """Each run starts from vacuumed tables, as pgbench's own runs do: otherwise a run measures
    how many dead rows the one before it left behind."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("vacuum analyze public.message_queue, bench_pgmq")


def empty(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("truncate public.message_queue, public.message_queue_completed, bench_pgmq")
    vacuum(url)


def fill_other(url: str, queue: str, queued: int) -> None:
    """background_jobs or whatsapp_message_queue emptied, then holding `queued` due rows and
    the head their enqueues would have made."""
    with psycopg.connect(url, autocommit=True) as conn:
        table = sql.Identifier("public", queue)
        conn.execute(sql.SQL("truncate {} cascade").format(table))
        conn.execute(FILL[queue], (queued,))  # type: ignore[call-overload]  # constants here
        make_head(conn, queue, "")
        conn.execute(sql.SQL("vacuum analyze {}").format(table))


def still_queued(url: str, queue: str) -> int:
    """Pending rows left after a decay run (pgmq's side: its table)."""
    table = sql.Identifier("bench_pgmq") if queue == "pgmq" else sql.Identifier("public", queue)
    pending = sql.SQL("") if queue == "pgmq" else sql.SQL(" where status = 'pending'")
    with psycopg.connect(url) as conn:
        row = conn.execute(sql.SQL("select count(*) from {}{}").format(table, pending)).fetchone()
    return int(row[0]) if row else 0


def rotated(first: int) -> list[str]:
    """The sides in an order that changes each round, so none always runs on the warmest cache
    or right after a vacuum's aftermath."""
    return [SIDES[(first + n) % len(SIDES)] for n in range(len(SIDES))]


def pgbench_row(
    url: str, scripts: dict[str, str], *, seconds: float, clients: int, first: int, queued: int
) -> Row:
    rate: dict[str, float] = {}
    ms: dict[str, float] = {}
    for side in rotated(first):
        if queued:
            top_up(url, queued)
        run = pgbench(url, scripts[side], seconds=seconds, concurrency=clients)
        rate[side], ms[side] = run.tps, run.latency_ms
    return Row(rate, ms)


def timed_bulk(url: str, statement: str) -> float:
    """Seconds for `statement` on an emptied table analysed while empty, with an ANALYZE from
    another session one second in: what once made every later enqueue read the whole queue."""
    empty(url)
    with psycopg.connect(url, autocommit=True) as conn, psycopg.connect(url) as other:
        analyzer = threading.Timer(
            1.0, lambda: other.execute("analyze public.message_queue, bench_pgmq")
        )
        analyzer.start()
        started = time.perf_counter()
        conn.execute(statement, (BULK,))  # type: ignore[call-overload]  # constants of this file
        elapsed = time.perf_counter() - started
        analyzer.join()
        other.commit()
    return elapsed


def bulk_row(url: str, first: int) -> Row:
    statements = {"ours": BULK_ENQUEUE, "pgmq": BULK_SEND, "bare": BULK_INSERT}
    seconds = {side: timed_bulk(url, statements[side]) for side in rotated(first)}
    return Row(
        {side: BULK / elapsed for side, elapsed in seconds.items()},
        {side: elapsed * 1000 for side, elapsed in seconds.items()},
    )


def print_rows(name: str, rows: list[Row], per_call: int) -> None:
    for number, row in enumerate(rows, 1):
        figures = "".join(
            f"{row.rate[side] * per_call:>10.0f}{row.ms[side]:>9.2f}" for side in SIDES
        )
        print(f"{name:<9}{number:>4}{figures}{row.ratio('pgmq'):>7.2f}{row.ratio('bare'):>7.2f}")
    print(
        f"{name:<9}{'med':>4}{'':>57}{statistics.median(r.ratio('pgmq') for r in rows):>7.2f}"
        f"{statistics.median(r.ratio('bare') for r in rows):>7.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--decay-seconds", type=int, default=60, help="0 skips the decay runs")
    parser.add_argument("--decay-queued", type=int, default=2_500_000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()

    rows: dict[str, list[Row]] = {"enqueue": [], "claim 1": [], "claim 10": [], "bulk": []}
    decays: dict[str, list[float]] = {}
    left: dict[str, int] = {}
    server = start_test_server(durable=True)
    try:
        url = server.url(server.clone("bench_queues"))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(PGMQ_QUEUE)
            conn.execute(PGMQ_FUNCTIONS)
        timing = {"seconds": args.seconds, "clients": args.clients}
        for number in range(args.rounds):
            empty(url)
            enqueue = {"ours": ENQUEUE, "pgmq": PGMQ_SEND, "bare": BARE_SEND}
            rows["enqueue"].append(pgbench_row(url, enqueue, first=number, queued=0, **timing))
            for batch, queued in ((1, 200_000), (10, 600_000)):
                claim = {
                    "ours": CLAIM.format(batch=batch),
                    "pgmq": PGMQ_READ.format(batch=batch),
                    "bare": BARE_READ.format(batch=batch),
                }
                rows[f"claim {batch}"].append(
                    pgbench_row(url, claim, first=number, queued=queued, **timing)
                )
            rows["bulk"].append(bulk_row(url, number))
        if args.decay_seconds:
            decay = {"seconds": args.decay_seconds, "concurrency": args.clients, "progress": 10}
            for side, script in (("message_queue", CLAIM), ("pgmq", PGMQ_READ)):
                empty(url)
                top_up(url, args.decay_queued)
                decays[side] = pgbench(url, script.format(batch=10), **decay).interval_tps
                left[side] = still_queued(url, side)
            empty(url)
            for queue, script in (
                ("background_jobs", JOB_CLAIM),
                ("whatsapp_message_queue", WHATSAPP_CLAIM),
            ):
                fill_other(url, queue, args.decay_queued)
                decays[queue] = pgbench(url, script.format(batch=10), **decay).interval_tps
                left[queue] = still_queued(url, queue)
    finally:
        server.close()

    print(
        f"{os.cpu_count()} cores, {args.clients} clients, {args.seconds:.0f}s per run,"
        f" {args.rounds} rounds, fsync on; per second: calls (claims: messages), ms: mean"
    )
    header = "".join(f"{side + '/s':>10}{'ms':>9}" for side in SIDES)
    print(f"{'':<9}{'rnd':>4}{header}{'/pgmq':>7}{'/bare':>7}")
    print_rows("enqueue", rows["enqueue"], 1)
    print_rows("claim 1", rows["claim 1"], 1)
    print_rows("claim 10", rows["claim 10"], 10)
    print(f"bulk: {BULK:,} in one statement after an ANALYZE of the empty table; ms: its duration")
    print_rows("bulk", rows["bulk"], 1)
    for side, intervals in decays.items():
        first, last = intervals[0] * 10, intervals[-1] * 10
        print(
            f"decay {side}: claim 10 + ack {first:.0f}/s in the first 10 s, {last:.0f} in"
            f" the last ({last / first:.2f}); each 10 s: "
            + ", ".join(f"{tps * 10:.0f}" for tps in intervals)
        )
        if not left[side]:
            # Claims of an empty queue are counted as 10 messages each: the run says nothing
            # from the drain on.
            print(f"  {side} drained before the end: queue more with --decay-queued")
    print("targets: claim 1 and claim 10 >= 1.0 of pgmq; decay last/first >= 0.9")


if __name__ == "__main__":
    main()
