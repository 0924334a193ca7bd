-- The sender's heartbeats: each claim-send-record loop of `python -m app worker` says every few
-- seconds that it is alive, so on-call can tell a queue that is draining from one nobody is
-- draining. Functions (the heartbeat RPC, the health RPC, the purge job) and the monitoring
-- views are in supabase/functions-sql/65_whatsapp_senders.sql.

create table private.whatsapp_senders (
    -- host:pid:token:loop, as it signs its claims (whatsapp_message_queue.claimed_by).
    worker_id text primary key,
    host text not null, -- noqa: RF04
    pid integer not null,
    provider text not null, -- noqa: RF04
    -- Every time is the database's clock, never the worker's.
    started_at timestamptz not null default now(),
    last_heartbeat_at timestamptz not null default now(),
    last_claim_at timestamptz,
    last_sent_at timestamptz,
    messages_claimed bigint not null default 0,
    messages_sent bigint not null default 0,
    -- The worker's own promise: it writes again within this many seconds while it runs.
    stale_after_s integer not null,
    stopped_at timestamptz,
    constraint whatsapp_senders_worker_id_length check (char_length(worker_id) between 1 and 200),
    constraint whatsapp_senders_host_length check (char_length(host) between 1 and 255),
    constraint whatsapp_senders_provider_length check (char_length(provider) between 1 and 50),
    constraint whatsapp_senders_pid_positive check (pid > 0),
    constraint whatsapp_senders_stale_after_range check (stale_after_s between 2 and 3600),
    constraint whatsapp_senders_counts_positive check (
        messages_claimed >= 0 and messages_sent >= 0
    )
);
comment on table private.whatsapp_senders is
'One row per sender loop (worker id): where it runs, when it last wrote a heartbeat, claimed and '
'sent, how many it claimed and sent, and when it stopped cleanly. A loop that has not written '
'within its stale_after_s is stale. Written by whatsapp_sender_heartbeat only; rows idle for 7 '
'days are purged.';
comment on column private.whatsapp_senders.stale_after_s is
'How long without a heartbeat before the loop counts as stale: the worker sets it from its '
'heartbeat interval and HTTP timeout (a batch in the air delays the next heartbeat).';
comment on column private.whatsapp_senders.messages_claimed is
'Messages claimed since the loop started, as reported with its heartbeats (a heartbeat whose '
'answer was lost is reported again, so it can count a few twice).';
alter table private.whatsapp_senders enable row level security;
revoke all on private.whatsapp_senders from public, anon, authenticated, service_role;
