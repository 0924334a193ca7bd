-- Users: one-time codes that verify a phone number, and the log that caps how many are sent.
-- Functions (issue_otp, verify_otp, erase_user, anonymize_inactive_users) and their pg_cron jobs
-- are in supabase/functions-sql/53_users.sql.

-- Codes are stored as bcrypt hashes (pgcrypto's crypt). Supabase has pgcrypto in extensions;
-- the local emulation makes it there too, so this is a no-op on both.
create extension if not exists pgcrypto with schema extensions;

-- otp_codes --------------------------------------------------------------------------------------

create table private.otp_codes (
    -- One live code per phone: issuing a new one replaces the row.
    phone_number text primary key,
    user_id uuid references public.users (id) on delete cascade,
    code_hash text not null,
    attempts integer not null default 0,
    expires_at timestamptz not null,
    created_at timestamptz not null default now(),
    verified_at timestamptz,
    constraint otp_codes_phone_number_e164 check (phone_number ~ '^\+[1-9][0-9]{6,14}$'),
    -- A bcrypt hash ($2a$ and cost): never the code itself.
    constraint otp_codes_code_hash_bcrypt check (code_hash ~ '^\$2[abxy]\$[0-9]{2}\$.{53}$'),
    constraint otp_codes_attempts_range check (attempts between 0 and 3)
);
comment on table private.otp_codes is
'The live one-time code of each phone number (issue_otp), as a bcrypt hash: 5 minutes to use '
'it, 3 wrong attempts at most, used once (verified_at). Rows expired over a day are purged.';
comment on column private.otp_codes.user_id is
'The user with this phone number when the code was issued; null when there was none.';
comment on column private.otp_codes.attempts is
'Wrong codes tried against this code; at 3 it is exhausted.';
comment on column private.otp_codes.verified_at is
'When the code verified its user; a used code verifies nothing again.';
create index otp_codes_user on private.otp_codes (user_id);
create index otp_codes_expires_at on private.otp_codes (expires_at);
alter table private.otp_codes enable row level security;
revoke all on private.otp_codes from public, anon, authenticated, service_role;

-- otp_issues -------------------------------------------------------------------------------------

create table private.otp_issues (
    id bigint generated always as identity primary key,
    phone_number text not null,
    issued_at timestamptz not null default now()
);
comment on table private.otp_issues is
'When codes were issued to each phone number: issue_otp sends at most 5 per phone in any hour. '
'Rows older than an hour are purged.';
create index otp_issues_phone_number on private.otp_issues (phone_number, issued_at);
create index otp_issues_issued_at on private.otp_issues (issued_at);
alter table private.otp_issues enable row level security;
revoke all on private.otp_issues from public, anon, authenticated, service_role;
