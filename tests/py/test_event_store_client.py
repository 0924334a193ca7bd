"""The event store's RPCs through the supabase Python client against the edge, as a service calls
them: the seed's append_event to trip-123 and get_aggregate_events back, a retried event id
answered as the first time, an expected version that does not match a 409 APIError (PT409) whose
details carry the current version, a batch with append_events, a snapshot and load_aggregate,
the global order with read_all_events, a subscription read and acknowledged; and anon and
signed-in users refused every one of them."""

from __future__ import annotations

import json
from typing import Any

from tests.support.client import RecordingClient
from tests.support.db import query
from tests.support.edge import Edge

USER = "6a1c7e52-3d4b-4f8a-9e21-0b5c6d7e8f90"
REQUESTED = {
    "p_aggregate_id": "trip-123",
    "p_aggregate_type": "trip",
    "p_event_type": "TripRequested",
    "p_payload": {"rider_phone": "+250788000001", "pickup": "Kimironko", "dropoff": "Nyabugogo"},
}
TRIP_123 = {"p_aggregate_type": "trip", "p_aggregate_id": "trip-123"}
EVENT_ID = "0b9e6f1a-3c2d-4e5f-8a7b-9c0d1e2f3a4b"


def stored(database_url: str) -> list[tuple[Any, ...]]:
    return query(
        database_url,
        "select aggregate_id, version, event_type, global_position, actor"
        " from public.event_store order by global_position",
    )


def test_append_and_read_back_a_trip_through_the_edge(edge: Edge, database_url: str) -> None:
    accepted = {
        "p_aggregate_id": "trip-123",
        "p_aggregate_type": "trip",
        "p_event_type": "TripAccepted",
        "p_payload": {"driver_phone": "+250788000002"},
        "p_expected_version": 1,
        "p_event_id": EVENT_ID,
        "p_correlation_id": "whatsapp-wamid-1",
        "p_metadata": {"channel": "whatsapp"},
    }
    with RecordingClient(edge.url, edge.service_role_key) as service:
        requested = service.rpc("append_event", REQUESTED).execute().data
        first = service.rpc("append_event", accepted).execute().data
        # A client retrying after a timeout: the same event id gets the first answer.
        retried = service.rpc("append_event", accepted).execute().data
        stale_status, stale = service.error(
            service.rpc("append_event", accepted | {"p_event_id": None})
        )
        reused_status, reused = service.error(
            service.rpc("append_event", accepted | {"p_payload": {"driver_phone": "other"}})
        )
        events = service.rpc("get_aggregate_events", TRIP_123).execute().data
        from_two = (
            service.rpc("get_aggregate_events", TRIP_123 | {"p_from_version": 2}).execute().data
        )
        batch = (
            service.rpc(
                "append_events",
                TRIP_123
                | {
                    "p_expected_version": 2,
                    "p_events": [
                        {"event_type": "TripStarted", "payload": {"odometer_km": 10}},
                        {"event_type": "TripCompleted", "payload": {"fare": 2500}},
                    ],
                },
            )
            .execute()
            .data
        )
        snapshot = (
            service.rpc(
                "save_snapshot", TRIP_123 | {"p_version": 3, "p_state": {"status": "started"}}
            )
            .execute()
            .data
        )
        loaded = service.rpc("load_aggregate", TRIP_123).execute().data
        unknown = (
            service.rpc("load_aggregate", TRIP_123 | {"p_aggregate_id": "trip-404"}).execute().data
        )

    assert requested["aggregate_type"] == "trip"
    assert requested["aggregate_id"] == "trip-123"
    assert requested["version"] == 1
    assert isinstance(requested["global_position"], int)
    assert first["event_id"] == EVENT_ID
    assert first["version"] == 2
    assert first["global_position"] > requested["global_position"]
    assert retried == first
    assert (stale_status, stale["code"]) == (409, "PT409")
    assert stale["message"] == "append_event: trip trip-123 is at version 2, not 1"
    assert json.loads(stale["details"]) == {"current_version": 2, "expected_version": 1}
    assert (reused_status, reused["code"]) == (409, "PT409")

    assert [(e["version"], e["event_type"]) for e in events] == [
        (1, "TripRequested"),
        (2, "TripAccepted"),
    ]
    assert events[0]["payload"] == REQUESTED["p_payload"]
    assert events[0]["event_id"] == requested["event_id"]
    assert events[0]["metadata"] == {}
    assert events[1]["correlation_id"] == "whatsapp-wamid-1"
    assert events[1]["metadata"] == {"channel": "whatsapp"}
    assert {e["actor"] for e in events} == {"service:service_role"}
    assert from_two == events[1:]

    assert (batch["first_version"], batch["last_version"]) == (3, 4)
    assert [e["version"] for e in batch["events"]] == [3, 4]
    assert batch["events"][0]["global_position"] < batch["events"][1]["global_position"]
    assert snapshot["saved"] is True
    assert loaded["version"] == 4
    assert (loaded["snapshot"]["version"], loaded["snapshot"]["state"]) == (
        3,
        {"status": "started"},
    )
    assert [(e["version"], e["event_type"]) for e in loaded["events"]] == [(4, "TripCompleted")]
    assert loaded["events"][0]["payload"] == {"fare": 2500}
    assert unknown == {
        "aggregate_type": "trip",
        "aggregate_id": "trip-404",
        "version": 0,
        "snapshot": None,
        "events": [],
    }
    # The retry, the stale version and the reused id wrote nothing.
    assert [(a, v, t) for a, v, t, _, _ in stored(database_url)] == [
        ("trip-123", 1, "TripRequested"),
        ("trip-123", 2, "TripAccepted"),
        ("trip-123", 3, "TripStarted"),
        ("trip-123", 4, "TripCompleted"),
    ]


def test_read_everything_and_project_with_a_subscription_through_the_edge(
    edge: Edge, database_url: str
) -> None:
    with RecordingClient(edge.url, edge.service_role_key) as service:
        appended = [
            service.rpc(
                "append_event",
                REQUESTED | {"p_aggregate_id": f"trip-{n}", "p_aggregate_type": kind},
            )
            .execute()
            .data
            for n, kind in enumerate(("trip", "order", "trip"))
        ]
        everything = service.rpc("read_all_events", {}).execute().data
        after_first = (
            service.rpc(
                "read_all_events",
                {"p_after_position": appended[0]["global_position"], "p_limit": 1},
            )
            .execute()
            .data
        )
        trips = service.rpc("read_all_events", {"p_aggregate_types": ["trip"]}).execute().data
        subscription = {"p_name": "trip-projector"}
        unread = service.rpc("read_subscription", subscription | {"p_limit": 2}).execute().data
        again = service.rpc("read_subscription", subscription).execute().data
        acked = (
            service.rpc(
                "ack_subscription",
                subscription | {"p_position": unread[-1]["global_position"]},
            )
            .execute()
            .data
        )
        stale_ack = (
            service.rpc(
                "ack_subscription",
                subscription | {"p_position": unread[0]["global_position"]},
            )
            .execute()
            .data
        )
        rest = service.rpc("read_subscription", subscription).execute().data
        missing_status, missing = service.error(
            service.rpc("ack_subscription", {"p_name": "nobody", "p_position": 0})
        )

    positions = [a["global_position"] for a in appended]
    assert [e["global_position"] for e in everything] == positions
    assert [e["event_id"] for e in everything] == [a["event_id"] for a in appended]
    assert [e["global_position"] for e in after_first] == positions[1:2]
    assert [e["aggregate_id"] for e in trips] == ["trip-0", "trip-2"]
    assert [e["global_position"] for e in unread] == positions[:2]
    assert again == everything, "read again from the acknowledged position until acked"
    assert acked == positions[1]
    assert stale_ack == positions[1], "an older ack changes nothing"
    assert [e["global_position"] for e in rest] == positions[2:]
    assert (missing_status, missing["code"]) == (404, "PT404")
    assert query(database_url, "select name, position from public.event_subscriptions") == [
        ("trip-projector", positions[1])
    ]


def test_anon_and_users_are_refused_every_event_store_call(edge: Edge, database_url: str) -> None:
    calls: dict[str, dict[str, Any]] = {
        "append_event": REQUESTED,
        "append_events": TRIP_123
        | {"p_events": [{"event_type": "TripRequested", "payload": {"pickup": "Remera"}}]},
        "get_aggregate_events": TRIP_123,
        "save_snapshot": TRIP_123 | {"p_version": 1, "p_state": {}},
        "load_aggregate": TRIP_123,
        "read_all_events": {},
        "read_subscription": {"p_name": "spy"},
        "ack_subscription": {"p_name": "spy", "p_position": 0},
    }
    with RecordingClient(edge.url, edge.service_role_key) as service:
        service.rpc("append_event", REQUESTED).execute()
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
    assert [(a, v) for a, v, _, _, _ in stored(database_url)] == [("trip-123", 1)]
    assert query(database_url, "select count(*) from public.event_subscriptions") == [(0,)]
    assert query(database_url, "select count(*) from public.event_snapshots") == [(0,)]
