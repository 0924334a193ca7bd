-- What the queues (message_queue, background_jobs, whatsapp_message_queue) compute the same way:
-- the wait before a retry, and the claim arguments of the two message queues. Each queue's
-- statements name its own table, so claims stay static SQL with cached plans; the rules they
-- share live here.

create or replace function private.retry_backoff(p_attempts integer)
returns interval
language plpgsql
volatile
set search_path = ''
as $$
begin
    -- 2^attempts seconds, at most an hour, plus up to a fifth more at random, so that work
    -- which failed together does not come back together.
    return pg_catalog.make_interval(
        secs => least(pg_catalog.power(2, greatest(p_attempts, 0)), 3600)
        * (1 + pg_catalog.random() / 5)
    );
end;
$$;
comment on function private.retry_backoff(integer) is
'How long a queue waits before retrying work that failed on delivery p_attempts: 2^attempts '
'seconds, at most an hour, plus up to 20% jitter.';

create or replace function private.require_claim_arguments(
    p_batch_size integer,
    p_visibility_timeout_s integer,
    p_function text
)
returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
    perform private.require_between(p_batch_size, 1, 1000, p_function, 'p_batch_size');
    perform private.require_between(
        p_visibility_timeout_s, 1, 43200, p_function, 'p_visibility_timeout_s'
    );
end;
$$;
comment on function private.require_claim_arguments(integer, integer, text) is
'22023 naming p_function unless p_batch_size is 1 to 1000 and p_visibility_timeout_s is 1 s to '
'12 h.';

create or replace function private.require_queue_name(p_queue_name text, p_function text)
returns void
language plpgsql
immutable
set search_path = ''
as $$
-- The rule of the domain private.queue_name, checked before any write so that the refusal names
-- the argument. Claims and redrives check it too: a name no queue can have finds nothing.
begin
    if p_queue_name is null or p_queue_name !~ '^[a-z][a-z0-9_.:-]{0,62}$' then
        raise exception '%: p_queue_name must be lower case letters, digits, _ . : or -, '
            'starting with a letter, at most 63 characters (got %)',
            p_function, private.quoted_for_error(p_queue_name, 100)
        using errcode = '22023';
    end if;
end;
$$;
comment on function private.require_queue_name(text, text) is
'22023 naming p_function unless p_queue_name is a queue name: lower case, starting with a '
'letter, then letters, digits, _ . : or -, at most 63 characters.';

-- Queue heads (table private.queue_heads, migration 20261207230000_queue_heads): where each
-- queue's claims start reading its ready index. A head is a lower bound, never a guess: it
-- moves forward only to the first pending row a claim can see, and no further than
-- private.queue_head_limit, and every write that makes a row due before that limit moves it
-- back first (private.keep_queue_head).

create or replace function private.queue_head_limit()
returns timestamptz
language plpgsql
volatile
set search_path = ''
as $$
-- The rows a claim cannot see yet are those of transactions still open. Each is due no earlier
-- than its transaction began, unless its writer moved the head back itself (keep_queue_head,
-- for rows due more than half a second before they were written). So a head stops a second
-- before now, and before the start of every open transaction in this database that has written.
-- Called before the claim reads the first pending row, so that a transaction committing in
-- between is either seen by that read or was open here.
begin
    -- Without pg_read_all_stats, other roles' transactions are hidden (xact_start is null):
    -- then no place but the front is known to be safe.
    if not pg_catalog.pg_has_role(current_user, 'pg_read_all_stats', 'member') then
        return '-infinity';
    end if;
    return least(
        pg_catalog.clock_timestamp() - interval '1 second',
        (
            select min(a.xact_start)
            from pg_catalog.pg_stat_activity as a
            where a.datname = pg_catalog.current_database() and a.backend_xid is not null
        )
    );
end;
$$;
comment on function private.queue_head_limit() is
'The furthest a queue head may move now: a second before now, and no later than the start of '
'any open transaction in this database that has written; -infinity (heads stay at the front) '
'when the caller cannot see other roles'' transactions (no pg_read_all_stats).';

create or replace function private.keep_queue_head(
    p_queue text,
    p_queue_name text,
    p_priority smallint,
    p_visible_at timestamptz,
    p_id bigint
)
returns void
language plpgsql
volatile
set search_path = ''
as $$
begin
    -- A priority's first row makes its head, at the very front. Looked for first: an insert
    -- that meets the head would wait for any transaction holding it.
    if not exists (
        select from private.queue_heads as h
        where h.queue = p_queue and h.queue_name = p_queue_name and h.priority = p_priority
    ) then
        insert into private.queue_heads (queue, queue_name, priority)
        values (p_queue, p_queue_name, p_priority)
        on conflict do nothing;
    end if;
    -- A row due before the limit a claim may be moving the head to, while it cannot see this
    -- row: moved back here, under the head's row lock, held to the end of this transaction. A
    -- claim moving the head forward skips a locked head, and one already moving it commits
    -- first and is then undone here. Once this transaction holds the head, only a row before
    -- it moves it again: a statement that enqueues for minutes writes the head once, not once
    -- a row. Rows due from now on (nearly all) pass without a write.
    if p_visible_at < pg_catalog.clock_timestamp() - interval '500 milliseconds' then
        update private.queue_heads as h
        set
            visible_from = case
                when (p_visible_at, p_id) < (h.visible_from, h.id_from) then p_visible_at
                else h.visible_from
            end,
            id_from = case
                when (p_visible_at, p_id) < (h.visible_from, h.id_from) then p_id
                else h.id_from
            end
        where h.queue = p_queue
            and h.queue_name = p_queue_name
            and h.priority = p_priority
            and (
                h.xmin <> pg_catalog.pg_current_xact_id()::xid
                or (p_visible_at, p_id) < (h.visible_from, h.id_from)
            );
    end if;
end;
$$;
comment on function private.keep_queue_head(text, text, smallint, timestamptz, bigint) is
'Called by every write that makes a row of p_queue pending and due at p_visible_at (enqueues, '
'retries, redrives; not claims, whose leases end after the row''s old place): makes the head of '
'p_queue_name and p_priority if there is none, and moves it back to (p_visible_at, p_id) when '
'the row is due more than half a second ago.';

create or replace function private.take_due_queue_head(
    p_queue text,
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
begin
    -- One claim moves a head at a time, and at most every 100 ms; the others read from where
    -- it is.
    select h.* into v_head
    from private.queue_heads as h
    where h.queue = p_queue
        and h.queue_name = p_queue_name
        and h.priority = p_priority
        and h.advanced_at < pg_catalog.now() - interval '100 milliseconds'
    for update skip locked;
    return v_head;  -- null when none was due or free: a select into of no row leaves it null
end;
$$;
comment on function private.take_due_queue_head(text, text, smallint) is
'The head of p_queue, p_queue_name and p_priority, locked for the calling claim to move, when '
'no claim has moved it for 100 ms and none holds it; else null.';

create or replace function private.move_queue_head(
    p_queue text,
    p_queue_name text,
    p_priority smallint,
    p_limit timestamptz,
    p_first_visible_at timestamptz,
    p_first_id bigint
)
returns private.queue_heads
language plpgsql
volatile
set search_path = ''
as $$
declare
    v_head private.queue_heads;
begin
    -- To the first pending row the claim found from the old head on (p_first_*, read after
    -- p_limit was taken), or to p_limit if that row is later or there is none.
    update private.queue_heads as h
    set
        visible_from = case
            when p_first_visible_at <= p_limit then p_first_visible_at else p_limit
        end,
        id_from = case when p_first_visible_at <= p_limit then p_first_id else 0 end,
        advanced_at = pg_catalog.now()
    where h.queue = p_queue and h.queue_name = p_queue_name and h.priority = p_priority
    returning h.* into v_head;
    return v_head;
end;
$$;
comment on function private.move_queue_head(
    text, text, smallint, timestamptz, timestamptz, bigint
) is
'Moves the head of p_queue, p_queue_name and p_priority to the first pending row a claim read '
'(p_first_visible_at, p_first_id), or to p_limit (private.queue_head_limit, taken before that '
'read) when the row is later or there is none; returns the head. The claim holds the head''s '
'row lock.';
