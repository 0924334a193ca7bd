-- The local Supabase emulation (supabase/emulation/*.sql) and the migration history table the
-- runner shares with the Supabase CLI. Runs as postgres on a fresh clone of the migrated template.
begin;
select plan(79);

-- Roles -------------------------------------------------------------------------------------------

select has_role('anon');
select has_role('authenticated');
select has_role('service_role');
select has_role('authenticator');

select results_eq(
    $$select rolname::text collate "default", rolcanlogin, rolinherit, rolbypassrls, rolsuper
        from pg_catalog.pg_roles
       where rolname in ('anon', 'authenticated', 'service_role', 'authenticator')
       order by rolname::text collate "C"$$,
    $$values ('anon', false, true, false, false),
             ('authenticated', false, true, false, false),
             ('authenticator', true, false, false, false),
             ('service_role', false, true, true, false)$$,
    'API roles: only authenticator logs in, it does not inherit, only service_role bypasses RLS'
);

select is_member_of('anon', array['authenticator', 'postgres']::name[]);
select is_member_of('authenticated', array['authenticator', 'postgres']::name[]);
select is_member_of('service_role', array['authenticator', 'postgres']::name[]);

-- noinherit: authenticator may switch to service_role but has none of its privileges until then.
select ok(
    pg_has_role('authenticator', 'service_role', 'member')
    and not pg_has_role('authenticator', 'service_role', 'usage'),
    'authenticator can set role service_role but does not inherit its privileges'
);

select is(
    (select setconfig from pg_catalog.pg_db_role_setting
      where setrole = 'anon'::regrole and setdatabase = 0),
    array['statement_timeout=3s'],
    'anon has statement_timeout 3s'
);
select is(
    (select setconfig from pg_catalog.pg_db_role_setting
      where setrole = 'authenticated'::regrole and setdatabase = 0),
    array['statement_timeout=8s'],
    'authenticated has statement_timeout 8s'
);
select is(
    (select array_agg(c order by c collate "C")
       from pg_catalog.pg_db_role_setting, unnest(setconfig) as c
      where setrole = 'authenticator'::regrole and setdatabase = 0),
    array['lock_timeout=8s', 'statement_timeout=8s'],
    'authenticator has statement_timeout 8s and lock_timeout 8s'
);
select ok(
    (select c from pg_catalog.pg_roles, unnest(rolconfig) as c
      where rolname = 'postgres' and c like 'search_path=%')
    ~ '^search_path=.*\mpublic\M.*\mextensions\M',
    'postgres has a search_path setting with public, then extensions'
);
-- This session logged in as postgres, so the setting is the one in effect.
select is(
    current_schemas(false),
    array['public', 'extensions']::name[],
    'the effective search_path of a postgres session is public, extensions'
);

-- Extensions --------------------------------------------------------------------------------------

select has_schema('extensions');
select set_has(
    $$select e.extname::text
        from pg_catalog.pg_extension as e
        join pg_catalog.pg_namespace as n on n.oid = e.extnamespace
       where n.nspname = 'extensions'$$,
    $$values ('pgcrypto'), ('uuid-ossp'), ('pg_stat_statements'), ('postgis')$$,
    'pgcrypto, uuid-ossp, pg_stat_statements and postgis are installed in schema extensions'
);
select lives_ok(
    $$select extensions.uuid_generate_v4(),
             extensions.digest('x', 'sha256'),
             extensions.st_distance(
                 extensions.st_makepoint(30.06, -1.95)::extensions.geography,
                 extensions.st_makepoint(30.10, -1.94)::extensions.geography
             ),
             (select count(*) from extensions.pg_stat_statements)$$,
    'extension functions are callable schema-qualified and pg_stat_statements is preloaded'
);
-- Each API role may use extensions (nothing else grants it), and may not create in it.
select schema_privs_are('extensions', 'anon', array['USAGE']);
select schema_privs_are('extensions', 'authenticated', array['USAGE']);
select schema_privs_are('extensions', 'service_role', array['USAGE']);
-- public: PUBLIC has USAGE anyway on Postgres 15, so look for Supabase's explicit grants.
select set_has(
    $$select a.grantee::regrole::text
        from pg_catalog.pg_namespace as n, aclexplode(n.nspacl) as a
       where n.nspname = 'public' and a.privilege_type = 'USAGE'$$,
    $$values ('anon'), ('authenticated'), ('service_role')$$,
    'anon, authenticated and service_role are granted USAGE on public explicitly'
);
select ok(
    not has_schema_privilege('anon', 'public', 'create')
    and not has_schema_privilege('authenticated', 'public', 'create'),
    'anon and authenticated cannot create in public'
);

-- Auth schema -------------------------------------------------------------------------------------

select has_schema('auth');
select schema_privs_are('auth', 'authenticated', array['USAGE']);
select has_table('auth', 'users', 'auth.users exists');
select col_is_pk('auth', 'users', 'id', 'auth.users has primary key id');
select col_type_is('auth', 'users', 'id', 'uuid', 'auth.users.id is a uuid');
select has_column('auth', 'users', 'email', 'auth.users has email');
select has_column('auth', 'users', 'role', 'auth.users has role');

select function_returns('auth', 'uid', array[]::name[], 'uuid');
select function_returns('auth', 'role', array[]::name[], 'text');
select function_returns('auth', 'email', array[]::name[], 'text');
select function_returns('auth', 'jwt', array[]::name[], 'jsonb');

select is(
    (select proconfig from pg_catalog.pg_proc where oid = 'auth.uid()'::regprocedure),
    array['search_path=""'],
    'auth.uid() pins an empty search_path'
);
select is(
    (select proconfig from pg_catalog.pg_proc where oid = 'auth.role()'::regprocedure),
    array['search_path=""'],
    'auth.role() pins an empty search_path'
);
select is(
    (select proconfig from pg_catalog.pg_proc where oid = 'auth.email()'::regprocedure),
    array['search_path=""'],
    'auth.email() pins an empty search_path'
);
select is(
    (select proconfig from pg_catalog.pg_proc where oid = 'auth.jwt()'::regprocedure),
    array['search_path=""'],
    'auth.jwt() pins an empty search_path'
);
select is(
    (select array_agg(proname::text order by proname::text collate "C")
       from pg_catalog.pg_proc
      where pronamespace = 'auth'::regnamespace and provolatile = 's' and not prosecdef),
    array['email', 'jwt', 'role', 'uid'],
    'the claim helpers are stable SECURITY INVOKER functions'
);
-- RLS policies evaluated for the API roles call these.
select ok(
    has_function_privilege('anon', 'auth.uid()', 'execute')
    and has_function_privilege('authenticated', 'auth.uid()', 'execute')
    and has_function_privilege('authenticated', 'auth.jwt()', 'execute'),
    'anon and authenticated may execute the claim helpers'
);

-- Claims: nothing set in this session yet.
select is(auth.uid(), null::uuid, 'no claims: auth.uid() is null');
select is(auth.role(), null::text, 'no claims: auth.role() is null');
select is(auth.email(), null::text, 'no claims: auth.email() is null');
select is(auth.jwt(), null::jsonb, 'no claims: auth.jwt() is null');

-- Claims as PostgREST v9+ sets them: one JSON document, local to the transaction (set local is
-- set_config(..., true), which is what PostgREST and the gateway call).
set local request.jwt.claims =
'{"sub":"9f1c2a4e-3b5d-4c6e-8f70-1a2b3c4d5e6f","role":"authenticated","email":"a@b.c"}';
select is(
    auth.uid(), '9f1c2a4e-3b5d-4c6e-8f70-1a2b3c4d5e6f'::uuid, 'request.jwt.claims: auth.uid()'
);
select is(auth.role(), 'authenticated', 'request.jwt.claims: auth.role()');
select is(auth.email(), 'a@b.c', 'request.jwt.claims: auth.email()');
select is(
    auth.jwt(),
    '{"sub":"9f1c2a4e-3b5d-4c6e-8f70-1a2b3c4d5e6f","role":"authenticated","email":"a@b.c"}'::jsonb,
    'request.jwt.claims: auth.jwt() is the whole document'
);

-- A claim missing from the document is null, not an error.
set local request.jwt.claims = '{"role":"anon"}';
select is(auth.uid(), null::uuid, 'an anon token without sub: auth.uid() is null');
select is(auth.role(), 'anon', 'an anon token: auth.role() is anon');
select is(auth.email(), null::text, 'an anon token without email: auth.email() is null');

-- Empty strings, which the GUCs hold once a transaction that set them has ended, mean no claims.
set local request.jwt.claims = '';
select is(auth.uid(), null::uuid, 'empty claims: auth.uid() is null');
select is(auth.role(), null::text, 'empty claims: auth.role() is null');
select is(auth.email(), null::text, 'empty claims: auth.email() is null');
select is(auth.jwt(), null::jsonb, 'empty claims: auth.jwt() is null');

-- The per-claim GUCs PostgREST set before v9.
set local request.jwt.claim.sub = '0b7e8d6c-5a4f-4e3d-9c2b-1a0f9e8d7c6b';
set local request.jwt.claim.role = 'service_role';
set local request.jwt.claim.email = 'old@b.c';
select is(
    auth.uid(), '0b7e8d6c-5a4f-4e3d-9c2b-1a0f9e8d7c6b'::uuid, 'request.jwt.claim.sub: auth.uid()'
);
select is(auth.role(), 'service_role', 'request.jwt.claim.role: auth.role()');
select is(auth.email(), 'old@b.c', 'request.jwt.claim.email: auth.email()');
select is(auth.jwt(), null::jsonb, 'only per-claim GUCs: auth.jwt() is null');

-- Both forms set: the per-claim GUC wins, as in Supabase's definitions; an empty one is skipped.
set local request.jwt.claims =
'{"sub":"9f1c2a4e-3b5d-4c6e-8f70-1a2b3c4d5e6f","role":"authenticated"}';
select is(
    auth.uid(), '0b7e8d6c-5a4f-4e3d-9c2b-1a0f9e8d7c6b'::uuid,
    'both set: request.jwt.claim.sub takes precedence'
);
set local request.jwt.claim.sub = '';
set local request.jwt.claim.role = '';
select is(
    auth.uid(), '9f1c2a4e-3b5d-4c6e-8f70-1a2b3c4d5e6f'::uuid,
    'an empty request.jwt.claim.sub falls back to request.jwt.claims'
);
select is(auth.role(), 'authenticated', 'an empty request.jwt.claim.role falls back too');

-- A sub that is not a uuid is an error the caller sees, not a silent null.
set local request.jwt.claims = '{"sub":"not-a-uuid"}';
select throws_ok('select auth.uid()', '22P02', null, 'a malformed sub raises 22P02');

set local request.jwt.claims = '';
set local request.jwt.claim.email = '';
select is(auth.uid(), null::uuid, 'all claims cleared: auth.uid() is null again');

-- Public default privileges -----------------------------------------------------------------------

select set_eq(
    $$select d.defaclobjtype::text
        from pg_catalog.pg_default_acl as d, aclexplode(d.defaclacl) as a
       where d.defaclrole = 'postgres'::regrole
         and d.defaclnamespace = 'public'::regnamespace
         and a.grantee = 'service_role'::regrole$$,
    array['r', 'S', 'f'],
    'postgres''s default privileges in public grant tables, sequences and functions to service_role'
);
select bag_eq(
    $$select a.privilege_type
        from pg_catalog.pg_default_acl as d, aclexplode(d.defaclacl) as a
       where d.defaclrole = 'postgres'::regrole
         and d.defaclnamespace = 'public'::regnamespace
         and d.defaclobjtype = 'r'
         and a.grantee = 'service_role'::regrole$$,
    array['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'],
    'the table default for service_role is all privileges'
);

create table public.emulation_probe (id bigint generated always as identity primary key);
select table_privs_are(
    'public', 'emulation_probe', 'service_role',
    array['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'],
    'a table postgres creates in public is granted to service_role'
);
select sequence_privs_are(
    'public', 'emulation_probe_id_seq', 'service_role', array['USAGE', 'SELECT', 'UPDATE'],
    'a sequence postgres creates in public is granted to service_role'
);

-- Schema reload event triggers --------------------------------------------------------------------

select results_eq(
    $$select t.evtname::text collate "default", t.evtevent::text collate "default",
             t.evtenabled::text,
             n.nspname::text collate "default", p.proname::text collate "default"
        from pg_catalog.pg_event_trigger as t
        join pg_catalog.pg_proc as p on p.oid = t.evtfoid
        join pg_catalog.pg_namespace as n on n.oid = p.pronamespace
       where t.evtname in ('pgrst_ddl_watch', 'pgrst_drop_watch')
       order by t.evtname::text collate "C"$$,
    $$values ('pgrst_ddl_watch', 'ddl_command_end', 'O', 'extensions', 'pgrst_ddl_watch'),
             ('pgrst_drop_watch', 'sql_drop', 'O', 'extensions', 'pgrst_drop_watch')$$,
    'pgrst_ddl_watch (ddl_command_end) and pgrst_drop_watch (sql_drop) exist and are enabled'
);
select is(
    (select count(*)::int from pg_catalog.pg_proc
      where oid in ('extensions.pgrst_ddl_watch()'::regprocedure,
                    'extensions.pgrst_drop_watch()'::regprocedure)
        and prosrc like '%pg_notify(''pgrst'', ''reload schema'')%'
        and proconfig = array['search_path=""']),
    2,
    'both watch functions notify pgrst with reload schema and pin search_path'
);
-- The triggers must not get in the way of DDL, dropping included.
select lives_ok(
    'drop table public.emulation_probe',
    'a drop runs with the sql_drop trigger in place'
);

-- Migration history -------------------------------------------------------------------------------

select has_table('supabase_migrations', 'schema_migrations', 'the CLI history table exists');
select columns_are(
    'supabase_migrations', 'schema_migrations', array['version', 'statements', 'name'],
    'schema_migrations has exactly the CLI''s columns'
);
select col_type_is(
    'supabase_migrations', 'schema_migrations', 'version', 'text', 'version is text'
);
select col_type_is(
    'supabase_migrations', 'schema_migrations', 'statements', 'text[]', 'statements is text[]'
);
select col_type_is('supabase_migrations', 'schema_migrations', 'name', 'text', 'name is text');
select col_is_pk(
    'supabase_migrations', 'schema_migrations', 'version', 'version is the primary key'
);

select is(
    (select name from supabase_migrations.schema_migrations where version = '20260301000000'),
    'foundation',
    'migration 20260301000000 is recorded under the name foundation'
);
select ok(
    (select cardinality(statements) > 0
       from supabase_migrations.schema_migrations where version = '20260301000000'),
    'the foundation migration''s statements are recorded'
);
-- The CLI records each statement without its semicolon.
select ok(
    (select exists (
                select from unnest(statements) as s
                 where s like '%create extension if not exists pg_cron with schema pg_catalog'
            )
            and not exists (select from unnest(statements) as s where s like '%;')
       from supabase_migrations.schema_migrations where version = '20260301000000'),
    'statements are recorded one by one, without trailing semicolons'
);

select * from finish();
rollback;
