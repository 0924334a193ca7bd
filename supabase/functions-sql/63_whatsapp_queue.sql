-- whatsapp_message_queue: enqueue (validated, inside the customer service window), the sender's
-- claims (in order and one at a time per recipient), its outcomes, the stop-the-line pause, and
-- redrive. Every RPC is service_role only.

create or replace function public.enqueue_whatsapp_message(
    p_recipient_phone text,
    p_message_type text,
    p_payload jsonb,
    p_priority integer default 5,
    p_correlation_id text default null,
    p_scheduled_at timestamptz default null,
    p_idempotency_key text default null
)
returns bigint
language plpgsql
volatile
security definer
set search_path = ''
-- The wake-up check below must read the ready index whatever the statistics say. Analysed while
-- empty, the table looks free to read whole; the cached plan then scanned every queued row on
-- each enqueue, and 200,000 enqueues in one statement did not finish in 15 minutes.
set enable_seqscan = off
set enable_bitmapscan = off
as $$
declare
    v_phone text := private.required_phone(
        p_recipient_phone, 'enqueue_whatsapp_message', 'p_recipient_phone'
    );
    v_scheduled_at timestamptz := coalesce(p_scheduled_at, pg_catalog.now());
    v_problem text := private.whatsapp_payload_problem(p_message_type, p_payload);
    v_window_closes_at timestamptz;
    v_notify boolean;
    v_id bigint;
begin
    if v_problem is not null then
        raise exception 'enqueue_whatsapp_message: %', v_problem
        using errcode = '22023';
    end if;
    perform private.require_between(p_priority, 1, 10, 'enqueue_whatsapp_message', 'p_priority');
    perform private.require_identifier(
        p_correlation_id, 'enqueue_whatsapp_message', 'p_correlation_id'
    );
    perform private.require_plausible_time(
        p_scheduled_at, 'enqueue_whatsapp_message', 'p_scheduled_at'
    );
    perform private.require_idempotency_key(p_idempotency_key, 'enqueue_whatsapp_message');

    -- A retry of an enqueue that was accepted returns its id, even once the window has closed:
    -- the message is queued already.
    if p_idempotency_key is not null then
        select q.id into v_id
        from public.whatsapp_message_queue as q
        where q.idempotency_key = p_idempotency_key;
        if found then
            return v_id;
        end if;
    end if;

    -- Free-form messages only while the recipient's last message is less than 24 hours old when
    -- this one is due; a template may open a conversation at any time. The provider would
    -- refuse it (131047, Twilio 63016) after a trip through the queue.
    if p_message_type <> 'template' then
        v_window_closes_at := private.service_window_closes_at(pg_catalog.ltrim(v_phone, '+'));
        if v_window_closes_at is null or v_window_closes_at <= v_scheduled_at then
            raise exception 'enqueue_whatsapp_message: the 24-hour customer service window of % '
                'is closed for a message due at %: only a template can be sent', v_phone, v_scheduled_at
            using
                errcode = 'PT409',
                detail = case
                    when v_window_closes_at is null then 'the recipient has never written'
                    else 'the window closes at ' || v_window_closes_at
                end,
                hint = 'send message_type template';
        end if;
    end if;

    -- As enqueue_message: only the message that makes the queue non-empty wakes the sender.
    v_notify := v_scheduled_at <= pg_catalog.now() and not exists (
        select from public.whatsapp_message_queue as q
        where q.status = 'pending' and q.visible_at <= pg_catalog.now()
    );
    insert into public.whatsapp_message_queue (
        recipient_phone,
        message_type,
        payload,
        priority,
        visible_at,
        scheduled_at,
        idempotency_key,
        correlation_id
    )
    values (
        v_phone,
        p_message_type,
        p_payload,
        p_priority,
        v_scheduled_at,
        v_scheduled_at,
        p_idempotency_key,
        coalesce(p_correlation_id, private.request_correlation_id())
    )
    on conflict (idempotency_key) where idempotency_key is not null do nothing
    returning id into v_id;
    if v_id is null then
        -- A concurrent enqueue with this key waited for the first to commit: return its id.
        return (
            select q.id from public.whatsapp_message_queue as q
            where q.idempotency_key = p_idempotency_key
        );
    end if;
    perform private.keep_queue_head(
        'whatsapp_message_queue', '', p_priority::smallint, v_scheduled_at, v_id
    );
    if v_notify then
        perform pg_catalog.pg_notify('whatsapp_message_queue', '');
    end if;
    return v_id;
end;
$$;
comment on function public.enqueue_whatsapp_message(
    text, text, jsonb, integer, text, timestamptz, text
) is
'Queues a WhatsApp message to p_recipient_phone (E.164; WhatsApp digits and whatsapp: addresses '
'are accepted) of p_message_type text, template, media, interactive or location with the Cloud '
'API''s object for that type as p_payload (at most 64 KB), priority 1 to 10, sent from '
'p_scheduled_at (default now; within a year of now), p_correlation_id at most 200 characters. '
'Returns its id; the same p_idempotency_key returns the first id. A bad payload is 22023 '
'naming the field; a free-form message whose recipient''s 24-hour window is closed when it is '
'due is PT409 (templates are always allowed). Notifies whatsapp_message_queue when the queue '
'had nothing due. service_role only.';
revoke all on function public.enqueue_whatsapp_message(
    text, text, jsonb, integer, text, timestamptz, text
) from public, anon, authenticated;
grant execute on function public.enqueue_whatsapp_message(
    text, text, jsonb, integer, text, timestamptz, text
) to service_role;

create or replace function private.advance_whatsapp_queue_head(p_priority smallint)
returns private.queue_heads
language plpgsql
volatile
set search_path = ''
as $$
declare
    v_head private.queue_heads;
    v_limit timestamptz;
    v_first_visible_at timestamptz;
    v_first_id bigint;
begin
    v_head := private.take_due_queue_head('whatsapp_message_queue', '', p_priority);
    if v_head is null then
        return null;
    end if;
    v_limit := private.queue_head_limit();
    select q.visible_at, q.id into v_first_visible_at, v_first_id
    from public.whatsapp_message_queue as q
    where q.status = 'pending'
        and q.priority = p_priority
        and (q.visible_at, q.id) >= (v_head.visible_from, v_head.id_from)
    order by q.visible_at, q.id
    limit 1;
    return private.move_queue_head(
        'whatsapp_message_queue', '', p_priority, v_limit, v_first_visible_at, v_first_id
    );
end;
$$;
comment on function private.advance_whatsapp_queue_head(smallint) is
'Moves the head of whatsapp_message_queue at p_priority to its first pending message when no '
'claim has for 100 ms and none is moving it; returns the new head, or null when it was not '
'moved.';

create or replace function public.claim_whatsapp_messages(
    p_batch_size integer default 50,
    p_visibility_timeout_s integer default 60,
    p_worker_id text default null
)
returns setof public.whatsapp_message_queue
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_head private.queue_heads;
    v_left integer := p_batch_size;
    v_claimed integer;
begin
    perform private.require_claim_arguments(
        p_batch_size, p_visibility_timeout_s, 'claim_whatsapp_messages'
    );
    -- Stored as claimed_by.
    perform private.require_identifier(p_worker_id, 'claim_whatsapp_messages', 'p_worker_id');
    if exists (select from private.whatsapp_sender_pause) then
        return;
    end if;

    -- Highest priority first, each priority read from its head (59_queues.sql), but only the
    -- head of each recipient's lane: a message whose recipient has an earlier one still
    -- pending (waiting, in flight or retrying), or any one in flight, waits for it, so one
    -- recipient's messages go out in order and never two at once (Meta's pair rate limit),
    -- while different recipients' go in parallel. A competing claim that has locked a head
    -- makes it skipped, and the message behind it is still not a head.
    for v_head in
        select h.* from private.queue_heads as h
        where h.queue = 'whatsapp_message_queue' and h.queue_name = ''
        order by h.priority desc
    loop
        exit when v_left = 0;
        if v_head.advanced_at < pg_catalog.now() - interval '100 milliseconds' then
            v_head := coalesce(private.advance_whatsapp_queue_head(v_head.priority), v_head);
        end if;

        return query
        with picked as (
            select q.id
            from public.whatsapp_message_queue as q
            where q.status = 'pending'
                and q.priority = v_head.priority
                and (q.visible_at, q.id) >= (v_head.visible_from, v_head.id_from)
                and q.visible_at <= pg_catalog.now()
                and not exists (
                    select from public.whatsapp_message_queue as other
                    where other.recipient_phone = q.recipient_phone
                        and other.status = 'pending'
                        and other.id <> q.id
                        and (
                            (other.scheduled_at, other.id) < (q.scheduled_at, q.id)
                            -- In flight, whatever its place: enqueued late with an earlier
                            -- scheduled_at, or redriven.
                            or (
                                other.claimed_at is not null
                                and other.visible_at > pg_catalog.now()
                            )
                        )
                )
            order by q.visible_at, q.id
            limit v_left
            for update skip locked
        ),

        -- A message whose lease ran out after its recipient was erased is not sent again. The
        -- dead-letter rule is claim_messages' (message queue file), written here again to keep
        -- the claim one static UPDATE (README, Queues).
        claimed as (
            update public.whatsapp_message_queue as q
            set
                attempts = q.attempts + case
                    when q.attempts > q.max_retries or q.erased_at is not null then 0 else 1
                end,
                status = case
                    when q.erased_at is not null then 'cancelled'
                    when q.attempts > q.max_retries then 'dead'
                    else 'pending'
                end,
                finished_at = case
                    when q.attempts > q.max_retries or q.erased_at is not null
                        then pg_catalog.now()
                end,
                last_error = case
                    when q.erased_at is null and q.attempts > q.max_retries
                        then 'visibility timeout expired on the last attempt'
                    else q.last_error
                end,
                visible_at = pg_catalog.now()
                + pg_catalog.make_interval(secs => p_visibility_timeout_s),
                claimed_at = pg_catalog.now(),
                claimed_by = p_worker_id
            from picked as p
            where q.id = p.id
            returning q.*
        )

        select c.* from claimed as c where c.status = 'pending'
        order by c.id;
        get diagnostics v_claimed = row_count;
        v_left := v_left - v_claimed;
    end loop;
end;
$$;
comment on function public.claim_whatsapp_messages(integer, integer, text) is
'The sender''s claim: up to p_batch_size due messages, highest priority first, at most one per '
'recipient and only when nothing earlier to that recipient is still pending, hidden for '
'p_visibility_timeout_s seconds (longer than a send may take). Nothing while the queue is '
'paused. A message already delivered max_retries + 1 times is dead-lettered instead. Bad input '
'22023. service_role only.';
revoke all on function public.claim_whatsapp_messages(integer, integer, text)
from public, anon, authenticated;
grant execute on function public.claim_whatsapp_messages(integer, integer, text) to service_role;

create or replace function private.whatsapp_results_problem(p_results jsonb)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
    if pg_catalog.jsonb_typeof(p_results) is distinct from 'array' then
        return 'p_results must be a JSON array of results';
    end if;
    -- No claim hands out more.
    if pg_catalog.jsonb_array_length(p_results) > 1000 then
        return 'p_results must hold at most 1000 results';
    end if;
    return coalesce(
        (
            select 'p_results[' || (r.n - 1) || '] ' || p.problem
            from pg_catalog.jsonb_array_elements(p_results) with ordinality as r (result, n)
            cross join lateral (
                select case
                    when pg_catalog.jsonb_typeof(r.result) <> 'object'
                        then 'must be an object'
                    when pg_catalog.jsonb_typeof(r.result -> 'id') is distinct from 'number'
                        or (r.result ->> 'id') !~ '^-?[0-9]{1,18}$'
                        then 'needs the message id (a whole number)'
                    when (r.result ->> 'outcome') is null
                        or (r.result ->> 'outcome')
                        not in ('sent', 'retry', 'failed', 'unconfirmed', 'released')
                        then 'outcome must be sent, retry, failed, unconfirmed or released'
                    when (r.result ->> 'outcome') = 'sent'
                        and (
                            (r.result ->> 'provider') is null
                            or (r.result ->> 'provider') not in ('meta', 'twilio')
                            or coalesce(
                                pg_catalog.char_length(r.result ->> 'provider_message_id'), 0
                            ) not between 1 and 255
                        )
                        then 'sent needs provider (meta or twilio) and provider_message_id'
                    when (r.result ->> 'retry_in_s')::numeric not between 0 and 604800
                        then 'retry_in_s must be 0 to 604800 seconds'
                    -- Ours ('131047', 'http_503', an exception's name); the provider's error
                    -- text is kept to 2000 characters rather than refused.
                    when pg_catalog.char_length(r.result ->> 'error_code') > 100
                        then 'error_code must be at most 100 characters'
                end as problem
            ) as p
            where p.problem is not null
            order by r.n
            limit 1
        ),
        (
            select 'p_results names a message more than once'
            from pg_catalog.jsonb_array_elements(p_results) as r (result)
            having count(distinct r.result ->> 'id') < count(*)
        )
    );
exception
    when invalid_text_representation or numeric_value_out_of_range then
        return 'p_results has an id or retry_in_s that is not a number';
end;
$$;
comment on function private.whatsapp_results_problem(jsonb) is
'The first problem of the sender''s results for record_whatsapp_sends (null: none).';

create or replace function private.emit_whatsapp_send_event(
    p_message public.whatsapp_message_queue,
    p_details jsonb
)
returns bigint
language plpgsql
volatile
set search_path = ''
as $$
-- Downstream (the desk, the app) learns of a message that will not arrive under one event
-- shape, whichever way it ended.
begin
    return private.emit_event(
        'whatsapp_message_queue',
        p_message.id::text,
        'whatsapp.send_' || p_message.status,
        pg_catalog.jsonb_build_object(
            'queue_id', p_message.id,
            'recipient_phone', p_message.recipient_phone,
            'message_type', p_message.message_type,
            'attempts', p_message.attempts
        ) || p_details,
        p_message.correlation_id
    );
end;
$$;
comment on function private.emit_whatsapp_send_event(public.whatsapp_message_queue, jsonb) is
'Emits whatsapp.send_<status> for queued message p_message: queue_id, recipient_phone, '
'message_type and attempts, with p_details (why it ended). Returns the event''s id.';

create or replace function public.record_whatsapp_sends(
    p_results jsonb,
    p_worker_id text default null
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_problem text := private.whatsapp_results_problem(p_results);
    v_counts jsonb;
    v_refused bigint[];
    v_back bigint[];
begin
    if v_problem is not null then
        raise exception 'record_whatsapp_sends: %', v_problem
        using errcode = '22023';
    end if;

    -- One statement for the whole batch. Only messages this worker holds change: a worker whose
    -- lease ran out lost the message to another claim, and its late result is ignored. A
    -- message whose recipient was erased while it was in flight is recorded without the
    -- person (erase_user blanked the row), and what would have put it back is cancelled.
    with results as (
        select
            r.*,
            t.ends_as,
            t.delivery_counts,
            t.backs_off,
            t.keeps_error
        from pg_catalog.jsonb_to_recordset(p_results) as r (
            id bigint,
            outcome text,
            provider text,
            provider_message_id text,
            error_code text,
            error text,
            retry_in_s double precision
        )
        -- Each outcome's transition: the status it ends in (null: back on the queue, where the
        -- dead-letter rule decides, as in claim_whatsapp_messages), whether the delivery counts (released: stop-the-line or
        -- shutdown, the send never happened), whether it waits out a backoff, and whether the
        -- message keeps its previous error.
        inner join (
            values
            ('sent', 'sent', true, false, true),
            ('failed', 'failed', true, false, false),
            ('unconfirmed', 'unconfirmed', true, false, false),
            ('retry', null, true, true, false),
            ('released', null, false, false, true)
        ) as t (outcome, ends_as, delivery_counts, backs_off, keeps_error)
            on r.outcome = t.outcome
    ),

    recorded as (
        update public.whatsapp_message_queue as q
        set
            -- A final outcome ends as it says; a message back on the queue as the dead-letter
            -- rule says, its attempts as they count.
            (status, attempts, finished_at) = (
                select
                    b.status,
                    a.attempts,
                    case when b.status <> 'pending' then pg_catalog.now() end
                from (
                    values (
                        case
                            when r.delivery_counts then q.attempts
                            else greatest(q.attempts - 1, 0)
                        end
                    )
                ) as a (attempts)
                cross join lateral (
                    values (
                        case
                            when r.ends_as is not null then r.ends_as
                            when q.erased_at is not null then 'cancelled'
                            when r.delivery_counts and a.attempts > q.max_retries then 'dead'
                            else 'pending'
                        end
                    )
                ) as b (status)
            ),
            visible_at = case
                when r.ends_as is not null then q.visible_at
                when r.backs_off then pg_catalog.now() + coalesce(
                    pg_catalog.make_interval(secs => r.retry_in_s),
                    private.retry_backoff(q.attempts)
                )
                else pg_catalog.now()
            end,
            claimed_at = case when r.ends_as is null then null else q.claimed_at end,
            claimed_by = case when r.ends_as is null then null else q.claimed_by end,
            sent_at = case when r.ends_as = 'sent' then pg_catalog.now() end,
            provider = coalesce(r.provider, q.provider),
            provider_message_id = case when r.ends_as = 'sent' then r.provider_message_id end,
            last_error_code = case when r.keeps_error then q.last_error_code else r.error_code end,
            -- A provider's error text may quote the number.
            last_error = case
                when q.erased_at is not null then null
                when r.keeps_error then q.last_error
                else pg_catalog.left(r.error, 2000)
            end
        from results as r
        where q.id = r.id
            and q.status = 'pending'
            and q.claimed_at is not null
            and (p_worker_id is null or q.claimed_by = p_worker_id)
        returning q.*, r.outcome
    ),

    -- The outbound row status webhooks look for by wamid (Twilio: the message SID). Statuses
    -- that came first are waiting in private.pending_message_statuses and apply on insert.
    tracked as (
        insert into public.message_tracking (
            wamid,
            mapping_id,
            user_id,
            direction,
            provider,
            message_type,
            status,
            body,
            content,
            correlation_id,
            metadata
        )
        select
            s.provider_message_id,
            (
                select m.id from public.conversation_mappings as m
                where m.wa_id = pg_catalog.ltrim(s.recipient_phone, '+') and m.status = 'active'
            ),
            (select u.id from public.users as u where u.phone_number = s.recipient_phone),
            'OUTBOUND',
            s.provider,
            case when s.message_type = 'media' then s.payload ->> 'media_type' else s.message_type end,
            'accepted',
            case s.message_type
                when 'text' then s.payload ->> 'body'
                when 'media' then s.payload ->> 'caption'
                when 'interactive' then s.payload #>> '{body,text}'
            end,
            case when s.message_type <> 'text' and s.erased_at is null then s.payload end,
            s.correlation_id,
            pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                'queue_id', s.id, 'recipient_phone', s.recipient_phone
            ))
        from recorded as s
        where s.status = 'sent'
        on conflict (wamid) do nothing
        returning 1
    )

    select
        pg_catalog.jsonb_build_object(
            'sent', count(*) filter (where r.status = 'sent'),
            'retrying', count(*) filter (where r.outcome = 'retry' and r.status = 'pending'),
            'failed', count(*) filter (where r.status = 'failed'),
            'dead', count(*) filter (where r.status = 'dead'),
            'unconfirmed', count(*) filter (where r.status = 'unconfirmed'),
            'released', count(*) filter (
                where r.outcome = 'released' and r.status = 'pending'
            ),
            'cancelled', count(*) filter (where r.status = 'cancelled'),
            'ignored', pg_catalog.jsonb_array_length(p_results) - count(*),
            'tracked', (select count(*) from tracked)
        ),
        pg_catalog.array_agg(r.id) filter (where r.status in ('failed', 'dead', 'unconfirmed')),
        pg_catalog.array_agg(r.id) filter (where r.status = 'pending')
    into v_counts, v_refused, v_back
    from recorded as r;

    -- Each priority's messages back on the queue keep its head: (earliest visible_at, lowest
    -- id) is before every one of them.
    perform private.keep_queue_head(
        'whatsapp_message_queue', '', b.priority, b.visible_at, b.id
    )
    from (
        select
            q.priority,
            min(q.visible_at) as visible_at,
            min(q.id) as id
        from public.whatsapp_message_queue as q
        where q.id = any(v_back)
        group by q.priority
    ) as b;

    perform private.emit_whatsapp_send_event(
        q, pg_catalog.jsonb_build_object('error_code', q.last_error_code, 'error', q.last_error)
    )
    from public.whatsapp_message_queue as q
    where q.id = any(v_refused)
    order by q.id;
    return v_counts;
end;
$$;
comment on function public.record_whatsapp_sends(jsonb, text) is
'The sender''s outcomes for claimed messages, a batch at once: p_results is an array of {id, '
'outcome, provider, provider_message_id, error_code, error, retry_in_s}. sent: status sent and '
'an OUTBOUND message_tracking row under the provider''s id (statuses find it); retry: pending '
'again after retry_in_s or a backoff, dead once max_retries + 1 deliveries failed; failed: '
'refused for good; unconfirmed: may have been sent (kept, not retried by itself); released: '
'back on the queue at once without counting the delivery. Failed, dead and unconfirmed '
'messages emit whatsapp.send_<status> outbox events. Results for messages that p_worker_id '
'does not hold are ignored. Returns counts per outcome. Bad input 22023, changing nothing. '
'service_role only.';
revoke all on function public.record_whatsapp_sends(jsonb, text) from public, anon, authenticated;
grant execute on function public.record_whatsapp_sends(jsonb, text) to service_role;

create or replace function public.pause_whatsapp_queue(
    p_reason text,
    p_error_code text default null,
    p_paused_by text default null
)
returns boolean
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
    perform private.require_length(p_reason, 1, 2000, 'pause_whatsapp_queue', 'p_reason');
    perform private.require_nullable_length(
        p_error_code, 1, 100, 'pause_whatsapp_queue', 'p_error_code'
    );
    perform private.require_identifier(p_paused_by, 'pause_whatsapp_queue', 'p_paused_by');
    -- The first reason stays: the workers that hit the same error after it add nothing.
    insert into private.whatsapp_sender_pause (reason, error_code, paused_by)
    values (p_reason, p_error_code, p_paused_by)
    on conflict (singleton) do nothing;
    return found;
end;
$$;
comment on function public.pause_whatsapp_queue(text, text, text) is
'Stops the line: claims return nothing until resume_whatsapp_queue, and messages keep their '
'attempts. The sender calls it on errors no retry can fix (190 token expired, 131031 account '
'locked, 368 blocked). Returns false when already paused (the first reason is kept). '
'service_role only.';
revoke all on function public.pause_whatsapp_queue(text, text, text)
from public, anon, authenticated;
grant execute on function public.pause_whatsapp_queue(text, text, text) to service_role;

create or replace function public.resume_whatsapp_queue()
returns boolean
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
    delete from private.whatsapp_sender_pause;
    if found then
        perform pg_catalog.pg_notify('whatsapp_message_queue', '');
    end if;
    return found;
end;
$$;
comment on function public.resume_whatsapp_queue() is
'Lifts the pause (after the token or account is fixed) and wakes the sender; false when it was '
'not paused. service_role only.';
revoke all on function public.resume_whatsapp_queue() from public, anon, authenticated;
grant execute on function public.resume_whatsapp_queue() to service_role;

create or replace function public.redrive_whatsapp_messages(
    p_status text default 'dead',
    p_ids bigint[] default null
)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_first record;
    v_redriven integer := 0;
begin
    if p_status is null or p_status not in ('dead', 'failed', 'unconfirmed') then
        raise exception 'redrive_whatsapp_messages: p_status must be dead, failed or unconfirmed'
        using errcode = '22023';
    end if;
    -- Each priority's first redriven message keeps its head.
    for v_first in
        with redriven as (
            update public.whatsapp_message_queue as q
            set
                status = 'pending',
                attempts = 0,
                visible_at = pg_catalog.now(),
                claimed_at = null,
                claimed_by = null,
                finished_at = null
            -- An erased recipient's message has nobody to go to.
            where q.status = p_status
                and (p_ids is null or q.id = any(p_ids))
                and q.erased_at is null
            returning q.priority, q.id
        )

        select
            r.priority,
            min(r.id) as id,
            count(*)::integer as redriven
        from redriven as r
        group by r.priority
    loop
        perform private.keep_queue_head(
            'whatsapp_message_queue', '', v_first.priority, pg_catalog.now(), v_first.id
        );
        v_redriven := v_redriven + v_first.redriven;
    end loop;
    if v_redriven > 0 then
        perform pg_catalog.pg_notify('whatsapp_message_queue', '');
    end if;
    return v_redriven;
end;
$$;
comment on function public.redrive_whatsapp_messages(text, bigint[]) is
'Puts messages of p_status (dead by default; failed or unconfirmed after a check) back on the '
'queue with their attempts reset, all of them or those in p_ids; returns how many. An '
'unconfirmed message may have been delivered: redriving it may send it twice. Cancelled '
'messages and those of erased recipients are never redriven. service_role only.';
revoke all on function public.redrive_whatsapp_messages(text, bigint[])
from public, anon, authenticated;
grant execute on function public.redrive_whatsapp_messages(text, bigint[]) to service_role;

create or replace function public.cancel_whatsapp_message(p_id bigint, p_reason text)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_message public.whatsapp_message_queue;
    v_actor record := private.request_actor();
begin
    if p_id is null then
        raise exception 'cancel_whatsapp_message: p_id must be a message id'
        using errcode = '22023';
    end if;
    perform private.require_length(p_reason, 1, 500, 'cancel_whatsapp_message', 'p_reason');
    -- The row lock orders this with a claim: a claim that took the message first has it in
    -- flight below; one that comes after skips it, and then finds it cancelled.
    select q.* into v_message
    from public.whatsapp_message_queue as q
    where q.id = p_id
    for update;
    if not found then
        raise exception 'cancel_whatsapp_message: no message %', p_id
        using errcode = 'PT404';
    end if;
    if v_message.status = 'cancelled' then
        return pg_catalog.jsonb_build_object(
            'id', v_message.id,
            'status', v_message.status,
            'cancelled_at', v_message.finished_at,
            'cancelled_reason', v_message.cancelled_reason,
            'already_cancelled', true
        );
    end if;
    if v_message.status <> 'pending' then
        raise exception 'cancel_whatsapp_message: message % is %: only a message not yet sent '
            'can be cancelled', v_message.id, v_message.status
        using errcode = 'PT409';
    end if;
    -- Being sent: the request may already be with the provider, and its outcome will be
    -- recorded.
    if v_message.claimed_at is not null and v_message.visible_at > pg_catalog.now() then
        raise exception 'cancel_whatsapp_message: message % is in flight (claimed by % until %): '
            'it cannot be called back', v_message.id, coalesce(v_message.claimed_by, 'a sender'),
            v_message.visible_at
        using errcode = 'PT409', hint = 'wait for its outcome; a retry can be cancelled then';
    end if;

    update public.whatsapp_message_queue as q
    set
        status = 'cancelled',
        cancelled_reason = p_reason,
        finished_at = pg_catalog.now(),
        claimed_at = null,
        claimed_by = null
    where q.id = v_message.id
    returning q.* into v_message;
    perform private.emit_whatsapp_send_event(
        v_message, pg_catalog.jsonb_build_object('reason', p_reason)
    );
    perform public.log_audit_event(
        v_actor.actor_type, v_actor.actor_identifier, 'whatsapp_message.cancelled',
        'whatsapp_message_queue', v_message.id::text,
        pg_catalog.jsonb_build_object('reason', p_reason, 'attempts', v_message.attempts)
    );
    return pg_catalog.jsonb_build_object(
        'id', v_message.id,
        'status', v_message.status,
        'cancelled_at', v_message.finished_at,
        'cancelled_reason', v_message.cancelled_reason,
        'already_cancelled', false
    );
end;
$$;
comment on function public.cancel_whatsapp_message(bigint, text) is
'Cancels queued message p_id so that it is never sent: waiting, scheduled or retrying messages '
'become cancelled (final; never redriven) with p_reason (1 to 500 characters), emit '
'whatsapp.send_cancelled and write an audit record. Returns {id, status, cancelled_at, '
'cancelled_reason, already_cancelled}; cancelling a cancelled message changes nothing. A '
'message in flight (claimed and its lease not over), sent, failed, dead or unconfirmed is '
'PT409 naming its status; an unknown id PT404; a null id or a bad reason 22023. service_role '
'only.';
revoke all on function public.cancel_whatsapp_message(bigint, text)
from public, anon, authenticated;
grant execute on function public.cancel_whatsapp_message(bigint, text) to service_role;

create or replace function private.erase_whatsapp_recipient(p_phone_number text)
returns jsonb
language plpgsql
volatile
set search_path = ''
as $$
-- Messages not yet claimed are cancelled; the rest keep their status (their outcome is
-- history), and every one loses the number, the payload and the provider's error text. A send
-- in flight has its copy of the payload already: record_whatsapp_sends records it without the
-- person, and cancels it instead of putting it back.
declare
    v_ids bigint[];
    v_cancelled integer;
    v_blanked integer;
    v_events integer;
begin
    if p_phone_number is null then
        return pg_catalog.jsonb_build_object(
            'queued_messages_cancelled', 0, 'queued_messages_blanked', 0,
            'queue_events_scrubbed', 0
        );
    end if;
    update public.whatsapp_message_queue as q
    set
        status = 'cancelled',
        cancelled_reason = 'recipient erased (GDPR)',
        finished_at = pg_catalog.now()
    where q.recipient_phone = p_phone_number
        and q.status = 'pending'
        and (q.claimed_at is null or q.visible_at <= pg_catalog.now());
    get diagnostics v_cancelled = row_count;

    with erased as (
        update public.whatsapp_message_queue as q
        set
            recipient_phone = null,
            payload = '{}',
            last_error = null,
            erased_at = pg_catalog.now()
        where q.recipient_phone = p_phone_number
        returning q.id
    )

    select coalesce(pg_catalog.array_agg(e.id), '{}'), count(*)
    into v_ids, v_blanked
    from erased as e;

    -- whatsapp.send_* events name the recipient.
    update public.outbox_events as e
    set payload = (e.payload - array['recipient_phone', 'error']) || '{"erased": true}'
    where e.aggregate_type = 'whatsapp_message_queue'
        and e.aggregate_id = any(v_ids::text [])
        and e.payload ?| array['recipient_phone', 'error'];
    get diagnostics v_events = row_count;

    return pg_catalog.jsonb_build_object(
        'queued_messages_cancelled', v_cancelled,
        'queued_messages_blanked', v_blanked,
        'queue_events_scrubbed', v_events
    );
end;
$$;
comment on function private.erase_whatsapp_recipient(text) is
'For erase_user: cancels the messages queued to p_phone_number that no sender holds, removes the '
'number, payload and provider error text from all of its queued messages (erased_at set) and '
'from their outbox events; returns the counts.';

create or replace function private.purge_whatsapp_message_queue()
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_purged integer;
begin
    -- Dead and unconfirmed messages wait longer for someone to look at them.
    delete from public.whatsapp_message_queue as q
    where
        (
            q.status in ('sent', 'failed', 'cancelled')
            and q.finished_at < pg_catalog.now() - interval '7 days'
        )
        or (
            q.status in ('dead', 'unconfirmed')
            and q.finished_at < pg_catalog.now() - interval '30 days'
        );
    get diagnostics v_purged = row_count;
    return v_purged;
end;
$$;
comment on function private.purge_whatsapp_message_queue() is
'Deletes sent, failed and cancelled messages 7 days after they finished, dead and unconfirmed '
'ones after 30; returns how many.';

select private.schedule_cron(
    'purge-whatsapp-message-queue', '47 * * * *', 'select private.purge_whatsapp_message_queue()'
);
