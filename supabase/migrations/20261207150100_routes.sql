-- Route cache (issue 18): routes the routing API returned, kept for a while so the same trip asked
-- again (within a tolerance at both ends) is answered without a paid call. Functions, the cleanup
-- job, the hit and miss counters' sampler and the monitoring view are in
-- supabase/functions-sql/92_routes.sql.

create table public.routes (
    id bigint generated always as identity primary key,
    profile text not null,
    origin extensions.geography (point, 4326) not null,
    destination extensions.geography (point, 4326) not null,
    -- Google's encoded polyline, precision 5, as the routing API gave it; the path is derived
    -- from it, so the two cannot disagree.
    encoded_polyline text not null,
    path extensions.geography (linestring, 4326) generated always as ( -- noqa: RF04
        extensions.st_linefromencodedpolyline(encoded_polyline)::extensions.geography
    ) stored,
    distance_meters integer not null,
    duration_seconds integer not null,
    traffic_multiplier double precision not null default 1,
    provider text, -- noqa: RF04
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    constraint routes_profile_known check (
        profile in ('driving', 'motorcycle', 'walking', 'cycling', 'transit', 'truck')
    ),
    -- Only a canonical encoding is kept: the decoder reads any text as some line, so a polyline
    -- is one that encodes back to itself, has two points or more and stays on the globe (the
    -- geography cast would otherwise coerce it there silently).
    constraint routes_polyline_decodes check (
        char_length(encoded_polyline) between 4 and 65536
        and extensions.st_asencodedpolyline(
            extensions.st_linefromencodedpolyline(encoded_polyline)
        ) = encoded_polyline
        and extensions.st_npoints(extensions.st_linefromencodedpolyline(encoded_polyline)) >= 2
        and extensions.st_xmin(extensions.st_linefromencodedpolyline(encoded_polyline)) >= -180
        and extensions.st_xmax(extensions.st_linefromencodedpolyline(encoded_polyline)) <= 180
        and extensions.st_ymin(extensions.st_linefromencodedpolyline(encoded_polyline)) >= -90
        and extensions.st_ymax(extensions.st_linefromencodedpolyline(encoded_polyline)) <= 90
    ),
    constraint routes_distance_range check (distance_meters between 0 and 40000000),
    constraint routes_duration_range check (duration_seconds between 0 and 2592000),
    constraint routes_traffic_multiplier_range check (traffic_multiplier between 0.1 and 10),
    constraint routes_provider_length check (char_length(provider) between 1 and 100),
    constraint routes_expires_after_created check (expires_at > created_at)
);
comment on table public.routes is
'Routes returned by the routing API, per profile, looked up by origin and destination within a '
'tolerance (get_cached_route) until expires_at; path is derived from encoded_polyline. Written '
'by cache_route, expired rows deleted by the cleanup-expired-routes cron job.';
comment on column public.routes.profile is
'How the trip is made: driving, motorcycle, walking, cycling, transit or truck.';
comment on column public.routes.origin is 'Where the route was asked from (WGS 84 point).';
comment on column public.routes.destination is 'Where the route was asked to (WGS 84 point).';
comment on column public.routes.encoded_polyline is
'The route''s geometry in Google''s encoded polyline format (precision 5), canonical.';
comment on column public.routes.path is
'The route''s geometry as a line, decoded from encoded_polyline (generated, never written).';
comment on column public.routes.distance_meters is 'Length of the route by road, in meters.';
comment on column public.routes.duration_seconds is
'Travel time the routing API gave, in seconds, traffic included.';
comment on column public.routes.traffic_multiplier is
'How much traffic slowed the route when it was asked (1: free flow), 0.1 to 10.';
comment on column public.routes.provider is 'Which routing API answered (null: not said).';
comment on column public.routes.created_at is 'When the route was cached.';
comment on column public.routes.expires_at is 'After this the route is never returned.';

-- The lookup: origin within the tolerance (this index), then destination, profile and expiry
-- filtered on the few rows near the origin (btree_gist, for a composite with the profile, is not
-- among the extensions this project installs).
create index routes_origin on public.routes using gist (origin);
comment on index public.routes_origin is
'get_cached_route: the routes starting within the tolerance of the asked origin.';
create index routes_expires_at on public.routes (expires_at);
comment on index public.routes_expires_at is
'cleanup_expired_routes: the expired rows, oldest first.';

-- Hits and misses counted on sequences, one per profile and outcome: nextval is not a row lock,
-- so lookups never queue behind one another the way an updated counter row would make them.
create sequence private.route_cache_driving_hits;
create sequence private.route_cache_driving_misses;
create sequence private.route_cache_motorcycle_hits;
create sequence private.route_cache_motorcycle_misses;
create sequence private.route_cache_walking_hits;
create sequence private.route_cache_walking_misses;
create sequence private.route_cache_cycling_hits;
create sequence private.route_cache_cycling_misses;
create sequence private.route_cache_transit_hits;
create sequence private.route_cache_transit_misses;
create sequence private.route_cache_truck_hits;
create sequence private.route_cache_truck_misses;
comment on sequence private.route_cache_driving_hits is 'get_cached_route hits for driving.';
comment on sequence private.route_cache_driving_misses is 'get_cached_route misses for driving.';
comment on sequence private.route_cache_motorcycle_hits is
'get_cached_route hits for motorcycle.';
comment on sequence private.route_cache_motorcycle_misses is
'get_cached_route misses for motorcycle.';
comment on sequence private.route_cache_walking_hits is 'get_cached_route hits for walking.';
comment on sequence private.route_cache_walking_misses is 'get_cached_route misses for walking.';
comment on sequence private.route_cache_cycling_hits is 'get_cached_route hits for cycling.';
comment on sequence private.route_cache_cycling_misses is 'get_cached_route misses for cycling.';
comment on sequence private.route_cache_transit_hits is 'get_cached_route hits for transit.';
comment on sequence private.route_cache_transit_misses is 'get_cached_route misses for transit.';
comment on sequence private.route_cache_truck_hits is 'get_cached_route hits for truck.';
comment on sequence private.route_cache_truck_misses is 'get_cached_route misses for truck.';

create table public.route_cache_counts (
    profile text not null,
    sampled_at timestamptz not null default now(),
    hits bigint not null,
    misses bigint not null,
    primary key (profile, sampled_at),
    constraint route_cache_counts_positive check (hits >= 0 and misses >= 0)
);
comment on table public.route_cache_counts is
'Samples of each profile''s hit and miss counters (cumulative since the sequences were made), '
'written by the sample-route-cache-counts cron job and kept 8 days; monitoring.route_cache_stats '
'subtracts the sample at the start of an hour or a day from the counters now.';

alter table public.routes enable row level security;
alter table public.route_cache_counts enable row level security;
revoke all on public.routes from anon, authenticated;
revoke all on public.route_cache_counts from anon, authenticated;
