"""Locations: the nearest locations to a point among --locations over Rwanda, and drivers'
position reports under pgbench, each against the same work as raw SQL in the same run, on one
throwaway cluster with fsync and synchronous_commit on.

  store            --locations rows over Rwanda (latitude -2.84 to -1.05, longitude 28.86 to
                   30.90), half of them around Kigali (-1.95, 30.06; a normal spread of 0.05
                   degrees, about 5.5 km): --drivers current positions (one per driver) and
                   the rest saved places of riders (home, work, and one of favorite, pickup,
                   dropoff each), loaded, vacuumed and analyzed
  find, any type   find_nearby_locations(lat, lng, 3000, null, 20) at --points points drawn as
                   the store is (half in Kigali): each call timed inside the server
                   (clock_timestamp around it), p50 and p99 in ms, after as many unrecorded
                   calls; and the same query as raw SQL (the points' KNN <-> in degrees within
                   a box around the circle, ST_DWithin on the spheroid, the exact distance,
                   nearest first, the plane's proof) at the same points, interleaved call by
                   call, so
                   load from elsewhere on the machine falls on both alike. Both with
                   enable_sort off, as find_nearby_locations sets it: without it the planner
                   takes a bitmap scan and a sort where drivers are dense (36-45 ms)
  find, current    the same with p_location_type 'current' (the matching service's question),
                   the raw SQL naming the type as a constant
  find under load  pgbench from --clients clients, a random point in central Kigali per call
                   (the densest part), find_nearby_locations against the raw SQL: calls/s, p50,
                   p99 per call
  update           update_current_location of a random one of the drivers to a random point in
                   Kigali, pgbench from --clients clients, against a plain one-row update of the
                   same columns of the same row (target >= 0.6 of it); the two alternate in 2
                   rounds of --seconds / 2 (the second in reverse order). Both move the point,
                   so both write the GiST entries; a stationary report (same point) is timed
                   too, as the HOT update it is
"""

from __future__ import annotations

import argparse
import os
import time

import psycopg

from bench.pgbench import PgbenchRun, pgbench
from bench.service_registry import merged
from tests.support.server import start_test_server

# The n-th driver's user id and the n-th rider's: known to pgbench scripts without a lookup.
DRIVER_ID = "('00000000-0000-4000-8000-' || lpad(({n})::text, 12, '0'))::uuid"
RIDER_ID = "('00000000-0000-4000-9000-' || lpad(({n})::text, 12, '0'))::uuid"

# A point as the store spreads them: half around Kigali, half anywhere in Rwanda's box, clamped
# to the box. A lateral subquery of {seed} (the row's number), so each row draws its own.
POINT = """
cross join lateral (select random() < 0.5 as kigali, {seed} as seed) as k
cross join lateral (
    select
        least(-1.05, greatest(-2.84, case when k.kigali
            then -1.95 + 0.05 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())
            else -2.84 + random() * (2.84 - 1.05)
        end)) as lat,
        least(30.90, greatest(28.86, case when k.kigali
            then 30.06 + 0.05 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())
            else 28.86 + random() * (30.90 - 28.86)
        end)) as lng,
        k.seed
) as p
"""

LOAD = f"""
set session_replication_role = replica;
insert into public.users (id, phone_number)
select {DRIVER_ID.format(n="n")}, '+2507' || lpad(n::text, 8, '0')
from generate_series(1, %(drivers)s) as n;
insert into public.users (id, phone_number)
select {RIDER_ID.format(n="n")}, '+2508' || lpad(n::text, 8, '0')
from generate_series(1, %(riders)s) as n;
insert into public.locations (
    user_id, location_type, coordinates, accuracy_meters, heading, speed_mps, recorded_at
)
select {DRIVER_ID.format(n="n")}, 'current',
    extensions.st_setsrid(extensions.st_makepoint(p.lng, p.lat), 4326)::extensions.geography,
    5, 90, 8, now() - random() * interval '10 minutes'
from generate_series(1, %(drivers)s) as n
{POINT.format(seed="n")};
insert into public.locations (user_id, location_type, coordinates, place_name, recorded_at)
select {RIDER_ID.format(n="r.n")}, t.location_type,
    extensions.st_setsrid(extensions.st_makepoint(p.lng, p.lat), 4326)::extensions.geography,
    'place', now() - interval '1 day'
from generate_series(1, %(riders)s) as r (n)
cross join lateral (
    values ('home'), ('work'), ((array['favorite', 'pickup', 'dropoff'])[1 + r.n %% 3])
) as t (location_type)
{POINT.format(seed="r.n")};
set session_replication_role = origin;
"""

POINTS = f"""
create table bench_points as
select i, p.lat, p.lng
from generate_series(1, %(points)s) as i
{POINT.format(seed="i")};
create table bench_times (what text, ms double precision);
"""

# The raw SQL: find_nearby_locations' query with the point, radius, limit (ten candidates more,
# ranked exactly, returned when the plane proves none left behind is nearer) and type as values.
RAW = """
with q as not materialized (
    select c.centre, c.centre::extensions.geography as point,
        extensions.st_expand(
            c.centre,
            3000 * 1.01 / (111319 * cos(radians(abs({lat}) + 3000 * 1.01 / 110574))),
            3000 * 1.01 / 110574
        ) as box,
        least(110574, 111319 * cos(radians(abs({lat}) + 3000 * 1.01 / 110574))) as metres
    from (select extensions.st_setsrid(extensions.st_makepoint({lng}, {lat}), 4326)
        as centre) as c
),
fetched as materialized (
    select l.id, l.user_id, l.location_type,
        extensions.st_y(l.coordinates::extensions.geometry) as lat,
        extensions.st_x(l.coordinates::extensions.geometry) as lng,
        extensions.st_distance(l.coordinates, q.point, true) as distance_meters,
        l.place_name, l.address, l.city, l.recorded_at,
        l.coordinates::extensions.geometry operator(extensions.<->) q.centre as plane
    from public.locations as l, q
    where {type_filter}l.coordinates::extensions.geometry operator(extensions.&&) q.box
        and extensions.st_dwithin(l.coordinates, q.point, 3000, true)
    order by plane
    limit 30
)
select f.id, f.user_id, f.location_type, f.lat, f.lng, f.distance_meters, f.place_name,
    f.address, f.city, f.recorded_at
from fetched as f
where (select count(*) from fetched) < 30 or (
    select n.distance_meters from fetched as n order by n.distance_meters offset 19 limit 1
) < (select max(m.plane) from fetched as m) * (select q.metres from q)
order by f.distance_meters, f.id
limit 20
"""

# Each call timed inside the server, ours and the raw SQL's alternating, after a warm-up round.
TIMED = """
do $$
declare
    v_point record;
    v_started timestamptz;
    v_round integer;
begin
    for v_round in 1 .. 2 loop
        for v_point in select p.lat, p.lng from bench_points as p order by p.i loop
            v_started := clock_timestamp();
            perform count(*) from public.find_nearby_locations(
                v_point.lat, v_point.lng, 3000, {type_argument}, 20
            );
            if v_round = 2 then
                insert into bench_times values ('{name} ours',
                    extract(epoch from clock_timestamp() - v_started) * 1000);
            end if;
            v_started := clock_timestamp();
            perform count(*) from ({raw}) as r;
            if v_round = 2 then
                insert into bench_times values ('{name} raw',
                    extract(epoch from clock_timestamp() - v_started) * 1000);
            end if;
        end loop;
    end loop;
end;
$$
"""

FIND_SCRIPT = """\\set lat random(-2000, -1900) / 1000.0
\\set lng random(30000, 30120) / 1000.0
select count(*) from public.find_nearby_locations(:lat, :lng, 3000, 'current', 20);
"""
RAW_SCRIPT = (
    "\\set lat random(-2000, -1900) / 1000.0\n\\set lng random(30000, 30120) / 1000.0\n"
    "select count(*) from ("
    + " ".join(
        RAW.format(lat=":lat", lng=":lng", type_filter="l.location_type = 'current' and ").split()
    )
    + ") as r;\n"
)

UPDATE_SCRIPT = f"""\\set d random(1, :drivers)
\\set lat random(-2000, -1900) / 1000.0
\\set lng random(30000, 30120) / 1000.0
select public.update_current_location({DRIVER_ID.format(n=":d")}, :lat, :lng, 5, 90, 8);
"""
PLAIN_SCRIPT = f"""\\set d random(1, :drivers)
\\set lat random(-2000, -1900) / 1000.0
\\set lng random(30000, 30120) / 1000.0
update public.locations set
    coordinates
        = extensions.st_setsrid(extensions.st_makepoint(:lng, :lat), 4326)::extensions.geography,
    accuracy_meters = 5, heading = 90, speed_mps = 8, recorded_at = now(), updated_at = now()
where user_id = {DRIVER_ID.format(n=":d")} and location_type = 'current';
"""
# The same point again: nothing indexed changes.
STATIONARY_SCRIPT = f"""\\set d random(1, :drivers)
select public.update_current_location(
    {DRIVER_ID.format(n=":d")},
    extensions.st_y(l.coordinates::extensions.geometry),
    extensions.st_x(l.coordinates::extensions.geometry),
    5, 90, 0
)
from public.locations as l
where l.user_id = {DRIVER_ID.format(n=":d")} and l.location_type = 'current';
"""


def one_line(script: str) -> str:
    """pgbench reads a statement per line."""
    lines = script.splitlines()
    meta = [line for line in lines if line.startswith("\\")]
    body = " ".join(line.strip() for line in lines if not line.startswith("\\"))
    return "\n".join([*meta, body]) + "\n"


def build(url: str, locations: int, drivers: int, points: int) -> float:
    started = time.monotonic()
    riders = (locations - drivers) // 3
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in LOAD.split(";\n"):
            if statement.strip():
                conn.execute(statement, {"drivers": drivers, "riders": riders})
        conn.execute("vacuum analyze public.users, public.locations")
        for statement in POINTS.split(";\n"):
            if statement.strip():
                conn.execute(statement, {"points": points})
        conn.execute("analyze bench_points")
    return time.monotonic() - started


def server_figures(url: str) -> dict[str, tuple[float, float]]:
    figures = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for name, type_argument, type_filter in (
            ("any", "null", ""),
            ("current", "'current'", "l.location_type = 'current' and "),
        ):
            raw = RAW.format(lat="v_point.lat", lng="v_point.lng", type_filter=type_filter)
            conn.execute(TIMED.format(name=name, type_argument=type_argument, raw=raw))
            for side in ("ours", "raw"):
                row = conn.execute(
                    "select percentile_cont(0.5) within group (order by ms),"
                    " percentile_cont(0.99) within group (order by ms)"
                    " from bench_times where what = %s",
                    (f"{name} {side}",),
                ).fetchone()
                assert row is not None
                figures[f"{name} {side}"] = (float(row[0]), float(row[1]))
        found = conn.execute(
            "select avg(c) from (select (select count(*) from public.find_nearby_locations("
            "p.lat, p.lng, 3000, 'current', 20)) as c from bench_points as p) as s"
        ).fetchone()
        assert found is not None
        figures["found current"] = (float(found[0]), 0.0)
    return figures


def alternate(
    url: str, scripts: dict[str, str], seconds: float, clients: int, drivers: int
) -> dict[str, PgbenchRun]:
    runs: dict[str, list[PgbenchRun]] = {name: [] for name in scripts}
    for order in (list(scripts), list(reversed(scripts))):
        for name in order:
            runs[name].append(
                pgbench(
                    url,
                    one_line(scripts[name]),
                    seconds=seconds / 2,
                    concurrency=clients,
                    defines={"drivers": str(drivers)},
                    latencies=True,
                )
            )
    return {name: merged(r) for name, r in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--locations", type=int, default=1_000_000)
    parser.add_argument("--drivers", type=int, default=100_000)
    parser.add_argument("--points", type=int, default=1000)
    args = parser.parse_args()

    server = start_test_server(durable=True)
    try:
        database = server.clone("bench_locations")
        url = server.url(database)
        with psycopg.connect(url, autocommit=True) as conn:
            # As the edge calls it: service_role's claims (the pgbench sessions inherit them).
            conn.execute(
                f'alter database {database} set request.jwt.claims = \'{{"role": "service_role"}}\''
            )
            # The raw SQL runs with find_nearby_locations' planner setting (see its comment), so
            # both take the KNN plan: the same query, the same plan.
            conn.execute(f"alter database {database} set enable_sort = off")
        load_seconds = build(url, args.locations, args.drivers, args.points)
        with psycopg.connect(url, autocommit=True) as conn:
            counted = conn.execute(
                "select count(*), count(*) filter (where location_type = 'current')"
                " from public.locations"
            ).fetchone()
            assert counted is not None
        figures = server_figures(url)
        finds = alternate(
            url, {"ours": FIND_SCRIPT, "raw": RAW_SCRIPT}, args.seconds, args.clients, args.drivers
        )
        updates = alternate(
            url,
            {"ours": UPDATE_SCRIPT, "plain": PLAIN_SCRIPT, "stationary": STATIONARY_SCRIPT},
            args.seconds,
            args.clients,
            args.drivers,
        )
        with psycopg.connect(url, autocommit=True) as conn:
            hot = conn.execute(
                "select n_tup_upd, n_tup_hot_upd from pg_stat_user_tables"
                " where relid = 'public.locations'::regclass"
            ).fetchone()
            assert hot is not None
    finally:
        server.close()

    print(
        f"{os.cpu_count()} cores, {args.clients} clients, {args.seconds:.0f}s per pgbench pair,"
        f" fsync on; {counted[0]:,} locations ({counted[1]:,} current), load {load_seconds:.0f}s"
    )
    print(f"20 nearest within 3 km, {args.points} points, timed in the server:")
    print(f"{'':<36}{'p50 ms':>8}{'p99 ms':>8}")
    for name, label in (("any", "any type"), ("current", "type current")):
        for side, what in (("ours", "find_nearby_locations"), ("raw", "raw SQL")):
            p50, p99 = figures[f"{name} {side}"]
            print(f"{label + ', ' + what:<36}{p50:>8.3f}{p99:>8.3f}")
    print(f"(type current: {figures['found current'][0]:.1f} rows found per call on average)")
    print("under pgbench, a point in central Kigali, type current:")
    print(f"{'':<36}{'calls/s':>9}{'p50 ms':>8}{'p99 ms':>8}")
    for side, what in (("ours", "find_nearby_locations"), ("raw", "raw SQL")):
        run = finds[side]
        print(f"{what:<36}{run.tps:>9.0f}{run.percentile(50):>8.2f}{run.percentile(99):>8.2f}")
    print(f"ratio {finds['ours'].tps / finds['raw'].tps:.2f}")
    print(f"position reports on {args.drivers:,} drivers:")
    for side, what in (
        ("ours", "update_current_location (moving)"),
        ("plain", "plain one-row update (baseline)"),
        ("stationary", "update_current_location (same point)"),
    ):
        run = updates[side]
        print(f"{what:<36}{run.tps:>9.0f}{run.percentile(50):>8.2f}{run.percentile(99):>8.2f}")
    print(
        f"ratio moving / plain {updates['ours'].tps / updates['plain'].tps:.2f} (target >= 0.6);"
        f" table updates {hot[0]:,}, of them HOT {hot[1]:,}"
    )


if __name__ == "__main__":
    main()
