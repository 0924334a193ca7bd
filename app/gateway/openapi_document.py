"""The OpenAPI (Swagger 2.0) description PostgREST serves at the API root, built from what the
catalog says a role may use: a path per table and view (GET, and POST, PATCH and DELETE where
it is writable), a path per function (POST, and GET when it is STABLE or IMMUTABLE), a
definition per table and view, and the shared query, header and body parameters.

As PostgREST: JSON types from the Postgres types, the Postgres type as `format`, descriptions
(and summaries: a comment's first line) from `comment on`. Stricter where the catalog knows
more and a client loses nothing by being told: integer ranges, enum labels, varchar lengths,
`uuid` as the `uuid` format, no properties beyond a function's arguments or a table's columns,
and only columns an insert must name as required."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from app.gateway.openapi_catalog import (
    Argument,
    Column,
    ExposedSchema,
    Function,
    Relation,
    TypeInfo,
)

_JSON_TYPES = {
    "character varying": "string",
    "character": "string",
    "text": "string",
    "boolean": "boolean",
    "smallint": "integer",
    "integer": "integer",
    "bigint": "integer",
    "numeric": "number",
    "real": "number",
    "double precision": "number",
}
_INTEGER_RANGES = {
    "smallint": (-(2**15), 2**15 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "bigint": (-(2**63), 2**63 - 1),
}
_UNTYPED = frozenset({"json", "jsonb"})  # any JSON value
_VALUE_BOUND = re.compile(r"\(VALUE (>=|<=) (-?\d+(?:\.\d+)?)\)")
_BOUND_KEYWORDS = {">=": "minimum", "<=": "maximum"}
_LENGTH_BOUND = re.compile(r"\(char_length\(VALUE\) (>=|<=) (\d+)\)")
_LENGTH_KEYWORDS = {">=": "minLength", "<=": "maxLength"}
_VALUE_LIST = re.compile(r"\(VALUE = ANY \(ARRAY\[(.*?)\]\)\)")
_LISTED_TEXT = re.compile(r"'((?:[^']|'')*)'::text")
_VALUE_PATTERN = re.compile(r"\(VALUE ~ '((?:[^']|'')*)'::text\)")
_JSON_KIND = re.compile(r"jsonb?_typeof\(VALUE\) = '(object|array)'::text")
_STRING_DEFAULT = re.compile(r"^'((?:[^']|'')*)'::[\w .\"\[\]]+$")
_NUMBER_DEFAULT = re.compile(r"^-?\d+(\.\d+)?$")

MEDIA_TYPES = [
    "application/json",
    "application/vnd.pgrst.object+json;nulls=stripped",
    "application/vnd.pgrst.object+json",
    "text/csv",
]
RPC_MEDIA_TYPES = MEDIA_TYPES[:3]
# What request bodies this edge reads: JSON only (PostgREST's list names every media type it
# answers with; a client that believed it would send bodies that are refused).
BODY_MEDIA_TYPES = ["application/json"]
OPENAPI_MEDIA_TYPE = "application/openapi+json"


def describe(
    schema: ExposedSchema, *, version: str, host: str, scheme: str, base_path: str
) -> dict[str, Any]:
    title, description = _summary_and_description(schema.description)
    return {
        "swagger": "2.0",
        "info": {
            "title": title or "easymo API",
            "description": description or f"The `{schema.name}` schema, as PostgREST serves it.",
            "version": version,
        },
        "externalDocs": {
            "description": "PostgREST Documentation",
            "url": "https://postgrest.org/en/stable/references/api.html",
        },
        "host": host,
        "basePath": base_path,
        "schemes": [scheme],
        "consumes": BODY_MEDIA_TYPES,
        "produces": MEDIA_TYPES,
        "paths": {
            "/": _root_path(),
            **{f"/{r.name}": _relation_path(r) for r in schema.relations},
            **{f"/rpc/{f.name}": _function_path(f) for f in _one_per_name(schema.functions)},
        },
        "definitions": {r.name: _definition(r) for r in schema.relations},
        "parameters": _shared_parameters(schema.relations),
    }


def _root_path() -> dict[str, Any]:
    return {
        "get": {
            "tags": ["Introspection"],
            "summary": "OpenAPI description (this document)",
            "produces": [OPENAPI_MEDIA_TYPE, "application/json"],
            "responses": {"200": {"description": "OK"}},
        }
    }


def _relation_path(relation: Relation) -> dict[str, Any]:
    base = _operation([relation.name], relation.description)
    filters = [_ref(_row_filter_key(relation.name, c.name)) for c in relation.columns]
    body = _ref(f"body.{relation.name}")
    path: dict[str, Any] = {
        "get": {
            **base,
            "parameters": [
                *filters,
                *map(_ref, ("select", "order", "range", "rangeUnit", "offset", "limit")),
                _ref("preferCount"),
            ],
            "responses": {
                "200": {
                    "description": "OK",
                    "schema": {
                        "type": "array",
                        "items": {"$ref": f"#/definitions/{relation.name}"},
                    },
                },
                "206": {"description": "Partial Content"},
            },
        }
    }
    if relation.insertable:
        path["post"] = {
            **base,
            "parameters": [body, _ref("select"), _ref("on_conflict"), _ref("preferPost")],
            "responses": {"201": {"description": "Created"}},
        }
    if relation.updatable:
        path["patch"] = {
            **base,
            "parameters": [*filters, body, _ref("preferReturn")],
            "responses": {"204": {"description": "No Content"}},
        }
    if relation.deletable:
        path["delete"] = {
            **base,
            "parameters": [*filters, _ref("preferReturn")],
            "responses": {"204": {"description": "No Content"}},
        }
    return path


def _function_path(function: Function) -> dict[str, Any]:
    base = {
        **_operation([f"(rpc) {function.name}"], function.description),
        "produces": RPC_MEDIA_TYPES,
        "responses": {"200": {"description": "OK"}},
    }
    post_body = {
        "name": "args",
        "in": "body",
        "required": True,
        "schema": _object_schema(
            function.description,
            {a.name: _type_schema(a.type) for a in _named(function)},
            [a.name for a in _named(function) if a.required],
        ),
    }
    path: dict[str, Any] = {
        "post": {**base, "parameters": [post_body, _ref("preferCount")]},
    }
    if function.volatility != "v":  # PostgREST calls only these with GET
        path["get"] = {**base, "parameters": [_query_argument(a) for a in _named(function)]}
    return path


def _named(function: Function) -> list[Argument]:
    """Arguments a request can name; an unnamed one is reached only by a body passed whole."""
    return [a for a in function.arguments if a.name]


def _query_argument(argument: Argument) -> dict[str, Any]:
    """A function argument in the query string: text, so arrays and JSON are strings there,
    except a variadic one, which repeats the key once per element."""
    parameter = {"name": argument.name, "in": "query", "required": argument.required}
    element = argument.type.element
    if argument.variadic and element is not None:
        items = _scalar_schema(TypeInfo(element, element, None, ()))
        return {**parameter, "type": "array", "collectionFormat": "multi", "items": items}
    schema = _type_schema(argument.type)
    if schema.get("type") in (None, "array", "object"):
        return {**parameter, "type": "string", "format": argument.type.name}
    return {**parameter, **schema}


def _definition(relation: Relation) -> dict[str, Any]:
    properties = {c.name: _column_schema(relation, c) for c in relation.columns}
    # An insert must name a column only when it is NOT NULL with nothing to fill it in.
    required = [c.name for c in relation.columns if not c.nullable and not c.has_default]
    return _object_schema(relation.description, properties, required)


def _column_schema(relation: Relation, column: Column) -> dict[str, Any]:
    schema = _type_schema(column.type)
    notes = ["This is a Primary Key.<pk/>"] if column.name in relation.primary_key else []
    description = column.description
    if notes:
        description = "\n\n".join(filter(None, [description, "Note:\n" + "\n".join(notes)]))
    if description:
        schema["description"] = description
    if column.max_length is not None:
        schema["maxLength"] = column.max_length
    default = _literal_default(schema.get("type"), column.default_expression)
    if default is not None:
        schema["default"] = default
    return schema


def _type_schema(type_info: TypeInfo) -> dict[str, Any]:
    if type_info.element is not None:
        element = TypeInfo(type_info.element, type_info.element, None, ())
        return {"type": "array", "format": type_info.name, "items": _scalar_schema(element)}
    schema = _scalar_schema(type_info)
    schema["format"] = type_info.name
    return schema


def _scalar_schema(type_info: TypeInfo) -> dict[str, Any]:
    base = type_info.base
    json_type = None if base in _UNTYPED else _JSON_TYPES.get(base, "string")
    schema: dict[str, Any] = {"format": type_info.name}
    if json_type is not None:
        schema["type"] = json_type
    if base in _INTEGER_RANGES:
        schema["minimum"], schema["maximum"] = _INTEGER_RANGES[base]
    if base == "uuid":
        schema["format"] = "uuid"
    if type_info.labels:
        schema["enum"] = list(type_info.labels)
    for check in type_info.checks:
        schema.update(domain_check_keywords(check, json_type))
    return schema


def domain_check_keywords(check: str, json_type: str | None) -> dict[str, Any]:
    """What a domain's CHECK says in JSON Schema, for the simple forms domains take here: bounds
    on VALUE or on char_length(VALUE), a list of values, a regular expression that reads the
    same in Python's dialect, a JSON type. Each is a condition of a conjunction, so any found
    holds; a CHECK with OR says nothing certain about each part and is left out."""
    if " OR " in check:
        return {}
    keywords: dict[str, Any] = {}
    if json_type in ("integer", "number"):
        for operator, bound in _VALUE_BOUND.findall(check):
            keywords[_BOUND_KEYWORDS[operator]] = json.loads(bound)
    if json_type == "string":
        for operator, bound in _LENGTH_BOUND.findall(check):
            keywords[_LENGTH_KEYWORDS[operator]] = int(bound)
        listed = _VALUE_LIST.search(check)
        if listed:
            keywords["enum"] = [v.replace("''", "'") for v in _LISTED_TEXT.findall(listed[1])]
        pattern = _VALUE_PATTERN.search(check)
        if pattern and _same_in_python(pattern[1].replace("''", "'")):
            keywords["pattern"] = pattern[1].replace("''", "'")
    json_kind = _JSON_KIND.search(check)
    if json_kind and json_type is None:
        keywords["type"] = json_kind[1]
    return keywords


def _same_in_python(pattern: str) -> bool:
    r"""POSIX classes and Postgres' own escapes (\m, \y) read differently, or not at all."""
    if "[[:" in pattern or re.search(r"\\[mMyYAZ]", pattern):
        return False
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True


def _object_schema(
    description: str | None, properties: dict[str, Any], required: list[str]
) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        # A key that is no argument or column is refused (PGRST202, PGRST204): say so.
        "additionalProperties": False,
    }
    if description:
        schema["description"] = description
    if required:
        schema["required"] = required
    return schema


def _literal_default(json_type: str | None, expression: str | None) -> Any:
    """A default that is a constant of the column's JSON type, as PostgREST shows it; a default
    computed on insert (now(), gen_random_uuid(), a sequence) has no value to show."""
    if expression is None:
        return None
    if json_type == "string":
        match = _STRING_DEFAULT.match(expression)
        return match.group(1).replace("''", "'") if match else None
    if json_type in ("integer", "number") and _NUMBER_DEFAULT.match(expression):
        return json.loads(expression)
    if json_type == "boolean" and expression in ("true", "false"):
        return expression == "true"
    return None


def _shared_parameters(relations: Iterable[Relation]) -> dict[str, Any]:
    def query(name: str, description: str, **schema: Any) -> dict[str, Any]:
        return {"name": name, "in": "query", "description": description, "required": False} | (
            schema or {"type": "string"}
        )

    def prefer(*values: str) -> dict[str, Any]:
        return {
            "name": "Prefer",
            "in": "header",
            "description": "Preference",
            "required": False,
            "type": "string",
            "enum": list(values),
        }

    returns = ("return=representation", "return=minimal", "return=headers-only")
    parameters: dict[str, Any] = {
        "preferCount": prefer("count=exact", "count=planned", "count=estimated"),
        "preferReturn": prefer(*returns),
        "preferPost": prefer(
            *returns, "resolution=ignore-duplicates", "resolution=merge-duplicates"
        ),
        "select": query("select", "Filtering Columns"),
        "on_conflict": query("on_conflict", "On Conflict"),
        "order": query("order", "Ordering"),
        "range": {
            "name": "Range",
            "in": "header",
            "description": "Limiting and Pagination",
            "required": False,
            "type": "string",
        },
        "rangeUnit": {
            "name": "Range-Unit",
            "in": "header",
            "description": "Limiting and Pagination",
            "required": False,
            "type": "string",
            "default": "items",
        },
        "offset": query("offset", "Limiting and Pagination", type="integer", minimum=0),
        "limit": query("limit", "Limiting and Pagination", type="integer", minimum=0),
    }
    for relation in relations:
        parameters[f"body.{relation.name}"] = {
            "name": relation.name,
            "in": "body",
            "description": relation.name,
            "required": False,
            "schema": {"$ref": f"#/definitions/{relation.name}"},
        }
        for column in relation.columns:
            parameters[_row_filter_key(relation.name, column.name)] = {
                "name": column.name,
                "in": "query",
                "required": False,
                "type": "string",
                "format": column.type.name,
                **({"description": column.description} if column.description else {}),
            }
    return parameters


def _row_filter_key(relation: str, column: str) -> str:
    return f"rowFilter.{relation}.{column}"


def _operation(tags: list[str], comment: str | None) -> dict[str, Any]:
    summary, description = _summary_and_description(comment)
    operation: dict[str, Any] = {"tags": tags}
    if summary:
        operation["summary"] = summary
    if description:
        operation["description"] = description
    return operation


def _summary_and_description(comment: str | None) -> tuple[str | None, str | None]:
    """A comment's first line is the summary, the lines after a blank one the description."""
    if not comment:
        return None, None
    summary, _, rest = comment.partition("\n")
    return summary, rest.lstrip("\n") or None


def _one_per_name(functions: Iterable[Function]) -> list[Function]:
    """A path names a function, not an overload: the one with the fewest arguments stands for
    the others (a call is matched on its argument names, whichever overload it reaches)."""
    chosen: dict[str, Function] = {}
    for function in functions:
        known = chosen.get(function.name)
        if known is None or len(function.arguments) < len(known.arguments):
            chosen[function.name] = function
    return list(chosen.values())


def _ref(key: str) -> dict[str, str]:
    return {"$ref": f"#/parameters/{key}"}
