"""Both ways to deploy define the same database: `supabase db push` (supabase/migrations/ alone,
the path every test's database is built by) and our runner (migrations, then functions-sql/)."""

from __future__ import annotations

import subprocess
import sys

import psycopg

from app import paths
from app.db.catalog_snapshot import compare, take_snapshot
from app.db.migrator import migrate
from app.local.schema_diff import MIGRATIONS_ONLY, RUNNER
from tests.support.db import query


def snapshot(url: str):
    with psycopg.connect(url, autocommit=True) as conn:
        return take_snapshot(conn)


def test_the_runner_builds_what_the_migrations_alone_define(database_url):
    # The session's template is built from the migrations alone; the runner takes it from there
    # exactly as it builds a fresh database: every migration first, then every file.
    migrations_only = snapshot(database_url)
    report = migrate(database_url, log=lambda _: None)
    runner = snapshot(database_url)

    assert report.functions_applied
    # What `supabase db push` used to leave out: functions, policies, views, cron jobs.
    for kind, key in (
        ("function", "public.get_wallet_balance(uuid,text)"),
        ("policy", "transactions_own_select on public.transactions"),
        ("relation", "monitoring.cron_job_health"),
        ("cron job", "purge-cron-history as postgres"),
    ):
        assert (kind, key) in migrations_only.objects
    differences = compare(migrations_only, runner, MIGRATIONS_ONLY, RUNNER)
    assert not differences, (
        "supabase/migrations/ lags supabase/functions-sql/; run `python -m app db diff <name>` "
        "and commit the migration it writes:\n  " + "\n  ".join(differences)
    )


def test_the_snapshot_notices_each_kind_of_difference(database_url):
    before = snapshot(database_url)
    for statement in (
        "create or replace function private.currency_minor_units(p_currency text)"
        " returns smallint language plpgsql immutable parallel safe set search_path = ''"
        " as 'begin return 3; end'",
        "drop policy transactions_own_select on public.transactions",
        "grant execute on function public.get_wallet_balance(uuid, text) to anon",
        "select cron.unschedule('purge-cron-history')",
        "create or replace view monitoring.cron_job_health as"
        " select * from monitoring.cron_job_health limit 0",
        "alter table public.feature_flags disable trigger feature_flags_updated_at",
    ):
        query(database_url, statement)
    after = snapshot(database_url)

    assert compare(before, after, "before", "after") == [
        "cron job purge-cron-history as postgres: missing in after",
        "function private.currency_minor_units(text): body differs",
        "function public.get_wallet_balance(uuid,text): acl differs",
        "policy transactions_own_select on public.transactions: missing in after",
        "relation monitoring.cron_job_health: view definition differs",
        "trigger feature_flags_updated_at on public.feature_flags: enabled differs",
    ]


def test_db_diff_check_finds_the_repo_in_step():
    # Fresh builds in a cluster of its own, which also catches a definition a migration carried
    # and no file declares any longer (the runner's build keeps it, so the test above cannot).
    command = [sys.executable, "-m", "app", "db", "diff", "--check"]
    result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=paths.REPO)

    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        "supabase/migrations/ defines what supabase/functions-sql/ does\n",
        "",
    )
