-- Payments: transactions with their lifecycle (partitioned monthly), the directory that keeps
-- their ids, references and idempotency keys unique across partitions, transaction_events,
-- wallets, and payment methods with account details encrypted under private keys. Functions,
-- policies, views and cron jobs are in supabase/functions-sql/7*_*.sql.

-- ISO 4217 currencies and their minor units (how many decimals an amount may have). A function,
-- not a table: a CHECK may call an immutable function but not read a table. PL/pgSQL keeps the
-- CASE compiled for the session, where a SQL function with a SET clause would be parsed again
-- on every call, and the CHECKs call it on every write.
create function private.currency_minor_units(p_currency text)
returns smallint
language plpgsql
immutable
parallel safe
set search_path = ''
as $$
begin
    return case p_currency
        when 'RWF' then 0 when 'UGX' then 0 when 'BIF' then 0 when 'XAF' then 0
        when 'XOF' then 0 when 'KMF' then 0 when 'DJF' then 0 when 'GNF' then 0
        when 'JPY' then 0 when 'KRW' then 0 when 'VND' then 0 when 'CLP' then 0
        when 'ISK' then 0
        when 'KES' then 2 when 'TZS' then 2 when 'CDF' then 2 when 'ETB' then 2
        when 'ZMW' then 2 when 'MWK' then 2 when 'MZN' then 2 when 'SSP' then 2
        when 'SOS' then 2 when 'NGN' then 2 when 'GHS' then 2 when 'ZAR' then 2
        when 'EGP' then 2 when 'MAD' then 2 when 'USD' then 2 when 'EUR' then 2
        when 'GBP' then 2 when 'CHF' then 2 when 'CAD' then 2 when 'AUD' then 2
        when 'CNY' then 2 when 'INR' then 2 when 'AED' then 2 when 'SAR' then 2
        when 'SEK' then 2 when 'NOK' then 2 when 'DKK' then 2 when 'PLN' then 2
        when 'KWD' then 3 when 'BHD' then 3 when 'OMR' then 3 when 'JOD' then 3
        when 'TND' then 3 when 'LYD' then 3 when 'IQD' then 3
    end;
end;
$$;
comment on function private.currency_minor_units(text) is
'The ISO 4217 minor units of currency p_currency (RWF 0, USD 2, KWD 3, ...); null for a code '
'the platform does not handle.';

create domain private.transaction_type as text
check (value in ('debit', 'credit', 'transfer', 'payment', 'refund', 'fee', 'commission'));
comment on domain private.transaction_type is
'What a transaction does: debit, fee and payment take from the wallet, credit and refund add to '
'it, transfer moves from the user to the counterparty, commission is recorded only.';

create domain private.transaction_status as text
check (value in ('pending', 'processing', 'completed', 'failed', 'cancelled', 'reversed'));
comment on domain private.transaction_status is
'Where a transaction is: pending, processing, completed, failed, cancelled or reversed.';

-- transactions -----------------------------------------------------------------------------------

create table public.transactions (
    id uuid not null default gen_random_uuid(),
    reference text not null,
    user_id uuid not null references public.users (id),
    type private.transaction_type not null, -- noqa: RF04
    amount numeric not null,
    currency text not null,
    status private.transaction_status not null default 'pending',
    counterparty_id uuid references public.users (id),
    original_transaction_id uuid,
    idempotency_key text,
    correlation_id text,
    metadata jsonb not null default '{}',
    error_message text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    completed_at timestamptz,
    primary key (id, created_at),
    constraint transactions_currency_known check (
        private.currency_minor_units(currency) is not null
    ),
    constraint transactions_amount_positive check (amount > 0),
    constraint transactions_amount_minor_units check (
        amount = round(amount, private.currency_minor_units(currency))
    ),
    constraint transactions_amount_bounded check (amount < 1e15),
    constraint transactions_counterparty_for_transfers check (
        (type = 'transfer') = (counterparty_id is not null)
        and counterparty_id is distinct from user_id
    ),
    constraint transactions_original_for_refunds check (
        (type = 'refund') = (original_transaction_id is not null)
    ),
    constraint transactions_metadata_object check (jsonb_typeof(metadata) = 'object'),
    constraint transactions_completed_at_set check (
        (completed_at is not null) = (status in ('completed', 'reversed'))
    )
) partition by range (created_at);
comment on table public.transactions is
'Money movements and their lifecycle (pending, processing, completed, failed, cancelled, '
'reversed), created by create_transaction and moved by update_transaction_status; a completed '
'one has moved wallet balances. Partitioned monthly on created_at; ids, references and '
'idempotency keys are unique across partitions through private.transaction_directory. Users '
'read their own (as user or counterparty); only service_role writes.';
comment on column public.transactions.reference is
'Human-readable and unique: TXN-<UTC date>-<6 characters>, e.g. TXN-20260401-7KQ2M9.';
comment on column public.transactions.amount is
'Positive, with at most the currency''s minor units (RWF 0 decimals, USD 2, KWD 3).';
comment on column public.transactions.original_transaction_id is
'For a refund, the debit, fee or payment it gives back (in part or in full).';

create index transactions_user_created on public.transactions (user_id, created_at desc);
create index transactions_counterparty_created on public.transactions (
    counterparty_id, created_at desc
) where counterparty_id is not null;
create index transactions_original on public.transactions (original_transaction_id)
where original_transaction_id is not null;

create table partitions.transactions_default partition of public.transactions default;
comment on table partitions.transactions_default is
'Rows whose month has no child yet; private.maintain_partitions() moves them out.';

alter table public.transactions enable row level security;
alter table partitions.transactions_default enable row level security;
revoke all on public.transactions from anon, authenticated, service_role;
revoke all on partitions.transactions_default from public, anon, authenticated, service_role;
grant select on public.transactions to authenticated, service_role;

-- Kept for good: money records outlive any retention period.
insert into private.partitioned_tables (schema_name, table_name, premake_months, retention_months)
values ('public', 'transactions', 3, null);

-- One row per transaction, unpartitioned: a unique index on the partitioned table would have to
-- include created_at, so it could not keep ids, references or keys unique across months. It
-- also gives each id its created_at, which finds the transaction's partition.
create table private.transaction_directory (
    id uuid primary key,
    reference text not null unique,
    idempotency_key text unique,
    -- What the create was asked to do, to tell a retry from a different request under the same
    -- key (the same key with other parameters is refused).
    request jsonb not null,
    created_at timestamptz not null
);
comment on table private.transaction_directory is
'Every transaction''s id, reference, idempotency key, the request that created it and its '
'created_at (its partition). Unique across partitions where public.transactions cannot be.';

-- transaction_events -----------------------------------------------------------------------------

create table public.transaction_events (
    id bigint generated always as identity primary key,
    transaction_id uuid not null,
    -- The transaction's user, so that the owner policy needs no join.
    user_id uuid not null,
    from_status text,
    to_status text not null,
    actor_type text not null,
    actor_id text,
    reason text,
    correlation_id text,
    created_at timestamptz not null default now()
);
comment on table public.transaction_events is
'Every status a transaction took: from (null at creation), to, who moved it (from the JWT '
'claims: user, service or database role), why, the correlation id and when. Append-only.';
create index transaction_events_transaction on public.transaction_events (
    transaction_id, id
);
create index transaction_events_user on public.transaction_events (user_id, created_at);
alter table public.transaction_events enable row level security;
revoke all on public.transaction_events from anon, authenticated, service_role;
grant select on public.transaction_events to authenticated, service_role;

-- wallets ----------------------------------------------------------------------------------------

create table public.wallets (
    user_id uuid not null references public.users (id),
    currency text not null,
    balance numeric not null default 0,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (user_id, currency),
    constraint wallets_currency_known check (private.currency_minor_units(currency) is not null),
    -- The last line: update_transaction_status refuses an overdraft with a clearer error first.
    constraint wallets_balance_not_negative check (balance >= 0)
);
comment on table public.wallets is
'Each user''s balance per currency, moved only by completing (or reversing) a transaction, in '
'the same database transaction. Never negative. Owners read their own.';
alter table public.wallets enable row level security;
revoke all on public.wallets from anon, authenticated, service_role;
grant select on public.wallets to authenticated, service_role;

-- payment_methods --------------------------------------------------------------------------------

-- The keys account details are encrypted under. Only the database owner reads this table: no
-- API role has any privilege on schema private's tables. On a hosted project the key material
-- can live in Supabase Vault instead: a row with a null secret names a Vault secret (see
-- private.payment_method_secret and README).
create table private.payment_method_keys (
    key_id text primary key,
    secret text,
    created_at timestamptz not null default now(),
    retired_at timestamptz,
    constraint payment_method_keys_key_id_format check (key_id ~ '^[a-z0-9_-]{1,40}$'),
    constraint payment_method_keys_secret_length check (char_length(secret) >= 32)
);
comment on table private.payment_method_keys is
'Symmetric keys for payment_methods.account_details (pgcrypto pgp_sym_encrypt). The newest '
'unretired key encrypts; any key decrypts the rows that name it; rotate with '
'private.rotate_payment_method_key(). A null secret means the key is the Vault secret named '
'payment_method_key:<key_id>.';
create unique index payment_method_keys_one_current on private.payment_method_keys ((true))
where retired_at is null;

insert into private.payment_method_keys (key_id, secret)
values (
    'local-1',
    encode(extensions.gen_random_bytes(32), 'base64')
);

create table public.payment_methods (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references public.users (id),
    method_type text not null,
    provider text not null, -- noqa: RF04
    masked_label text not null,
    account_details bytea not null,
    key_id text not null references private.payment_method_keys (key_id),
    is_default boolean not null default false,
    verification_status text not null default 'unverified',
    verified_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint payment_methods_type_known check (
        method_type in ('card', 'mobile_money', 'bank_account', 'wallet', 'cash')
    ),
    constraint payment_methods_provider_length check (char_length(provider) between 1 and 50),
    constraint payment_methods_masked_label_length check (
        char_length(masked_label) between 1 and 80
    ),
    constraint payment_methods_verification_known check (
        verification_status in ('unverified', 'pending', 'verified', 'failed')
    ),
    constraint payment_methods_verified_at_set check (
        (verified_at is not null) = (verification_status = 'verified')
    )
);
comment on table public.payment_methods is
'How users pay: card, mobile money, bank account, wallet or cash, with a masked label ("MTN **** '
'4567") for display. account_details is encrypted at rest (pgcrypto) under key key_id; only '
'service_role can have it decrypted, through get_payment_method_details, and every such read is '
'audited. At most one default per user. Owners read their own, without account_details.';
comment on column public.payment_methods.account_details is
'The account details (a JSON object) encrypted with pgp_sym_encrypt under key key_id.';
create unique index payment_methods_one_default on public.payment_methods (user_id)
where is_default;
create index payment_methods_user on public.payment_methods (user_id, created_at);
create index payment_methods_key on public.payment_methods (key_id);
alter table public.payment_methods enable row level security;
revoke all on public.payment_methods from anon, authenticated, service_role;
-- Owners see their methods but never the ciphertext or which key made it.
grant select (
    id,
    user_id,
    method_type,
    provider,
    masked_label,
    is_default,
    verification_status,
    verified_at,
    created_at,
    updated_at
) on public.payment_methods to authenticated, service_role;
