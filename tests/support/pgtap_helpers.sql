-- Helpers every pgTAP file may call, installed once in the test template (schema tests) rather
-- than defined again at the top of each file.

create schema tests;
comment on schema tests is 'Helpers for the pgTAP files; exists only in test databases.';

-- pgTAP's functions are not executable by the API roles, so a statement that must run as one
-- goes through this: it switches role for p_sql only. On error the caller's subtransaction
-- (throws_ok's) rolls the switch back; on success the helper switches back itself.
create function tests.as_role(p_role text, p_sql text)
returns void
language plpgsql
as $$
declare
    v_previous text := current_setting('role');
begin
    perform set_config('role', p_role, true);
    execute p_sql;
    perform set_config('role', v_previous, true);
end;
$$;

-- An API request: its JWT claims and its role, for p_sql only.
create function tests.as_caller(p_role text, p_claims text, p_sql text)
returns void
language plpgsql
as $$
declare
    v_previous text := coalesce(current_setting('request.jwt.claims', true), '');
begin
    perform set_config('request.jwt.claims', p_claims, true);
    perform tests.as_role(p_role, p_sql);
    perform set_config('request.jwt.claims', v_previous, true);
end;
$$;

-- The child (in schema partitions) holding this month's rows of p_parent.
create function tests.current_child(p_parent regclass)
returns text
language sql
as $$
    select c.table_name::text
    from private.partition_children(p_parent) as c
    where not c.is_default and now() >= c.range_from and now() < c.range_to
$$;

-- A Meta text message from a phone (digits) at a Unix time, as the Cloud API writes it.
create function tests.meta_text(p_from text, p_wamid text, p_ts text, p_body text)
returns jsonb
language sql
as $$
    select jsonb_build_object(
        'from', p_from, 'id', p_wamid, 'timestamp', p_ts, 'type', 'text',
        'text', jsonb_build_object('body', p_body)
    )
$$;

-- Setup that several pgTAP files share: tests/sql/fixtures/<name>.sql, stored here with the
-- template (tests/support/server.py) since a file run through psycopg cannot include another.
-- A file runs one with `call tests.fixture('<name>')`: its temporary tables, its pg_temp helper
-- functions and its rows are then the file's own, gone at its rollback.
create table tests.fixtures (
    name text primary key,
    body text not null
);

create procedure tests.fixture(p_name text)
language plpgsql
as $$
declare
    v_body text;
begin
    select f.body into strict v_body from tests.fixtures as f where f.name = p_name;
    execute v_body;
end;
$$;
