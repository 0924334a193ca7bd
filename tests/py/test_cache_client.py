"""The general cache through the supabase Python client against the edge, as a service calls it:
set_cache and get_cache of a route's answer, a replaced value, tag invalidation, cleanup, a bad
argument as a 400 with 22023, and anon and signed-in users refused every call."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tests.support.client import RecordingClient
from tests.support.db import query
from tests.support.edge import Edge

USER = "6a1c7e52-3d4b-4f8a-9e21-0b5c6d7e8f90"
ROUTE = {"distance_meters": 4200, "duration_seconds": 660, "polyline": "_p~iF~ps|U_ulLnnqC"}
SET = {
    "p_key": "route:kimironko:nyabugogo:driving",
    "p_value": ROUTE,
    "p_ttl_seconds": 900,
    "p_cache_type": "routes",
    "p_tags": ["zone:kigali", "provider:osrm"],
}


def test_set_get_invalidate_and_clean_up_through_the_edge(edge: Edge, database_url: str) -> None:
    with RecordingClient(edge.url, edge.service_role_key) as service:
        expires_at = service.rpc("set_cache", SET).execute().data
        got = service.rpc("get_cache", {"p_key": SET["p_key"]}).execute().data
        missing = service.rpc("get_cache", {"p_key": "route:none", "p_cache_type": "routes"})
        missing_value = missing.execute().data
        replaced = service.rpc("set_cache", {"p_key": SET["p_key"], "p_value": [1, 2, 3]}).execute()
        got_again = service.rpc("get_cache", {"p_key": SET["p_key"]}).execute().data
        service.rpc("set_cache", SET | {"p_key": "route:remera:gisozi:driving"}).execute()
        invalidated = (
            service.rpc("invalidate_cache_by_tag", {"p_tag": "provider:osrm"}).execute().data
        )
        after = service.rpc("get_cache", {"p_key": "route:remera:gisozi:driving"}).execute().data
        cleaned = service.rpc("cleanup_expired_cache", {}).execute().data
        bad_status, bad = service.error(service.rpc("set_cache", SET | {"p_ttl_seconds": 0}))

    (now,) = query(database_url, "select now()")[0]
    stored_at = datetime.fromisoformat(expires_at)
    assert now + timedelta(seconds=880) < stored_at < now + timedelta(seconds=920)
    assert got == ROUTE
    assert missing_value is None
    assert replaced.data is not None
    assert got_again == [1, 2, 3]
    assert invalidated == 1, "the replaced entry had no tags left"
    assert after is None
    assert cleaned == 0
    assert (bad_status, bad["code"]) == (400, "22023")
    assert bad["message"] == "set_cache: p_ttl_seconds must be 1 to 2592000 (got 0)"
    assert query(database_url, "select key, value, cache_type, tags from public.cache_entries") == [
        (SET["p_key"], [1, 2, 3], "general", [])
    ]


def test_anon_and_users_are_refused_every_cache_call(edge: Edge, database_url: str) -> None:
    calls: dict[str, dict[str, Any]] = {
        "set_cache": SET,
        "get_cache": {"p_key": SET["p_key"]},
        "invalidate_cache_by_tag": {"p_tag": "zone:kigali"},
        "cleanup_expired_cache": {},
    }
    with RecordingClient(edge.url, edge.service_role_key) as service:
        service.rpc("set_cache", SET).execute()
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
    assert query(database_url, "select key, value from public.cache_entries") == [
        (SET["p_key"], ROUTE)
    ]
