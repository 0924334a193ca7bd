"""Feature flags through the supabase Python client against the edge: service_role manages a
flag, an app asks for its own user with the user's token and for no user with the anon key, a
user asking for someone else is 403 (42501), and the answers are the SQL's."""

from __future__ import annotations

from tests.support.client import RecordingClient
from tests.support.db import query
from tests.support.edge import Edge

OWNER = "aaaaaaaa-0000-4000-8000-000000000001"
OTHER = "aaaaaaaa-0000-4000-8000-000000000002"


def test_manage_and_evaluate_flags_through_the_edge(edge: Edge, database_url: str) -> None:
    beta = {
        "p_key": "beta_checkout",
        "p_name": "Beta checkout",
        "p_enabled": True,
        "p_rollout_strategy": "user_list",
        "p_target_users": [OWNER],
        "p_conditions": [{"contextName": "appName", "operator": "IN", "values": ["rider"]}],
    }
    rider = {"appName": "rider"}
    with RecordingClient(edge.url, edge.service_role_key) as service:
        created = service.rpc("upsert_feature_flag", beta).execute().data
        for_owner = (
            service.rpc(
                "is_feature_enabled",
                {"p_flag_key": "beta_checkout", "p_user_id": OWNER, "p_context": rider},
            )
            .execute()
            .data
        )
        bad_status, bad = service.error(
            service.rpc("upsert_feature_flag", beta | {"p_rollout_percentage": 101})
        )
        gone_status, gone = service.error(
            service.rpc("delete_feature_flag", {"p_key": "nope", "p_environment": "all"})
        )
    with RecordingClient(edge.url, edge.user_token(OWNER)) as owner:
        own = (
            owner.rpc("evaluate_feature_flags", {"p_environment": "production", "p_context": rider})
            .execute()
            .data
        )
    with RecordingClient(edge.url, edge.user_token(OTHER)) as other:
        theirs = (
            other.rpc("is_feature_enabled", {"p_flag_key": "beta_checkout", "p_context": rider})
            .execute()
            .data
        )
        spy_status, spy = other.error(
            other.rpc("is_feature_enabled", {"p_flag_key": "beta_checkout", "p_user_id": OWNER})
        )
    with RecordingClient(edge.url, edge.anon_key) as anon:
        anonymous = (
            anon.rpc("is_feature_enabled", {"p_flag_key": "beta_checkout", "p_context": rider})
            .execute()
            .data
        )

    assert (created["key"], created["environment"], created["target_users"]) == (
        "beta_checkout",
        "all",
        [OWNER],
    )
    assert for_owner is True
    assert (bad_status, bad["code"]) == (400, "22023")
    assert bad["message"] == "upsert_feature_flag: p_rollout_percentage must be 0 to 100 (got 101)"
    assert (gone_status, gone["code"]) == (404, "PT404")
    assert own == {"beta_checkout": True}
    assert theirs is False
    assert (spy_status, spy["code"]) == (403, "42501")
    assert anonymous is False
    assert query(
        database_url,
        "select subject, enabled from public.feature_flag_evaluations order by subject",
    ) == [(OWNER, True), (OTHER, False)]
