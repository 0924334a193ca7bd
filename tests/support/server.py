"""The Postgres server tests run against: a throwaway cluster of our own, or TEST_DATABASE_URL.

One template database is migrated once per session; each test gets a clone of it
(CREATE DATABASE ... TEMPLATE), which costs tens of milliseconds instead of a full migration.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from app.db.migrator import migrate
from app.local.cluster import Cluster, free_port, set_password

TEMPLATE = "easymo_template"
PGTAP_HELPERS = Path(__file__).with_name("pgtap_helpers.sql")
PGTAP_FIXTURES = Path(__file__).parents[1] / "sql" / "fixtures"
AUTHENTICATOR_PASSWORD = "authenticator-test-password"
JWT_SECRET = "test-jwt-secret-that-is-long-enough-for-hs256-0123456789"


@dataclass
class TestServer:
    __test__ = False  # a fixture's type, not a test class

    admin_url: str  # a superuser on the server's `postgres` database
    cluster: Cluster | None = None

    def url(self, database: str, user: str | None = None, password: str | None = None) -> str:
        params = conninfo_to_dict(self.admin_url)
        params["dbname"] = database
        if user:
            params["user"], params["password"] = user, password
        return make_conninfo(**params)

    def build_template(self) -> None:
        """Migrate the template once: emulation and migrations, then pgTAP.

        The migrations alone, as `supabase db push` deploys a hosted project: every test runs on
        what the migrations folder defines by itself. tests/py/test_deploy_paths.py proves the
        runner's build (migrations, then functions-sql/) defines the same."""
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"drop database if exists {TEMPLATE} with (force)")
            conn.execute(f"create database {TEMPLATE}")
        with psycopg.connect(self.url(TEMPLATE), autocommit=True) as conn:
            # Before the migrations narrow default privileges, as `supabase test db` finds it
            # on a hosted project: pgTAP callable by every role a test switches to.
            conn.execute("create schema extensions")
            conn.execute("create extension pgtap with schema extensions")
        migrate(self.url(TEMPLATE), functions=False, log=lambda _: None)
        with psycopg.connect(self.url(TEMPLATE), autocommit=True) as conn:
            conn.execute(PGTAP_HELPERS.read_text())  # type: ignore[arg-type]  # our own file
            for fixture in sorted(PGTAP_FIXTURES.glob("*.sql")):
                conn.execute(
                    "insert into tests.fixtures (name, body) values (%s, %s)",
                    (fixture.stem, fixture.read_text()),
                )
        set_password(self.url(TEMPLATE), "authenticator", AUTHENTICATOR_PASSWORD)
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            # pg_cron's scheduler holds a session on the database it serves, and a template
            # must have none: refuse connections, then end the ones there are.
            conn.execute(f"alter database {TEMPLATE} with is_template true allow_connections false")
            conn.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s",
                (TEMPLATE,),
            )
        if self.cluster is not None:
            # Point the scheduler elsewhere so it stops retrying the template.
            self.cluster = Cluster(
                self.cluster.root,
                self.cluster.port,
                durable=self.cluster.durable,
                cron_database="postgres",
            )
            self.cluster.restart()
            # The scheduler now serves `postgres`; with pg_cron there, a test can schedule a job
            # into its own clone (cron.schedule_in_database) and watch it run.
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute("create extension if not exists pg_cron")

    def clone(self, prefix: str = "test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("create database {} template {}").format(
                    sql.Identifier(name), sql.Identifier(TEMPLATE)
                )
            )
        return name

    def empty_database(self, prefix: str = "empty") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        return name

    def drop(self, name: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )

    def close(self) -> None:
        if self.cluster is not None:
            self.cluster.destroy()


def start_test_server(*, durable: bool = False) -> TestServer:
    """durable: fsync and synchronous_commit on, for benchmarks whose figures must count them."""
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        with psycopg.connect(external, autocommit=True) as conn:
            row = conn.execute("select current_setting('cron.database_name', true)").fetchone()
        if row is None or row[0] != TEMPLATE:
            raise RuntimeError(
                f"TEST_DATABASE_URL: start that server with cron.database_name={TEMPLATE} and "
                "pg_cron preloaded; pg_cron can only be created in the database it serves"
            )
        server = TestServer(external)
        server.build_template()
        return server
    return start_cluster_server(durable=durable)


def start_cluster_server(*, durable: bool = False) -> TestServer:
    """A throwaway cluster of our own, whatever TEST_DATABASE_URL says: for a test that stops or
    restarts the server under load (the session's server is shared by every test)."""
    root = Path(tempfile.mkdtemp(prefix="easymo-test-"))
    # Until the template is built, pg_cron serves it: the extension can only be created there.
    cluster = Cluster(root, free_port(), durable=durable, cron_database=TEMPLATE)
    cluster.init()
    cluster.start()
    set_password(cluster.socket_conninfo(), "postgres", "postgres")
    server = TestServer(cluster.url("postgres"), cluster)
    try:
        server.build_template()
    except BaseException:
        server.close()
        raise
    return server
