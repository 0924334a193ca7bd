"""The feature flag rules (supabase/functions-sql/*_feature_flag_rules.sql) against their oracles:
MurmurHash3 as mmh3 computes it, Unleash's client specification (its constraint files), and the
official Python SDK evaluating the same constraints offline."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mmh3
import psycopg
import pytest
from psycopg.types.json import Jsonb
from UnleashClient import UnleashClient
from UnleashClient.cache import FileCache

from tests.support.unleash_spec import specification_dir

# The specification's files on constraints and operators.
CONSTRAINT_FILES = (
    "09-strategy-constraints.json",
    "11-strategy-constraints-edge-cases.json",
    "13-constraint-operators.json",
    "14-constraint-semver-operators.json",
)


@dataclass(frozen=True)
class Case:
    file: str
    description: str
    toggle: str
    feature: dict[str, Any]
    constraints: list[Any]
    context: dict[str, Any]
    expected: bool


def one_strategy_constraints(feature: dict[str, Any] | None) -> list[Any] | str:
    """The constraints of a feature the flags' one-strategy model can hold, or why it cannot."""
    if feature is None:
        return "no such feature"
    if not feature.get("enabled"):
        return "feature disabled"
    strategies = feature.get("strategies") or []
    if len(strategies) != 1:
        return f"{len(strategies)} strategies"
    strategy = strategies[0]
    name = strategy["name"]
    rollout = str((strategy.get("parameters") or {}).get("rollout", ""))
    if name == "flexibleRollout" and rollout == "100":
        return strategy.get("constraints") or []
    if name != "default":
        return f"strategy {name}"
    return strategy.get("constraints") or []


def read_cases() -> tuple[list[Case], dict[str, dict[str, int]]]:
    folder = specification_dir()
    cases: list[Case] = []
    skipped: dict[str, dict[str, int]] = {}
    for file in CONSTRAINT_FILES:
        spec = json.loads((folder / file).read_text())
        features = {f["name"]: f for f in spec["state"]["features"]}
        for test in spec["tests"]:
            feature = features.get(test["toggleName"])
            constraints = one_strategy_constraints(feature)
            if isinstance(constraints, str):
                reasons = skipped.setdefault(file, {})
                reasons[constraints] = reasons.get(constraints, 0) + 1
                continue
            assert feature is not None
            cases.append(
                Case(
                    file,
                    test["description"],
                    test["toggleName"],
                    feature,
                    constraints,
                    test["context"],
                    test["expectedResult"],
                )
            )
    return cases, skipped


CASES, NOT_EXPRESSIBLE = read_cases()


def holds(conn: psycopg.Connection[Any], constraints: list[Any], context: dict[str, Any]) -> bool:
    row = conn.execute(
        "select private.unleash_constraints_hold(%s, %s)", (Jsonb(constraints), Jsonb(context))
    ).fetchone()
    assert row is not None
    return bool(row[0])


def holds_each(
    conn: psycopg.Connection[Any], pairs: list[tuple[list[Any], dict[str, Any]]]
) -> list[bool]:
    """unleash_constraints_hold on each (constraints, context), in one round trip."""
    rows = conn.execute(
        """select private.unleash_constraints_hold(p.item -> 0, p.item -> 1)
             from jsonb_array_elements(%s) with ordinality as p (item, n)
            order by p.n""",
        (Jsonb([[constraints, context] for constraints, context in pairs]),),
    ).fetchall()
    return [bool(row[0]) for row in rows]


@pytest.fixture(scope="module")
def rules_url(server: Any) -> Iterator[str]:
    """One clone for the module: these functions read and write no table."""
    name = server.clone("rules")
    yield server.url(name)
    server.drop(name)


@pytest.fixture(scope="module")
def conn(rules_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(rules_url, autocommit=True) as connection:
        yield connection


def random_key(rnd: random.Random, length: int) -> str:
    # ASCII, two-, three- and four-byte UTF-8 characters, so byte lengths cover 0..3 mod 4.
    alphabet = "abcXYZ019 :-_/é߀Ω中文😀🚀"
    return "".join(rnd.choice(alphabet) for _ in range(length))


def test_murmur3_agrees_with_mmh3_on_10000_random_keys(conn: psycopg.Connection[Any]) -> None:
    rnd = random.Random(16)  # noqa: S311  # reproducible keys, not secrets
    rows = []
    for _ in range(10_000):
        key = random_key(rnd, rnd.randrange(0, 60))
        seed = rnd.choice([0, 0, 1, 42, 2**32 - 1, rnd.randrange(2**32)])
        rows.append((key, seed))
    assert {len(k.encode()) % 4 for k, _ in rows} == {0, 1, 2, 3}
    assert any(len(k.encode()) != len(k) for k, _ in rows)
    got = conn.execute(
        """select private.murmur3_32(k.key, k.seed)
             from unnest(%s::text[], %s::bigint[]) with ordinality as k (key, seed, n)
            order by k.n""",
        ([k for k, _ in rows], [s for _, s in rows]),
    ).fetchall()
    expected = [mmh3.hash(key, seed, signed=False) for key, seed in rows]
    mismatches = [
        (key, seed, g[0], e)
        for (key, seed), g, e in zip(rows, got, expected, strict=True)
        if g[0] != e
    ]
    assert mismatches == []


def test_normalized_hash_is_unleash_bucketing(conn: psycopg.Connection[Any]) -> None:
    rnd = random.Random(7)  # noqa: S311  # reproducible keys, not secrets
    for _ in range(200):
        group, user = random_key(rnd, rnd.randrange(0, 20)), random_key(rnd, rnd.randrange(0, 20))
        modulus = rnd.choice([100, 10_000, 1, 7])
        row = conn.execute(
            "select private.unleash_normalized_hash(%s, %s, %s)", (group, user, modulus)
        ).fetchone()
        assert row is not None
        assert row[0] == mmh3.hash(f"{group}:{user}", 0, signed=False) % modulus + 1


def test_the_specification_cases_hold(conn: psycopg.Connection[Any]) -> None:
    ran = {file: sum(1 for c in CASES if c.file == file) for file in CONSTRAINT_FILES}
    print(f"\nUnleash specification cases run: {ran}; not expressible: {NOT_EXPRESSIBLE}")
    # Every file contributes, and the model expresses most of each.
    assert all(ran[file] > 0 for file in CONSTRAINT_FILES)
    wrong = [
        (c.file, c.description)
        for c in CASES
        if holds(conn, c.constraints, c.context) != c.expected
    ]
    assert wrong == []


def sdk_evaluations(cases: list[Case], tmp: Path) -> list[bool]:
    """Each case's feature evaluated by UnleashClient, bootstrapped offline."""
    return sdk_is_enabled([(c.feature, c.context) for c in cases], tmp)


def sdk_is_enabled(pairs: list[tuple[dict[str, Any], dict[str, Any]]], tmp: Path) -> list[bool]:
    """UnleashClient.is_enabled on each (feature, context), the features bootstrapped offline."""
    features = [{**feature, "name": f"case-{i}"} for i, (feature, _) in enumerate(pairs)]
    cache = FileCache("unleash-rules", directory=str(tmp))
    cache.bootstrap_from_dict({"version": 1, "features": features})
    client = UnleashClient(
        url="http://127.0.0.1:1",
        app_name="t",
        disable_metrics=True,
        disable_registration=True,
        cache=cache,
    )
    client.initialize_client(fetch_toggles=False)
    try:
        return [client.is_enabled(f"case-{i}", dict(ctx)) for i, (_, ctx) in enumerate(pairs)]
    finally:
        client.destroy()


def test_the_official_sdk_agrees_on_every_case(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    sdk = sdk_evaluations(CASES, tmp_path)
    ours = [holds(conn, c.constraints, c.context) for c in CASES]
    disagreements = [
        (c.file, c.description, o, s) for c, o, s in zip(CASES, ours, sdk, strict=True) if o != s
    ]
    assert disagreements == []
    assert len(ours) == len(CASES)


# Beyond the specification: the edge cases it leaves to the engine, each operator with and without
# inversion, the field present, missing or unreadable. The Python SDK turns a null property into
# the text "None", so null is left out here (the specification's own null case is above).
NUMBERS = [
    "12",
    "12.0",
    " 12",
    "12 ",
    "+12",
    "1.2e1",
    "1.2E1",
    ".5",
    "5.",
    "inf",
    "-inf",
    "Infinity",
    "NaN",
    "0x10",
    "",
    "1e400",
    "-1e400",
    "1_000",
    "12abc",
    "0012",
    "-0",
    "1e-400",
]
MOMENTS = [
    "2022-01-29T13:00:00.000Z",
    "2022-01-29T13:00:00Z",
    "2022-01-29T13:00:00.123456789Z",
    "2022-01-29 13:00:01Z",
    "2022-01-29t13:00:01z",
    "2022-01-29T15:00:01+02:00",
    "2022-01-29T15:00:01+0200",
    "2022-01-29T13:00:01",
    "2022-01-29",
    "2022-02-30T00:00:00Z",
    "2022-01-29T24:00:00Z",
    "2022-01-29T13:00:60Z",
    "garbage",
    "",
    "2022-01-29T13:00:00.5+00:00",
    "2022-01-29T13:00:00-00:00",
    "1600-01-01T00:00:00Z",
]
VERSIONS = [
    "1.2.3",
    "1.2.3-alpha",
    "1.2.3-alpha.1",
    "1.2.3-alpha.beta",
    "1.2.3-1",
    "1.2.3-01",
    "1.2.3+build",
    "1.2.3-rc.1+b",
    "v1.2.3",
    "01.2.3",
    "1.2",
    "1.2.3.4",
    "",
    "1.2.3-",
    "1.2.3-alpha..1",
    "1.2.3-Alpha",
    "1.2.3-alpha-1",
    "18446744073709551616.0.0",
    "1.2.3 ",
    "1.2.4-0",
    "1.2.3-0.a",
    "1.2.3-a.0",
]
TEXTS = [
    "Hello World",
    "hello world",
    "",
    "İstanbul",
    "ISTANBUL",
    "ΟΔΟΣ",
    "οδος",
    "straße",
    "STRASSE",
    "ﬀ",
    'x"y',
    "a\\b",
]
TEXT_VALUES = [
    ["hello"],
    ["World"],
    ["istanbul"],
    ["i̇stanbul"],
    ["οδος"],
    ["ΟΔΟΣ"],
    ["strasse"],
    ["straße"],
    [""],
    ['x"y'],
    ["a\\b"],
    [],
]


def edge_pairs() -> list[tuple[list[Any], dict[str, Any]]]:
    pairs: list[tuple[list[Any], dict[str, Any]]] = []

    def add(constraint: dict[str, Any], contexts: list[dict[str, Any]]) -> None:
        for inverted in (False, True):
            for context in [*contexts, {}]:
                pairs.append(([{**constraint, "inverted": inverted}], context))

    for operator in ("NUM_EQ", "NUM_GT", "NUM_GTE", "NUM_LT", "NUM_LTE"):
        for value in ("12", "0", "1e3", "-5.5", "1e400"):
            add(
                {"contextName": "p", "operator": operator, "value": value},
                [{"properties": {"p": n}} for n in NUMBERS],
            )
    for operator in ("DATE_AFTER", "DATE_BEFORE"):
        value = "2022-01-29T13:00:00.000Z"
        add(
            {"contextName": "currentTime", "operator": operator, "value": value},
            [{"currentTime": m} for m in MOMENTS],
        )
        add(
            {"contextName": "signup", "operator": operator, "value": value},
            [{"properties": {"signup": m}} for m in MOMENTS],
        )
    for operator in ("SEMVER_EQ", "SEMVER_GT", "SEMVER_GTE", "SEMVER_LT", "SEMVER_LTE"):
        for value in ("1.2.3", "1.2.3-alpha.1", "1.2.3-rc"):
            add(
                {"contextName": "p", "operator": operator, "value": value},
                [{"properties": {"p": v}} for v in VERSIONS],
            )
    for operator in ("STR_CONTAINS", "STR_STARTS_WITH", "STR_ENDS_WITH", "IN", "NOT_IN"):
        for values in TEXT_VALUES:
            for case_insensitive in (False, True):
                add(
                    {
                        "contextName": "p",
                        "operator": operator,
                        "values": values,
                        "caseInsensitive": case_insensitive,
                    },
                    [{"properties": {"p": t}} for t in TEXTS],
                )
    for name in ("userId", "sessionId", "remoteAddress", "custom"):
        add(
            {"contextName": name, "operator": "IN", "values": ["1"]},
            [{name: "1"}, {"properties": {name: "1"}}, {name: "2", "properties": {name: "1"}}],
        )
    return pairs


def test_the_official_sdk_agrees_beyond_the_specification(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    pairs = edge_pairs()
    features = [
        {"name": "edge", "enabled": True, "strategies": [{"name": "default", "constraints": c}]}
        for c, _ in pairs
    ]
    sdk = sdk_is_enabled(
        [(feature, context) for feature, (_, context) in zip(features, pairs, strict=True)],
        tmp_path,
    )
    ours = holds_each(conn, pairs)
    disagreements = [
        (constraints, context, o, s)
        for (constraints, context), o, s in zip(pairs, ours, sdk, strict=True)
        if o != s
    ]
    assert disagreements == []
    # Both answers occur: the comparison is not between two constant functions.
    assert 0.2 < sum(ours) / len(ours) < 0.8
    print(f"\n{len(pairs)} edge cases, ours and UnleashClient agree on each")


def test_a_gradual_rollout_buckets_users_as_the_sdk_does(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """flexibleRollout on userId at 37%: on exactly when unleash_normalized_hash <= 37, for
    10,000 user ids, multi-byte ones included."""
    rnd = random.Random(37)  # noqa: S311  # reproducible ids, not secrets
    users = [random_key(rnd, rnd.randrange(1, 24)) for _ in range(10_000)]
    feature = {
        "name": "rollout",
        "enabled": True,
        "strategies": [
            {
                "name": "flexibleRollout",
                "parameters": {"rollout": "37", "stickiness": "userId", "groupId": "new_ui"},
                "constraints": [],
            }
        ],
    }
    sdk = sdk_is_enabled([(feature, {"userId": user}) for user in users], tmp_path)
    rows = conn.execute(
        """select private.unleash_normalized_hash('new_ui', u.id) <= 37
             from unnest(%s::text[]) with ordinality as u (id, n)
            order by u.n""",
        (users,),
    ).fetchall()
    ours = [bool(row[0]) for row in rows]
    assert [u for u, o, s in zip(users, ours, sdk, strict=True) if o != s] == []
    assert 0.3 < sum(ours) / len(ours) < 0.44
