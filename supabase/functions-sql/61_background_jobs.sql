-- background_jobs: schedule, claim with a lease of the job's timeout, complete, fail with
-- backoff, cancel; leases that run out are timed out by the next claim and by pg_cron. Every
-- RPC is service_role only.

create or replace function public.schedule_job(
    p_job_type text,
    p_job_name text,
    p_payload jsonb default '{}',
    p_scheduled_at timestamptz default null,
    p_priority integer default 5,
    p_idempotency_key text default null,
    p_timeout_seconds integer default 300,
    p_max_attempts integer default 3
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
begin
    perform private.require_length(p_job_type, 1, 100, 'schedule_job', 'p_job_type');
    perform private.require_nullable_length(p_job_name, 1, 200, 'schedule_job', 'p_job_name');
    perform private.require_json_object(p_payload, 'schedule_job', 'p_payload');
    perform private.require_json_size(p_payload, 65536, 'schedule_job', 'p_payload');
    perform private.require_plausible_time(p_scheduled_at, 'schedule_job', 'p_scheduled_at');
    perform private.require_between(p_priority, 1, 10, 'schedule_job', 'p_priority');
    perform private.require_idempotency_key(p_idempotency_key, 'schedule_job');
    perform private.require_between(
        p_timeout_seconds, 1, 86400, 'schedule_job', 'p_timeout_seconds'
    );
    perform private.require_between(p_max_attempts, 1, 100, 'schedule_job', 'p_max_attempts');

    -- A concurrent schedule with the same key waits here for this one to commit, then finds
    -- the key taken and returns this id.
    insert into public.background_jobs (
        job_type,
        job_name,
        payload,
        priority,
        max_attempts,
        timeout_seconds,
        scheduled_at,
        run_at,
        idempotency_key,
        correlation_id
    )
    values (
        p_job_type,
        p_job_name,
        p_payload,
        p_priority,
        p_max_attempts,
        p_timeout_seconds,
        v_scheduled_at,
        v_scheduled_at,
        p_idempotency_key,
        private.request_correlation_id()
    )
    on conflict (job_type, idempotency_key) where idempotency_key is not null do nothing
    returning id into v_id;
    if not found then
        return (
            select j.id from public.background_jobs as j
            where j.job_type = p_job_type and j.idempotency_key = p_idempotency_key
        );
    end if;
    perform private.keep_queue_head(
        'background_jobs', '', p_priority::smallint, v_scheduled_at, v_id
    );

    -- Only the job that gives its type due work wakes workers, as in enqueue_message: a NOTIFY
    -- serialises the commits of every transaction sending one.
    if v_scheduled_at <= pg_catalog.now() and not exists (
        select from public.background_jobs as j
        where j.job_type = p_job_type
            and j.status = 'pending'
            and j.run_at <= pg_catalog.now()
            and j.id <> v_id
    ) then
        perform pg_catalog.pg_notify('background_jobs', p_job_type);
    end if;
    return v_id;
end;
$$;
comment on function public.schedule_job(
    text, text, jsonb, timestamptz, integer, text, integer, integer
) is
'Schedules a job of p_job_type (1 to 100 characters), named p_job_name (null or 1 to 200), '
'with p_payload (a JSON object of at most 64 KB), to run from p_scheduled_at (default now; '
'within a year of now) with priority p_priority (1 to 10, default 5), a '
'lease of p_timeout_seconds per run (1 to 86400, default 300) and at most p_max_attempts runs '
'(1 to 100, default 3); returns its id. When it is due now and its type had no due job, '
'notifies channel background_jobs with the type. With p_idempotency_key the same key and type '
'return the first id while that job is kept, also when calls race. Bad input 22023. '
'service_role only.';
revoke all on function public.schedule_job(
    text, text, jsonb, timestamptz, integer, text, integer, integer
) from public, anon, authenticated;
grant execute on function public.schedule_job(
    text, text, jsonb, timestamptz, integer, text, integer, integer
) to service_role;

create or replace function private.time_out_jobs(p_limit integer default 1000)
returns integer
language plpgsql
volatile
set search_path = ''
as $$
declare
    v_first record;
    v_timed_out integer := 0;
begin
    perform private.require_between(p_limit, 1, 100000, 'time_out_jobs', 'p_limit');
    -- A job its worker is completing or failing right now is skipped, not waited for: that
    -- call wins, or the next time-out takes it. Each priority's jobs pending again keep its
    -- head: (earliest run_at, lowest id) is before every one of them.
    for v_first in
        with expired as (
            select j.id
            from public.background_jobs as j
            where j.status = 'running' and j.timeout_at < pg_catalog.now()
            order by j.timeout_at
            limit p_limit
            for update skip locked
        ),

        timed_out as (
            update public.background_jobs as j
            set
                -- The two ends of a run that timed out, one chosen by the attempts left:
                -- pending again after the backoff with its lease cleared, or timeout (final)
                -- as it ran.
                (status, run_at, worker_id, started_at, timeout_at, completed_at) = (
                    select
                        t.status,
                        t.run_at,
                        t.worker_id,
                        t.started_at,
                        t.timeout_at,
                        t.completed_at
                    from (
                        values
                        (
                            true,
                            'pending',
                            pg_catalog.now() + private.retry_backoff(j.attempts),
                            null,
                            null,
                            null,
                            null
                        ),
                        (
                            false,
                            'timeout',
                            j.run_at,
                            j.worker_id,
                            j.started_at,
                            j.timeout_at,
                            pg_catalog.now()
                        )
                    ) as t (
                        retries, status, run_at, worker_id, started_at, timeout_at, completed_at
                    )
                    where t.retries = (j.attempts < j.max_attempts)
                ),
                last_error = pg_catalog.format('timed out after %s s', j.timeout_seconds)
            from expired as e
            where j.id = e.id
            returning j.status, j.priority, j.run_at, j.id
        )

        select
            r.priority,
            r.status = 'pending' as pending,
            min(r.run_at) as run_at,
            min(r.id) as id,
            count(*)::integer as jobs
        from timed_out as r
        group by r.priority, r.status = 'pending'
    loop
        if v_first.pending then
            perform private.keep_queue_head(
                'background_jobs', '', v_first.priority, v_first.run_at, v_first.id
            );
        end if;
        v_timed_out := v_timed_out + v_first.jobs;
    end loop;
    return v_timed_out;
end;
$$;
comment on function private.time_out_jobs(integer) is
'Ends up to p_limit runs whose lease (timeout_at) has passed: the job is pending again after '
'the retry backoff while attempts < max_attempts, else timeout (final). Returns how many. Run '
'by every claim_jobs and every minute by time-out-background-jobs.';

create or replace function private.advance_background_jobs_head(p_priority smallint)
returns private.queue_heads
language plpgsql
volatile
set search_path = ''
as $$
declare
    v_head private.queue_heads;
    v_limit timestamptz;
    v_first_run_at timestamptz;
    v_first_id bigint;
begin
    v_head := private.take_due_queue_head('background_jobs', '', p_priority);
    if v_head is null then
        return null;
    end if;
    v_limit := private.queue_head_limit();
    select j.run_at, j.id into v_first_run_at, v_first_id
    from public.background_jobs as j
    where j.status = 'pending'
        and j.priority = p_priority
        and (j.run_at, j.id) >= (v_head.visible_from, v_head.id_from)
    order by j.run_at, j.id
    limit 1;
    return private.move_queue_head(
        'background_jobs', '', p_priority, v_limit, v_first_run_at, v_first_id
    );
end;
$$;
comment on function private.advance_background_jobs_head(smallint) is
'Moves the head of background_jobs at p_priority to its first pending job when no claim has for '
'100 ms and none is moving it; returns the new head, or null when it was not moved.';

create or replace function public.claim_jobs(
    p_job_types text[] default null,
    p_batch_size integer default 1,
    p_worker_id text default null
)
returns setof public.background_jobs
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
    if pg_catalog.cardinality(p_job_types) not between 1 and 100 or exists (
        select from pg_catalog.unnest(p_job_types) as t (job_type)
        where t.job_type is null or pg_catalog.char_length(t.job_type) not between 1 and 100
    ) then
        raise exception 'claim_jobs: p_job_types must be null (every type) or name 1 to 100 job '
            'types of 1 to 100 characters'
        using errcode = '22023';
    end if;
    -- The batch rule of every queue; the lease is each job's own timeout_seconds.
    perform private.require_between(p_batch_size, 1, 1000, 'claim_jobs', 'p_batch_size');
    -- Stored as the job's worker_id.
    perform private.require_identifier(p_worker_id, 'claim_jobs', 'p_worker_id');

    -- Workers recover a dead worker's jobs themselves rather than waiting for the cron job.
    perform private.time_out_jobs(100);

    -- Highest priority first, each priority read from its head (59_queues.sql), then the
    -- longest due. Rows another worker is claiming are skipped, not waited for.
    for v_head in
        select h.* from private.queue_heads as h
        where h.queue = 'background_jobs' and h.queue_name = ''
        order by h.priority desc
    loop
        exit when v_left = 0;
        if v_head.advanced_at < pg_catalog.now() - interval '100 milliseconds' then
            v_head := coalesce(private.advance_background_jobs_head(v_head.priority), v_head);
        end if;

        return query
        with picked as (
            select j.id
            from public.background_jobs as j
            where j.status = 'pending'
                and j.priority = v_head.priority
                and (j.run_at, j.id) >= (v_head.visible_from, v_head.id_from)
                and j.run_at <= pg_catalog.now()
                and (p_job_types is null or j.job_type = any(p_job_types))
            order by j.run_at, j.id
            limit v_left
            for update skip locked
        ),

        claimed as (
            update public.background_jobs as j
            set
                status = 'running',
                attempts = j.attempts + 1,
                started_at = pg_catalog.now(),
                timeout_at = pg_catalog.now()
                + pg_catalog.make_interval(secs => j.timeout_seconds),
                worker_id = p_worker_id
            from picked as p
            where j.id = p.id
            returning j.*
        )

        select c.* from claimed as c
        order by c.run_at, c.id;
        get diagnostics v_claimed = row_count;
        v_left := v_left - v_claimed;
    end loop;
end;
$$;
comment on function public.claim_jobs(text[], integer, text) is
'Claims up to p_batch_size (1 to 1000) due pending jobs of p_job_types (null: every type) for '
'p_worker_id, highest priority first, then earliest run_at: each is running until timeout_at '
'(now + its timeout_seconds), its attempts counted. Several workers get disjoint batches. '
'First times out expired runs (private.time_out_jobs). An empty p_job_types, more than 100 '
'types, a bad batch size or a worker id over 200 characters 22023. service_role only.';
revoke all on function public.claim_jobs(text[], integer, text) from public, anon, authenticated;
grant execute on function public.claim_jobs(text[], integer, text) to service_role;

create or replace function private.finished_job(
    p_function text,
    p_job_id bigint,
    p_worker_id text,
    p_finished_status text
)
returns public.background_jobs
language plpgsql
stable
set search_path = ''
as $$
declare
    v_job public.background_jobs;
begin
    select j.* into v_job from public.background_jobs as j where j.id = p_job_id;
    if not found then
        raise exception '%: job % does not exist', p_function, p_job_id
        using errcode = 'PT404';
    end if;
    -- A retry of a call that already did it (its reply was lost) gets the same row back.
    if v_job.status = p_finished_status
        and (p_worker_id is null or v_job.worker_id = p_worker_id) then
        return v_job;
    end if;
    -- A worker whose lease ran out and whose job was claimed again no longer owns it.
    if p_worker_id is not null
        and v_job.status in ('running', p_finished_status)
        and v_job.worker_id is distinct from p_worker_id then
        raise exception '%: job % was claimed by worker %, not %',
            p_function, p_job_id, coalesce(v_job.worker_id, '(none)'), p_worker_id
        using errcode = 'PT409';
    end if;
    raise exception '%: job % is %', p_function, p_job_id, v_job.status
    using errcode = 'PT409';
end;
$$;
comment on function private.finished_job(text, bigint, text, text) is
'For complete_job, fail_job and cancel_job when their change found nothing to change: job '
'p_job_id as it is when it already has p_finished_status (by p_worker_id, when given), so '
'that a repeated call returns it; else PT404 (unknown) or PT409 (another status, or another '
'worker''s claim).';

create or replace function public.complete_job(
    p_job_id bigint,
    p_result jsonb default null,
    p_worker_id text default null
)
returns public.background_jobs
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_job public.background_jobs;
begin
    if p_job_id is null then
        raise exception 'complete_job: p_job_id must be a job id'
        using errcode = '22023';
    end if;
    perform private.require_json_size(p_result, 65536, 'complete_job', 'p_result');
    perform private.require_identifier(p_worker_id, 'complete_job', 'p_worker_id');
    -- A run whose lease has passed may still complete until a time-out takes the job back.
    update public.background_jobs as j
    set
        status = 'completed',
        result = p_result,
        completed_at = pg_catalog.now()
    where j.id = p_job_id
        and j.status = 'running'
        and (p_worker_id is null or j.worker_id = p_worker_id)
    returning j.* into v_job;
    if not found then
        v_job := private.finished_job('complete_job', p_job_id, p_worker_id, 'completed');
    end if;
    return v_job;
end;
$$;
comment on function public.complete_job(bigint, jsonb, text) is
'Marks running job p_job_id completed with p_result (JSON of at most 64 KB); returns the job. '
'With p_worker_id (at most 200 characters), only that worker''s run. Repeated on a job it '
'completed: the job, unchanged. Null p_job_id 22023; unknown PT404; another status (pending, '
'failed, cancelled, timeout) or another worker''s claim PT409. service_role only.';
revoke all on function public.complete_job(bigint, jsonb, text) from public, anon, authenticated;
grant execute on function public.complete_job(bigint, jsonb, text) to service_role;

create or replace function public.fail_job(
    p_job_id bigint,
    p_error text,
    p_retryable boolean default true,
    p_worker_id text default null
)
returns public.background_jobs
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_job public.background_jobs;
begin
    if p_job_id is null then
        raise exception 'fail_job: p_job_id must be a job id'
        using errcode = '22023';
    end if;
    if p_retryable is null then
        raise exception 'fail_job: p_retryable must be true or false'
        using errcode = '22023';
    end if;
    perform private.require_identifier(p_worker_id, 'fail_job', 'p_worker_id');
    select j.* into v_job
    from public.background_jobs as j
    where j.id = p_job_id
        and j.status = 'running'
        and (p_worker_id is null or j.worker_id = p_worker_id)
    for update;
    if not found then
        return private.finished_job('fail_job', p_job_id, p_worker_id, 'failed');
    end if;

    if p_retryable and v_job.attempts < v_job.max_attempts then
        update public.background_jobs as j
        set
            status = 'pending',
            run_at = pg_catalog.now() + private.retry_backoff(j.attempts),
            last_error = pg_catalog.left(p_error, 2000),
            worker_id = null,
            started_at = null,
            timeout_at = null
        where j.id = p_job_id
        returning j.* into v_job;
        perform private.keep_queue_head(
            'background_jobs', '', v_job.priority, v_job.run_at, v_job.id
        );
    else
        update public.background_jobs as j
        set
            status = 'failed',
            last_error = pg_catalog.left(p_error, 2000),
            completed_at = pg_catalog.now()
        where j.id = p_job_id
        returning j.* into v_job;
    end if;
    return v_job;
end;
$$;
comment on function public.fail_job(bigint, text, boolean, text) is
'Ends running job p_job_id''s run with error p_error (kept to 2000 characters): pending again '
'after 2^attempts seconds (at most an hour, plus up to 20% jitter) when p_retryable and '
'attempts < max_attempts, else failed (final). Returns the job. With p_worker_id, only that '
'worker''s run. Repeated on a job it failed: the job, unchanged. Null p_job_id or p_retryable '
'22023; unknown PT404; another status (pending, completed, cancelled, timeout) or another '
'worker''s claim PT409. service_role only.';
revoke all on function public.fail_job(bigint, text, boolean, text)
from public, anon, authenticated;
grant execute on function public.fail_job(bigint, text, boolean, text) to service_role;

create or replace function public.cancel_job(p_job_id bigint, p_reason text default null)
returns public.background_jobs
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_job public.background_jobs;
begin
    if p_job_id is null then
        raise exception 'cancel_job: p_job_id must be a job id'
        using errcode = '22023';
    end if;
    -- A running job keeps its worker_id: that worker's complete_job or fail_job is then
    -- refused (PT409 cancelled), which tells it to drop the work.
    update public.background_jobs as j
    set
        status = 'cancelled',
        last_error = coalesce(pg_catalog.left(p_reason, 2000), j.last_error),
        completed_at = pg_catalog.now()
    where j.id = p_job_id and j.status in ('pending', 'running')
    returning j.* into v_job;
    if not found then
        v_job := private.finished_job('cancel_job', p_job_id, null, 'cancelled');
    end if;
    return v_job;
end;
$$;
comment on function public.cancel_job(bigint, text) is
'Cancels pending or running job p_job_id, keeping p_reason (if any, its first 2000 characters) '
'as its last_error; returns '
'the job. A running job''s worker is refused when it completes or fails it (PT409). Already '
'cancelled: the job, unchanged. Null p_job_id 22023; unknown PT404; completed, failed or '
'timeout PT409. service_role only.';
revoke all on function public.cancel_job(bigint, text) from public, anon, authenticated;
grant execute on function public.cancel_job(bigint, text) to service_role;

create or replace function private.purge_background_jobs(
    p_older_than interval default '7 days'
)
returns integer
language plpgsql
volatile
set search_path = ''
as $$
declare
    v_purged integer;
begin
    -- Their idempotency keys go with them: scheduling with such a key again makes a new job.
    delete from public.background_jobs as j
    where j.status in ('completed', 'failed', 'cancelled', 'timeout')
        and j.completed_at < pg_catalog.now() - p_older_than;
    get diagnostics v_purged = row_count;
    return v_purged;
end;
$$;
comment on function private.purge_background_jobs(interval) is
'Deletes jobs that ended (completed, failed, cancelled, timeout) more than p_older_than (7 '
'days) ago; returns how many.';

create or replace trigger background_jobs_updated_at
before update on public.background_jobs
for each row execute function private.set_updated_at();

select private.schedule_cron(
    'time-out-background-jobs', '* * * * *', 'select private.time_out_jobs()'
);
select private.schedule_cron(
    'purge-background-jobs', '37 * * * *', 'select private.purge_background_jobs()'
);
