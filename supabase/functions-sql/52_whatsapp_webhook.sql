-- ingest_whatsapp_webhook: a provider's webhook, stored in one transaction. Each provider's shape
-- is read into the same normalised messages and statuses (the WhatsApp normalisers' file), which
-- one path then stores (the WhatsApp ingest's storage file); what cannot be stored is set aside
-- as a dead letter.

create or replace function private.record_ingest_metrics(
    p_provider text,
    p_summary jsonb,
    p_types jsonb,
    p_elapsed interval
)
returns void
language plpgsql
volatile
set search_path = ''
as $$
begin
    -- One insert of values valid by construction: record_metrics' validation is for callers
    -- whose input is not, and here it cost as much as storing the message.
    insert into public.system_metrics (
        service_name, metric_type, metric_name, value, unit, tags
    )
    select 'whatsapp-ingest', m.metric_type, m.metric_name, m.value, m.unit, m.tags
    from (
        select
            'latency' as metric_type,
            'ingest.duration' as metric_name,
            extract(epoch from p_elapsed)::double precision * 1000 as value,
            'ms' as unit,
            pg_catalog.jsonb_build_object('provider', p_provider) as tags
        union all
        select
            'counter',
            'messages.duplicate',
            (p_summary ->> 'duplicates')::double precision,
            null,
            pg_catalog.jsonb_build_object('provider', p_provider)
        union all
        select
            'counter',
            'items.dead_lettered',
            (p_summary ->> 'dead_lettered')::double precision,
            null,
            pg_catalog.jsonb_build_object('provider', p_provider)
        where (p_summary ->> 'dead_lettered')::integer > 0
        union all
        select
            'counter',
            'messages.received',
            t.value::double precision,
            null,
            pg_catalog.jsonb_build_object('provider', p_provider, 'type', t.key)
        from pg_catalog.jsonb_each_text(p_types) as t
    ) as m;
exception when others then
    -- Metrics are worth less than the messages: a failure here never fails the ingest.
    raise warning 'ingest_whatsapp_webhook: metrics not recorded: % (%)', sqlerrm, sqlstate;
end;
$$;
comment on function private.record_ingest_metrics(text, jsonb, jsonb, interval) is
'Records an ingest''s latency, duplicates, dead letters and messages by type in system_metrics; '
'a failure is a warning, never an error.';

create or replace function private.inbound_message_fault(p_message jsonb)
returns text
language plpgsql
immutable
set search_path = ''
as $$
-- What makes a normalised message one that cannot be stored; null when it can be. The message
-- itself stays out of the text: it reaches logs and operators' screens.
begin
    return case
        when coalesce(p_message ->> 'wamid', '') = '' then 'the message has no id'
        when pg_catalog.char_length(p_message ->> 'wamid') > 255
            then 'the message id is longer than 255 characters'
        when p_message ->> 'contact_key' is null
            then 'the message has no sender (from or from_user_id)'
        when p_message ->> 'from_phone' is null and p_message ->> 'from_user_id' is null
            then 'the sender is not a phone number and the message has no from_user_id'
        when pg_catalog.char_length(p_message ->> 'from_user_id') not between 1 and 100
            then 'from_user_id must be 1 to 100 characters'
        when pg_catalog.char_length(p_message ->> 'contact_key') > 100
            then 'the sender is longer than 100 characters'
        when pg_catalog.jsonb_typeof(p_message -> 'media') not in ('object', 'null')
            then 'the media of a ' || (p_message ->> 'type') || ' message is not an object'
    end;
end;
$$;
comment on function private.inbound_message_fault(jsonb) is
'Why a normalised inbound message cannot be stored (no id, an id over 255 characters, no sender, '
'a sender that is neither a phone number nor a user id, ...); null when it can be.';

create or replace function private.message_status_fault(p_status jsonb)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
    return case
        when coalesce(p_status ->> 'wamid', '') = ''
            then 'the ' || coalesce(p_status ->> 'status', 'unnamed') || ' status has no message id'
        when pg_catalog.char_length(p_status ->> 'wamid') > 255
            then 'the status'' message id is longer than 255 characters'
    end;
end;
$$;
comment on function private.message_status_fault(jsonb) is
'Why a normalised status cannot be applied (no message id, or one over 255 characters); null '
'when it can be.';

create or replace function private.added_counts(p_first jsonb, p_second jsonb)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
-- Counts of two halves of a batch, added key by key, nested objects too (messages by type).
begin
    return (
        select coalesce(pg_catalog.jsonb_object_agg(k.key, k.total), '{}')
        from (
            select
                e.key,
                case
                    when pg_catalog.jsonb_typeof(p_first -> e.key) = 'object'
                        or pg_catalog.jsonb_typeof(p_second -> e.key) = 'object'
                        then private.added_counts(
                            coalesce(p_first -> e.key, '{}'), coalesce(p_second -> e.key, '{}')
                        )
                    else pg_catalog.to_jsonb(
                        coalesce((p_first ->> e.key)::bigint, 0)
                        + coalesce((p_second ->> e.key)::bigint, 0)
                    )
                end as total
            from (
                select f.key from pg_catalog.jsonb_object_keys(p_first) as f (key)
                union
                select g.key from pg_catalog.jsonb_object_keys(p_second) as g (key)
            ) as e
        ) as k
    );
end;
$$;
comment on function private.added_counts(jsonb, jsonb) is
'Two objects of counts added key by key (nested objects of counts too).';

create or replace function private.apply_message_statuses(
    p_statuses jsonb[],
    p_correlation_id text
)
returns jsonb
language plpgsql
volatile
set search_path = ''
as $$
declare
    v_status jsonb;
    v_outcome text;
    v_outcomes jsonb := '{"applied": 0, "ignored": 0, "pending": 0}';
begin
    foreach v_status in array coalesce(p_statuses, '{}') loop
        v_outcome := private.apply_message_status(v_status, p_correlation_id);
        v_outcome := case when v_outcome in ('applied', 'pending') then v_outcome else 'ignored' end;
        v_outcomes := v_outcomes || pg_catalog.jsonb_build_object(
            v_outcome, (v_outcomes ->> v_outcome)::integer + 1
        );
    end loop;
    return v_outcomes;
end;
$$;
comment on function private.apply_message_statuses(jsonb[], text) is
'Applies normalised statuses in order; returns how many were applied, ignored and pending.';

create or replace function private.store_or_set_aside(
    p_kind text,
    p_items jsonb[],
    p_correlation_id text,
    inout faults jsonb,
    out counts jsonb
)
language plpgsql
volatile
set search_path = ''
as $$
-- A batch of messages (p_kind message) or statuses (status) in one go. When a statement refuses
-- it (a value no check foresaw), each half is tried on its own, and so on down to the one item
-- refused, which is set aside with what the database said: k refusals in n items cost about
-- 2k log2(n) tries, where one by one cost n (a 10,000-message batch then ran past the statement
-- timeout on every retry). A fault a retry cures is not caught: lock and statement timeouts,
-- serialisation failures and deadlocks (two deliveries splitting into halves can lock in
-- different orders), and a unique violation (only a race gives one here) reach the webhook as a
-- 503.
declare
    v_half integer;
    v_first record;
    v_second record;
    v_sqlstate text;
    v_detail text;
begin
    counts := case p_kind
        when 'message' then '{"stored": 0, "duplicates": 0, "types": {}}'::jsonb
        else '{"applied": 0, "ignored": 0, "pending": 0}'::jsonb
    end;
    if coalesce(pg_catalog.cardinality(p_items), 0) = 0 then
        return;
    end if;
    begin
        counts := case p_kind
            when 'message' then private.store_inbound_messages(p_items, p_correlation_id)
            else private.apply_message_statuses(p_items, p_correlation_id)
        end;
        return;
    exception when data_exception or integrity_constraint_violation or program_limit_exceeded then
        get stacked diagnostics v_sqlstate = returned_sqlstate, v_detail = message_text;
        if v_sqlstate in ('23505', '23P01') then
            raise;
        end if;
    end;
    if pg_catalog.cardinality(p_items) = 1 then
        faults := faults || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
            'kind', p_kind,
            'item', p_items[1],
            'reason', 'database_error',
            'detail', v_detail,
            'sqlstate', v_sqlstate
        ));
        return;
    end if;
    v_half := pg_catalog.cardinality(p_items) / 2;
    v_first := private.store_or_set_aside(p_kind, p_items[1:v_half], p_correlation_id, faults);
    v_second := private.store_or_set_aside(
        p_kind, p_items[v_half + 1:], p_correlation_id, v_first.faults
    );
    faults := v_second.faults;
    counts := private.added_counts(v_first.counts, v_second.counts);
end;
$$;
comment on function private.store_or_set_aside(text, jsonb[], text, jsonb) is
'Stores normalised messages (p_kind message) or applies statuses (status); an item the database '
'refuses is added to faults (kind, item, reason database_error, detail, sqlstate) and the others '
'are stored. counts is store_inbound_messages'' or apply_message_statuses'' answer.';

create or replace function private.ingest_webhook(
    p_provider text,
    p_payload jsonb,
    p_correlation_id text,
    p_dead_letter boolean
)
returns jsonb
language plpgsql
volatile
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
-- With p_dead_letter, what cannot be stored becomes a dead letter; without (a dead letter's own
-- retry), it is only reported in faults.
declare
    v_started timestamptz := pg_catalog.clock_timestamp();
    v_messages jsonb [];
    v_statuses jsonb [];
    v_faults jsonb := '[]';
    v_stored record;
    v_applied record;
    v_summary jsonb;
begin
    -- One order for every batch (contact, time, wamid): concurrent batches about the same
    -- contacts lock their rows in the same order and cannot deadlock. Messages that cannot be
    -- stored are set aside first.
    select
        pg_catalog.array_agg(m.message order by
            m.message ->> 'contact_key',
            (m.message ->> 'at')::timestamptz nulls last,
            m.message ->> 'wamid') filter (where f.fault is null),
        coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
            'kind', 'message',
            'item', m.message,
            'reason', 'invalid_payload',
            'detail', f.fault,
            'sqlstate', '22023'
        )) filter (where f.fault is not null), '[]')
    into v_messages, v_faults
    from private.webhook_messages(p_provider, p_payload) as m (message)
    cross join lateral (select private.inbound_message_fault(m.message) as fault) as f;

    select
        pg_catalog.array_agg(s.status order by
            s.status ->> 'wamid',
            private.status_rank(s.status ->> 'status') nulls last,
            (s.status ->> 'at')::timestamptz) filter (where f.fault is null),
        v_faults || coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
            'kind', 'status',
            'item', s.status,
            'reason', 'invalid_payload',
            'detail', f.fault,
            'sqlstate', '22023'
        )) filter (where f.fault is not null), '[]')
    into v_statuses, v_faults
    from private.webhook_statuses(p_provider, p_payload) as s (status)
    cross join lateral (select private.message_status_fault(s.status) as fault) as f;

    -- An empty list returns before its subtransaction: most webhooks carry one kind.
    v_stored := private.store_or_set_aside('message', v_messages, p_correlation_id, v_faults);
    v_applied := private.store_or_set_aside(
        'status', v_statuses, p_correlation_id, v_stored.faults
    );
    v_faults := v_applied.faults;

    if p_dead_letter then
        perform private.dead_letter_whatsapp(
            p_provider,
            f.fault ->> 'kind',
            f.fault ->> 'reason',
            f.fault ->> 'detail',
            f.fault ->> 'sqlstate',
            f.fault -> 'item' -> 'raw',
            null,
            f.fault -> 'item' ->> 'wamid',
            coalesce(f.fault -> 'item' ->> 'from_phone', f.fault -> 'item' ->> 'contact_key'),
            p_correlation_id
        )
        from pg_catalog.jsonb_array_elements(v_faults) as f (fault)
        -- One order in every transaction: two deliveries setting aside the same two things
        -- wait for each other instead of deadlocking.
        order by (f.fault -> 'item' -> 'raw')::text;
    end if;

    v_summary := pg_catalog.jsonb_build_object(
        'messages_stored', (v_stored.counts ->> 'stored')::integer,
        'duplicates', (v_stored.counts ->> 'duplicates')::integer,
        'statuses_applied', (v_applied.counts ->> 'applied')::integer,
        'statuses_ignored', (v_applied.counts ->> 'ignored')::integer,
        'statuses_pending', (v_applied.counts ->> 'pending')::integer,
        'dead_lettered', case when p_dead_letter then pg_catalog.jsonb_array_length(v_faults) else 0
        end
    );
    perform private.record_ingest_metrics(
        p_provider,
        v_summary,
        v_stored.counts -> 'types',
        pg_catalog.clock_timestamp() - v_started
    );
    if not p_dead_letter then
        v_summary := v_summary || pg_catalog.jsonb_build_object('faults', (
            select coalesce(pg_catalog.jsonb_agg(f.fault - 'item'), '[]')
            from pg_catalog.jsonb_array_elements(v_faults) as f (fault)
        ));
    end if;
    return v_summary;
end;
$$;
comment on function private.ingest_webhook(text, jsonb, text, boolean) is
'Stores what a webhook payload of p_provider carries; what cannot be stored becomes a dead letter '
'(p_dead_letter) or is reported in faults. Returns the summary of ingest_whatsapp_webhook.';

create or replace function public.ingest_whatsapp_webhook(
    p_provider text,
    p_payload jsonb,
    p_correlation_id text default null
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
    if p_provider is null or p_provider not in ('meta', 'twilio') then
        raise exception 'ingest_whatsapp_webhook: p_provider must be meta or twilio (got %)',
            private.quoted_for_error(p_provider, 20)
        using errcode = '22023';
    end if;
    perform private.require_json_object(p_payload, 'ingest_whatsapp_webhook', 'p_payload');
    perform private.require_json_size(p_payload, 8388608, 'ingest_whatsapp_webhook', 'p_payload');
    perform private.require_identifier(
        p_correlation_id, 'ingest_whatsapp_webhook', 'p_correlation_id'
    );
    if p_provider = 'meta' and p_payload ->> 'object' is distinct from 'whatsapp_business_account'
        then
        raise exception 'ingest_whatsapp_webhook: a Meta payload''s object must be '
            'whatsapp_business_account (got %)',
            private.quoted_for_error(p_payload ->> 'object', 60)
        using errcode = '22023';
    end if;
    return private.ingest_webhook(
        p_provider,
        p_payload,
        coalesce(p_correlation_id, private.request_correlation_id()),
        true
    );
end;
$$;
comment on function public.ingest_whatsapp_webhook(text, jsonb, text) is
'Stores a WhatsApp webhook in one transaction. p_provider meta: the Cloud API body, every entry, '
'change, message and status; twilio: the form fields as a JSON object (at most 8 MiB). Messages '
'are idempotent by wamid; statuses move forward only and wait for an unknown wamid. A message or '
'status that cannot be stored (no id, a sender that is not a phone number, a value the database '
'refuses) becomes a webhook dead letter and the rest is stored. Returns {messages_stored, '
'duplicates, statuses_applied, statuses_ignored, statuses_pending, dead_lettered}. A payload '
'that is not a provider''s shape at all is 22023. service_role only.';
revoke all on function public.ingest_whatsapp_webhook(text, jsonb, text)
from public, anon, authenticated;
grant execute on function public.ingest_whatsapp_webhook(text, jsonb, text) to service_role;
