"""The route cache: get_cached_route under pgbench, hits and misses, against the same lookup as a
plain prepared query, on --routes cached routes around Kigali, on one throwaway cluster with fsync
on.

  hit        get_cached_route(origin, destination, 60, 'driving', 100) asked from the very ends
             of a random cached route: it returns that route (or a neighbour as fresh), counts a
             hit
  miss       the same from a random cached origin to a destination 0.05 degrees (5.5 km) north
             of that route's: the routes near the origin are read, none matches, counts a miss
  raw hit, raw miss
             the lookup get_cached_route runs (origin and destination within 100 m on the
             spheroid, profile, unexpired, created within 60 minutes, freshest first, limit 1,
             the same columns and offsets) as one prepared statement, no checks, no counting

Route i (1 to --routes) starts on a grid over Kigali: latitude -2.05 + (i mod 400) * 0.0005
(55 m apart), longitude 29.96 + (i div 400) * 0.0008 (89 m apart), so a 100 m circle around an
origin holds a handful of other origins; it ends 1 to 3 km south-east of it, a two-point polyline;
all driving, made within the last 50 minutes, expiring in a day. pgbench recomputes route i's ends
from i (a client's random route), so no table is read to pick one. The four scripts alternate in
2 rounds of --seconds / 2 (the second in reverse order), each figure over both rounds; pgbench -M
prepared, --clients clients, -j 2, p50 and p99 from pgbench's per-transaction log. Before the
runs, 200 routes are asked both ways through the function and the raw query, which must agree
(a hit returns a row, a miss none); after them the hits and misses counted must equal the calls
pgbench made.

    .venv/bin/python -m bench.routes [--seconds 20] [--clients 8] [--routes 100000]
"""

from __future__ import annotations

import argparse
import os

import psycopg

from bench.pgbench import PgbenchRun, pgbench
from bench.service_registry import line, merged
from tests.support.server import start_test_server

ROUNDS = 2

ENDS = """\\set i random(1, {routes})
\\set olat -2.05 + (:i % 400) * 0.0005
\\set olng 29.96 + (:i / 400) * 0.0008
\\set dlat :olat - 0.01 - (:i * 7 % 100) * 0.0002
\\set dlng :olng + 0.01 + (:i * 13 % 100) * 0.0002
"""
MISSED = "\\set dlat :dlat + 0.05\n"
CALL = "select * from public.get_cached_route(:olat, :olng, :dlat, :dlng, 60, 'driving', 100);\n"
RAW = """\
select r.id, r.profile, r.encoded_polyline, r.distance_meters, r.duration_seconds,
    r.traffic_multiplier, r.provider, r.created_at, r.expires_at,
    extensions.st_y(r.origin::extensions.geometry), extensions.st_x(r.origin::extensions.geometry),
    extensions.st_y(r.destination::extensions.geometry),
    extensions.st_x(r.destination::extensions.geometry),
    extensions.st_distance(r.origin, a.origin), extensions.st_distance(r.destination, a.destination)
from (select
        extensions.st_setsrid(extensions.st_makepoint(:olng::float8, :olat::float8), 4326)
            ::extensions.geography as origin,
        extensions.st_setsrid(extensions.st_makepoint(:dlng::float8, :dlat::float8), 4326)
            ::extensions.geography as destination
    ) as a
inner join public.routes as r
    on extensions.st_dwithin(r.origin, a.origin, 100)
    and extensions.st_dwithin(r.destination, a.destination, 100)
where r.profile = 'driving' and r.expires_at > now()
    and r.created_at >= now() - make_interval(mins => 60)
order by r.created_at desc, r.id desc
limit 1;
"""

BUILD = """
insert into public.routes (
    profile, origin, destination, encoded_polyline, distance_meters, duration_seconds,
    created_at, expires_at
)
select
    'driving',
    extensions.st_setsrid(extensions.st_makepoint(e.olng, e.olat), 4326)::extensions.geography,
    extensions.st_setsrid(extensions.st_makepoint(e.dlng, e.dlat), 4326)::extensions.geography,
    extensions.st_asencodedpolyline(extensions.st_setsrid(extensions.st_makeline(
        extensions.st_makepoint(e.olng, e.olat), extensions.st_makepoint(e.dlng, e.dlat)
    ), 4326)),
    1000 + e.i % 2000,
    120 + e.i % 600,
    now() - make_interval(mins => e.i % 50),
    now() + interval '1 day'
from (
    select
        g.i,
        -2.05 + (g.i % 400) * 0.0005 as olat,
        29.96 + (g.i / 400) * 0.0008 as olng,
        -2.05 + (g.i % 400) * 0.0005 - 0.01 - (g.i * 7 % 100) * 0.0002 as dlat,
        29.96 + (g.i / 400) * 0.0008 + 0.01 + (g.i * 13 % 100) * 0.0002 as dlng
    from generate_series(1, {routes}) as g (i)
) as e
"""

CHECK = """
select
    count(*) filter (where f.id is not null),
    count(*) filter (where w.id is not null),
    count(*) filter (where f.id is null),
    count(*) filter (where w.id is null)
from generate_series(1, {routes}, {routes} / 200) as g (i)
cross join lateral (
    select
        -2.05 + (g.i % 400) * 0.0005 as olat,
        29.96 + (g.i / 400) * 0.0008 as olng,
        -2.05 + (g.i % 400) * 0.0005 - 0.01 - (g.i * 7 % 100) * 0.0002 as dlat,
        29.96 + (g.i / 400) * 0.0008 + 0.01 + (g.i * 13 % 100) * 0.0002 as dlng
) as e
left join lateral public.get_cached_route(e.olat, e.olng, e.dlat, e.dlng) as f on true
left join lateral public.get_cached_route(e.olat, e.olng, e.dlat + 0.05, e.dlng) as w on true
"""

COUNTED = """
select
    private.counter_value('route_cache_driving_hits'),
    private.counter_value('route_cache_driving_misses')
"""


def prepare(url: str, routes: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        # The bench's own SQL, the count put in as text: its modulo signs are no placeholders.
        conn.execute(BUILD.replace("{routes}", str(routes)))  # type: ignore[arg-type]
        conn.execute("vacuum analyze public.routes")
        check = conn.execute(CHECK.replace("{routes}", str(routes))).fetchone()  # type: ignore[arg-type]
        found, _, _, missed = check or (0, 0, 0, 0)
        asked = len(range(1, routes + 1, routes // 200))
        if (found, missed) != (asked, asked):
            raise RuntimeError(f"of {asked} routes asked, {found} hit and {missed} missed")


def counted(url: str) -> tuple[int, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(COUNTED).fetchone()
    assert row is not None
    return row[0], row[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--routes", type=int, default=100_000)
    args = parser.parse_args()

    ends = ENDS.format(routes=args.routes)
    scripts = {
        "hit": ends + CALL,
        "miss": ends + MISSED + CALL,
        "raw hit": ends + RAW,
        "raw miss": ends + MISSED + RAW,
    }
    server = start_test_server(durable=True)
    try:
        url = server.url(server.clone("bench_routes"))
        prepare(url, args.routes)
        before = counted(url)
        runs: dict[str, list[PgbenchRun]] = {name: [] for name in scripts}
        run = {"seconds": args.seconds / ROUNDS, "concurrency": args.clients, "latencies": True}
        for n in range(ROUNDS):
            order = list(scripts) if n % 2 == 0 else list(reversed(scripts))
            for name in order:
                runs[name].append(pgbench(url, scripts[name], **run))
        after = counted(url)
    finally:
        server.close()

    figures = {name: merged(r) for name, r in runs.items()}
    hits, misses = after[0] - before[0], after[1] - before[1]
    if (hits, misses) != (figures["hit"].transactions, figures["miss"].transactions):
        raise RuntimeError(
            f"counted {hits} hits and {misses} misses for {figures['hit'].transactions} and"
            f" {figures['miss'].transactions} calls"
        )
    print(
        f"{os.cpu_count()} cores, {args.clients} clients, {args.routes} routes,"
        f" {args.seconds:.0f}s per row in {ROUNDS} rounds, fsync on"
    )
    print(f"{'':<10}{'tps':>10}{'p50 ms':>9}{'p99 ms':>9}{'calls':>10}")
    for name, figure in figures.items():
        line(name, figure)
    print(f"ratio hit/raw hit: {figures['hit'].tps / figures['raw hit'].tps:.2f}")
    print(f"ratio miss/raw miss: {figures['miss'].tps / figures['raw miss'].tps:.2f}")
    print(f"counted: {hits} hits and {misses} misses, one per call")


if __name__ == "__main__":
    main()
