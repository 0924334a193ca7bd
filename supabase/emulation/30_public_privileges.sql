-- The privileges a Supabase project starts with: the API roles may use public, and whatever
-- postgres creates there is granted to them. Migrations narrow this (see the foundation one).
grant usage on schema public to postgres, anon, authenticated, service_role;

alter default privileges for role postgres in schema public
grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema public
grant all on sequences to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema public
grant all on functions to postgres, anon, authenticated, service_role;
