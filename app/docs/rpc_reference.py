"""docs/rpc.md: every function the API serves and every table and view of the API and of
monitoring, written from a migrated database's catalog and `comment on` texts.

`python -m app docs` writes it; tests/py/test_rpc_reference.py fails when it is stale. The HTTP
statuses are the gateway's own mapping (app/gateway/errors.py), so the two cannot disagree.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import psycopg

from app import paths
from app.docs.catalog import ANALYST, API_ROLES, Catalog, Function, Relation, read_catalog
from app.docs.raised_errors import BODY, COMMENT, RaisedError, raised_errors
from app.docs.sources import SourceFiles, read_sources
from app.gateway.errors import status_for
from app.project_config import load_project_config

RPC_REFERENCE = paths.REPO / "docs" / "rpc.md"
COMMAND = "python -m app docs"
_VOLATILITY = {"i": "immutable", "s": "stable", "v": "volatile"}

_PREAMBLE = """\
# API reference

Written by `{command}` from the catalog of a migrated database: do not edit it by hand
(`tests/py/test_rpc_reference.py` fails when it differs from what the command writes). Every
function of the exposed schemas ({schemas}) is listed with its arguments, result, its
`comment on function` text, the roles that may execute it and the errors it can raise; then every
table and view of those schemas and of `monitoring`, with who may read or write it. Where each
name of the documents the project grew from lives: [seed-names.md](seed-names.md).

Call a function as `POST /rest/v1/rpc/<name>` with a JSON object of its named arguments (an
argument with a default may be left out), or `client.rpc("<name>", {{...}})` with the supabase
client. A role without EXECUTE gets 42501: HTTP 401 for anon, 403 for a signed-in user.

**Errors** are the SQLSTATEs the function's text can raise, with the HTTP status the gateway
answers them with (PostgREST's mapping: PTxyz is HTTP xyz). They are found by reading, not by
running: the codes its comment states (*comment*), the `errcode = '...'` of its own body
(*body*), and those of every function of ours it can reach, by name or as a trigger on a table
it writes (that function is named). Not found this way: errors Postgres raises by itself (a CHECK
or unique violation, a bad cast, a timeout) unless the comment states them, and anything reached
through dynamic SQL. The gateway's own errors (PGRST1xx for a malformed request, PGRST202 for an
unknown function or argument names, 401 for a bad token) are in README's *The RPC gateway*.
"""


def write_reference(database_url: str, output: Path | None = None) -> Path:
    output = output or RPC_REFERENCE
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_reference(database_url), encoding="utf-8")
    return output


def render_reference(database_url: str, schemas: Sequence[str] | None = None) -> str:
    exposed = tuple(schemas or load_project_config().schemas)
    with psycopg.connect(database_url) as conn:
        catalog = read_catalog(conn, exposed)
    return render(catalog, exposed, read_sources())


def render(catalog: Catalog, schemas: Sequence[str], sources: SourceFiles) -> str:
    functions = catalog.exposed
    names = Counter(f.qualified_name for f in functions)
    listed = ", ".join(f"`{schema}`" for schema in sorted(set(schemas)))
    parts = [_PREAMBLE.format(command=COMMAND, schemas=listed)]
    parts.append(_function_index(functions))
    parts.extend(
        _function_section(f, catalog, sources, names[f.qualified_name] > 1) for f in functions
    )
    parts.append(_relations_section(catalog.relations, sources))
    return "\n".join(parts).rstrip("\n") + "\n"


def _function_index(functions: Sequence[Function]) -> str:
    lines = [
        "## Functions",
        "",
        f"{len(functions)} functions. Who may execute each:",
        "",
        "| function | " + " | ".join(API_ROLES) + " |",
        "|---|" + "---|" * len(API_ROLES),
    ]
    names = Counter(f.qualified_name for f in functions)
    for f in functions:
        marks = " | ".join("yes" if role in f.executable_by else "" for role in API_ROLES)
        anchor = _anchor(f, names[f.qualified_name] > 1)
        lines.append(f"| [`{f.qualified_name}`](#{anchor}) | {marks} |")
    return "\n".join(lines) + "\n"


def _function_section(
    function: Function, catalog: Catalog, sources: SourceFiles, overloaded: bool
) -> str:
    heading = function.qualified_name + (f"({function.identity})" if overloaded else "")
    lines = [f'<a id="{_anchor(function, overloaded)}"></a>', f"### `{heading}`", ""]
    lines += ["```sql", _signature(function), "```", ""]
    if function.comment:
        lines += [function.comment, ""]
    else:
        lines += ["*No comment.*", ""]
    inputs = function.inputs
    if inputs:
        lines += ["| argument | type | default |", "|---|---|---|"]
        lines += [
            f"| `{a.name or '(unnamed)'}` | `{_cell(a.type)}` | "
            f"{'required' if a.default is None else f'`{_cell(a.default)}`'} |"
            for a in inputs
        ]
        lines.append("")
    else:
        lines += ["No arguments.", ""]
    security = "security definer" if function.security_definer else "security invoker"
    lines += [
        f"Returns `{function.returns}`; {_VOLATILITY[function.volatility]}, {security}. "
        f"Defined in {_file(sources.of('function', function.qualified_name))}.",
        "",
        f"Roles: {_roles(function.executable_by)}.",
        "",
    ]
    lines += _errors_table(raised_errors(function, catalog))
    return "\n".join(lines) + "\n"


def _signature(function: Function) -> str:
    arguments = []
    for a in function.inputs:
        text = f"{a.name} {a.type}".strip() if a.name else a.type
        if a.mode == "v":
            text = "variadic " + text
        if a.default is not None:
            text += f" default {a.default}"
        arguments.append(text)
    if not arguments:
        return f"{function.qualified_name}() returns {function.returns}"
    inner = ",\n".join(f"    {a}" for a in arguments)
    return f"{function.qualified_name}(\n{inner}\n) returns {function.returns}"


def _roles(roles: Iterable[str]) -> str:
    granted = list(roles)
    if not granted:
        return "none of the API roles (the database owner only)"
    return ", ".join(granted)


def _errors_table(errors: Sequence[RaisedError]) -> list[str]:
    if not errors:
        return ["Errors: none found in its text.", ""]
    lines = ["| SQLSTATE | HTTP | condition | found in |", "|---|---|---|---|"]
    for error in errors:
        found = ", ".join(s if s in (COMMENT, BODY) else f"`{s}`" for s in error.found_in)
        lines.append(
            f"| `{error.sqlstate}` | {_http(error.sqlstate)} | {error.condition} | {found} |"
        )
    return [*lines, ""]


def _http(sqlstate: str) -> str:
    signed_in = status_for(sqlstate, anonymous=False)
    anonymous = status_for(sqlstate, anonymous=True)
    if signed_in == anonymous:
        return str(signed_in)
    return f"{anonymous} anon, {signed_in} others"


def _relations_section(relations: Sequence[Relation], sources: SourceFiles) -> str:
    lines = ["## Tables and views", ""]
    lines.append(
        "Each table and view of the exposed schemas and of `monitoring`, with what each role may "
        "do to it (`(columns)`: on some columns only; a table's rows are further limited by its "
        "RLS policies, in the functions-sql file of the domain that owns it). Partitions are "
        "left out: they live in schema `partitions`, with no grants."
    )
    lines.append("")
    for schema in sorted({r.schema for r in relations}):
        in_schema = [r for r in relations if r.schema == schema]
        roles = (ANALYST,) if schema == "monitoring" else API_ROLES
        lines += [f"### `{schema}`", ""]
        lines.append("| name | kind | RLS | " + " | ".join(roles) + " | defined in | about |")
        lines.append("|---|---|---|" + "---|" * len(roles) + "---|---|")
        for r in in_schema:
            granted = " | ".join(", ".join(r.privileges.get(role, ())) for role in roles)
            is_view = r.kind.endswith("view")
            rls = "yes" if r.rls else ("" if is_view else "no")
            source = _file(sources.of("view" if is_view else "table", f"{r.schema}.{r.name}"))
            about = _cell(r.comment) or "*none*"
            lines.append(f"| `{r.name}` | {r.kind} | {rls} | {granted} | {source} | {about} |")
        lines.append("")
    return "\n".join(lines)


def _file(path: str | None) -> str:
    return f"`{path}`" if path else "no file of the repository (made by hand?)"


def _anchor(function: Function, overloaded: bool) -> str:
    anchor = f"{function.schema}-{function.name}"
    if overloaded:
        anchor += "-" + "-".join("".join(c for c in a.type if c.isalnum()) for a in function.inputs)
    return anchor


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")
