-- locations (migration 20261207150200_locations.sql, functions in
-- supabase/functions-sql/*_locations.sql): the current position's report (made, moved, an older
-- one ignored, a HOT update when it does not move), saved places, delete_location, the nearest
-- locations with exact distances, the type filter and the maximum age, every bad input, and who
-- may call and read what. Runs as postgres on a fresh clone in one transaction.
begin;
select plan(104);

create temp table seen (note text primary key, id uuid, applied boolean);
grant select, insert on pg_temp.seen to anon, authenticated, service_role;

create temp table visible (viewer text, id uuid);
grant select, insert on pg_temp.visible to anon, authenticated, service_role;

-- Aline and Bosco are drivers in Kigali; Claire rides.
insert into public.users (id, phone_number, display_name) values
('b0000000-0000-4000-8000-000000000001', '+250788100001', 'Aline'),
('b0000000-0000-4000-8000-000000000002', '+250788100002', 'Bosco'),
('b0000000-0000-4000-8000-000000000003', '+250788100003', 'Claire');

create function pg_temp.current_of(p_user uuid)
returns table (lat double precision, lng double precision, heading double precision,
    recorded_at timestamptz)
language sql
as $$
    select extensions.st_y(coordinates::extensions.geometry),
        extensions.st_x(coordinates::extensions.geometry), heading, recorded_at
    from public.locations
    where user_id = p_user and location_type = 'current'
$$;

-- update_current_location ------------------------------------------------------------------------

select is(
    public.update_current_location(
        'b0000000-0000-4000-8000-000000000001', -1.9500, 30.0600, 5, 90, 8.5,
        now() - interval '10 seconds'
    ),
    true,
    'the first report is applied'
);
select is(
    (select count(*) from public.locations
        where user_id = 'b0000000-0000-4000-8000-000000000001'),
    1::bigint,
    'and makes the current row'
);
select is(
    public.update_current_location(
        'b0000000-0000-4000-8000-000000000001', -1.9510, 30.0610, 4, 100, 9,
        now() - interval '5 seconds'
    ),
    true,
    'a newer report is applied'
);
select results_eq(
    $$select lat, lng, heading from pg_temp.current_of('b0000000-0000-4000-8000-000000000001')$$,
    $$values (-1.9510::double precision, 30.0610::double precision, 100::double precision)$$,
    'and moves the same row'
);
select is(
    public.update_current_location(
        'b0000000-0000-4000-8000-000000000001', -1.9000, 30.1000, 4, 180, 9,
        now() - interval '8 seconds'
    ),
    false,
    'a report older than the stored one is not applied'
);
select results_eq(
    $$select lat, lng, recorded_at from pg_temp.current_of('b0000000-0000-4000-8000-000000000001')$$,
    $$values (-1.9510::double precision, 30.0610::double precision, now() - interval '5 seconds')$$,
    'and the stored position is kept'
);
select is(
    (select count(*) from public.locations
        where user_id = 'b0000000-0000-4000-8000-000000000001'),
    1::bigint,
    'one current row per user, whatever is reported'
);

-- A driver waiting at a rank reports the same point: nothing indexed changes, so the new version
-- of the row goes on the same page without an index entry (a HOT update).
create temp table hot_before as
select pg_stat_get_xact_tuples_hot_updated('public.locations'::regclass) as n;
select is(
    public.update_current_location(
        'b0000000-0000-4000-8000-000000000001', -1.9510, 30.0610, 3, 100, 0,
        now() - interval '1 second'
    ),
    true,
    'a stationary report is applied'
);
select is(
    pg_stat_get_xact_tuples_hot_updated('public.locations'::regclass)
    - (select n from pg_temp.hot_before),
    1::bigint,
    'as a HOT update'
);
select is(
    (select applied from (
        select public.update_current_location(
            'b0000000-0000-4000-8000-000000000002', -1.9600, 30.0700, null, null, null
        ) as applied
    ) as r),
    true,
    'a report with only a point is applied (recorded now)'
);
select throws_ok(
    $$select public.update_current_location(
        'b0000000-0000-4000-8000-00000000dead', -1.95, 30.06)$$,
    'PT404',
    'update_current_location: no user b0000000-0000-4000-8000-00000000dead',
    'an unknown user is PT404'
);

-- Every bad argument, named.
select throws_ok(
    $$select public.update_current_location(null, -1.95, 30.06)$$,
    '22023', 'update_current_location: p_user_id must be a user id', 'update: null user'
);
select throws_ok(
    $$select public.update_current_location('b0000000-0000-4000-8000-000000000001', 90.5, 30.06)$$,
    '22023', 'update_current_location: p_lat must be a latitude, -90 to 90 (got 90.5)',
    'update: latitude above 90'
);
select throws_ok(
    $$select public.update_current_location('b0000000-0000-4000-8000-000000000001', 'NaN', 30.06)$$,
    '22023', 'update_current_location: p_lat must be a latitude, -90 to 90 (got NaN)',
    'update: latitude NaN'
);
select throws_ok(
    $$select public.update_current_location('b0000000-0000-4000-8000-000000000001', null, 30.06)$$,
    '22023', 'update_current_location: p_lat must be a latitude, -90 to 90 (got null)',
    'update: latitude null'
);
select throws_ok(
    $$select public.update_current_location('b0000000-0000-4000-8000-000000000001', -1.95, -180.1)$$,
    '22023', 'update_current_location: p_lng must be a longitude, -180 to 180 (got -180.1)',
    'update: longitude below -180'
);
select throws_ok(
    $$select public.update_current_location('b0000000-0000-4000-8000-000000000001', -1.95, 'NaN')$$,
    '22023', 'update_current_location: p_lng must be a longitude, -180 to 180 (got NaN)',
    'update: longitude NaN'
);
select throws_ok(
    $$select public.update_current_location('b0000000-0000-4000-8000-000000000001', -1.95, 30.06,
        -1)$$,
    '22023', 'update_current_location: p_accuracy_meters must be null or 0 to 100000 (got -1)',
    'update: negative accuracy'
);
select throws_ok(
    $$select public.update_current_location('b0000000-0000-4000-8000-000000000001', -1.95, 30.06,
        p_heading => 361)$$,
    '22023', 'update_current_location: p_heading must be null or 0 to 360 (got 361)',
    'update: heading above 360'
);
select throws_ok(
    $$select public.update_current_location('b0000000-0000-4000-8000-000000000001', -1.95, 30.06,
        p_heading => 'NaN')$$,
    '22023', 'update_current_location: p_heading must be null or 0 to 360 (got NaN)',
    'update: heading NaN'
);
select throws_ok(
    $$select public.update_current_location('b0000000-0000-4000-8000-000000000001', -1.95, 30.06,
        p_accuracy_meters => 'NaN')$$,
    '22023', 'update_current_location: p_accuracy_meters must be null or 0 to 100000 (got NaN)',
    'update: accuracy NaN'
);
select throws_ok(
    $$select public.update_current_location('b0000000-0000-4000-8000-000000000001', -1.95, 30.06,
        p_speed_mps => 'Infinity')$$,
    '22023', 'update_current_location: p_speed_mps must be null or 0 to 150 (got Infinity)',
    'update: speed infinite'
);
select throws_ok(
    $$select public.update_current_location('b0000000-0000-4000-8000-000000000001', -1.95, 30.06,
        p_speed_mps => 151)$$,
    '22023', 'update_current_location: p_speed_mps must be null or 0 to 150 (got 151)',
    'update: speed above 150 m/s'
);
select throws_ok(
    $$select public.update_current_location('b0000000-0000-4000-8000-000000000001', -1.95, 30.06,
        p_recorded_at => 'infinity')$$,
    '22023', null, 'update: recorded_at infinite'
);
select throws_ok(
    $$select public.update_current_location('b0000000-0000-4000-8000-000000000001', -1.95, 30.06,
        p_recorded_at => now() - interval '2 years')$$,
    '22023', null, 'update: recorded_at two years ago'
);
select throws_ok(
    $$select public.update_current_location('b0000000-0000-4000-8000-000000000001', -1.95, 30.06,
        p_recorded_at => now() + interval '10 minutes')$$,
    '22023', 'update_current_location: p_recorded_at must be at most 5 minutes after now (got '
    || (now() + interval '10 minutes')::text || ')',
    'update: recorded_at ten minutes ahead'
);
select throws_ok(
    $$select public.update_current_location('b0000000-0000-4000-8000-000000000001', -1.95, 30.06,
        p_recorded_at => null)$$,
    '22023', null, 'update: recorded_at null'
);
select results_eq(
    $$select lat, lng from pg_temp.current_of('b0000000-0000-4000-8000-000000000001')$$,
    $$values (-1.9510::double precision, 30.0610::double precision)$$,
    'a refused report changes nothing'
);

-- save_location and delete_location ---------------------------------------------------------------

insert into pg_temp.seen (note, id)
values
(
    'home', public.save_location(
        'b0000000-0000-4000-8000-000000000003', 'home', -1.9441, 30.0619, 'Home', 'KG 7 Ave',
        'place-home', 'Kigali', 'RW'
    )
),
(
    'home again', public.save_location(
        'b0000000-0000-4000-8000-000000000003', 'home', -1.9442, 30.0620, 'Home', 'KG 9 Ave'
    )
),
(
    'market', public.save_location(
        'b0000000-0000-4000-8000-000000000003', 'favorite', -1.9370, 30.0600, 'Kimironko market'
    )
),
(
    'pickup', public.save_location(
        'b0000000-0000-4000-8000-000000000003', 'pickup', -1.9520, 30.0620, p_city => 'Kigali',
        p_altitude_meters => 1567
    )
);
select is(pg_temp.seen.id, (select id from pg_temp.seen where note = 'home'),
    'saving home again keeps its id')
from pg_temp.seen where note = 'home again';
select results_eq(
    $$select location_type, address, extensions.st_y(coordinates::extensions.geometry)
        from public.locations where user_id = 'b0000000-0000-4000-8000-000000000003'
        order by location_type$$,
    $$values ('favorite', null, -1.9370::double precision),
        ('home', 'KG 9 Ave', -1.9442::double precision),
        ('pickup', null, -1.9520::double precision)$$,
    'one home (replaced), the favourite and the pickup point'
);
select throws_ok(
    $$select public.save_location('b0000000-0000-4000-8000-000000000003', 'current', -1.95, 30.06)$$,
    '22023', 'save_location: p_location_type must be home, work, favorite, pickup or dropoff '
    || '(got ''current'')', 'save: current is reported, not saved'
);
select throws_ok(
    $$select public.save_location('b0000000-0000-4000-8000-000000000003', null, -1.95, 30.06)$$,
    '22023', null, 'save: null type'
);
select throws_ok(
    $$select public.save_location(null, 'home', -1.95, 30.06)$$,
    '22023', 'save_location: p_user_id must be a user id', 'save: null user'
);
select throws_ok(
    $$select public.save_location('b0000000-0000-4000-8000-000000000003', 'home', -91, 30.06)$$,
    '22023', 'save_location: p_lat must be a latitude, -90 to 90 (got -91)', 'save: latitude'
);
select throws_ok(
    $$select public.save_location('b0000000-0000-4000-8000-000000000003', 'home', -1.95, 181)$$,
    '22023', 'save_location: p_lng must be a longitude, -180 to 180 (got 181)', 'save: longitude'
);
select throws_ok(
    format($$select public.save_location('b0000000-0000-4000-8000-000000000003', 'home', -1.95,
        30.06, %L)$$, repeat('x', 201)),
    '22023', 'save_location: p_place_name must be null or 1 to 200 characters', 'save: place name'
);
select throws_ok(
    format($$select public.save_location('b0000000-0000-4000-8000-000000000003', 'home', -1.95,
        30.06, p_address => %L)$$, repeat('x', 501)),
    '22023', 'save_location: p_address must be null or 1 to 500 characters', 'save: address'
);
select throws_ok(
    format($$select public.save_location('b0000000-0000-4000-8000-000000000003', 'home', -1.95,
        30.06, p_place_id => %L)$$, repeat('x', 201)),
    '22023', 'save_location: p_place_id must be null or 1 to 200 characters', 'save: place id'
);
select throws_ok(
    format($$select public.save_location('b0000000-0000-4000-8000-000000000003', 'home', -1.95,
        30.06, p_city => %L)$$, repeat('x', 101)),
    '22023', 'save_location: p_city must be null or 1 to 100 characters', 'save: city'
);
select throws_ok(
    $$select public.save_location('b0000000-0000-4000-8000-000000000003', 'home', -1.95, 30.06,
        p_country => 'rw')$$,
    '22023', 'save_location: p_country must be null or an ISO 3166-1 alpha-2 code in capitals '
    || '(got ''rw'')', 'save: country'
);
select throws_ok(
    $$select public.save_location('b0000000-0000-4000-8000-000000000003', 'home', -1.95, 30.06,
        p_accuracy_meters => 'NaN')$$,
    '22023', 'save_location: p_accuracy_meters must be null or 0 to 100000 (got NaN)',
    'save: accuracy'
);
select throws_ok(
    $$select public.save_location('b0000000-0000-4000-8000-000000000003', 'home', -1.95, 30.06,
        p_altitude_meters => 20000)$$,
    '22023', 'save_location: p_altitude_meters must be null or -1000 to 10000 (got 20000)',
    'save: altitude'
);
select throws_ok(
    $$select public.save_location('b0000000-0000-4000-8000-000000000003', 'home', -1.95, 30.06,
        p_recorded_at => '-infinity')$$,
    '22023', null, 'save: recorded_at'
);
select throws_ok(
    $$select public.save_location('b0000000-0000-4000-8000-00000000dead', 'home', -1.95, 30.06)$$,
    'PT404', 'save_location: no user b0000000-0000-4000-8000-00000000dead', 'save: unknown user'
);

-- find_nearby_locations ---------------------------------------------------------------------------

-- Around the Kigali Convention Centre (-1.9536, 30.0928): drivers at known distances, one of them
-- stale, one outside 3 km.
insert into public.users (id, phone_number, display_name) values
('b0000000-0000-4000-8000-000000000011', '+250788100011', 'Driver 11'),
('b0000000-0000-4000-8000-000000000012', '+250788100012', 'Driver 12'),
('b0000000-0000-4000-8000-000000000013', '+250788100013', 'Driver 13'),
('b0000000-0000-4000-8000-000000000014', '+250788100014', 'Driver 14');
create temp table drivers as
select u.id, u.lat, u.lng, u.age
from (values
    ('b0000000-0000-4000-8000-000000000011'::uuid, -1.9540, 30.0930, interval '5 seconds'),
    ('b0000000-0000-4000-8000-000000000012'::uuid, -1.9600, 30.1000, interval '10 seconds'),
    ('b0000000-0000-4000-8000-000000000013'::uuid, -1.9450, 30.0900, interval '1 hour'),
    ('b0000000-0000-4000-8000-000000000014'::uuid, -1.9900, 30.0928, interval '1 second')
) as u (id, lat, lng, age);
select is(
    (select bool_and(public.update_current_location(d.id, d.lat, d.lng,
        p_recorded_at => now() - d.age)) from pg_temp.drivers as d),
    true,
    'four drivers report'
);

create function pg_temp.exact(p_lat double precision, p_lng double precision, p_id uuid)
returns double precision
language sql
as $$
    select extensions.st_distance(
        l.coordinates,
        extensions.st_setsrid(extensions.st_makepoint(p_lng, p_lat), 4326)::extensions.geography,
        true
    )
    from public.locations as l where l.id = p_id
$$;

-- Every location within 3 km of the centre, by the same rule as raw SQL: the expected answer.
create function pg_temp.expected(p_type text, p_since timestamptz)
returns table (id uuid, distance_meters double precision)
language sql
as $$
    select l.id, pg_temp.exact(-1.9536, 30.0928, l.id)
    from public.locations as l
    where (p_type is null or l.location_type = p_type) and l.recorded_at >= p_since
        and pg_temp.exact(-1.9536, 30.0928, l.id) <= 3000
    order by 2, 1
$$;

select results_eq(
    $$select id, distance_meters from public.find_nearby_locations(-1.9536, 30.0928, 3000)$$,
    $$select id, distance_meters from pg_temp.expected(null, '-infinity')$$,
    'every location within 3 km, nearest first, with ST_Distance''s exact distance'
);
select is(
    (select array_agg(user_id order by distance_meters)
        from public.find_nearby_locations(-1.9536, 30.0928, 3000)),
    array[
        'b0000000-0000-4000-8000-000000000011', 'b0000000-0000-4000-8000-000000000013',
        'b0000000-0000-4000-8000-000000000012', 'b0000000-0000-4000-8000-000000000002'
    ]::uuid[],
    'the drivers within 3 km, nearest first (Aline, Claire''s places and driver 14 are further)'
);
select results_eq(
    $$select id, distance_meters from public.find_nearby_locations(-1.9536, 30.0928, 3000,
        'current')$$,
    $$select id, distance_meters from pg_temp.expected('current', '-infinity')$$,
    'the type filter: current positions only'
);
select is(
    (select array_agg(user_id order by distance_meters)
        from public.find_nearby_locations(-1.9536, 30.0928, 3000, 'current', 2)),
    array[
        'b0000000-0000-4000-8000-000000000011', 'b0000000-0000-4000-8000-000000000013'
    ]::uuid[],
    'the limit takes the nearest'
);
select results_eq(
    $$select id, distance_meters from public.find_nearby_locations(-1.9536, 30.0928, 3000,
        'current', p_max_age_seconds => 60)$$,
    $$select id, distance_meters from pg_temp.expected('current', now() - interval '60 seconds')$$,
    'the maximum age leaves the driver silent for an hour out'
);
select ok(
    not exists (
        select from public.find_nearby_locations(-1.9536, 30.0928, 3000, 'current',
            p_max_age_seconds => 60)
        where user_id = 'b0000000-0000-4000-8000-000000000013'
    ),
    'and it is the stale one'
);
select results_eq(
    $$select location_type, place_name, address, city, round(lat::numeric, 4),
        round(lng::numeric, 4)
        from public.find_nearby_locations(-1.9536, 30.0928, 5000, 'favorite')$$,
    $$values ('favorite', 'Kimironko market', null, null, -1.9370, 30.0600)$$,
    'a favourite with its name and point'
);
select is(
    (select count(*) from public.find_nearby_locations(-1.9536, 30.0928, 3000, 'dropoff')),
    0::bigint,
    'no dropoff points: no rows'
);
select is(
    (select count(*) from public.find_nearby_locations(-1.9536, 30.0928, 100)),
    1::bigint,
    'within 100 m: the one driver there'
);

-- Away from the equator a degree of longitude is shorter: at 60 degrees north, a place 2.9 km due
-- east (0.0522 degrees) is found within 3 km and one 3.1 km east is not, and the distance is the
-- spheroid's.
insert into pg_temp.seen (note, id) values
('north near', public.save_location('b0000000-0000-4000-8000-000000000003', 'dropoff', 60, 10.0522)),
('north far', public.save_location('b0000000-0000-4000-8000-000000000003', 'dropoff', 60, 10.0558));
select results_eq(
    $$select round(lng::numeric, 4), round(distance_meters::numeric)
        from public.find_nearby_locations(60, 10, 3000, 'dropoff')$$,
    $$select 10.0522, round(extensions.st_distance(
        extensions.st_setsrid(extensions.st_makepoint(10.0522, 60), 4326)::extensions.geography,
        extensions.st_setsrid(extensions.st_makepoint(10, 60), 4326)::extensions.geography,
        true)::numeric)$$,
    'at 60 degrees north, the place 2.9 km east is found and the one 3.1 km east is not'
);
select is(
    (select count(*) from public.find_nearby_locations(60, 10, 3000)),
    1::bigint,
    'with no type too'
);

select throws_ok($$select * from public.find_nearby_locations(91, 30.09)$$,
    '22023', 'find_nearby_locations: p_lat must be a latitude, -90 to 90 (got 91)', 'find: lat');
select throws_ok($$select * from public.find_nearby_locations('NaN', 30.09)$$,
    '22023', 'find_nearby_locations: p_lat must be a latitude, -90 to 90 (got NaN)',
    'find: lat NaN');
select throws_ok($$select * from public.find_nearby_locations(-1.95, 180.5)$$,
    '22023', 'find_nearby_locations: p_lng must be a longitude, -180 to 180 (got 180.5)',
    'find: lng');
select throws_ok($$select * from public.find_nearby_locations(-1.95, null)$$,
    '22023', 'find_nearby_locations: p_lng must be a longitude, -180 to 180 (got null)',
    'find: lng null');
select throws_ok($$select * from public.find_nearby_locations(-1.95, 30.09, 0)$$,
    '22023', 'find_nearby_locations: p_radius_meters must be above 0 and at most 50000 (got 0)',
    'find: radius 0');
select throws_ok($$select * from public.find_nearby_locations(-1.95, 30.09, 50001)$$,
    '22023',
    'find_nearby_locations: p_radius_meters must be above 0 and at most 50000 (got 50001)',
    'find: radius above 50 km');
select throws_ok($$select * from public.find_nearby_locations(-1.95, 30.09, 'NaN')$$,
    '22023',
    'find_nearby_locations: p_radius_meters must be above 0 and at most 50000 (got NaN)',
    'find: radius NaN');
select throws_ok($$select * from public.find_nearby_locations(-1.95, 30.09, 3000, 'taxi')$$,
    '22023', 'find_nearby_locations: p_location_type must be null, current, home, work, '
    || 'favorite, pickup or dropoff (got ''taxi'')', 'find: unknown type');
select throws_ok($$select * from public.find_nearby_locations(-1.95, 30.09, 3000, null, 0)$$,
    '22023', 'find_nearby_locations: p_limit must be 1 to 100 (got 0)', 'find: limit 0');
select throws_ok($$select * from public.find_nearby_locations(-1.95, 30.09, 3000, null, 101)$$,
    '22023', 'find_nearby_locations: p_limit must be 1 to 100 (got 101)', 'find: limit 101');
select throws_ok($$select * from public.find_nearby_locations(-1.95, 30.09, 3000, null, null)$$,
    '22023', 'find_nearby_locations: p_limit must be 1 to 100 (got null)', 'find: limit null');
select throws_ok(
    $$select * from public.find_nearby_locations(-1.95, 30.09, 3000, null, 20, 0)$$,
    '22023', 'find_nearby_locations: p_max_age_seconds must be 1 to 31622400 (got 0)',
    'find: max age 0');

-- There a degree of longitude is half a degree of latitude, so the plane the index orders by
-- puts a place due east twice as far as it is, against one due north. 35 pickup points 1.1 km
-- north and one 0.8 km east: the east one is the nearest, though 35 come before it in the plane.
insert into public.users (id, phone_number) values
('b0000000-0000-4000-8000-000000000015', '+250788100015');
insert into public.locations (user_id, location_type, coordinates)
select 'b0000000-0000-4000-8000-000000000015'::uuid, 'pickup',
    extensions.st_setsrid(extensions.st_makepoint(20 + n * 0.00001, 60.0100), 4326)
from generate_series(1, 35) as n
union all
select 'b0000000-0000-4000-8000-000000000015'::uuid, 'pickup',
    extensions.st_setsrid(extensions.st_makepoint(20.0150, 60), 4326);
select is(
    (select round(lng::numeric, 4) from public.find_nearby_locations(60, 20, 3000, 'pickup', 1)),
    20.0150,
    'the nearest by the spheroid, not the plane: the place east, behind 35 in the plane''s order'
);
select results_eq(
    $$select round(distance_meters::numeric, 3)
        from public.find_nearby_locations(60, 20, 3000, null, 20)$$,
    $$select round(extensions.st_distance(l.coordinates,
            extensions.st_setsrid(extensions.st_makepoint(20, 60), 4326)::extensions.geography,
            true)::numeric, 3)
        from public.locations as l
        where l.location_type = 'pickup'
            and extensions.st_y(l.coordinates::extensions.geometry) >= 59
        order by 1
        limit 20$$,
    'the 20 nearest of any type are the 20 nearest on the spheroid, however many the plane '
    'ranks first'
);

-- A maximum age leaves out stale current positions only: a home saved eleven months ago is
-- still found with or without a type.
insert into pg_temp.seen (note, id) values
('old home', public.save_location('b0000000-0000-4000-8000-000000000015', 'home', -1.9300, 30.0600,
    p_recorded_at => now() - interval '11 months'));
select ok(
    (select id from pg_temp.seen where note = 'old home') in (
        select id from public.find_nearby_locations(-1.9300, 30.0600, 100, null, 20,
            p_max_age_seconds => 60)
    ),
    'a home saved long ago is found though the maximum age is a minute'
);
select ok(
    (select id from pg_temp.seen where note = 'old home') in (
        select id from public.find_nearby_locations(-1.9300, 30.0600, 100, 'home', 20,
            p_max_age_seconds => 60)
    ),
    'and with the type home'
);
-- The index's plane ends at the 180th meridian: a circle across it is refused, not searched in
-- half.
select throws_ok(
    $$select * from public.find_nearby_locations(0, 179.99, 3000)$$,
    '22023', 'find_nearby_locations: the circle of 3000 m around (0, 179.99) crosses the 180th '
    'meridian (or a pole), which this search does not reach across',
    'find: a circle across the 180th meridian'
);
select throws_ok(
    $$select * from public.find_nearby_locations(89.99, 10, 3000)$$,
    '22023', 'find_nearby_locations: the circle of 3000 m around (89.99, 10) crosses the 180th '
    'meridian (or a pole), which this search does not reach across',
    'find: a circle around a pole'
);
select is(
    (select count(*) from public.find_nearby_locations(0, 179.9, 3000)),
    0::bigint,
    'one that stops short of it is searched'
);

-- Who may call and read what ----------------------------------------------------------------------

select throws_ok(
    $$select tests.as_caller('anon', '{"role": "anon"}',
        'select public.update_current_location(''b0000000-0000-4000-8000-000000000001'', -1.95,
        30.06)')$$,
    '42501', null, 'anon may not report a position'
);
select throws_ok(
    $$select tests.as_caller('anon', '{"role": "anon"}',
        'select public.save_location(''b0000000-0000-4000-8000-000000000001'', ''home'', -1.95,
        30.06)')$$,
    '42501', null, 'nor save a place'
);
select throws_ok(
    $$select tests.as_caller('anon', '{"role": "anon"}',
        'select count(*) from public.find_nearby_locations(-1.95, 30.06)')$$,
    '42501', null, 'nor find anyone'
);
select throws_ok(
    $$select tests.as_caller('anon', '{"role": "anon"}', 'select count(*) from public.locations')$$,
    '42501', null, 'nor read the table'
);
select lives_ok(
    $$select tests.as_caller('authenticated',
        '{"role": "authenticated", "sub": "b0000000-0000-4000-8000-000000000002"}',
        'select public.update_current_location(''b0000000-0000-4000-8000-000000000002'', -1.9601,
        30.0701)')$$,
    'a driver reports their own position'
);
select results_eq(
    $$select round(lat::numeric, 4) from pg_temp.current_of('b0000000-0000-4000-8000-000000000002')$$,
    $$values (-1.9601)$$,
    'and it is stored'
);
select throws_ok(
    $$select tests.as_caller('authenticated',
        '{"role": "authenticated", "sub": "b0000000-0000-4000-8000-000000000002"}',
        'select public.update_current_location(''b0000000-0000-4000-8000-000000000001'', -1.95,
        30.06)')$$,
    '42501', 'update_current_location: a user may report only their own position',
    'but not another''s'
);
select lives_ok(
    $$select tests.as_caller('authenticated',
        '{"role": "authenticated", "sub": "b0000000-0000-4000-8000-000000000003"}',
        'insert into pg_temp.seen (note, id) select ''work'', public.save_location(
        ''b0000000-0000-4000-8000-000000000003'', ''work'', -1.9500, 30.1000, ''Office'')')$$,
    'a rider saves their own place'
);
select throws_ok(
    $$select tests.as_caller('authenticated',
        '{"role": "authenticated", "sub": "b0000000-0000-4000-8000-000000000002"}',
        'select public.save_location(''b0000000-0000-4000-8000-000000000003'', ''work'', -1.95,
        30.06)')$$,
    '42501', 'save_location: a user may save only their own places', 'but not another''s'
);
select throws_ok(
    $$select tests.as_caller('authenticated',
        '{"role": "authenticated", "sub": "b0000000-0000-4000-8000-000000000003"}',
        'select count(*) from public.find_nearby_locations(-1.95, 30.06)')$$,
    '42501', null, 'a signed-in user may not search for others'
);
select tests.as_caller('authenticated',
    '{"role": "authenticated", "sub": "b0000000-0000-4000-8000-000000000003"}',
    'insert into pg_temp.visible select ''claire'', id from public.locations');
select tests.as_caller('authenticated',
    '{"role": "authenticated", "sub": "b0000000-0000-4000-8000-000000000002"}',
    'insert into pg_temp.visible select ''bosco'', id from public.locations');
select set_eq(
    $$select id from pg_temp.visible where viewer = 'claire'$$,
    $$select id from public.locations where user_id = 'b0000000-0000-4000-8000-000000000003'$$,
    'a user reads their own rows'
);
select is(
    (select count(*) from pg_temp.visible where viewer = 'bosco'),
    1::bigint,
    'and only those (Bosco: his current position)'
);
select throws_ok(
    format($$select tests.as_caller('authenticated',
        '{"role": "authenticated", "sub": "b0000000-0000-4000-8000-000000000002"}',
        'select public.delete_location(''%s'')')$$, (select id from pg_temp.seen where note = 'market')),
    'PT404', null, 'a stranger''s place is not found to delete'
);
select lives_ok(
    format($$select tests.as_caller('authenticated',
        '{"role": "authenticated", "sub": "b0000000-0000-4000-8000-000000000003"}',
        'select public.delete_location(''%s'')')$$, (select id from pg_temp.seen where note = 'market')),
    'the owner deletes it'
);
select is(
    (select count(*) from public.locations
        where id = (select id from pg_temp.seen where note = 'market')),
    0::bigint,
    'and it is gone'
);
select lives_ok(
    $$select tests.as_caller('authenticated',
        '{"role": "authenticated", "sub": "b0000000-0000-4000-8000-000000000002"}',
        'delete from public.locations where user_id = ''b0000000-0000-4000-8000-000000000003''')$$,
    'a stranger''s delete through the table'
);
select is(
    (select count(*) from public.locations
        where user_id = 'b0000000-0000-4000-8000-000000000003'),
    5::bigint,
    'deletes nothing (Claire''s home, work, pickup and two dropoffs up north)'
);
select throws_ok(
    $$select tests.as_caller('authenticated',
        '{"role": "authenticated", "sub": "b0000000-0000-4000-8000-000000000003"}',
        'update public.locations set city = ''Musanze''')$$,
    '42501', null, 'a user may not update rows through the table'
);
select throws_ok(
    format($$select tests.as_caller('anon', '{"role": "anon"}',
        'select public.delete_location(''%s'')')$$, (select id from pg_temp.seen where note = 'old home')),
    '42501', null, 'anon may not delete a place'
);
select throws_ok(
    $$select tests.as_caller('service_role', '{"role": "service_role"}',
        'select public.delete_location(''b0000000-0000-4000-8000-00000000dead'')')$$,
    'PT404', null, 'service_role: an unknown place is not found'
);
select lives_ok(
    format($$select tests.as_caller('service_role', '{"role": "service_role"}',
        'select public.delete_location(''%s'')')$$, (select id from pg_temp.seen where note = 'old home')),
    'service_role deletes anyone''s place'
);
select is(
    (select count(*) from public.locations where id = (select id from pg_temp.seen where note = 'old home')),
    0::bigint,
    'and it is gone'
);
select throws_ok(
    $$select public.delete_location(null)$$,
    '22023', 'delete_location: p_id must be a location id', 'delete: null id'
);
select lives_ok(
    $$select tests.as_caller('service_role', '{"role": "service_role"}',
        'select public.update_current_location(''b0000000-0000-4000-8000-000000000012'', -1.9602,
        30.1002)')$$,
    'service_role reports anyone''s position'
);
select lives_ok(
    $$select tests.as_caller('service_role', '{"role": "service_role"}',
        'insert into pg_temp.visible select ''service'', id
        from public.find_nearby_locations(-1.9536, 30.0928, 3000, ''current'')')$$,
    'service_role finds drivers'
);
select throws_ok(
    $$select tests.as_caller('service_role', '{"role": "service_role"}',
        'select count(*) from public.find_nearby_locations(-1.95, 30.06, 3000, ''taxi'')')$$,
    '22023', null, 'service_role''s bad argument is 22023, worded'
);
select throws_ok(
    $$select tests.as_caller('service_role', '{"role": "service_role"}',
        'select public.update_current_location(''b0000000-0000-4000-8000-000000000012'', 95, 30)')$$,
    '22023', null, 'for each function'
);
select throws_ok(
    $$select tests.as_caller('service_role', '{"role": "service_role"}',
        'select public.save_location(''b0000000-0000-4000-8000-000000000012'', ''x'', 1, 30)')$$,
    '22023', null, 'that service_role calls'
);
select is(
    (select count(*) from pg_temp.visible where viewer = 'service'),
    4::bigint,
    'all four near the centre'
);

select * from finish();
rollback;
