-- The floor under a transfer: the rows a transfer writes (bench/payments.py), written by one
-- plain function in one call, with nothing else. No argument checks, no idempotency lookup, no
-- state machine, no overdraft check; the audit rows written here instead of by the trigger;
-- the users locked FOR KEY SHARE as the foreign keys would lock them, once. The bench runs it
-- with session_replication_role = replica, so that no trigger (audit or foreign key) fires.
-- Whatever a transfer costs above this is the logic; this much no implementation can shed.
create function public.bench_floor_transfer(p_from uuid, p_to uuid, p_amount numeric)
returns void
language plpgsql
set search_path = ''
as $$
declare
    v_id uuid := pg_catalog.gen_random_uuid();
    v_now timestamptz := pg_catalog.now();
    v_reference text := 'TXN-' || pg_catalog.upper(pg_catalog.substr(pg_catalog.md5(v_id::text), 1, 15));
    v_before public.transactions;
    v_after public.transactions;
    v_step record;
begin
    perform from public.users as u where u.id in (p_from, p_to) for key share;
    insert into private.transaction_directory (id, reference, idempotency_key, request, created_at)
    values (
        v_id, v_reference, 'floor-' || v_id,
        pg_catalog.jsonb_build_object(
            'user_id', p_from, 'type', 'transfer', 'amount', p_amount, 'currency', 'RWF',
            'metadata', '{}'::jsonb, 'counterparty_id', p_to, 'original_transaction_id', null
        ),
        v_now
    );
    insert into public.transactions (
        id, reference, user_id, type, amount, currency, counterparty_id, idempotency_key,
        created_at, updated_at
    )
    values (
        v_id, v_reference, p_from, 'transfer', p_amount, 'RWF', p_to, 'floor-' || v_id, v_now,
        v_now
    )
    returning * into v_after;
    insert into public.system_audit_logs (
        actor_type, actor_identifier, action, resource_type, resource_id, new_data
    )
    values (
        'database', 'postgres', 'insert', 'public.transactions', v_id::text,
        pg_catalog.to_jsonb(v_after)
    );

    for v_step in select * from (values (null, 'pending'), ('pending', 'processing'),
        ('processing', 'completed')) as s (from_status, to_status) loop
        if v_step.from_status is not null then
            if v_step.to_status = 'completed' then
                update public.wallets as w
                set
                    balance = w.balance + case when w.user_id = p_from then -p_amount else p_amount end,
                    updated_at = v_now
                where w.user_id in (p_from, p_to) and w.currency = 'RWF';
                insert into public.system_audit_logs (
                    actor_type, actor_identifier, action, resource_type, resource_id, old_data,
                    new_data, changed_keys
                )
                select
                    'database', 'postgres', 'update', 'public.wallets', w.user_id::text,
                    pg_catalog.to_jsonb(w), pg_catalog.to_jsonb(w), '{balance,updated_at}'
                from public.wallets as w
                where w.user_id in (p_from, p_to) and w.currency = 'RWF';
            end if;
            v_before := v_after;
            update public.transactions as t
            set
                status = v_step.to_status,
                completed_at = case when v_step.to_status = 'completed' then v_now end,
                updated_at = v_now
            where t.id = v_id and t.created_at = v_now
            returning * into v_after;
            insert into public.system_audit_logs (
                actor_type, actor_identifier, action, resource_type, resource_id, old_data,
                new_data, changed_keys
            )
            values (
                'database', 'postgres', 'update', 'public.transactions', v_id::text,
                pg_catalog.to_jsonb(v_before), pg_catalog.to_jsonb(v_after),
                '{completed_at,status,updated_at}'
            );
        end if;
        insert into public.transaction_events (
            transaction_id, user_id, from_status, to_status, actor_type, actor_id
        )
        values (v_id, p_from, v_step.from_status, v_step.to_status, 'database', 'postgres');
        insert into public.outbox_events (aggregate_type, aggregate_id, event_type, payload)
        values (
            'transaction', v_id::text, 'transaction.' || case when v_step.from_status is null
                then 'created' else v_step.to_status end,
            pg_catalog.jsonb_build_object(
                'id', v_id, 'reference', v_reference, 'user_id', p_from,
                'counterparty_id', p_to, 'type', 'transfer', 'amount', p_amount::text,
                'currency', 'RWF', 'from_status', v_step.from_status,
                'status', v_step.to_status, 'reason', null
            )
        );
    end loop;
end;
$$;

-- The floor under transfer_funds: the rows one completed-at-once transfer writes (1 directory
-- row, the transaction inserted completed, 1 event, 1 outbox row, 3 audit rows, 2 wallets moved,
-- both users locked FOR KEY SHARE), the same way.
create function public.bench_floor_transfer_funds(p_from uuid, p_to uuid, p_amount numeric)
returns void
language plpgsql
set search_path = ''
as $$
declare
    v_id uuid := pg_catalog.gen_random_uuid();
    v_now timestamptz := pg_catalog.now();
    v_reference text := 'TXN-' || pg_catalog.upper(pg_catalog.substr(pg_catalog.md5(v_id::text), 1, 15));
    v_after public.transactions;
begin
    perform from public.users as u where u.id in (p_from, p_to) for key share;
    insert into private.transaction_directory (id, reference, idempotency_key, request, created_at)
    values (
        v_id, v_reference, 'floor-' || v_id,
        pg_catalog.jsonb_build_object(
            'user_id', p_from, 'type', 'transfer', 'amount', p_amount, 'currency', 'RWF',
            'metadata', '{}'::jsonb, 'counterparty_id', p_to, 'original_transaction_id', null,
            'completed', true
        ),
        v_now
    );
    update public.wallets as w
    set
        balance = w.balance + case when w.user_id = p_from then -p_amount else p_amount end,
        updated_at = v_now
    where w.user_id in (p_from, p_to) and w.currency = 'RWF';
    insert into public.system_audit_logs (
        actor_type, actor_identifier, action, resource_type, resource_id, old_data, new_data,
        changed_keys
    )
    select
        'database', 'postgres', 'update', 'public.wallets', w.user_id::text,
        pg_catalog.to_jsonb(w), pg_catalog.to_jsonb(w), '{balance,updated_at}'
    from public.wallets as w
    where w.user_id in (p_from, p_to) and w.currency = 'RWF';
    insert into public.transactions (
        id, reference, user_id, type, amount, currency, status, counterparty_id, idempotency_key,
        created_at, updated_at, completed_at
    )
    values (
        v_id, v_reference, p_from, 'transfer', p_amount, 'RWF', 'completed', p_to,
        'floor-' || v_id, v_now, v_now, v_now
    )
    returning * into v_after;
    insert into public.system_audit_logs (
        actor_type, actor_identifier, action, resource_type, resource_id, new_data
    )
    values (
        'database', 'postgres', 'insert', 'public.transactions', v_id::text,
        pg_catalog.to_jsonb(v_after)
    );
    insert into public.transaction_events (
        transaction_id, user_id, from_status, to_status, actor_type, actor_id
    )
    values (v_id, p_from, null, 'completed', 'database', 'postgres');
    insert into public.outbox_events (aggregate_type, aggregate_id, event_type, payload)
    values (
        'transaction', v_id::text, 'transaction.completed',
        pg_catalog.jsonb_build_object(
            'id', v_id, 'reference', v_reference, 'user_id', p_from, 'counterparty_id', p_to,
            'type', 'transfer', 'amount', p_amount::text, 'currency', 'RWF',
            'from_status', null, 'status', 'completed', 'reason', null
        )
    );
end;
$$;
