-- The database linter's rules, as they apply to a schema like ours, checked on the migrated
-- database so that a regression fails the suite. Supabase runs its linter (splinter) in the
-- dashboard; these are the same rules in our words, some made stricter where our design allows
-- it. Each rule is a view listing what breaks it: the suite wants it empty, and the probes at
-- the end show the rules find what they look for.
--
-- Exposed schemas are those the API serves: supabase/config.toml [api] schemas, ["public"].
-- Ours are public, private, monitoring, partitions and counters; an extension's own objects are its
-- maintainers' and left out.
--
-- Not checked: unused indexes and table bloat (they depend on the workload, not the schema),
-- outdated extension versions (on the server), and Supabase features we do not use (storage
-- buckets, pg_graphql, pgmq, anonymous sign-ins). Sensitive columns exposed without RLS cannot
-- happen while every exposed table has RLS (lint_rls_off_exposed).
begin;
select plan(22);

create temporary view our_schemas (nspname) as
values ('public'::name), ('private'), ('monitoring'), ('partitions'), ('counters');

create temporary view exposed_schemas (nspname) as
values ('public'::name);

create temporary view api_roles (rolname) as
values ('anon'::name), ('authenticated');

-- Relations of ours, not an extension's.
create temporary view our_relations as
select
    c.oid,
    c.relkind,
    c.relrowsecurity,
    c.reloptions,
    format('%I.%I', n.nspname, c.relname) as name,
    n.nspname in (select e.nspname from exposed_schemas as e) as exposed,
    exists (
        select from api_roles as r
        where has_table_privilege(r.rolname, c.oid, 'select, insert, update, delete')
    ) as api_may_touch,
    exists (
        select from api_roles as r where has_table_privilege(r.rolname, c.oid, 'select')
    ) as api_may_read
from pg_catalog.pg_class as c
inner join pg_catalog.pg_namespace as n on c.relnamespace = n.oid
where n.nspname in (select s.nspname from our_schemas as s)
    and not exists (
        select from pg_catalog.pg_depend as d
        where d.classid = 'pg_catalog.pg_class'::regclass and d.objid = c.oid and d.deptype = 'e'
    );

create temporary view our_policies as
select
    format('%I.%I', p.schemaname, p.tablename) as table_name,
    p.policyname::text as policy_name,
    p.permissive = 'PERMISSIVE' as permissive,
    p.roles,
    p.cmd,
    concat(p.qual, ' ', p.with_check) as expressions,
    p.qual,
    p.with_check
from pg_catalog.pg_policies as p
where p.schemaname in (select s.nspname from our_schemas as s);

create temporary view our_functions as
select
    p.oid,
    p.oid::regprocedure::text as name,
    p.prosecdef,
    p.proconfig,
    n.nspname in (select e.nspname from exposed_schemas as e) as exposed
from pg_catalog.pg_proc as p
inner join pg_catalog.pg_namespace as n on p.pronamespace = n.oid
where n.nspname in (select s.nspname from our_schemas as s)
    and not exists (
        select from pg_catalog.pg_depend as d
        where d.classid = 'pg_catalog.pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e'
    );

-- Security -----------------------------------------------------------------------------------------

-- splinter: anon_ and authenticated_security_definer_function_executable. A definer function
-- runs as its owner and bypasses RLS; one the API serves to anon or a signed-in user is a
-- privilege escalation one bug away. Such an RPC is an invoker over a definer body in private.
create temporary view lint_definer_rpc as
select f.name, r.rolname
from our_functions as f
cross join api_roles as r
where f.exposed and f.prosecdef and has_function_privilege(r.rolname, f.oid, 'execute');

-- splinter: function_search_path_mutable. Unpinned, a function resolves names through the
-- caller's search_path (a definer one, with its owner's rights).
create temporary view lint_search_path as
select f.name
from our_functions as f
where not exists (
    select from unnest(coalesce(f.proconfig, '{}')) as c (setting)
    where c.setting like 'search_path=%'
);

-- splinter: rls_disabled_in_public, there for tables API roles can read; here every table in an
-- exposed schema, partitioned ones too, whatever its grants are today.
create temporary view lint_rls_off_exposed as
select r.name
from our_relations as r
where r.exposed and r.relkind in ('r', 'p') and not r.relrowsecurity;

-- splinter: policy_exists_rls_disabled. Policies on a table without RLS do nothing.
create temporary view lint_policies_rls_off as
select r.name
from our_relations as r
where r.relkind in ('r', 'p') and not r.relrowsecurity
    and exists (select from pg_catalog.pg_policy as p where p.polrelid = r.oid);

-- splinter: rls_enabled_no_policy (INFO, 21 of them here). RLS with no policy denies every role
-- but the owner and service_role (bypassrls): we use it on purpose for service-only tables
-- (queues, one-time codes, every partition). Decided: allowed only where no API role holds any
-- privilege on the table, so that no policy is the intent, not a policy forgotten behind a grant.
create temporary view lint_no_policy_granted as
select r.name
from our_relations as r
where r.relkind in ('r', 'p') and r.relrowsecurity and r.api_may_touch
    and not exists (select from pg_catalog.pg_policy as p where p.polrelid = r.oid);

-- splinter: rls_policy_always_true. A permissive policy letting API roles write any row.
create temporary view lint_always_true as
select p.table_name, p.policy_name
from our_policies as p
where p.permissive
    and p.roles && array['public', 'anon', 'authenticated']::name []
    and (
        (
            p.cmd in ('UPDATE', 'DELETE', 'ALL')
            and (p.qual is null or replace(p.qual, ' ', '') in ('true', '(true)'))
        )
        or (
            p.cmd in ('INSERT', 'UPDATE', 'ALL')
            and replace(coalesce(p.with_check, p.qual, 'true'), ' ', '') in ('true', '(true)')
        )
    );

-- splinter: rls_references_user_metadata. user_metadata is the user's own to edit.
create temporary view lint_user_metadata as
select p.table_name, p.policy_name
from our_policies as p
where p.expressions ~ 'user_metadata';

-- splinter: security_definer_view. A view reads as its owner unless security_invoker: one the
-- API serves shows API roles every row, past RLS. (monitoring's views are the analyst's, in a
-- schema the API does not serve, and read as their owner on purpose.)
create temporary view lint_definer_view as
select r.name
from our_relations as r
where r.exposed and r.relkind = 'v' and r.api_may_read
    and not coalesce(
        lower(r.reloptions::text)::text [] && array[
            'security_invoker=1', 'security_invoker=true', 'security_invoker=yes',
            'security_invoker=on'
        ],
        false
    );

-- splinter: materialized_view_in_api, foreign_table_in_api. Neither has RLS.
create temporary view lint_matview_foreign as
select r.name
from our_relations as r
where r.exposed and r.relkind in ('m', 'f') and r.api_may_read;

-- splinter: auth_users_exposed. auth.users holds every account's email and phone.
create temporary view lint_auth_users as
select distinct r.name
from our_relations as r
inner join pg_catalog.pg_rewrite as w on r.oid = w.ev_class
inner join pg_catalog.pg_depend as d
    on d.classid = 'pg_catalog.pg_rewrite'::regclass and w.oid = d.objid
where r.exposed and r.relkind in ('v', 'm') and r.api_may_read
    and d.refobjid = 'auth.users'::regclass;

-- splinter: extension_in_public. An extension's functions in public are RPCs, and its names
-- collide with ours.
create temporary view lint_extension_public as
select e.extname
from pg_catalog.pg_extension as e
where e.extnamespace = 'public'::regnamespace and e.extname <> 'plpgsql';

-- splinter: fkey_to_auth_unique. Supabase may change auth's unique constraints, not its keys.
create temporary view lint_fkey_auth_unique as
select c.conrelid::regclass::text as table_name, c.conname
from pg_catalog.pg_constraint as c
inner join pg_catalog.pg_index as i on c.conindid = i.indexrelid
inner join pg_catalog.pg_class as referenced on c.confrelid = referenced.oid
where c.contype = 'f' and referenced.relnamespace = 'auth'::regnamespace
    and i.indisunique and not i.indisprimary;

-- Performance ----------------------------------------------------------------------------------

-- splinter: auth_rls_initplan. Written bare, auth.uid() or current_setting() in a policy is
-- called for every row; as a sub-select of its own, once per statement (an initplan). Each call
-- must be the sub-select's whole expression, cast outside it: (select auth.uid())::text, which
-- is also the only form splinter recognises.
create temporary view lint_initplan as
select p.table_name, p.policy_name
from our_policies as p
where regexp_replace(
    p.expressions, 'select\s+(auth\.\w+|current_setting)\(', '', 'gi'
) ~* '(auth\.\w+|current_setting)\(';

-- splinter: multiple_permissive_policies. Postgres evaluates every permissive policy that
-- applies to a role and action; one per pair says the same. Roles that bypass RLS are exempt.
create temporary view lint_multiple_permissive as
select p.table_name, r.rolname, a.action, array_agg(p.policy_name order by p.policy_name)
from our_policies as p
cross join lateral unnest(
    case
        when p.cmd = 'ALL' then array['SELECT', 'INSERT', 'UPDATE', 'DELETE']
        else array[p.cmd]
    end
) as a (action)
inner join pg_catalog.pg_roles as r
    on r.rolname = any(p.roles) or 'public' = any(p.roles)
where p.permissive and not r.rolbypassrls and r.rolname !~ '^pg_'
group by p.table_name, r.rolname, a.action
having count(*) > 1;

-- splinter: duplicate_index. Two identical indexes cost every write twice and help no read.
create temporary view lint_duplicate_index as
select r.name, array_agg(i.indexrelid::regclass::text order by i.indexrelid::regclass::text)
from our_relations as r
inner join pg_catalog.pg_index as i on r.oid = i.indrelid
where r.relkind in ('r', 'p', 'm')
group by
    r.name, i.indkey::text, i.indclass::text, i.indcollation::text, i.indoption::text,
    coalesce(pg_get_expr(i.indexprs, i.indrelid), ''),
    coalesce(pg_get_expr(i.indpred, i.indrelid), ''), i.indisunique
having count(*) > 1;

-- splinter: unindexed_foreign_keys (INFO, none here). Made a rule: without an index led by its
-- columns, every delete or key update of a referenced row scans the referencing table while
-- holding its locks.
create temporary view lint_unindexed_fkey as
select c.conrelid::regclass::text as table_name, c.conname
from pg_catalog.pg_constraint as c
inner join our_relations as r on c.conrelid = r.oid
where c.contype = 'f'
    and not exists (
        select from pg_catalog.pg_index as i
        where i.indrelid = c.conrelid
            and (i.indkey::int2 [])[0:cardinality(c.conkey) - 1] @> c.conkey
            and (i.indkey::int2 [])[0:cardinality(c.conkey) - 1] <@ c.conkey
    );

-- splinter: no_primary_key (INFO, none here). Made a rule: replication and tools that edit rows
-- need a key, and so does telling one audit row's subject from another.
create temporary view lint_no_primary_key as
select r.name
from our_relations as r
where r.relkind in ('r', 'p')
    and not exists (
        select from pg_catalog.pg_index as i where i.indrelid = r.oid and i.indisprimary
    );

-- splinter: unsupported_reg_types. reg* columns hold OIDs that pg_upgrade cannot carry over.
create temporary view lint_reg_types as
select r.name, a.attname
from our_relations as r
inner join pg_catalog.pg_attribute as a on r.oid = a.attrelid
where r.relkind in ('r', 'p') and a.attnum > 0 and not a.attisdropped
    and a.atttypid in (
        'regcollation'::regtype, 'regconfig'::regtype, 'regdictionary'::regtype,
        'regnamespace'::regtype, 'regoper'::regtype, 'regoperator'::regtype,
        'regproc'::regtype, 'regprocedure'::regtype
    );

-- The schema ---------------------------------------------------------------------------------------

select cmp_ok(
    (select count(*)::integer from our_relations where relkind in ('r', 'p')), '>', 20,
    'the catalog holds our tables'
);
select is_empty(
    'table lint_definer_rpc',
    'no SECURITY DEFINER function in an exposed schema is executable by anon or authenticated'
);
select is_empty('table lint_search_path', 'every function in our schemas pins its search_path');
select is_empty(
    'table lint_rls_off_exposed', 'every table in an exposed schema has row level security on'
);
select is_empty(
    'table lint_policies_rls_off', 'no table has policies while its row level security is off'
);
select is_empty(
    'table lint_no_policy_granted',
    'a table with row level security and no policy grants nothing to anon or authenticated'
);
select is_empty(
    'table lint_always_true',
    'no permissive policy lets anon or authenticated write any row (USING or WITH CHECK true)'
);
select is_empty(
    'table lint_user_metadata', 'no policy trusts the JWT''s user_metadata, which users edit'
);
select is_empty(
    'table lint_definer_view',
    'every view anon or authenticated can read through the API is security_invoker'
);
select is_empty(
    'table lint_matview_foreign',
    'no materialized view or foreign table is readable by anon or authenticated through the API'
);
select is_empty('table lint_auth_users', 'no view the API serves reads auth.users');
select is_empty('table lint_extension_public', 'no extension is installed in schema public');
select is_empty(
    'table lint_fkey_auth_unique',
    'no foreign key references a unique constraint of auth other than its primary key'
);
select is_empty(
    'table lint_initplan',
    'every auth.<function>() and current_setting() call in a policy is a sub-select of its own'
);
select is_empty(
    'table lint_multiple_permissive', 'no table has two permissive policies for a role and action'
);
select is_empty(
    'table lint_duplicate_index',
    'no table has two indexes on the same columns, expressions, predicate and uniqueness'
);
select is_empty('table lint_unindexed_fkey', 'every foreign key has an index led by its columns');
select is_empty('table lint_no_primary_key', 'every table has a primary key');
select is_empty(
    'table lint_reg_types', 'no table column has a reg* type that pg_upgrade cannot carry'
);

-- Probes: what each of these rules must find, made here and rolled back ---------------------------

create table public.lint_probe (id bigint, owner_id uuid references public.users (id));
create function public.lint_probe_rpc()
returns integer
language sql
security definer
as $$ select 1 $$;
grant execute on function public.lint_probe_rpc() to authenticated;
select set_eq(
    $$select name from lint_definer_rpc union all select name from lint_search_path$$,
    $$values ('lint_probe_rpc()'), ('lint_probe_rpc()')$$,
    'a definer RPC granted to authenticated, its search_path unpinned, is found by both rules'
);
select set_eq(
    $$select name from lint_rls_off_exposed union all select name from lint_no_primary_key
      union all select table_name from lint_unindexed_fkey$$,
    $$values ('public.lint_probe'), ('public.lint_probe'), ('lint_probe')$$,
    'a table in public without RLS, primary key or an index on its foreign key is found'
);
alter table public.lint_probe enable row level security;
create policy lint_probe_own on public.lint_probe for select to authenticated
using (owner_id = auth.uid());
create policy lint_probe_all on public.lint_probe for all to authenticated
using (true);
select set_eq(
    $$select table_name, policy_name from lint_initplan
      union all select table_name, policy_name from lint_always_true
      union all select table_name, 'multiple ' || rolname from lint_multiple_permissive$$,
    $$values ('public.lint_probe', 'lint_probe_own'), ('public.lint_probe', 'lint_probe_all'),
             ('public.lint_probe', 'multiple authenticated')$$,
    'policies calling auth.uid() per row, letting any row be written, and overlapping are found'
);

select * from finish();
rollback;
