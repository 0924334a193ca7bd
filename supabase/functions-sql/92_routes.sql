-- Route cache: storing a route the routing API returned (cache_route), finding one for a trip
-- asked again (get_cached_route), its hit and miss counts, the cleanup of expired routes, and the
-- analysts' view. The table is in migration 20261207150100_routes.sql; the counters (made there,
-- moved to schema counters by 20261207160000_counters.sql) are sampled by 15_counters.

create or replace function private.route_profiles()
returns text[]
language sql
immutable
set search_path = ''
return array['driving', 'motorcycle', 'walking', 'cycling', 'transit', 'truck'];
comment on function private.route_profiles() is
'The profiles a route may be cached for: the routes_profile_known check''s list, each with a '
'hits and a misses sequence (counters.route_cache_<profile>_hits, _misses).';
grant execute on function private.route_profiles() to analyst;

create or replace function private.require_route_profile(p_function text, p_profile text)
returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
    if p_profile is null or not p_profile = any(private.route_profiles()) then
        raise exception '%: p_profile must be one of % (got %)',
            p_function, pg_catalog.array_to_string(private.route_profiles(), ', '),
            private.quoted_for_error(p_profile, 40)
        using errcode = '22023';
    end if;
end;
$$;
comment on function private.require_route_profile(text, text) is
'Nothing when p_profile is a known route profile; else 22023 listing them.';

create or replace function public.cache_route(
    p_origin_lat double precision,
    p_origin_lng double precision,
    p_dest_lat double precision,
    p_dest_lng double precision,
    p_profile text,
    p_encoded_polyline text,
    p_distance_meters integer,
    p_duration_seconds integer,
    p_traffic_multiplier double precision default 1,
    p_ttl_minutes integer default 60,
    p_provider text default null
)
returns bigint
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_line extensions.geometry;
    v_id bigint;
begin
    perform private.require_point('cache_route', 'p_origin', p_origin_lat, p_origin_lng);
    perform private.require_point('cache_route', 'p_dest', p_dest_lat, p_dest_lng);
    perform private.require_route_profile('cache_route', p_profile);
    perform private.require_length(
        p_encoded_polyline, 4, 65536, 'cache_route', 'p_encoded_polyline'
    );
    -- The decoder reads any text as some line: a polyline is one that encodes back to itself.
    v_line := extensions.st_linefromencodedpolyline(p_encoded_polyline);
    if extensions.st_asencodedpolyline(v_line) is distinct from p_encoded_polyline then
        raise exception 'cache_route: p_encoded_polyline is not an encoded polyline '
            '(Google''s format, precision 5)'
        using errcode = '22023';
    end if;
    if extensions.st_npoints(v_line) < 2 then
        raise exception 'cache_route: p_encoded_polyline must have at least 2 points (got %)',
            extensions.st_npoints(v_line)
        using errcode = '22023';
    end if;
    if extensions.st_xmin(v_line) < -180 or extensions.st_xmax(v_line) > 180
        or extensions.st_ymin(v_line) < -90 or extensions.st_ymax(v_line) > 90 then
        raise exception 'cache_route: p_encoded_polyline leaves the globe (a latitude beyond 90 '
            'or a longitude beyond 180)'
        using errcode = '22023';
    end if;
    perform private.require_between(
        p_distance_meters, 0, 40000000, 'cache_route', 'p_distance_meters'
    );
    perform private.require_between(
        p_duration_seconds, 0, 2592000, 'cache_route', 'p_duration_seconds'
    );
    if (p_traffic_multiplier between 0.1 and 10) is not true then
        raise exception 'cache_route: p_traffic_multiplier must be 0.1 to 10 (got %)',
            coalesce(p_traffic_multiplier::text, 'null')
        using errcode = '22023';
    end if;
    perform private.require_between(p_ttl_minutes, 1, 10080, 'cache_route', 'p_ttl_minutes');
    perform private.require_nullable_length(p_provider, 1, 100, 'cache_route', 'p_provider');

    insert into public.routes (
        profile, origin, destination, encoded_polyline, distance_meters, duration_seconds,
        traffic_multiplier, provider, expires_at
    ) values (
        p_profile,
        extensions.st_setsrid(
            extensions.st_makepoint(p_origin_lng, p_origin_lat), 4326
        )::extensions.geography,
        extensions.st_setsrid(
            extensions.st_makepoint(p_dest_lng, p_dest_lat), 4326
        )::extensions.geography,
        p_encoded_polyline,
        p_distance_meters,
        p_duration_seconds,
        p_traffic_multiplier,
        p_provider,
        pg_catalog.now() + pg_catalog.make_interval(mins => p_ttl_minutes)
    )
    returning id into v_id;
    return v_id;
end;
$$;
comment on function public.cache_route(
    double precision, double precision, double precision, double precision, text, text, integer,
    integer, double precision, integer, text
) is
'Caches a route the routing API returned (Google''s encoded polyline, precision 5, canonical, '
'2 points or more) for p_ttl_minutes (1 to 10080) and returns its id. Coordinates in degrees; '
'distance 0 to 40,000,000 m, duration 0 to 30 days, traffic multiplier 0.1 to 10, provider 1 to '
'100 characters or null. service_role only.';
revoke execute on function public.cache_route(
    double precision, double precision, double precision, double precision, text, text, integer,
    integer, double precision, integer, text
) from public, anon, authenticated;
grant execute on function public.cache_route(
    double precision, double precision, double precision, double precision, text, text, integer,
    integer, double precision, integer, text
) to service_role;

create or replace function public.get_cached_route(
    p_origin_lat double precision,
    p_origin_lng double precision,
    p_dest_lat double precision,
    p_dest_lng double precision,
    p_max_age_minutes integer default 60,
    p_profile text default 'driving',
    p_tolerance_meters integer default 100
)
returns table (
    id bigint,
    profile text,
    encoded_polyline text,
    distance_meters integer,
    duration_seconds integer,
    traffic_multiplier double precision,
    provider text,
    created_at timestamptz,
    expires_at timestamptz,
    origin_lat double precision,
    origin_lng double precision,
    destination_lat double precision,
    destination_lng double precision,
    origin_offset_meters double precision,
    destination_offset_meters double precision
)
language plpgsql
volatile
security definer
set search_path = ''
rows 1
as $$
-- Volatile: it counts a hit or a miss.
begin
    -- The checks in one expression where they pass (this is the hot read); the helpers word the
    -- refusal when one does not.
    if (p_origin_lat between -90 and 90) is not true
        or (p_origin_lng between -180 and 180) is not true
        or (p_dest_lat between -90 and 90) is not true
        or (p_dest_lng between -180 and 180) is not true
        or (p_max_age_minutes between 1 and 10080) is not true
        or (p_tolerance_meters between 1 and 10000) is not true
        or (p_profile = any(private.route_profiles())) is not true then
        perform private.require_point(
            'get_cached_route', 'p_origin', p_origin_lat, p_origin_lng
        );
        perform private.require_point('get_cached_route', 'p_dest', p_dest_lat, p_dest_lng);
        perform private.require_between(
            p_max_age_minutes, 1, 10080, 'get_cached_route', 'p_max_age_minutes'
        );
        perform private.require_between(
            p_tolerance_meters, 1, 10000, 'get_cached_route', 'p_tolerance_meters'
        );
        perform private.require_route_profile('get_cached_route', p_profile);
    end if;
    return query
    with asked as (
        select
            extensions.st_setsrid(
                extensions.st_makepoint(p_origin_lng, p_origin_lat), 4326
            )::extensions.geography as origin,
            extensions.st_setsrid(
                extensions.st_makepoint(p_dest_lng, p_dest_lat), 4326
            )::extensions.geography as destination
    )

    select
        r.id,
        r.profile,
        r.encoded_polyline,
        r.distance_meters,
        r.duration_seconds,
        r.traffic_multiplier,
        r.provider,
        r.created_at,
        r.expires_at,
        extensions.st_y(r.origin::extensions.geometry),
        extensions.st_x(r.origin::extensions.geometry),
        extensions.st_y(r.destination::extensions.geometry),
        extensions.st_x(r.destination::extensions.geometry),
        extensions.st_distance(r.origin, a.origin),
        extensions.st_distance(r.destination, a.destination)
    from asked as a
    inner join public.routes as r
        on
            extensions.st_dwithin(r.origin, a.origin, p_tolerance_meters)
            and extensions.st_dwithin(r.destination, a.destination, p_tolerance_meters)
    where
        r.profile = p_profile
        -- The clock, as get_cache: a route that expires while a long transaction runs is not
        -- returned to it either.
        and r.expires_at > pg_catalog.clock_timestamp()
        and r.created_at >= pg_catalog.now() - pg_catalog.make_interval(mins => p_max_age_minutes)
    order by r.created_at desc, r.id desc
    limit 1;
    if found then
        perform pg_catalog.nextval(('counters.route_cache_' || p_profile || '_hits')::regclass);
    else
        perform pg_catalog.nextval(('counters.route_cache_' || p_profile || '_misses')::regclass);
    end if;
end;
$$;
comment on function public.get_cached_route(
    double precision, double precision, double precision, double precision, integer, text, integer
) is
'The freshest unexpired route for p_profile, cached at most p_max_age_minutes ago (1 to 10080), '
'whose origin and destination are both within p_tolerance_meters (1 to 10000, on the spheroid) '
'of the asked points, with how far each end was from them; no row when there is none. Counts '
'a hit or a miss for the profile. service_role only.';
revoke execute on function public.get_cached_route(
    double precision, double precision, double precision, double precision, integer, text, integer
) from public, anon, authenticated;
grant execute on function public.get_cached_route(
    double precision, double precision, double precision, double precision, integer, text, integer
) to service_role;

-- Cleanup -----------------------------------------------------------------------------------

create or replace function private.cleanup_expired_routes()
returns integer
language plpgsql
set search_path = ''
as $$
-- In batches of 10,000, each its own short delete, so a backlog never holds one long lock set.
declare
    v_batch integer;
    v_deleted integer := 0;
begin
    loop
        delete from public.routes as r
        where r.id in (
            select e.id from public.routes as e
            where e.expires_at <= pg_catalog.now()
            order by e.expires_at
            limit 10000
        );
        get diagnostics v_batch = row_count;
        v_deleted := v_deleted + v_batch;
        exit when v_batch < 10000;
    end loop;
    return v_deleted;
end;
$$;
comment on function private.cleanup_expired_routes() is
'Deletes every expired route, 10,000 at a time; returns how many. Run by the '
'cleanup-expired-routes cron job every 5 minutes (get_cached_route never returns an expired '
'route meanwhile).';

select private.schedule_cron(
    'cleanup-expired-routes', '*/5 * * * *', 'select private.cleanup_expired_routes()'
);

-- Monitoring --------------------------------------------------------------------------------

create or replace view monitoring.route_cache_stats as
with
profiles as (
    select
        p.profile,
        private.counter_value('route_cache_' || p.profile || '_hits') as hits
    from pg_catalog.unnest(private.route_profiles()) as p (profile)
),

-- Each window's count: the counter now less its last sample at or before the window's start
-- (zero when none is that old: the counters started within the window).
windows as (
    select
        p.profile,
        private.counted_since(
            'route_cache_' || p.profile || '_hits', pg_catalog.now() - interval '1 hour'
        ) as hits_last_hour,
        private.counted_since(
            'route_cache_' || p.profile || '_misses', pg_catalog.now() - interval '1 hour'
        ) as misses_last_hour,
        private.counted_since(
            'route_cache_' || p.profile || '_hits', pg_catalog.now() - interval '1 day'
        ) as hits_last_day,
        private.counted_since(
            'route_cache_' || p.profile || '_misses', pg_catalog.now() - interval '1 day'
        ) as misses_last_day,
        p.hits as hits_total
    from profiles as p
),

cached as (
    select
        t.profile,
        pg_catalog.count(*) as routes,
        pg_catalog.count(*) filter (where t.expires_at <= pg_catalog.now()) as expired
    from public.routes as t
    group by t.profile
)

select
    w.profile,
    coalesce(r.routes, 0) as routes,
    coalesce(r.expired, 0) as expired,
    w.hits_last_hour,
    w.misses_last_hour,
    round(
        w.hits_last_hour::numeric / nullif(w.hits_last_hour + w.misses_last_hour, 0), 4
    ) as hit_ratio_last_hour,
    w.hits_last_day,
    w.misses_last_day,
    round(
        w.hits_last_day::numeric / nullif(w.hits_last_day + w.misses_last_day, 0), 4
    ) as hit_ratio_last_day,
    w.hits_total as routing_calls_saved
from windows as w
left join cached as r on w.profile = r.profile;
comment on view monitoring.route_cache_stats is
'Per route profile: routes cached, how many of them expired awaiting cleanup, hits and misses '
'and the hit ratio over the last hour and day (counters sampled every 5 minutes), and routing '
'calls saved (every hit since the counters were made).';
grant select on monitoring.route_cache_stats to analyst;
