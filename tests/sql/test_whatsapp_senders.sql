-- The sender's liveness (migration 20261207100000_whatsapp_sender_heartbeats.sql, functions in
-- supabase/functions-sql/*_whatsapp_senders.sql): the heartbeat RPC, the monitoring views that
-- say which senders are live and whether due messages wait with none, the health RPC, the purge
-- job, who may call what; and that the sender may record a batch's results twice (it holds them
-- across a lost connection and records them again: the repeat must change nothing). Runs as
-- postgres on a fresh clone in one transaction: now() is constant, so a sender is aged by moving
-- its heartbeat into the past by hand.
begin;
select plan(62);

create temp table seen (note text primary key, n bigint);
create function pg_temp.seen(p_note text)
returns bigint
language sql
as $$ select n from pg_temp.seen where note = p_note $$;

create procedure pg_temp.heartbeat(
    p_worker_id text,
    p_claimed integer default 0,
    p_sent integer default 0,
    p_stopped boolean default false
)
language sql
as $$
    select public.whatsapp_sender_heartbeat(
        p_worker_id, 'sender-host', 4242, 'meta', 40, p_claimed, p_sent, p_stopped
    )
$$;

create function pg_temp.health()
returns table (
    state text, live bigint, stale bigint, stopped bigint, due bigint, unattended boolean
)
language sql
as $$
    select state, live_senders, stale_senders, stopped_senders, due_messages, unattended
    from monitoring.whatsapp_sender_health
$$;

create procedure pg_temp.age(p_worker_id text, p_seconds integer)
language sql
as $$
    update private.whatsapp_senders
    set last_heartbeat_at = now() - make_interval(secs => p_seconds)
    where worker_id = p_worker_id
$$;

select has_table('private', 'whatsapp_senders', 'private.whatsapp_senders exists');
select has_view('monitoring', 'whatsapp_senders', 'monitoring.whatsapp_senders exists');
select has_view(
    'monitoring', 'whatsapp_sender_health', 'monitoring.whatsapp_sender_health exists'
);

-- No sender has ever run ---------------------------------------------------------------------

select results_eq(
    'select * from pg_temp.health()',
    $$values ('absent'::text, 0::bigint, 0::bigint, 0::bigint, 0::bigint, false)$$,
    'no sender and nothing due: absent, and nothing is unattended'
);
insert into pg_temp.seen (note, n) values (
    'due',
    public.enqueue_whatsapp_message(
        '+250788000001', 'template', '{"name": "welcome", "language": {"code": "en"}}'
    )
);
select results_eq(
    'select * from pg_temp.health()',
    $$values ('absent'::text, 0::bigint, 0::bigint, 0::bigint, 1::bigint, true)$$,
    'a message due and no sender: unattended'
);

-- The heartbeat --------------------------------------------------------------------------------

select lives_ok(
    $$select tests.as_role(
        'service_role',
        'select public.whatsapp_sender_heartbeat(''host-a:17:ab12cd:0'', ''host-a'', 17, '
        || '''meta'', 40)'
    )$$,
    'service_role writes a heartbeat'
);
select results_eq(
    $$select host, pid, provider, state, started_at = now(), last_heartbeat_at = now(),
             heartbeat_age_s, stale_after_s, last_claim_at, last_sent_at, messages_claimed,
             messages_sent, stopped_at
        from monitoring.whatsapp_senders where worker_id = 'host-a:17:ab12cd:0'$$,
    $$values ('host-a'::text, 17, 'meta'::text, 'live'::text, true, true, 0::numeric, 40,
              null::timestamptz, null::timestamptz, 0::bigint, 0::bigint, null::timestamptz)$$,
    'the first heartbeat registers the sender, live, having claimed and sent nothing yet'
);
select results_eq(
    'select * from pg_temp.health()',
    $$values ('ok'::text, 1::bigint, 0::bigint, 0::bigint, 1::bigint, false)$$,
    'a live sender: ok, and the due message is not unattended'
);

call pg_temp.age('host-a:17:ab12cd:0', 10);
call pg_temp.heartbeat('host-a:17:ab12cd:0', 50, 48);
select results_eq(
    $$select host, pid, state, started_at = now(), last_heartbeat_at = now(),
             last_claim_at = now(), last_sent_at = now(), messages_claimed, messages_sent
        from monitoring.whatsapp_senders where worker_id = 'host-a:17:ab12cd:0'$$,
    $$values ('sender-host'::text, 4242, 'live'::text, true, true, true, true, 50::bigint,
              48::bigint)$$,
    'a later heartbeat moves last_heartbeat_at, and reports what was claimed and sent since'
);
update private.whatsapp_senders
set last_claim_at = now() - interval '1 minute', last_sent_at = now() - interval '2 minutes'
where worker_id = 'host-a:17:ab12cd:0';
call pg_temp.heartbeat('host-a:17:ab12cd:0', 0, 0);
call pg_temp.heartbeat('host-a:17:ab12cd:0', 2, 0);
select results_eq(
    $$select now() - last_claim_at, now() - last_sent_at, messages_claimed, messages_sent
        from private.whatsapp_senders where worker_id = 'host-a:17:ab12cd:0'$$,
    $$values (interval '0', interval '2 minutes', 52::bigint, 48::bigint)$$,
    'last_claim_at and last_sent_at move only when something was claimed or sent; the counts add'
);

-- Live, stale, stopped --------------------------------------------------------------------------

call pg_temp.age('host-a:17:ab12cd:0', 41);
select is(
    (select state from monitoring.whatsapp_senders where worker_id = 'host-a:17:ab12cd:0'),
    'stale',
    'no heartbeat for longer than its stale_after_s: stale'
);
select results_eq(
    'select * from pg_temp.health()',
    $$values ('stale'::text, 0::bigint, 1::bigint, 0::bigint, 1::bigint, true)$$,
    'only a stale sender: stale, and the due message is unattended'
);
call pg_temp.age('host-a:17:ab12cd:0', 40);
select is(
    (select state from monitoring.whatsapp_senders where worker_id = 'host-a:17:ab12cd:0'),
    'live',
    'a heartbeat exactly stale_after_s old is still live'
);

call pg_temp.heartbeat('host-b:18:ef34ab:0', 0, 0, true);
call pg_temp.age('host-a:17:ab12cd:0', 3600);
select results_eq(
    $$select worker_id, state, stopped_at = now()
        from monitoring.whatsapp_senders order by worker_id$$,
    $$values ('host-a:17:ab12cd:0'::text, 'stale'::text, null::boolean),
             ('host-b:18:ef34ab:0', 'stopped', true)$$,
    'a sender that stopped cleanly is stopped, not stale'
);
select results_eq(
    'select * from pg_temp.health()',
    $$values ('stale'::text, 0::bigint, 1::bigint, 1::bigint, 1::bigint, true)$$,
    'one stale and one stopped: stale'
);
call pg_temp.heartbeat('host-b:18:ef34ab:0');
select is(
    (select state || ' ' || (stopped_at is null) from monitoring.whatsapp_senders
      where worker_id = 'host-b:18:ef34ab:0'),
    'live true',
    'a heartbeat after a stop makes the sender live again'
);
select results_eq(
    'select * from pg_temp.health()',
    $$values ('ok'::text, 1::bigint, 1::bigint, 0::bigint, 1::bigint, false)$$,
    'one live sender is enough: ok, whatever the others'
);
delete from private.whatsapp_senders where worker_id = 'host-a:17:ab12cd:0';
call pg_temp.heartbeat('host-b:18:ef34ab:0', 0, 0, true);
select results_eq(
    'select * from pg_temp.health()',
    $$values ('absent'::text, 0::bigint, 0::bigint, 1::bigint, 1::bigint, true)$$,
    'every sender stopped cleanly: absent, and the due message is unattended'
);

-- Due messages ----------------------------------------------------------------------------------

insert into pg_temp.seen (note, n) values (
    'scheduled',
    public.enqueue_whatsapp_message(
        '+250788000002', 'template', '{"name": "welcome", "language": {"code": "en"}}', 5, null,
        now() + interval '1 hour'
    )
);
update public.whatsapp_message_queue set visible_at = now() - interval '90 seconds'
where id = pg_temp.seen('due');
select results_eq(
    $$select due_messages, oldest_due_at = now() - interval '90 seconds', oldest_due_age_s
        from monitoring.whatsapp_sender_health$$,
    $$values (1::bigint, true, 90.0::numeric)$$,
    'a message scheduled later is not due; the oldest due one and its age in seconds'
);
update public.whatsapp_message_queue set visible_at = '-infinity' where id = pg_temp.seen('due');
select results_eq(
    $$select due_messages, oldest_due_at, oldest_due_age_s from monitoring.whatsapp_sender_health$$,
    $$values (1::bigint, '-infinity'::timestamptz, null::numeric)$$,
    'an infinite visible_at does not break the view: its age is unknown'
);
update public.whatsapp_message_queue set visible_at = now() where id = pg_temp.seen('due');
insert into private.whatsapp_sender_pause (reason) values ('meta 190: token expired');
select is(
    (select paused from monitoring.whatsapp_sender_health), true,
    'the health row says when the line is paused'
);
delete from private.whatsapp_sender_pause;

-- The health RPC --------------------------------------------------------------------------------

call pg_temp.age('host-b:18:ef34ab:0', 5);
call pg_temp.heartbeat('host-c:19:aa00bb:1', 3, 3);
select results_eq(
    $$select h ->> 'state', (h ->> 'live_senders')::int, (h ->> 'due_messages')::int,
             (h ->> 'unattended')::boolean, (h ->> 'paused')::boolean,
             jsonb_array_length(h -> 'senders'),
             h -> 'senders' -> 0 ->> 'worker_id', h -> 'senders' -> 0 ->> 'state',
             (h -> 'senders' -> 0 ->> 'messages_sent')::int
        from public.whatsapp_sender_health() as h$$,
    $$values ('ok'::text, 1, 1, false, false, 2, 'host-c:19:aa00bb:1'::text, 'live'::text, 3)$$,
    'whatsapp_sender_health: the health row with its senders, the latest heartbeat first'
);
select is(
    (select array_agg(k order by k) from jsonb_object_keys(public.whatsapp_sender_health()) as k),
    array[
        'due_messages', 'last_heartbeat_at', 'live_senders', 'oldest_due_age_s', 'oldest_due_at',
        'paused', 'senders', 'stale_senders', 'state', 'stopped_senders', 'unattended'
    ],
    'whatsapp_sender_health has the view''s columns and the senders'
);

-- Bad input: 22023 naming the argument, and nothing written ------------------------------------

create temp table before_bad as select * from private.whatsapp_senders;

create function pg_temp.heartbeat_sql(
    p_worker_id text default 'w',
    p_host text default 'h',
    p_pid integer default 1,
    p_provider text default 'meta',
    p_stale_after_s integer default 40,
    p_claimed integer default 0,
    p_sent integer default 0,
    p_stopped boolean default false
)
returns text
language sql
as $$
    select format(
        'select public.whatsapp_sender_heartbeat(%L, %L, %L, %L, %L, %L, %L, %L)',
        p_worker_id, p_host, p_pid, p_provider, p_stale_after_s, p_claimed, p_sent, p_stopped
    )
$$;

select throws_ok(
    pg_temp.heartbeat_sql(p_worker_id => repeat('w', 201)),
    '22023', 'whatsapp_sender_heartbeat: p_worker_id must be 1 to 200 characters',
    'a worker id of 201 characters is refused'
);
select throws_ok(
    pg_temp.heartbeat_sql(p_worker_id => ''),
    '22023', 'whatsapp_sender_heartbeat: p_worker_id must be 1 to 200 characters',
    'an empty worker id is refused'
);
select throws_ok(
    pg_temp.heartbeat_sql(p_worker_id => null),
    '22023', 'whatsapp_sender_heartbeat: p_worker_id must be 1 to 200 characters',
    'a null worker id is refused'
);
select lives_ok(
    pg_temp.heartbeat_sql(p_worker_id => repeat('w', 200), p_host => repeat('h', 255)),
    'a worker id of 200 characters and a host of 255 are taken'
);
delete from private.whatsapp_senders where worker_id = repeat('w', 200);
select throws_ok(
    pg_temp.heartbeat_sql(p_host => repeat('h', 256)),
    '22023', 'whatsapp_sender_heartbeat: p_host must be 1 to 255 characters',
    'a host of 256 characters is refused'
);
select throws_ok(
    pg_temp.heartbeat_sql(p_host => null),
    '22023', 'whatsapp_sender_heartbeat: p_host must be 1 to 255 characters',
    'a null host is refused'
);
select throws_ok(
    pg_temp.heartbeat_sql(p_pid => 0),
    '22023', 'whatsapp_sender_heartbeat: p_pid must be 1 to 2147483647 (got 0)',
    'pid 0 is refused'
);
select throws_ok(
    pg_temp.heartbeat_sql(p_pid => null),
    '22023', 'whatsapp_sender_heartbeat: p_pid must be 1 to 2147483647 (got null)',
    'a null pid is refused'
);
select throws_ok(
    pg_temp.heartbeat_sql(p_provider => repeat('p', 51)),
    '22023', 'whatsapp_sender_heartbeat: p_provider must be 1 to 50 characters',
    'a provider of 51 characters is refused'
);
select throws_ok(
    pg_temp.heartbeat_sql(p_provider => ''),
    '22023', 'whatsapp_sender_heartbeat: p_provider must be 1 to 50 characters',
    'an empty provider is refused'
);
select throws_ok(
    pg_temp.heartbeat_sql(p_stale_after_s => 1),
    '22023', 'whatsapp_sender_heartbeat: p_stale_after_s must be 2 to 3600 (got 1)',
    'a stale_after_s of 1 is refused'
);
select throws_ok(
    pg_temp.heartbeat_sql(p_stale_after_s => 3601),
    '22023', 'whatsapp_sender_heartbeat: p_stale_after_s must be 2 to 3600 (got 3601)',
    'a stale_after_s over an hour is refused'
);
select throws_ok(
    pg_temp.heartbeat_sql(p_claimed => -1),
    '22023', 'whatsapp_sender_heartbeat: p_claimed must be 0 to 1000000 (got -1)',
    'a negative claimed count is refused'
);
select throws_ok(
    pg_temp.heartbeat_sql(p_claimed => null),
    '22023', 'whatsapp_sender_heartbeat: p_claimed must be 0 to 1000000 (got null)',
    'a null claimed count is refused'
);
select throws_ok(
    pg_temp.heartbeat_sql(p_sent => 1000001),
    '22023', 'whatsapp_sender_heartbeat: p_sent must be 0 to 1000000 (got 1000001)',
    'a sent count over a million is refused'
);
select throws_ok(
    pg_temp.heartbeat_sql(p_stopped => null),
    '22023', 'whatsapp_sender_heartbeat: p_stopped must be true or false',
    'a null p_stopped is refused'
);
select results_eq(
    'select * from private.whatsapp_senders order by worker_id',
    'select * from pg_temp.before_bad order by worker_id',
    'the refused heartbeats changed nothing'
);

-- Who may call and read what --------------------------------------------------------------------

create function pg_temp.rpc_calls()
returns table (name text, call text)
language sql
as $$
    values
    ('whatsapp_sender_heartbeat', pg_temp.heartbeat_sql()),
    ('whatsapp_sender_health', 'select public.whatsapp_sender_health()')
$$;

select throws_ok(
    format('select tests.as_role(%L, %L)', 'anon', c.call),
    '42501', 'permission denied for function ' || c.name,
    'anon may not call ' || c.name
)
from pg_temp.rpc_calls() as c;
select throws_ok(
    format(
        'select tests.as_caller(%L, %L, %L)',
        'authenticated',
        '{"sub": "a0000000-0000-4000-8000-000000000001", "role": "authenticated"}',
        c.call
    ),
    '42501', 'permission denied for function ' || c.name,
    'an authenticated user may not call ' || c.name
)
from pg_temp.rpc_calls() as c;
select lives_ok(
    format('select tests.as_role(%L, %L)', 'service_role', c.call),
    'service_role calls ' || c.name
)
from pg_temp.rpc_calls() as c;
select throws_ok(
    $$select tests.as_role('service_role', 'select * from private.whatsapp_senders')$$,
    '42501', 'permission denied for schema private',
    'service_role reads senders only through whatsapp_sender_health'
);
select throws_ok(
    $$select tests.as_role('anon', 'select * from monitoring.whatsapp_sender_health')$$,
    '42501', 'permission denied for schema monitoring',
    'anon may not read the monitoring views'
);
select throws_ok(
    $$select tests.as_role('authenticated', 'select * from monitoring.whatsapp_senders')$$,
    '42501', 'permission denied for schema monitoring',
    'authenticated may not read the monitoring views'
);
select lives_ok(
    $$select tests.as_role('analyst', 'select * from monitoring.whatsapp_senders')$$,
    'analyst reads monitoring.whatsapp_senders'
);
select lives_ok(
    $$select tests.as_role('analyst', 'select * from monitoring.whatsapp_sender_health')$$,
    'analyst reads monitoring.whatsapp_sender_health'
);
select throws_ok(
    $$select tests.as_role('analyst', 'select public.whatsapp_sender_health()')$$,
    '42501', 'permission denied for function whatsapp_sender_health',
    'analyst reads the views, not the RPC'
);
select is_empty(
    $$select p.oid::regprocedure::text from pg_catalog.pg_proc as p
       where p.pronamespace = 'public'::regnamespace
         and p.proname in ('whatsapp_sender_heartbeat', 'whatsapp_sender_health')
         and (coalesce(obj_description(p.oid, 'pg_proc'), '') = ''
              or has_function_privilege('anon', p.oid, 'execute')
              or has_function_privilege('authenticated', p.oid, 'execute')
              or not has_function_privilege('service_role', p.oid, 'execute')
              or not p.prosecdef
              or p.proconfig is distinct from array['search_path=""'])$$,
    'both RPCs have a comment, are service_role only, security definer, search_path pinned'
);

-- Purge -----------------------------------------------------------------------------------------

delete from private.whatsapp_senders;
call pg_temp.heartbeat('old');
call pg_temp.heartbeat('recent');
call pg_temp.heartbeat('stopped long ago', 0, 0, true);
call pg_temp.age('old', 8 * 86400);
call pg_temp.age('recent', 6 * 86400);
call pg_temp.age('stopped long ago', 7 * 86400 + 1);
select is(private.purge_whatsapp_senders(), 2, 'the purge deletes the senders idle for 7 days');
select results_eq(
    'select worker_id from private.whatsapp_senders',
    $$values ('recent'::text)$$,
    'and keeps the others'
);
select results_eq(
    $$select schedule, command from cron.job where jobname = 'purge-whatsapp-senders'$$,
    $$values ('53 4 * * *'::text, 'select private.purge_whatsapp_senders()'::text)$$,
    'pg_cron purges the senders daily'
);
select is(
    obj_description('private.purge_whatsapp_senders(interval)'::regprocedure, 'pg_proc') <> ''
    and (select proconfig from pg_proc where oid = 'private.purge_whatsapp_senders(interval)'::regprocedure)
    = array['search_path=""'],
    true,
    'the purge has a comment and a pinned search_path'
);

-- Results recorded twice (held across a lost connection) change nothing the second time ---------

delete from public.whatsapp_message_queue;
insert into pg_temp.seen (note, n)
select 'r' || n,
    public.enqueue_whatsapp_message(
        '+25078800010' || n, 'template', '{"name": "welcome", "language": {"code": "en"}}'
    )
from generate_series(1, 4) as n;
insert into pg_temp.seen (note, n)
select 'w1 claimed', count(*) from public.claim_whatsapp_messages(10, 60, 'w1');
create temp table results as select jsonb_build_array(
    jsonb_build_object(
        'id', pg_temp.seen('r1'), 'outcome', 'sent', 'provider', 'meta',
        'provider_message_id', 'wamid.HELD1'
    ),
    jsonb_build_object(
        'id', pg_temp.seen('r2'), 'outcome', 'retry', 'retry_in_s', 0, 'error_code', '131000'
    ),
    jsonb_build_object('id', pg_temp.seen('r3'), 'outcome', 'failed', 'error_code', '131026'),
    jsonb_build_object('id', pg_temp.seen('r4'), 'outcome', 'released')
) as r;
select is(
    public.record_whatsapp_sends((select r from pg_temp.results), 'w1') ->> 'ignored', '0',
    'the first record applies every result'
);
create temp table after_first as
select id, status, attempts, visible_at, claimed_at, claimed_by, provider_message_id,
    last_error_code, finished_at
from public.whatsapp_message_queue;
create temp table counts_after_first as
select
    (select count(*) from public.message_tracking where direction = 'OUTBOUND') as tracked,
    (select count(*) from public.outbox_events where event_type like 'whatsapp.send_%') as events;
-- The retried message comes due again at once, and another worker claims it.
insert into pg_temp.seen (note, n)
select 'w2 claimed ' || q.id, q.id from public.claim_whatsapp_messages(10, 60, 'w2') as q;
select is(
    (select count(*) from pg_temp.seen where note like 'w2 claimed %'), 2::bigint,
    'another worker claims the retried and the released message'
);
select is(
    public.record_whatsapp_sends((select r from pg_temp.results), 'w1'),
    jsonb_build_object(
        'sent', 0, 'retrying', 0, 'failed', 0, 'dead', 0, 'unconfirmed', 0, 'released', 0,
        'ignored', 4, 'tracked', 0, 'cancelled', 0
    ),
    'recording the same results again ignores every one'
);
select results_eq(
    $$select id, status, attempts, claimed_by, provider_message_id, last_error_code, finished_at
        from public.whatsapp_message_queue order by id$$,
    $$select id, status,
             attempts + case when id in (pg_temp.seen('r2'), pg_temp.seen('r4')) then 1 else 0 end,
             case when id in (pg_temp.seen('r2'), pg_temp.seen('r4')) then 'w2' else claimed_by end,
             provider_message_id, last_error_code, finished_at
        from pg_temp.after_first order by id$$,
    'the queue is as the first record (and w2''s claims) left it'
);
select results_eq(
    $$select (select count(*) from public.message_tracking where direction = 'OUTBOUND'),
             (select count(*) from public.outbox_events where event_type like 'whatsapp.send_%')$$,
    'select tracked, events from pg_temp.counts_after_first',
    'no second OUTBOUND row and no second send_failed event'
);

select * from finish();
rollback;
