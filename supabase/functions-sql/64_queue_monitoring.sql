-- Queue health for the on-call operator and the analyst: per queue and status, how much is
-- waiting and for how long, what is stuck, how fast work gets done over the last hour, and
-- whether the WhatsApp line is stopped and why. No recipients, payloads or errors' contents
-- beyond the pause reason. Views read the tables with their owner's rights; analyst gets
-- SELECT on the views only.
--
-- A row may hold an infinite time (the RPCs refuse one, the owner can still write it), and
-- subtracting one is an error that would take the whole view down. So spans are differences of
-- epochs (numeric, never an error) over rows whose two ends are finite, and an age is null when
-- its time is not finite.

create or replace view monitoring.whatsapp_queue_stats as
with by_status as (
    select
        q.status,
        count(*) as messages,
        count(*) filter (
            where q.status = 'pending' and q.claimed_at is not null and q.visible_at > now()
        ) as in_flight,
        count(*) filter (
            where q.status = 'pending' and q.claimed_at is null and q.attempts > 0
        ) as retrying,
        count(*) filter (
            where q.status = 'pending' and q.claimed_at is null and q.scheduled_at > now()
        ) as scheduled,
        min(q.enqueued_at) as oldest_enqueued_at,
        max(q.attempts) as max_attempts,
        round(avg(q.attempts), 2) as avg_attempts
    from public.whatsapp_message_queue as q
    group by q.status
),

last_hour as (
    select
        count(*) as sent_last_hour,
        percentile_cont(array[0.5, 0.95]) within group (
            order by extract(epoch from q.sent_at) - extract(epoch from q.scheduled_at)
        ) filter (where isfinite(q.sent_at) and isfinite(q.scheduled_at)) as to_sent_s
    from public.whatsapp_message_queue as q
    where q.status = 'sent' and q.finished_at > now() - interval '1 hour'
)

select
    s.status,
    coalesce(b.messages, 0) as messages,
    coalesce(b.in_flight, 0) as in_flight,
    coalesce(b.retrying, 0) as retrying,
    coalesce(b.scheduled, 0) as scheduled,
    b.oldest_enqueued_at,
    case when isfinite(b.oldest_enqueued_at) then now() - b.oldest_enqueued_at end as oldest_age,
    b.max_attempts,
    b.avg_attempts,
    h.sent_last_hour,
    round(h.sent_last_hour / 60.0, 2) as sent_per_minute,
    round(h.to_sent_s[1]::numeric, 3) as p50_due_to_sent_s,
    round(h.to_sent_s[2]::numeric, 3) as p95_due_to_sent_s,
    p.paused_at is not null as paused,
    p.paused_at,
    p.reason as pause_reason,
    p.error_code as pause_error_code
from (
    values
    (1, 'pending'), (2, 'sent'), (3, 'failed'), (4, 'dead'), (5, 'unconfirmed'), (6, 'cancelled')
) as s (position, status)
left join by_status as b on s.status = b.status
cross join last_hour as h
left join private.whatsapp_sender_pause as p on true
order by s.position;
comment on view monitoring.whatsapp_queue_stats is
'The outbound WhatsApp queue, one row per status (pending, sent, failed, dead, unconfirmed, '
'cancelled): '
'messages, of the pending ones in flight, retrying and scheduled, the oldest and its age, '
'attempts; and on every row the queue''s last hour (sent, per minute, p50 and p95 seconds from '
'due to sent) and whether the sender stopped the line, since when and why.';
grant select on monitoring.whatsapp_queue_stats to analyst;

create or replace view monitoring.message_queue_stats as
with by_status as (
    select
        q.queue_name::text as queue_name,
        q.status,
        count(*) as messages,
        count(*) filter (
            where q.status = 'pending' and q.claimed_at is not null and q.visible_at > now()
        ) as in_flight,
        count(*) filter (
            where q.status = 'pending' and q.claimed_at is null and q.attempts > 0
        ) as retrying,
        count(*) filter (
            where q.status = 'pending' and q.claimed_at is null and q.scheduled_at > now()
        ) as scheduled,
        min(q.enqueued_at) as oldest_enqueued_at,
        max(q.attempts) as max_attempts,
        round(avg(q.attempts), 2) as avg_attempts
    from public.message_queue as q
    group by q.queue_name, q.status
),

completed as (
    select
        c.queue_name,
        'completed' as status,
        count(*) as messages,
        max(c.attempts) as max_attempts,
        round(avg(c.attempts), 2) as avg_attempts,
        percentile_cont(array[0.5, 0.95]) within group (
            order by extract(epoch from c.completed_at) - extract(epoch from c.scheduled_at)
        ) filter (where isfinite(c.completed_at) and isfinite(c.scheduled_at)) as to_done_s
    from public.message_queue_completed as c
    where c.completed_at > now() - interval '1 hour'
    group by c.queue_name
)

select
    coalesce(b.queue_name, c.queue_name) as queue_name,
    coalesce(b.status, c.status) as status,
    coalesce(b.messages, c.messages) as messages,
    coalesce(b.in_flight, 0) as in_flight,
    coalesce(b.retrying, 0) as retrying,
    coalesce(b.scheduled, 0) as scheduled,
    b.oldest_enqueued_at,
    case when isfinite(b.oldest_enqueued_at) then now() - b.oldest_enqueued_at end as oldest_age,
    coalesce(b.max_attempts, c.max_attempts) as max_attempts,
    coalesce(b.avg_attempts, c.avg_attempts) as avg_attempts,
    round(c.messages / 60.0, 2) as completed_per_minute,
    round(c.to_done_s[1]::numeric, 3) as p50_due_to_completed_s,
    round(c.to_done_s[2]::numeric, 3) as p95_due_to_completed_s
from by_status as b
full join completed as c on b.queue_name = c.queue_name and b.status = c.status
order by queue_name, status;
comment on view monitoring.message_queue_stats is
'message_queue per queue and status: pending (with in flight, retrying and scheduled) and dead '
'from the queue, completed over the last hour; messages, the oldest and its age, attempts, and '
'for completed the rate per minute and p50 and p95 seconds from due to completed.';
grant select on monitoring.message_queue_stats to analyst;

create or replace view monitoring.background_job_stats as
with by_status as (
    select
        j.job_type::text as job_type,
        j.status,
        count(*) as jobs,
        count(*) filter (
            where j.status = 'running' and j.timeout_at < now()
        ) as past_timeout,
        count(*) filter (
            where j.status = 'pending' and j.attempts > 0
        ) as retrying,
        count(*) filter (
            where j.status = 'pending' and j.run_at > now()
        ) as scheduled,
        min(j.created_at) filter (where j.status in ('pending', 'running')) as oldest_created_at,
        max(j.attempts) as max_attempts,
        round(avg(j.attempts), 2) as avg_attempts
    from public.background_jobs as j
    group by j.job_type, j.status
),

last_hour as (
    select
        j.job_type::text as job_type,
        j.status,
        count(*) as ended_last_hour,
        percentile_cont(array[0.5, 0.95]) within group (
            order by extract(epoch from j.completed_at) - extract(epoch from j.started_at)
        ) filter (where isfinite(j.completed_at) and isfinite(j.started_at)) as run_s,
        percentile_cont(array[0.5, 0.95]) within group (
            order by extract(epoch from j.started_at) - extract(epoch from j.scheduled_at)
        ) filter (where isfinite(j.started_at) and isfinite(j.scheduled_at)) as wait_s
    from public.background_jobs as j
    where
        j.status in ('completed', 'failed', 'cancelled', 'timeout')
        and j.completed_at > now() - interval '1 hour'
    group by j.job_type, j.status
)

select
    b.job_type,
    b.status,
    b.jobs,
    b.retrying,
    b.scheduled,
    b.past_timeout,
    b.oldest_created_at,
    case when isfinite(b.oldest_created_at) then now() - b.oldest_created_at end as oldest_age,
    b.max_attempts,
    b.avg_attempts,
    coalesce(h.ended_last_hour, 0) as ended_last_hour,
    round(coalesce(h.ended_last_hour, 0) / 60.0, 2) as ended_per_minute,
    round(h.run_s[1]::numeric, 3) as p50_run_s,
    round(h.run_s[2]::numeric, 3) as p95_run_s,
    round(h.wait_s[1]::numeric, 3) as p50_wait_s,
    round(h.wait_s[2]::numeric, 3) as p95_wait_s
from by_status as b
left join last_hour as h on b.job_type = h.job_type and b.status = h.status
order by b.job_type, b.status;
comment on view monitoring.background_job_stats is
'background_jobs per job type and status: jobs, of the pending ones retrying and scheduled, '
'running ones past their timeout (cron times them out within a minute), the oldest unfinished '
'and its age, attempts; for the statuses jobs end in, how many ended in the last hour, per '
'minute, and p50 and p95 of the run time and of the wait from scheduled to started.';
grant select on monitoring.background_job_stats to analyst;
