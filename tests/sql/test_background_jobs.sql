-- background_jobs (supabase/functions-sql/*_background_jobs.sql, migration
-- 20260401130100_background_jobs.sql): schedule_job, claim_jobs, complete_job, fail_job,
-- cancel_job, the time-outs, retention, who may call them and what they refuse. Runs as postgres
-- on a fresh clone in one transaction: now() is constant, so "due now" is run_at <= now() and a
-- lease (or a backoff) is moved into the past by hand to end it.
begin;
select plan(104);

create temp table seen (note text primary key, n bigint);
grant select, insert on pg_temp.seen to anon, authenticated, service_role;
create function pg_temp.seen(p_note text)
returns bigint
language sql
as $$ select n from pg_temp.seen where note = p_note $$;

-- The table ---------------------------------------------------------------------------------------

select has_table('public', 'background_jobs', 'public.background_jobs exists');
select ok(
    (select relrowsecurity and coalesce(obj_description(oid, 'pg_class'), '') <> ''
       from pg_catalog.pg_class where oid = 'public.background_jobs'::regclass),
    'background_jobs has row level security and a comment'
);
select is_empty(
    $$select a.attname from pg_catalog.pg_attribute as a
       where a.attrelid = 'public.background_jobs'::regclass
         and a.attname in ('status', 'attempts', 'run_at', 'timeout_at', 'completed_at',
                           'idempotency_key')
         and coalesce(col_description(a.attrelid, a.attnum), '') = ''$$,
    'its key columns have comments'
);
select has_trigger(
    'public', 'background_jobs', 'background_jobs_updated_at',
    'updated_at is kept by a trigger'
);

-- schedule_job ------------------------------------------------------------------------------------

insert into pg_temp.seen (note, n) values
('low', public.schedule_job('report', 'daily report', '{"day": "2026-04-01"}', null, 2)),
('high', public.schedule_job('email', 'welcome mail', '{"to": "a@example.com"}', null, 9)),
('default', public.schedule_job('report', null)),
('later', public.schedule_job('report', 'later', '{}', now() + interval '1 hour', 10)),
('overdue', public.schedule_job('report', 'overdue', '{}', now() - interval '1 hour')),
('keyed', public.schedule_job('invoice', 'invoice 1', '{"n": 1}', null, 5, 'inv-1', 60, 2));

select results_eq(
    $$select job_type::text, job_name, payload::jsonb, priority::integer, status, attempts,
             scheduled_at = now(), run_at = now(), idempotency_key, worker_id, started_at,
             completed_at
        from public.background_jobs where id = pg_temp.seen('low')$$,
    $$values ('report', 'daily report', '{"day": "2026-04-01"}'::jsonb, 2, 'pending', 0, true,
              true, null::text, null::text, null::timestamptz, null::timestamptz)$$,
    'schedule_job stores the job pending, due now, with its priority'
);
select results_eq(
    $$select job_name, payload::jsonb, priority::integer, max_attempts, timeout_seconds
        from public.background_jobs where id = pg_temp.seen('default')$$,
    $$values (null::text, '{}'::jsonb, 5, 3, 300)$$,
    'the defaults: no name, an empty payload, priority 5, 3 attempts of 300 s'
);
select results_eq(
    $$select max_attempts, timeout_seconds, idempotency_key
        from public.background_jobs where id = pg_temp.seen('keyed')$$,
    $$values (2, 60, 'inv-1'::text)$$,
    'the timeout, attempts and key given are stored'
);
select ok(
    (select scheduled_at = now() + interval '1 hour' and run_at = scheduled_at
       from public.background_jobs where id = pg_temp.seen('later')),
    'a job scheduled for later is due then'
);
select is(
    public.schedule_job('invoice', 'invoice 1 again', '{"n": 2}', null, 1, 'inv-1'),
    pg_temp.seen('keyed'),
    'the same idempotency key for the same job type returns the first id'
);
select is(
    (select count(*) from public.background_jobs where idempotency_key = 'inv-1'), 1::bigint,
    'and stores nothing more'
);
insert into pg_temp.seen (note, n) values
('other type', public.schedule_job('invoice-sms', 'invoice 1', '{}', null, 5, 'inv-1'));
select isnt(
    pg_temp.seen('other type'), pg_temp.seen('keyed'),
    'the same key for another job type is another job'
);

-- The correlation id comes from the request's headers, as for every RPC.
insert into pg_temp.seen (note, n) values (
    'headers set',
    length(set_config('request.headers', '{"x-correlation-id": "corr-7"}', true))
);
insert into pg_temp.seen (note, n) values ('correlated', public.schedule_job('audit', 'sweep'));
insert into pg_temp.seen (note, n) values (
    'headers reset', length(set_config('request.headers', '', true))
);
select is(
    (select correlation_id from public.background_jobs where id = pg_temp.seen('correlated')),
    'corr-7',
    'the request''s correlation id is kept with the job'
);

select throws_ok(
    $$select public.schedule_job(null, 'x')$$,
    '22023', 'schedule_job: p_job_type must be 1 to 100 characters',
    'a null job type is refused'
);
select throws_ok(
    $$select public.schedule_job('', 'x')$$,
    '22023', 'schedule_job: p_job_type must be 1 to 100 characters',
    'an empty job type is refused'
);
select throws_ok(
    format('select public.schedule_job(%L, %L)', repeat('t', 101), 'x'),
    '22023', 'schedule_job: p_job_type must be 1 to 100 characters',
    'a job type of 101 characters is refused'
);
select throws_ok(
    $$select public.schedule_job('x', '')$$,
    '22023', 'schedule_job: p_job_name must be null or 1 to 200 characters',
    'an empty job name is refused'
);
select throws_ok(
    format('select public.schedule_job(%L, %L)', 'x', repeat('n', 201)),
    '22023', 'schedule_job: p_job_name must be null or 1 to 200 characters',
    'a job name of 201 characters is refused'
);
select throws_ok(
    $$select public.schedule_job('x', 'x', '[1, 2]')$$,
    '22023', 'schedule_job: p_payload must be a JSON object',
    'a payload that is not an object is refused'
);
select throws_ok(
    $$select public.schedule_job('x', 'x', null)$$,
    '22023', 'schedule_job: p_payload must be a JSON object',
    'a null payload is refused'
);
select throws_ok(
    $$select public.schedule_job('x', 'x', '{}', null, 0)$$,
    '22023', 'schedule_job: p_priority must be 1 to 10 (got 0)',
    'priority 0 is refused'
);
select throws_ok(
    $$select public.schedule_job('x', 'x', '{}', null, 11)$$,
    '22023', 'schedule_job: p_priority must be 1 to 10 (got 11)',
    'priority 11 is refused'
);
select throws_ok(
    $$select public.schedule_job('x', 'x', '{}', null, null)$$,
    '22023', 'schedule_job: p_priority must be 1 to 10 (got null)',
    'a null priority is refused'
);
select throws_ok(
    $$select public.schedule_job('x', 'x', '{}', null, 5, '')$$,
    '22023', 'schedule_job: p_idempotency_key must be 1 to 255 characters',
    'an empty idempotency key is refused'
);
select throws_ok(
    $$select public.schedule_job('x', 'x', '{}', null, 5, null, 0)$$,
    '22023', 'schedule_job: p_timeout_seconds must be 1 to 86400 (got 0)',
    'a timeout of 0 s is refused'
);
select throws_ok(
    $$select public.schedule_job('x', 'x', '{}', null, 5, null, 86401)$$,
    '22023', 'schedule_job: p_timeout_seconds must be 1 to 86400 (got 86401)',
    'a timeout over a day is refused'
);
select throws_ok(
    $$select public.schedule_job('x', 'x', '{}', null, 5, null, 300, 0)$$,
    '22023', 'schedule_job: p_max_attempts must be 1 to 100 (got 0)',
    '0 attempts is refused'
);
select throws_ok(
    $$select public.schedule_job('x', 'x', '{}', null, 5, null, 300, 101)$$,
    '22023', 'schedule_job: p_max_attempts must be 1 to 100 (got 101)',
    '101 attempts is refused'
);
select is(
    (select count(*) from public.background_jobs where job_type = 'x'), 0::bigint,
    'refused schedules store nothing'
);

-- claim_jobs --------------------------------------------------------------------------------------

select results_eq(
    $$select id, status, attempts, worker_id
        from public.claim_jobs(array['report', 'email'], 3, 'w1')$$,
    $$values (pg_temp.seen('high'), 'running', 1, 'w1'::text),
             (pg_temp.seen('overdue'), 'running', 1, 'w1'),
             (pg_temp.seen('default'), 'running', 1, 'w1')$$,
    'claim_jobs takes the highest priority first, then the earliest due (9; then 5 due an hour '
    || 'ago; then 5 due now)'
);
select ok(
    (select bool_and(started_at = now() and timeout_at = now() + interval '300 seconds')
       from public.background_jobs
      where id in (pg_temp.seen('high'), pg_temp.seen('overdue'), pg_temp.seen('default'))),
    'a claimed job runs until now + its timeout_seconds'
);
select results_eq(
    $$select id from public.claim_jobs(array['report'], 10, 'w2')$$,
    $$values (pg_temp.seen('low'))$$,
    'another claim gets what is left and due: not the running ones, not the one due later'
);
select is_empty(
    $$select id from public.claim_jobs(array['report', 'email'], 10, 'w3')$$,
    'nothing of those types is left to claim'
);
select is_empty(
    $$select id from public.claim_jobs(array['nobody'], 10, 'w3')$$,
    'an unknown type has nothing to claim'
);
select results_eq(
    $$select id, worker_id from public.claim_jobs(null, 10, 'w4')$$,
    $$values (pg_temp.seen('keyed'), 'w4'::text), (pg_temp.seen('other type'), 'w4'),
             (pg_temp.seen('correlated'), 'w4')$$,
    'without types a claim takes every type'
);
select throws_ok(
    $$select public.claim_jobs(null, 0)$$,
    '22023', 'claim_jobs: p_batch_size must be 1 to 1000 (got 0)',
    'a batch of 0 is refused'
);
select throws_ok(
    $$select public.claim_jobs(null, 1001)$$,
    '22023', 'claim_jobs: p_batch_size must be 1 to 1000 (got 1001)',
    'a batch over 1000 is refused'
);
select throws_ok(
    $$select public.claim_jobs(null, null)$$,
    '22023', 'claim_jobs: p_batch_size must be 1 to 1000 (got null)',
    'a null batch size is refused'
);
select throws_ok(
    $$select public.claim_jobs('{}', 1)$$,
    '22023',
    'claim_jobs: p_job_types must be null (every type) or name 1 to 100 job types of 1 to 100 '
    || 'characters',
    'an empty list of types is refused'
);

-- complete_job ------------------------------------------------------------------------------------

select results_eq(
    $$select status, result, completed_at = now(), worker_id, attempts
        from public.complete_job(pg_temp.seen('high'), '{"sent": true}', 'w1')$$,
    $$values ('completed', '{"sent": true}'::jsonb, true, 'w1'::text, 1)$$,
    'complete_job by the worker running it completes it with its result'
);
select results_eq(
    $$select status, result from public.complete_job(pg_temp.seen('high'), '{"again": 1}', 'w1')$$,
    $$values ('completed', '{"sent": true}'::jsonb)$$,
    'repeating it returns the job unchanged'
);
select results_eq(
    $$select status, result from public.complete_job(pg_temp.seen('high'))$$,
    $$values ('completed', '{"sent": true}'::jsonb)$$,
    'so does repeating it without a worker'
);
select throws_ok(
    format('select public.complete_job(%s, null, %L)', pg_temp.seen('high'), 'w9'),
    'PT409', format('complete_job: job %s was claimed by worker w1, not w9', pg_temp.seen('high')),
    'another worker may not complete it again'
);
select throws_ok(
    format('select public.complete_job(%s, null, %L)', pg_temp.seen('default'), 'w9'),
    'PT409',
    format('complete_job: job %s was claimed by worker w1, not w9', pg_temp.seen('default')),
    'a worker may not complete another worker''s run'
);
select throws_ok(
    format('select public.complete_job(%s)', pg_temp.seen('later')),
    'PT409', format('complete_job: job %s is pending', pg_temp.seen('later')),
    'a pending job cannot be completed'
);
select throws_ok(
    $$select public.complete_job(-1)$$,
    'PT404', 'complete_job: job -1 does not exist',
    'an unknown job cannot be completed'
);
select throws_ok(
    $$select public.complete_job(null)$$,
    '22023', 'complete_job: p_job_id must be a job id',
    'a null id is refused'
);
select results_eq(
    $$select status, result, completed_at from public.background_jobs
       where id in (pg_temp.seen('default'), pg_temp.seen('later')) order by id$$,
    $$values ('running', null::jsonb, null::timestamptz), ('pending', null, null)$$,
    'refused completions change nothing'
);

-- fail_job ----------------------------------------------------------------------------------------

select results_eq(
    $$select status, attempts, last_error, worker_id, started_at, timeout_at, completed_at,
             run_at between now() + interval '2 seconds' and now() + interval '2.4 seconds'
        from public.fail_job(pg_temp.seen('overdue'), 'SMTP 451', true, 'w1')$$,
    $$values ('pending', 1, 'SMTP 451'::text, null::text, null::timestamptz, null::timestamptz,
              null::timestamptz, true)$$,
    'a retryable failure puts the job back, due after 2^attempts s plus up to a fifth (2 to 2.4 s)'
);
select throws_ok(
    format('select public.fail_job(%s, %L)', pg_temp.seen('overdue'), 'again'),
    'PT409', format('fail_job: job %s is pending', pg_temp.seen('overdue')),
    'a job waiting for its retry cannot fail again'
);
select results_eq(
    $$select status, attempts, last_error, worker_id, completed_at = now()
        from public.fail_job(pg_temp.seen('default'), 'bad input', false, 'w1')$$,
    $$values ('failed', 1, 'bad input'::text, 'w1'::text, true)$$,
    'a failure that is not retryable is final'
);
select results_eq(
    $$select status, last_error
        from public.fail_job(pg_temp.seen('default'), 'other words', false, 'w1')$$,
    $$values ('failed', 'bad input'::text)$$,
    'repeating it returns the job unchanged'
);
select throws_ok(
    format('select public.fail_job(%s, %L)', pg_temp.seen('high'), 'late'),
    'PT409', format('fail_job: job %s is completed', pg_temp.seen('high')),
    'a completed job cannot fail'
);
select throws_ok(
    format('select public.fail_job(%s, %L, true, %L)', pg_temp.seen('low'), 'x', 'w1'),
    'PT409', format('fail_job: job %s was claimed by worker w2, not w1', pg_temp.seen('low')),
    'a worker may not fail another worker''s run'
);
select throws_ok(
    $$select public.fail_job(-1, 'x')$$,
    'PT404', 'fail_job: job -1 does not exist',
    'an unknown job cannot fail'
);
select throws_ok(
    $$select public.fail_job(null, 'x')$$,
    '22023', 'fail_job: p_job_id must be a job id',
    'a null id is refused'
);
select throws_ok(
    format('select public.fail_job(%s, %L, null)', pg_temp.seen('low'), 'x'),
    '22023', 'fail_job: p_retryable must be true or false',
    'a null p_retryable is refused'
);

-- A job of one attempt fails for good on its first failure, retryable or not.
insert into pg_temp.seen (note, n) values
('once', public.schedule_job('pdf', 'render', '{}', null, 5, null, 300, 1));
select results_eq(
    $$select status, attempts, char_length(last_error)
        from public.fail_job(
            (select id from public.claim_jobs(array['pdf'], 1, 'w1')), repeat('e', 3000))$$,
    $$values ('failed', 1, 2000)$$,
    'with no attempts left a retryable failure is final, its error kept to 2000 characters'
);

-- A job retried until its attempts run out.
insert into pg_temp.seen (note, n) values
('flaky', public.schedule_job('sync', 'sync', '{}', null, 5, null, 300, 2));
select is(
    (select status from public.fail_job(
        (select id from public.claim_jobs(array['sync'], 1, 'w1')), 'first', true, 'w1')),
    'pending', 'after the first of 2 attempts fails the job is retried'
);
select is_empty(
    $$select id from public.claim_jobs(array['sync'], 1, 'w1')$$,
    'not before its backoff ends'
);
update public.background_jobs set run_at = now() - interval '1 second'
where id = pg_temp.seen('flaky');
select results_eq(
    $$select status, attempts, last_error, completed_at = now()
        from public.fail_job(
            (select id from public.claim_jobs(array['sync'], 1, 'w1')), 'second', true, 'w1')$$,
    $$values ('failed', 2, 'second'::text, true)$$,
    'after the backoff it runs again, and its second failure is final'
);

-- cancel_job --------------------------------------------------------------------------------------

select results_eq(
    $$select status, last_error, completed_at = now()
        from public.cancel_job(pg_temp.seen('later'), 'not needed')$$,
    $$values ('cancelled', 'not needed'::text, true)$$,
    'cancel_job cancels a pending job, keeping the reason'
);
select results_eq(
    $$select status, last_error from public.cancel_job(pg_temp.seen('later'), 'other reason')$$,
    $$values ('cancelled', 'not needed'::text)$$,
    'cancelling it again returns the job unchanged'
);
select results_eq(
    $$select status, worker_id, last_error from public.cancel_job(pg_temp.seen('low'))$$,
    $$values ('cancelled', 'w2'::text, null::text)$$,
    'a running job is cancelled too, keeping its worker'
);
select throws_ok(
    format('select public.complete_job(%s, null, %L)', pg_temp.seen('low'), 'w2'),
    'PT409', format('complete_job: job %s is cancelled', pg_temp.seen('low')),
    'its worker may then not complete it'
);
select throws_ok(
    format('select public.fail_job(%s, %L, true, %L)', pg_temp.seen('low'), 'x', 'w2'),
    'PT409', format('fail_job: job %s is cancelled', pg_temp.seen('low')),
    'nor fail it'
);
select throws_ok(
    format('select public.cancel_job(%s)', pg_temp.seen('high')),
    'PT409', format('cancel_job: job %s is completed', pg_temp.seen('high')),
    'a completed job cannot be cancelled'
);
select throws_ok(
    format('select public.cancel_job(%s)', pg_temp.seen('default')),
    'PT409', format('cancel_job: job %s is failed', pg_temp.seen('default')),
    'a failed job cannot be cancelled'
);
select throws_ok(
    $$select public.cancel_job(-1)$$,
    'PT404', 'cancel_job: job -1 does not exist',
    'an unknown job cannot be cancelled'
);
select throws_ok(
    $$select public.cancel_job(null)$$,
    '22023', 'cancel_job: p_job_id must be a job id',
    'a null id is refused'
);
insert into pg_temp.seen (note, n) values ('dropped', public.schedule_job('cleanup', 'x'));
insert into pg_temp.seen (note, n)
select 'dropped cancelled', 1 from public.cancel_job(pg_temp.seen('dropped'));
select is_empty(
    $$select id from public.claim_jobs(array['cleanup'], 10, 'w1')$$,
    'a cancelled job is never claimed'
);

-- Time-outs ---------------------------------------------------------------------------------------

-- keyed (2 attempts of 60 s) is running for w4; its worker dies and its lease runs out.
update public.background_jobs set timeout_at = now() - interval '1 second'
where id = pg_temp.seen('keyed');
select is_empty(
    $$select id from public.claim_jobs(array['nobody'], 1, 'w5')$$,
    'a claim finds nothing of its types'
);
select results_eq(
    $$select status, attempts, last_error, worker_id, started_at, timeout_at, completed_at,
             run_at between now() + interval '2 seconds' and now() + interval '2.4 seconds'
        from public.background_jobs where id = pg_temp.seen('keyed')$$,
    $$values ('pending', 1, 'timed out after 60 s'::text, null::text, null::timestamptz,
              null::timestamptz, null::timestamptz, true)$$,
    'but first times out the expired run: pending again after the backoff'
);
update public.background_jobs set run_at = now() - interval '1 second'
where id = pg_temp.seen('keyed');
select results_eq(
    $$select id, attempts, worker_id from public.claim_jobs(array['invoice'], 1, 'w6')$$,
    $$values (pg_temp.seen('keyed'), 2, 'w6'::text)$$,
    'after the backoff another worker claims it, its attempts counted'
);
select throws_ok(
    format('select public.complete_job(%s, null, %L)', pg_temp.seen('keyed'), 'w4'),
    'PT409', format('complete_job: job %s was claimed by worker w6, not w4', pg_temp.seen('keyed')),
    'the worker whose lease ran out may no longer complete it'
);
update public.background_jobs set timeout_at = now() - interval '1 second'
where id = pg_temp.seen('keyed');
select is_empty(
    $$select id from public.claim_jobs(array['invoice'], 1, 'w7')$$,
    'when its last run times out too it is not claimed again'
);
select results_eq(
    $$select status, attempts, last_error, worker_id, completed_at = now()
        from public.background_jobs where id = pg_temp.seen('keyed')$$,
    $$values ('timeout', 2, 'timed out after 60 s'::text, 'w6'::text, true)$$,
    'but ends as timeout, saying why'
);
select throws_ok(
    format('select public.complete_job(%s, null, %L)', pg_temp.seen('keyed'), 'w6'),
    'PT409', format('complete_job: job %s is timeout', pg_temp.seen('keyed')),
    'a timed-out job cannot be completed'
);
select throws_ok(
    format('select public.cancel_job(%s)', pg_temp.seen('keyed')),
    'PT409', format('cancel_job: job %s is timeout', pg_temp.seen('keyed')),
    'nor cancelled'
);

-- private.time_out_jobs, as pg_cron runs it.
insert into pg_temp.seen (note, n) values
('tick 1', public.schedule_job('tick', 'tick 1', '{}', null, 5, null, 30)),
('tick 2', public.schedule_job('tick', 'tick 2', '{}', null, 5, null, 30)),
('tick 3', public.schedule_job('tick', 'tick 3', '{}', null, 5, null, 30));
insert into pg_temp.seen (note, n)
select 'ticks claimed', count(*) from public.claim_jobs(array['tick'], 3, 'w8');
update public.background_jobs set timeout_at = now() - interval '1 second'
where id = pg_temp.seen('tick 2');
select is(
    (select status from public.complete_job(pg_temp.seen('tick 2'), null, 'w8')),
    'completed',
    'a run whose lease has passed may still complete until it is timed out'
);
update public.background_jobs set timeout_at = now() - interval '1 second'
where id = pg_temp.seen('tick 1');
select is(private.time_out_jobs(), 1, 'private.time_out_jobs times out the one expired run');
select results_eq(
    $$select id, status, last_error from public.background_jobs
       where job_type = 'tick' order by id$$,
    $$values (pg_temp.seen('tick 1'), 'pending', 'timed out after 30 s'::text),
             (pg_temp.seen('tick 2'), 'completed', null),
             (pg_temp.seen('tick 3'), 'running', null)$$,
    'and leaves the completed job and the run whose lease holds'
);
select is(private.time_out_jobs(), 0, 'run again it has nothing to do');
select throws_ok(
    $$select private.time_out_jobs(0)$$,
    '22023', 'time_out_jobs: p_limit must be 1 to 100000 (got 0)',
    'a limit of 0 is refused'
);
select results_eq(
    $$select schedule, command from cron.job where jobname = 'time-out-background-jobs'$$,
    $$values ('* * * * *'::text, 'select private.time_out_jobs()'::text)$$,
    'pg_cron times out expired runs every minute'
);

-- updated_at ------------------------------------------------------------------------------------

update public.background_jobs set updated_at = now() - interval '1 day'
where id = pg_temp.seen('tick 3');
select is(
    (select updated_at from public.background_jobs where id = pg_temp.seen('tick 3')), now(),
    'updated_at is the time of the last change, whatever the writer says'
);

-- Retention ---------------------------------------------------------------------------------------

-- Everything that ended is dated 8 days back, but for the completed high: 8 jobs, of every
-- final status.
update public.background_jobs set completed_at = now() - interval '8 days'
where status in ('completed', 'failed', 'cancelled', 'timeout') and id <> pg_temp.seen('high');
select is(
    private.purge_background_jobs(), 8,
    'purge_background_jobs deletes the jobs that ended more than 7 days ago'
);
select results_eq(
    $$select status, count(*) from public.background_jobs group by status order by status$$,
    $$values ('completed'::text, 1::bigint), ('pending', 2), ('running', 3)$$,
    'the job that ended recently stays, as does every job not ended'
);
select isnt(
    public.schedule_job('invoice', 'invoice 1', '{}', null, 5, 'inv-1'),
    pg_temp.seen('keyed'),
    'a purged job''s idempotency key makes a new job'
);
select results_eq(
    $$select schedule, command from cron.job where jobname = 'purge-background-jobs'$$,
    $$values ('37 * * * *'::text, 'select private.purge_background_jobs()'::text)$$,
    'pg_cron purges ended jobs hourly'
);

-- Who may call and read ---------------------------------------------------------------------------

select throws_ok(
    $$select tests.as_role('anon', 'select public.schedule_job(''report'', ''x'')')$$,
    '42501', 'permission denied for function schedule_job',
    'anon may not schedule'
);
select throws_ok(
    $$select tests.as_role('anon', 'select count(*) from public.background_jobs')$$,
    '42501', 'permission denied for table background_jobs',
    'anon may not read the jobs'
);
select throws_ok(
    $$select tests.as_caller(
        'authenticated', '{"sub": "a0000000-0000-4000-8000-000000000001", "role": "authenticated"}',
        'select public.claim_jobs(null, 1)'
    )$$,
    '42501', 'permission denied for function claim_jobs',
    'an authenticated user may not claim'
);
select throws_ok(
    $$select tests.as_caller(
        'authenticated', '{"sub": "a0000000-0000-4000-8000-000000000001", "role": "authenticated"}',
        'select public.complete_job(1)'
    )$$,
    '42501', 'permission denied for function complete_job',
    'an authenticated user may not complete a job'
);
select throws_ok(
    $$select tests.as_caller(
        'authenticated', '{"sub": "a0000000-0000-4000-8000-000000000001", "role": "authenticated"}',
        'select public.fail_job(1, ''x'')'
    )$$,
    '42501', 'permission denied for function fail_job',
    'an authenticated user may not fail a job'
);
select throws_ok(
    $$select tests.as_caller(
        'authenticated', '{"sub": "a0000000-0000-4000-8000-000000000001", "role": "authenticated"}',
        'select public.cancel_job(1)'
    )$$,
    '42501', 'permission denied for function cancel_job',
    'an authenticated user may not cancel a job'
);
select throws_ok(
    $$select tests.as_caller(
        'authenticated', '{"sub": "a0000000-0000-4000-8000-000000000001", "role": "authenticated"}',
        'select count(*) from public.background_jobs'
    )$$,
    '42501', 'permission denied for table background_jobs',
    'an authenticated user may not read the jobs'
);
select lives_ok(
    $$select tests.as_role(
        'service_role',
        'insert into pg_temp.seen (note, n) select ''service'', '
        || 'public.schedule_job(''report'', ''by service'')'
    )$$,
    'service_role schedules'
);
select lives_ok(
    $$select tests.as_role(
        'service_role',
        'insert into pg_temp.seen (note, n) select ''service claimed'', c.id '
        || 'from public.claim_jobs(array[''report''], 1, ''svc'') as c'
    )$$,
    'service_role claims'
);
select lives_ok(
    format(
        'select tests.as_role(%L, %L)', 'service_role',
        format(
            'insert into pg_temp.seen (note, n) select %L, j.id from public.complete_job(%s) as j',
            'service completed', pg_temp.seen('service')
        )
    ),
    'service_role completes'
);
select lives_ok(
    $$select tests.as_role(
        'service_role',
        'insert into pg_temp.seen (note, n) select ''service read'', count(*) '
        || 'from public.background_jobs'
    )$$,
    'service_role reads the jobs'
);
select throws_ok(
    $$select tests.as_role(
        'service_role', 'update public.background_jobs set status = ''completed'''
    )$$,
    '42501', 'permission denied for table background_jobs',
    'service_role changes jobs only through the RPCs'
);
select is_empty(
    $$select p.oid::regprocedure::text from pg_catalog.pg_proc as p
       where p.pronamespace = 'public'::regnamespace
         and p.proname in ('schedule_job', 'claim_jobs', 'complete_job', 'fail_job',
                           'cancel_job')
         and (coalesce(obj_description(p.oid, 'pg_proc'), '') = ''
              or has_function_privilege('anon', p.oid, 'execute')
              or has_function_privilege('authenticated', p.oid, 'execute')
              or not has_function_privilege('service_role', p.oid, 'execute')
              or not p.prosecdef
              or not coalesce('search_path=""' = any(p.proconfig), false))$$,
    'every job RPC has a comment, is service_role only, security definer, search_path pinned'
);
select is(
    (select count(*)::integer from pg_catalog.pg_proc as p
      where p.pronamespace = 'public'::regnamespace
        and p.proname in ('schedule_job', 'claim_jobs', 'complete_job', 'fail_job',
                          'cancel_job')),
    5,
    'and there is one of each'
);
select is_empty(
    $$select p.oid::regprocedure::text from pg_catalog.pg_proc as p
       where p.pronamespace = 'private'::regnamespace
         and p.proname in ('time_out_jobs', 'finished_job', 'purge_background_jobs')
         and (coalesce(obj_description(p.oid, 'pg_proc'), '') = ''
              or has_function_privilege('anon', p.oid, 'execute')
              or has_function_privilege('authenticated', p.oid, 'execute')
              or has_function_privilege('service_role', p.oid, 'execute')
              or p.proconfig is distinct from array['search_path=""'])$$,
    'the private helpers have comments, pinned search_path, and no API role may call them'
);

select * from finish();
rollback;
