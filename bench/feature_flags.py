"""Feature flag evaluation: is_feature_enabled under pgbench against reading the flag's row, and
evaluate_feature_flags' server time with 50 flags, on a throwaway cluster (fsync on).

  is_feature_enabled   a percentage flag (50%) with two constraints (appName IN, a custom
                       property NOT_IN), users drawn from 10,000 already evaluated once (steady
                       state: every answer recorded, so a call writes nothing), pgbench -M
                       prepared from --clients clients
  baseline             `select enabled from public.feature_flags where key = 'new_ui'`, the same
                       way, in the same run
  evaluate_feature_flags
                       50 flags of every strategy for one user, timed inside the server
                       (clock_timestamp around each call, --calls calls): p50 and p99, against
                       reading the 50 rows the same way

    .venv/bin/python -m bench.feature_flags [--seconds 10] [--clients 8] [--calls 500]
"""

from __future__ import annotations

import argparse
import os

import psycopg

from bench.pgbench import pgbench
from tests.support.server import start_test_server

USERS = 10_000
CONTEXT = '{"appName": "rider", "properties": {"city": "Kigali"}}'
FLAG = """
insert into public.feature_flags (key, name, enabled, rollout_strategy, rollout_percentage,
    conditions)
values ('new_ui', 'New UI', true, 'percentage', 50,
    '[{"contextName": "appName", "operator": "IN", "values": ["rider", "driver"]},
      {"contextName": "city", "operator": "NOT_IN", "values": ["Musanze"]}]')
"""
FIFTY_FLAGS = """
insert into public.feature_flags (key, name, enabled, rollout_strategy, rollout_percentage,
    target_users, conditions)
select
    'flag_' || g, 'Flag ' || g, true,
    (array['percentage', 'user_list', 'condition', 'all', 'none'])[g % 5 + 1],
    (g * 7) % 100,
    case when g % 5 = 1 then array['user-1', 'user-2', 'user-3'] else '{}' end,
    case when g % 5 = 2
        then '[{"contextName": "appName", "operator": "IN", "values": ["rider"]}]'::jsonb
        else '[]'::jsonb end
from generate_series(1, 49) as g
"""
EVALUATE = f"""\\set u random(1, {USERS})
select public.is_feature_enabled('new_ui', 'user-' || :u, 'production', '{CONTEXT}'::jsonb);
"""
READ_ROW = """select enabled from public.feature_flags where key = 'new_ui';
"""
# Floors: what an evaluation cannot cost less than in PL/pgSQL, step by step (made in the bench's
# database only): a function that reads the row; that also hashes (Unleash's bucket); that also
# looks the answer up and counts it (what is needed not to write a repeated answer).
FLOORS = {
    "plpgsql read": "select v_flag.enabled",
    "+ murmur3": (
        "select private.murmur3_32(p_key || ':' || p_user) % 100 + 1 <= v_flag.rollout_percentage"
    ),
    "+ answer, count": (
        "select private.murmur3_32(p_key || ':' || p_user) % 100 + 1"
        " <= v_flag.rollout_percentage"
        " from (select pg_catalog.nextval(('counters.feature_flag_' || v_flag.id"
        " || '_evaluations')::regclass)) as counted"
        " left join public.feature_flag_evaluations as e"
        " on e.subject = p_user and e.environment = 'production' and e.flag_key = p_key"
    ),
}
FLOOR_FUNCTION = """
create function public.bench_floor_{n}(p_key text, p_user text) returns boolean
language plpgsql volatile set search_path = '' as $$
declare
    v_flag public.feature_flags;
    v_answer boolean;
begin
    select f.* into v_flag from public.feature_flags as f
    where f.key = p_key and f.environment in ('production', 'all')
    order by f.environment = 'all' limit 1;
    {body} into v_answer;
    return v_answer;
end;
$$
"""
FLOOR_CALL = """\\set u random(1, {users})
select public.bench_floor_{n}('new_ui', 'user-' || :u);
"""
SERVER_TIMES = """
do $$
declare
    v_started timestamptz;
begin
    for i in 1 .. %(calls)s loop
        v_started := clock_timestamp();
        perform %(call)s;
        insert into bench_times (what, ms)
        values (%(what)s, extract(epoch from clock_timestamp() - v_started) * 1000);
    end loop;
end;
$$
"""


def server_times(conn: psycopg.Connection, what: str, call: str, calls: int) -> tuple[float, float]:
    """p50 and p99 of `call`'s time inside the server, over `calls` calls (`i` is the call's
    number)."""
    conn.execute(
        SERVER_TIMES.replace("%(calls)s", str(calls))
        .replace("%(call)s", call)
        .replace("%(what)s", "'" + what + "'")
    )
    row = conn.execute(
        "select percentile_cont(0.5) within group (order by ms),"
        " percentile_cont(0.99) within group (order by ms) from bench_times where what = %s",
        (what,),
    ).fetchone()
    assert row is not None
    return float(row[0]), float(row[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()

    server = start_test_server(durable=True)
    try:
        url = server.url(server.clone("bench_flags"))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(FLAG)
            conn.execute(
                "select count(*) from generate_series(1, %s) as g"
                " where public.is_feature_enabled('new_ui', 'user-' || g, 'production', %s)",
                (USERS, CONTEXT),
            )
            conn.execute("vacuum analyze public.feature_flags, public.feature_flag_evaluations")
        run = {"seconds": args.seconds, "concurrency": args.clients}
        ours, baseline = pgbench(url, EVALUATE, **run), pgbench(url, READ_ROW, **run)
        floors = {}
        with psycopg.connect(url, autocommit=True) as conn:
            for n, body in enumerate(FLOORS.values()):
                conn.execute(FLOOR_FUNCTION.format(n=n, body=body))
        for n, name in enumerate(FLOORS):
            floors[name] = pgbench(url, FLOOR_CALL.format(n=n, users=USERS), **run)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(FIFTY_FLAGS)
            conn.execute("create temporary table bench_times (what text, ms double precision)")
            flags = conn.execute(
                "select count(*) from public.feature_flags where environment = 'all'"
            ).fetchone()
            assert flags is not None, "no flags"
            assert flags[0] == 50, flags
            # Each user's answers are recorded first: the timed calls are the steady state.
            conn.execute(
                "select public.evaluate_feature_flags('user-' || g, 'production', %s)"
                " from generate_series(1, 100) as g",
                (CONTEXT,),
            )
            evaluate = server_times(
                conn,
                "evaluate",
                "public.evaluate_feature_flags('user-' || (i % 100 + 1), 'production', "
                f"'{CONTEXT}'::jsonb)",
                args.calls,
            )
            rows = server_times(
                conn,
                "rows",
                "(select jsonb_object_agg(f.key, f.enabled) from public.feature_flags as f"
                " where f.environment in ('production', 'all'))",
                args.calls,
            )
    finally:
        server.close()

    print(f"{os.cpu_count()} cores, {args.clients} clients, {args.seconds:.0f}s per row, fsync on")
    print(f"{'':<22}{'calls/s':>10}{'mean ms':>9}")
    print(f"{'is_feature_enabled':<22}{ours.tps:>10.0f}{ours.latency_ms:>9.3f}")
    print(f"{'read the flag row':<22}{baseline.tps:>10.0f}{baseline.latency_ms:>9.3f}")
    print(f"ratio {ours.tps / baseline.tps:.2f} (target >= 0.5)")
    for name, floor in floors.items():
        print(
            f"floor: {name:<16}{floor.tps:>10.0f}{floor.latency_ms:>9.3f}"
            f"   ratio {floor.tps / baseline.tps:.2f}"
        )
    print(f"{'server time, ms':<26}{'p50':>8}{'p99':>8}")
    print(
        f"{'evaluate_feature_flags':<26}{evaluate[0]:>8.3f}{evaluate[1]:>8.3f}   (target p50 < 1)"
    )
    print(f"{'read the 50 rows':<26}{rows[0]:>8.3f}{rows[1]:>8.3f}")


if __name__ == "__main__":
    main()
