-- Locations: drivers' position reports (the hot write), saved places, deleting one, the nearest
-- locations to a point, and who may read what.

-- Refusals ----------------------------------------------------------------------------------------

create or replace function private.require_measure(
    p_function text,
    p_argument text,
    p_value double precision,
    p_low double precision,
    p_high double precision
)
returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
    if p_value not between p_low and p_high or p_value = 'NaN'::double precision then
        raise exception '%: % must be null or % to % (got %)',
            p_function, p_argument, p_low, p_high, p_value
        using errcode = '22023';
    end if;
end;
$$;
comment on function private.require_measure(
    text, text, double precision, double precision,
    double precision
) is
'22023 naming p_argument of p_function unless p_value is null or p_low to p_high (NaN refused).';

create or replace function private.require_report_time(p_function text, p_recorded_at timestamptz)
returns void
language plpgsql
stable
set search_path = ''
as $$
-- A fix from the future would make every true report after it "older" and ignored until the
-- clock caught up, so at most 5 minutes of a phone's clock running fast are taken.
begin
    if p_recorded_at is null then
        raise exception '%: p_recorded_at must be a time, not null', p_function
        using errcode = '22023';
    end if;
    perform private.require_plausible_time(p_recorded_at, p_function, 'p_recorded_at');
    if p_recorded_at > pg_catalog.now() + interval '5 minutes' then
        raise exception '%: p_recorded_at must be at most 5 minutes after now (got %)',
            p_function, p_recorded_at
        using errcode = '22023';
    end if;
end;
$$;
comment on function private.require_report_time(text, timestamptz) is
'22023 naming p_recorded_at unless it is finite, at most a year ago and at most 5 minutes ahead.';

create or replace function private.require_location_report(
    p_user_id uuid,
    p_lat double precision,
    p_lng double precision,
    p_accuracy_meters double precision,
    p_heading double precision,
    p_speed_mps double precision,
    p_recorded_at timestamptz
)
returns void
language plpgsql
stable
set search_path = ''
as $$
begin
    if p_user_id is null then
        raise exception 'update_current_location: p_user_id must be a user id'
        using errcode = '22023';
    end if;
    perform private.require_point('update_current_location', 'p', p_lat, p_lng);
    perform private.require_measure('update_current_location', 'p_accuracy_meters',
        p_accuracy_meters, 0, 100000);
    perform private.require_measure('update_current_location', 'p_heading', p_heading, 0, 360);
    perform private.require_measure('update_current_location', 'p_speed_mps', p_speed_mps, 0, 150);
    perform private.require_report_time('update_current_location', p_recorded_at);
end;
$$;
comment on function private.require_location_report(
    uuid, double precision, double precision,
    double precision, double precision, double precision, timestamptz
) is
'Words update_current_location''s refusal of a bad argument (22023 naming it).';

-- The hot write -----------------------------------------------------------------------------------

create or replace function private.update_current_location(
    p_user_id uuid,
    p_lat double precision,
    p_lng double precision,
    p_accuracy_meters double precision,
    p_heading double precision,
    p_speed_mps double precision,
    p_recorded_at timestamptz
)
returns boolean
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Thousands a second at peak: the checks in one expression where they pass, the identity check
-- without a helper for the two callers that matter (service_role and the user themselves), then
-- one update of the row in place. Only when there is no row to update (the first report, or a
-- report older than the stored one) does the upsert run. No trigger and no audit row: a position
-- is not an account change, and the row's previous value is worth nothing once moved.
declare
    v_claims jsonb := nullif(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb;
    v_point extensions.geography;
begin
    if p_user_id is null
        or p_lat is null or p_lat not between -90 and 90
        or p_lng is null or p_lng not between -180 and 180
        or p_accuracy_meters not between 0 and 100000 or p_accuracy_meters = 'NaN'
        or p_heading not between 0 and 360 or p_heading = 'NaN'
        or p_speed_mps not between 0 and 150 or p_speed_mps = 'NaN'
        or p_recorded_at is null
        or p_recorded_at not between pg_catalog.now() - interval '1 year'
        and pg_catalog.now() + interval '5 minutes' then
        perform private.require_location_report(p_user_id, p_lat, p_lng, p_accuracy_meters,
            p_heading, p_speed_mps, p_recorded_at);
    end if;
    if v_claims ->> 'role' is distinct from 'service_role'
        and (v_claims ->> 'sub') is distinct from p_user_id::text
        and not private.caller_may_act_for(p_user_id) then
        raise exception 'update_current_location: a user may report only their own position'
        using errcode = '42501';
    end if;

    v_point := extensions.st_setsrid(extensions.st_makepoint(p_lng, p_lat), 4326)::extensions.geography;
    -- A report as old as the stored one is applied (a retry changes nothing); an older one not.
    update public.locations as l
    set coordinates = v_point,
        accuracy_meters = p_accuracy_meters,
        heading = p_heading,
        speed_mps = p_speed_mps,
        recorded_at = p_recorded_at,
        updated_at = pg_catalog.now()
    where l.user_id = p_user_id and l.location_type = 'current' and l.recorded_at <= p_recorded_at;
    if found then
        return true;
    end if;

    -- The first report, or an older one (then the conflict's condition keeps the stored row).
    -- No exception block for the foreign key: it would make every call a subtransaction.
    perform private.lock_living_user(p_user_id, 'update_current_location');
    insert into public.locations as l (
        user_id, location_type, coordinates, accuracy_meters, heading, speed_mps, recorded_at
    )
    values (
        p_user_id, 'current', v_point, p_accuracy_meters, p_heading, p_speed_mps, p_recorded_at
    )
    on conflict (user_id, location_type) where location_type in ('current', 'home', 'work')
    do update set
        coordinates = excluded.coordinates,
        accuracy_meters = excluded.accuracy_meters,
        heading = excluded.heading,
        speed_mps = excluded.speed_mps,
        recorded_at = excluded.recorded_at,
        updated_at = pg_catalog.now()
    where l.recorded_at <= excluded.recorded_at;
    return found;
end;
$$;
comment on function private.update_current_location(
    uuid, double precision, double precision, double precision, double precision,
    double precision, timestamptz
) is
'The body of public.update_current_location, with the rights to write any user''s position; it '
'checks who is calling itself. Executable by the roles that may call the RPC.';
revoke all on function private.update_current_location(
    uuid, double precision, double precision, double precision, double precision,
    double precision, timestamptz
) from public, anon, authenticated;
grant execute on function private.update_current_location(
    uuid, double precision, double precision, double precision, double precision,
    double precision, timestamptz
) to authenticated, service_role;

-- Signed-in drivers call it, so the RPC is SECURITY INVOKER and the writing is done by the
-- definer function above (see public.get_wallet_balance for why).
create or replace function public.update_current_location(
    p_user_id uuid,
    p_lat double precision,
    p_lng double precision,
    p_accuracy_meters double precision default null,
    p_heading double precision default null,
    p_speed_mps double precision default null,
    p_recorded_at timestamptz default now()
)
returns boolean
language sql
volatile
set search_path = ''
return private.update_current_location(
    p_user_id, p_lat, p_lng, p_accuracy_meters, p_heading, p_speed_mps, p_recorded_at
);
comment on function public.update_current_location(
    uuid, double precision, double precision,
    double precision, double precision, double precision, timestamptz
) is
'Moves user p_user_id''s current position to (p_lat, p_lng) with the fix''s accuracy, heading '
'and speed as of p_recorded_at (the row is made on the first report). Returns true when '
'applied, false when the stored position is newer (phones deliver out of order; it is kept). '
'A signed-in user may report only their own position (else 42501); service_role anyone''s. '
'Unknown user PT404, bad input 22023 naming the argument (p_recorded_at at most a year ago and '
'5 minutes ahead). No audit row. SECURITY INVOKER; the writing is done by '
'private.update_current_location.';
revoke all on function public.update_current_location(
    uuid, double precision, double precision,
    double precision, double precision, double precision, timestamptz
)
from public, anon, authenticated;
grant execute on function public.update_current_location(
    uuid, double precision,
    double precision, double precision, double precision, double precision, timestamptz
)
to authenticated, service_role;

-- Saved places ------------------------------------------------------------------------------------

create or replace function private.save_location(
    p_user_id uuid,
    p_location_type text,
    p_lat double precision,
    p_lng double precision,
    p_place_name text,
    p_address text,
    p_place_id text,
    p_city text,
    p_country text,
    p_accuracy_meters double precision,
    p_altitude_meters double precision,
    p_recorded_at timestamptz
)
returns uuid
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Home and work are one each per user: saving one again replaces it (same id). The others add a
-- row each.
declare
    v_id uuid;
begin
    if p_user_id is null then
        raise exception 'save_location: p_user_id must be a user id' using errcode = '22023';
    end if;
    if p_location_type is null
        or p_location_type not in ('home', 'work', 'favorite', 'pickup', 'dropoff') then
        raise exception 'save_location: p_location_type must be home, work, favorite, pickup or '
            'dropoff (got %)', private.quoted_for_error(p_location_type, 40)
        using errcode = '22023';
    end if;
    perform private.require_point('save_location', 'p', p_lat, p_lng);
    perform private.require_nullable_length(p_place_name, 1, 200, 'save_location', 'p_place_name');
    perform private.require_nullable_length(p_address, 1, 500, 'save_location', 'p_address');
    perform private.require_identifier(p_place_id, 'save_location', 'p_place_id');
    perform private.require_nullable_length(p_city, 1, 100, 'save_location', 'p_city');
    if p_country !~ '^[A-Z]{2}$' then
        raise exception 'save_location: p_country must be null or an ISO 3166-1 alpha-2 code in '
            'capitals (got %)', private.quoted_for_error(p_country, 40)
        using errcode = '22023';
    end if;
    perform private.require_measure('save_location', 'p_accuracy_meters', p_accuracy_meters, 0,
        100000);
    perform private.require_measure('save_location', 'p_altitude_meters', p_altitude_meters, -1000,
        10000);
    perform private.require_report_time('save_location', p_recorded_at);
    if not private.caller_may_act_for(p_user_id) then
        raise exception 'save_location: a user may save only their own places'
        using errcode = '42501';
    end if;
    perform private.lock_living_user(p_user_id, 'save_location');

    insert into public.locations as l (
        user_id, location_type, coordinates, place_name, address, place_id, city, country,
        accuracy_meters, altitude_meters, recorded_at
    )
    values (
        p_user_id, p_location_type,
        extensions.st_setsrid(extensions.st_makepoint(p_lng, p_lat), 4326)::extensions.geography,
        p_place_name, p_address, p_place_id, p_city, p_country, p_accuracy_meters,
        p_altitude_meters, p_recorded_at
    )
    on conflict (user_id, location_type) where location_type in ('current', 'home', 'work')
    do update set
        coordinates = excluded.coordinates,
        place_name = excluded.place_name,
        address = excluded.address,
        place_id = excluded.place_id,
        city = excluded.city,
        country = excluded.country,
        accuracy_meters = excluded.accuracy_meters,
        altitude_meters = excluded.altitude_meters,
        recorded_at = excluded.recorded_at,
        updated_at = pg_catalog.now()
    returning l.id into v_id;
    return v_id;
end;
$$;
comment on function private.save_location(
    uuid, text, double precision, double precision, text, text, text, text, text,
    double precision, double precision, timestamptz
) is
'The body of public.save_location, with the rights to write any user''s places; it checks who '
'is calling itself. Executable by the roles that may call the RPC.';
revoke all on function private.save_location(
    uuid, text, double precision, double precision, text, text, text, text, text,
    double precision, double precision, timestamptz
) from public, anon, authenticated;
grant execute on function private.save_location(
    uuid, text, double precision, double precision, text, text, text, text, text,
    double precision, double precision, timestamptz
) to authenticated, service_role;

create or replace function public.save_location(
    p_user_id uuid,
    p_location_type text,
    p_lat double precision,
    p_lng double precision,
    p_place_name text default null,
    p_address text default null,
    p_place_id text default null,
    p_city text default null,
    p_country text default null,
    p_accuracy_meters double precision default null,
    p_altitude_meters double precision default null,
    p_recorded_at timestamptz default now()
)
returns uuid
language sql
volatile
set search_path = ''
return private.save_location(
    p_user_id, p_location_type, p_lat, p_lng, p_place_name, p_address, p_place_id, p_city,
    p_country, p_accuracy_meters, p_altitude_meters, p_recorded_at
);
comment on function public.save_location(
    uuid, text, double precision, double precision, text,
    text, text, text, text, double precision, double precision, timestamptz
) is
'Saves a place of user p_user_id (home, work, favorite, pickup or dropoff) at (p_lat, p_lng) and '
'returns its id; home and work replace the user''s previous one (keeping its id). A signed-in '
'user may save only their own places (else 42501); service_role anyone''s. Unknown user PT404, '
'bad input 22023 naming the argument (texts: place name 200, address 500, place id 200, city '
'100 characters; country ISO 3166-1 alpha-2). SECURITY INVOKER; the writing is done by '
'private.save_location.';
revoke all on function public.save_location(
    uuid, text, double precision, double precision, text,
    text, text, text, text, double precision, double precision, timestamptz
)
from public, anon, authenticated;
grant execute on function public.save_location(
    uuid, text, double precision, double precision,
    text, text, text, text, text, double precision, double precision, timestamptz
)
to authenticated, service_role;

create or replace function public.delete_location(p_id uuid)
returns void
language plpgsql
volatile
set search_path = ''
as $$
-- SECURITY INVOKER: the table's policy lets a user delete only their own rows, so another user's
-- row is not found, exactly as a row that does not exist.
begin
    if p_id is null then
        raise exception 'delete_location: p_id must be a location id' using errcode = '22023';
    end if;
    delete from public.locations as l where l.id = p_id;
    if not found then
        raise exception 'delete_location: no location %', p_id using errcode = 'PT404';
    end if;
end;
$$;
comment on function public.delete_location(uuid) is
'Deletes location p_id. A signed-in user reaches only their own rows (another''s is PT404, as '
'one that does not exist); service_role any. SECURITY INVOKER, under the table''s policies.';
revoke all on function public.delete_location(uuid) from public, anon, authenticated;
grant execute on function public.delete_location(uuid) to authenticated, service_role;

-- Nearest locations -------------------------------------------------------------------------------

create or replace function public.find_nearby_locations(
    p_lat double precision,
    p_lng double precision,
    p_radius_meters double precision default 5000,
    p_location_type text default null,
    p_limit integer default 20,
    p_max_age_seconds integer default null
)
returns table (
    id uuid,
    user_id uuid,
    location_type text,
    lat double precision,
    lng double precision,
    distance_meters double precision,
    place_name text,
    address text,
    city text,
    recorded_at timestamptz
)
language plpgsql
stable
security definer
set search_path = ''
set enable_sort = off
as $$
-- SECURITY DEFINER for the refusals' helpers in private; only service_role may call it, and it
-- reads every row anyway (service_role bypasses RLS).
-- enable_sort off: the only plan without a sort below the limit is the KNN scan, which reads
-- about p_limit entries. Without it, where drivers are dense (central Kigali) the planner
-- underestimates how many rows ST_DWithin keeps and takes a bitmap scan of every current row
-- within the radius and a sort: 36-45 ms instead of 0.5 ms, measured on 1,000,000 locations.
-- The final sort of at most p_limit rows by exact distance runs either way.
-- One static query per type, each naming its type as a constant: its cached plan then reads that
-- type's partial GiST index (a parameter would leave the generic plan with the index of every
-- type, reading all the other types' entries near the point; one query re-planned per call for
-- its type ran at 0.72 of these under load, and a table partitioned by type took twice as long
-- for any type). The index finds the points in a box around the circle nearest first in degrees
-- (the plane of longitude and latitude, where a degree east is shorter than one north away from
-- the equator: half as long at 60 degrees); ST_DWithin keeps those within the radius on the
-- spheroid. Ten more than asked are fetched, ranked by the exact distance and returned when the
-- plane proves that none left behind is nearer: one not fetched is at least as far in the plane
-- as the farthest fetched, so at least that times v_metres_per_degree on the spheroid. Within
-- Rwanda the first fetch proves it unless the ten extra lie within 0.7% of the distance of the
-- last one asked for. The proof and the rows are one statement, as fast as the query alone (a
-- second statement for the proof cost a third of the rate).
declare
    v_centre extensions.geometry;
    v_point extensions.geography;
    v_box extensions.geometry;
    v_since timestamptz;
    -- The fewest metres a degree of the plane spans anywhere in the box (on the meridian, or
    -- along the parallel farthest from the equator).
    v_metres_per_degree double precision;
    v_fetch integer := p_limit + 10;
begin
    if p_lat is null or p_lat not between -90 and 90
        or p_lng is null or p_lng not between -180 and 180
        or p_radius_meters is null or p_radius_meters <= 0 or p_radius_meters > 50000
        or p_limit is null or p_limit not between 1 and 100
        or p_location_type not in ('current', 'home', 'work', 'favorite', 'pickup', 'dropoff')
        or p_max_age_seconds not between 1 and 31622400 then
        perform private.require_point('find_nearby_locations', 'p', p_lat, p_lng);
        if p_radius_meters is null or not (p_radius_meters > 0 and p_radius_meters <= 50000) then
            raise exception 'find_nearby_locations: p_radius_meters must be above 0 and at most '
                '50000 (got %)', coalesce(p_radius_meters::text, 'null')
            using errcode = '22023';
        end if;
        perform private.require_between(p_limit, 1, 100, 'find_nearby_locations', 'p_limit');
        if p_location_type not in ('current', 'home', 'work', 'favorite', 'pickup', 'dropoff') then
            raise exception 'find_nearby_locations: p_location_type must be null, current, home, '
                'work, favorite, pickup or dropoff (got %)',
                private.quoted_for_error(p_location_type, 40)
            using errcode = '22023';
        end if;
        perform private.require_between(coalesce(p_max_age_seconds, 1), 1, 31622400,
            'find_nearby_locations', 'p_max_age_seconds');
    end if;
    v_centre := extensions.st_setsrid(extensions.st_makepoint(p_lng, p_lat), 4326);
    v_point := v_centre::extensions.geography;
    -- A degree of latitude spans at least 110,574 m; one of longitude at least 111,319 m times
    -- the cosine of the latitude farthest from the equator that the radius reaches (1% over for
    -- rounding and for a geodesic's bulge towards the pole; near a pole, hardly anything).
    v_metres_per_degree := 111319 * greatest(
        pg_catalog.cos(pg_catalog.radians(
            least(90, pg_catalog.abs(p_lat) + p_radius_meters * 1.01 / 110574)
        )),
        0.000001
    );
    -- Every point within the radius is in this box (the whole circle of latitude near a pole).
    v_box := extensions.st_expand(
        v_centre,
        least(360, p_radius_meters * 1.01 / v_metres_per_degree),
        p_radius_meters * 1.01 / 110574
    );
    v_metres_per_degree := least(110574, v_metres_per_degree);
    -- The plane ends at the 180th meridian: a box across it would leave out the points beyond.
    if pg_catalog.abs(p_lng) + p_radius_meters * 1.01 / v_metres_per_degree > 180 then
        raise exception 'find_nearby_locations: the circle of % m around (%, %) crosses the 180th '
            'meridian (or a pole), which this search does not reach across', p_radius_meters,
            p_lat, p_lng
        using errcode = '22023';
    end if;
    -- Only current positions age: a place saved long ago is still where it was.
    v_since := pg_catalog.now() - pg_catalog.make_interval(secs => coalesce(p_max_age_seconds, 0));
    if p_max_age_seconds is null then
        v_since := '-infinity';
    end if;

    loop
        if p_location_type is null then
            return query
            with fetched as (
                select
                    l.id, l.user_id, l.location_type,
                    extensions.st_y(l.coordinates::extensions.geometry) as lat,
                    extensions.st_x(l.coordinates::extensions.geometry) as lng,
                    extensions.st_distance(l.coordinates, v_point, true) as distance_meters,
                    l.place_name, l.address, l.city, l.recorded_at,
                    l.coordinates::extensions.geometry operator(extensions.<->) v_centre as plane
                from public.locations as l
                where l.coordinates::extensions.geometry operator(extensions.&&) v_box
                    and extensions.st_dwithin(l.coordinates, v_point, p_radius_meters, true)
                    and (l.location_type <> 'current' or l.recorded_at >= v_since)
                order by plane
                limit v_fetch
            )

            select
                f.id, f.user_id, f.location_type, f.lat, f.lng, f.distance_meters,
                f.place_name, f.address, f.city, f.recorded_at
            from fetched as f
            where (select pg_catalog.count(*) from fetched) < v_fetch or (
                select n.distance_meters from fetched as n
                order by n.distance_meters
                offset p_limit - 1
                limit 1
            ) < (select pg_catalog.max(m.plane) from fetched as m) * v_metres_per_degree
            order by f.distance_meters, f.id
            limit p_limit;
        elsif p_location_type = 'current' then
            return query
            with fetched as (
                select
                    l.id, l.user_id, l.location_type,
                    extensions.st_y(l.coordinates::extensions.geometry) as lat,
                    extensions.st_x(l.coordinates::extensions.geometry) as lng,
                    extensions.st_distance(l.coordinates, v_point, true) as distance_meters,
                    l.place_name, l.address, l.city, l.recorded_at,
                    l.coordinates::extensions.geometry operator(extensions.<->) v_centre as plane
                from public.locations as l
                where l.location_type = 'current'
                    and l.coordinates::extensions.geometry operator(extensions.&&) v_box
                    and extensions.st_dwithin(l.coordinates, v_point, p_radius_meters, true)
                    and l.recorded_at >= v_since
                order by plane
                limit v_fetch
            )

            select
                f.id, f.user_id, f.location_type, f.lat, f.lng, f.distance_meters,
                f.place_name, f.address, f.city, f.recorded_at
            from fetched as f
            where (select pg_catalog.count(*) from fetched) < v_fetch or (
                select n.distance_meters from fetched as n
                order by n.distance_meters
                offset p_limit - 1
                limit 1
            ) < (select pg_catalog.max(m.plane) from fetched as m) * v_metres_per_degree
            order by f.distance_meters, f.id
            limit p_limit;
        elsif p_location_type = 'home' then
            return query
            with fetched as (
                select
                    l.id, l.user_id, l.location_type,
                    extensions.st_y(l.coordinates::extensions.geometry) as lat,
                    extensions.st_x(l.coordinates::extensions.geometry) as lng,
                    extensions.st_distance(l.coordinates, v_point, true) as distance_meters,
                    l.place_name, l.address, l.city, l.recorded_at,
                    l.coordinates::extensions.geometry operator(extensions.<->) v_centre as plane
                from public.locations as l
                where l.location_type = 'home'
                    and l.coordinates::extensions.geometry operator(extensions.&&) v_box
                    and extensions.st_dwithin(l.coordinates, v_point, p_radius_meters, true)
                order by plane
                limit v_fetch
            )

            select
                f.id, f.user_id, f.location_type, f.lat, f.lng, f.distance_meters,
                f.place_name, f.address, f.city, f.recorded_at
            from fetched as f
            where (select pg_catalog.count(*) from fetched) < v_fetch or (
                select n.distance_meters from fetched as n
                order by n.distance_meters
                offset p_limit - 1
                limit 1
            ) < (select pg_catalog.max(m.plane) from fetched as m) * v_metres_per_degree
            order by f.distance_meters, f.id
            limit p_limit;
        elsif p_location_type = 'work' then
            return query
            with fetched as (
                select
                    l.id, l.user_id, l.location_type,
                    extensions.st_y(l.coordinates::extensions.geometry) as lat,
                    extensions.st_x(l.coordinates::extensions.geometry) as lng,
                    extensions.st_distance(l.coordinates, v_point, true) as distance_meters,
                    l.place_name, l.address, l.city, l.recorded_at,
                    l.coordinates::extensions.geometry operator(extensions.<->) v_centre as plane
                from public.locations as l
                where l.location_type = 'work'
                    and l.coordinates::extensions.geometry operator(extensions.&&) v_box
                    and extensions.st_dwithin(l.coordinates, v_point, p_radius_meters, true)
                order by plane
                limit v_fetch
            )

            select
                f.id, f.user_id, f.location_type, f.lat, f.lng, f.distance_meters,
                f.place_name, f.address, f.city, f.recorded_at
            from fetched as f
            where (select pg_catalog.count(*) from fetched) < v_fetch or (
                select n.distance_meters from fetched as n
                order by n.distance_meters
                offset p_limit - 1
                limit 1
            ) < (select pg_catalog.max(m.plane) from fetched as m) * v_metres_per_degree
            order by f.distance_meters, f.id
            limit p_limit;
        elsif p_location_type = 'favorite' then
            return query
            with fetched as (
                select
                    l.id, l.user_id, l.location_type,
                    extensions.st_y(l.coordinates::extensions.geometry) as lat,
                    extensions.st_x(l.coordinates::extensions.geometry) as lng,
                    extensions.st_distance(l.coordinates, v_point, true) as distance_meters,
                    l.place_name, l.address, l.city, l.recorded_at,
                    l.coordinates::extensions.geometry operator(extensions.<->) v_centre as plane
                from public.locations as l
                where l.location_type = 'favorite'
                    and l.coordinates::extensions.geometry operator(extensions.&&) v_box
                    and extensions.st_dwithin(l.coordinates, v_point, p_radius_meters, true)
                order by plane
                limit v_fetch
            )

            select
                f.id, f.user_id, f.location_type, f.lat, f.lng, f.distance_meters,
                f.place_name, f.address, f.city, f.recorded_at
            from fetched as f
            where (select pg_catalog.count(*) from fetched) < v_fetch or (
                select n.distance_meters from fetched as n
                order by n.distance_meters
                offset p_limit - 1
                limit 1
            ) < (select pg_catalog.max(m.plane) from fetched as m) * v_metres_per_degree
            order by f.distance_meters, f.id
            limit p_limit;
        elsif p_location_type = 'pickup' then
            return query
            with fetched as (
                select
                    l.id, l.user_id, l.location_type,
                    extensions.st_y(l.coordinates::extensions.geometry) as lat,
                    extensions.st_x(l.coordinates::extensions.geometry) as lng,
                    extensions.st_distance(l.coordinates, v_point, true) as distance_meters,
                    l.place_name, l.address, l.city, l.recorded_at,
                    l.coordinates::extensions.geometry operator(extensions.<->) v_centre as plane
                from public.locations as l
                where l.location_type = 'pickup'
                    and l.coordinates::extensions.geometry operator(extensions.&&) v_box
                    and extensions.st_dwithin(l.coordinates, v_point, p_radius_meters, true)
                order by plane
                limit v_fetch
            )

            select
                f.id, f.user_id, f.location_type, f.lat, f.lng, f.distance_meters,
                f.place_name, f.address, f.city, f.recorded_at
            from fetched as f
            where (select pg_catalog.count(*) from fetched) < v_fetch or (
                select n.distance_meters from fetched as n
                order by n.distance_meters
                offset p_limit - 1
                limit 1
            ) < (select pg_catalog.max(m.plane) from fetched as m) * v_metres_per_degree
            order by f.distance_meters, f.id
            limit p_limit;
        elsif p_location_type = 'dropoff' then
            return query
            with fetched as (
                select
                    l.id, l.user_id, l.location_type,
                    extensions.st_y(l.coordinates::extensions.geometry) as lat,
                    extensions.st_x(l.coordinates::extensions.geometry) as lng,
                    extensions.st_distance(l.coordinates, v_point, true) as distance_meters,
                    l.place_name, l.address, l.city, l.recorded_at,
                    l.coordinates::extensions.geometry operator(extensions.<->) v_centre as plane
                from public.locations as l
                where l.location_type = 'dropoff'
                    and l.coordinates::extensions.geometry operator(extensions.&&) v_box
                    and extensions.st_dwithin(l.coordinates, v_point, p_radius_meters, true)
                order by plane
                limit v_fetch
            )

            select
                f.id, f.user_id, f.location_type, f.lat, f.lng, f.distance_meters,
                f.place_name, f.address, f.city, f.recorded_at
            from fetched as f
            where (select pg_catalog.count(*) from fetched) < v_fetch or (
                select n.distance_meters from fetched as n
                order by n.distance_meters
                offset p_limit - 1
                limit 1
            ) < (select pg_catalog.max(m.plane) from fetched as m) * v_metres_per_degree
            order by f.distance_meters, f.id
            limit p_limit;
        end if;
        exit when found or v_fetch = 2147483647;
        -- Nothing: no location within the radius, or too few fetched to prove which are nearest
        -- (far from the equator, among many): sixteen times as many, then every one.
        v_fetch := case when v_fetch = p_limit + 10 then v_fetch * 16 else 2147483647 end;
    end loop;
end;
$$;
comment on function public.find_nearby_locations(
    double precision, double precision,
    double precision, text, integer, integer
) is
'The p_limit (1 to 100) locations nearest to (p_lat, p_lng) within p_radius_meters (above 0, at '
'most 50 km), of p_location_type (null: any), current positions only when recorded in the last '
'p_max_age_seconds (null: any age; leaves out the position of a driver whose app died; saved '
'places never age): id, user_id, location_type, lat, lng, distance_meters (geodesic, on the '
'spheroid), place_name, address, city, recorded_at, nearest first. Found by the GiST indexes '
'(KNN <-> within ST_DWithin). Bad input 22023 naming the argument, as is a circle across the '
'180th meridian or a pole. service_role only: it finds other people.';
revoke all on function public.find_nearby_locations(
    double precision, double precision,
    double precision, text, integer, integer
) from public, anon, authenticated;
grant execute on function public.find_nearby_locations(
    double precision, double precision,
    double precision, text, integer, integer
) to service_role;

-- Who reads and deletes what --------------------------------------------------------------------

-- A signed-in user sees and deletes their own rows (through the table API or delete_location);
-- every write otherwise goes through the functions above. service_role bypasses RLS.
drop policy if exists locations_own_select on public.locations;
create policy locations_own_select on public.locations
for select to authenticated
using (user_id = (select auth.uid()));

drop policy if exists locations_own_delete on public.locations;
create policy locations_own_delete on public.locations
for delete to authenticated
using (user_id = (select auth.uid()));
