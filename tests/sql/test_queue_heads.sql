-- Queue heads (59_queues.sql, migration 20261207230000_queue_heads): where each queue's claims
-- start reading. Runs as postgres in one transaction, where now() stands still: a head moves
-- when its advanced_at is 100 ms behind now(), so tests set it back by hand; after a second's
-- sleep the limit (a second before the clock, and this transaction's start) reaches now().
begin;
select plan(25);

create temporary table seen (note text primary key, n bigint);
create function pg_temp.seen(p_note text)
returns bigint
language sql
as $$ select n from pg_temp.seen where note = p_note $$;

create function pg_temp.head(p_queue text, p_queue_name text, p_priority integer)
returns table (visible_from timestamptz, id_from bigint)
language sql
as $$
    select h.visible_from, h.id_from from private.queue_heads as h
    where h.queue = p_queue and h.queue_name = p_queue_name and h.priority = p_priority
$$;

create procedure pg_temp.due_heads()
language sql
as $$ update private.queue_heads set advanced_at = now() - interval '1 second' $$;

-- No pending row of any queue is before its head.
create temporary view rows_before_heads as
select 'message_queue' as queue, q.id
from public.message_queue as q
inner join private.queue_heads as h
    on
        h.queue = 'message_queue'
        and h.queue_name = q.queue_name
        and h.priority = q.priority
where q.status = 'pending' and (q.visible_at, q.id) < (h.visible_from, h.id_from)
union all
select 'background_jobs' as queue, j.id
from public.background_jobs as j
inner join private.queue_heads as h
    on h.queue = 'background_jobs' and h.queue_name = '' and h.priority = j.priority
where j.status = 'pending' and (j.run_at, j.id) < (h.visible_from, h.id_from)
union all
select 'whatsapp_message_queue' as queue, w.id
from public.whatsapp_message_queue as w
inner join private.queue_heads as h
    on h.queue = 'whatsapp_message_queue' and h.queue_name = '' and h.priority = w.priority
where w.status = 'pending' and (w.visible_at, w.id) < (h.visible_from, h.id_from);

-- Made by the first row of a priority ------------------------------------------------------------

insert into pg_temp.seen (note, n) values
('a', public.enqueue_message('heads', 'job', '{"n": "a"}', 5)),
('b', public.enqueue_message('heads', 'job', '{"n": "b"}', 5)),
('c', public.enqueue_message('heads', 'job', '{"n": "c"}', 5)),
('urgent', public.enqueue_message('heads', 'job', '{"n": "urgent"}', 9)),
('job', public.schedule_job('heads', null, '{}', null, 7)),
(
    'whatsapp',
    public.enqueue_whatsapp_message(
        '+250788000001', 'template', '{"name": "ride_update", "language": {"code": "en_US"}}', 3
    )
);

select results_eq(
    $$select queue, queue_name, priority::integer, visible_from, id_from
        from private.queue_heads order by queue, queue_name, priority$$,
    $$values ('background_jobs', '', 7, '-infinity'::timestamptz, 0::bigint),
             ('message_queue', 'heads', 5, '-infinity', 0),
             ('message_queue', 'heads', 9, '-infinity', 0),
             ('whatsapp_message_queue', '', 3, '-infinity', 0)$$,
    'each queue and priority gets a head at the front when its first row comes'
);

select is(
    (select count(*)::integer from private.queue_heads),
    4,
    'later rows of a priority make no other head'
);

-- Claims read priority by priority ---------------------------------------------------------------

select results_eq(
    $$select id from public.claim_messages('heads', 2, 30, 'w')$$,
    $$values (pg_temp.seen('urgent')), (pg_temp.seen('a'))$$,
    'a claim of 2 takes the priority 9 message, then the oldest of priority 5'
);
select is(
    public.ack_messages(array[pg_temp.seen('urgent'), pg_temp.seen('a')], 'w'),
    2,
    'both are acked'
);

-- Moved to the first pending row -----------------------------------------------------------------

do $$ begin perform pg_sleep(1.1); end $$;
call pg_temp.due_heads();

select results_eq(
    $$select id from public.claim_messages('heads', 1, 30, 'w')$$,
    $$values (pg_temp.seen('b'))$$,
    'the next claim moves the head, then takes b'
);
select results_eq(
    $$select visible_from, id_from from pg_temp.head('message_queue', 'heads', 5)$$,
    $$values (now(), pg_temp.seen('b'))$$,
    'the head moved to b, the first pending row, past a that was acked'
);
select cmp_ok(
    (select advanced_at from private.queue_heads where queue_name = 'heads' and priority = 5),
    '=',
    now(),
    'and says when'
);
select results_eq(
    $$select visible_from, id_from from pg_temp.head('message_queue', 'heads', 9)$$,
    $$values (now(), 0::bigint)$$,
    'a priority with nothing pending moves to the limit: here this transaction''s start'
);

-- Moved back by a row due before it --------------------------------------------------------------

insert into pg_temp.seen (note, n) values
('early', public.enqueue_message('heads', 'job', '{"n": "early"}', 5, now() - interval '1 hour'));

select results_eq(
    $$select visible_from, id_from from pg_temp.head('message_queue', 'heads', 5)$$,
    $$values (now() - interval '1 hour', pg_temp.seen('early'))$$,
    'a message scheduled an hour ago moves the head back to itself'
);
select results_eq(
    $$select id from public.claim_messages('heads', 1, 30, 'w')$$,
    $$values (pg_temp.seen('early'))$$,
    'and is the next claimed'
);

select is(
    (select status from public.nack_message(pg_temp.seen('early'), 'failed', interval '0', 'w')),
    'pending',
    'a nack puts it back, due now'
);
select results_eq(
    $$select visible_from, id_from from pg_temp.head('message_queue', 'heads', 5)$$,
    $$values (now() - interval '1 hour', pg_temp.seen('early'))$$,
    'the head was before it already and stays'
);

call pg_temp.due_heads();
select results_eq(
    $$select id from public.claim_messages('heads', 3, 30, 'w')$$,
    $$values (pg_temp.seen('c')), (pg_temp.seen('early'))$$,
    'a claim moves the head to c (due at now() like early, lower id) and takes both'
);
select results_eq(
    $$select visible_from, id_from from pg_temp.head('message_queue', 'heads', 5)$$,
    $$values (now(), pg_temp.seen('c'))$$,
    'the head is at c'
);

-- A dead letter redriven. Its lease is ended by hand, at the head's place.
update public.message_queue set attempts = max_retries + 1, visible_at = now()
where id = pg_temp.seen('c');
call pg_temp.due_heads();
select is_empty(
    $$select id from public.claim_messages('heads', 1, 30, 'w') where id = pg_temp.seen('c')$$,
    'c, delivered too often, becomes a dead letter'
);
select is(public.redrive_dead_messages('heads'), 1, 'and is redriven');
select is_empty($$select * from rows_before_heads$$, 'no pending message is before its head');

-- background_jobs and whatsapp_message_queue -----------------------------------------------------

call pg_temp.due_heads();
select results_eq(
    $$select id from public.claim_jobs(null, 5, 'w')$$,
    $$values (pg_temp.seen('job'))$$,
    'claim_jobs moves its head and takes the job'
);
select is(
    (select status from public.fail_job(pg_temp.seen('job'), 'try again', true, 'w')),
    'pending',
    'a retryable failure puts the job back'
);
update public.background_jobs set run_at = now() - interval '1 day' where id = pg_temp.seen('job');
-- The write a retry from an old transaction makes: keep_queue_head moves the head back.
do $$
begin
    perform private.keep_queue_head(
        'background_jobs', '', 7::smallint, now() - interval '1 day', pg_temp.seen('job')
    );
end
$$;
call pg_temp.due_heads();
select results_eq(
    $$select id from public.claim_jobs(null, 5, 'w')$$,
    $$values (pg_temp.seen('job'))$$,
    'a job due before the head once was is claimed again'
);

call pg_temp.due_heads();
select results_eq(
    $$select id from public.claim_whatsapp_messages(10, 60, 'w')$$,
    $$values (pg_temp.seen('whatsapp'))$$,
    'claim_whatsapp_messages moves its head and takes the message'
);
select is(
    (public.record_whatsapp_sends(
        jsonb_build_array(jsonb_build_object(
            'id', pg_temp.seen('whatsapp'), 'outcome', 'retry', 'retry_in_s', 0
        )),
        'w'
    ) ->> 'retrying')::integer,
    1,
    'a retry puts the message back, due now'
);
call pg_temp.due_heads();
select results_eq(
    $$select id from public.claim_whatsapp_messages(10, 60, 'w')$$,
    $$values (pg_temp.seen('whatsapp'))$$,
    'and it is claimed again'
);
select is_empty($$select * from rows_before_heads$$, 'still no pending row before its head');

-- Without pg_read_all_stats the head stays at the front -----------------------------------------

-- anon, lent the function for this rolled-back test, as any role without the grant.
grant usage on schema private to anon;
grant execute on function private.queue_head_limit() to anon;
set local role anon;
select is(
    private.queue_head_limit(),
    '-infinity'::timestamptz,
    'a caller that cannot see other roles'' transactions may not move a head at all'
);
reset role;

select * from finish();
rollback;
