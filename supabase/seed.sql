-- Demo data for the local stack, applied once by `make run` on a new database and by
-- `make reset` (recorded in supabase_migrations.seed_files, as the Supabase CLI does).
-- Each domain appends its rows here (feature flags, services, locations) as it lands; write
-- them so they do not depend on data from earlier runs.

-- Locations: 300 drivers around Kigali (current positions within about 6 km of the centre, spread
-- by fixed primes so every run is alike), and a rider's saved places. Their users first.
insert into public.users (id, phone_number, display_name)
select
    ('00000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid as id,
    '+2507880' || lpad(g::text, 5, '0') as phone_number,
    'Driver ' || g as display_name
from generate_series(1, 300) as g
on conflict do nothing;
insert into public.users (id, phone_number, display_name)
values ('00000000-0000-4000-8000-100000000001', '+250788199999', 'Rider')
on conflict do nothing;

select pg_catalog.count(*) filter (where applied) as drivers_placed
from (
    select
        public.update_current_location(
            ('00000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid,
            -1.9536 + ((g * 7919) % 1000 - 500) / 9000.0,
            30.0606 + ((g * 104729) % 1000 - 500) / 9000.0,
            5 + g % 20,
            (g * 37) % 360,
            (g % 15)::double precision
        ) as applied
    from generate_series(1, 300) as g
) as placed;

select
    public.save_location(
        '00000000-0000-4000-8000-100000000001', p.kind, p.lat, p.lng, p.name, p.address, null,
        'Kigali', 'RW'
    )
from (
    values
    ('home', -1.9441, 30.0619, 'Home', 'KN 3 Rd, Kiyovu'),
    ('work', -1.9536, 30.0928, 'Kigali Convention Centre', 'KG 2 Roundabout'),
    ('favorite', -1.9706, 30.1044, 'Kigali Heights', 'KG 7 Ave'),
    ('favorite', -1.9626, 30.1394, 'Kigali International Airport', 'KN 5 Rd, Kanombe')
) as p (kind, lat, lng, name, address);

-- Two cached routes (a week to live): Kiyovu to the Convention Centre, and on to the airport.
select
    public.cache_route(
        r.from_lat, r.from_lng, r.to_lat, r.to_lng, 'driving',
        extensions.st_asencodedpolyline(
            extensions.st_setsrid(extensions.st_makeline(r.points), 4326)
        ),
        r.meters, r.seconds, 1.2, 10080, 'seed'
    )
from (
    values
    (
        -1.9441, 30.0619, -1.9536, 30.0928,
        array[
            extensions.st_makepoint(30.0619, -1.9441), extensions.st_makepoint(30.0702, -1.9489),
            extensions.st_makepoint(30.0811, -1.9522), extensions.st_makepoint(30.0928, -1.9536)
        ],
        4200, 660
    ),
    (
        -1.9536, 30.0928, -1.9626, 30.1394,
        array[
            extensions.st_makepoint(30.0928, -1.9536), extensions.st_makepoint(30.1044, -1.9706),
            extensions.st_makepoint(30.1230, -1.9672), extensions.st_makepoint(30.1394, -1.9626)
        ],
        6900, 900
    )
) as r (from_lat, from_lng, to_lat, to_lng, points, meters, seconds);
