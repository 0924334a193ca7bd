"""One RPC call as SQL: arguments typed by json_to_record, the result shaped into JSON by
Postgres itself (as PostgREST does), so the edge never parses or re-serialises a result."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from app.gateway.catalog import Routine

# Where the call's JSON body goes until `as_query` makes it psycopg's %(body)s: the SQL holds
# names, and a `%` in a name would read as a placeholder unless doubled after composing. No name
# can hold a NUL, so the marker never collides with one.
BODY = "\x00body\x00"


def as_query(composed: sql.Composed) -> str:
    """A planned call as a query taking one parameter, `body`."""
    return composed.as_string().replace("%", "%%").replace(BODY, "%(body)s")


@dataclass(frozen=True)
class Page:
    limit: int | None = None
    offset: int = 0


def plan_call(
    routine: Routine,
    keys: frozenset[str],
    *,
    want_object: bool,
    want_count: bool,
    page: Page,
) -> sql.Composed:
    """SQL taking the arguments as one json parameter and returning (body, page_total, total)."""
    call = _call_expression(routine, keys)
    source = _source(routine, keys, call)
    single = want_object or not routine.returns_set
    if routine.returns_composite:
        aggregate = sql.SQL("pg_catalog.json_agg(_postgrest_t)")
        selected = sql.SQL("pgrst_call.*")
    else:
        aggregate = sql.SQL("pg_catalog.json_agg(_postgrest_t.pgrst_scalar)")
        selected = sql.SQL("pgrst_call.pgrst_scalar")
    body = (
        sql.SQL("coalesce({} -> 0, 'null')").format(aggregate)
        if single
        else sql.SQL("coalesce({}, '[]')").format(aggregate)
    )
    window = sql.SQL("")
    if page.limit is not None:
        window = sql.SQL(" limit {}").format(sql.Literal(page.limit))
    if page.offset:
        window += sql.SQL(" offset {}").format(sql.Literal(page.offset))
    total = (
        sql.SQL("(select pg_catalog.count(*) from pgrst_source)")
        if want_count
        else sql.SQL("null::bigint")
    )
    return sql.SQL(
        "with pgrst_source as (select {selected} from {source}) "
        "select {body}::text as body, pg_catalog.count(_postgrest_t) as page_total, "
        "{total} as total "
        "from (select * from pgrst_source{window}) as _postgrest_t"
    ).format(selected=selected, source=source, body=body, total=total, window=window)


def plan_void_call(routine: Routine, keys: frozenset[str]) -> sql.Composed:
    call = _call_expression(routine, keys)
    return sql.SQL("select 1 from {}").format(_source(routine, keys, call))


def _call_expression(routine: Routine, keys: frozenset[str]) -> sql.Composed:
    function = sql.SQL("{}.{}").format(sql.Identifier(routine.schema), sql.Identifier(routine.name))
    if routine.takes_whole_body and not routine.accepts(keys):
        return sql.SQL("{}({}::{})").format(
            function, sql.SQL(BODY), sql.SQL(routine.parameters[0].type)
        )
    arguments = [
        sql.SQL("{variadic}{name} := pgrst_body.{name}").format(
            variadic=sql.SQL("variadic " if parameter.variadic else ""),
            name=sql.Identifier(parameter.name),
        )
        for parameter in routine.parameters
        if parameter.name in keys
    ]
    return sql.SQL("{}({})").format(function, sql.SQL(", ").join(arguments))


def _source(routine: Routine, keys: frozenset[str], call: sql.Composed) -> sql.Composed:
    """FROM clause: the typed arguments, then the call, lateral to them."""
    passed = [p for p in routine.parameters if p.name in keys]
    if routine.returns_composite:
        invocation = sql.SQL("lateral {} as pgrst_call").format(call)
    else:
        invocation = sql.SQL("lateral (select {} as pgrst_scalar) as pgrst_call").format(call)
    if not passed:
        return sql.SQL("(select) as pgrst_body, {}").format(invocation)
    # Parameter types come from pg_catalog.format_type, never from the request.
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(p.name), sql.SQL(p.type)) for p in passed
    )
    return sql.SQL(
        "pg_catalog.json_to_record({body}::json) as pgrst_body ({columns}), {invocation}"
    ).format(body=sql.SQL(BODY), columns=columns, invocation=invocation)
