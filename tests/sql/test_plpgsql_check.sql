-- plpgsql_check over every PL/pgSQL function of ours: Postgres checks a function's SQL only when
-- a statement first runs, so a dropped column or a misspelt name in a branch no test reaches is
-- found by a user. plpgsql_check plans every statement of every branch now. Each trigger
-- function is checked against every table it is attached to (NEW and OLD are that table's rows,
-- transition tables by the trigger's names for them), and every function as it runs: with the
-- empty search_path its definition pins, so an unqualified name is an error here too.
-- Warnings are not failures (reviewed ones: implicit casts of literals, a loop that only ends by
-- returning); errors are, each listed with its function and line.
begin;
select plan(3);

-- Preloaded by the test cluster; the extension's functions are made here, in this clone only.
create extension if not exists plpgsql_check with schema extensions;

-- Supabase's Vault, as a hosted project has it: the payment key functions read it only when it
-- exists, and here it does not. This stand-in has the columns they read.
create schema if not exists vault;
create view vault.decrypted_secrets as
select null::uuid as id, null::text as name, null::text as decrypted_secret
where false;

-- Proof that the check finds what it is for: a misspelt column in a branch that never runs.
create function private.plpgsql_check_probe()
returns void
language plpgsql
set search_path = ''
as $$
begin
    if false then
        update public.users set display_nmae = 'x';
    end if;
end;
$$;

create temporary table checked as
select
    p.oid,
    p.oid::regprocedure::text as function_name,
    coalesce(t.tgrelid, 0) as relid,
    t.tgnewtable,
    t.tgoldtable
from pg_catalog.pg_proc as p
inner join pg_catalog.pg_language as l on p.prolang = l.oid
-- One check per table the function is a trigger on, with the transition tables its triggers
-- name (the update trigger names both; a partition's copy of the truncate trigger neither, but
-- the function's other branches still read them).
left join lateral (
    select
        g.tgrelid,
        max(max(g.tgnewtable)) over () as tgnewtable,
        max(max(g.tgoldtable)) over () as tgoldtable
    from pg_catalog.pg_trigger as g
    where g.tgfoid = p.oid and not g.tgisinternal
    group by g.tgrelid
) as t on true
where l.lanname = 'plpgsql'
    and p.pronamespace in ('public'::regnamespace, 'private'::regnamespace);

set local search_path = '';
create temporary table findings as
select
    c.function_name,
    c.relid::regclass::text as on_table,
    f.lineno,
    f.sqlstate,
    f.level,
    f.message
from pg_temp.checked as c
cross join lateral extensions.plpgsql_check_function_tb(
    c.oid,
    c.relid,
    fatal_errors => false,
    other_warnings => true,
    performance_warnings => false,
    extra_warnings => true,
    newtable => c.tgnewtable,
    oldtable => c.tgoldtable
) as f;
reset search_path;

select cmp_ok(
    (select count(distinct oid)::integer from checked), '>', 100,
    'plpgsql_check ran over every PL/pgSQL function in public and private'
);
select results_eq(
    $$select function_name, sqlstate from findings
       where level = 'error' and function_name = 'private.plpgsql_check_probe()'$$,
    $$values ('private.plpgsql_check_probe()', '42703')$$,
    'it reports a misspelt column in a branch that never runs'
);
select is_empty(
    $$select function_name, on_table, lineno, sqlstate, message from findings
       where level = 'error' and function_name <> 'private.plpgsql_check_probe()'
       order by 1, 2, 3$$,
    'plpgsql_check finds no error in any PL/pgSQL function in public or private'
);

select * from finish();
rollback;
