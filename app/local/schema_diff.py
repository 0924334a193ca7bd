"""`python -m app db diff <name>`: carry what changed in functions-sql/ into a new migration.

Supabase's own declarative workflow turns supabase/schemas/ into a migration with `supabase db
diff`; ours does the same for supabase/functions-sql/, so that a project deployed with
`supabase db push` (migrations only) defines exactly what our runner builds. Two builds are
compared from the catalogs: one from the migrations alone, one by the runner (migrations, then
the files). Where they differ, the changed files are carried, whole, into a new migration, with
drops for what a migration once carried and no file declares any longer; then both builds are
made again with the new migration and must agree, or the file is removed.

The builds run in a throwaway cluster of their own: pg_cron can only be created in the one
database the server names for it, so the developer's cluster cannot host scratch copies.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from app.db import definition_tracker
from app.db.carried import Drop, is_generated, migration_text, not_yet_carried
from app.db.catalog_snapshot import compare, take_snapshot
from app.db.migrator import MigrationError, migrate
from app.db.sql_files import MIGRATION_FILE, Migration, SqlFile, SqlSources
from app.local.cluster import Cluster, free_port

SCRATCH = "scratch"
MIGRATIONS_ONLY = "the build from supabase/migrations/ alone"
RUNNER = "the runner's build"

Log = Callable[[str], None]


class SchemaDiffError(RuntimeError):
    """The migrations could not be made to match the runner; nothing was written."""


@dataclass
class Survey:
    """How the two builds of one tree differ."""

    differences: list[str] = field(default_factory=list)
    drops: list[Drop] = field(default_factory=list)

    @property
    def in_step(self) -> bool:
        return not self.differences and not self.drops

    def report(self) -> list[str]:
        return [*self.differences, *(drop.reason for drop in self.drops)]


@dataclass
class DiffResult:
    survey: Survey
    written: Path | None = None
    carried: list[SqlFile] = field(default_factory=list)


def diff(
    name: str,
    sources: SqlSources | None = None,
    *,
    log: Log = print,
    now: datetime | None = None,
) -> DiffResult:
    """Write supabase/migrations/<UTC timestamp>_<name>.sql when the builds differ."""
    sources = sources or SqlSources()
    migrations = sources.read_migrations()
    path = sources.migrations / f"{_version(migrations, now)}_{name}.sql"
    _check_name(path)
    with scratch_database() as (cluster, url):
        survey = survey_tree(url, sources)
        if survey.in_step:
            return DiffResult(survey)
        files = sources.read_functions()
        pending = not_yet_carried(files, migrations)
        # A difference no file's checksum explains (a carried text edited by hand, a
        # definition a later migration altered): carry every file, which sets all straight.
        # Drops alone (a file deleted) need no file carried.
        carried = pending or (files if survey.differences else [])
        path.write_text(migration_text(survey.drops, carried), encoding="utf-8")
        log(f"wrote {path}: {len(carried)} files carried, {len(survey.drops)} drops")
        try:
            _recreate(cluster)
            remaining = survey_tree(url, sources, track=False)
        except BaseException:
            path.unlink()
            raise
        if not remaining.in_step:
            path.unlink()
            raise SchemaDiffError(
                f"with {path.name} the builds still differ, so it was removed:\n  "
                + "\n  ".join(remaining.report())
            )
        return DiffResult(survey, path, carried)


def check(sources: SqlSources | None = None) -> Survey:
    """The differences `diff` would carry; empty when supabase/migrations/ is complete."""
    with scratch_database() as (_, url):
        return survey_tree(url, sources or SqlSources())


def survey_tree(url: str, sources: SqlSources, *, track: bool = True) -> Survey:
    """In an empty database: migrations alone, then the files on top (which is the runner's
    build: it too applies every migration first), each read from the catalogs."""
    quiet: Log = lambda _: None  # noqa: E731 - the builds' progress is noise here
    ignored = {
        "ignored_schemas": [definition_tracker.SCHEMA],
        "ignored_event_triggers": [definition_tracker.EVENT_TRIGGER],
    }
    with psycopg.connect(url, autocommit=True) as conn:
        if track:
            definition_tracker.install(conn)
        try:
            migrate(url, sources, functions=False, log=quiet)
            migrations_only = take_snapshot(conn, **ignored)
            migrate(url, sources, log=quiet)
        except MigrationError as error:
            if not any(f"ERROR {code}" in str(error) for code in _REPLACE_REFUSED):
                raise
            raise MigrationError(f"{error}\n{_REPLACE_HINT}") from error
        runner = take_snapshot(conn, **ignored)
        generated = [m.version for m in sources.read_migrations() if is_generated(m)]
        drops = definition_tracker.stale_definitions(conn, generated) if track else []
    return Survey(compare(migrations_only, runner, MIGRATIONS_ONLY, RUNNER), drops)


# CREATE OR REPLACE refused: a function's (42P13) or a view's (42P16) shape changed.
_REPLACE_REFUSED = ("42P13", "42P16")
_REPLACE_HINT = (
    "If a definition changed in a way CREATE OR REPLACE cannot (an argument's name, the result "
    "type, a view's columns), drop the old one in a migration of its own (`drop function if exists "
    "<old signature>;`), then run `python -m app db diff` again."
)


@contextmanager
def scratch_database() -> Iterator[tuple[Cluster, str]]:
    """A throwaway cluster whose pg_cron serves its one empty database; gone on exit."""
    root = Path(tempfile.mkdtemp(prefix="easymo-diff-"))
    cluster = Cluster(root, free_port(), durable=False, cron_database=SCRATCH)
    try:
        cluster.init()
        cluster.start()
        with psycopg.connect(cluster.socket_conninfo(), autocommit=True) as conn:
            conn.execute(f"create database {SCRATCH}")
        yield cluster, cluster.socket_conninfo(SCRATCH)
    finally:
        cluster.destroy()
        shutil.rmtree(root, ignore_errors=True)


def _recreate(cluster: Cluster) -> None:
    with psycopg.connect(cluster.socket_conninfo(), autocommit=True) as conn:
        conn.execute(f"drop database {SCRATCH} with (force)")
        conn.execute(f"create database {SCRATCH}")


def _version(migrations: Sequence[Migration], now: datetime | None) -> str:
    """Now in UTC, or one second past the newest migration when that is later."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S")
    newest = max((m.version for m in migrations), default="")
    return stamp if stamp > newest else str(int(newest) + 1)


def _check_name(path: Path) -> None:
    if not MIGRATION_FILE.match(path.name):
        raise SchemaDiffError(
            f"{path.name} is not a migration file name: use letters, digits, _ and -"
        )
    if path.exists():
        raise SchemaDiffError(f"{path} exists already")
