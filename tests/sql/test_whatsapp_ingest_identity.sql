-- Who a Meta message belongs to (functions-sql's WhatsApp ingest): users registered by phone,
-- by user id or both, their preferences and later identifiers; their sessions; their
-- conversations, late messages and a conversation closed and started again.
-- Runs as postgres on a fresh clone, in one transaction: now() is constant, and the provider
-- timestamps are fixed (1767225600 is 2026-01-01 00:00:00 UTC). The helpers and the payloads
-- of the story are tests/sql/fixtures/whatsapp_ingest.sql.
begin;
select plan(26);

call tests.fixture('whatsapp_ingest');
call pg_temp.story_batch();

-- Identity --------------------------------------------------------------------------------------

select results_eq(
    $$select phone_number, wa_user_id, display_name, last_active_at from public.users
      where id = pg_temp.uid('alice')$$,
    $$values ('+250788000001', null::text, 'Alice', to_timestamp(1767226020))$$,
    'a contact with a phone only: E.164 phone, no user id, profile name, active at its last message'
);
select results_eq(
    $$select phone_number, wa_user_id, display_name from public.users
      where id = pg_temp.uid('bob')$$,
    $$values ('+250788000002', 'RW.1000000002', 'Bob')$$,
    'a contact with phone and user id: users.wa_user_id set, phone E.164 with a +'
);
select results_eq(
    $$select phone_number, wa_user_id, display_name from public.users
      where id = pg_temp.uid('carol')$$,
    $$values (null::text, 'RW.1000000003', 'Carol')$$,
    'a contact with only from_user_id: a user with no phone'
);
select is(
    (select count(*) from public.users), 3::bigint,
    'the batch registers one user per contact: 3'
);
select results_eq(
    $$select notification_enabled, language, timezone, delay_threshold_minutes,
             auto_claim_enabled
      from public.user_preferences where user_id = pg_temp.uid('alice')$$,
    $$values (true, 'en-GB', 'Europe/London', 15, true)$$,
    'a new user gets preferences with the defaults'
);
select is_empty(
    $$select u.id from public.users as u
      where not exists (select from public.user_preferences as p where p.user_id = u.id)$$,
    'every new user has a user_preferences row'
);

-- Dan's first message has no contacts block (no profile name); his second one does. Alice and
-- Carol write again, each now with both identifiers, and Carol with a new profile name.
do $$
begin
    perform public.ingest_whatsapp_webhook('meta', pg_temp.body('dan-first'), 'corr-dan');
end;
$$;
insert into pg_temp.ids (name, id)
select 'dan', id from public.users where phone_number = '+250788000004';
select is(
    (select display_name from public.users where id = pg_temp.uid('dan')),
    null,
    'without a profile name the user has no display name'
);
select is(
    public.ingest_whatsapp_webhook('meta', pg_temp.body('later'), 'corr-later'),
    pg_temp.summary(3, 0, 0, 0, 0),
    'the later messages are stored'
);
select is(
    (select display_name from public.users where id = pg_temp.uid('dan')),
    'Dan',
    'a later profile name fills a missing display name'
);
select results_eq(
    $$select phone_number, wa_user_id, display_name from public.users
      where id = pg_temp.uid('carol')$$,
    $$values ('+250788000003', 'RW.1000000003', 'Carol')$$,
    'a user first seen by user id gets the phone of a later message; the display name stays'
);
select results_eq(
    $$select phone_number, wa_user_id from public.users where id = pg_temp.uid('alice')$$,
    $$values ('+250788000001', 'RW.1000000001')$$,
    'a user first seen by phone gets the user id of a later message'
);
select is(
    (select count(*) from public.users), 4::bigint,
    'messages naming a known user by a new identifier register no one new'
);
select is_empty(
    $$select u.id from public.users as u
      where (
          select count(*) from public.outbox_events as e
          where e.event_type = 'user.registered' and e.aggregate_id = u.id::text
      ) <> 1$$,
    'user.registered was emitted exactly once for each user'
);

-- Sessions --------------------------------------------------------------------------------------

select results_eq(
    $$select s.phone_number, s.wa_user_id, s.message_count, s.status, s.last_message_at
      from public.whatsapp_sessions as s where s.user_id = pg_temp.uid('bob')$$,
    $$values ('+250788000002', 'RW.1000000002', 5::bigint, 'active', to_timestamp(1767225840))$$,
    'a contact''s session has both identifiers, counts its 5 messages and is active'
);
select results_eq(
    $$select s.phone_number, s.wa_user_id, s.message_count
      from public.whatsapp_sessions as s where s.user_id = pg_temp.uid('carol')$$,
    $$values ('+250788000003', 'RW.1000000003', 5::bigint)$$,
    'the session of a contact first seen by user id gains the phone and counts all 5 messages'
);
select set_eq(
    $$select user_id, message_count from public.whatsapp_sessions$$,
    $$values (pg_temp.uid('alice'), 9::bigint), (pg_temp.uid('bob'), 5), (pg_temp.uid('carol'), 5),
             (pg_temp.uid('dan'), 2)$$,
    'one session per contact, each counting the messages stored'
);

-- Conversations ---------------------------------------------------------------------------------

select results_eq(
    $$select wa_id, status, last_message_id, last_inbound_at, contact_name, phone_number_id,
             display_phone_number, last_activity_at
      from public.conversation_mappings where user_id = pg_temp.uid('bob')$$,
    $$values ('250788000002', 'active', 'wamid.B05', to_timestamp(1767225840), 'Bob', 'PN1',
              '15550001111', now())$$,
    'a contact''s conversation: its wa_id, last message, when it last wrote, the business number'
);
select results_eq(
    $$select wa_id, status, last_message_id from public.conversation_mappings
      where user_id = pg_temp.uid('carol')$$,
    $$values ('RW.1000000003', 'active', 'wamid.C05')$$,
    'a contact first seen by user id keeps that one conversation when it writes with its phone'
);
select is_empty(
    $$select wa_id from public.conversation_mappings where status = 'active'
      group by wa_id having count(*) > 1$$,
    'there is at most one active conversation per wa_id'
);
select is(
    (
        select count(*) from public.outbox_events as e
        where e.event_type = 'conversation.started'
            and e.payload ->> 'wa_id' in ('250788000001', '250788000002', 'RW.1000000003')
    ),
    3::bigint,
    'conversation.started was emitted once per contact of the batch, not per message'
);
select results_eq(
    $$select last_message_id, last_inbound_at from public.conversation_mappings
      where wa_id = '250788000001' and status = 'active'$$,
    $$values ('wamid.A09', to_timestamp(1767226200))$$,
    'a newer message moves the conversation''s last message and last inbound time'
);

-- An older message of Alice's arrives late.
do $$
begin
    perform public.ingest_whatsapp_webhook('meta', pg_temp.body('alice-late'), 'corr-late');
end;
$$;
select results_eq(
    $$select last_message_id, last_inbound_at from public.conversation_mappings
      where wa_id = '250788000001' and status = 'active'$$,
    $$values ('wamid.A09', to_timestamp(1767226200))$$,
    'a late older message moves neither the last message nor the last inbound time back'
);
select is(
    (select mapping_id from public.message_tracking where wamid = 'wamid.A10'),
    (
        select id from public.conversation_mappings
        where wa_id = '250788000001' and status = 'active'
    ),
    'the late message belongs to the active conversation'
);

-- The desk closes Alice's conversation; she writes again.
insert into pg_temp.ids (name, id)
select 'alice-first-mapping', id from public.conversation_mappings
where wa_id = '250788000001' and status = 'active';
update public.conversation_mappings set status = 'closed'
where id = pg_temp.uid('alice-first-mapping');
do $$
begin
    perform public.ingest_whatsapp_webhook('meta', pg_temp.body('alice-again'), 'corr-again');
end;
$$;
select results_eq(
    $$select status, last_message_id from public.conversation_mappings
      where wa_id = '250788000001' order by created_at, status$$,
    $$values ('active', 'wamid.A11'), ('closed', 'wamid.A09')$$,
    'a closed conversation does not block a new active one, and stays closed'
);
select is(
    (
        select count(*) from public.outbox_events
        where event_type = 'conversation.started' and payload ->> 'wa_id' = '250788000001'
    ),
    2::bigint,
    'the new conversation emits conversation.started again'
);
select isnt(
    (select mapping_id from public.message_tracking where wamid = 'wamid.A11'),
    pg_temp.uid('alice-first-mapping'),
    'the new message belongs to the new conversation, not the closed one'
);

select * from finish();
rollback;
