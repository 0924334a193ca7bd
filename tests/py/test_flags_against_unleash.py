"""Our evaluation against Unleash's own Python SDK (UnleashClient, evaluating offline from
bootstrapped features): the same flags, 10,000 user ids per strategy, 100% agreement, so a team
can move flags between the two and users land in the same buckets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from UnleashClient import UnleashClient
from UnleashClient.cache import FileCache

USERS = [f"user-{n}" for n in range(10_000)]
RIDER = {"appName": "rider", "properties": {"city": "Kigali"}}
IN_KIGALI = [{"contextName": "city", "operator": "IN", "values": ["Kigali"]}]
NOT_DRIVER = [{"contextName": "appName", "operator": "NOT_IN", "values": ["driver"]}]

# (key, strategy, percentage, target users, conditions, group id)
FLAGS: list[tuple[str, str, int, list[str], list[dict[str, Any]], str | None]] = [
    ("rollout_25", "percentage", 25, [], [], None),
    ("rollout_73", "percentage", 73, [], [], None),
    ("rollout_1", "percentage", 1, [], [], None),
    ("rollout_grouped", "percentage", 40, [], [], "checkout"),
    ("rollout_kigali", "percentage", 50, [], IN_KIGALI, None),
    ("some_users", "user_list", 0, USERS[::7], [], None),
    ("everyone", "all", 0, [], [], None),
    ("riders_only", "condition", 0, [], NOT_DRIVER, None),
    ("nobody", "none", 0, [], [], None),
]


def unleash_feature(
    key: str,
    strategy: str,
    percentage: int,
    targets: list[str],
    conditions: list[dict[str, Any]],
    *,
    group_id: str | None,
) -> dict[str, Any]:
    """The same flag in Unleash's terms: percentage is flexibleRollout (default stickiness),
    user_list userWithId, all and condition default; none has no strategy to be on by."""
    name, parameters = {
        "percentage": (
            "flexibleRollout",
            {"rollout": str(percentage), "stickiness": "default", "groupId": group_id or key},
        ),
        "user_list": ("userWithId", {"userIds": ",".join(targets)}),
    }.get(strategy, ("default", {}))
    return {
        "name": key,
        "enabled": strategy != "none",
        "strategies": [{"name": name, "parameters": parameters, "constraints": conditions}],
    }


@pytest.fixture
def unleash(tmp_path: Path) -> Iterator[UnleashClient]:
    cache = FileCache("easymo-flags", directory=str(tmp_path))
    features = [unleash_feature(*f[:5], group_id=f[5]) for f in FLAGS]
    cache.bootstrap_from_dict({"version": 1, "features": features})
    client = UnleashClient(
        url="http://127.0.0.1:1",
        app_name="easymo-tests",
        disable_metrics=True,
        disable_registration=True,
        cache=cache,
    )
    client.initialize_client(fetch_toggles=False)
    yield client
    client.destroy()


@pytest.mark.parametrize("flag", FLAGS, ids=[f[0] for f in FLAGS])
def test_ten_thousand_users_land_where_unleash_puts_them(
    database_url: str, unleash: UnleashClient, flag: tuple[Any, ...]
) -> None:
    key, strategy, percentage, targets, conditions, group_id = flag
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "insert into public.feature_flags (key, name, enabled, rollout_strategy,"
            " rollout_percentage, target_users, conditions, group_id)"
            " values (%s, %s, true, %s, %s, %s, %s, %s)",
            (key, key, strategy, percentage, targets, json.dumps(conditions), group_id),
        )
        ours = dict(
            conn.execute(
                "select u, public.is_feature_enabled(%s, u, 'production', %s::jsonb)"
                " from unnest(%s::text[]) as u",
                (key, json.dumps(RIDER), USERS),
            ).fetchall()
        )
    theirs = {user: unleash.is_enabled(key, {"userId": user, **RIDER}) for user in USERS}

    disagreements = [user for user in USERS if ours[user] != theirs[user]]
    assert disagreements == [], f"{len(disagreements)} of 10,000 disagree, e.g. {disagreements[:5]}"
    # Neither side is trivially constant where the strategy splits users.
    if strategy in ("percentage", "user_list"):
        assert 0 < sum(ours.values()) < len(USERS)
