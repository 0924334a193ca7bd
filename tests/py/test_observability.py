"""Metrics, audit and the partition manager under real connections: writers racing maintenance,
maintenance racing itself, pg_cron running a job, and the supabase client through the edge."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from app.db.migrator import migrate
from app.db.sql_files import SqlSources
from tests.support.client import RecordingClient
from tests.support.db import query
from tests.support.edge import Edge
from tests.support.races import run_together
from tests.support.server import TestServer


def children(url: str, table: str) -> list[str]:
    return [
        name
        for (name,) in query(
            url,
            "select partition_name from monitoring.partition_children"
            " where table_name = %s order by partition_name",
            (table,),
        )
    ]


# Writers and maintenance ----------------------------------------------------------------------


def test_eight_writers_lose_nothing_while_maintenance_creates_and_moves_partitions(database_url):
    # Retention off for this race: the maintainer runs as of months ahead, and dropping the
    # months the writers write into is retention working, not loss.
    query(
        database_url,
        "update private.partitioned_tables set retention_months = null"
        " where table_name = 'system_metrics'",
    )
    stop = threading.Event()
    written: list[list[int]] = [[] for _ in range(8)]
    strays: list[int] = []
    maintenance_runs: list[int] = []

    def writer(index: int) -> Callable[[], None]:
        def work() -> None:
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute("set role service_role")
                while not stop.is_set():
                    (metric_id,) = conn.execute(
                        "select public.record_metric('writer-' || %s, 'counter', 'ticks', 1)",
                        (index,),
                    ).fetchone()  # type: ignore[misc]
                    written[index].append(metric_id)

        return work

    def stray_writer() -> None:
        # Rows for months the maintainer is about to create: they land in the default
        # partition and must be moved, not lost, when their month is made.
        with psycopg.connect(database_url, autocommit=True) as conn:
            month = 4
            while not stop.is_set() and month < 40:
                (stray_id,) = conn.execute(
                    "insert into public.system_metrics"
                    " (service_name, metric_type, metric_name, value, created_at)"
                    " values ('stray', 'gauge', 'future', 1,"
                    " now() + make_interval(months => %s)) returning id",
                    (month,),
                ).fetchone()  # type: ignore[misc]
                strays.append(stray_id)
                month += 1
                time.sleep(0.02)

    def maintainer() -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            for months_ahead in range(1, 25):
                conn.execute(
                    "select count(*) from private.maintain_partitions("
                    " now() + make_interval(months => %s))",
                    (months_ahead,),
                )
                maintenance_runs.append(months_ahead)
        stop.set()

    errors = run_together([writer(i) for i in range(8)] + [stray_writer, maintainer])
    stop.set()

    assert errors == []
    assert len(maintenance_runs) == 24
    ids = sorted(i for ids in written for i in ids)
    assert len(ids) > 100, "the writers wrote while maintenance ran"
    (stored,) = query(
        database_url,
        "select array_agg(id order by id) from public.system_metrics"
        " where service_name like 'writer-%%'",
    )[0]
    assert stored == ids
    (stored_strays, in_default) = query(
        database_url,
        "select array_agg(id order by id), count(*) filter"
        " (where tableoid = 'partitions.system_metrics_default'::regclass)"
        " from public.system_metrics where service_name = 'stray'",
    )[0]
    assert stored_strays == sorted(strays)
    # Every stray month up to the last run's horizon (24 + 3 months ahead) has its child now.
    (expected_in_default,) = query(
        database_url,
        "select count(*) from public.system_metrics where service_name = 'stray'"
        " and created_at >= date_trunc('month', now() + interval '28 months', 'UTC')",
    )[0]
    assert in_default == expected_in_default


def test_maintenance_racing_itself_creates_each_month_once(server: TestServer, database_url):
    as_of = "2031-06-15 00:00:00+00"  # every month from here is missing
    results: list[list[tuple[Any, ...]]] = []

    def maintainer() -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            results.append(
                conn.execute(
                    "select table_name, partition_name, action"
                    " from private.maintain_partitions(%s::timestamptz)",
                    (as_of,),
                ).fetchall()
            )

    errors = run_together([maintainer] * 4)

    assert errors == []
    done = [rows for rows in results if rows]
    assert len(done) == 1, "one run did the work; the others waited and found nothing to do"
    created = sorted(name for table, name, action in done[0] if action == "created")
    assert created == sorted(
        f"{table}_p{month}"
        for table in ("event_store", "system_audit_logs", "system_metrics", "transactions")
        for month in ("2031_06", "2031_07", "2031_08", "2031_09")
    )
    (logged,) = query(
        database_url,
        "select count(*) from private.partition_maintenance_log"
        " where partition_name like '%%2031%%'",
    )[0]
    assert logged == len(created)


# pg_cron ---------------------------------------------------------------------------------------


@pytest.fixture
def cron_job(server: TestServer, database: str) -> Iterator[Callable[[str, str], int]]:
    """Schedules jobs through the scheduler's own database into this test's clone."""
    scheduled: list[int] = []

    def schedule(name: str, command: str) -> int:
        (job_id,) = query(
            server.admin_url,
            "select cron.schedule_in_database(%s, '* * * * *', %s, %s)",
            (name, command, database),
        )[0]
        scheduled.append(job_id)
        return job_id

    yield schedule
    for job_id in scheduled:
        query(server.admin_url, "select cron.unschedule(%s)", (job_id,))


def test_pg_cron_runs_the_maintenance_job_in_the_cluster(server, database, database_url, cron_job):
    # A month the maintainer must make again: the job's run is visible by its effect.
    (month, detached_at) = query(
        database_url,
        "select to_char(now() + interval '3 months', 'YYYY_MM'), clock_timestamp()",
    )[0]
    child = f"partitions.system_metrics_p{month}"
    query(database_url, f"alter table public.system_metrics detach partition {child}")
    query(database_url, f"drop table {child}")

    job_id = cron_job(f"maintain-partitions-{database}", "select private.maintain_partitions()")

    # pg_cron 1.4 schedules by the minute: the job starts at the next minute boundary.
    deadline = time.monotonic() + 90
    runs: list[tuple[Any, ...]] = []
    while time.monotonic() < deadline:
        runs = query(
            server.admin_url,
            "select status, return_message from cron.job_run_details"
            " where jobid = %s and status in ('succeeded', 'failed')",
            (job_id,),
        )
        if runs:
            break
        time.sleep(0.5)
    assert runs, "pg_cron ran the job within 90 seconds"
    assert runs[0][0] == "succeeded", runs[0][1]
    assert f"system_metrics_p{month}" in children(database_url, "public.system_metrics")
    assert query(
        database_url,
        "select action from private.partition_maintenance_log"
        " where partition_name = %s and created_at > %s",
        (f"system_metrics_p{month}", detached_at),
    ) == [("created",)]


def test_functions_sql_applies_on_a_database_without_pg_cron(database_url):
    query(database_url, "drop extension pg_cron cascade")
    # A changed checksum makes the runner re-apply every file of functions-sql/.
    query(database_url, "delete from supabase_migrations.repeatable_files where kind = 'functions'")

    report = migrate(database_url, SqlSources(), emulation=False, log=lambda _: None)

    assert report.functions_applied
    assert query(database_url, "select count(*) from monitoring.cron_job_health") == [(0,)]
    assert query(database_url, "select private.schedule_cron('x', '* * * * *', 'select 1')") == [
        (None,)
    ]
    assert query(
        database_url,
        "select count(*) from monitoring.partition_health where current_month_ready",
    ) == [(4,)]


# Through the edge, as services call it ---------------------------------------------------------


def test_services_record_metrics_and_audit_events_through_the_client(edge: Edge, database_url):
    with RecordingClient(edge.url, edge.service_role_key) as service:
        metric_id = (
            service.rpc(
                "record_metric",
                {
                    "p_service_name": "wallet-service",
                    "p_metric_type": "latency",
                    "p_metric_name": "transfer",
                    "p_value": 12.5,
                    "p_unit": "ms",
                    "p_tags": {"route": "/transfer"},
                },
            )
            .execute()
            .data
        )
        batch = [
            {
                "service_name": "wallet-service",
                "metric_type": "counter",
                "metric_name": "ok",
                "value": 1,
            },
            {
                "service_name": "wallet-service",
                "metric_type": "gauge",
                "metric_name": "queue",
                "value": 7.25,
            },
        ]
        recorded = service.rpc("record_metrics", {"p_metrics": batch}).execute().data
        status, error = service.error(
            service.rpc(
                "record_metric",
                {
                    "p_service_name": "wallet-service",
                    "p_metric_type": "velocity",
                    "p_metric_name": "x",
                    "p_value": 1,
                },
            )
        )
        audit_id = (
            service.rpc(
                "log_audit_event",
                {
                    "p_actor_type": "user",
                    "p_actor_identifier": "5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab",
                    "p_action": "transaction_created",
                    "p_resource_type": "transaction",
                    "p_resource_id": "TXN-1",
                    "p_metadata": {"amount": 100, "currency": "RWF"},
                },
            )
            .execute()
            .data
        )
        request_id = service.last.headers["x-request-id"]

    assert isinstance(metric_id, int)
    assert recorded == 2
    assert status == 400
    assert error["code"] == "22023"
    assert "p_metric_type" in error["message"]
    assert query(
        database_url,
        "select service_name, metric_type, metric_name, value, unit, tags"
        " from public.system_metrics order by id",
    ) == [
        ("wallet-service", "latency", "transfer", 12.5, "ms", {"route": "/transfer"}),
        ("wallet-service", "counter", "ok", 1.0, None, {}),
        ("wallet-service", "gauge", "queue", 7.25, None, {}),
    ]
    # Without p_correlation_id the event carries the id of the request that logged it.
    assert query(
        database_url,
        "select id, action, resource_id, metadata, correlation_id from public.system_audit_logs",
    ) == [
        (audit_id, "transaction_created", "TXN-1", {"amount": 100, "currency": "RWF"}, request_id)
    ]


def test_only_service_role_may_record(edge: Edge, database_url):
    params = {
        "p_service_name": "app",
        "p_metric_type": "counter",
        "p_metric_name": "opened",
        "p_value": 1,
    }
    with RecordingClient(edge.url, edge.anon_key) as anon:
        anon_status, anon_error = anon.error(anon.rpc("record_metric", params))
    with RecordingClient(edge.url, edge.user_token("5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab")) as user:
        user_status, user_error = user.error(user.rpc("record_metric", params))
    assert (anon_status, anon_error["code"]) == (401, "42501")
    assert (user_status, user_error["code"]) == (403, "42501")
    assert query(database_url, "select count(*) from public.system_metrics") == [(0,)]


# Analysts ---------------------------------------------------------------------------------------


@pytest.fixture
def analyst_login(server: TestServer, database: str) -> Iterator[str]:
    """A login made as README says: a member of analyst with monitoring first on its path."""
    name = f"analyst_{uuid.uuid4().hex[:8]}"
    query(server.admin_url, f"create role {name} login password 'analyst-pw' in role analyst")
    query(server.admin_url, f"alter role {name} set search_path to monitoring, public")
    yield server.url(database, name, "analyst-pw")
    query(server.admin_url, f"drop role {name}")


def test_an_analyst_login_reads_the_views_unqualified_and_no_table(database_url, analyst_login):
    query(database_url, "select public.record_metric('api', 'latency', 'rpc', 4, 'ms', null)")

    assert query(
        analyst_login, "select service_name, sample_count from recent_metrics_by_service"
    ) == [("api", 1)]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        query(analyst_login, "select count(*) from system_metrics")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        query(analyst_login, "select record_metric('api', 'latency', 'rpc', 4, 'ms', null)")
