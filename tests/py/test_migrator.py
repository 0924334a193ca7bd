"""The migration runner against real, empty databases and migration folders of the test's own."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from app import paths
from app.db.migrator import MigrationError, migrate
from app.db.sql_files import SqlFileError, SqlSources
from tests.support.db import query
from tests.support.server import TestServer


@pytest.fixture
def empty_url(server: TestServer) -> Iterator[str]:
    name = server.empty_database()
    yield server.url(name)
    server.drop(name)


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
    return folders


def write(folder: Path, name: str, sql: str) -> Path:
    path = folder / name
    path.write_text(sql)
    return path


def run(url: str, sources: SqlSources, **options: object):
    return migrate(url, sources, emulation=False, log=lambda _: None, **options)  # type: ignore[arg-type]


def relation_exists(url: str, name: str) -> bool:
    return query(url, "select to_regclass(%s) is not null", (name,))[0][0]


def test_applies_in_version_order_and_records_like_the_supabase_cli(empty_url, sources):
    write(sources.migrations, "20260101000002_add_rides.sql", "alter table riders add note text;")
    write(
        sources.migrations,
        "20260101000001_create_riders.sql",
        "-- riders\ncreate table riders (id int primary key);\ninsert into riders values (1);\n",
    )
    report = run(empty_url, sources)

    assert report.applied == ["20260101000001_create_riders.sql", "20260101000002_add_rides.sql"]
    rows = query(
        empty_url,
        "select version, name, statements from supabase_migrations.schema_migrations"
        " order by version",
    )
    assert rows == [
        (
            "20260101000001",
            "create_riders",
            [
                "-- riders\ncreate table riders (id int primary key)",
                "insert into riders values (1)",
            ],
        ),
        ("20260101000002", "add_rides", ["alter table riders add note text"]),
    ]
    checksums = query(empty_url, "select version from supabase_migrations.migration_checksums")
    assert sorted(checksums) == [("20260101000001",), ("20260101000002",)]


def test_a_second_run_applies_nothing(empty_url, sources):
    write(sources.migrations, "20260101000001_t.sql", "create table t (id int);")
    write(
        sources.functions,
        "10_f.sql",
        "create or replace function f() returns int as 'select 1' language sql;",
    )
    write(sources.migrations.parent, "seed.sql", "insert into t values (1);")
    first = run(empty_url, sources, seed=True)
    second = run(empty_url, sources, seed=True)

    assert (bool(first.applied), first.functions_applied, first.seeded) == (True, True, True)
    assert not second.changed_anything
    assert query(empty_url, "select count(*) from t") == [(1,)]


def test_a_failing_migration_leaves_nothing_and_names_file_and_line(empty_url, sources):
    write(sources.migrations, "20260101000001_good.sql", "create table good (id int);")
    bad = write(
        sources.migrations,
        "20260101000002_bad.sql",
        "create table half (id int);\n\ninsert into half\n  select * from nowhere;\n",
    )
    with pytest.raises(MigrationError) as failure:
        run(empty_url, sources)

    message = str(failure.value)
    assert f'{bad}:4: ERROR 42P01: relation "nowhere" does not exist' in message
    assert "     4 |   select * from nowhere;" in message
    assert "rolled back: nothing from it was applied" in message
    assert relation_exists(empty_url, "good")
    assert not relation_exists(empty_url, "half")
    versions = query(empty_url, "select version from supabase_migrations.schema_migrations")
    assert versions == [("20260101000001",)]

    bad.write_text("create table half (id int);\n")
    assert run(empty_url, sources).applied == ["20260101000002_bad.sql"]


def test_an_error_inside_a_function_body_points_at_its_line(empty_url, sources):
    path = write(
        sources.migrations,
        "20260101000001_fn.sql",
        "create function f() returns int\nlanguage plpgsql as $$\nbegin\n"
        "    retrun 1;\nend;\n$$;\n",
    )
    with pytest.raises(MigrationError, match=rf"{path}:4: ERROR 42601"):
        run(empty_url, sources)


def test_a_shipped_migration_that_changed_is_reported(empty_url, sources):
    path = write(sources.migrations, "20260101000001_t.sql", "create table t (id int);")
    run(empty_url, sources)
    path.write_text("create table t (id bigint);")

    with pytest.raises(MigrationError, match="changed since they were applied") as failure:
        run(empty_url, sources)
    assert str(path) in str(failure.value)


def test_a_migration_applied_by_the_supabase_cli_is_trusted_by_its_statements(empty_url, sources):
    path = write(sources.migrations, "20260101000001_t.sql", "create table t (id int);\n")
    with psycopg.connect(empty_url, autocommit=True) as conn:
        run(empty_url, SqlSources(sources.migrations.parent / "none", sources.functions))
        conn.execute("create table t (id int)")
        conn.execute(
            "insert into supabase_migrations.schema_migrations (version, name, statements)"
            " values ('20260101000001', 't', array['create table t (id int)'])"
        )

    assert run(empty_url, sources).applied == []
    assert query(empty_url, "select count(*) from supabase_migrations.migration_checksums") == [
        (1,)
    ]

    path.write_text("create table t (id int, note text);\n")
    with psycopg.connect(empty_url, autocommit=True) as conn:
        conn.execute("delete from supabase_migrations.migration_checksums")
    with pytest.raises(MigrationError, match="changed since they were applied"):
        run(empty_url, sources)


def test_older_pending_migrations_need_include_all(empty_url, sources):
    write(sources.migrations, "20260101000002_new.sql", "create table newer (id int);")
    run(empty_url, sources)
    write(sources.migrations, "20260101000001_old.sql", "create table older (id int);")

    with pytest.raises(MigrationError, match="older than the newest applied one"):
        run(empty_url, sources)
    assert not relation_exists(empty_url, "older")
    report = run(empty_url, sources, include_all=True)
    assert report.applied == ["20260101000001_old.sql"]
    assert report.warnings == ["applied out of order: 20260101000001_old.sql"]


def test_a_database_ahead_of_the_repo_is_refused(empty_url, sources):
    path = write(sources.migrations, "20260101000001_t.sql", "create table t (id int);")
    run(empty_url, sources)
    path.unlink()
    with pytest.raises(MigrationError, match="has migrations this repo does not: 20260101000001"):
        run(empty_url, sources)


def test_repeatable_definitions_apply_together_and_only_when_changed(empty_url, sources):
    write(
        sources.functions,
        "10_one.sql",
        "create or replace function one() returns int language sql as 'select 1';",
    )
    second = write(
        sources.functions,
        "20_two.sql",
        "create or replace function two() returns int language sql as 'select nope';",
    )
    with pytest.raises(MigrationError, match=r"20_two\.sql:1: ERROR 42703"):
        run(empty_url, sources)
    assert query(empty_url, "select to_regprocedure('one()') is null") == [(True,)]

    second.write_text("create or replace function two() returns int language sql as 'select 2';")
    assert run(empty_url, sources).functions_applied
    assert not run(empty_url, sources).functions_applied
    second.write_text("create or replace function two() returns int language sql as 'select 22';")
    assert run(empty_url, sources).functions_applied
    assert query(empty_url, "select one(), two()") == [(1, 22)]


def test_the_seed_runs_once_and_a_changed_seed_is_not_rerun(empty_url, sources):
    write(sources.migrations, "20260101000001_t.sql", "create table t (id int);")
    seed = write(sources.migrations.parent, "seed.sql", "insert into t values (1);")
    assert run(empty_url, sources, seed=True).seeded
    assert not run(empty_url, sources, seed=True).seeded

    seed.write_text("insert into t values (2);")
    report = run(empty_url, sources, seed=True)
    assert not report.seeded
    assert "changed since it was applied" in report.warnings[0]
    assert query(empty_url, "select id from t") == [(1,)]
    assert query(empty_url, "select path from supabase_migrations.seed_files") == [
        ("supabase/seed.sql",)
    ]


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("2026_short.sql", "not a migration file name"),
        ("20260101000001.sql", "not a migration file name"),
        ("20260101000001_ok.sql.bak", None),
    ],
)
def test_migration_file_names_follow_the_cli_pattern(empty_url, sources, name, error):
    write(sources.migrations, name, "select 1;")
    if error is None:
        assert run(empty_url, sources).applied == []
    else:
        with pytest.raises(SqlFileError, match=error):
            run(empty_url, sources)


def test_two_files_with_one_version_are_refused(empty_url, sources):
    write(sources.migrations, "20260101000001_a.sql", "select 1;")
    write(sources.migrations, "20260101000001_b.sql", "select 1;")
    with pytest.raises(SqlFileError, match="version 20260101000001 is also used"):
        run(empty_url, sources)


def test_transaction_control_in_a_migration_is_refused(empty_url, sources):
    write(sources.migrations, "20260101000001_tx.sql", "begin;\ncreate table t (id int);\ncommit;")
    with pytest.raises(
        SqlFileError, match=r"20260101000001_tx\.sql:1: each file runs in a transaction"
    ):
        run(empty_url, sources)
    assert not relation_exists(empty_url, "t")


def test_concurrent_runners_apply_each_migration_once(empty_url, sources):
    write(
        sources.migrations,
        "20260101000001_slow.sql",
        "create table once (id int);\nselect pg_sleep(0.3);\ninsert into once values (1);",
    )
    outcomes: list[object] = []

    def runner() -> None:
        try:
            outcomes.append(run(empty_url, sources).applied)
        except Exception as error:  # the assertion below reports it
            outcomes.append(error)

    threads = [threading.Thread(target=runner) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(map(str, outcomes)) == ["['20260101000001_slow.sql']", "[]", "[]"]
    assert query(empty_url, "select count(*) from once") == [(1,)]


def test_the_emulation_is_skipped_on_a_hosted_supabase_database(server, empty_url, sources):
    write(sources.emulation, "10_marker.sql", "create table emulated (id int);")
    with psycopg.connect(server.admin_url, autocommit=True) as conn:
        conn.execute("create role supabase_admin nologin")
    try:
        report = migrate(empty_url, sources, log=lambda _: None)
    finally:
        with psycopg.connect(server.admin_url, autocommit=True) as conn:
            conn.execute("drop role supabase_admin")
    assert not report.emulated
    assert not relation_exists(empty_url, "emulated")

    assert migrate(empty_url, sources, log=lambda _: None).emulated
    assert relation_exists(empty_url, "emulated")


def test_the_emulation_is_applied_again_only_when_a_file_changed(empty_url, sources):
    marker = write(sources.emulation, "10_marker.sql", "create table if not exists e (id int);")
    assert migrate(empty_url, sources, log=lambda _: None).emulated
    assert not migrate(empty_url, sources, log=lambda _: None).emulated

    marker.write_text("create table if not exists e (id int);\ncreate table if not exists f ();")
    assert migrate(empty_url, sources, log=lambda _: None).emulated
    assert relation_exists(empty_url, "f")


def test_the_cli_reports_success_and_failure_by_exit_code(server, database_url, empty_url):
    def cli(url: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "app", "db", "migrate", "--database-url", url]
        return subprocess.run(command, capture_output=True, text=True, check=False)

    # The test's database is built from the migrations alone: the runner adds functions-sql/.
    first = cli(database_url)
    current = cli(database_url)
    refused = cli(empty_url)  # pg_cron may only be created in the database it serves
    unreachable = cli("postgresql://postgres:postgres@127.0.0.1:1/postgres")

    functions = len(list(paths.FUNCTIONS_SQL.glob("*.sql")))
    assert (first.returncode, first.stdout) == (0, f"applied functions-sql/ ({functions} files)\n")
    assert (current.returncode, current.stdout) == (0, "database is up to date\n")
    foundation = "supabase/migrations/20260301000000_foundation.sql"
    lines = (paths.REPO / foundation).read_text().splitlines()
    line = next(n for n, text in enumerate(lines, 1) if text.startswith("create extension"))
    assert refused.returncode == 1
    assert (
        f"error: {foundation}:{line}: ERROR P0001: can only create extension in database"
        in refused.stderr
    )
    assert "HINT: Add cron.database_name" in refused.stderr
    assert unreachable.returncode == 1
    assert unreachable.stderr.startswith("error: cannot connect to the database")
