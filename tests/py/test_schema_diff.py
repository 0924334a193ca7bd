"""`python -m app db diff` over migration and functions-sql folders of the test's own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app import paths
from app.db.carried import Drop, migration_text
from app.db.migrator import migrate
from app.db.sql_files import SqlFile, SqlSources
from app.local.schema_diff import SchemaDiffError, check, diff
from tests.support.db import query
from tests.support.server import TestServer

FUNCTIONS = """\
create or replace function public.f() returns integer language sql as 'select 1';
create or replace function public.g() returns integer language sql as 'select 1';
drop policy if exists t_read on public.t;
create policy t_read on public.t for select using (true);
select private.schedule_cron('tick', '* * * * *', 'select public.f()');
"""


@pytest.fixture
def sources(tmp_path: Path) -> SqlSources:
    folders = SqlSources(
        migrations=tmp_path / "migrations",
        functions=tmp_path / "functions-sql",
        emulation=tmp_path / "emulation",
        seed=tmp_path / "seed.sql",
    )
    for folder in (folders.migrations, folders.functions, folders.emulation):
        folder.mkdir()
    (folders.migrations / "20260101000001_t.sql").write_text(
        "create schema private;\ncreate table public.t (id integer primary key);\n"
        "alter table public.t enable row level security;\n"
    )
    # The project's own cron helpers: a retired job is unscheduled through them.
    cron = (paths.FUNCTIONS_SQL / "00_cron.sql").read_text()
    (folders.functions / "00_cron.sql").write_text(cron)
    (folders.functions / "10_t.sql").write_text(FUNCTIONS)
    return folders


@pytest.fixture
def empty_url(server: TestServer) -> Iterator[str]:
    name = server.empty_database()
    yield server.url(name)
    server.drop(name)


def quiet(_: str) -> None:
    pass


def test_diff_carries_changed_files_drops_what_is_gone_and_writes_nothing_when_in_step(
    sources, empty_url
):
    first = diff("first", sources, log=quiet)
    assert first.written is not None
    assert [file.path.name for file in first.carried] == ["00_cron.sql", "10_t.sql"]
    assert "-- functions-sql: 10_t.sql\n" in first.written.read_text()

    unchanged = diff("unchanged", sources, log=quiet)
    assert unchanged.written is None
    assert unchanged.survey.in_step
    assert len(list(sources.migrations.glob("*.sql"))) == 2

    # f changes; g, the policy and the cron job are no longer declared.
    (sources.functions / "10_t.sql").write_text(
        "create or replace function public.f() returns integer language sql as 'select 2';\n"
    )
    lagging = check(sources)
    assert lagging.report() == [
        "function public.f(): body differs",
        "cron job tick: no longer declared",
        "policy t_read on public.t: no longer declared",
        "function public.g(): no longer declared",
    ]
    assert len(list(sources.migrations.glob("*.sql"))) == 2

    changed = diff("changed", sources, log=quiet)
    assert changed.written is not None
    assert [file.path.name for file in changed.carried] == ["10_t.sql"]
    text = changed.written.read_text()
    assert "-- functions-sql: 00_cron.sql" not in text
    assert "function public.f(): body differs" in changed.survey.differences
    assert [drop.statement for drop in changed.survey.drops] == [
        "select private.unschedule_cron('tick');",
        "drop policy if exists t_read on public.t;",
        "drop function if exists public.g();",
    ]
    for drop in changed.survey.drops:
        assert drop.statement in text

    # The migrations alone now build what the files declare (no pg_cron in this database).
    migrate(empty_url, sources, emulation=False, functions=False, log=quiet)
    assert query(empty_url, "select public.f()") == [(2,)]
    assert query(empty_url, "select to_regprocedure('public.g()')") == [(None,)]
    assert query(empty_url, "select count(*) from pg_policies where tablename = 't'") == [(0,)]


def test_diff_refuses_when_the_migrations_still_differ_and_writes_nothing(sources):
    # Not idempotent: applied once (migrations alone) it defines h() as 1, twice (runner) as 2.
    (sources.functions / "20_h.sql").write_text(
        "do $$\nbegin\n    if to_regprocedure('public.h()') is null then\n"
        "        create function public.h() returns integer language sql as 'select 1';\n"
        "    else\n"
        "        create or replace function public.h() returns integer language sql"
        " as 'select 2';\n"
        "    end if;\nend;\n$$;\n"
    )
    with pytest.raises(SchemaDiffError, match=r"function public\.h\(\): body differs"):
        diff("broken", sources, log=quiet)
    assert [path.name for path in sources.migrations.glob("*.sql")] == ["20260101000001_t.sql"]


def test_a_generated_migration_keeps_within_sqlfluffs_line_length(tmp_path):
    file = tmp_path / "10_t.sql"
    file.write_text("select 1;\n")
    drops = [
        Drop(
            "drop function if exists private.touch_whatsapp_session(text, text, uuid,"
            " timestamp with time zone, boolean, timestamp with time zone);",
            "function private.touch_whatsapp_session: no longer declared",
        ),
        Drop(
            "drop policy if exists whatsapp_message_queue_own_select_for_authenticated_users"
            " on public.whatsapp_message_queue;",
            "policy: no longer declared",
        ),
    ]
    text = migration_text(drops, [SqlFile.read(file)])

    assert max(len(line) for line in text.splitlines()) <= 100
    assert "drop function if exists private.touch_whatsapp_session(\n    text, text" in text
    assert "\non public.whatsapp_message_queue;\n" in text
