-- The wake-up check of each enqueue (enqueue_message, schedule_job, enqueue_whatsapp_message:
-- "was the queue empty?") reads the ready index whatever the statistics say. Analysed while
-- empty, a queue table looks free to read whole: the check's cached plan then scanned every
-- queued row on each enqueue, and a 200,000-message enqueue in one statement did not finish in
-- 15 minutes. Here each table is analysed empty, then filled in one statement and in a second
-- one for another queue; this transaction's own counters must show no sequential scan and no
-- more rows fetched than enqueues made.
begin;
select plan(9);

analyze public.message_queue, public.background_jobs, public.whatsapp_message_queue;

select is(
    (
        select c.reltuples from pg_catalog.pg_class as c
        where c.oid = 'public.message_queue'::regclass
    ),
    0::real,
    'the statistics say message_queue is empty'
);

create temporary table made (n bigint);

insert into made
select count(public.enqueue_message('bulk', 'job', jsonb_build_object('n', n)))
from generate_series(1, 400) as n;
insert into made
select count(public.enqueue_message('other', 'job', jsonb_build_object('n', n)))
from generate_series(1, 400) as n;

insert into made
select count(public.schedule_job('bulk', null, jsonb_build_object('n', n)))
from generate_series(1, 400) as n;
insert into made
select count(public.schedule_job('other', null, jsonb_build_object('n', n)))
from generate_series(1, 400) as n;

insert into made
select
    count(
        public.enqueue_whatsapp_message(
            '+25078' || lpad(n::text, 7, '0'),
            'template',
            '{"name": "ride_update", "language": {"code": "en_US"}}'
        )
    )
from generate_series(1, 800) as n;

create temporary view scans as
select
    s.relname::text as relname,
    s.seq_scan,
    s.idx_scan,
    s.idx_tup_fetch,
    s.n_tup_ins
from pg_catalog.pg_stat_xact_user_tables as s
where
    s.schemaname = 'public'
    and s.relname in ('message_queue', 'background_jobs', 'whatsapp_message_queue');

select is(
    (
        select s.n_tup_ins from scans as s
        where s.relname = 'message_queue'
    ),
    800::bigint,
    'message_queue: 800 messages enqueued'
);
select is(
    (
        select s.seq_scan from scans as s
        where s.relname = 'message_queue'
    ),
    0::bigint,
    'message_queue: no enqueue read the table whole'
);
select cmp_ok(
    (
        select s.idx_tup_fetch from scans as s
        where s.relname = 'message_queue'
    ),
    '<=',
    800::bigint,
    'message_queue: each check fetched at most one row'
);

select is(
    (
        select s.n_tup_ins from scans as s
        where s.relname = 'background_jobs'
    ),
    800::bigint,
    'background_jobs: 800 jobs scheduled'
);
select is(
    (
        select s.seq_scan from scans as s
        where s.relname = 'background_jobs'
    ),
    0::bigint,
    'background_jobs: no schedule_job read the table whole'
);
select cmp_ok(
    (
        select s.idx_tup_fetch from scans as s
        where s.relname = 'background_jobs'
    ),
    '<=',
    -- Each schedule reads its own key's index entry as well as the check's first row.
    1600::bigint,
    'background_jobs: each check fetched at most one row'
);

select is(
    (
        select s.n_tup_ins from scans as s
        where s.relname = 'whatsapp_message_queue'
    ),
    800::bigint,
    'whatsapp_message_queue: 800 messages enqueued'
);
select is(
    (
        select s.seq_scan from scans as s
        where s.relname = 'whatsapp_message_queue'
    ),
    0::bigint,
    'whatsapp_message_queue: no enqueue read the table whole'
);

select * from finish();
rollback;
