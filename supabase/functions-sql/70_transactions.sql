-- Transactions: create (idempotent by key), move through the lifecycle, and the wallet effects a
-- completion (or reversal) applies in the same database transaction; who may read transactions
-- and their events.
--
-- Functions that read public.transactions force generic plans: the plan cache prices a generic
-- plan of a partitioned table with every partition in it, so it would plan a custom one on every
-- call, where the generic plan prunes to the one partition at run time.

create or replace function private.transaction_reference(p_at timestamptz)
returns text
language plpgsql
volatile
set search_path = ''
as $$
-- Crockford's base32 (no I, L, O, U): 6 characters are 30 random bits, a billion a day, and
-- nothing a reader can confuse on a phone screen. One expression rather than a loop: PL/pgSQL
-- evaluates it without a query.
declare
    v_alphabet constant text := '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
    v_bits bigint := ('x' || pg_catalog.encode(extensions.gen_random_bytes(4), 'hex'))::bit(32)::bigint;
begin
    return 'TXN-' || pg_catalog.to_char(p_at at time zone 'UTC', 'YYYYMMDD') || '-'
        || pg_catalog.substr(v_alphabet, (v_bits & 31)::integer + 1, 1)
        || pg_catalog.substr(v_alphabet, ((v_bits >> 5) & 31)::integer + 1, 1)
        || pg_catalog.substr(v_alphabet, ((v_bits >> 10) & 31)::integer + 1, 1)
        || pg_catalog.substr(v_alphabet, ((v_bits >> 15) & 31)::integer + 1, 1)
        || pg_catalog.substr(v_alphabet, ((v_bits >> 20) & 31)::integer + 1, 1)
        || pg_catalog.substr(v_alphabet, ((v_bits >> 25) & 31)::integer + 1, 1);
end;
$$;
comment on function private.transaction_reference(timestamptz) is
'A new reference for a transaction created at p_at: TXN-<UTC date>-<6 random base32 characters>.';

create or replace function private.transaction_effects(
    p_type text,
    p_user_id uuid,
    p_counterparty_id uuid,
    p_amount numeric
)
returns table (user_id uuid, delta numeric)
language plpgsql
immutable
set search_path = ''
as $$
-- PL/pgSQL: a SQL function with a SET clause is parsed again on every call.
begin
    if p_type in ('credit', 'refund') then
        return query select p_user_id, p_amount;
    elsif p_type in ('debit', 'fee', 'payment') then
        return query select p_user_id, -p_amount;
    elsif p_type = 'transfer' then
        return query values (p_user_id, -p_amount), (p_counterparty_id, p_amount);
    end if;
end;
$$;
comment on function private.transaction_effects(text, uuid, uuid, numeric) is
'What completing a transaction does to balances: one (user, delta) row per wallet it moves. '
'Credit and refund add, debit, fee and payment take, a transfer takes from the user and gives '
'to the counterparty, a commission moves nothing.';

create or replace function private.move_wallets(p_transaction public.transactions, p_sign integer)
returns void
language plpgsql
volatile
set search_path = ''
set enable_seqscan = off
set enable_hashjoin = off
set enable_mergejoin = off
as $$
-- Wallets are created and locked in (user_id) order, so two transfers between the same users in
-- opposite directions queue behind each other instead of deadlocking. Each statement touches one
-- or two wallets by key: the plans are kept for the session, and one made while the table was
-- small would otherwise read every wallet on each call.
declare
    v_users uuid[];
    v_deltas numeric[];
    v_balances numeric[];
begin
    select
        pg_catalog.array_agg(e.user_id order by e.user_id),
        pg_catalog.array_agg(e.delta * p_sign order by e.user_id)
    into v_users, v_deltas
    from private.transaction_effects(
        p_transaction.type, p_transaction.user_id, p_transaction.counterparty_id,
        p_transaction.amount
    ) as e;
    if v_users is null then
        return;
    end if;

    -- Missing wallets are made before any wallet is locked: an insert waiting on another
    -- transaction's insert of the same wallet must not hold a lock that transaction needs.
    -- Wallets are never deleted, so one seen here exists at the lock below; only a missing one
    -- costs an insert (and its audit).
    if (
        select count(*) from public.wallets as w
        where w.user_id = any(v_users) and w.currency = p_transaction.currency
    ) < pg_catalog.cardinality(v_users) then
        insert into public.wallets (user_id, currency)
        select u.user_id, p_transaction.currency
        from pg_catalog.unnest(v_users) as u (user_id)
        order by u.user_id
        on conflict do nothing;
    end if;
    -- Locked and read in one statement, in user order.
    select pg_catalog.array_agg(l.balance order by l.user_id)
    into v_balances
    from (
        select w.user_id, w.balance from public.wallets as w
        where w.user_id = any(v_users) and w.currency = p_transaction.currency
        order by w.user_id
        for update
    ) as l;

    for i in 1..pg_catalog.cardinality(v_users) loop
        if v_balances[i] + v_deltas[i] < 0 then
            raise exception 'insufficient funds: % % % needs % % but wallet % holds % %',
                case when p_sign > 0 then 'completing' else 'reversing' end,
                p_transaction.type, p_transaction.reference,
                -v_deltas[i], p_transaction.currency, v_users[i], v_balances[i],
                p_transaction.currency
            using errcode = 'PT402';
        end if;
    end loop;

    update public.wallets as w
    set
        balance = w.balance + d.delta,
        updated_at = pg_catalog.now()
    from unnest(v_users, v_deltas) as d (user_id, delta)
    where w.user_id = d.user_id and w.currency = p_transaction.currency;
end;
$$;
comment on function private.move_wallets(public.transactions, integer) is
'Applies transaction p_transaction''s balance effects (p_sign 1) or undoes them (-1), locking the '
'wallets in user order; PT402 when a balance would go negative, changing nothing.';

create or replace function private.record_transaction_move(
    p_transaction public.transactions,
    p_from_status text,
    p_reason text
)
returns void
language plpgsql
volatile
set search_path = ''
as $$
declare
    v_actor record := private.request_actor();
    -- The request that made this move; the creating request's when it named none.
    v_correlation_id text := coalesce(
        private.request_correlation_id(), p_transaction.correlation_id
    );
begin
    -- One statement for both rows, each statement being a measurable share of a transfer's
    -- cost: the transaction's event is written beside the one outbox event emitted.
    with emitted as (
        select e.id
        from private.emit_events(
            'transaction',
            array[p_transaction.id::text],
            'transaction.'
            || case
                when p_from_status is null and p_transaction.status = 'pending' then 'created'
                else p_transaction.status
            end,
            array[pg_catalog.jsonb_build_object(
                'id', p_transaction.id,
                'reference', p_transaction.reference,
                'user_id', p_transaction.user_id,
                'counterparty_id', p_transaction.counterparty_id,
                'type', p_transaction.type,
                -- A string: JSON readers that parse numbers as doubles would round money.
                'amount', p_transaction.amount::text,
                'currency', p_transaction.currency,
                'from_status', p_from_status,
                'status', p_transaction.status,
                'reason', p_reason
            )],
            v_correlation_id
        ) as e (id)
    )

    insert into public.transaction_events (
        transaction_id, user_id, from_status, to_status, actor_type, actor_id, reason,
        correlation_id
    )
    select
        p_transaction.id,
        p_transaction.user_id,
        p_from_status,
        p_transaction.status,
        v_actor.actor_type,
        v_actor.actor_identifier,
        p_reason,
        v_correlation_id
    from emitted;
end;
$$;
comment on function private.record_transaction_move(public.transactions, text, text) is
'Writes the transaction_events row (from p_from_status to the transaction''s status, actor from '
'the JWT claims) and the outbox event transaction.<status> (transaction.created at creation).';

create or replace function private.require_transaction_arguments(
    p_user_id uuid,
    p_type text,
    p_amount numeric,
    p_currency text,
    p_metadata jsonb,
    p_counterparty_id uuid,
    p_original_transaction_id uuid,
    p_function text,
    p_user_argument text,
    p_counterparty_argument text
)
returns void
language plpgsql
stable
set search_path = ''
as $$
-- Errors speak the caller's words: p_function and its names for the two user arguments
-- (p_user_argument, p_counterparty_argument), which it may call otherwise than this check does.
declare
    v_minor_units smallint := private.currency_minor_units(p_currency);
begin
    if p_user_id is null then
        raise exception '%: % must be a user id', p_function, p_user_argument
        using errcode = '22023';
    end if;
    if p_type is null or p_type not in (
        'debit', 'credit', 'transfer', 'payment', 'refund', 'fee', 'commission'
    ) then
        raise exception '%: p_type must be debit, credit, transfer, payment, '
            'refund, fee or commission (got %)', p_function, coalesce(p_type, 'null')
        using errcode = '22023';
    end if;
    if v_minor_units is null then
        raise exception '%: p_currency must be an ISO 4217 code the platform '
            'handles, in capitals (got %)', p_function, coalesce(p_currency, 'null')
        using errcode = '22023';
    end if;
    if p_amount is null or p_amount <= 0 or p_amount >= 1e15 or p_amount = 'NaN' then
        raise exception '%: p_amount must be more than 0 and less than 10^15 '
            '(got %)', p_function, coalesce(p_amount::text, 'null')
        using errcode = '22023';
    end if;
    if p_amount <> pg_catalog.round(p_amount, v_minor_units) then
        raise exception '%: p_amount must have at most % decimals in % (got %)',
            p_function, v_minor_units, p_currency, p_amount
        using errcode = '22023';
    end if;
    perform private.require_json_object(
        coalesce(p_metadata, '{}'), p_function, 'p_metadata'
    );
    -- Stored twice: on the transaction and in its audit row.
    perform private.require_json_size(p_metadata, 16384, p_function, 'p_metadata');
    if (p_type = 'transfer') <> (p_counterparty_id is not null) then
        raise exception '%: % is required for a transfer and only for one',
            p_function, p_counterparty_argument
        using errcode = '22023';
    end if;
    if p_counterparty_id = p_user_id then
        raise exception '%: a transfer needs a counterparty other than the user', p_function
        using errcode = '22023';
    end if;
    if (p_type = 'refund') <> (p_original_transaction_id is not null) then
        raise exception '%: p_original_transaction_id is required for a refund '
            'and only for one', p_function
        using errcode = '22023';
    end if;
    -- Both users in one read; which one is missing is asked only when one is. A missing user is
    -- named by its argument only when there is a counterparty to tell it apart from.
    if (
        select count(*) from public.users as u
        where u.id in (p_user_id, p_counterparty_id)
    ) < (case when p_counterparty_id is null then 1 else 2 end) then
        perform private.require_user(
            p_user_id, p_function,
            case when p_counterparty_id is not null then p_user_argument end
        );
        if p_counterparty_id is not null then
            perform private.require_user(
                p_counterparty_id, p_function, p_counterparty_argument
            );
        end if;
    end if;
end;
$$;
comment on function private.require_transaction_arguments(
    uuid, text, numeric, text, jsonb, uuid, uuid, text, text, text
) is
'The checks of a transaction''s arguments for caller p_function, whose errors name the user and '
'counterparty by the caller''s p_user_argument and p_counterparty_argument: 22023 for a bad '
'value, PT404 for an unknown user or counterparty.';

create or replace function private.require_refundable(
    p_original_transaction_id uuid,
    p_user_id uuid,
    p_amount numeric,
    p_currency text
)
returns void
language plpgsql
volatile
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
-- The original's row is locked for the rest of the transaction: refunds of one original (and
-- its reversal) take turns, so two refunds cannot both fit in what remains.
declare
    v_original public.transactions;
    v_refunded numeric;
begin
    select t.* into v_original
    from private.transaction_directory as d
    inner join public.transactions as t on d.id = t.id and d.created_at = t.created_at
    where d.id = p_original_transaction_id
    for update of t;
    if not found then
        raise exception 'create_transaction: no transaction % (p_original_transaction_id)',
            p_original_transaction_id
        using errcode = 'PT404';
    end if;
    if v_original.type not in ('debit', 'fee', 'payment')
        or v_original.user_id <> p_user_id or v_original.currency <> p_currency then
        raise exception 'create_transaction: a refund gives back a debit, fee or payment of the '
            'same user in the same currency (% is a % of % in %)',
            v_original.reference, v_original.type, v_original.user_id, v_original.currency
        using errcode = '22023';
    end if;
    if v_original.status <> 'completed' then
        raise exception 'create_transaction: % is %, only a completed transaction can be refunded',
            v_original.reference, v_original.status
        using errcode = 'PT409';
    end if;
    -- Refunds still under way count: they are promises against what remains.
    select coalesce(sum(r.amount), 0) into v_refunded
    from public.transactions as r
    where r.original_transaction_id = p_original_transaction_id
        and r.status in ('pending', 'processing', 'completed');
    if p_amount > v_original.amount - v_refunded then
        raise exception 'create_transaction: a refund of % % exceeds the % % still refundable of %',
            p_amount, p_currency, v_original.amount - v_refunded, p_currency,
            v_original.reference
        using errcode = 'PT409';
    end if;
end;
$$;
comment on function private.require_refundable(uuid, uuid, numeric, text) is
'Locks the original of a refund and checks it: PT404 unknown, 22023 not a debit, fee or payment '
'of the same user and currency, PT409 not completed or not enough left to refund.';

create or replace function private.replayed_transaction(
    p_directory private.transaction_directory,
    p_request jsonb
)
returns public.transactions
language plpgsql
stable
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
begin
    if p_directory.request <> p_request then
        raise exception 'create_transaction: idempotency key % was used for another request '
            '(transaction %)', p_directory.idempotency_key, p_directory.reference
        using errcode = 'PT409',
            detail = 'first: ' || p_directory.request::text || '; now: ' || p_request::text;
    end if;
    return (
        select t from public.transactions as t
        where t.id = p_directory.id and t.created_at = p_directory.created_at
    );
end;
$$;
comment on function private.replayed_transaction(private.transaction_directory, jsonb) is
'The transaction an idempotency key made, when p_request is what it was made from; else PT409.';

create or replace function private.claim_transaction_directory(
    p_id uuid,
    p_idempotency_key text,
    p_request jsonb,
    p_now timestamptz
)
returns private.transaction_directory
language plpgsql
volatile
set search_path = ''
as $$
-- The directory row first: a retry, or a concurrent create with the same key (which waits here
-- for this one), finds the first and replays it. A clash on the reference alone (30 random bits
-- a day) draws again.
declare
    v_directory private.transaction_directory;
    v_first private.transaction_directory;
begin
    v_directory.id := p_id;
    v_directory.idempotency_key := p_idempotency_key;
    v_directory.request := p_request;
    v_directory.created_at := p_now;
    loop
        v_directory.reference := private.transaction_reference(p_now);
        insert into private.transaction_directory (
            id, reference, idempotency_key, request, created_at
        )
        values (
            v_directory.id,
            v_directory.reference,
            v_directory.idempotency_key,
            v_directory.request,
            v_directory.created_at
        )
        on conflict do nothing;
        exit when found;
        if p_idempotency_key is not null then
            -- Into its own variable: a miss would null every field of v_directory.
            select d.* into v_first
            from private.transaction_directory as d
            where d.idempotency_key = p_idempotency_key;
            if found then
                return v_first;
            end if;
        end if;
    end loop;
    return v_directory;
end;
$$;
comment on function private.claim_transaction_directory(uuid, text, jsonb, timestamptz) is
'Enters transaction p_id (a new reference, p_idempotency_key, p_request) in the directory and '
'returns its row; when p_idempotency_key is already there, returns that first row instead (its '
'id is not p_id): the caller replays it.';

create or replace function public.create_transaction(
    p_user_id uuid,
    p_type text,
    p_amount numeric,
    p_currency text,
    p_idempotency_key text default null,
    p_metadata jsonb default '{}',
    p_counterparty_id uuid default null,
    p_original_transaction_id uuid default null
)
returns public.transactions
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
    v_request jsonb;
    v_id uuid := pg_catalog.gen_random_uuid();
    v_directory private.transaction_directory;
    v_transaction public.transactions;
    v_now timestamptz := pg_catalog.now();
begin
    perform private.require_transaction_arguments(
        p_user_id, p_type, p_amount, p_currency, p_metadata, p_counterparty_id,
        p_original_transaction_id, 'create_transaction', 'p_user_id', 'p_counterparty_id'
    );
    perform private.require_idempotency_key(p_idempotency_key, 'create_transaction');
    v_request := pg_catalog.jsonb_build_object(
        'user_id', p_user_id,
        'type', p_type,
        'amount', p_amount,
        'currency', p_currency,
        'metadata', coalesce(p_metadata, '{}'),
        'counterparty_id', p_counterparty_id,
        'original_transaction_id', p_original_transaction_id
    );

    v_directory := private.claim_transaction_directory(
        v_id, p_idempotency_key, v_request, v_now
    );
    if v_directory.id <> v_id then
        return private.replayed_transaction(v_directory, v_request);
    end if;

    -- After the directory, so that a retry of a transaction made before its user was erased
    -- still replays it.
    perform private.require_not_erased(p_user_id, p_counterparty_id, 'create_transaction');
    -- After the directory: a replayed refund is not checked again against what it took itself.
    if p_type = 'refund' then
        perform private.require_refundable(
            p_original_transaction_id, p_user_id, p_amount, p_currency
        );
    end if;

    insert into public.transactions (
        id,
        reference,
        user_id,
        type,
        amount,
        currency,
        counterparty_id,
        original_transaction_id,
        idempotency_key,
        correlation_id,
        metadata,
        created_at,
        updated_at
    )
    values (
        v_directory.id,
        v_directory.reference,
        p_user_id,
        p_type,
        p_amount,
        p_currency,
        p_counterparty_id,
        p_original_transaction_id,
        p_idempotency_key,
        private.request_correlation_id(),
        coalesce(p_metadata, '{}'),
        v_now,
        v_now
    )
    returning * into v_transaction;
    perform private.record_transaction_move(v_transaction, null, null);
    return v_transaction;
end;
$$;
comment on function public.create_transaction(
    uuid, text, numeric, text, text, jsonb, uuid, uuid
) is
'Creates a pending transaction of p_type (debit, credit, transfer, payment, refund, fee, '
'commission) for user p_user_id: p_amount in p_currency (ISO 4217, at most its minor units), '
'p_counterparty_id for a transfer, p_original_transaction_id for a refund (at most what remains '
'refundable of that completed debit, fee or payment), p_metadata a JSON object of at most 16 KB. '
'Returns the transaction, with its '
'reference. The same p_idempotency_key with the same arguments returns the first transaction, '
'also when calls race; with other arguments PT409. Bad input 22023, unknown user or original '
'PT404, an erased user or counterparty PT410 (a retry of a transaction made before the '
'erasure still replays it). Writes transaction_events and the outbox event '
'transaction.created. service_role only.';
revoke all on function public.create_transaction(
    uuid, text, numeric, text, text, jsonb, uuid, uuid
) from public, anon, authenticated;
grant execute on function public.create_transaction(
    uuid, text, numeric, text, text, jsonb, uuid, uuid
) to service_role;

create or replace function public.update_transaction_status(
    p_transaction_id uuid,
    p_new_status text,
    p_error_message text default null,
    p_reason text default null
)
returns public.transactions
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
    v_transaction public.transactions;
    v_from text;
    v_allowed text[];
begin
    if p_transaction_id is null then
        raise exception 'update_transaction_status: p_transaction_id must be a transaction id'
        using errcode = '22023';
    end if;
    if p_new_status is null or p_new_status not in (
        'pending', 'processing', 'completed', 'failed', 'cancelled', 'reversed'
    ) then
        raise exception 'update_transaction_status: p_new_status must be pending, processing, '
            'completed, failed, cancelled or reversed (got %)', coalesce(p_new_status, 'null')
        using errcode = '22023';
    end if;
    perform private.require_nullable_length(
        p_error_message, 0, 2000, 'update_transaction_status', 'p_error_message'
    );
    perform private.require_nullable_length(
        p_reason, 0, 2000, 'update_transaction_status', 'p_reason'
    );

    -- The row lock makes moves of one transaction take turns; the directory names its partition.
    select t.* into v_transaction
    from private.transaction_directory as d
    inner join public.transactions as t on d.id = t.id and d.created_at = t.created_at
    where d.id = p_transaction_id
    for update of t;
    if not found then
        raise exception 'update_transaction_status: no transaction %', p_transaction_id
        using errcode = 'PT404';
    end if;
    v_from := v_transaction.status;
    if v_from = p_new_status then
        return v_transaction;
    end if;
    v_allowed := case v_from
        when 'pending' then array['processing', 'cancelled', 'failed']
        when 'processing' then array['completed', 'failed']
        when 'completed' then array['reversed']
        else array[]::text []
    end;
    if not p_new_status = any(v_allowed) then
        raise exception 'update_transaction_status: % is %, it cannot become % (%)',
            v_transaction.reference, v_from, p_new_status,
            case when v_allowed = '{}' then 'it is final'
                else 'it may become ' || pg_catalog.array_to_string(v_allowed, ' or ') end
        using errcode = 'PT409';
    end if;

    if p_new_status in ('completed', 'reversed') then
        perform private.require_not_erased(
            v_transaction.user_id, v_transaction.counterparty_id, 'update_transaction_status'
        );
    end if;
    if p_new_status = 'completed' then
        perform private.move_wallets(v_transaction, 1);
    elsif p_new_status = 'reversed' then
        -- Undoing a refunded payment would give the refund back a second time.
        if exists (
            select from public.transactions as r
            where r.original_transaction_id = v_transaction.id
                and r.status in ('pending', 'processing', 'completed')
        ) then
            raise exception 'update_transaction_status: % has refunds; reverse those instead',
                v_transaction.reference
            using errcode = 'PT409';
        end if;
        perform private.move_wallets(v_transaction, -1);
    end if;

    update public.transactions as t
    set
        status = p_new_status,
        error_message = case when p_new_status = 'failed' then p_error_message else t.error_message end,
        completed_at = case when p_new_status = 'completed' then pg_catalog.now() else t.completed_at end,
        updated_at = pg_catalog.now()
    where t.id = v_transaction.id and t.created_at = v_transaction.created_at
    returning t.* into v_transaction;
    perform private.record_transaction_move(
        v_transaction, v_from, coalesce(p_reason, p_error_message)
    );
    return v_transaction;
end;
$$;
comment on function public.update_transaction_status(uuid, text, text, text) is
'Moves transaction p_transaction_id to p_new_status: pending to processing, cancelled or failed; '
'processing to completed or failed; completed to reversed. Completing moves the wallet balances '
'and reversing undoes exactly that, in this database transaction (PT402 when a balance would go '
'negative, changing nothing). The current status again is a no-op; any other move PT409; a '
'failure keeps p_error_message. Completing or reversing a transaction of an erased user or '
'counterparty is PT410 (failing or cancelling it is not). Writes transaction_events (reason: '
'p_reason, else the error) and the outbox event transaction.<status>. Returns the transaction. '
'Unknown id PT404, bad input 22023. service_role only.';
revoke all on function public.update_transaction_status(uuid, text, text, text)
from public, anon, authenticated;
grant execute on function public.update_transaction_status(uuid, text, text, text)
to service_role;

create or replace function public.transfer_funds(
    p_from_user_id uuid,
    p_to_user_id uuid,
    p_amount numeric,
    p_currency text,
    p_idempotency_key text default null,
    p_metadata jsonb default '{}'
)
returns public.transactions
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
-- A wallet-to-wallet transfer waits on no provider: it is created completed, in one call, where
-- create_transaction and two update_transaction_status calls would write the transaction three
-- times with an event and an outbox row each.
declare
    v_id uuid := pg_catalog.gen_random_uuid();
    v_request jsonb;
    v_directory private.transaction_directory;
    v_transaction public.transactions;
    v_now timestamptz := pg_catalog.now();
begin
    perform private.require_transaction_arguments(
        p_from_user_id, 'transfer', p_amount, p_currency, p_metadata,
        p_to_user_id, null, 'transfer_funds', 'p_from_user_id', 'p_to_user_id'
    );
    perform private.require_idempotency_key(p_idempotency_key, 'transfer_funds');
    -- Named apart from create_transaction's request: a key used there (a pending transfer) is
    -- not replayed here as if it had completed.
    v_request := pg_catalog.jsonb_build_object(
        'user_id', p_from_user_id,
        'type', 'transfer',
        'amount', p_amount,
        'currency', p_currency,
        'metadata', coalesce(p_metadata, '{}'),
        'counterparty_id', p_to_user_id,
        'original_transaction_id', null,
        'completed', true
    );

    v_directory := private.claim_transaction_directory(
        v_id, p_idempotency_key, v_request, v_now
    );
    if v_directory.id <> v_id then
        return private.replayed_transaction(v_directory, v_request);
    end if;
    perform private.require_not_erased(p_from_user_id, p_to_user_id, 'transfer_funds');

    v_transaction.id := v_id;
    v_transaction.reference := v_directory.reference;
    v_transaction.user_id := p_from_user_id;
    v_transaction.type := 'transfer';
    v_transaction.amount := p_amount;
    v_transaction.currency := p_currency;
    v_transaction.counterparty_id := p_to_user_id;
    -- PT402 here leaves nothing behind: the directory row goes with the failed statement.
    perform private.move_wallets(v_transaction, 1);

    insert into public.transactions (
        id,
        reference,
        user_id,
        type,
        amount,
        currency,
        status,
        counterparty_id,
        idempotency_key,
        correlation_id,
        metadata,
        created_at,
        updated_at,
        completed_at
    )
    values (
        v_id,
        v_directory.reference,
        p_from_user_id,
        'transfer',
        p_amount,
        p_currency,
        'completed',
        p_to_user_id,
        p_idempotency_key,
        private.request_correlation_id(),
        coalesce(p_metadata, '{}'),
        v_now,
        v_now,
        v_now
    )
    returning * into v_transaction;
    perform private.record_transaction_move(v_transaction, null, null);
    return v_transaction;
end;
$$;
comment on function public.transfer_funds(uuid, uuid, numeric, text, text, jsonb) is
'Moves p_amount in p_currency (ISO 4217, at most its minor units) from user p_from_user_id''s '
'wallet to user p_to_user_id''s, as one completed transfer created in this call: for transfers '
'between wallets, which wait on no provider (create_transaction and update_transaction_status '
'remain for those that do). p_metadata a JSON object of at most 16 KB. Returns the transaction. '
'The same p_idempotency_key (1 to 255 characters) with the same arguments returns the first '
'transfer and moves nothing again, also when calls race; with other arguments (or a key used by '
'create_transaction) PT409. Bad input (also the same user on both sides) 22023, unknown user '
'PT404, an erased user PT410, a balance that would go negative PT402; each changes nothing. '
'Writes one transaction_events row (null to completed) and the outbox event '
'transaction.completed. service_role only.';
revoke all on function public.transfer_funds(uuid, uuid, numeric, text, text, jsonb)
from public, anon, authenticated;
grant execute on function public.transfer_funds(uuid, uuid, numeric, text, text, jsonb)
to service_role;

-- Who reads --------------------------------------------------------------------------------------

select private.enable_audit('public.transactions');

drop policy if exists transactions_own_select on public.transactions;
create policy transactions_own_select on public.transactions
for select to authenticated
using ((select auth.uid()) in (user_id, counterparty_id));
drop policy if exists transaction_events_own_select on public.transaction_events;
create policy transaction_events_own_select on public.transaction_events
for select to authenticated
using (user_id = (select auth.uid()));
