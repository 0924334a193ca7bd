-- message_queue (supabase/functions-sql/*_message_queue.sql, migration
-- 20260401130000_message_queue.sql): enqueue_message, claim_messages, ack_message, nack_message,
-- redrive_dead_messages, the retention job, who may call them and what they refuse. Runs as
-- postgres on a fresh clone in one transaction: now() is constant, so "visible now" is
-- visible_at <= now() and a lease is moved into the past by hand to expire it.
begin;
select plan(58);

create temp table seen (note text primary key, n bigint);
grant select, insert on pg_temp.seen to anon, authenticated, service_role;
create function pg_temp.seen(p_note text)
returns bigint
language sql
as $$ select n from pg_temp.seen where note = p_note $$;

-- enqueue_message ---------------------------------------------------------------------------------

insert into pg_temp.seen (note, n) values
('low', public.enqueue_message('mail', 'welcome', '{"to": "a@example.com"}', 2)),
('high', public.enqueue_message('mail', 'receipt', '{"to": "b@example.com"}', 9)),
('default', public.enqueue_message('mail', 'welcome', '{"to": "c@example.com"}')),
('later', public.enqueue_message('mail', 'reminder', '{}', 10, now() + interval '1 hour')),
('other queue', public.enqueue_message('sms', 'otp', '{}', 10)),
('keyed', public.enqueue_message('mail', 'invoice', '{"n": 1}', 5, null, 'invoice-1'));

select results_eq(
    $$select queue_name::text, message_type::text, payload::jsonb, priority::integer, status,
             attempts, visible_at = now(), idempotency_key
        from public.message_queue where id = pg_temp.seen('low')$$,
    $$values ('mail', 'welcome', '{"to": "a@example.com"}'::jsonb, 2, 'pending', 0, true,
              null::text)$$,
    'enqueue_message stores the message pending, visible now, with its priority'
);
select is(
    (select priority::integer from public.message_queue where id = pg_temp.seen('default')), 5,
    'the default priority is 5'
);
select is(
    public.enqueue_message('mail', 'invoice', '{"n": 2}', 1, null, 'invoice-1'),
    pg_temp.seen('keyed'),
    'the same idempotency key on the same queue returns the first id'
);
select is(
    (select count(*) from public.message_queue where idempotency_key = 'invoice-1'), 1::bigint,
    'and stores nothing more'
);
select isnt(
    public.enqueue_message('sms', 'invoice', '{}', 5, null, 'invoice-1'),
    pg_temp.seen('keyed'),
    'the same key on another queue is another message'
);
select throws_ok(
    $$select public.enqueue_message('Mail!', 'x', '{}')$$,
    '22023',
    'enqueue_message: p_queue_name must be lower case letters, digits, _ . : or -, starting with '
    || 'a letter, at most 63 characters (got ''Mail!'')',
    'a queue name with capitals and punctuation is refused'
);
select throws_ok(
    $$select public.enqueue_message(null, 'x', '{}')$$, '22023', null,
    'a null queue name is refused'
);
select throws_ok(
    $$select public.enqueue_message('mail', '', '{}')$$,
    '22023', 'enqueue_message: p_message_type must be 1 to 100 characters',
    'an empty message type is refused'
);
select throws_ok(
    $$select public.enqueue_message('mail', 'x', '[1, 2]')$$,
    '22023', 'enqueue_message: p_payload must be a JSON object',
    'a payload that is not an object is refused'
);
select throws_ok(
    $$select public.enqueue_message('mail', 'x', null)$$,
    '22023', 'enqueue_message: p_payload must be a JSON object',
    'a null payload is refused'
);
select throws_ok(
    $$select public.enqueue_message('mail', 'x', '{}', 11)$$,
    '22023', 'enqueue_message: p_priority must be 1 to 10 (got 11)',
    'priority 11 is refused'
);
select throws_ok(
    $$select public.enqueue_message('mail', 'x', '{}', 0)$$,
    '22023', 'enqueue_message: p_priority must be 1 to 10 (got 0)',
    'priority 0 is refused'
);
select throws_ok(
    $$select public.enqueue_message('mail', 'x', '{}', 5, null, '')$$,
    '22023', 'enqueue_message: p_idempotency_key must be 1 to 255 characters',
    'an empty idempotency key is refused'
);
select is(
    (select count(*) from public.message_queue where message_type = 'x'), 0::bigint,
    'refused enqueues store nothing'
);

-- claim_messages ---------------------------------------------------------------------------------

select results_eq(
    $$select id, attempts, claimed_by from public.claim_messages('mail', 2, 30, 'w1')$$,
    $$values (pg_temp.seen('high'), 1, 'w1'::text), (pg_temp.seen('default'), 1, 'w1')$$,
    'claim_messages takes the highest priority first (9, then 5 in enqueue order)'
);
select ok(
    (select bool_and(visible_at = now() + interval '30 seconds' and claimed_at = now())
       from public.message_queue where id in (pg_temp.seen('high'), pg_temp.seen('default'))),
    'claimed messages are hidden for the visibility timeout'
);
select results_eq(
    $$select id from public.claim_messages('mail', 10, 30, 'w2')$$,
    $$values (pg_temp.seen('keyed')), (pg_temp.seen('low'))$$,
    'another claim gets the rest that is visible: not the claimed, not the scheduled one'
);
select is_empty(
    $$select id from public.claim_messages('mail', 10, 30, 'w3')$$,
    'nothing is left to claim'
);
select is_empty(
    $$select id from public.claim_messages('nobody', 10, 30, 'w3')$$,
    'an unknown queue has nothing to claim'
);

-- A lease that runs out: the message is claimed again, by another worker.
update public.message_queue set visible_at = now() - interval '1 second'
where id = pg_temp.seen('low');
select results_eq(
    $$select id, attempts, claimed_by from public.claim_messages('mail', 10, 30, 'w3')$$,
    $$values (pg_temp.seen('low'), 2, 'w3'::text)$$,
    'a message whose visibility timeout ran out is claimed again, its attempts counted'
);
select throws_ok(
    $$select public.claim_messages('mail', 0)$$,
    '22023', 'claim_messages: p_batch_size must be 1 to 1000 (got 0)',
    'a batch of 0 is refused'
);
select throws_ok(
    $$select public.claim_messages('mail', 1001)$$,
    '22023', 'claim_messages: p_batch_size must be 1 to 1000 (got 1001)',
    'a batch over 1000 is refused'
);
select throws_ok(
    $$select public.claim_messages('mail', 1, 0)$$,
    '22023', 'claim_messages: p_visibility_timeout_s must be 1 to 43200 (got 0)',
    'a visibility timeout of 0 is refused'
);
select throws_ok(
    $$select public.claim_messages(null, 1)$$,
    '22023',
    'claim_messages: p_queue_name must be lower case letters, digits, _ . : or -, starting with '
    || 'a letter, at most 63 characters (got null)',
    'a null queue name is refused'
);

-- ack_message -------------------------------------------------------------------------------------

select ok(
    public.ack_message(pg_temp.seen('high'), 'w1'),
    'ack_message by the worker holding the claim acks it'
);
select results_eq(
    $$select id, queue_name, message_type, priority::integer, attempts, claimed_by,
             completed_at = now()
        from public.message_queue_completed$$,
    $$values (pg_temp.seen('high'), 'mail'::text, 'receipt'::text, 9, 1, 'w1'::text, true)$$,
    'the acked message moves to message_queue_completed, without its payload'
);
select is_empty(
    $$select id from public.message_queue where id = pg_temp.seen('high')$$,
    'and leaves message_queue'
);
select ok(
    not public.ack_message(pg_temp.seen('high')),
    'acking it again is false and changes nothing'
);
select ok(
    not public.ack_message(pg_temp.seen('low'), 'w2'),
    'a worker whose claim was taken over cannot ack'
);
select ok(
    not public.ack_message(pg_temp.seen('later')),
    'a message never claimed cannot be acked'
);
select is(
    (select count(*) from public.message_queue_completed), 1::bigint,
    'refused acks move nothing'
);
select throws_ok(
    $$select public.ack_message(null)$$,
    '22023', 'ack_message: p_id must be a message id',
    'a null id is refused'
);

-- ack_messages: a worker's batch at once; what it does not hold stays.
insert into pg_temp.seen (note, n) values
('b1', public.enqueue_message('batch', 'x', '{}')),
('b2', public.enqueue_message('batch', 'x', '{}')),
('b3', public.enqueue_message('batch', 'x', '{}'));
insert into pg_temp.seen (note, n)
select 'b claimed', count(*) from public.claim_messages('batch', 2, 30, 'w9');
select is(
    public.ack_messages(
        array[pg_temp.seen('b1'), pg_temp.seen('b2'), pg_temp.seen('b3'), -1], 'w9'
    ),
    2,
    'ack_messages acks the claimed ones of the batch and leaves the unclaimed and unknown'
);
select results_eq(
    $$select id, status, claimed_at from public.message_queue where queue_name = 'batch'$$,
    $$values (pg_temp.seen('b3'), 'pending'::text, null::timestamptz)$$,
    'the message not claimed is still queued'
);
select throws_ok(
    $$select public.ack_messages(null)$$,
    '22023', 'ack_messages: p_ids must be an array of message ids',
    'a null array is refused'
);

-- nack_message: retry with backoff, then dead -----------------------------------------------------

select results_eq(
    $$select status, attempts, last_error, claimed_by, visible_at = now() + interval '5 minutes'
        from public.nack_message(pg_temp.seen('default'), 'SMTP 451', interval '5 minutes', 'w1')$$,
    $$values ('pending', 1, 'SMTP 451'::text, null::text, true)$$,
    'nack_message with p_retry_in puts the message back, visible after it, with the error'
);
select ok(
    (select visible_at between now() + interval '2 seconds' and now() + interval '2.4 seconds'
       from public.nack_message(pg_temp.seen('keyed'), 'timeout')),
    'without p_retry_in the backoff is 2^attempts seconds plus up to a fifth (1 attempt: 2 to '
    || '2.4 s)'
);
select throws_ok(
    format('select public.nack_message(%s, %L)', pg_temp.seen('keyed'), 'again'),
    'PT404', format('nack_message: message %s is not claimed', pg_temp.seen('keyed')),
    'a message not claimed cannot be nacked'
);
select throws_ok(
    format('select public.nack_message(%s, %L, null, %L)', pg_temp.seen('low'), 'x', 'w1'),
    'PT404', format('nack_message: message %s is not claimed by w1', pg_temp.seen('low')),
    'a worker that does not hold the claim cannot nack'
);
select throws_ok(
    format('select public.nack_message(%s, %L, %L)', pg_temp.seen('low'), 'x', '-1 second'),
    '22023', 'nack_message: p_retry_in must be 0 to 7 days (got -00:00:01)',
    'a negative retry delay is refused'
);

-- A message with max_retries 1 is delivered twice, then dead.
insert into pg_temp.seen (note, n) values ('fragile', public.enqueue_message('pdf', 'render', '{}'));
update public.message_queue set max_retries = 1 where id = pg_temp.seen('fragile');
select is(
    (select status from public.nack_message(
        (select id from public.claim_messages('pdf', 1, 30, 'w1')), 'crash', '0')),
    'pending', 'after the first delivery fails the message is retried'
);
select results_eq(
    $$select status, attempts, last_error, dead_at = now()
        from public.nack_message(
            (select id from public.claim_messages('pdf', 1, 30, 'w1')), 'crash again', '0')$$,
    $$values ('dead', 2, 'crash again'::text, true)$$,
    'after max_retries + 1 failed deliveries it is dead, with its last error'
);
select is_empty(
    $$select id from public.claim_messages('pdf', 10, 30, 'w1')$$,
    'a dead letter is never claimed'
);

-- A worker that dies on every delivery: the claim after the last one dead-letters it.
insert into pg_temp.seen (note, n) values ('poison', public.enqueue_message('pdf', 'huge', '{}'));
update public.message_queue set max_retries = 0 where id = pg_temp.seen('poison');
select is(
    (select count(*) from public.claim_messages('pdf', 1, 30, 'w1')), 1::bigint,
    'a message with max_retries 0 is delivered once'
);
update public.message_queue set visible_at = now() - interval '1 second'
where id = pg_temp.seen('poison');
select is_empty(
    $$select id from public.claim_messages('pdf', 1, 30, 'w2')$$,
    'when its lease runs out it is not delivered again'
);
select results_eq(
    $$select status, attempts, last_error from public.message_queue
       where id = pg_temp.seen('poison')$$,
    $$values ('dead', 1, 'visibility timeout expired on the last attempt'::text)$$,
    'but dead-lettered, saying why'
);

-- redrive_dead_messages ---------------------------------------------------------------------------

select is(public.redrive_dead_messages('pdf'), 2, 'redrive_dead_messages revives both');
select results_eq(
    $$select status, attempts, dead_at, visible_at = now() from public.message_queue
       where queue_name = 'pdf' order by id$$,
    $$values ('pending', 0, null::timestamptz, true), ('pending', 0, null, true)$$,
    'redriven messages are pending, visible now, their attempts reset'
);
select is(public.redrive_dead_messages('pdf'), 0, 'with no dead letters left it revives none');

-- Retention ---------------------------------------------------------------------------------------

-- A keyed message done a week ago: its completed row and its key go.
insert into pg_temp.seen (note, n) values
('receipt', public.enqueue_message('receipts', 'receipt', '{}', 5, null, 'receipt-1'));
insert into pg_temp.seen (note, n)
select 'receipt acked', public.ack_message(c.id)::integer
from public.claim_messages('receipts', 1) as c;
update public.message_queue_completed set completed_at = now() - interval '8 days';
update private.message_queue_keys set created_at = now() - interval '8 days';
select is(
    private.purge_message_queue(), 5,
    'purge_message_queue deletes completed rows (4) and keys of acked messages (1) older than 7 '
    || 'days'
);
select results_eq(
    $$select queue_name, idempotency_key from private.message_queue_keys order by queue_name$$,
    $$values ('mail'::text, 'invoice-1'::text), ('sms', 'invoice-1')$$,
    'the keys of messages still queued stay, however old'
);
select results_eq(
    $$select schedule, command from cron.job where jobname = 'purge-message-queue'$$,
    $$values ('53 * * * *'::text, 'select private.purge_message_queue()'::text)$$,
    'pg_cron purges the queue''s history hourly'
);

-- Who may call and read ---------------------------------------------------------------------------

select throws_ok(
    $$select tests.as_role('anon', 'select public.enqueue_message(''mail'', ''x'', ''{}'')')$$,
    '42501', 'permission denied for function enqueue_message',
    'anon may not enqueue'
);
select throws_ok(
    $$select tests.as_caller(
        'authenticated', '{"sub": "a0000000-0000-4000-8000-000000000001", "role": "authenticated"}',
        'select public.claim_messages(''mail'', 1)'
    )$$,
    '42501', 'permission denied for function claim_messages',
    'an authenticated user may not claim'
);
select throws_ok(
    $$select tests.as_caller(
        'authenticated', '{"sub": "a0000000-0000-4000-8000-000000000001", "role": "authenticated"}',
        'select count(*) from public.message_queue'
    )$$,
    '42501', 'permission denied for table message_queue',
    'an authenticated user may not read the queue'
);
select lives_ok(
    $$select tests.as_role(
        'service_role',
        'insert into pg_temp.seen (note, n) select ''service'', '
        || 'public.enqueue_message(''mail'', ''x'', ''{}'')'
    )$$,
    'service_role enqueues'
);
select is_empty(
    $$select p.oid::regprocedure::text from pg_catalog.pg_proc as p
       where p.pronamespace = 'public'::regnamespace
         and p.proname in ('enqueue_message', 'claim_messages', 'ack_message', 'ack_messages',
                           'nack_message', 'redrive_dead_messages')
         and (coalesce(obj_description(p.oid, 'pg_proc'), '') = ''
              or has_function_privilege('anon', p.oid, 'execute')
              or has_function_privilege('authenticated', p.oid, 'execute')
              or not has_function_privilege('service_role', p.oid, 'execute')
              or not p.prosecdef
              or not coalesce('search_path=""' = any(p.proconfig), false))$$,
    'every queue RPC has a comment, is service_role only, security definer, search_path pinned'
);
select is_empty(
    $$select c.relname::text from pg_catalog.pg_class as c
       where c.oid in ('public.message_queue'::regclass, 'public.whatsapp_message_queue'::regclass,
                       'public.background_jobs'::regclass)
         and not c.reloptions @> array['autovacuum_vacuum_scale_factor=0',
                                       'autovacuum_vacuum_threshold=10000']$$,
    'every queue table is vacuumed after 10,000 dead rows whatever its size'
);

select * from finish();
rollback;
