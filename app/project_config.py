"""The Supabase CLI's config.toml, read for the values the local stack shares with it."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from app import paths


@dataclass(frozen=True)
class ProjectConfig:
    project_id: str
    api_port: int
    db_port: int
    schemas: tuple[str, ...]
    extra_search_path: tuple[str, ...]
    max_rows: int


def load_project_config(path: Path = paths.CONFIG_TOML) -> ProjectConfig:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    api, db = data.get("api", {}), data.get("db", {})
    return ProjectConfig(
        project_id=data["project_id"],
        # EASYMO_*_PORT: run a second stack beside the first without editing config.toml.
        api_port=int(os.environ.get("EASYMO_API_PORT") or api.get("port", 54321)),
        db_port=int(os.environ.get("EASYMO_DB_PORT") or db.get("port", 54322)),
        schemas=tuple(api.get("schemas", ["public"])),
        extra_search_path=tuple(api.get("extra_search_path", ["public", "extensions"])),
        max_rows=int(api.get("max_rows", 1000)),
    )
