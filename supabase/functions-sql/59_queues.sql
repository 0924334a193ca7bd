-- What the queues (message_queue, background_jobs, whatsapp_message_queue) compute the same way:
-- the wait before a retry, the claim arguments of the two message queues, and their dead-letter
-- rule. Each queue's statements name its own table, so claims stay static SQL with cached plans;
-- the rules they share live here.

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

-- Until 2026-11: a fourth argument named the lease argument, which every caller named alike.
drop function if exists private.require_claim_arguments(integer, integer, text, text);

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

create or replace function private.back_on_queue_status(
    p_attempts integer,
    p_max_retries integer,
    p_erased boolean default false
)
returns text
language plpgsql
immutable
set search_path = ''
as $$
-- The dead-letter rule of the message queues, for a message that comes back to its queue (its
-- lease ran out, or its delivery failed): one delivered max_retries + 1 times already is not
-- handed out again. A WhatsApp message whose recipient was erased has nobody to go to.
begin
    return case
        when p_erased then 'cancelled'
        when p_attempts > p_max_retries then 'dead'
        else 'pending'
    end;
end;
$$;
comment on function private.back_on_queue_status(integer, integer, boolean) is
'The status of a message coming back to its queue after p_attempts deliveries: cancelled when '
'p_erased (its recipient was erased), dead once p_attempts > p_max_retries, else pending.';

create or replace function private.claim_transition(
    p_attempts integer,
    p_max_retries integer,
    p_last_error text,
    p_erased boolean default false,
    out status text,
    out attempts integer,
    out finished_at timestamptz,
    out last_error text
)
language plpgsql
stable
set search_path = ''
as $$
-- A claimed message whose lease ran out on its last delivery (its workers died on it) goes to
-- the dead letters instead of being handed out, its delivery not counted again.
begin
    status := private.back_on_queue_status(p_attempts, p_max_retries, p_erased);
    attempts := p_attempts + case when status = 'pending' then 1 else 0 end;
    finished_at := case when status <> 'pending' then pg_catalog.now() end;
    last_error := case
        when status = 'dead' then 'visibility timeout expired on the last attempt'
        else p_last_error
    end;
end;
$$;
comment on function private.claim_transition(integer, integer, text, boolean) is
'What a claim does to a message delivered p_attempts times, its last error p_last_error: '
'pending (handed out, attempts + 1), or dead or cancelled as private.back_on_queue_status '
'rules (finished now, attempts kept; a dead one with last_error saying why).';
