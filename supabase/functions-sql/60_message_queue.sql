-- message_queue: enqueue, claim with a visibility timeout, ack, nack with backoff, dead letters
-- and their redrive. Every RPC is service_role only.

create or replace function public.enqueue_message(
    p_queue_name text,
    p_message_type text,
    p_payload jsonb default '{}',
    p_priority integer default 5,
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
    v_id bigint;
    v_scheduled_at timestamptz := coalesce(p_scheduled_at, pg_catalog.now());
    v_notify boolean;
begin
    perform private.require_queue_name(p_queue_name, 'enqueue_message');
    perform private.require_length(p_message_type, 1, 100, 'enqueue_message', 'p_message_type');
    perform private.require_json_object(p_payload, 'enqueue_message', 'p_payload');
    perform private.require_json_size(p_payload, 65536, 'enqueue_message', 'p_payload');
    perform private.require_between(p_priority, 1, 10, 'enqueue_message', 'p_priority');
    perform private.require_plausible_time(p_scheduled_at, 'enqueue_message', 'p_scheduled_at');
    perform private.require_idempotency_key(p_idempotency_key, 'enqueue_message');

    -- Only the message that makes a queue non-empty wakes workers: a worker waits only after a
    -- claim found nothing, and a busy one claims again until one does. A NOTIFY serialises the
    -- commits of every transaction that sends one, so sending it on every enqueue would cap
    -- enqueues at one commit (one WAL flush) at a time.
    v_notify := v_scheduled_at <= pg_catalog.now() and not exists (
        select from public.message_queue as q
        where q.queue_name = p_queue_name
            and q.status = 'pending'
            and q.visible_at <= pg_catalog.now()
    );
    v_id := pg_catalog.nextval('public.message_queue_id_seq');
    if p_idempotency_key is not null then
        -- The key first: a concurrent enqueue with the same key waits here for this one, then
        -- finds the key taken and returns this id.
        insert into private.message_queue_keys (queue_name, idempotency_key, message_id)
        values (p_queue_name, p_idempotency_key, v_id)
        on conflict do nothing;
        if not found then
            return (
                select k.message_id from private.message_queue_keys as k
                where k.queue_name = p_queue_name and k.idempotency_key = p_idempotency_key
            );
        end if;
    end if;
    insert into public.message_queue (
        id,
        queue_name,
        message_type,
        payload,
        priority,
        visible_at,
        scheduled_at,
        idempotency_key,
        correlation_id
    )
    values (
        v_id,
        p_queue_name,
        p_message_type,
        p_payload,
        p_priority,
        v_scheduled_at,
        v_scheduled_at,
        p_idempotency_key,
        private.request_correlation_id()
    );
    perform private.keep_queue_head(
        'message_queue', p_queue_name, p_priority::smallint, v_scheduled_at, v_id
    );
    if v_notify then
        perform pg_catalog.pg_notify('message_queue', p_queue_name);
    end if;
    return v_id;
end;
$$;
comment on function public.enqueue_message(text, text, jsonb, integer, timestamptz, text) is
'Puts a message of p_message_type (1 to 100 characters) with p_payload (a JSON object of at '
'most 64 KB) on queue p_queue_name with priority p_priority (1 to 10, default 5), visible '
'from p_scheduled_at (default now; within a year of now); returns its id. When it is due now '
'and the queue had nothing visible, notifies channel message_queue with the queue''s name '
'(busy workers claim until a claim is empty; waiting ones wake). With p_idempotency_key the '
'same key on the same queue returns the first id for 7 days, also when enqueues race. Bad '
'input 22023. service_role only.';
revoke all on function public.enqueue_message(text, text, jsonb, integer, timestamptz, text)
from public, anon, authenticated;
grant execute on function public.enqueue_message(text, text, jsonb, integer, timestamptz, text)
to service_role;

create or replace function private.advance_message_queue_head(
    p_queue_name text,
    p_priority smallint
)
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
    v_head := private.take_due_queue_head('message_queue', p_queue_name, p_priority);
    if v_head is null then
        return null;
    end if;
    v_limit := private.queue_head_limit();
    -- Past the dead entries acks left since the last move: at most 100 ms of them.
    select q.visible_at, q.id into v_first_visible_at, v_first_id
    from public.message_queue as q
    where q.queue_name = p_queue_name
        and q.priority = p_priority
        and q.status = 'pending'
        and (q.visible_at, q.id) >= (v_head.visible_from, v_head.id_from)
    order by q.visible_at, q.id
    limit 1;
    return private.move_queue_head(
        'message_queue', p_queue_name, p_priority, v_limit, v_first_visible_at, v_first_id
    );
end;
$$;
comment on function private.advance_message_queue_head(text, smallint) is
'Moves the head of message_queue p_queue_name at p_priority to its first pending row when no '
'claim has for 100 ms and none is moving it; returns the new head, or null when it was not '
'moved.';

-- Claims and acks run one generic plan per session (plan_cache_mode = force_generic_plan):
-- custom plans re-planned the claim on every call, a quarter of the server's time in claim 1 +
-- ack. A generic plan cannot see the batch size, so the claim picks its rows as an array
-- (id = any(array(select ... for update skip locked))) that the update reads through the
-- primary key: as a join, a generic plan may hash the whole table on every claim (one did: 37
-- claims a second). Sequential and bitmap scans are off too, so that a plan made while the
-- table looked empty still reads the index once the queue has grown. The other two queues plan
-- each claim: claim_jobs chooses between two indexes by how selective its job types are, and the
-- WhatsApp lane test, planned for a table that looked empty, read every pending row for each
-- candidate.
create or replace function public.claim_messages(
    p_queue_name text,
    p_batch_size integer default 1,
    p_visibility_timeout_s integer default 30,
    p_worker_id text default null
)
returns setof public.message_queue
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
set enable_bitmapscan = off
as $$
declare
    v_head private.queue_heads;
    v_left integer := p_batch_size;
    v_claimed integer;
begin
    perform private.require_queue_name(p_queue_name, 'claim_messages');
    perform private.require_claim_arguments(
        p_batch_size, p_visibility_timeout_s, 'claim_messages'
    );
    -- Stored as claimed_by.
    perform private.require_identifier(p_worker_id, 'claim_messages', 'p_worker_id');

    -- Highest priority first, each priority read from its head (59_queues.sql), then the
    -- longest visible. Rows another worker is claiming are skipped, not waited for. A message
    -- whose lease ran out is claimed again; one delivered max_retries + 1 times already (its
    -- workers died on it) becomes a dead letter instead. claim_whatsapp_messages writes the
    -- same rule into its own UPDATE: a shared function or transition table cost claim 1 + ack
    -- 7 to 9% (README, Queues).
    for v_head in
        select h.* from private.queue_heads as h
        where h.queue = 'message_queue' and h.queue_name = p_queue_name
        order by h.priority desc
    loop
        exit when v_left = 0;
        if v_head.advanced_at < pg_catalog.now() - interval '100 milliseconds' then
            v_head := coalesce(
                private.advance_message_queue_head(p_queue_name, v_head.priority), v_head
            );
        end if;

        -- Picked as an array, not joined: see above.
        return query
        with claimed as (
            update public.message_queue as q
            set
                attempts = q.attempts + case when q.attempts > q.max_retries then 0 else 1 end,
                status = case when q.attempts > q.max_retries then 'dead' else 'pending' end,
                dead_at = case when q.attempts > q.max_retries then pg_catalog.now() end,
                last_error = case
                    when q.attempts > q.max_retries
                        then 'visibility timeout expired on the last attempt'
                    else q.last_error
                end,
                visible_at = pg_catalog.now()
                + pg_catalog.make_interval(secs => p_visibility_timeout_s),
                claimed_at = pg_catalog.now(),
                claimed_by = p_worker_id
            where q.id = any(array(
                select p.id
                from public.message_queue as p
                where p.queue_name = p_queue_name
                    and p.priority = v_head.priority
                    and p.status = 'pending'
                    and (p.visible_at, p.id) >= (v_head.visible_from, v_head.id_from)
                    and p.visible_at <= pg_catalog.now()
                order by p.visible_at, p.id
                limit v_left
                for update skip locked
            ))
            returning q.*
        )

        select c.* from claimed as c where c.status = 'pending'
        order by c.id;
        get diagnostics v_claimed = row_count;
        v_left := v_left - v_claimed;
    end loop;
end;
$$;
comment on function public.claim_messages(text, integer, integer, text) is
'Claims up to p_batch_size visible messages of p_queue_name for p_worker_id, highest priority '
'first, hiding them for p_visibility_timeout_s seconds (ack or nack them before; otherwise '
'they are claimed again). Several workers get disjoint batches. A message already delivered '
'max_retries + 1 times is dead-lettered instead of returned. Bad input 22023. service_role only.';
revoke all on function public.claim_messages(text, integer, integer, text)
from public, anon, authenticated;
grant execute on function public.claim_messages(text, integer, integer, text) to service_role;

create or replace function public.ack_messages(p_ids bigint[], p_worker_id text default null)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
set enable_bitmapscan = off
as $$
declare
    v_acked integer;
begin
    if p_ids is null then
        raise exception 'ack_messages: p_ids must be an array of message ids'
        using errcode = '22023';
    end if;
    perform private.require_identifier(p_worker_id, 'ack_messages', 'p_worker_id');
    -- Only claimed messages, and with p_worker_id only the claims that worker holds: a worker
    -- whose lease ran out and was claimed again no longer owns the message. Not dead is
    -- written "<> 'dead'" rather than "= 'pending'" so that no partial index matches: the
    -- generic plan (see claim_messages) reads the primary key, never the whole ready index.
    with done as (
        delete from public.message_queue as q
        where q.id = any(p_ids)
            and q.status <> 'dead'
            and q.claimed_at is not null
            and (p_worker_id is null or q.claimed_by = p_worker_id)
        returning q.*
    )

    insert into public.message_queue_completed (
        id,
        queue_name,
        message_type,
        priority,
        attempts,
        enqueued_at,
        scheduled_at,
        claimed_at,
        claimed_by,
        correlation_id
    )
    select
        d.id,
        d.queue_name,
        d.message_type,
        d.priority,
        d.attempts,
        d.enqueued_at,
        d.scheduled_at,
        d.claimed_at,
        d.claimed_by,
        d.correlation_id
    from done as d;
    get diagnostics v_acked = row_count;
    return v_acked;
end;
$$;
comment on function public.ack_messages(bigint[], text) is
'Marks the claimed messages p_ids done: they move to message_queue_completed (without their '
'payload). With p_worker_id, only those whose claim that worker holds. Returns how many were '
'acked; the others (unknown, already acked, dead, not claimed or not that worker''s) are left '
'as they are. service_role only.';
revoke all on function public.ack_messages(bigint[], text) from public, anon, authenticated;
grant execute on function public.ack_messages(bigint[], text) to service_role;

create or replace function public.ack_message(p_id bigint, p_worker_id text default null)
returns boolean
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
    if p_id is null then
        raise exception 'ack_message: p_id must be a message id'
        using errcode = '22023';
    end if;
    perform private.require_identifier(p_worker_id, 'ack_message', 'p_worker_id');
    return public.ack_messages(array[p_id], p_worker_id) > 0;
end;
$$;
comment on function public.ack_message(bigint, text) is
'Marks claimed message p_id done, as ack_messages does. Returns false, changing nothing, when '
'the message is not claimed (unknown, already acked, dead, or not that worker''s). '
'service_role only.';
revoke all on function public.ack_message(bigint, text) from public, anon, authenticated;
grant execute on function public.ack_message(bigint, text) to service_role;

create or replace function public.nack_message(
    p_id bigint,
    p_error text default null,
    p_retry_in interval default null,
    p_worker_id text default null
)
returns public.message_queue
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_message public.message_queue;
begin
    if p_id is null then
        raise exception 'nack_message: p_id must be a message id'
        using errcode = '22023';
    end if;
    if p_retry_in < interval '0' or p_retry_in > interval '7 days' then
        raise exception 'nack_message: p_retry_in must be 0 to 7 days (got %)', p_retry_in
        using errcode = '22023';
    end if;
    perform private.require_identifier(p_worker_id, 'nack_message', 'p_worker_id');
    update public.message_queue as q
    set
        status = case when q.attempts > q.max_retries then 'dead' else 'pending' end,
        dead_at = case when q.attempts > q.max_retries then pg_catalog.now() end,
        last_error = pg_catalog.left(p_error, 2000),
        visible_at = pg_catalog.now() + coalesce(p_retry_in, private.retry_backoff(q.attempts)),
        claimed_at = null,
        claimed_by = null
    where q.id = p_id
        and q.status = 'pending'
        and q.claimed_at is not null
        and (p_worker_id is null or q.claimed_by = p_worker_id)
    returning q.* into v_message;
    if not found then
        raise exception 'nack_message: message % is not claimed%', p_id,
            case when p_worker_id is null then '' else ' by ' || p_worker_id end
        using errcode = 'PT404';
    end if;
    if v_message.status = 'pending' then
        perform private.keep_queue_head(
            'message_queue', v_message.queue_name, v_message.priority, v_message.visible_at,
            v_message.id
        );
    end if;
    return v_message;
end;
$$;
comment on function public.nack_message(bigint, text, interval, text) is
'Gives claimed message p_id back after a failure p_error (kept to 2000 characters): visible '
'again after p_retry_in, or '
'2^attempts seconds (at most an hour, plus up to 20% jitter); dead once it has been delivered '
'max_retries + 1 times. Returns the message. Not claimed (or not by p_worker_id) PT404; '
'p_retry_in outside 0 to 7 days 22023. service_role only.';
revoke all on function public.nack_message(bigint, text, interval, text)
from public, anon, authenticated;
grant execute on function public.nack_message(bigint, text, interval, text) to service_role;

create or replace function public.redrive_dead_messages(p_queue_name text)
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
    perform private.require_queue_name(p_queue_name, 'redrive_dead_messages');
    -- Each priority's first redriven row keeps its head.
    for v_first in
        with redriven as (
            update public.message_queue as q
            set
                status = 'pending',
                attempts = 0,
                visible_at = pg_catalog.now(),
                dead_at = null,
                claimed_at = null,
                claimed_by = null
            where q.queue_name = p_queue_name and q.status = 'dead'
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
            'message_queue', p_queue_name, v_first.priority, pg_catalog.now(), v_first.id
        );
        v_redriven := v_redriven + v_first.redriven;
    end loop;
    if v_redriven > 0 then
        perform pg_catalog.pg_notify('message_queue', p_queue_name);
    end if;
    return v_redriven;
end;
$$;
comment on function public.redrive_dead_messages(text) is
'Puts every dead letter of p_queue_name back on the queue with its attempts reset (keeping its '
'last error until it fails again); returns how many. service_role only.';
revoke all on function public.redrive_dead_messages(text) from public, anon, authenticated;
grant execute on function public.redrive_dead_messages(text) to service_role;

create or replace function private.purge_message_queue(p_older_than interval default '7 days')
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_completed integer;
    v_keys integer;
begin
    delete from public.message_queue_completed as c
    where c.completed_at < pg_catalog.now() - p_older_than;
    get diagnostics v_completed = row_count;
    -- A key whose message is still queued stays, however old.
    delete from private.message_queue_keys as k
    where k.created_at < pg_catalog.now() - p_older_than
        and not exists (select from public.message_queue as q where q.id = k.message_id);
    get diagnostics v_keys = row_count;
    return v_completed + v_keys;
end;
$$;
comment on function private.purge_message_queue(interval) is
'Deletes completed messages and idempotency keys older than p_older_than (7 days), keeping the '
'keys of messages still queued; returns how many rows went.';

select private.schedule_cron(
    'purge-message-queue', '53 * * * *', 'select private.purge_message_queue()'
);
