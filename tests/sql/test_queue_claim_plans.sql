-- claim_messages and ack_messages run one generic plan per session (60_message_queue.sql). A
-- generic plan is made once, with the statistics and size of that moment, and cannot see the
-- batch size: written as a join, the claim's plan hashed the whole table on every call. Here
-- the queue is analysed empty and its first claim and ack plan against a table of one row;
-- then 300 more messages arrive and are claimed and acked one by one and ten at a time. This
-- transaction's own counters must show no sequential scan and a bounded number of rows read.
begin;
select plan(6);

analyze public.message_queue;

create temporary table done (n bigint);

-- The first message: its claim and ack make this session's plans while the table looks empty.
insert into done select public.enqueue_message('plans', 'job', '{}');
insert into done
select count(public.ack_messages(array[c.id], 'w'))
from public.claim_messages('plans', 1, 30, 'w') as c;

select is(
    (
        select c.reltuples from pg_catalog.pg_class as c
        where c.oid = 'public.message_queue'::regclass
    ),
    0::real,
    'the statistics still say message_queue is empty'
);

insert into done
select count(public.enqueue_message('plans', 'job', jsonb_build_object('n', n)))
from generate_series(1, 300) as n;

do $$
begin
    for n in 1..100 loop
        perform public.ack_messages(array_agg(c.id), 'w')
        from public.claim_messages('plans', 1, 30, 'w') as c;
    end loop;
    for n in 1..20 loop
        perform public.ack_messages(array_agg(c.id), 'w')
        from public.claim_messages('plans', 10, 30, 'w') as c;
    end loop;
end;
$$;

-- Taken now: the checks below read the table themselves.
create temporary table scans as
select
    s.seq_scan,
    s.idx_tup_fetch,
    s.n_tup_del
from pg_catalog.pg_stat_xact_user_tables as s
where s.relid = 'public.message_queue'::regclass;

select is(
    (select s.n_tup_del from scans as s),
    301::bigint,
    'every message claimed and acked: the first, 100 one by one, 200 ten at a time'
);
select is(
    (select s.seq_scan from scans as s),
    0::bigint,
    'no claim or ack read the table whole'
);
select cmp_ok(
    (select s.idx_tup_fetch from scans as s),
    '<=',
    -- The enqueue's wake-up check, the claim's pick and its update, the ack's delete.
    4 * 301::bigint,
    'at most four rows read per message'
);
select is(
    (select count(*) from public.message_queue as q where q.queue_name = 'plans'),
    0::bigint,
    'the queue is drained'
);
select is(
    (select count(*) from public.message_queue_completed as c where c.queue_name = 'plans'),
    301::bigint,
    'one completed row per ack'
);

select * from finish();
rollback;
