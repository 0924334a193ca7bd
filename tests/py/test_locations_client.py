"""Locations through the supabase Python client against the edge, as the drivers' app, the riders'
app and the matching service call them: a driver reports their position (an older report after
a newer one is not applied), a rider saves home and a favourite and deletes the favourite, the
matching service finds the nearest drivers within 3 km with exact distances; a bad latitude is
a 400 naming it, another user's position a 403, and neither anon nor a signed-in user may search
for people."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support.client import RecordingClient
from tests.support.db import query
from tests.support.edge import Edge

DRIVER = "c0000000-0000-4000-8000-000000000001"
SECOND_DRIVER = "c0000000-0000-4000-8000-000000000002"
RIDER = "c0000000-0000-4000-8000-000000000003"
NOW = datetime.now(UTC)
CENTRE = {"p_lat": -1.9536, "p_lng": 30.0928}


def test_report_save_and_find_through_the_edge(edge: Edge, database_url: str) -> None:
    query(
        database_url,
        "insert into public.users (id, phone_number) values"
        " (%s, '+250788200001'), (%s, '+250788200002'), (%s, '+250788200003')",
        (DRIVER, SECOND_DRIVER, RIDER),
    )
    with RecordingClient(edge.url, edge.user_token(DRIVER)) as driver:
        first = (
            driver.rpc(
                "update_current_location",
                {
                    "p_user_id": DRIVER,
                    "p_lat": -1.9540,
                    "p_lng": 30.0930,
                    "p_heading": 45,
                    "p_speed_mps": 6.5,
                    "p_recorded_at": (NOW - timedelta(seconds=5)).isoformat(),
                },
            )
            .execute()
            .data
        )
        late = (
            driver.rpc(
                "update_current_location",
                {
                    "p_user_id": DRIVER,
                    "p_lat": -1.9000,
                    "p_lng": 30.1000,
                    "p_recorded_at": (NOW - timedelta(seconds=9)).isoformat(),
                },
            )
            .execute()
            .data
        )
        bad_latitude = driver.error(
            driver.rpc("update_current_location", {"p_user_id": DRIVER, "p_lat": 91, "p_lng": 30})
        )
        someone_else = driver.error(
            driver.rpc(
                "update_current_location", {"p_user_id": SECOND_DRIVER, "p_lat": -1.95, "p_lng": 30}
            )
        )
        drivers_search = driver.error(driver.rpc("find_nearby_locations", CENTRE))
    with RecordingClient(edge.url, edge.user_token(RIDER)) as rider:
        home = (
            rider.rpc(
                "save_location",
                {
                    "p_user_id": RIDER,
                    "p_location_type": "home",
                    "p_lat": -1.9441,
                    "p_lng": 30.0619,
                    "p_place_name": "Home",
                    "p_city": "Kigali",
                    "p_country": "RW",
                },
            )
            .execute()
            .data
        )
        favourite = (
            rider.rpc(
                "save_location",
                {
                    "p_user_id": RIDER,
                    "p_location_type": "favorite",
                    "p_lat": -1.9530,
                    "p_lng": 30.0925,
                    "p_place_name": "Convention Centre",
                },
            )
            .execute()
            .data
        )
        rider.rpc("delete_location", {"p_id": favourite}).execute()
    with RecordingClient(edge.url, edge.service_role_key) as service:
        service.rpc(
            "update_current_location", {"p_user_id": SECOND_DRIVER, "p_lat": -1.9600, "p_lng": 30.1}
        ).execute()
        nearest = (
            service.rpc(
                "find_nearby_locations",
                CENTRE | {"p_radius_meters": 3000, "p_location_type": "current", "p_limit": 20},
            )
            .execute()
            .data
        )
        unknown_type = service.error(
            service.rpc("find_nearby_locations", CENTRE | {"p_location_type": "taxi"})
        )
    with RecordingClient(edge.url, edge.anon_key) as anon:
        anons_search = anon.error(anon.rpc("find_nearby_locations", CENTRE))

    assert (first, late) == (True, False)
    assert query(
        database_url,
        "select extensions.st_y(coordinates::extensions.geometry), heading, speed_mps"
        " from public.locations where user_id = %s and location_type = 'current'",
        (DRIVER,),
    ) == [(-1.954, 45.0, 6.5)]
    assert (bad_latitude[0], bad_latitude[1]["code"]) == (400, "22023")
    assert bad_latitude[1]["message"] == (
        "update_current_location: p_lat must be a latitude, -90 to 90 (got 91)"
    )
    assert (someone_else[0], someone_else[1]["code"]) == (403, "42501")
    assert query(
        database_url,
        "select location_type, place_name, country from public.locations where user_id = %s",
        (RIDER,),
    ) == [("home", "Home", "RW")]
    assert isinstance(home, str)
    expected = query(
        database_url,
        "select user_id::text, extensions.st_distance(coordinates, extensions.st_setsrid("
        "extensions.st_makepoint(30.0928, -1.9536), 4326)::extensions.geography, true)"
        " from public.locations where location_type = 'current' order by 2",
    )
    assert [(row["user_id"], row["distance_meters"]) for row in nearest] == expected
    assert [row["user_id"] for row in nearest] == [DRIVER, SECOND_DRIVER]
    assert (nearest[0]["lat"], nearest[0]["lng"]) == (-1.954, 30.093)
    assert (unknown_type[0], unknown_type[1]["code"]) == (400, "22023")
    assert (drivers_search[0], drivers_search[1]["code"]) == (403, "42501")
    assert (anons_search[0], anons_search[1]["code"]) == (401, "42501")
