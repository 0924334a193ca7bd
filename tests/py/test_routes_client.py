"""The route cache's RPCs through the supabase Python client against the edge, as the routing
service calls them: cache_route with a route the routing API returned, get_cached_route from a
point 40 m off the cached origin (a hit, with its offsets), from the way back and for another
profile (misses, no row), a polyline that does not decode refused with 400 and 22023 naming it,
and anon and signed-in users refused both RPCs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.support.client import RecordingClient
from tests.support.db import query
from tests.support.edge import Edge

USER = "5b2d8f63-4e5c-4a9b-8f32-1c6d7e8f9a01"
# Kigali's centre (-1.95, 30.06) to (-1.96, 30.07), three points.
POLYLINE = "nz{J_bnvDf^g^f^g^"
ROUTE = {
    "p_origin_lat": -1.95,
    "p_origin_lng": 30.06,
    "p_dest_lat": -1.96,
    "p_dest_lng": 30.07,
    "p_profile": "motorcycle",
    "p_encoded_polyline": POLYLINE,
    "p_distance_meters": 1850,
    "p_duration_seconds": 420,
    "p_traffic_multiplier": 1.25,
    "p_ttl_minutes": 30,
    "p_provider": "google",
}
LOOKUP = {
    # About 40 m north of the cached origin.
    "p_origin_lat": -1.94964,
    "p_origin_lng": 30.06,
    "p_dest_lat": -1.96,
    "p_dest_lng": 30.07,
    "p_profile": "motorcycle",
}


def counts(database_url: str, profile: str) -> tuple[int, int]:
    (row,) = query(
        database_url,
        "select private.counter_value('route_cache_' || %s || '_hits'),"
        " private.counter_value('route_cache_' || %s || '_misses')",
        (profile, profile),
    )
    return row[0], row[1]


def test_cache_a_route_and_find_it_again_through_the_edge(edge: Edge, database_url: str) -> None:
    with RecordingClient(edge.url, edge.service_role_key) as service:
        route_id = service.rpc("cache_route", ROUTE).execute().data
        found = service.rpc("get_cached_route", LOOKUP).execute().data
        back = (
            service.rpc(
                "get_cached_route",
                LOOKUP
                | {
                    "p_origin_lat": -1.96,
                    "p_origin_lng": 30.07,
                    "p_dest_lat": -1.95,
                    "p_dest_lng": 30.06,
                },
            )
            .execute()
            .data
        )
        driving = service.rpc("get_cached_route", LOOKUP | {"p_profile": "driving"}).execute().data
        bad_status, bad = service.error(
            service.rpc("cache_route", ROUTE | {"p_encoded_polyline": "!!!!!!"})
        )

    assert isinstance(route_id, int)
    assert len(found) == 1
    (route,) = found
    assert route["id"] == route_id
    assert route["encoded_polyline"] == POLYLINE
    assert (route["distance_meters"], route["duration_seconds"]) == (1850, 420)
    assert (route["traffic_multiplier"], route["provider"]) == (1.25, "google")
    assert (route["origin_lat"], route["origin_lng"]) == (-1.95, 30.06)
    assert (route["destination_lat"], route["destination_lng"]) == (-1.96, 30.07)
    assert 39 < route["origin_offset_meters"] < 41
    assert route["destination_offset_meters"] == 0
    assert back == []
    assert driving == []
    assert (bad_status, bad["code"]) == (400, "22023")
    assert bad["message"].startswith("cache_route: p_encoded_polyline is not an encoded polyline")
    assert counts(database_url, "motorcycle") == (1, 1)
    assert counts(database_url, "driving") == (0, 1)
    assert query(
        database_url,
        "select profile, extensions.st_asencodedpolyline(path::extensions.geometry),"
        " expires_at - created_at from public.routes",
    ) == [("motorcycle", POLYLINE, timedelta(minutes=30))]


def test_anon_and_users_are_refused_the_route_cache(edge: Edge, database_url: str) -> None:
    calls: dict[str, dict[str, Any]] = {"cache_route": ROUTE, "get_cached_route": LOOKUP}
    refusals: dict[str, list[tuple[int, str, str]]] = {}
    for who, key in (("anon", edge.anon_key), ("user", edge.user_token(USER))):
        with RecordingClient(edge.url, key) as client:
            for fn, params in calls.items():
                status, error = client.error(client.rpc(fn, params))
                refusals.setdefault(who, []).append((status, error["code"], error["message"]))

    assert refusals["anon"] == [
        (401, "42501", f"permission denied for function {fn}") for fn in calls
    ]
    assert refusals["user"] == [
        (403, "42501", f"permission denied for function {fn}") for fn in calls
    ]
    assert query(database_url, "select count(*) from public.routes") == [(0,)]
    assert counts(database_url, "motorcycle") == (0, 0)
