-- Fixture functions for tests/py/test_gateway*.py: one of each shape and each failure the RPC
-- gateway must translate as PostgREST does. Loaded as superuser into a clone of the template.
-- Every function pins search_path and grants EXECUTE explicitly: the project's defaults revoke
-- it from anon, authenticated and PUBLIC for new functions (service_role keeps it).

-- Tables ------------------------------------------------------------------------------------

-- Every call of gw_log_call leaves a row here, so a test can prove a refused call never ran.
create table public.gw_call_log (
    id uuid primary key default pg_catalog.gen_random_uuid(),
    tag text not null,
    role_name text not null default current_user,
    created_at timestamptz not null default pg_catalog.now()
);
grant select, insert on public.gw_call_log to anon, authenticated, service_role;

create table public.gw_unique_keys (key text primary key);
grant select, insert on public.gw_unique_keys to anon, authenticated, service_role;

create table public.gw_parents (id integer primary key);
create table public.gw_children (
    id integer primary key,
    parent_id integer not null references public.gw_parents (id)
);
grant select, insert on public.gw_parents, public.gw_children to anon, authenticated, service_role;

create table public.gw_counters (key text primary key, value bigint not null);
grant select, insert, update on public.gw_counters to anon, authenticated, service_role;

-- Rows only their owner sees; anon has no grant at all (a call as anon is refused, 401).
create table public.gw_notes (
    id integer primary key,
    owner_id uuid not null,
    body text not null
);
alter table public.gw_notes enable row level security;
create policy gw_notes_owner_reads on public.gw_notes
for select to authenticated using (owner_id = (select auth.uid()));
grant select on public.gw_notes to authenticated, service_role;
insert into public.gw_notes (id, owner_id, body) values
(1, '00000000-0000-4000-8000-000000000001', 'first owner''s note'),
(2, '00000000-0000-4000-8000-000000000002', 'second owner''s note');

create type public.gw_point as (x integer, y integer);

-- Result shapes -----------------------------------------------------------------------------

create function public.gw_add(a integer, b integer)
returns integer
language sql
immutable
set search_path = ''
as $$ select a + b $$;

create function public.gw_hello(p_name text default 'world')
returns text
language sql
immutable
set search_path = ''
as $$ select 'hello ' || p_name $$;

-- A percent sign in a function's and an argument's name: psycopg would read it as a placeholder.
create function public."gw_100%_sure"("p_%s" text default 'yes')
returns text
language sql
immutable
set search_path = ''
as $$ select 'sure: ' || "p_%s" $$;

create function public.gw_json()
returns json
language sql
immutable
set search_path = ''
as $$ select '{"x": 1, "list": [1, "two", null], "nested": {"ok": true}}'::json $$;

create function public.gw_null()
returns integer
language sql
immutable
set search_path = ''
as $$ select null::integer $$;

create function public.gw_series(n integer)
returns setof integer
language sql
immutable
set search_path = ''
as $$ select pg_catalog.generate_series(1, n) $$;

create function public.gw_rows(n integer)
returns table (id integer, label text)
language sql
immutable
set search_path = ''
as $$ select i, 'row ' || i from pg_catalog.generate_series(1, n) as i $$;

create function public.gw_ids(n integer)
returns table (id integer)
language sql
immutable
set search_path = ''
as $$ select pg_catalog.generate_series(1, n) $$;

create function public.gw_pair(out id integer, out label text)
language sql
immutable
set search_path = ''
as $$ select 7, 'seven' $$;

create function public.gw_point_of(p_x integer, p_y integer)
returns public.gw_point
language sql
immutable
set search_path = ''
as $$ select row(p_x, p_y)::public.gw_point $$;

create function public.gw_touch(p_key text)
returns void
language sql
volatile
set search_path = ''
as $$ insert into public.gw_unique_keys (key) values (p_key) $$;

-- GET arguments arrive as text and are typed by Postgres' input functions.
create function public.gw_echo(p_text text, p_int integer, p_flag boolean, p_tags text [])
returns json
language sql
immutable
set search_path = ''
as $$
    select pg_catalog.json_build_object(
        'text', p_text, 'int', p_int, 'flag', p_flag, 'tags', p_tags,
        'tag_count', pg_catalog.cardinality(p_tags)
    )
$$;

create function public.gw_sum(p_values integer [])
returns integer
language sql
immutable
set search_path = ''
as $$ select sum(v)::integer from pg_catalog.unnest(p_values) as v $$;

-- Two candidates for the same argument names: PostgREST cannot choose (300 PGRST203).
create function public.gw_overloaded(p_value integer)
returns text
language sql
immutable
set search_path = ''
as $$ select 'integer' $$;

create function public.gw_overloaded(p_value text)
returns text
language sql
immutable
set search_path = ''
as $$ select 'text' $$;

-- One unnamed jsonb parameter: the whole request body is passed to it.
create function public.gw_whole_body(jsonb)
returns jsonb
language sql
immutable
set search_path = ''
as $$ select pg_catalog.jsonb_build_object('received', $1) $$;

-- Who is calling and what PostgREST told Postgres about the request.
create function public.gw_context()
returns jsonb
language sql
stable
set search_path = ''
as $$
    select pg_catalog.jsonb_build_object(
        'auth_role', auth.role(),
        'auth_uid', auth.uid(),
        'current_user', current_user,
        'claims', nullif(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb,
        'headers', nullif(pg_catalog.current_setting('request.headers', true), '')::jsonb,
        'cookies', nullif(pg_catalog.current_setting('request.cookies', true), '')::jsonb,
        'method', pg_catalog.current_setting('request.method', true),
        'path', pg_catalog.current_setting('request.path', true),
        'statement_timeout', pg_catalog.current_setting('statement_timeout'),
        'read_only', pg_catalog.current_setting('transaction_read_only')
    )
$$;

create function public.gw_log_call(p_tag text)
returns text
language sql
volatile
set search_path = ''
as $$
    insert into public.gw_call_log (tag) values (p_tag);
    select current_user::text;
$$;

create function public.gw_increment(p_key text)
returns bigint
language sql
volatile
set search_path = ''
as $$
    insert into public.gw_counters as c (key, value) values (p_key, 1)
    on conflict (key) do update set value = c.value + 1
    returning c.value
$$;

create function public.gw_my_notes()
returns setof public.gw_notes
language sql
stable
security invoker
set search_path = ''
as $$ select n.* from public.gw_notes as n order by n.id $$;

-- Errors ------------------------------------------------------------------------------------

create function public.gw_raise_exception()
returns integer
language plpgsql
immutable
set search_path = ''
as $$
begin
    raise exception 'the ride was already paid'
        using detail = 'ride 42 has payment 7', hint = 'look up payment 7 instead';
end;
$$;

create function public.gw_insert_unique(p_key text)
returns text
language sql
volatile
set search_path = ''
as $$ insert into public.gw_unique_keys (key) values (p_key) returning key $$;

create function public.gw_insert_orphan()
returns integer
language sql
volatile
set search_path = ''
as $$ insert into public.gw_children (id, parent_id) values (1, 999) returning id $$;

create function public.gw_invalid_value()
returns integer
language plpgsql
immutable
set search_path = ''
as $$
begin
    raise exception 'amount must be positive' using errcode = '22023', detail = 'amount: -5';
end;
$$;

create function public.gw_not_found()
returns integer
language plpgsql
immutable
set search_path = ''
as $$
begin
    raise exception 'transaction not found' using errcode = 'P0002', hint = 'check the id';
end;
$$;

create function public.gw_payment_required()
returns integer
language plpgsql
immutable
set search_path = ''
as $$
begin
    raise sqlstate 'PT402' using message = 'wallet balance too low', detail = 'balance: 3';
end;
$$;

create function public.gw_connection_failure()
returns integer
language plpgsql
immutable
set search_path = ''
as $$
begin
    raise sqlstate '08006' using message = 'upstream connection lost';
end;
$$;

create function public.gw_cardinality()
returns integer
language sql
immutable
set search_path = ''
as $$ select (select i from pg_catalog.generate_series(1, 2) as i) $$;

create function public.gw_full_control()
returns integer
language plpgsql
immutable
set search_path = ''
as $$
begin
    raise sqlstate 'PGRST' using
        message = '{"code": "GW418", "message": "short and stout", "details": "teapot", '
        || '"hint": "brew coffee elsewhere"}',
        detail = '{"status": 418, "headers": {"X-Powered-By": "Teapot", "Retry-After": "7"}}';
end;
$$;

create function public.gw_bad_full_control()
returns integer
language plpgsql
immutable
set search_path = ''
as $$
begin
    raise sqlstate 'PGRST' using message = 'not json', detail = '{"status": 400, "headers": {}}';
end;
$$;

-- A volatile writer (405 under GET) and a STABLE function that writes through it (405 under
-- POST too: PostgREST runs STABLE and IMMUTABLE functions in a read-only transaction).
create function public.gw_write(p_tag text)
returns text
language sql
volatile
set search_path = ''
as $$
    insert into public.gw_call_log (tag) values (p_tag);
    select p_tag;
$$;

create function public.gw_stable_write(p_tag text)
returns text
language sql
stable
set search_path = ''
as $$ select public.gw_write(p_tag) $$;

-- Writes, then fails: the write must not survive.
create function public.gw_write_then_fail(p_tag text)
returns integer
language plpgsql
volatile
set search_path = ''
as $$
begin
    insert into public.gw_call_log (tag) values (p_tag);
    raise exception 'failed after writing' using errcode = '22023';
end;
$$;

-- Writes two rows and returns them: with Accept: vnd.pgrst.object+json the call is refused
-- (PGRST116) and must be rolled back.
create function public.gw_write_rows(p_tag text)
returns setof text
language sql
volatile
set search_path = ''
as $$
    insert into public.gw_call_log (tag)
    select p_tag from pg_catalog.generate_series(1, 2)
    returning tag
$$;

-- Only service_role may execute it.
create function public.gw_service_only()
returns text
language sql
immutable
set search_path = ''
as $$ select 'secret' $$;

-- Grants ------------------------------------------------------------------------------------

-- Whatever the defaults did, start from nothing, then grant exactly what each test needs.
do $$
declare
    fn regprocedure;
begin
    for fn in
        select p.oid::regprocedure from pg_catalog.pg_proc as p
        where p.pronamespace = 'public'::regnamespace and p.proname like 'gw\_%'
    loop
        execute pg_catalog.format('revoke all on function %s from public, anon, authenticated', fn);
    end loop;
end
$$;

grant execute on function
public.gw_add(integer, integer),
public.gw_hello(text),
public."gw_100%_sure"(text),
public.gw_json(),
public.gw_null(),
public.gw_series(integer),
public.gw_rows(integer),
public.gw_ids(integer),
public.gw_pair(),
public.gw_point_of(integer, integer),
public.gw_touch(text),
public.gw_echo(text, integer, boolean, text []),
public.gw_sum(integer []),
public.gw_overloaded(integer),
public.gw_overloaded(text),
public.gw_whole_body(jsonb),
public.gw_context(),
public.gw_log_call(text),
public.gw_increment(text),
public.gw_my_notes(),
public.gw_raise_exception(),
public.gw_insert_unique(text),
public.gw_insert_orphan(),
public.gw_invalid_value(),
public.gw_not_found(),
public.gw_payment_required(),
public.gw_connection_failure(),
public.gw_cardinality(),
public.gw_full_control(),
public.gw_bad_full_control(),
public.gw_write(text),
public.gw_stable_write(text),
public.gw_write_then_fail(text),
public.gw_write_rows(text)
to anon, authenticated, service_role;

grant execute on function public.gw_service_only() to service_role;
