"""docs/rpc.md is what `python -m app docs` writes from a migrated database, and what it says
about errors is read from the functions' text, with the gateway's own HTTP statuses."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import pytest

from app.cli import main
from app.docs import rpc_reference
from app.docs.rpc_reference import COMMAND, RPC_REFERENCE, render_reference
from tests.support.db import query


def test_docs_rpc_md_is_current(database_url: str):
    written = render_reference(database_url)
    committed = RPC_REFERENCE.read_text(encoding="utf-8") if RPC_REFERENCE.exists() else ""
    if written != committed:
        diff = difflib.unified_diff(
            committed.splitlines(), written.splitlines(), "docs/rpc.md", "catalog", lineterm=""
        )
        shown = "\n".join(list(diff)[:120])
        pytest.fail(
            "docs/rpc.md is stale: apply the definitions to the local stack "
            "(`make up`, then `python -m app db migrate`), run "
            f"`{COMMAND}` (or `{COMMAND} --database-url <a migrated database>`) and commit "
            f"docs/rpc.md.\n{shown}"
        )


def section(reference: str, function: str) -> str:
    start = reference.index(f"### `{function}`")
    end = reference.find("\n### ", start + 1)
    return reference[start : end if end > 0 else None]


def test_a_function_shows_arguments_defaults_roles_and_errors(database_url: str):
    create_transaction = section(render_reference(database_url), "public.create_transaction")
    assert "| `p_user_id` | `uuid` | required |" in create_transaction
    assert "| `p_metadata` | `jsonb` | `'{}'::jsonb` |" in create_transaction
    assert "Roles: service_role." in create_transaction
    assert "Defined in `supabase/functions-sql/70_transactions.sql`." in create_transaction
    # The HTTP column is the gateway's mapping: PTxyz is xyz, 22023 a 400.
    assert "| `22023` | 400 | invalid_parameter_value | comment," in create_transaction
    assert (
        "| `PT410` | 410 | HTTP 410 through PostgREST | comment, `private.require_not_erased` |"
        in (create_transaction)
    )
    balance = section(render_reference(database_url), "public.get_wallet_balance")
    assert "Roles: authenticated, service_role." in balance
    # Its body is one line calling a definer in private: the errors come from there.
    assert "| `42501` | 401 anon, 403 others | insufficient_privilege |" in balance


PROBE = """
create table public.docs_probe_rows (id integer primary key);
create function private.docs_probe_refuse() returns trigger language plpgsql
set search_path = '' as $$
begin
    raise exception 'refused' using errcode = 'PT418';
end;
$$;
create trigger docs_probe_refuse before update on public.docs_probe_rows
for each row execute function private.docs_probe_refuse();
create function private.docs_probe_check(p_n integer) returns void language plpgsql
set search_path = '' as $$
begin
    if p_n > 10000 then
        raise exception 'too big' using errcode = '22003';
    end if;
end;
$$;
create function public.docs_probe(p_n integer, p_note text default 'x') returns integer
language plpgsql set search_path = '' as $$
begin
    perform private.docs_probe_check(p_n);
    insert into public.docs_probe_rows (id) values (p_n) on conflict (id) do update set id = p_n;
    return p_n;
end;
$$;
comment on function public.docs_probe(integer, text) is
'At most 10000 rows (a number, not a SQLSTATE); an unknown one is PT404. ERROR is a word.';
create function public.docs_probe_quiet() returns integer language sql set search_path = ''
return 1;
grant execute on function public.docs_probe_quiet() to anon;
"""


def test_errors_are_found_in_the_comment_the_body_its_callees_and_triggers(database_url: str):
    query(database_url, PROBE)
    probe = section(render_reference(database_url), "public.docs_probe")
    errors = [line for line in probe.splitlines() if re.match(r"\| `[0-9A-Z]{5}` \|", line)]
    assert errors == [
        "| `22003` | 400 | numeric_value_out_of_range | `private.docs_probe_check` |",
        "| `PT404` | 404 | HTTP 404 through PostgREST | comment |",
        # an insert ... on conflict do update fires the table's update triggers too
        "| `PT418` | 418 | HTTP 418 through PostgREST | `private.docs_probe_refuse` |",
    ]
    assert "| `p_note` | `text` | `'x'::text` |" in probe
    assert "Roles: service_role." in probe
    assert "Defined in no file of the repository (made by hand?)." in probe
    quiet = section(render_reference(database_url), "public.docs_probe_quiet")
    assert "Errors: none found in its text." in quiet
    assert "Roles: anon, service_role." in quiet


def test_cli_writes_the_reference(database_url, tmp_path: Path, monkeypatch, capsys):
    target = tmp_path / "docs" / "rpc.md"
    monkeypatch.setattr(rpc_reference, "RPC_REFERENCE", target)
    assert main(["docs", "--database-url", database_url]) == 0
    assert target.read_text(encoding="utf-8") == render_reference(database_url)
    assert capsys.readouterr().out.startswith("wrote ")
