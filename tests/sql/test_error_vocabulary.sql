-- One error vocabulary: every SQLSTATE our functions raise is one a client can act on, and not
-- found is PT404 everywhere. PostgREST (and the edge's gateway) answers P0002 (no_data_found,
-- also what SELECT ... INTO STRICT raises) with HTTP 500, which tells a client the server broke
-- rather than that the thing it named is not there. Read from the catalog, so a function added
-- by any file or migration is covered.
begin;
select plan(4);

create temporary view our_functions as
select
    p.oid::regprocedure::text as function_name,
    pg_catalog.pg_get_functiondef(p.oid) as definition,
    coalesce(pg_catalog.obj_description(p.oid, 'pg_proc'), '') as description
from pg_catalog.pg_proc as p
where p.pronamespace in ('public'::regnamespace, 'private'::regnamespace)
    and p.prokind in ('f', 'p')
    -- An extension's functions are its own.
    and not exists (
        select from pg_catalog.pg_depend as d
        where d.classid = 'pg_catalog.pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e'
    );

select cmp_ok(
    (select count(*)::integer from our_functions), '>', 100,
    'the catalog holds our functions (public and private)'
);

select is_empty(
    $$select f.function_name from our_functions as f
       where f.definition ~* '(P0002|no_data_found|too_many_rows|P0003|into\s+strict)'
       order by 1$$,
    'no function in public or private raises P0002 (or P0003), by name or through INTO STRICT'
);

select is_empty(
    $$select f.function_name from our_functions as f
       where f.description ~* '(P0002|no_data_found)'
       order by 1$$,
    'no function''s comment promises P0002'
);

-- PT4xx is HTTP 4xx through PostgREST (PT404 not found, PT409 conflict, PT402 insufficient
-- funds, PT403 forbidden, PT429 too many); 22023 invalid value (400); 42501 not allowed (401 or
-- 403); 55000 a server that is not set up (a payment key without its secret), an operator's
-- fault a client cannot cure; 40001 a transaction to roll back and run again (an event store
-- append that would break the order of positions), as Postgres' own serialization failures.
select is_empty(
    $$select f.function_name, c.code[1]
        from our_functions as f
       cross join lateral regexp_matches(f.definition, 'errcode\s*=\s*''([^'']*)''', 'gi')
             as c (code)
       where c.code[1] !~ '^(PT4[0-9]{2}|22023|42501|55000|40001)$'
       order by 1, 2$$,
    'every SQLSTATE our functions raise is in the vocabulary: PT4xx, 22023, 42501, 55000 or 40001'
);

select * from finish();
rollback;
