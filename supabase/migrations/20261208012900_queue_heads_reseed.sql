-- Heads again for pending rows, after the migration that makes every enqueue keep its head
-- (20261208012846_queue_heads_functions): a row enqueued at a new priority by the old
-- functions, between 20261207230000_queue_heads and it, has a head now. Claims read only the
-- priorities that have one.

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
where w.status = 'pending'
on conflict do nothing;
