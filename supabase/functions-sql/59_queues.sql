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
