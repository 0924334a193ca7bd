"""The SQL files of the project: migrations, repeatable definitions, emulation and seed."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from app import paths
from app.db.statements import Statement, split_statements

# The Supabase CLI's own pattern, narrowed to the 14-digit UTC timestamps it writes.
MIGRATION_FILE = re.compile(r"^(?P<version>\d{14})_(?P<name>[A-Za-z0-9][A-Za-z0-9_-]*)\.sql$")


_TRANSACTION_CONTROL = re.compile(
    r"^(begin|start\s+transaction|commit|rollback|end|abort)(\s+(work|transaction))?\s*(;|$)",
    re.IGNORECASE,
)


class SqlFileError(ValueError):
    """A file that cannot be applied as it stands (bad name, duplicate version, bad quoting)."""


@dataclass(frozen=True)
class SqlFile:
    path: Path
    text: str = field(repr=False)

    @classmethod
    def read(cls, path: Path) -> SqlFile:
        return cls(path, path.read_text(encoding="utf-8"))

    @property
    def display_path(self) -> str:
        return paths.display(self.path)

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    @cached_property
    def statements(self) -> list[Statement]:
        try:
            statements = split_statements(self.text)
        except ValueError as error:
            raise SqlFileError(f"{self.display_path}: {error}") from error
        for statement in statements:
            if _TRANSACTION_CONTROL.match(statement.keyword_text()):
                raise SqlFileError(
                    f"{self.display_path}:{statement.line}: each file runs in a transaction of "
                    "its own; remove BEGIN/COMMIT/ROLLBACK"
                )
        return statements


@dataclass(frozen=True)
class Migration(SqlFile):
    version: str = ""
    name: str = ""

    def cli_statements(self) -> list[str]:
        """The statements as the Supabase CLI records them: trailing semicolon dropped."""
        return [statement.text.rstrip(";").rstrip() for statement in self.statements]


@dataclass(frozen=True)
class SqlSources:
    """Where each kind of file lives; tests point these at folders of their own."""

    migrations: Path = paths.MIGRATIONS
    functions: Path = paths.FUNCTIONS_SQL
    emulation: Path = paths.EMULATION
    seed: Path = paths.SEED

    def read_migrations(self) -> list[Migration]:
        migrations: dict[str, Migration] = {}
        for path in sorted(self.migrations.glob("*.sql")):
            match = MIGRATION_FILE.match(path.name)
            if not match:
                raise SqlFileError(
                    f"{path}: not a migration file name; expected <14-digit UTC timestamp>_<name>"
                    ".sql, e.g. 20260301120000_add_wallets.sql"
                )
            version = match["version"]
            if version in migrations:
                raise SqlFileError(
                    f"{path}: version {version} is also used by {migrations[version].path.name}"
                )
            text = path.read_text(encoding="utf-8")
            migrations[version] = Migration(path, text, version, match["name"])
        return list(migrations.values())

    def read_functions(self) -> list[SqlFile]:
        return [SqlFile.read(path) for path in sorted(self.functions.glob("*.sql"))]

    def read_emulation(self) -> list[SqlFile]:
        return [SqlFile.read(path) for path in sorted(self.emulation.glob("*.sql"))]

    def read_seed(self) -> SqlFile | None:
        return SqlFile.read(self.seed) if self.seed.exists() else None
