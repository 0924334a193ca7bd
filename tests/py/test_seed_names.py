"""docs/seed-names.md: every name the seed documents gave a table, function or view is where the
page says, or says why it was not built; and every function, table and view of public and
monitoring is either one of those or listed among what was built beyond the seed."""

from __future__ import annotations

import re
from dataclasses import dataclass

from app import paths
from tests.support.db import query

SEED_NAMES = paths.REPO / "docs" / "seed-names.md"
BEYOND_HEADING = "## Built beyond the seed"
KINDS = {"table": ("r", "p"), "view": ("v", "m")}


@dataclass(frozen=True)
class SeedName:
    name: str
    kind: str
    here: str
    defined_in: tuple[str, ...]


def seed_rows() -> list[SeedName]:
    rows = []
    for line in SEED_NAMES.read_text(encoding="utf-8").split(BEYOND_HEADING)[0].splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if len(cells) != 4 or not cells[0].startswith("`"):
            continue
        rows.append(
            SeedName(cells[0], cells[1], cells[2], tuple(re.findall(r"`([^`]+)`", cells[3])))
        )
    return rows


def placed_object(row: SeedName) -> str | None:
    """The schema-qualified object the row says the name lives as, or None when not built."""
    if row.here.startswith("not built, because "):
        return None
    found = re.match(r"`([a-z_]+\.[a-z_A-Z]+)`", row.here)
    assert found, f"{row.name}: `here` must name an object or say 'not built, because ...'"
    return found.group(1)


def test_the_page_lists_every_seed_kind():
    rows = seed_rows()
    assert len(rows) >= 50
    assert {row.kind for row in rows} == {"table", "function", "view"}
    assert len({row.name for row in rows}) == len(rows), "one line per seed name"


def test_each_seed_name_lives_where_the_page_says(database_url: str):
    problems = [problem for row in seed_rows() if (problem := misplaced(row, database_url))]
    assert problems == []


def misplaced(row: SeedName, database_url: str) -> str | None:
    try:
        check_row(row, database_url)
    except AssertionError as error:
        return f"{row.name}: {error}"
    return None


def check_row(row: SeedName, database_url: str) -> None:
    placed = placed_object(row)
    if placed is None:
        assert len(row.here) > len("not built, because ") + 10, "say why"
        assert not row.defined_in
        return
    schema, name = placed.split(".")
    if "YYYY_MM" in name:  # a monthly child: this month's exists
        pattern = "^" + name.replace("YYYY_MM", r"\d{4}_\d{2}") + "$"
        found = query(
            database_url,
            "select count(*) from pg_class where relnamespace = %s::regnamespace and relname ~ %s",
            (schema, pattern),
        )
    elif row.kind == "function":
        found = query(
            database_url,
            "select count(*) from pg_proc where pronamespace = %s::regnamespace and proname = %s",
            (schema, name),
        )
    else:
        found = query(
            database_url,
            "select count(*) from pg_class where relnamespace = %s::regnamespace"
            " and relname = %s and relkind = any(%s)",
            (schema, name, list(KINDS[row.kind])),
        )
    assert found[0][0] >= 1, f"{row.name}: no {row.kind} {placed}"
    assert row.defined_in, f"{row.name}: say which file defines {placed}"
    for file in row.defined_in:
        text = (paths.REPO / file).read_text(encoding="utf-8").lower()
        # A monthly child is named by the partition manager, which makes it in `partitions`.
        needle = "partitions." if "YYYY_MM" in name else f"{schema}.{name}"
        assert needle in text, f"{file} does not define {placed}"


def test_every_api_and_monitoring_object_is_a_seed_name_or_listed_beyond_it(database_url: str):
    page = SEED_NAMES.read_text(encoding="utf-8")
    beyond = page.split(BEYOND_HEADING)[1]
    listed = {
        name if "." in name else f"public.{name}"
        for name in re.findall(r"`([a-z_]+(?:\.[a-z_]+)?)`", beyond)
    }
    placed = {placed_object(row) for row in seed_rows()} - {None}
    objects = {
        f"{schema}.{name}"
        for schema, name in query(
            database_url,
            """
            select n.nspname, c.relname from pg_class as c
            join pg_namespace as n on c.relnamespace = n.oid
            where n.nspname in ('public', 'monitoring') and c.relkind in ('r', 'p', 'v', 'm')
            union
            select n.nspname, p.proname from pg_proc as p
            join pg_namespace as n on p.pronamespace = n.oid
            where n.nspname in ('public', 'monitoring') and not exists (
                select from pg_depend as d
                where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e'
            )
            """,
        )
    }
    assert sorted(objects - placed - listed) == [], "add them to docs/seed-names.md"
    assert sorted(listed - objects) == [], "docs/seed-names.md lists what does not exist"
