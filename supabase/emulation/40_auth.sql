-- The slice of Supabase Auth the database sees: auth.users and the claim helpers that RLS
-- policies call. The gateway puts the verified JWT claims in request.jwt.claims per transaction.
create schema if not exists auth;
grant usage on schema auth to postgres, anon, authenticated, service_role;

-- Supabase's column names, keyword `role` included.
create table if not exists auth.users (
    instance_id uuid,
    id uuid primary key,
    aud varchar(255),
    role varchar(255),  -- noqa: RF04
    email varchar(255),
    encrypted_password varchar(255),
    email_confirmed_at timestamptz,
    phone text unique default null,
    phone_confirmed_at timestamptz,
    raw_app_meta_data jsonb,
    raw_user_meta_data jsonb,
    is_anonymous boolean not null default false,
    last_sign_in_at timestamptz,
    banned_until timestamptz,
    deleted_at timestamptz,
    created_at timestamptz default now(),
    updated_at timestamptz default now()
);
comment on table auth.users is
'Local stand-in for Supabase Auth''s users table: the columns other tables and tests use.';

-- request.jwt.claim.<name> is the form PostgREST used before v9; both are still read.
create or replace function auth.uid()
returns uuid
language sql
stable
set search_path = ''
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'
    )::uuid
$$;
comment on function auth.uid() is 'The user id (sub claim) of the request''s JWT, or null.';

create or replace function auth.role()
returns text
language sql
stable
set search_path = ''
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim.role', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role'
    )
$$;
comment on function auth.role() is 'The role claim of the request''s JWT, or null.';

create or replace function auth.email()
returns text
language sql
stable
set search_path = ''
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim.email', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email'
    )
$$;
comment on function auth.email() is 'The email claim of the request''s JWT, or null.';

create or replace function auth.jwt()
returns jsonb
language sql
stable
set search_path = ''
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
$$;
comment on function auth.jwt() is 'All claims of the request''s JWT as jsonb, or null.';
