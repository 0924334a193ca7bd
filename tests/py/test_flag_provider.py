"""The OpenFeature provider against a real edge and database: a service sets it, asks for flags
with OpenFeature's client, and gets the SQL's answers; an unknown flag is FLAG_NOT_FOUND, a
non-boolean TYPE_MISMATCH, a refusal or an unreachable edge GENERAL, each with the default."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from app.flags.provider import EasymoFlagProvider
from tests.support.db import query
from tests.support.edge import Edge

OWNER = "aaaaaaaa-0000-4000-8000-000000000001"


@pytest.fixture
def flags(database_url: str) -> None:
    query(
        database_url,
        """
        insert into public.feature_flags (key, name, enabled, rollout_strategy,
            rollout_percentage, target_users, conditions)
        values
        ('new_ui', 'New UI', true, 'percentage', 25, '{}', '[]'),
        ('kigali_drivers', 'Kigali drivers', true, 'condition', 0, '{}',
         '[{"contextName": "city", "operator": "IN", "values": ["Kigali"]},
           {"contextName": "appName", "operator": "IN", "values": ["driver"]}]'),
        ('beta', 'Beta', true, 'user_list', 0, %s, '[]')
        """,
        ([OWNER],),
    )


@pytest.fixture
def client(edge: Edge, flags: None) -> Iterator[api.OpenFeatureClient]:
    api.set_provider(EasymoFlagProvider(edge.url, edge.service_role_key))
    yield api.get_client()
    api.shutdown()


def test_a_service_gets_the_databases_answers_through_openfeature(
    client: api.OpenFeatureClient, database_url: str
) -> None:
    users = [f"user-{n}" for n in range(1, 11)]
    on = [u for u in users if client.get_boolean_value("new_ui", False, EvaluationContext(u))]
    expected = [
        u
        for (u,) in query(
            database_url,
            "select u from unnest(%s::text[]) as u"
            " where private.unleash_normalized_hash('new_ui', u) <= 25 order by u",
            (users,),
        )
    ]
    split = client.get_boolean_details("new_ui", False, EvaluationContext("user-2"))
    driver = EvaluationContext("user-1", {"appName": "driver", "city": "Kigali"})
    rider = EvaluationContext("user-1", {"appName": "rider", "city": "Kigali"})

    assert sorted(on) == expected
    assert on  # 25% of ten users: the buckets say user-2 and user-4
    assert (split.value, split.reason) == (True, Reason.SPLIT)
    assert client.get_boolean_value("kigali_drivers", False, driver) is True
    assert client.get_boolean_value("kigali_drivers", True, rider) is False
    assert client.get_boolean_value("beta", False, EvaluationContext(OWNER)) is True


def test_errors_are_openfeatures_and_give_the_default(
    client: api.OpenFeatureClient, edge: Edge
) -> None:
    unknown = client.get_boolean_details("nope", True, EvaluationContext("user-1"))
    typed = client.get_string_details("new_ui", "blue", EvaluationContext("user-1"))
    bad = client.get_boolean_details("new_ui", True, EvaluationContext("u" * 201))
    as_stranger = EasymoFlagProvider(
        edge.url, edge.user_token("bbbbbbbb-0000-4000-8000-000000000002")
    )
    spying = as_stranger.resolve_boolean_details("beta", False, EvaluationContext(OWNER))
    as_stranger.shutdown()
    offline = EasymoFlagProvider("http://127.0.0.1:1", "key", timeout_seconds=0.5)
    unreachable = offline.resolve_boolean_details("new_ui", True, EvaluationContext("user-1"))
    offline.shutdown()

    assert (unknown.value, unknown.error_code) == (True, ErrorCode.FLAG_NOT_FOUND)
    assert (typed.value, typed.error_code) == ("blue", ErrorCode.TYPE_MISMATCH)
    assert (bad.value, bad.error_code) == (True, ErrorCode.GENERAL)
    assert "22023" in (bad.error_message or "")
    assert (spying.value, spying.error_code) == (False, ErrorCode.GENERAL)
    assert "42501" in (spying.error_message or "")
    assert (unreachable.value, unreachable.error_code) == (True, ErrorCode.GENERAL)
