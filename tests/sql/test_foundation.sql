-- The foundation migration (20260301000000_foundation.sql): schemas, the analyst role, narrowed
-- default privileges, pg_cron and the readiness grants. Runs as postgres on a fresh clone.
begin;
select plan(52);

-- Schemas -----------------------------------------------------------------------------------------

select has_schema('private');
select has_schema('monitoring');
select has_schema('partitions');
select ok(
    coalesce(obj_description('private'::regnamespace, 'pg_namespace'), '') <> '',
    'schema private has a comment'
);
select ok(
    coalesce(obj_description('monitoring'::regnamespace, 'pg_namespace'), '') <> '',
    'schema monitoring has a comment'
);
select ok(
    coalesce(obj_description('partitions'::regnamespace, 'pg_namespace'), '') <> '',
    'schema partitions has a comment'
);

select schema_privs_are('private', 'anon', array[]::name[]);
select schema_privs_are('private', 'authenticated', array[]::name[]);
select schema_privs_are('monitoring', 'anon', array[]::name[]);
select schema_privs_are('monitoring', 'authenticated', array[]::name[]);
select schema_privs_are('partitions', 'anon', array[]::name[]);
select schema_privs_are('partitions', 'authenticated', array[]::name[]);
select ok(
    not has_schema_privilege('service_role', 'private', 'usage')
    and not has_schema_privilege('service_role', 'partitions', 'usage'),
    'not even service_role may use private or partitions'
);
select is(
    (select array_agg(n.nspname::text order by n.nspname::text collate "C")
       from pg_catalog.pg_namespace as n, aclexplode(n.nspacl) as a
      where n.nspname in ('private', 'monitoring', 'partitions') and a.grantee = 0),
    null,
    'PUBLIC has no privilege on private, monitoring or partitions'
);

-- The analyst role --------------------------------------------------------------------------------

select has_role('analyst');
select results_eq(
    $$select rolcanlogin, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb
        from pg_catalog.pg_roles where rolname = 'analyst'$$,
    $$values (false, false, false, false, false)$$,
    'analyst is a plain nologin role'
);
select ok(
    coalesce(shobj_description('analyst'::regrole, 'pg_authid'), '') <> '',
    'role analyst has a comment'
);
select schema_privs_are('monitoring', 'analyst', array['USAGE']);
select schema_privs_are('private', 'analyst', array[]::name[]);
select schema_privs_are('partitions', 'analyst', array[]::name[]);

-- Narrowed defaults, by behaviour: objects postgres creates now -----------------------------------

create table public.foundation_probe (
    id bigint generated always as identity primary key,
    owner_id uuid not null,
    body text not null
);
create function public.foundation_probe_fn()
returns integer
language sql
set search_path = ''
as $$ select 1 $$;
create function private.foundation_private_fn()
returns integer
language sql
set search_path = ''
as $$ select 2 $$;

select table_privs_are(
    'public', 'foundation_probe', 'anon', array[]::name[],
    'anon gets nothing on a new public table'
);
select table_privs_are(
    'public', 'foundation_probe', 'authenticated', array[]::name[],
    'authenticated gets nothing on a new public table'
);
select table_privs_are(
    'public', 'foundation_probe', 'service_role',
    array['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'],
    'service_role still gets everything on a new public table'
);
select table_privs_are(
    'public', 'foundation_probe', 'analyst', array[]::name[],
    'analyst gets nothing on a new public table'
);
select sequence_privs_are(
    'public', 'foundation_probe_id_seq', 'anon', array[]::name[],
    'anon gets nothing on a new public sequence'
);
select sequence_privs_are(
    'public', 'foundation_probe_id_seq', 'authenticated', array[]::name[],
    'authenticated gets nothing on a new public sequence'
);
select sequence_privs_are(
    'public', 'foundation_probe_id_seq', 'service_role', array['USAGE', 'SELECT', 'UPDATE'],
    'service_role still gets a new public sequence'
);

select function_privs_are(
    'public', 'foundation_probe_fn', array[]::name[], 'anon', array[]::name[],
    'anon cannot execute a new public function'
);
select function_privs_are(
    'public', 'foundation_probe_fn', array[]::name[], 'authenticated', array[]::name[],
    'authenticated cannot execute a new public function'
);
select function_privs_are(
    'public', 'foundation_probe_fn', array[]::name[], 'service_role', array['EXECUTE'],
    'service_role can still execute a new public function'
);
-- A null proacl would mean the built-in default, which includes EXECUTE for PUBLIC.
select ok(
    (select p.proacl is not null
            and not exists (select from aclexplode(p.proacl) as a where a.grantee = 0)
       from pg_catalog.pg_proc as p where p.oid = 'public.foundation_probe_fn()'::regprocedure),
    'PUBLIC has no EXECUTE on a new public function'
);

select ok(
    not has_function_privilege('anon', 'private.foundation_private_fn()', 'execute'),
    'anon cannot execute a new private function'
);
select ok(
    not has_function_privilege('authenticated', 'private.foundation_private_fn()', 'execute')
    and not has_function_privilege('service_role', 'private.foundation_private_fn()', 'execute'),
    'authenticated and service_role cannot execute a new private function'
);
select is(
    (select p.proacl from pg_catalog.pg_proc as p
      where p.oid = 'private.foundation_private_fn()'::regprocedure),
    '{postgres=X/postgres}'::aclitem[],
    'a new private function is executable by its owner only (no PUBLIC entry)'
);
-- And the refusal itself, as anon would meet it.
select throws_ok(
    $$select tests.as_role('anon', 'select public.foundation_probe_fn()')$$,
    '42501',
    'permission denied for function foundation_probe_fn',
    'anon calling a new public function is refused with 42501'
);
select throws_ok(
    $$select tests.as_role('authenticated', 'select count(*) from public.foundation_probe')$$,
    '42501',
    'permission denied for table foundation_probe',
    'authenticated reading a new public table without a grant is refused with 42501'
);
select lives_ok(
    $$select tests.as_role('service_role', 'select public.foundation_probe_fn()')$$,
    'service_role calls a new public function'
);

-- RLS interplay smoke: a policy on auth.uid() for the authenticated role --------------------------

alter table public.foundation_probe enable row level security;
create policy foundation_probe_own on public.foundation_probe
for select to authenticated
using (owner_id = (select auth.uid()));
grant select on public.foundation_probe to authenticated;
insert into public.foundation_probe (owner_id, body) values
('5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab', 'mine'),
('c0ffee00-1111-4222-8333-444455556666', 'someone else''s');

set local request.jwt.claims =
'{"sub":"5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab","role":"authenticated"}';
set local role authenticated;
-- pgTAP cannot run as authenticated: note what this role sees, then assert as postgres.
do $$
begin
    perform set_config('foundation_test.uid', coalesce(auth.uid()::text, '<null>'), true);
    perform set_config('foundation_test.user', current_user, true);
    perform set_config(
        'foundation_test.visible',
        (select string_agg(body, ',' order by body) from public.foundation_probe),
        true
    );
end;
$$;
reset role;

select is(
    current_setting('foundation_test.uid'),
    '5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab',
    'as authenticated, auth.uid() is the sub claim'
);
select is(
    current_setting('foundation_test.user'),
    'authenticated',
    'set role authenticated made current_user authenticated'
);
select is(
    current_setting('foundation_test.visible'),
    'mine',
    'the policy on (select auth.uid()) shows authenticated only its own row'
);
set local request.jwt.claims = '';

-- pg_cron -----------------------------------------------------------------------------------------

select has_extension('pg_catalog', 'pg_cron', 'pg_cron is installed in pg_catalog');
select has_schema('cron');
select has_table('cron', 'job', 'cron.job exists');
select lives_ok(
    $$select cron.schedule('foundation-probe', '0 3 * * *', 'select 1')$$,
    'a job can be scheduled'
);
select is(
    (select schedule from cron.job where jobname = 'foundation-probe'),
    '0 3 * * *',
    'the scheduled job is recorded in cron.job'
);

-- Readiness: service_role reads the migration history, the other API roles do not -----------------

select table_privs_are(
    'supabase_migrations', 'schema_migrations', 'service_role', array['SELECT'],
    'service_role may only select from schema_migrations'
);
select schema_privs_are('supabase_migrations', 'service_role', array['USAGE']);
select lives_ok(
    $$select tests.as_role(
        'service_role', 'select version from supabase_migrations.schema_migrations'
    )$$,
    'service_role reads schema_migrations'
);
select throws_ok(
    $$select tests.as_role('anon', 'select * from supabase_migrations.schema_migrations')$$,
    '42501',
    'permission denied for schema supabase_migrations',
    'anon cannot read schema_migrations'
);
select throws_ok(
    $$select tests.as_role(
        'authenticated', 'select * from supabase_migrations.schema_migrations'
    )$$,
    '42501',
    'permission denied for schema supabase_migrations',
    'authenticated cannot read schema_migrations'
);
select throws_ok(
    $$select tests.as_role(
        'service_role', 'delete from supabase_migrations.schema_migrations'
    )$$,
    '42501',
    'permission denied for table schema_migrations',
    'service_role cannot change schema_migrations'
);

-- The privilege audit: every function anon or authenticated may call in our schemas is one a
-- migration meant to expose. A domain that adds an RPC for them adds it to the list here.
select results_eq(
    $$select r.rolname::text, p.oid::regprocedure::text
      from pg_catalog.pg_proc as p
      inner join pg_catalog.pg_namespace as n on p.pronamespace = n.oid
      cross join (values ('anon'), ('authenticated')) as r (rolname)
      where n.nspname in ('public', 'private', 'monitoring', 'partitions')
        and has_function_privilege(r.rolname, p.oid, 'execute')
      order by 1, 2$$,
    $$values ('anon', 'evaluate_feature_flags(text,text,jsonb)'),
             ('anon', 'feature_flag_details(text,text,text,jsonb)'),
             ('anon', 'is_feature_enabled(text,text,text,jsonb)'),
             ('anon', 'private.answer_feature_flag(text,text,text,text,jsonb)'),
             ('anon', 'private.evaluate_feature_flags(text,text,jsonb)'),
             ('authenticated', 'delete_location(uuid)'),
             ('authenticated', 'evaluate_feature_flags(text,text,jsonb)'),
             ('authenticated', 'feature_flag_details(text,text,text,jsonb)'),
             ('authenticated', 'get_wallet_balance(uuid,text)'),
             ('authenticated', 'is_feature_enabled(text,text,text,jsonb)'),
             ('authenticated', 'private.answer_feature_flag(text,text,text,text,jsonb)'),
             ('authenticated', 'private.evaluate_feature_flags(text,text,jsonb)'),
             ('authenticated', 'private.get_wallet_balance(uuid,text)'),
             ('authenticated', 'private.save_location(uuid,text,double precision,double precision,text,text,text,text,text,double precision,double precision,timestamp with time zone)'),
             ('authenticated', 'private.set_default_payment_method(uuid)'),
             ('authenticated', 'private.update_current_location(uuid,double precision,double precision,double precision,double precision,double precision,timestamp with time zone)'),
             ('authenticated', 'save_location(uuid,text,double precision,double precision,text,text,text,text,text,double precision,double precision,timestamp with time zone)'),
             ('authenticated', 'set_default_payment_method(uuid)'),
             ('authenticated', 'update_current_location(uuid,double precision,double precision,double precision,double precision,double precision,timestamp with time zone)')$$,
    'anon may execute only the feature flag evaluations (for no user); authenticated those and '
    || 'the payments RPCs that act on the caller''s own wallet and methods and the locations RPCs '
    || 'that act on their own position and places; and their definer '
    || 'bodies in private (reached through the RPCs: neither may use private)'
);

select * from finish();
rollback;
