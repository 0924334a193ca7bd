"""A table request as SQL, shaped as PostgREST shapes it: the rows in a `pgrst_source` CTE (a
SELECT, or an INSERT, UPDATE or DELETE ... RETURNING), then one row holding the total, the page
size and the body, made into JSON (or CSV) by Postgres itself.

Nothing from the request is written into the text: names are sql.Identifier, values are
sql.Literal (quoted by psycopg's adapters, as client-side binding does), operators and keywords
come from fixed tables (table_terms), and types from the catalog. Postgres then judges every name:
an unknown column is its error, a column the role may not read its refusal.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from app.gateway.errors import GatewayError
from app.gateway.table_grammar import Embed, SelectItem
from app.gateway.table_request import Media, Page, Payload, TableQuery
from app.gateway.table_terms import Terms, page_window

_NO_TOTAL = sql.SQL("null::bigint")
_NO_INSERTED_COUNT = sql.SQL("null::int")


@dataclass(frozen=True)
class Shape:
    """How the rows come back: the media type, or nothing (HEAD, return=minimal)."""

    media: Media
    body: bool = True


class TableSql(Terms):
    """The SQL of one request on one relation."""

    # Reads ------------------------------------------------------------------------------------

    def read(
        self,
        query: TableQuery,
        page: Page,
        shape: Shape,
        count: str | None,
        cap: int | None = None,
    ) -> sql.Composed:
        source = sql.SQL("select {items} from {table} as {alias}{where}{order}{window}").format(
            items=self.select_list(query.select),
            table=self.table,
            alias=self.alias,
            where=self.where(query.where, query.select),
            order=self.order(query.order, query.select),
            window=page_window(page),
        )
        total = _NO_TOTAL
        if count in ("exact", "estimated"):
            total = sql.SQL("(select pg_catalog.count(*) from ({}) as pgrst_count)").format(
                self.count_source(query, cap)
            )
        return sql.SQL(
            "with pgrst_source as ({source}) "
            "select {total} as total, pg_catalog.count(_postgrest_t) as page_total, "
            "{body} as body, null::text as location, null::int as inserted "
            "from (select * from pgrst_source) as _postgrest_t"
        ).format(source=source, total=total, body=_body(shape))

    def count_source(self, query: TableQuery, cap: int | None = None) -> sql.Composed:
        """The rows a count counts: the filters without the page (capped for `estimated`)."""
        limit = sql.SQL("") if cap is None else sql.SQL(" limit {}").format(sql.Literal(cap))
        return sql.SQL("select 1 from {table} as {alias}{where}{limit}").format(
            table=self.table,
            alias=self.alias,
            where=self.where(query.where, query.select),
            limit=limit,
        )

    def planned_count(self, query: TableQuery) -> sql.Composed:
        return sql.SQL("explain (format json) {}").format(self.count_source(query))

    # Writes -----------------------------------------------------------------------------------

    def insert(
        self,
        query: TableQuery,
        payload: Payload,
        shape: Shape,
        *,
        resolution: str | None,
        returning: str,
        apply_defaults: bool,
        matching: tuple[tuple[str, str], ...] = (),
    ) -> sql.Composed:
        """`matching`: for PUT, the (key column, value) pairs of the URL that every row of the
        body must have; a row that differs is not inserted."""
        self.require_columns(payload.keys)
        columns = sql.SQL(", ").join(sql.Identifier(c) for c in payload.keys)
        if payload.keys:
            columns = sql.SQL(" ({})").format(columns)
        values = sql.SQL(", ").join(self.payload_value(c, apply_defaults) for c in payload.keys)
        conflict_columns = query.on_conflict or self.relation.primary_key
        merge = resolution == "merge-duplicates" and bool(conflict_columns)
        tests = [
            sql.SQL("pgrst_body.{} = {}").format(sql.Identifier(column), sql.Literal(value))
            for column, value in matching
        ]
        if merge:
            tests.append(_count_inserted(+1))
        counted = sql.SQL("")
        if tests:
            counted = sql.SQL(" where {}").format(sql.SQL(" and ").join(tests))
        statement = sql.SQL(
            "insert into {table} as {alias}{columns} select {values} from {rows}{counted}"
        ).format(
            table=self.table,
            alias=self.alias,
            columns=columns,
            values=values,
            rows=self.payload_rows(payload, apply_defaults),
            counted=counted,
        )
        if resolution and conflict_columns:
            statement += sql.SQL(" on conflict ({})").format(
                sql.SQL(", ").join(sql.Identifier(c) for c in conflict_columns)
            )
            if merge and payload.keys:
                statement += sql.SQL(" do update set {} where {}").format(
                    sql.SQL(", ").join(
                        sql.SQL("{0} = excluded.{0}").format(sql.Identifier(c))
                        for c in payload.keys
                    ),
                    _count_inserted(-1),
                )
            else:
                statement += sql.SQL(" do nothing")
        inserted = (
            sql.SQL("nullif(pg_catalog.current_setting('pgrst.inserted', true), '')::int")
            if merge
            else _NO_INSERTED_COUNT
        )
        return self._write(statement, query, shape, returning, inserted=inserted)

    def update(
        self,
        query: TableQuery,
        payload: Payload,
        shape: Shape,
        *,
        returning: str,
        apply_defaults: bool = False,
    ) -> sql.Composed:
        self.require_columns(payload.keys)
        if not payload.keys:
            # Nothing to set: no row changes, but the selected columns are still checked.
            statement = sql.SQL("select {} from {} as {} where false").format(
                self.returning_list(query, returning), self.table, self.alias
            )
            return self._write(statement, query, shape, returning, returns=False)
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(c), self.payload_value(c, apply_defaults))
            for c in payload.keys
        )
        statement = sql.SQL(
            "update {table} as {alias} set {assignments} from {rows}{where}"
        ).format(
            table=self.table,
            alias=self.alias,
            assignments=assignments,
            rows=self.payload_rows(payload, apply_defaults),
            where=self.where(query.where),
        )
        return self._write(statement, query, shape, returning)

    def delete(self, query: TableQuery, shape: Shape, *, returning: str) -> sql.Composed:
        statement = sql.SQL("delete from {table} as {alias}{where}").format(
            table=self.table, alias=self.alias, where=self.where(query.where)
        )
        return self._write(statement, query, shape, returning)

    def _write(
        self,
        statement: sql.Composable,
        query: TableQuery,
        shape: Shape,
        returning: str,
        *,
        returns: bool = True,
        inserted: sql.Composable = _NO_INSERTED_COUNT,
    ) -> sql.Composed:
        if returns:
            statement = sql.SQL("{} returning {}").format(
                statement, self.returning_list(query, returning)
            )
        if returning == "representation":
            rows = sql.SQL("select {} from pgrst_source as {}").format(
                self.select_list(query.select), self.alias
            )
        else:
            rows = sql.SQL("select * from pgrst_source")
            shape = Shape(shape.media, body=False)
        location = sql.SQL("null::text")
        if returning == "headers-only" and self.relation.primary_key:
            location = sql.SQL(
                "(select pg_catalog.row_to_json(pgrst_key)::text "
                "from (select {} from pgrst_source as {} limit 1) as pgrst_key)"
            ).format(self.key_columns(), self.alias)
        return sql.SQL(
            "with pgrst_source as ({statement}) "
            "select null::bigint as total, pg_catalog.count(_postgrest_t) as page_total, "
            "{body} as body, {location} as location, {inserted} as inserted "
            "from ({rows}) as _postgrest_t"
        ).format(
            statement=statement,
            body=_body(shape),
            location=location,
            inserted=inserted,
            rows=rows,
        )

    def returning_list(self, query: TableQuery, returning: str) -> sql.Composable:
        """What the statement returns: the columns the answer selects (and the key, for a
        Location), or a constant when only the count matters."""
        if returning == "representation":
            # An embedded resource may join on any column: every one is returned then.
            if any(isinstance(i, Embed) or i.field.name == "*" for i in query.select):
                return sql.SQL("{}.*").format(self.alias)
            columns = [i.field.name for i in query.select if isinstance(i, SelectItem)]
            names = dict.fromkeys(columns + list(self.relation.primary_key))
            return sql.SQL(", ").join(sql.Identifier(self.alias_name, n) for n in names)
        if returning == "headers-only" and self.relation.primary_key:
            return self.key_columns()
        return sql.SQL("1")

    def key_columns(self) -> sql.Composable:
        return sql.SQL(", ").join(
            sql.Identifier(self.alias_name, c) for c in self.relation.primary_key
        )

    def require_columns(self, names: tuple[str, ...]) -> None:
        for name in names:
            if name not in self.relation.columns:
                raise GatewayError(
                    400,
                    "PGRST204",
                    f"Could not find the '{name}' column of '{self.relation.name}' in the "
                    "schema cache",
                )

    def payload_rows(self, payload: Payload, apply_defaults: bool) -> sql.Composed:
        """The body's rows, typed by the relation's own row type."""
        body = sql.Literal(payload.text)
        if apply_defaults:
            elements = (
                sql.SQL("pg_catalog.jsonb_array_elements({}::jsonb)").format(body)
                if payload.is_array
                else sql.SQL("(select {}::jsonb) ").format(body)
            )
            return sql.SQL(
                "{elements} as pgrst_element (value), "
                "lateral pg_catalog.jsonb_populate_record(null::{table}, pgrst_element.value) "
                "as pgrst_body"
            ).format(elements=elements, table=self.table)
        function = "json_populate_recordset" if payload.is_array else "json_populate_record"
        return sql.SQL("pg_catalog.{}(null::{}, {}::json) as pgrst_body").format(
            sql.Identifier(function), self.table, body
        )

    def payload_value(self, column: str, apply_defaults: bool) -> sql.Composable:
        value = sql.SQL("pgrst_body.{}").format(sql.Identifier(column))
        default = self.relation.default_of(column)
        if not apply_defaults or default is None:
            return value
        # The default expression is the catalog's own text (pg_get_expr), never the request's.
        return sql.SQL("case when pgrst_element.value ? {} then {} else {} end").format(
            sql.Literal(column), value, sql.SQL(default)
        )


def _body(shape: Shape) -> sql.Composable:
    if not shape.body:
        return sql.SQL("''")
    media = shape.media
    if media.kind == "csv":
        return sql.SQL(
            "(select coalesce(pg_catalog.string_agg(pgrst_key, ','), '') from ("
            "select pg_catalog.json_object_keys(pg_catalog.row_to_json(pgrst_first)) as pgrst_key "
            "from (select * from pgrst_source limit 1) as pgrst_first) as pgrst_keys)"
            " || E'\\n' || coalesce(pg_catalog.string_agg(pg_catalog.substr(_postgrest_t::text, 2,"
            " pg_catalog.length(_postgrest_t::text) - 2), E'\\n'), '')"
        )
    rows = sql.SQL("pg_catalog.json_agg(_postgrest_t)")
    if media.kind == "object":
        rows = sql.SQL("{} -> 0").format(rows)
    if media.strip_nulls:
        rows = sql.SQL("pg_catalog.json_strip_nulls({})").format(rows)
    empty = sql.SQL("'null'" if media.kind == "object" else "'[]'")
    return sql.SQL("coalesce({}, {})::text").format(rows, empty)


def _count_inserted(step: int) -> sql.Composable:
    """Counts rows inserted (+1 per row offered, -1 per row that merged into an existing one),
    so an upsert that only updated answers 200, as PostgREST's does."""
    return sql.SQL(
        "pg_catalog.set_config('pgrst.inserted', (coalesce(nullif(pg_catalog.current_setting("
        "'pgrst.inserted', true), '')::int, 0) {} 1)::text, true) <> {}"
    ).format(sql.SQL("+" if step > 0 else "-"), sql.Literal("0" if step > 0 else "-1"))
