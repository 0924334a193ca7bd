"""Bring a database up to the repo: emulation, migrations, repeatable definitions, seed.

Migrations are recorded in supabase_migrations.schema_migrations exactly as the Supabase CLI
records them (version, name, statements), so `supabase db push` and this runner agree on what is
applied and either can take over. Two tables of our own sit beside it: the checksum of every
migration we applied, so a shipped file that later changes is caught, and the checksums of the
repeatable files (emulation, functions-sql), so an unchanged tree costs nothing to re-run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import psycopg

from app.db.sql_files import Migration, SqlFile, SqlSources
from app.db.statements import Statement

# One runner at a time per database; a second waits rather than applying the same file twice.
MIGRATION_LOCK_KEY = 7_143_228_610_114_201

HISTORY_DDL = (
    "create schema if not exists supabase_migrations",
    "create table if not exists supabase_migrations.schema_migrations"
    " (version text not null primary key)",
    "alter table supabase_migrations.schema_migrations add column if not exists statements text[]",
    "alter table supabase_migrations.schema_migrations add column if not exists name text",
    "create table if not exists supabase_migrations.seed_files"
    " (path text not null primary key, hash text not null)",
    "create table if not exists supabase_migrations.migration_checksums"
    " (version text primary key, sha256 text not null,"
    " applied_at timestamptz not null default now())",
    "create table if not exists supabase_migrations.repeatable_files"
    " (kind text not null, file text not null, sha256 text not null,"
    " applied_at timestamptz not null default now(), primary key (kind, file))",
)

Log = Callable[[str], None]


class MigrationError(RuntimeError):
    """Nothing of the failing file was applied; the message names the file, line and cause."""


@dataclass
class MigrateReport:
    emulated: bool = False
    applied: list[str] = field(default_factory=list)
    functions_applied: bool = False
    seeded: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def changed_anything(self) -> bool:
        return bool(self.applied or self.functions_applied or self.seeded)


def migrate(
    conninfo: str,
    sources: SqlSources | None = None,
    *,
    emulation: bool = True,
    seed: bool = False,
    include_all: bool = False,
    functions: bool = True,
    log: Log = print,
) -> MigrateReport:
    """Apply what is missing. Raises MigrationError, having applied nothing of the bad file.

    functions=False stops after the migrations: the database `supabase db push` would build,
    which the test suite runs on to prove the migrations folder is complete by itself."""
    sources = sources or SqlSources()
    migrations = sources.read_migrations()
    report = MigrateReport()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("select pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        for statement in HISTORY_DDL:
            conn.execute(statement)
        if emulation and not is_hosted_supabase(conn):
            emulated = _apply_repeatable(conn, "emulation", sources.read_emulation(), force=False)
            report.emulated = emulated > 0
        pending = _pending(conn, migrations, include_all=include_all, report=report)
        for migration in pending:
            _apply_migration(conn, migration)
            report.applied.append(migration.path.name)
            log(f"applied {migration.display_path}")
        # A migration may drop what a definition depends on: after one, apply them all again.
        applied = functions and _apply_repeatable(
            conn, "functions", sources.read_functions(), force=bool(pending)
        )
        report.functions_applied = applied > 0
        if applied:
            log(f"applied {sources.functions.name}/ ({applied} files)")
        if seed:
            report.seeded = _apply_seed(conn, sources.read_seed(), report, log)
        if report.changed_anything:
            conn.execute("notify pgrst, 'reload schema'")  # PostgREST's channel; ours too
    for warning in report.warnings:
        log(f"warning: {warning}")
    return report


def is_hosted_supabase(conn: psycopg.Connection) -> bool:
    """A real Supabase database has its own admin role; there the emulation must not run."""
    row = conn.execute("select exists (select from pg_roles where rolname = 'supabase_admin')")
    return bool(row.fetchone()[0])  # type: ignore[index]


def _pending(
    conn: psycopg.Connection,
    migrations: Sequence[Migration],
    *,
    include_all: bool,
    report: MigrateReport,
) -> list[Migration]:
    rows = conn.execute(
        "select m.version, m.statements, c.sha256"
        " from supabase_migrations.schema_migrations m"
        " left join supabase_migrations.migration_checksums c using (version)"
    ).fetchall()
    recorded = {version: (statements, sha256) for version, statements, sha256 in rows}
    on_disk = {migration.version: migration for migration in migrations}

    missing = sorted(set(recorded) - set(on_disk))
    if missing:
        raise MigrationError(
            "the database has migrations this repo does not: "
            + ", ".join(missing)
            + ". Check out the branch that has them, or rebuild a local database with "
            "`make reset`."
        )
    changed = [
        migration
        for migration in migrations
        if migration.version in recorded and _changed(conn, migration, *recorded[migration.version])
    ]
    if changed:
        raise MigrationError(
            "shipped migrations changed since they were applied (migrations are append-only):\n"
            + "\n".join(f"  {m.display_path}" for m in changed)
            + "\nRestore them and put the change in a new migration; a local database can be "
            "rebuilt with `make reset`."
        )
    pending = [m for m in migrations if m.version not in recorded]
    newest = max(recorded, default="")
    early = [m for m in pending if m.version < newest]
    if early and not include_all:
        raise MigrationError(
            f"found migrations older than the newest applied one ({newest}): "
            + ", ".join(m.path.name for m in early)
            + ". Rename them to a later timestamp, or pass --include-all to apply them anyway."
        )
    if early:
        report.warnings.append("applied out of order: " + ", ".join(m.path.name for m in early))
    return pending


def _changed(
    conn: psycopg.Connection, migration: Migration, statements: list[str] | None, sha256: str | None
) -> bool:
    if sha256 is not None:
        return sha256 != migration.sha256
    # Applied by the Supabase CLI, which keeps no checksum: its recorded statements are the
    # evidence. When they match, remember the checksum so later runs compare cheaply.
    if statements is not None and _meaningful(statements) != _meaningful(
        migration.cli_statements()
    ):
        return True
    _record_checksum(conn, migration)
    return False


def _meaningful(statements: Sequence[str]) -> list[str]:
    return [" ".join(s.split()) for s in statements if not _comment_only(s)]


def _comment_only(text: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in text.splitlines())


def _apply_migration(conn: psycopg.Connection, migration: Migration) -> None:
    conn.execute("reset all")  # a migration's SET must not leak into the next one
    with conn.transaction():
        _execute_file(conn, migration)
        conn.execute(
            "insert into supabase_migrations.schema_migrations (version, name, statements)"
            " values (%s, %s, %s)",
            (migration.version, migration.name, migration.cli_statements()),
        )
        _record_checksum(conn, migration)


def _record_checksum(conn: psycopg.Connection, migration: Migration) -> None:
    conn.execute(
        "insert into supabase_migrations.migration_checksums (version, sha256) values (%s, %s)"
        " on conflict (version) do update set sha256 = excluded.sha256",
        (migration.version, migration.sha256),
    )


def _apply_repeatable(
    conn: psycopg.Connection, kind: str, files: Sequence[SqlFile], *, force: bool
) -> int:
    """Idempotent files, applied together in name order and in one transaction whenever one of
    them changed (or `force`). Returns how many were applied: 0 when nothing changed."""
    wanted = {file.path.name: file.sha256 for file in files}
    recorded = dict(
        conn.execute(
            "select file, sha256 from supabase_migrations.repeatable_files where kind = %s",
            (kind,),
        )
    )
    if wanted == recorded and (not force or not files):
        return 0
    conn.execute("reset all")
    with conn.transaction():
        for file in files:
            _execute_file(conn, file)
        conn.execute("delete from supabase_migrations.repeatable_files where kind = %s", (kind,))
        with conn.cursor() as cur:
            cur.executemany(
                "insert into supabase_migrations.repeatable_files (kind, file, sha256)"
                " values (%s, %s, %s)",
                [(kind, name, sha256) for name, sha256 in wanted.items()],
            )
    return len(files)


def _apply_seed(
    conn: psycopg.Connection, seed: SqlFile | None, report: MigrateReport, log: Log
) -> bool:
    """Seed once, as the Supabase CLI does: a changed seed file is not re-run on old data."""
    if seed is None:
        return False
    key = "supabase/" + seed.path.name
    row = conn.execute(
        "select hash from supabase_migrations.seed_files where path = %s", (key,)
    ).fetchone()
    if row and row[0] == seed.sha256:
        return False
    if row:
        report.warnings.append(
            f"{seed.display_path} changed since it was applied; it is not re-run on existing "
            "data (`make reset` rebuilds and re-seeds)"
        )
    else:
        conn.execute("reset all")
        with conn.transaction():
            _execute_file(conn, seed)
        log(f"seeded {seed.display_path}")
    conn.execute(
        "insert into supabase_migrations.seed_files (path, hash) values (%s, %s)"
        " on conflict (path) do update set hash = excluded.hash",
        (key, seed.sha256),
    )
    return row is None


def _execute_file(conn: psycopg.Connection, file: SqlFile) -> None:
    for statement in file.statements:
        try:
            conn.execute(statement.text)  # type: ignore[arg-type]  # whole file, trusted
        except psycopg.Error as error:
            raise MigrationError(describe_failure(file, statement, error)) from error


def describe_failure(file: SqlFile, statement: Statement, error: psycopg.Error) -> str:
    """file:line: ERROR code: message, the offending line with a caret, then detail and hint."""
    diag = error.diag
    line, column = statement.code_line, 0
    if diag.statement_position:
        offset = statement.offset + int(diag.statement_position) - 1
        line = file.text.count("\n", 0, offset) + 1
        column = offset - (file.text.rfind("\n", 0, offset) + 1)
    source = file.text.splitlines()[line - 1] if file.text else ""
    parts = [
        f"{file.display_path}:{line}: ERROR {diag.sqlstate}: {diag.message_primary or error}",
        f"  {line:>4} | {source}",
    ]
    if diag.statement_position:
        parts.append(f"       | {' ' * column}^")
    for label, value in (
        ("DETAIL", diag.message_detail),
        ("HINT", diag.message_hint),
        ("CONTEXT", diag.context),
    ):
        if value:
            parts.append(f"  {label}: {value}")
    parts.append(f"{file.display_path} was rolled back: nothing from it was applied.")
    return "\n".join(parts)
