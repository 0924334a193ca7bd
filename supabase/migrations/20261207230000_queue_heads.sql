-- Where each queue's claims start reading. Every ack (and every claim of a background job) leaves
-- a dead entry at the front of the ready index, and a claim reads the index from the front: with
-- autovacuum at its defaults (a visit a minute) a queue claiming 15,000 messages a second fell to
-- a third of that within 40 s, and recovered only when a vacuum happened to come. A head is a
-- position in the ready index's order, per queue and priority, before which no pending row can
-- be: claims start there, so what they read no longer grows with what was done before.

create table private.queue_heads (
    -- The queue's table: message_queue, background_jobs or whatsapp_message_queue.
    queue text not null,
    -- message_queue's queue_name; '' for the queues that have one line.
    queue_name text not null,
    priority smallint not null,
    -- No pending row of this queue and priority is before (visible_from, id_from) in the
    -- ready index's order (visible_at or run_at, then id).
    visible_from timestamptz not null default '-infinity',
    id_from bigint not null default 0,
    -- When a claim last moved the head; the next may move it 100 ms later.
    advanced_at timestamptz not null default now(),
    primary key (queue, queue_name, priority),
    constraint queue_heads_queue_known check (
        queue in ('message_queue', 'background_jobs', 'whatsapp_message_queue')
    )
);
comment on table private.queue_heads is
'Per queue, queue_name and priority, the position in the ready index before which no pending '
'row is: claims read from there, past none of the dead entries acks left before it. Made by the '
'first enqueue of a priority, moved forward by claims (private.advance_queue_head), moved back '
'by a write that makes a row due before it (private.keep_queue_head).';

-- The queues' pending rows already there have their heads; a head at -infinity is exact.
insert into private.queue_heads (queue, queue_name, priority)
select distinct
    'message_queue' as queue,
    q.queue_name,
    q.priority
from public.message_queue as q
where q.status = 'pending'
union
select distinct
    'background_jobs' as queue,
    '' as queue_name,
    j.priority
from public.background_jobs as j
where j.status = 'pending'
union
select distinct
    'whatsapp_message_queue' as queue,
    '' as queue_name,
    w.priority
from public.whatsapp_message_queue as w
where w.status = 'pending';
