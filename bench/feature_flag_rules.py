"""What one evaluation of the feature flag rules costs inside Postgres, per call, against raw
Postgres doing comparable work in the same query shape and run.

Each figure is the time of `select count(f(x_i)) from generate_series(1, N)` divided by N, the
best of three runs; the baseline lines (the same series computing only the arguments) say how
much of it is the query and its arguments rather than the function.

  murmur3_32        a 40-byte key (md5 of i plus 8 bytes); baseline: building the key
  normalized_hash   group 'new_ui', identifier 'user-<i>'
  constraints       unleash_constraints_hold on one context per row (environment, userId and
                    three properties), for one constraint of each kind and a typical pair;
                    baseline: building the context

    .venv/bin/python -m bench.feature_flag_rules [--rows 50000]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from tests.support.server import start_test_server

CONTEXT = (
    "jsonb_build_object('environment', 'production', 'userId', 'u' || i, 'properties', "
    "jsonb_build_object('email', 'a' || i || '@x.rw', 'n', i::text, 'v', '1.' || i % 10 || '.0'))"
)
CONSTRAINTS = {
    "IN": [{"contextName": "environment", "operator": "IN", "values": ["production", "staging"]}],
    "STR_ENDS_WITH caseInsensitive": [
        {
            "contextName": "email",
            "operator": "STR_ENDS_WITH",
            "values": ["@X.RW"],
            "caseInsensitive": True,
        }
    ],
    "NUM_GT": [{"contextName": "n", "operator": "NUM_GT", "value": "12"}],
    "DATE_AFTER (currentTime now)": [
        {
            "contextName": "currentTime",
            "operator": "DATE_AFTER",
            "value": "2022-01-30T13:00:00.000Z",
        }
    ],
    "SEMVER_GT": [{"contextName": "v", "operator": "SEMVER_GT", "value": "1.2.3"}],
    "SEMVER_GT pre-release": [{"contextName": "v", "operator": "SEMVER_GT", "value": "1.2.3-rc.1"}],
    "IN + STR_ENDS_WITH": [
        {"contextName": "environment", "operator": "IN", "values": ["production"]},
        {"contextName": "email", "operator": "STR_ENDS_WITH", "values": [".rw"]},
    ],
}


def per_call_us(conn: psycopg.Connection[Any], expression: str, rows: int) -> float:
    query = f"select count({expression}) from generate_series(1, {rows}) as i"
    conn.execute(query)  # warm: plans, regular expressions, PL/pgSQL compiled
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        conn.execute(query)
        best = min(best, time.perf_counter() - started)
    return best / rows * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    rows = parser.parse_args().rows
    server = start_test_server()
    try:
        with psycopg.connect(server.url(server.clone("bench_flag_rules")), autocommit=True) as conn:
            key = "md5(i::text) || 'abcdefgh'"
            lines = [
                ("baseline: a 40-byte key", per_call_us(conn, key, rows)),
                ("murmur3_32, 40-byte key", per_call_us(conn, f"private.murmur3_32({key})", rows)),
                (
                    "unleash_normalized_hash",
                    per_call_us(
                        conn, "private.unleash_normalized_hash('new_ui', 'user-' || i)", rows
                    ),
                ),
                ("baseline: a context", per_call_us(conn, CONTEXT, rows)),
            ]
            for name, constraints in CONSTRAINTS.items():
                literal = sql.Literal(Jsonb(constraints)).as_string(conn)
                expression = f"private.unleash_constraints_hold({literal}, {CONTEXT})"
                lines.append((f"constraints: {name}", per_call_us(conn, expression, rows)))
        for name, micros in lines:
            print(f"{name:45s} {micros:7.2f} us per call")
    finally:
        server.close()


if __name__ == "__main__":
    main()
