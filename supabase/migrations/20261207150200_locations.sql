-- Locations (seed migration 6): drivers' current positions, reported every few seconds, and the
-- places riders save (home, work, favourites, trip points). Functions, policies and grants are in
-- functions-sql's locations file.

create table public.locations (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references public.users (id) on delete cascade,
    location_type text not null,
    coordinates extensions.geography (point, 4326) not null,
    address text,
    place_name text,
    place_id text,
    city text,
    country text,
    accuracy_meters double precision,
    altitude_meters double precision,
    heading double precision,
    speed_mps double precision,
    recorded_at timestamptz not null default now(),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint locations_type check (
        location_type in ('current', 'home', 'work', 'favorite', 'pickup', 'dropoff')
    ),
    constraint locations_address_length check (char_length(address) between 1 and 500),
    constraint locations_place_name_length check (char_length(place_name) between 1 and 200),
    constraint locations_place_id_length check (char_length(place_id) between 1 and 200),
    constraint locations_city_length check (char_length(city) between 1 and 100),
    constraint locations_country_alpha2 check (country ~ '^[A-Z]{2}$'),
    constraint locations_accuracy check (accuracy_meters between 0 and 100000),
    constraint locations_altitude check (altitude_meters between -1000 and 10000),
    constraint locations_heading check (heading between 0 and 360),
    constraint locations_speed check (speed_mps between 0 and 150)
) with (fillfactor = 70);
comment on table public.locations is
'Where users are and the places they keep: one ''current'' row per user (a driver''s last '
'reported position, moved in place by update_current_location), and home, work, favorite, '
'pickup and dropoff rows written by save_location. A user reads and deletes their own rows; '
'service_role finds anyone''s with find_nearby_locations. fillfactor 70 leaves room on each page '
'for the new version of a current row, so a ping that does not move an indexed value is a HOT '
'update.';
comment on column public.locations.location_type is
'current (the last reported position, at most one per user), home and work (at most one each '
'per user, replaced when saved again), favorite, pickup, dropoff.';
comment on column public.locations.coordinates is
'The point, WGS 84 longitude and latitude, as geography so distances are metres on the earth.';
comment on column public.locations.country is 'ISO 3166-1 alpha-2, capitals.';
comment on column public.locations.accuracy_meters is 'The fix''s horizontal accuracy (radius).';
comment on column public.locations.heading is 'Degrees clockwise from true north, 0 to 360.';
comment on column public.locations.speed_mps is 'Ground speed in metres per second.';
comment on column public.locations.recorded_at is
'When the device took the fix (not when it reached us): a report older than the stored one is '
'ignored, and find_nearby_locations'' p_max_age_seconds reads it.';

-- The one-per-user kinds: the current row (the hot write finds it here and its first insert is an
-- upsert on it), home and work. Only user_id and location_type, which a ping never changes.
create unique index locations_user_single on public.locations (user_id, location_type)
where location_type in ('current', 'home', 'work');
comment on index public.locations_user_single is
'At most one current, home and work row per user; the hot write''s lookup.';

-- The user's other rows (RLS reads, deletes, the users foreign key). Partial, so a moving current
-- row never adds an entry here.
create index locations_user_places on public.locations (user_id)
where location_type in ('favorite', 'pickup', 'dropoff');
comment on index public.locations_user_places is
'A user''s favorite, pickup and dropoff rows (the others are in locations_user_single).';

-- Nearest-neighbour search (KNN <-> within a box, then ST_DWithin): one index for every type, and
-- one per type, which find_nearby_locations uses with the type as a constant in its query (a GiST
-- index on (location_type, coordinates) still reads every type's entries near the point). On the
-- points as geometry (longitude and latitude in degrees), not geography: a geography KNN scan
-- rechecks its order with sphere distances and took 1.3 ms (p50) for 20 nearest among 1,000,000
-- locations over Rwanda, the planar one 0.27 ms; the function sorts what it finds by the exact
-- geodesic distance.
create index locations_coordinates on public.locations
using gist ((coordinates::extensions.geometry));
comment on index public.locations_coordinates is 'Nearest locations of any type.';
create index locations_current_coordinates on public.locations
using gist ((coordinates::extensions.geometry))
where location_type = 'current';
comment on index public.locations_current_coordinates is 'Nearest current positions.';
create index locations_home_coordinates on public.locations
using gist ((coordinates::extensions.geometry))
where location_type = 'home';
comment on index public.locations_home_coordinates is 'Nearest home places.';
create index locations_work_coordinates on public.locations
using gist ((coordinates::extensions.geometry))
where location_type = 'work';
comment on index public.locations_work_coordinates is 'Nearest work places.';
create index locations_favorite_coordinates on public.locations
using gist ((coordinates::extensions.geometry))
where location_type = 'favorite';
comment on index public.locations_favorite_coordinates is 'Nearest favourite places.';
create index locations_pickup_coordinates on public.locations
using gist ((coordinates::extensions.geometry))
where location_type = 'pickup';
comment on index public.locations_pickup_coordinates is 'Nearest pickup points.';
create index locations_dropoff_coordinates on public.locations
using gist ((coordinates::extensions.geometry))
where location_type = 'dropoff';
comment on index public.locations_dropoff_coordinates is 'Nearest dropoff points.';

alter table public.locations enable row level security;
revoke all on public.locations from anon, authenticated, service_role;
grant select, delete on public.locations to authenticated;
grant select, insert, update, delete on public.locations to service_role;
