"""python -m app: the local stack, the database and the edge from one command line."""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Sequence

import psycopg

from app import keys, paths
from app.db.migrator import MigrationError, migrate
from app.db.sql_files import SqlFileError
from app.local import schema_diff, stack
from app.local.cluster import ClusterError
from app.settings import database_url, setting


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.handler(args) is False:
            return 1
    except (
        MigrationError,
        SqlFileError,
        ClusterError,
        stack.StackError,
        schema_diff.SchemaDiffError,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except psycopg.OperationalError as error:
        print(f"error: cannot connect to the database: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("run", help="the stack in the foreground (Ctrl-C stops it)").set_defaults(
        handler=lambda _: stack.run()
    )
    commands.add_parser("up", help="the stack in the background, ready on return").set_defaults(
        handler=lambda _: stack.up()
    )
    commands.add_parser("down", help="stop what `up` or `db start` started").set_defaults(
        handler=lambda _: stack.down()
    )
    commands.add_parser(
        "status", help="each process of the stack and the sender's health; non-zero if one is not"
    ).set_defaults(handler=_stack_status)
    commands.add_parser("serve", help="the edge alone, configured from the env").set_defaults(
        handler=_serve
    )
    commands.add_parser(
        "worker", help="the sender: sends queued WhatsApp messages (SIGTERM finishes in-flight)"
    ).set_defaults(handler=_worker)
    keys_command = commands.add_parser(
        "keys", help="print the local API keys and JWT secret, or a user's access token"
    )
    keys_command.add_argument(
        "--user",
        type=uuid.UUID,
        metavar="UUID",
        help="print only an access token for this user (role authenticated, sub UUID), as "
        "Supabase Auth would issue one",
    )
    keys_command.add_argument(
        "--lifetime",
        type=int,
        default=3600,
        metavar="SECONDS",
        help="how long the user's token is valid (default 3600)",
    )
    keys_command.set_defaults(handler=_keys)
    docs_command = commands.add_parser(
        "docs", help="write docs/rpc.md, the API reference, from a migrated database"
    )
    docs_command.add_argument(
        "--database-url", help="a migrated database (default: DATABASE_URL, else the local stack)"
    )
    docs_command.set_defaults(handler=_docs)
    commands.add_parser("psql", help="psql on the local database").set_defaults(
        handler=lambda _: stack.psql()
    )

    db = commands.add_parser("db", help="the database").add_subparsers(dest="db", required=True)
    db.add_parser("start", help="create (first time), start and migrate the local cluster")
    db.choices["start"].set_defaults(handler=lambda _: stack.prepare())
    db.add_parser("stop", help="stop the local cluster").set_defaults(
        handler=lambda _: stack.local_cluster().stop()
    )
    db.add_parser("status", help="is the local cluster running").set_defaults(handler=_status)
    db.add_parser("reset", help="drop and rebuild the local database, with seed").set_defaults(
        handler=lambda _: stack.reset()
    )
    run_migrations = db.add_parser(
        "migrate", help="apply emulation (not on hosted Supabase), migrations and functions"
    )
    run_migrations.add_argument(
        "--database-url", help="target database (default: DATABASE_URL, else the local stack)"
    )
    run_migrations.add_argument(
        "--include-all", action="store_true", help="also apply migrations older than the newest"
    )
    run_migrations.add_argument("--seed", action="store_true", help="apply supabase/seed.sql once")
    run_migrations.add_argument(
        "--no-emulation", action="store_true", help="skip the Supabase emulation"
    )
    run_migrations.set_defaults(handler=_migrate)
    schema_diff_parser = db.add_parser(
        "diff",
        help="write a migration carrying what changed in supabase/functions-sql/ (for `supabase "
        "db push`); --check only reports",
    )
    schema_diff_parser.add_argument(
        "name", nargs="?", help="the migration's name, e.g. wallet_limits"
    )
    schema_diff_parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit non-zero when the migrations lag functions-sql/",
    )
    schema_diff_parser.set_defaults(handler=_schema_diff)
    return parser


def _migrate(args: argparse.Namespace) -> None:
    url = args.database_url or database_url()
    report = migrate(
        url, emulation=not args.no_emulation, seed=args.seed, include_all=args.include_all
    )
    if not report.changed_anything:
        print("database is up to date")


def _schema_diff(args: argparse.Namespace) -> bool:
    if args.check:
        survey = schema_diff.check()
        for line in survey.report():
            print(line)
        if survey.in_step:
            print("supabase/migrations/ defines what supabase/functions-sql/ does")
        else:
            print(
                "supabase/migrations/ lags supabase/functions-sql/: run `python -m app db diff "
                "<name>` and commit the migration it writes",
                file=sys.stderr,
            )
        return survey.in_step
    if not args.name:
        raise schema_diff.SchemaDiffError("name the migration: python -m app db diff <name>")
    result = schema_diff.diff(args.name)
    if result.written is None:
        print(
            "supabase/migrations/ already defines what supabase/functions-sql/ does: "
            "nothing to write"
        )
    return True


def _serve(_: argparse.Namespace) -> None:
    from app.edge.serve import serve  # noqa: PLC0415 - the web stack loads only to serve

    serve()


def _worker(_: argparse.Namespace) -> None:
    from app.sender.service import main as run_worker  # noqa: PLC0415 - loads only to send

    run_worker()


def _keys(args: argparse.Namespace) -> None:
    secret = setting("SUPABASE_JWT_SECRET")
    if not secret:
        raise stack.StackError("no JWT secret yet: `make run` or `make up` creates one")
    if args.user is not None:
        if args.lifetime < 1:
            raise stack.StackError("--lifetime must be at least 1 second")
        # Alone on stdout, so that TOKEN=$(python -m app keys --user ...) works.
        print(keys.user_token(secret, str(args.user), lifetime_seconds=args.lifetime))
        return
    print(f"SUPABASE_ANON_KEY={keys.api_key(secret, 'anon')}")
    print(f"SUPABASE_SERVICE_ROLE_KEY={keys.api_key(secret, 'service_role')}")
    print(f"SUPABASE_JWT_SECRET={secret}")


def _docs(args: argparse.Namespace) -> None:
    from app.docs.rpc_reference import write_reference  # noqa: PLC0415 - loads only for docs

    written = write_reference(args.database_url or database_url())
    print(f"wrote {paths.display(written)}")


def _stack_status(_: argparse.Namespace) -> bool:
    from app.local.status import status  # noqa: PLC0415 - the HTTP client loads only here

    return status()


def _status(_: argparse.Namespace) -> None:
    cluster = stack.local_cluster()
    state = "running" if cluster.is_running() else "stopped" if cluster.exists() else "not created"
    print(f"local database: {state} ({cluster.data_dir}, port {cluster.port})")
