-- Foundation: the schemas every domain builds on, the analyst role, pg_cron, and narrower
-- defaults than a fresh Supabase project has. Tables come with their own domains' migrations.

-- private: helpers, SECURITY DEFINER code and the partition manager; never exposed to the API.
create schema if not exists private;
comment on schema private is
'Internal helpers and SECURITY DEFINER code; no API role has usage.';
revoke all on schema private from public;

-- monitoring: views for analysts, without PII and without the raw tables behind them.
create schema if not exists monitoring;
comment on schema monitoring is
'Read-only views for analysts (role analyst); no PII, no raw tables.';
revoke all on schema monitoring from public;

-- partitions: the monthly children of partitioned tables; reached only through their parents.
create schema if not exists partitions;
comment on schema partitions is
'Child partitions of partitioned tables; no API role may reach a child directly.';
revoke all on schema partitions from public;

-- Roles belong to the cluster, not the database: another database may have created it.
do $$
begin
    if not exists (select from pg_catalog.pg_roles where rolname = 'analyst') then
        create role analyst nologin;
    end if;
end
$$;
comment on role analyst is
'Read-only access to the monitoring views; grant it to a login role per analyst.';
grant usage on schema monitoring to analyst;

-- A fresh Supabase project grants every new table, sequence and function in public to anon and
-- authenticated. Here each object grants what it needs, so a forgotten grant fails closed.
alter default privileges for role postgres in schema public
revoke all on tables from anon, authenticated;
alter default privileges for role postgres in schema public
revoke all on sequences from anon, authenticated;
alter default privileges for role postgres in schema public
revoke execute on functions from anon, authenticated;
-- Postgres itself grants EXECUTE on every new function to PUBLIC, in every schema, and that
-- cannot be narrowed per schema. An extension a later migration creates therefore grants
-- EXECUTE on what the API roles call (on hosted Supabase an admin role creates extensions and
-- they keep PUBLIC; here the stricter default fails loudly in tests instead of silently).
alter default privileges for role postgres revoke execute on functions from public;

-- pg_cron lives in pg_catalog as on Supabase; its tables are in schema cron.
create extension if not exists pg_cron with schema pg_catalog;

-- The edge's readiness probe runs as service_role and compares applied versions with the repo.
grant usage on schema supabase_migrations to service_role;
grant select on supabase_migrations.schema_migrations to service_role;
