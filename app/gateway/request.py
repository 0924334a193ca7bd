"""What an RPC request asks for, read from its headers, query string and body as PostgREST
reads them: the schema, the arguments, the page and whether one object is wanted. Nothing here
touches the database."""

from __future__ import annotations

import json
from dataclasses import dataclass

from starlette.requests import Request

from app.gateway.call import Page
from app.gateway.errors import GatewayError
from app.shared.body import BodyTooLarge, bounded_body

_RESERVED = frozenset({"select", "columns", "order", "limit", "offset", "on_conflict", "and", "or"})
_FILTER_OPERATORS = frozenset(
    {
        *("eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch"),
        *("in", "is", "isdistinct", "not", "cs", "cd", "ov", "sl", "sr", "nxr", "nxl", "adj"),
        *("fts", "plfts", "phfts", "wfts"),
    }
)


@dataclass(frozen=True)
class Arguments:
    keys: frozenset[str]
    values: dict[str, list[str]] | None  # GET: every value of each key, as text
    body: str | None  # POST: the request body, passed to Postgres as it came
    page: Page


def requested_schema(request: Request, exposed: tuple[str, ...]) -> tuple[str, bool]:
    """The schema Accept-Profile (GET, HEAD) or Content-Profile names, else the first exposed;
    and whether the caller named one (the answer then says which it used)."""
    header = "accept-profile" if request.method in ("GET", "HEAD") else "content-profile"
    requested = request.headers.get(header)
    if requested is None:
        return exposed[0], False
    if requested not in exposed:
        raise GatewayError(
            406,
            "PGRST106",
            f"Invalid schema: {requested}",
            hint=f"Only the following schemas are exposed: {', '.join(exposed)}",
        )
    return requested, True


async def read_arguments(request: Request, body_limit: int) -> Arguments:
    """The function's arguments: the query string's for GET and HEAD (filters refused), else the
    JSON body as it came, bounded by body_limit; with the page asked for."""
    page = _page(request)
    if request.method in ("GET", "HEAD"):
        values: dict[str, list[str]] = {}
        for key, value in request.query_params.multi_items():
            if _is_argument(key, value):
                values.setdefault(key, []).append(value)
        return Arguments(frozenset(values), values, None, page)
    raw = await read_body(request, body_limit)
    content_type = (request.headers.get("content-type") or "application/json").split(";")[0]
    if raw.strip() and content_type.strip().lower() != "application/json":
        raise GatewayError(400, "PGRST102", f"Content-Type not acceptable: {content_type}")
    try:
        text = raw.decode("utf-8") if raw.strip() else "{}"
        parsed = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        # RecursionError: nested deeper than Python's parser goes ("[" x 5000).
        raise GatewayError(400, "PGRST102", "Empty or invalid json") from error
    keys = frozenset(parsed) if isinstance(parsed, dict) else frozenset()
    return Arguments(keys, None, text, page)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, bounded by `limit`: PGRST413 past it."""
    try:
        return await bounded_body(request, limit)
    except BodyTooLarge as error:
        raise GatewayError(413, "PGRST413", str(error)) from error


def wants_object(accept: str | None) -> bool:
    if not accept:
        return False
    types = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    if any(
        t in ("application/vnd.pgrst.object+json", "application/vnd.pgrst.object") for t in types
    ):
        return True
    if any(t in ("application/json", "*/*", "application/*") for t in types):
        return False
    raise GatewayError(406, "PGRST107", f"None of these media types are available: {accept}")


def _page(request: Request) -> Page:
    if not request.scope["query_string"]:
        return Page()  # most calls have no query string: nothing to parse
    params = request.query_params
    try:
        limit = int(params["limit"]) if "limit" in params else None
        offset = int(params.get("offset", "0"))
    except ValueError as error:
        raise GatewayError(400, "PGRST100", "limit and offset must be whole numbers") from error
    if (limit is not None and limit < 0) or offset < 0:
        raise GatewayError(
            416,
            "PGRST103",
            "Requested range not satisfiable",
            "Limit should be greater than or equal to zero.",
        )
    unsupported = [key for key in params if key in _RESERVED - {"limit", "offset"}]
    if request.method not in ("GET", "HEAD"):
        unsupported += [key for key in params if key not in _RESERVED]
    if unsupported:
        raise GatewayError(
            400,
            "PGRST100",
            f"Unsupported query parameter on an RPC result: {', '.join(sorted(set(unsupported)))}",
            hint="This gateway supports limit and offset on RPC results; filter inside the "
            "function instead.",
        )
    return Page(limit, offset)


def _is_argument(key: str, value: str) -> bool:
    """PostgREST's rule: reserved words and filters (`col=eq.1`) are not function arguments."""
    if key in _RESERVED or key.rsplit(".", 1)[-1] in _RESERVED:
        return False
    if "." in key:
        raise _filter_error(key)
    operator = value.split(".", 1)[0]
    if operator in _FILTER_OPERATORS and "." in value:
        raise _filter_error(key)
    return True


def _filter_error(key: str) -> GatewayError:
    return GatewayError(
        400,
        "PGRST100",
        f"Filters on RPC results are not supported by this gateway: {key}",
        hint="Filter inside the function instead.",
    )
