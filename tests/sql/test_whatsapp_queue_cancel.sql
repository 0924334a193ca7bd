-- cancel_whatsapp_message (supabase/functions-sql/*_whatsapp_queue.sql, migration
-- 20261207110000_whatsapp_queue_cancel.sql): an operator calls back a queued message before it
-- is sent. Waiting, scheduled and retrying messages are cancelled (final, never redriven, out of
-- their recipient's lane); a message in flight or finished is PT409 naming its status. Runs as
-- postgres on a fresh clone in one transaction: now() is constant, so a lease is made to run
-- out by moving visible_at into the past by hand.
begin;
select plan(36);

create temp table seen (note text primary key, n bigint, result jsonb);
grant select, insert on pg_temp.seen to anon, authenticated, service_role;
create function pg_temp.seen(p_note text)
returns bigint
language sql
as $$ select n from pg_temp.seen where note = p_note $$;
create function pg_temp.returned(p_note text)
returns jsonb
language sql
as $$ select result from pg_temp.seen where note = p_note $$;

-- A template to p_phone (templates need no open window), due at p_due.
create function pg_temp.enqueue(p_phone text, p_due timestamptz default null)
returns bigint
language sql
as $$
    select public.enqueue_whatsapp_message(
        p_phone, 'template', '{"name": "ride_update", "language": {"code": "en"}}', 5, null, p_due
    )
$$;

create function pg_temp.status(p_note text)
returns text
language sql
as $$ select status from public.whatsapp_message_queue where id = pg_temp.seen(p_note) $$;

-- Recipients: 01 has three messages in its lane (waiting, the next, a scheduled one); 02 a
-- message in flight, then one sent, failed, dead and unconfirmed; 03 one that is retrying.
insert into pg_temp.seen (note, n) values
('in flight', pg_temp.enqueue('+250788100002')),
('retrying', pg_temp.enqueue('+250788100003'));
do $$
begin
    perform public.claim_whatsapp_messages(10, 60, 'w1');
    perform public.record_whatsapp_sends(
        jsonb_build_array(jsonb_build_object(
            'id', pg_temp.seen('retrying'), 'outcome', 'retry', 'error_code', '131000',
            'error', 'Something went wrong', 'retry_in_s', 600
        )),
        'w1'
    );
end;
$$;
insert into pg_temp.seen (note, n) values
('waiting', pg_temp.enqueue('+250788100001')),
('behind', pg_temp.enqueue('+250788100001')),
('scheduled', pg_temp.enqueue('+250788100001', now() + interval '2 hours'));
insert into pg_temp.seen (note, n)
select s.note, pg_temp.enqueue('+250788100002')
from unnest(array['sent', 'failed', 'dead', 'unconfirmed']) as s (note);
update public.whatsapp_message_queue as q
set status = s.status, finished_at = now(), claimed_at = now(), claimed_by = 'w0'
from (values ('sent'), ('failed'), ('dead'), ('unconfirmed')) as s (status)
where q.id = pg_temp.seen(s.status);

select results_eq(
    $$select pg_temp.status(n) from unnest(array['waiting', 'behind', 'scheduled', 'in flight',
        'retrying']) as n$$,
    $$values ('pending'), ('pending'), ('pending'), ('pending'), ('pending')$$,
    'the messages to cancel are pending: waiting, behind it, scheduled, in flight and retrying'
);

-- The happy path --------------------------------------------------------------------------------

select lives_ok(
    $$select tests.as_caller(
        'service_role', '{"role": "service_role", "sub": "ops-desk"}',
        format('insert into pg_temp.seen (note, result) select ''cancel waiting'', '
               'public.cancel_whatsapp_message(%s, ''customer asked us not to'')',
               pg_temp.seen('waiting'))
    )$$,
    'service_role cancels a waiting message'
);
select is(
    pg_temp.returned('cancel waiting'),
    jsonb_build_object(
        'id', pg_temp.seen('waiting'),
        'status', 'cancelled',
        'cancelled_at', now(),
        'cancelled_reason', 'customer asked us not to',
        'already_cancelled', false
    ),
    'cancel_whatsapp_message answers the message cancelled, when and why'
);
select results_eq(
    $$select status, cancelled_reason, finished_at, claimed_at, attempts
        from public.whatsapp_message_queue where id = pg_temp.seen('waiting')$$,
    $$values ('cancelled', 'customer asked us not to', now(), null::timestamptz, 0)$$,
    'the message is cancelled with its reason, finished now, never delivered'
);
select results_eq(
    $$select event_type, payload from public.outbox_events
       where aggregate_type = 'whatsapp_message_queue'
         and aggregate_id = pg_temp.seen('waiting')::text$$,
    $$values ('whatsapp.send_cancelled', jsonb_build_object(
        'queue_id', pg_temp.seen('waiting'), 'recipient_phone', '+250788100001',
        'message_type', 'template', 'attempts', 0, 'reason', 'customer asked us not to'))$$,
    'downstream learns the message will not arrive: whatsapp.send_cancelled'
);
select results_eq(
    $$select actor_type::text, actor_identifier, resource_type::text, resource_id, metadata::jsonb
        from public.system_audit_logs where action = 'whatsapp_message.cancelled'$$,
    $$values ('service', 'ops-desk', 'whatsapp_message_queue', pg_temp.seen('waiting')::text,
              '{"reason": "customer asked us not to", "attempts": 0}'::jsonb)$$,
    'the cancel is audited: who, which message, why'
);
select results_eq(
    $$select id from public.claim_whatsapp_messages(10, 60, 'w2')$$,
    $$values (pg_temp.seen('behind'))$$,
    'the cancelled message leaves its recipient''s lane: the one behind it is claimed next'
);

-- Repeating it is a no-op.
insert into pg_temp.seen (note, result) values (
    'cancel waiting again',
    public.cancel_whatsapp_message(pg_temp.seen('waiting'), 'another reason')
);
select is(
    pg_temp.returned('cancel waiting again'),
    pg_temp.returned('cancel waiting') || '{"already_cancelled": true}',
    'cancelling it again answers the first cancel, already_cancelled'
);
select results_eq(
    $$select (select cancelled_reason from public.whatsapp_message_queue
               where id = pg_temp.seen('waiting')),
             (select count(*) from public.outbox_events
               where event_type = 'whatsapp.send_cancelled'),
             (select count(*) from public.system_audit_logs
               where action = 'whatsapp_message.cancelled')$$,
    $$values ('customer asked us not to', 1::bigint, 1::bigint)$$,
    'and changes nothing: the first reason stays, no second event, no second audit record'
);

-- Scheduled and retrying messages.
select is(
    public.cancel_whatsapp_message(pg_temp.seen('scheduled'), 'trip cancelled') ->> 'status',
    'cancelled',
    'a scheduled message is cancelled'
);
select is(
    public.cancel_whatsapp_message(pg_temp.seen('retrying'), 'no longer relevant') ->> 'status',
    'cancelled',
    'a retrying message (back off after a failed delivery) is cancelled'
);
select results_eq(
    $$select status, attempts, cancelled_reason from public.whatsapp_message_queue
       where id = pg_temp.seen('retrying')$$,
    $$values ('cancelled', 1, 'no longer relevant')$$,
    'it keeps the deliveries it had'
);
update public.whatsapp_message_queue set visible_at = now() - interval '1 second'
where id in (pg_temp.seen('scheduled'), pg_temp.seen('retrying'));
select is_empty(
    $$select id from public.claim_whatsapp_messages(10, 60, 'w3')
       where id in (pg_temp.seen('scheduled'), pg_temp.seen('retrying'))$$,
    'cancelled messages are never claimed, even once due'
);
select is(
    public.redrive_whatsapp_messages('dead', array[pg_temp.seen('scheduled')]), 0,
    'redrive leaves a cancelled message alone'
);
select throws_ok(
    $$select public.redrive_whatsapp_messages('cancelled')$$,
    '22023',
    'redrive_whatsapp_messages: p_status must be dead, failed or unconfirmed',
    'cancelled is no status redrive takes'
);

-- A lease that ran out: nobody holds it, so it can be cancelled.
update public.whatsapp_message_queue set visible_at = now() - interval '1 second'
where id = pg_temp.seen('behind');
select is(
    public.cancel_whatsapp_message(pg_temp.seen('behind'), 'sender died') ->> 'status',
    'cancelled',
    'a message whose lease ran out is cancelled'
);
select is(
    public.record_whatsapp_sends(
        jsonb_build_array(jsonb_build_object(
            'id', pg_temp.seen('behind'), 'outcome', 'sent', 'provider', 'meta',
            'provider_message_id', 'wamid.late'
        )),
        'w2'
    ) ->> 'ignored',
    '1',
    'the late result of the worker that lost it is ignored'
);

-- Refusals ----------------------------------------------------------------------------------------

select throws_ok(
    format('select public.cancel_whatsapp_message(%s, %L)', pg_temp.seen('in flight'), 'stop'),
    'PT409',
    format(
        'cancel_whatsapp_message: message %s is in flight (claimed by w1 until %s): it cannot be '
        || 'called back',
        pg_temp.seen('in flight'), now() + interval '60 seconds'
    ),
    'a message in flight cannot be called back: PT409 naming the sender and its lease'
);
select throws_ok(
    format('select public.cancel_whatsapp_message(%s, %L)', pg_temp.seen(s.status), 'stop'),
    'PT409',
    format(
        'cancel_whatsapp_message: message %s is %s: only a message not yet sent can be cancelled',
        pg_temp.seen(s.status), s.status
    ),
    format('a %s message is PT409 naming its status', s.status)
)
from (values ('sent'), ('failed'), ('dead'), ('unconfirmed')) as s (status);
select throws_ok(
    'select public.cancel_whatsapp_message(999999999, ''stop'')',
    'PT404',
    'cancel_whatsapp_message: no message 999999999',
    'an unknown id is PT404'
);
select throws_ok(
    'select public.cancel_whatsapp_message(null, ''stop'')',
    '22023',
    'cancel_whatsapp_message: p_id must be a message id',
    'a null id is 22023'
);
select throws_ok(
    format('select public.cancel_whatsapp_message(%s, %L)', pg_temp.seen('in flight'), r.reason),
    '22023',
    'cancel_whatsapp_message: p_reason must be 1 to 500 characters',
    'a reason ' || r.what || ' is 22023'
)
from (values (null, 'null'), ('', 'empty'), (repeat('x', 501), 'of 501 characters'))
    as r (reason, what);
select results_eq(
    $$select status, cancelled_reason from public.whatsapp_message_queue
       where id in (pg_temp.seen('in flight'), pg_temp.seen('sent'), pg_temp.seen('failed'),
                    pg_temp.seen('dead'), pg_temp.seen('unconfirmed'))
       order by id$$,
    $$values ('pending', null::text), ('sent', null), ('failed', null), ('dead', null),
             ('unconfirmed', null)$$,
    'the refused cancels changed nothing'
);

-- Who may call ------------------------------------------------------------------------------------

insert into pg_temp.seen (note, n) values ('for roles', pg_temp.enqueue('+250788100004'));
insert into public.users (id, phone_number) values
('a0000000-0000-4000-8000-000000000004', '+250788100004');
select throws_ok(
    format(
        'select tests.as_role(''anon'', %L)',
        format('select public.cancel_whatsapp_message(%s, ''x'')', pg_temp.seen('for roles'))
    ),
    '42501', 'permission denied for function cancel_whatsapp_message',
    'anon may not cancel'
);
select throws_ok(
    format(
        'select tests.as_caller(''authenticated'', %L, %L)',
        '{"sub": "a0000000-0000-4000-8000-000000000004", "role": "authenticated"}',
        format('select public.cancel_whatsapp_message(%s, ''x'')', pg_temp.seen('for roles'))
    ),
    '42501', 'permission denied for function cancel_whatsapp_message',
    'the recipient, signed in, may not cancel a message to them'
);
select throws_ok(
    format(
        'select tests.as_caller(''authenticated'', %L, %L)',
        '{"sub": "a0000000-0000-4000-8000-000000000005", "role": "authenticated"}',
        format('select public.cancel_whatsapp_message(%s, ''x'')', pg_temp.seen('for roles'))
    ),
    '42501', 'permission denied for function cancel_whatsapp_message',
    'another signed-in user may not cancel it'
);
select is(
    pg_temp.status('for roles'), 'pending',
    'the refused callers changed nothing'
);
select is_empty(
    $$select p.oid::regprocedure::text from pg_catalog.pg_proc as p
       where p.oid = 'public.cancel_whatsapp_message(bigint, text)'::regprocedure
         and (coalesce(obj_description(p.oid, 'pg_proc'), '') = ''
              or has_function_privilege('anon', p.oid, 'execute')
              or has_function_privilege('authenticated', p.oid, 'execute')
              or not has_function_privilege('service_role', p.oid, 'execute')
              or p.proconfig is distinct from array['search_path=""'])$$,
    'cancel_whatsapp_message has a comment, is service_role only, with search_path pinned'
);

-- Monitoring and retention ------------------------------------------------------------------------

select results_eq(
    $$select messages from monitoring.whatsapp_queue_stats where status = 'cancelled'$$,
    $$values (4::bigint)$$,
    'monitoring.whatsapp_queue_stats counts the cancelled messages'
);
update public.whatsapp_message_queue set finished_at = now() - interval '8 days'
where id = pg_temp.seen('waiting');
select is(
    private.purge_whatsapp_message_queue(), 1,
    'a cancelled message is purged 7 days after it was cancelled'
);
select is(
    (select count(*) from public.whatsapp_message_queue where status = 'cancelled'), 3::bigint,
    'the more recent cancelled messages stay'
);

select * from finish();
rollback;
