-- The route cache (migration 20261207150100_routes.sql, functions in
-- supabase/functions-sql/*_routes.sql): cache_route and get_cached_route, the tolerance at both
-- ends (on the spheroid, as ST_Project walks it), the freshest route winning, expiry and maximum
-- age, the polyline and path agreeing, every refusal, the hit and miss counters, the cleanup, the
-- analysts' view, and who may call and read what. Runs as postgres on a fresh clone in one
-- transaction: now() is constant, so routes made older are moved back by hand as the owner.
begin;
select plan(98);

-- A refused call's SQLSTATE and message, as one text: '22023: cache_route: p_... must ...'.
create function pg_temp.refusal(p_sql text)
returns text
language plpgsql
as $$
begin
    execute p_sql;
    return 'no error';
exception when others then
    return sqlstate || ': ' || sqlerrm;
end;
$$;

-- A point p_meters from (p_lat, p_lng) due north-east, on the spheroid, as 'lat, lng'.
create function pg_temp.moved(p_lat double precision, p_lng double precision, p_meters double precision)
returns text
language sql
as $$
    select extensions.st_y(m::extensions.geometry)::text || ', '
        || extensions.st_x(m::extensions.geometry)::text
    from extensions.st_project(
        extensions.st_setsrid(extensions.st_makepoint(p_lng, p_lat), 4326)::extensions.geography,
        p_meters, pi() / 4
    ) as m
$$;

-- The lookup asked from p_origin to p_dest (each 'lat, lng') with the rest of p_tail.
create function pg_temp.found_id(p_origin text, p_dest text, p_tail text default '')
returns bigint
language plpgsql
as $$
declare
    v_id bigint;
begin
    execute 'select id from public.get_cached_route(' || p_origin || ', ' || p_dest || p_tail || ')'
    into v_id;
    return v_id;
end;
$$;

-- A three-point route from Kigali's centre (-1.95, 30.06) to (-1.96, 30.07), and its polyline.
create temp table polyline as select 'nz{J_bnvDf^g^f^g^'::text as encoded;

-- The happy path ------------------------------------------------------------------------------------

create temp table cached as
select public.cache_route(
    -1.95, 30.06, -1.96, 30.07, 'driving', (select encoded from polyline), 1850, 420, 1.3, 30,
    'google'
) as id;

select results_eq(
    $$select r.profile, extensions.st_y(r.origin::extensions.geometry),
             extensions.st_x(r.origin::extensions.geometry),
             extensions.st_y(r.destination::extensions.geometry),
             extensions.st_x(r.destination::extensions.geometry), r.distance_meters,
             r.duration_seconds, r.traffic_multiplier, r.provider, r.created_at, r.expires_at
        from public.routes as r where r.id = (select id from cached)$$,
    $$values ('driving', -1.95::double precision, 30.06::double precision,
              -1.96::double precision, 30.07::double precision, 1850, 420,
              1.3::double precision, 'google', now(), now() + interval '30 minutes')$$,
    'cache_route stores the route with its ends, figures, provider and expiry after the ttl'
);
select is(
    extensions.st_astext(r.path::extensions.geometry),
    'LINESTRING(30.06 -1.95,30.065 -1.955,30.07 -1.96)',
    'the path is the polyline decoded'
) from public.routes as r where r.id = (select id from cached);
select is(
    extensions.st_asencodedpolyline(r.path::extensions.geometry), r.encoded_polyline,
    'the path encodes back to the stored polyline'
) from public.routes as r where r.id = (select id from cached);
select throws_ok(
    $$update public.routes set encoded_polyline = '!!!!!!' where id = (select id from cached)$$,
    '23514', null,
    'a polyline that does not encode back to itself is refused by the table too'
);
select throws_ok(
    $$update public.routes set path = null where id = (select id from cached)$$,
    '428C9', null,
    'the path cannot be written: it is derived'
);

select results_eq(
    $$select id, profile, encoded_polyline, distance_meters, duration_seconds, traffic_multiplier,
             provider, created_at, expires_at, origin_lat, origin_lng, destination_lat,
             destination_lng, round(origin_offset_meters::numeric, 3),
             round(destination_offset_meters::numeric, 3)
        from public.get_cached_route(-1.95, 30.06, -1.96, 30.07)$$,
    $$select (select id from cached), 'driving', (select encoded from polyline), 1850, 420,
             1.3::double precision, 'google', now(), now() + interval '30 minutes',
             -1.95::double precision, 30.06::double precision, -1.96::double precision,
             30.07::double precision, 0.000, 0.000$$,
    'get_cached_route answers the route asked from its very ends, 0 m off at each'
);
select is(
    (select round(origin_offset_meters::numeric, 1)
       from public.get_cached_route(-1.9501, 30.06, -1.96, 30.07)),
    11.1,
    'the offset says how far the asked origin was from the cached one'
);
select is(
    (select count(*)::integer from public.get_cached_route(-1.96, 30.07, -1.95, 30.06)),
    0,
    'the way back is another route'
);
select is(
    (select count(*)::integer
       from public.get_cached_route(-1.95, 30.06, -1.96, 30.07, 60, 'walking')),
    0,
    'another profile is another route'
);

-- Tolerance at each end --------------------------------------------------------------------------

select is(
    pg_temp.found_id(pg_temp.moved(-1.95, 30.06, 99), '-1.96, 30.07'), (select id from cached),
    'an origin 99 m off is within the default 100 m'
);
select is(
    pg_temp.found_id(pg_temp.moved(-1.95, 30.06, 101), '-1.96, 30.07'), null,
    'an origin 101 m off is not'
);
select is(
    pg_temp.found_id('-1.95, 30.06', pg_temp.moved(-1.96, 30.07, 99)), (select id from cached),
    'a destination 99 m off is within the default 100 m'
);
select is(
    pg_temp.found_id('-1.95, 30.06', pg_temp.moved(-1.96, 30.07, 101)), null,
    'a destination 101 m off is not'
);
select is(
    pg_temp.found_id(pg_temp.moved(-1.95, 30.06, 99), pg_temp.moved(-1.96, 30.07, 101)), null,
    'both ends must be within: origin in, destination out is a miss'
);
select is(
    pg_temp.found_id(
        pg_temp.moved(-1.95, 30.06, 499), pg_temp.moved(-1.96, 30.07, 499), ', 60, ''driving'', 500'
    ),
    (select id from cached),
    'a wider tolerance (500 m) takes both ends 499 m off'
);
select is(
    pg_temp.found_id(
        pg_temp.moved(-1.95, 30.06, 11), '-1.96, 30.07', ', 60, ''driving'', 10'
    ),
    null,
    'a narrower tolerance (10 m) leaves an origin 11 m off out'
);

-- Freshest wins, expiry and maximum age -------------------------------------------------------

-- Three more routes for the same trip, walking: made 10, 20 and 50 minutes ago.
create temp table walking as
select
    g.minutes,
    public.cache_route(
        -1.95, 30.06, -1.96, 30.07, 'walking', (select encoded from polyline), 1850,
        1200 + g.minutes, 1, 120
    ) as id
from (values (10), (20), (50)) as g (minutes);
update public.routes as r
set created_at = now() - make_interval(mins => w.minutes)
from walking as w where r.id = w.id;

select is(
    pg_temp.found_id('-1.95, 30.06', '-1.96, 30.07', ', 60, ''walking'''),
    (select id from walking where minutes = 10),
    'of three routes for the trip, the freshest is returned'
);
select is(
    pg_temp.found_id('-1.95, 30.06', '-1.96, 30.07', ', 15, ''walking'''),
    (select id from walking where minutes = 10),
    'a maximum age of 15 minutes still takes the one made 10 minutes ago'
);
select is(
    pg_temp.found_id('-1.95, 30.06', '-1.96, 30.07', ', 5, ''walking'''),
    null,
    'a maximum age of 5 minutes takes none of them'
);
update public.routes set expires_at = now() where id = (select id from walking where minutes = 10);
select is(
    pg_temp.found_id('-1.95, 30.06', '-1.96, 30.07', ', 60, ''walking'''),
    (select id from walking where minutes = 20),
    'a route expiring now is never returned: the next freshest is'
);
update public.routes set expires_at = now() - interval '1 second'
where id in (select id from walking);
select is(
    pg_temp.found_id('-1.95, 30.06', '-1.96, 30.07', ', 600, ''walking'''),
    null,
    'expired routes are never returned, whatever the maximum age'
);
select is(
    pg_temp.found_id('-1.95, 30.06', '-1.96, 30.07', ', 60, ''walking'''),
    null,
    'nor within it'
);
select is(
    pg_temp.found_id('-1.95, 30.06', '-1.96, 30.07', ', 60, ''cycling'''),
    null,
    'a profile with no route at all is a miss'
);

-- Hit and miss counters ------------------------------------------------------------------------

select is(
    private.counter_value('route_cache_walking_hits'), 3::bigint,
    'walking: three hits counted'
);
select is(
    private.counter_value('route_cache_walking_misses'), 4::bigint,
    'walking: four misses counted (the other profile, the two tight ages, the two expired)'
);
select is(
    private.counter_value('route_cache_cycling_misses'), 1::bigint,
    'cycling: one miss'
);
select is(
    private.counter_value('route_cache_truck_hits') + private.counter_value('route_cache_truck_misses'),
    0::bigint,
    'truck: nothing counted'
);

-- Refusals: 22023 naming the argument, nothing stored ------------------------------------------

create temp table before_refusals as select count(*) as routes from public.routes;

create temp table refusals (call text, named text);
insert into refusals values
('cache_route(91, 30.06, -1.96, 30.07, ''driving'', ''nz{J_bnvDf^g^f^g^'', 1, 1)', 'cache_route: p_origin_lat '),
('cache_route(-91, 30.06, -1.96, 30.07, ''driving'', ''nz{J_bnvDf^g^f^g^'', 1, 1)', 'cache_route: p_origin_lat '),
('cache_route(''NaN'', 30.06, -1.96, 30.07, ''driving'', ''nz{J_bnvDf^g^f^g^'', 1, 1)', 'cache_route: p_origin_lat must be a latitude, -90 to 90 \(got NaN\)'),
('cache_route(null, 30.06, -1.96, 30.07, ''driving'', ''nz{J_bnvDf^g^f^g^'', 1, 1)', 'cache_route: p_origin_lat must be a latitude, -90 to 90 \(got null\)'),
('cache_route(-1.95, 181, -1.96, 30.07, ''driving'', ''nz{J_bnvDf^g^f^g^'', 1, 1)', 'cache_route: p_origin_lng '),
('cache_route(-1.95, ''NaN'', -1.96, 30.07, ''driving'', ''nz{J_bnvDf^g^f^g^'', 1, 1)', 'cache_route: p_origin_lng '),
('cache_route(-1.95, 30.06, ''Infinity'', 30.07, ''driving'', ''nz{J_bnvDf^g^f^g^'', 1, 1)', 'cache_route: p_dest_lat '),
('cache_route(-1.95, 30.06, -1.96, -180.5, ''driving'', ''nz{J_bnvDf^g^f^g^'', 1, 1)', 'cache_route: p_dest_lng '),
('cache_route(-1.95, 30.06, -1.96, 30.07, ''boat'', ''nz{J_bnvDf^g^f^g^'', 1, 1)', 'cache_route: p_profile must be one of driving, motorcycle, walking, cycling, transit, truck'),
('cache_route(-1.95, 30.06, -1.96, 30.07, null, ''nz{J_bnvDf^g^f^g^'', 1, 1)', 'cache_route: p_profile '),
('cache_route(-1.95, 30.06, -1.96, 30.07, ''driving'', '''', 1, 1)', 'cache_route: p_encoded_polyline must be 4 to 65536 characters'),
('cache_route(-1.95, 30.06, -1.96, 30.07, ''driving'', null, 1, 1)', 'cache_route: p_encoded_polyline '),
('cache_route(-1.95, 30.06, -1.96, 30.07, ''driving'', repeat(''?'', 65537), 1, 1)', 'cache_route: p_encoded_polyline must be 4 to 65536 characters'),
('cache_route(-1.95, 30.06, -1.96, 30.07, ''driving'', ''!!!!!!'', 1, 1)', 'cache_route: p_encoded_polyline is not an encoded polyline'),
('cache_route(-1.95, 30.06, -1.96, 30.07, ''driving'', ''nz{J_bnvDf^g^f^g'', 1, 1)', 'cache_route: p_encoded_polyline is not an encoded polyline'),
('cache_route(-1.95, 30.06, -1.96, 30.07, ''driving'', ''nz{J_bnvD'', 1, 1)', 'cache_route: p_encoded_polyline must have at least 2 points \(got 1\)'),
('cache_route(-1.95, 30.06, -1.96, 30.07, ''driving'', ''nz{J_bnvDopvnQo}@'', 1, 1)', 'cache_route: p_encoded_polyline leaves the globe'),
('cache_route(-1.95, 30.06, -1.96, 30.07, ''driving'', ''nz{J_bnvDf^g^f^g^'', -1, 1)', 'cache_route: p_distance_meters must be 0 to 40000000 \(got -1\)'),
('cache_route(-1.95, 30.06, -1.96, 30.07, ''driving'', ''nz{J_bnvDf^g^f^g^'', null, 1)', 'cache_route: p_distance_meters '),
('cache_route(-1.95, 30.06, -1.96, 30.07, ''driving'', ''nz{J_bnvDf^g^f^g^'', 1, -1)', 'cache_route: p_duration_seconds must be 0 to 2592000 \(got -1\)'),
('cache_route(-1.95, 30.06, -1.96, 30.07, ''driving'', ''nz{J_bnvDf^g^f^g^'', 1, 2592001)', 'cache_route: p_duration_seconds '),
('cache_route(-1.95, 30.06, -1.96, 30.07, ''driving'', ''nz{J_bnvDf^g^f^g^'', 1, 1, 0)', 'cache_route: p_traffic_multiplier must be 0.1 to 10 \(got 0\)'),
('cache_route(-1.95, 30.06, -1.96, 30.07, ''driving'', ''nz{J_bnvDf^g^f^g^'', 1, 1, ''NaN'')', 'cache_route: p_traffic_multiplier must be 0.1 to 10 \(got NaN\)'),
('cache_route(-1.95, 30.06, -1.96, 30.07, ''driving'', ''nz{J_bnvDf^g^f^g^'', 1, 1, null)', 'cache_route: p_traffic_multiplier '),
('cache_route(-1.95, 30.06, -1.96, 30.07, ''driving'', ''nz{J_bnvDf^g^f^g^'', 1, 1, 1, 0)', 'cache_route: p_ttl_minutes must be 1 to 10080 \(got 0\)'),
('cache_route(-1.95, 30.06, -1.96, 30.07, ''driving'', ''nz{J_bnvDf^g^f^g^'', 1, 1, 1, 10081)', 'cache_route: p_ttl_minutes '),
('cache_route(-1.95, 30.06, -1.96, 30.07, ''driving'', ''nz{J_bnvDf^g^f^g^'', 1, 1, 1, null)', 'cache_route: p_ttl_minutes '),
('cache_route(-1.95, 30.06, -1.96, 30.07, ''driving'', ''nz{J_bnvDf^g^f^g^'', 1, 1, 1, 60, '''')', 'cache_route: p_provider must be null or 1 to 100 characters'),
('cache_route(-1.95, 30.06, -1.96, 30.07, ''driving'', ''nz{J_bnvDf^g^f^g^'', 1, 1, 1, 60, repeat(''x'', 101))', 'cache_route: p_provider '),
('get_cached_route(91, 30.06, -1.96, 30.07)', 'get_cached_route: p_origin_lat must be a latitude, -90 to 90 \(got 91\)'),
('get_cached_route(''NaN'', 30.06, -1.96, 30.07)', 'get_cached_route: p_origin_lat must be a latitude, -90 to 90 \(got NaN\)'),
('get_cached_route(null, 30.06, -1.96, 30.07)', 'get_cached_route: p_origin_lat '),
('get_cached_route(-1.95, -181, -1.96, 30.07)', 'get_cached_route: p_origin_lng '),
('get_cached_route(-1.95, 30.06, -90.01, 30.07)', 'get_cached_route: p_dest_lat '),
('get_cached_route(-1.95, 30.06, -1.96, ''-Infinity'')', 'get_cached_route: p_dest_lng '),
('get_cached_route(-1.95, 30.06, -1.96, 30.07, 0)', 'get_cached_route: p_max_age_minutes must be 1 to 10080 \(got 0\)'),
('get_cached_route(-1.95, 30.06, -1.96, 30.07, 10081)', 'get_cached_route: p_max_age_minutes '),
('get_cached_route(-1.95, 30.06, -1.96, 30.07, null)', 'get_cached_route: p_max_age_minutes '),
('get_cached_route(-1.95, 30.06, -1.96, 30.07, 60, ''boat'')', 'get_cached_route: p_profile must be one of '),
('get_cached_route(-1.95, 30.06, -1.96, 30.07, 60, null)', 'get_cached_route: p_profile '),
('get_cached_route(-1.95, 30.06, -1.96, 30.07, 60, ''driving'', 0)', 'get_cached_route: p_tolerance_meters must be 1 to 10000 \(got 0\)'),
('get_cached_route(-1.95, 30.06, -1.96, 30.07, 60, ''driving'', 10001)', 'get_cached_route: p_tolerance_meters ');

select matches(
    pg_temp.refusal('select * from public.' || r.call),
    '^22023: ' || r.named,
    r.call || ' is refused naming the argument'
)
from refusals as r;

select is(
    (select count(*) from public.routes), (select routes from before_refusals),
    'the refused calls stored nothing'
);
select is(
    private.counter_value('route_cache_driving_hits') + private.counter_value('route_cache_driving_misses'),
    10::bigint,
    'the refused lookups counted nothing (driving: the 10 lookups above)'
);

-- Cleanup and monitoring -------------------------------------------------------------------------

select cmp_ok(
    private.sample_counters(), '>=', 12, 'the sampler samples every profile''s two counters'
);
select results_eq(
    $$select s.counter, s.value from private.counter_samples as s
       where s.counter ~ '^route_cache_(walking|cycling)_' order by 1$$,
    $$values ('route_cache_cycling_hits', 0::bigint), ('route_cache_cycling_misses', 1::bigint),
             ('route_cache_walking_hits', 3::bigint), ('route_cache_walking_misses', 4::bigint)$$,
    'a sample is the counters as they were'
);
select results_eq(
    $$select profile, routes, expired, hits_last_hour, misses_last_hour, hit_ratio_last_hour,
             hits_last_day, misses_last_day, routing_calls_saved
        from monitoring.route_cache_stats where profile in ('walking', 'cycling')
       order by profile$$,
    $$values ('cycling', 0::bigint, 0::bigint, 0::bigint, 1::bigint, 0.0000, 0::bigint,
              1::bigint, 0::bigint),
             ('walking', 3::bigint, 3::bigint, 3::bigint, 4::bigint, 0.4286, 3::bigint,
              4::bigint, 3::bigint)$$,
    'per profile: routes, expired, hits and misses of the last hour and day, ratio, calls saved '
    || '(no sample as old as either window: the counters started within them)'
);
-- An older sample, two hours ago, with one walking hit and one miss: the hour counts after it,
-- the day (no sample a day old) from zero.
insert into private.counter_samples (counter, sampled_at, value)
values ('route_cache_walking_hits', now() - interval '2 hours', 1),
('route_cache_walking_misses', now() - interval '2 hours', 1);
select results_eq(
    $$select hits_last_hour, misses_last_hour, hit_ratio_last_hour, hits_last_day,
             misses_last_day, routing_calls_saved
        from monitoring.route_cache_stats where profile = 'walking'$$,
    $$values (2::bigint, 3::bigint, 0.4000, 3::bigint, 4::bigint, 3::bigint)$$,
    'a sample taken before the window is its baseline'
);
select is(private.cleanup_expired_routes(), 3, 'the cleanup deletes the three expired routes');
select is(
    (select count(*)::integer from public.routes where expires_at <= now()), 0,
    'no expired route is left'
);
select results_eq(
    $$select jobname::text collate "default", schedule::text collate "default" from cron.job
       where jobname in ('cleanup-expired-routes', 'sample-counters')
       order by jobname$$,
    $$values ('cleanup-expired-routes', '*/5 * * * *'),
             ('sample-counters', '*/5 * * * *')$$,
    'the cleanup and the sampler are scheduled every 5 minutes'
);

-- Roles ------------------------------------------------------------------------------------------

select throws_ok(
    $$select tests.as_role('anon', 'select * from public.get_cached_route(-1.95, 30.06, -1.96, 30.07)')$$,
    '42501', 'permission denied for function get_cached_route',
    'anon cannot call get_cached_route'
);
select throws_ok(
    $$select tests.as_caller('authenticated', '{"sub": "7d8e9f00-0000-4000-8000-000000000001", "role": "authenticated"}',
        'select * from public.get_cached_route(-1.95, 30.06, -1.96, 30.07)')$$,
    '42501', 'permission denied for function get_cached_route',
    'an authenticated user cannot call get_cached_route'
);
select throws_ok(
    $$select tests.as_role('anon', 'select public.cache_route(-1.95, 30.06, -1.96, 30.07, ''driving'', ''nz{J_bnvDf^g^f^g^'', 1, 1)')$$,
    '42501', 'permission denied for function cache_route',
    'anon cannot call cache_route'
);
select throws_ok(
    $$select tests.as_caller('authenticated', '{"sub": "7d8e9f00-0000-4000-8000-000000000001", "role": "authenticated"}',
        'select public.cache_route(-1.95, 30.06, -1.96, 30.07, ''driving'', ''nz{J_bnvDf^g^f^g^'', 1, 1)')$$,
    '42501', 'permission denied for function cache_route',
    'an authenticated user cannot call cache_route'
);
select throws_ok(
    $$select tests.as_role('authenticated', 'select count(*) from public.routes')$$,
    '42501', 'permission denied for table routes',
    'an authenticated user cannot read public.routes'
);
select throws_ok(
    $$select tests.as_role('anon', 'select count(*) from private.counter_samples')$$,
    '42501', 'permission denied for schema private',
    'anon cannot read the counters'' samples'
);
select throws_ok(
    $$select tests.as_role('analyst', 'select nextval(''counters.route_cache_truck_hits'')')$$,
    '42501', 'permission denied for schema counters',
    'analyst cannot count on (or read) the counters'
);
select lives_ok(
    $$select tests.as_role('service_role', 'select public.cache_route(-1.95, 30.06, -1.96, 30.07, ''truck'', ''nz{J_bnvDf^g^f^g^'', 1, 1)')$$,
    'service_role caches a route'
);
select lives_ok(
    $$select tests.as_role('service_role', 'select * from public.get_cached_route(-1.95, 30.06, -1.96, 30.07, 60, ''truck'')')$$,
    'service_role looks one up'
);
select is(
    private.counter_value('route_cache_truck_hits'), 1::bigint,
    'and its lookup hit the route it cached'
);
select lives_ok(
    $$select tests.as_role('analyst', 'select count(*) from monitoring.route_cache_stats')$$,
    'analyst reads monitoring.route_cache_stats'
);
select throws_ok(
    $$select tests.as_role('analyst', 'select count(*) from public.routes')$$,
    '42501', 'permission denied for table routes',
    'analyst cannot read public.routes'
);
select throws_ok(
    $$select tests.as_role('analyst', 'select * from public.get_cached_route(-1.95, 30.06, -1.96, 30.07)')$$,
    '42501', 'permission denied for function get_cached_route',
    'analyst cannot call get_cached_route'
);
select throws_ok(
    $$select tests.as_role('service_role', 'select private.cleanup_expired_routes()')$$,
    '42501', 'permission denied for schema private',
    'service_role cannot run the cleanup by hand'
);

-- The catalog ------------------------------------------------------------------------------------

select results_eq(
    $$select p.proname::text collate "default", p.prosecdef, p.proconfig collate "default",
             coalesce(obj_description(p.oid, 'pg_proc'), '') <> '',
             has_function_privilege('service_role', p.oid, 'execute'),
             has_function_privilege('anon', p.oid, 'execute'),
             has_function_privilege('authenticated', p.oid, 'execute'),
             exists (select from aclexplode(p.proacl) as a where a.grantee = 0)
        from pg_catalog.pg_proc as p
       where p.pronamespace = 'public'::regnamespace
         and p.proname in ('cache_route', 'get_cached_route')
       order by p.proname::text collate "C"$$,
    $$select f, true, array['search_path=""'], true, true, false, false, false
        from unnest(array['cache_route', 'get_cached_route']) as f$$,
    'each RPC is one function, security definer with search_path pinned, commented, service_role '
    || 'only'
);
select is_empty(
    $$select p.oid::regprocedure from pg_catalog.pg_proc as p
       where p.pronamespace = 'private'::regnamespace
         and p.proname in ('route_profiles', 'require_point', 'require_route_profile',
                           'cleanup_expired_routes')
         and coalesce(obj_description(p.oid, 'pg_proc'), '') = ''$$,
    'the private functions behind them are commented'
);
select is_empty(
    $$select c.oid::regclass from pg_catalog.pg_class as c
       where (c.oid in ('public.routes'::regclass,
                        'public.routes_origin'::regclass, 'public.routes_expires_at'::regclass,
                        'monitoring.route_cache_stats'::regclass)
              or (c.relnamespace = 'counters'::regnamespace and c.relname ~ '^route_cache_'
                  and c.relkind = 'S'))
         and coalesce(obj_description(c.oid, 'pg_class'), '') = ''$$,
    'the tables, indexes, view and counter sequences are commented'
);
select is(
    (select count(*)::integer from pg_catalog.pg_class as c
      where c.relnamespace = 'counters'::regnamespace and c.relname ~ '^route_cache_.*_(hits|misses)$'
        and c.relkind = 'S'),
    2 * cardinality(private.route_profiles()),
    'each profile has its hits and misses sequence'
);
select is_empty(
    $$select a.attname from pg_catalog.pg_attribute as a
       where a.attrelid = 'public.routes'::regclass and a.attnum > 0 and not a.attisdropped
         and a.attname <> 'id'
         and coalesce(col_description(a.attrelid, a.attnum), '') = ''$$,
    'every column of public.routes is commented'
);
select results_eq(
    $$select relname::text collate "default", relrowsecurity from pg_catalog.pg_class
       where oid in ('public.routes'::regclass)
       order by relname$$,
    $$values ('routes', true)$$,
    'row level security is on for the table'
);

select * from finish();
rollback;
