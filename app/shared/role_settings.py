"""Each API role's own settings (ALTER ROLE anon SET statement_timeout = '3s'), re-applied per
request as PostgREST does: they apply only at login, and a role switched to with SET ROLE skips
them. Loaded with the schema cache and kept here, so that whoever calls the database as an API
role (the RPC gateway, the webhooks) reads them from one holder."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from psycopg import AsyncCursor

ROLE_SETTINGS_SQL = """
select r.rolname as role, s.setconfig as settings
from pg_catalog.pg_db_role_setting as s
inner join pg_catalog.pg_roles as r on s.setrole = r.oid
where
    r.rolname = any(%s)
    and s.setdatabase in (
        0, (select d.oid from pg_catalog.pg_database as d where d.datname = current_database())
    )
order by s.setdatabase
"""


class RoleSettings:
    def __init__(self, roles: Iterable[str]) -> None:
        self.roles = tuple(roles)
        self._by_role: dict[str, dict[str, str]] = {}

    def of(self, role: str) -> Mapping[str, str]:
        """The role's settings; none for a role without any (or not an API role)."""
        return self._by_role.get(role, {})

    async def load(self, cur: AsyncCursor[Any]) -> None:
        """On a cursor whose rows are dicts; replaces what was held at once."""
        await cur.execute(ROLE_SETTINGS_SQL, (list(self.roles),))
        by_role: dict[str, dict[str, str]] = {}
        for row in await cur.fetchall():  # database-specific settings come last and win
            for item in row["settings"] or []:
                key, _, value = item.partition("=")
                by_role.setdefault(row["role"], {})[key] = value
        self._by_role = by_role
