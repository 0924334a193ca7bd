"""The feature flag rules (supabase/functions-sql/81_feature_flag_rules.sql) against their oracles:
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
    features = []
    names = {}
    for index, case in enumerate(cases):
        name = f"case-{index}"
        names[index] = name
        features.append({**case.feature, "name": name})
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
        return [client.is_enabled(names[i], dict(c.context)) for i, c in enumerate(cases)]
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
