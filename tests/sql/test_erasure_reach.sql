-- What erase_user (supabase/functions-sql/*_users.sql) reaches beyond the user's own rows: the
-- outbound queue (private.erase_whatsapp_recipient and the sender's record of a send in flight,
-- *_whatsapp_queue.sql), messages sent to the number before it was a user, and money: no new
-- transaction, completion, reversal or payment method for an erased user (PT410). Runs as
-- postgres on a fresh clone in one transaction.
begin;
select plan(38);

create temp table seen (note text primary key, n bigint, id uuid, result jsonb);
create function pg_temp.seen(p_note text)
returns bigint
language sql
as $$ select n from pg_temp.seen where note = p_note $$;
create function pg_temp.tx(p_note text)
returns uuid
language sql
as $$ select id from pg_temp.seen where note = p_note $$;

create function pg_temp.queued(p_note text)
returns public.whatsapp_message_queue
language sql
as $$ select q from public.whatsapp_message_queue as q where q.id = pg_temp.seen(p_note) $$;

-- E is erased, K is kept. Both wrote just now, so free-form messages may go to them.
insert into public.users (id, phone_number, display_name) values
('e0000000-0000-4000-8000-00000000000e', '+250788200001', 'Esther'),
('c0000000-0000-4000-8000-00000000000c', '+250788200002', 'Kamali');
insert into public.conversation_mappings (wa_id, user_id, last_inbound_at) values
('250788200001', 'e0000000-0000-4000-8000-00000000000e', now()),
('250788200002', 'c0000000-0000-4000-8000-00000000000c', now());

-- A welcome template sent to E's number before E was a user: no user, no conversation.
insert into public.message_tracking (
    wamid, direction, provider, message_type, status, body, content, metadata
) values (
    'wamid.before', 'OUTBOUND', 'meta', 'template', 'delivered', null,
    '{"name": "welcome", "language": {"code": "en"}}',
    '{"queue_id": 0, "recipient_phone": "+250788200001"}'
);

-- E's queue: waiting, scheduled and retrying (to be cancelled); three in flight (recorded sent,
-- recorded for a retry, and abandoned by a sender that died); sent, failed and dead (history).
insert into pg_temp.seen (note, n)
select
    m.note,
    public.enqueue_whatsapp_message(
        '+250788200001', 'text', jsonb_build_object('body', m.body), 5, null, m.due
    )
from (values
    ('waiting', 'Your driver is Ali, +250788999999', null::timestamptz),
    ('scheduled', 'Rate your ride', now() + interval '1 hour'),
    ('retrying', 'Your receipt', null),
    ('fly sent', 'Ride confirmed for 14:00', null),
    ('fly retry', 'Driver arriving', null),
    ('fly abandoned', 'Driver waiting', null),
    ('sent', 'Welcome back, Esther', null),
    ('failed', 'Esther, pay now', null),
    ('dead', 'Esther, your code', null)
) as m (note, body, due);
insert into pg_temp.seen (note, n) values (
    'kept', public.enqueue_whatsapp_message('+250788200002', 'text', '{"body": "Hello Kamali"}')
);
-- Set by hand: a recipient has one message in flight at a time, and these stand for what
-- earlier claims and outcomes left.
update public.whatsapp_message_queue as q
set
    attempts = 1,
    claimed_at = case when m.note like 'fly%' then now() end,
    claimed_by = case when m.note like 'fly%' then 'w1' end,
    visible_at = now() + interval '10 minutes',
    status = m.status,
    finished_at = case when m.status <> 'pending' then now() - interval '1 hour' end,
    last_error = case when m.status = 'failed'
        then 'Recipient +250788200001 is not a valid WhatsApp user' end
from (values
    ('retrying', 'pending'), ('fly sent', 'pending'), ('fly retry', 'pending'),
    ('fly abandoned', 'pending'), ('sent', 'sent'), ('failed', 'failed'), ('dead', 'dead')
) as m (note, status)
where q.id = pg_temp.seen(m.note);
insert into public.outbox_events (aggregate_type, aggregate_id, event_type, payload)
values (
    'whatsapp_message_queue', pg_temp.seen('failed')::text, 'whatsapp.send_failed',
    jsonb_build_object(
        'queue_id', pg_temp.seen('failed'), 'recipient_phone', '+250788200001',
        'message_type', 'text', 'attempts', 1, 'error_code', '131026',
        'error', 'Recipient +250788200001 is not a valid WhatsApp user'
    )
);

-- E's money: a completed credit, a pending credit made with a key, a pending transfer from K.
insert into pg_temp.seen (note, id)
select 'credit', (public.create_transaction(
    'e0000000-0000-4000-8000-00000000000e', 'credit', 100, 'RWF', 'credit-e-1'
)).id
union all
select 'pending credit', (public.create_transaction(
    'e0000000-0000-4000-8000-00000000000e', 'credit', 50, 'RWF', 'credit-e-2'
)).id;
insert into pg_temp.seen (note, id)
select 'k funding', (public.create_transaction(
    'c0000000-0000-4000-8000-00000000000c', 'credit', 500, 'RWF', 'credit-k-1'
)).id;
do $$
begin
    perform public.update_transaction_status(pg_temp.tx('credit'), 'processing');
    perform public.update_transaction_status(pg_temp.tx('credit'), 'completed');
    perform public.update_transaction_status(pg_temp.tx('k funding'), 'processing');
    perform public.update_transaction_status(pg_temp.tx('k funding'), 'completed');
end;
$$;
insert into pg_temp.seen (note, id)
select 'transfer to e', (public.create_transaction(
    'c0000000-0000-4000-8000-00000000000c', 'transfer', 200, 'RWF', 'transfer-k-e', '{}',
    'e0000000-0000-4000-8000-00000000000e'
)).id;

-- The erasure -------------------------------------------------------------------------------------

-- Webhook dead letters that name her: a message from her number, a body that is not JSON
-- holding it; and one from Kamali, which stays.
do $$
begin
    perform private.dead_letter_whatsapp(
        'meta', 'message', 'invalid_payload', 'test', '22023',
        '{"messages": [{"from": "250788200001", "text": {"body": "mine"}}]}', null, null,
        '250788200001', null
    );
    perform private.dead_letter_whatsapp(
        'twilio', 'payload', 'invalid_payload', 'test', null, null,
        convert_to('From=whatsapp%3A%2B250788200001&Body=%00', 'UTF8'), null, null, null
    );
    perform private.dead_letter_whatsapp(
        'meta', 'message', 'invalid_payload', 'test', '22023',
        '{"messages": [{"from": "250788200002"}]}', null, null, '250788200002', null
    );
    -- A longer number that holds hers is someone else's.
    perform private.dead_letter_whatsapp(
        'meta', 'payload', 'invalid_payload', 'test', null,
        '{"messages": [{"from": "2507882000019"}]}', null, null, null, null
    );
end;
$$;
insert into pg_temp.seen (note, result) values (
    'erase', public.erase_user('e0000000-0000-4000-8000-00000000000e')
);
select results_eq(
    $$select contact, raw #>> '{messages,0,from}' from private.whatsapp_dead_letters order by id$$,
    $$values ('250788200002'::text, '250788200002'::text), (null, '2507882000019')$$,
    'the dead letters naming her are deleted (by sender, and by number in a kept body); '
    'Kamali''s stays, and so does one whose longer number merely holds hers'
);
select is(
    pg_temp.seen.result - array['user_id', 'erased_at', 'already_erased', 'preferences_deleted',
        'sessions_deleted', 'conversations_anonymised', 'events_scrubbed', 'otp_codes_deleted',
        'payment_methods_deleted'],
    '{"messages_blanked": 1, "queued_messages_cancelled": 3, "queued_messages_blanked": 9,
      "queue_events_scrubbed": 1, "dead_letters_deleted": 2, "locations_deleted": 0}'::jsonb,
    'erase_user answers what it reached: the message sent before, 3 cancelled, 9 queued messages '
    || 'blanked, 1 queue event scrubbed'
)
from pg_temp.seen where note = 'erase';

select results_eq(
    $$select m.note, (pg_temp.queued(m.note)).status, (pg_temp.queued(m.note)).cancelled_reason,
             (pg_temp.queued(m.note)).finished_at = now()
        from unnest(array['waiting', 'scheduled', 'retrying']) as m (note)$$,
    $$values ('waiting', 'cancelled', 'recipient erased (GDPR)', true),
             ('scheduled', 'cancelled', 'recipient erased (GDPR)', true),
             ('retrying', 'cancelled', 'recipient erased (GDPR)', true)$$,
    'messages not yet claimed are cancelled, with the erasure as their reason'
);
select results_eq(
    $$select m.note, (pg_temp.queued(m.note)).status
        from unnest(array['fly sent', 'fly retry', 'fly abandoned', 'sent', 'failed', 'dead'])
            as m (note)$$,
    $$values ('fly sent', 'pending'), ('fly retry', 'pending'), ('fly abandoned', 'pending'),
             ('sent', 'sent'), ('failed', 'failed'), ('dead', 'dead')$$,
    'messages in flight wait for their outcome; finished ones keep theirs'
);
select is_empty(
    $$select q.id from public.whatsapp_message_queue as q
       where q.id in (select n from pg_temp.seen where n is not null and note <> 'kept')
         and (q.recipient_phone is not null or q.payload <> '{}' or q.last_error is not null
              or q.erased_at is distinct from now())$$,
    'every message of the erased recipient lost its number, payload and error text'
);
select is_empty(
    $$select q.id from public.whatsapp_message_queue as q
       where to_jsonb(q)::text ~ '200001|Esther|Ali|Ride confirmed'$$,
    'nothing in the queue names them any more'
);
select results_eq(
    $$select recipient_phone::text, payload::jsonb, status, erased_at
        from public.whatsapp_message_queue where id = pg_temp.seen('kept')$$,
    $$values ('+250788200002', '{"body": "Hello Kamali"}'::jsonb, 'pending', null::timestamptz)$$,
    'another recipient''s message is untouched'
);
select results_eq(
    $$select payload from public.outbox_events
       where aggregate_type = 'whatsapp_message_queue'
         and aggregate_id = pg_temp.seen('failed')::text$$,
    $$select jsonb_build_object(
        'queue_id', pg_temp.seen('failed'), 'message_type', 'text', 'attempts', 1,
        'error_code', '131026', 'erased', true)$$,
    'the whatsapp.send_failed event loses the number and the provider''s text'
);
select results_eq(
    $$select body, content, metadata, user_id from public.message_tracking
       where wamid = 'wamid.before'$$,
    $$values (null::text, null::jsonb, '{"queue_id": 0}'::jsonb, null::uuid)$$,
    'a message sent to the number before it was a user is blanked and forgets the number'
);

-- The sender records the sends that were in flight -----------------------------------------------

insert into pg_temp.seen (note, result) values (
    'record',
    public.record_whatsapp_sends(
        jsonb_build_array(
            jsonb_build_object(
                'id', pg_temp.seen('fly sent'), 'outcome', 'sent', 'provider', 'meta',
                'provider_message_id', 'wamid.fly'
            ),
            jsonb_build_object(
                'id', pg_temp.seen('fly retry'), 'outcome', 'retry', 'error_code', '131000',
                'error', 'Could not reach +250788200001'
            )
        ),
        'w1'
    )
);
select is(
    (select result from pg_temp.seen where note = 'record'),
    '{"sent": 1, "retrying": 0, "failed": 0, "dead": 0, "unconfirmed": 0, "released": 0,
      "cancelled": 1, "ignored": 0, "tracked": 1}'::jsonb,
    'record_whatsapp_sends records the send that left and cancels the one it would retry'
);
select results_eq(
    $$select body, content, media, user_id, mapping_id, metadata
        from public.message_tracking where wamid = 'wamid.fly'$$,
    $$values (null::text, null::jsonb, null::jsonb, null::uuid, null::uuid,
              jsonb_build_object('queue_id', pg_temp.seen('fly sent')))$$,
    'the sent row recorded after the erasure carries no body, phone, user or conversation'
);
select results_eq(
    $$select (pg_temp.queued('fly sent')).status, (pg_temp.queued('fly sent')).provider_message_id,
             (pg_temp.queued('fly retry')).status, (pg_temp.queued('fly retry')).last_error,
             (pg_temp.queued('fly retry')).last_error_code$$,
    $$values ('sent', 'wamid.fly', 'cancelled', null::text, '131000')$$,
    'the queue keeps the outcome: sent, and the retry cancelled without the provider''s text'
);

-- The sender that died: its lease runs out, and the next claim cancels the message.
update public.whatsapp_message_queue set visible_at = now() - interval '1 second'
where id = pg_temp.seen('fly abandoned');
insert into pg_temp.seen (note, n)
select 'claimed', count(*) from public.claim_whatsapp_messages(10, 60, 'w2')
where id <> pg_temp.seen('kept');
select is(pg_temp.seen('claimed'), 0::bigint, 'no message to the erased recipient is claimed');
select results_eq(
    $$select (pg_temp.queued('fly abandoned')).status, (pg_temp.queued('fly abandoned')).attempts,
             (pg_temp.queued('kept')).claimed_by$$,
    $$values ('cancelled', 1, 'w2')$$,
    'the abandoned message is cancelled by the claim, delivered no more; another recipient''s '
    || 'message is claimed as usual'
);
select is(
    public.redrive_whatsapp_messages('dead'), 0,
    'redrive brings back no message of an erased recipient'
);
select results_eq(
    $$select count(*) from public.message_tracking where to_jsonb(message_tracking)::text
       ~ '200001|Esther|Ali|Ride confirmed'$$,
    $$values (0::bigint)$$,
    'no message row names them'
);
select results_eq(
    $$select count(*) from public.outbox_events where payload::text ~ '200001|Esther|Ride confirmed'$$,
    $$values (0::bigint)$$,
    'no outbox event names them'
);

-- Money after the erasure ---------------------------------------------------------------------------

select throws_ok(
    $$select public.create_transaction(
        'e0000000-0000-4000-8000-00000000000e', 'credit', 10, 'RWF', 'credit-e-3')$$,
    'PT410',
    'create_transaction: user e0000000-0000-4000-8000-00000000000e was erased (GDPR): no money '
    || 'moves to or from them, and nothing new is kept about them',
    'a new credit to an erased user is PT410'
);
select throws_ok(
    $$select public.create_transaction(
        'c0000000-0000-4000-8000-00000000000c', 'transfer', 10, 'RWF', null, '{}',
        'e0000000-0000-4000-8000-00000000000e')$$,
    'PT410',
    'create_transaction: user e0000000-0000-4000-8000-00000000000e was erased (GDPR): no money '
    || 'moves to or from them, and nothing new is kept about them',
    'a transfer to an erased user is PT410'
);
select throws_ok(
    $$select public.create_transaction(
        'e0000000-0000-4000-8000-00000000000e', 'transfer', 10, 'RWF', null, '{}',
        'c0000000-0000-4000-8000-00000000000c')$$,
    'PT410',
    'create_transaction: user e0000000-0000-4000-8000-00000000000e was erased (GDPR): no money '
    || 'moves to or from them, and nothing new is kept about them',
    'a transfer from an erased user is PT410'
);
select throws_ok(
    $$select public.create_transaction(
        'e0000000-0000-4000-8000-00000000000e', 'payment', 10, 'RWF')$$,
    'PT410', null,
    'a payment by an erased user is PT410'
);
select is(
    (public.create_transaction(
        'e0000000-0000-4000-8000-00000000000e', 'credit', 50, 'RWF', 'credit-e-2'
    )).id,
    pg_temp.tx('pending credit'),
    'a retry of a transaction made before the erasure still replays it'
);
select lives_ok(
    format(
        'select public.update_transaction_status(%L, %L)', pg_temp.tx('transfer to e'), 'processing'
    ),
    'a pending transfer to an erased user may still move to processing'
);
select throws_ok(
    format(
        'select public.update_transaction_status(%L, %L)', pg_temp.tx('transfer to e'), 'completed'
    ),
    'PT410',
    'update_transaction_status: user e0000000-0000-4000-8000-00000000000e was erased (GDPR): no '
    || 'money moves to or from them, and nothing new is kept about them',
    'completing a transfer to an erased user is PT410'
);
select is(
    (public.update_transaction_status(pg_temp.tx('transfer to e'), 'failed', 'recipient erased'))
        .status,
    'failed',
    'it may fail instead'
);
select is(
    (public.update_transaction_status(pg_temp.tx('pending credit'), 'cancelled')).status,
    'cancelled',
    'a pending credit of an erased user may be cancelled'
);
select throws_ok(
    format('select public.update_transaction_status(%L, %L)', pg_temp.tx('credit'), 'reversed'),
    'PT410', null,
    'reversing an erased user''s completed credit is PT410'
);
select throws_ok(
    $$select public.add_payment_method(
        'e0000000-0000-4000-8000-00000000000e', 'mobile_money', 'MTN',
        '{"phone_number": "+250788200001"}')$$,
    'PT410',
    'add_payment_method: user e0000000-0000-4000-8000-00000000000e was erased (GDPR): no money '
    || 'moves to or from them, and nothing new is kept about them',
    'a payment method for an erased user is PT410'
);
select results_eq(
    $$select user_id, balance from public.wallets order by user_id$$,
    $$values ('c0000000-0000-4000-8000-00000000000c'::uuid, 500::numeric),
             ('e0000000-0000-4000-8000-00000000000e'::uuid, 100::numeric)$$,
    'balances stay as they were: money records are kept, nothing moved'
);
select results_eq(
    $$select status::text, count(*) from public.transactions group by 1 order by 1$$,
    $$values ('cancelled', 1::bigint), ('completed', 2::bigint), ('failed', 1::bigint)$$,
    'the refused calls made no transaction and moved none'
);
select is(
    (select count(*) from public.payment_methods), 0::bigint,
    'and stored no payment method'
);

-- OTP: the erased user's number has no user --------------------------------------------------------

select throws_ok(
    $$select public.issue_otp('+250788200001')$$,
    'PT404', 'issue_otp: no user has this phone number',
    'the erased user''s number gets no code'
);

-- Erasing again reaches nothing more.
select is(
    public.erase_user('e0000000-0000-4000-8000-00000000000e')
    - array['user_id', 'erased_at', 'already_erased'],
    '{"preferences_deleted": 0, "sessions_deleted": 0, "conversations_anonymised": 0,
      "messages_blanked": 0, "events_scrubbed": 0, "otp_codes_deleted": 0,
      "payment_methods_deleted": 0, "queued_messages_cancelled": 0, "queued_messages_blanked": 0,
      "queue_events_scrubbed": 0, "dead_letters_deleted": 0, "locations_deleted": 0}'::jsonb,
    'erasing again changes nothing'
);
select is(
    (select count(*) from public.whatsapp_message_queue where status = 'cancelled'), 5::bigint,
    'and the queue keeps its five cancelled messages'
);

-- Locations: where the user was and the places they kept go; nothing new is kept after. -----------

insert into public.users (id, phone_number)
values ('e1000000-0000-4000-8000-000000000010', '+250788300010');
do $$
begin
    perform public.update_current_location('e1000000-0000-4000-8000-000000000010', -1.95, 30.06);
    perform public.save_location('e1000000-0000-4000-8000-000000000010', 'home', -1.94, 30.06);
end;
$$;
select is(
    public.erase_user('e1000000-0000-4000-8000-000000000010') -> 'locations_deleted',
    '2'::jsonb,
    'erase_user deletes the user''s current position and saved places, and says how many'
);
select is_empty(
    $$select from public.locations
       where user_id = 'e1000000-0000-4000-8000-000000000010'$$,
    'no location of the erased user is left'
);
select throws_ok(
    $$select public.update_current_location(
        'e1000000-0000-4000-8000-000000000010', -1.95, 30.06
    )$$,
    'PT410', null,
    'a position reported for an erased user is refused (410), not kept'
);
select throws_ok(
    $$select public.save_location('e1000000-0000-4000-8000-000000000010', 'work', -1.95, 30.09)$$,
    'PT410', null,
    'a place saved for an erased user is refused (410)'
);

select * from finish();
rollback;
