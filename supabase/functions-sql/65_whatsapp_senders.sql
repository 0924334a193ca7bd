-- The sender's liveness (migration 20261207100000_whatsapp_sender_heartbeats): the heartbeat each
-- sender loop writes, the monitoring views that say which senders are live and whether due
-- messages wait with none to send them, the health RPC the edge's /ready and `python -m app
-- status` read, and the purge of old rows.

create or replace function public.whatsapp_sender_heartbeat(
    p_worker_id text,
    p_host text,
    p_pid integer,
    p_provider text,
    p_stale_after_s integer,
    p_claimed integer default 0,
    p_sent integer default 0,
    p_stopped boolean default false
)
returns void
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
    perform private.require_length(p_worker_id, 1, 200, 'whatsapp_sender_heartbeat', 'p_worker_id');
    perform private.require_length(p_host, 1, 255, 'whatsapp_sender_heartbeat', 'p_host');
    perform private.require_between(p_pid, 1, 2147483647, 'whatsapp_sender_heartbeat', 'p_pid');
    perform private.require_length(p_provider, 1, 50, 'whatsapp_sender_heartbeat', 'p_provider');
    perform private.require_between(
        p_stale_after_s, 2, 3600, 'whatsapp_sender_heartbeat', 'p_stale_after_s'
    );
    perform private.require_between(p_claimed, 0, 1000000, 'whatsapp_sender_heartbeat', 'p_claimed');
    perform private.require_between(p_sent, 0, 1000000, 'whatsapp_sender_heartbeat', 'p_sent');
    if p_stopped is null then
        raise exception 'whatsapp_sender_heartbeat: p_stopped must be true or false'
        using errcode = '22023';
    end if;

    -- The worker reports what it did since its previous heartbeat; the times are ours, so
    -- senders on hosts with skewed clocks compare alike.
    insert into private.whatsapp_senders as s (
        worker_id,
        host,
        pid,
        provider,
        stale_after_s,
        last_claim_at,
        last_sent_at,
        messages_claimed,
        messages_sent,
        stopped_at
    )
    values (
        p_worker_id,
        p_host,
        p_pid,
        p_provider,
        p_stale_after_s,
        case when p_claimed > 0 then pg_catalog.now() end,
        case when p_sent > 0 then pg_catalog.now() end,
        p_claimed,
        p_sent,
        case when p_stopped then pg_catalog.now() end
    )
    on conflict (worker_id) do update
        set
            host = excluded.host,
            pid = excluded.pid,
            provider = excluded.provider,
            stale_after_s = excluded.stale_after_s,
            last_heartbeat_at = pg_catalog.now(),
            last_claim_at = coalesce(excluded.last_claim_at, s.last_claim_at),
            last_sent_at = coalesce(excluded.last_sent_at, s.last_sent_at),
            messages_claimed = s.messages_claimed + excluded.messages_claimed,
            messages_sent = s.messages_sent + excluded.messages_sent,
            stopped_at = excluded.stopped_at;
end;
$$;
comment on function public.whatsapp_sender_heartbeat(
    text, text, integer, text, integer, integer, integer, boolean
) is
'A sender loop says it is alive: p_worker_id (1 to 200 characters, as it signs its claims), '
'p_host (1 to 255), p_pid, p_provider (1 to 50), p_stale_after_s (2 to 3600: it writes again '
'within that many seconds while it runs), and since its previous heartbeat p_claimed messages '
'claimed and p_sent sent (0 to 1000000 each); p_stopped when it stops cleanly. Times are the '
'database''s. Bad input 22023, changing nothing. service_role only.';
revoke all on function public.whatsapp_sender_heartbeat(
    text, text, integer, text, integer, integer, integer, boolean
) from public, anon, authenticated;
grant execute on function public.whatsapp_sender_heartbeat(
    text, text, integer, text, integer, integer, integer, boolean
) to service_role;

create or replace view monitoring.whatsapp_senders as
select
    s.worker_id,
    s.host,
    s.pid,
    s.provider,
    case
        when s.stopped_at is not null then 'stopped'
        when s.last_heartbeat_at >= now() - make_interval(secs => s.stale_after_s) then 'live'
        else 'stale'
    end as state,
    s.started_at,
    s.last_heartbeat_at,
    -- The epoch of each end, not of their difference: a heartbeat time the owner set to
    -- infinity must not take the view down.
    round(extract(epoch from now()) - extract(epoch from s.last_heartbeat_at), 1)
        as heartbeat_age_s,
    s.stale_after_s,
    s.last_claim_at,
    s.last_sent_at,
    s.messages_claimed,
    s.messages_sent,
    s.stopped_at
from private.whatsapp_senders as s
order by s.last_heartbeat_at desc, s.worker_id asc;
comment on view monitoring.whatsapp_senders is
'Each sender loop (python -m app worker) of the last 7 days: host, pid, provider, state (live: '
'a heartbeat within its stale_after_s; stale: none since, so it died, hung or lost the '
'database; stopped: it stopped cleanly), when it started, last wrote, last claimed and last '
'sent a message, and how many it claimed and sent. No recipients or payloads.';
grant select on monitoring.whatsapp_senders to analyst;

create or replace view monitoring.whatsapp_sender_health as
with senders as (
    select
        count(*) filter (where s.state = 'live') as live_senders,
        count(*) filter (where s.state = 'stale') as stale_senders,
        count(*) filter (where s.state = 'stopped') as stopped_senders,
        max(s.last_heartbeat_at) as last_heartbeat_at
    from monitoring.whatsapp_senders as s
),

-- Due: pending and claimable now, or waiting behind its recipient's earlier message, or a
-- claim whose lease ran out.
due as (
    select
        count(*) as due_messages,
        min(q.visible_at) as oldest_due_at
    from public.whatsapp_message_queue as q
    where q.status = 'pending' and q.visible_at <= now()
)

select
    case
        when s.live_senders > 0 then 'ok'
        when s.stale_senders > 0 then 'stale'
        else 'absent'
    end as state,
    s.live_senders,
    s.stale_senders,
    s.stopped_senders,
    s.last_heartbeat_at,
    d.due_messages,
    d.oldest_due_at,
    -- A row the table cannot forbid (visible_at -infinity) must not break the view.
    case
        when isfinite(d.oldest_due_at)
            then round(extract(epoch from now() - d.oldest_due_at), 1)
    end as oldest_due_age_s,
    d.due_messages > 0 and s.live_senders = 0 as unattended,
    p.paused_at is not null as paused
from senders as s
cross join due as d
left join private.whatsapp_sender_pause as p on true;
comment on view monitoring.whatsapp_sender_health is
'The outbound WhatsApp line in one row: state ok (a sender is live), stale (none is, one stopped '
'writing heartbeats without stopping cleanly) or absent (none runs); live, stale and stopped '
'senders; the newest heartbeat; due messages (pending and due, lease-expired claims included), '
'the oldest and its age; unattended when messages are due and no sender is live; paused when '
'the line is stopped (resume_whatsapp_queue).';
grant select on monitoring.whatsapp_sender_health to analyst;

create or replace function public.whatsapp_sender_health()
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
    select
        pg_catalog.to_jsonb(h.*)
        || pg_catalog.jsonb_build_object(
            'senders',
            coalesce(
                (
                    select
                        pg_catalog.jsonb_agg(
                            pg_catalog.to_jsonb(s.*)
                            order by s.last_heartbeat_at desc, s.worker_id asc
                        )
                    from monitoring.whatsapp_senders as s
                ),
                '[]'::jsonb
            )
        )
    from monitoring.whatsapp_sender_health as h
$$;
comment on function public.whatsapp_sender_health() is
'monitoring.whatsapp_sender_health as one JSON object, with its senders (the rows of '
'monitoring.whatsapp_senders) under "senders": what the edge''s /ready and python -m app status '
'report. service_role only.';
revoke all on function public.whatsapp_sender_health() from public, anon, authenticated;
grant execute on function public.whatsapp_sender_health() to service_role;

create or replace function private.purge_whatsapp_senders(p_keep interval default '7 days')
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_purged integer;
begin
    delete from private.whatsapp_senders as s
    where s.last_heartbeat_at < pg_catalog.now() - p_keep;
    get diagnostics v_purged = row_count;
    return v_purged;
end;
$$;
comment on function private.purge_whatsapp_senders(interval) is
'Deletes the rows of senders that have not written a heartbeat for p_keep (default 7 days): '
'stopped ones and those that died; returns how many.';

select private.schedule_cron(
    'purge-whatsapp-senders', '53 4 * * *', 'select private.purge_whatsapp_senders()'
);
