"""What a table request asks for, read as PostgREST reads it: the query string (select, filters,
order, page, on_conflict, columns), the Range header, Prefer, Accept and the JSON body. Nothing
here touches the database; anything malformed is a PGRST1xx error.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from urllib.parse import parse_qsl

from starlette.requests import Request

from app.gateway.errors import GatewayError
from app.gateway.request import read_body
from app.gateway.table_grammar import (
    Aggregate,
    Condition,
    Embed,
    Logic,
    OrderTerm,
    RelatedOrder,
    SelectItem,
    parse_columns,
    parse_filter,
    parse_logic,
    parse_order,
    parse_select,
)

WRITES = ("POST", "PUT", "PATCH", "DELETE")
_RESERVED = frozenset({"select", "columns", "on_conflict"})
_RANGE_HEADER = re.compile(r"^([0-9]+)-([0-9]*)$")
_WHOLE_NUMBER = re.compile(r"^-?[0-9]+$")
_PREFERENCES = {
    "resolution": ("merge-duplicates", "ignore-duplicates"),
    "return": ("representation", "minimal", "headers-only"),
    "count": ("exact", "planned", "estimated"),
    "tx": ("commit", "rollback"),
    "missing": ("default", "null"),
    "handling": ("strict", "lenient"),
}


@dataclass
class Scope:
    """Filters, order and page of one embedded resource (`clients.id=eq.1`, `clients.order=id`,
    `clients.limit=2`), by its path of names (or aliases) from the table."""

    where: list[Condition | Logic] = field(default_factory=list)
    order: list[OrderTerm | RelatedOrder] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None


@dataclass(frozen=True)
class TableQuery:
    select: tuple[SelectItem | Embed, ...]
    where: tuple[Condition | Logic, ...]
    order: tuple[OrderTerm | RelatedOrder, ...]
    on_conflict: tuple[str, ...] | None
    columns: tuple[str, ...] | None
    embedded: dict[tuple[str, ...], Scope] = field(default_factory=dict)

    def scope(self, path: tuple[str, ...]) -> Scope:
        return self.embedded.get(path) or Scope()


@dataclass(frozen=True)
class Page:
    offset: int = 0
    limit: int | None = None


@dataclass(frozen=True)
class Preferences:
    chosen: dict[str, str] = field(default_factory=dict)  # kind -> value, the first of each
    max_affected: int | None = None
    invalid: tuple[str, ...] = ()
    timezone: str | None = None  # a zone Postgres knows, for the request's `timezone` setting

    def get(self, kind: str) -> str | None:
        return self.chosen.get(kind)

    @property
    def strict(self) -> bool:
        return self.chosen.get("handling") == "strict"

    def applied(self, kinds: tuple[str, ...], *, max_affected: bool = False) -> str | None:
        """Preference-Applied: what was honoured, in PostgREST's order."""
        order = ("resolution", "missing", "return", "count", "tx", "handling")
        values = [f"{k}={self.chosen[k]}" for k in order if k in kinds and k in self.chosen]
        if self.timezone is not None:
            values.append(f"timezone={self.timezone}")
        if max_affected and self.strict and self.max_affected is not None:
            values.append(f"max-affected={self.max_affected}")
        return ", ".join(values) or None


@dataclass(frozen=True)
class Media:
    kind: str  # json, object or csv
    strip_nulls: bool = False

    @property
    def content_type(self) -> str:
        mime = {
            "json": "application/vnd.pgrst.array+json;nulls=stripped"
            if self.strip_nulls
            else "application/json",
            "object": "application/vnd.pgrst.object+json"
            + (";nulls=stripped" if self.strip_nulls else ""),
            "csv": "text/csv",
        }[self.kind]
        return f"{mime}; charset=utf-8"


@dataclass(frozen=True)
class Payload:
    text: str  # the JSON body as it came
    is_array: bool
    keys: tuple[str, ...]  # the columns it sets


@dataclass(frozen=True)
class TableRequest:
    method: str
    table: str
    query: TableQuery
    page: Page
    payload: Payload | None
    preferences: Preferences
    media: Media

    @property
    def writes(self) -> bool:
        return self.method in WRITES

    @property
    def returning(self) -> str:
        return self.preferences.get("return") or "minimal"


async def read_table_request(
    request: Request, *, max_rows: int | None, body_limit: int
) -> TableRequest:
    method = request.method
    if method not in ("GET", "HEAD", *WRITES):
        raise GatewayError(405, "PGRST117", f"Unsupported HTTP method: {method}")
    preferences = read_preferences(request)
    media = negotiate(request.headers.get("accept"))
    query = read_query(request)
    if method == "PUT" and ("limit" in request.query_params or "offset" in request.query_params):
        raise GatewayError(
            400, "PGRST114", "limit/offset querystring parameters are not allowed for PUT"
        )
    page = Page() if method in WRITES else read_page(request, max_rows)
    payload = None
    if method in ("POST", "PUT", "PATCH"):
        payload = await read_payload(request, body_limit, query.columns)
    table = request.path_params["table"]
    return TableRequest(method, table, query, page, payload, preferences, media)


def read_query(request: Request) -> TableQuery:
    params = [
        (key.replace("\x00", ""), value.replace("\x00", ""))
        for key, value in request.query_params.multi_items()
    ]
    first = {}
    for key, value in params:
        first.setdefault(key, value)
    select = _select(first.get("select", "*"))
    root = Scope()
    embedded: dict[tuple[str, ...], Scope] = {}

    def scope(path: list[str]) -> Scope:
        return embedded.setdefault(tuple(path), Scope()) if path else root

    for key, value in params:
        *words, last_word = key.split(".")
        if key in _RESERVED or (not words and last_word in ("limit", "offset")):
            continue
        if last_word in ("limit", "offset"):
            setattr(scope(words), last_word, _integer(value))
        elif last_word in ("and", "or"):
            path, tree = parse_logic(key, value)
            scope(path).where.append(tree)
        elif last_word == "order":
            scope(words).order.extend(_order(value))
        else:
            path, condition = parse_filter(key, value)
            scope(path).where.append(condition)
    _require_embedded(embedded, _embed_paths(select, ()))
    on_conflict = first.get("on_conflict")
    columns = first.get("columns")
    return TableQuery(
        select=tuple(select),
        where=tuple(root.where),
        order=tuple(root.order),
        on_conflict=tuple(parse_columns(on_conflict, "on_conflict")) if on_conflict else None,
        columns=tuple(parse_columns(columns, "columns")) if columns else None,
        embedded=embedded,
    )


def read_page(request: Request, max_rows: int | None) -> Page:
    """limit and offset (the last of each; an unreadable one is ignored, as by PostgREST), the
    Range header on GET, and the row cap, intersected."""
    params = request.query_params
    limit = _integer(params.getlist("limit")[-1]) if "limit" in params else None
    offset = _integer(params.getlist("offset")[-1]) if "offset" in params else None
    lower, upper = offset or 0, None
    if limit is not None:
        upper = lower + limit - 1
    header_empty = False
    header = request.headers.get("range") if request.method == "GET" else None
    matched = _RANGE_HEADER.match(header.strip()) if header else None
    if matched:
        low, high = int(matched.group(1)), matched.group(2)
        header_empty = bool(high) and int(high) < low
        lower = max(lower, low)
        if high:
            upper = int(high) if upper is None else min(upper, int(high))
    if limit == 0:
        return Page(offset or 0, 0)
    if header_empty or (upper is not None and upper < lower):
        raise GatewayError(
            416,
            "PGRST103",
            "Requested range not satisfiable",
            "The lower boundary must be lower than or equal to the upper boundary in the Range "
            "header."
            if header_empty
            else "Limit should be greater than or equal to zero.",
        )
    page_limit = None if upper is None else upper - lower + 1
    if max_rows is not None:
        page_limit = max_rows if page_limit is None else min(page_limit, max_rows)
    return Page(lower, page_limit)


def read_preferences(request: Request) -> Preferences:
    chosen: dict[str, str] = {}
    max_affected: list[int | None] = []  # the first max-affected, readable or not, decides
    timezones: list[str] = []  # so does the first timezone, applied when it names a zone
    invalid = []
    for header in request.headers.getlist("prefer"):
        for raw in header.split(","):
            preference = raw.strip()
            kind, _, value = preference.partition("=")
            if kind in _PREFERENCES and value in _PREFERENCES[kind]:
                chosen.setdefault(kind, value)
            elif kind == "max-affected":
                max_affected.append(int(value) if _WHOLE_NUMBER.match(value) else None)
            elif kind == "timezone":
                timezones.append(value)
            elif preference:
                invalid.append(preference)
    zone = timezones[0] if timezones and timezones[0] in _known_zones() else None
    preferences = Preferences(chosen, (max_affected or [None])[0], tuple(invalid), zone)
    if preferences.strict and invalid:
        raise GatewayError(
            400,
            "PGRST122",
            "Invalid preferences given with handling=strict",
            f"Invalid preferences: {', '.join(invalid)}",
        )
    return preferences


@cache
def _known_zones() -> frozenset[str]:
    """The IANA zones (what pg_timezone_names lists, from the same database), and UTC."""
    return frozenset(zoneinfo.available_timezones() | {"UTC"})


def negotiate(accept: str | None) -> Media:
    """The first acceptable media type of Accept (by quality, then order); PGRST107 if none."""
    if not accept or not accept.strip():
        return Media("json")
    ranked = []
    for position, part in enumerate(accept.split(",")):
        mime, *parameters = [p.strip() for p in part.split(";")]
        options = dict(p.partition("=")[::2] for p in parameters)
        try:
            quality = float(options.get("q", "1"))
        except ValueError:
            quality = 1.0
        ranked.append((-quality, position, mime.lower(), options.get("nulls") == "stripped"))
    for _, _, mime, strip in sorted(ranked):
        if mime in ("application/json", "*/*"):
            return Media("json")
        if mime == "application/vnd.pgrst.array+json":
            return Media("json", strip)
        if mime in ("application/vnd.pgrst.object+json", "application/vnd.pgrst.object"):
            return Media("object", strip)
        if mime == "text/csv":
            return Media("csv")
    listed = ", ".join(_shown_media(part) for part in accept.split(","))
    raise GatewayError(406, "PGRST107", f"None of these media types are available: {listed}")


def _shown_media(part: str) -> str:
    """A refused media type as PostgREST names it: a plan keeps the media type it is for."""
    mime, *parameters = [p.strip() for p in part.split(";")]
    if not mime.lower().startswith("application/vnd.pgrst.plan"):
        return mime
    options = dict(p.partition("=")[::2] for p in parameters)
    target = options.get("for", "application/json").strip('"')
    return f'{mime}; for="{target}"'


async def read_payload(request: Request, limit: int, columns: tuple[str, ...] | None) -> Payload:
    """The body of POST, PUT and PATCH as JSON (a CSV or form body made into it, every value a
    string), and the columns it sets: `columns` when given, else the keys of the object (or of
    every object of the array, which must all have the same)."""
    raw = await read_body(request, limit)
    content_type = (request.headers.get("content-type") or "application/json").split(";")[0]
    media = content_type.strip().lower()
    if media == "text/csv":
        text = json.dumps(_csv_rows(raw))
    elif media == "application/x-www-form-urlencoded":
        text = json.dumps(dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)))
    elif media == "application/json":
        text = raw.decode("utf-8", "surrogateescape")
    else:
        raise GatewayError(400, "PGRST102", f"Content-Type not acceptable: {content_type}")
    try:
        text.encode("utf-8")  # bytes that are not UTF-8 are no JSON
        value = json.loads(text)
    except (UnicodeEncodeError, ValueError, RecursionError) as error:
        raise GatewayError(400, "PGRST102", "Empty or invalid json") from error
    if columns is not None:
        return Payload(text, isinstance(value, list), columns)
    if isinstance(value, dict):
        return Payload(text, False, tuple(value))
    if not isinstance(value, list) or not value:
        return Payload("[]", True, ())
    keys = set(value[0]) if isinstance(value[0], dict) else None
    if keys is None or any(not isinstance(row, dict) or set(row) != keys for row in value):
        raise GatewayError(400, "PGRST102", "All object keys must match")
    return Payload(text, True, tuple(value[0]))


def _csv_rows(raw: bytes) -> list[dict[str, str | None]]:
    """A CSV body with a header line as PostgREST reads it: one object per line, NULL as null."""
    try:
        lines = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))
    except (UnicodeDecodeError, csv.Error) as error:
        raise GatewayError(400, "PGRST102", str(error)) from error
    if not lines:
        return []
    header, *rows = lines
    if any(len(row) != len(header) for row in rows):
        raise GatewayError(400, "PGRST102", "All lines must have same number of fields")
    return [
        {name: None if value == "NULL" else value for name, value in zip(header, row, strict=True)}
        for row in rows
    ]


def _select(text: str) -> list[SelectItem | Embed]:
    return _checked(parse_select(text))


def _checked(
    items: list[SelectItem | Embed | Aggregate] | tuple[SelectItem | Embed | Aggregate, ...],
) -> list[SelectItem | Embed]:
    """Aggregates refused (PostgREST's default), spreads refused (not served), at any depth."""
    selected: list[SelectItem | Embed] = []
    for item in items:
        if isinstance(item, Aggregate):
            raise GatewayError(400, "PGRST123", "Use of aggregate functions is not allowed")
        if isinstance(item, Embed):
            _checked(item.items)
        selected.append(item)
    return selected


def _embed_paths(
    items: Iterable[SelectItem | Embed | Aggregate], path: tuple[str, ...]
) -> set[tuple[str, ...]]:
    paths = set()
    for item in items:
        if isinstance(item, Embed):
            inner = (*path, item.alias or item.name)
            paths |= {inner} | _embed_paths(item.items, inner)
    return paths


def _require_embedded(embedded: dict[tuple[str, ...], Scope], known: set[tuple[str, ...]]) -> None:
    for path in embedded:
        if path not in known:
            depth = next(i for i in range(1, len(path) + 1) if path[:i] not in known)
            name = path[depth - 1]
            raise GatewayError(
                400,
                "PGRST108",
                f"'{name}' is not an embedded resource in this request",
                hint=f"Verify that '{name}' is included in the 'select' query parameter.",
            )


def _order(text: str) -> list[OrderTerm | RelatedOrder]:
    return parse_order(text)


def _integer(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None
