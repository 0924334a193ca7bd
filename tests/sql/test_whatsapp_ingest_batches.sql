-- Contacts within one webhook (functions-sql's WhatsApp ingest): a long profile name filling a
-- missing one, a message naming two known contacts, one contact's several messages, one
-- person under both identifiers, and a message with no sender.
-- Runs as postgres on a fresh clone, in one transaction: now() is constant, and the provider
-- timestamps are fixed (1767225600 is 2026-01-01 00:00:00 UTC). The helpers and the payloads
-- of the story are tests/sql/fixtures/whatsapp_ingest.sql.
begin;
select plan(11);

call tests.fixture('whatsapp_ingest');

-- Found while writing these tests ---------------------------------------------------------------

-- A profile name over 256 characters is cut when a user is registered; it must be cut too when
-- it fills in the missing display name of a known user (Dan's first message had none: here Zed).
insert into pg_temp.payload (name, body) values
('zed-first', pg_temp.meta(jsonb_build_object(
    'messages', jsonb_build_array(
        tests.meta_text('250788000040', 'wamid.Z01', '1767225600', 'no name yet')
    )
))),
('zed-long-name', pg_temp.meta(jsonb_build_object(
    'contacts', jsonb_build_array(jsonb_build_object(
        'wa_id', '250788000040', 'profile', jsonb_build_object('name', repeat('z', 300))
    )),
    'messages', jsonb_build_array(
        tests.meta_text('250788000040', 'wamid.Z02', '1767225700', 'long name now')
    )
)));
select lives_ok(
    $$select public.ingest_whatsapp_webhook('meta', pg_temp.body('zed-first'));
      select public.ingest_whatsapp_webhook('meta', pg_temp.body('zed-long-name'))$$,
    'a profile name of 300 characters filling a known user''s missing display name is stored'
);

-- One contact writes by phone; another (as far as anyone can tell) by user id only. Then a
-- message names both: it belongs to the user id's user (the stronger identity), whose session
-- cannot take the phone another session holds. The message must still be stored.
insert into pg_temp.payload (name, body) values
('two-contacts', pg_temp.meta(jsonb_build_object(
    'messages', jsonb_build_array(
        tests.meta_text('250788000060', 'wamid.P01', '1767225600', 'by phone'),
        jsonb_build_object(
            'from_user_id', 'RW.1000000060', 'id', 'wamid.P02', 'timestamp', '1767225600',
            'type', 'text', 'text', jsonb_build_object('body', 'by user id')
        )
    )
))),
('both-identifiers', pg_temp.meta(jsonb_build_object(
    'messages', jsonb_build_array(
        tests.meta_text('250788000060', 'wamid.P03', '1767225700', 'both')
            || '{"from_user_id": "RW.1000000060"}'
    )
)));
select lives_ok(
    $$select public.ingest_whatsapp_webhook('meta', pg_temp.body('two-contacts'));
      select public.ingest_whatsapp_webhook('meta', pg_temp.body('both-identifiers'))$$,
    'a message whose phone and user id belong to two known contacts is stored'
);

-- Batches: one statement per step for the whole batch ------------------------------------------

-- One new contact sends three messages in one webhook, the latest listed first, and one of them
-- twice: one user, one session counting three, one conversation whose last message is the
-- latest, and one event of each kind per thing made.
insert into pg_temp.payload (name, body) values
('one-contact-three', pg_temp.meta(jsonb_build_object(
    'contacts', jsonb_build_array(
        jsonb_build_object('wa_id', '250788000070', 'profile', jsonb_build_object('name', 'Ines'))
    ),
    'messages', jsonb_build_array(
        tests.meta_text('250788000070', 'wamid.BT3', '1767225900', 'third'),
        tests.meta_text('250788000070', 'wamid.BT1', '1767225600', 'first'),
        tests.meta_text('250788000070', 'wamid.BT2', '1767225700', 'second'),
        tests.meta_text('250788000070', 'wamid.BT2', '1767225700', 'second')
    )
)));
insert into pg_temp.seen (note, n) select 'outbox before batch', max(id) from public.outbox_events;
select is(
    public.ingest_whatsapp_webhook('meta', pg_temp.body('one-contact-three')),
    pg_temp.summary(3, 1, 0, 0, 0),
    'a batch with a wamid twice stores it once and counts the second as a duplicate'
);
select results_eq(
    $$select
        (select count(*) from public.users where phone_number = '+250788000070'),
        (select message_count from public.whatsapp_sessions where phone_number = '+250788000070'),
        (select count(*) from public.conversation_mappings where wa_id = '250788000070'),
        (select last_message_id from public.conversation_mappings where wa_id = '250788000070'),
        (select count(*) from public.message_tracking where wamid like 'wamid.BT_')$$,
    $$values (1::bigint, 3::bigint, 1::bigint, 'wamid.BT3'::text, 3::bigint)$$,
    'three messages of one contact: one user, a session counting 3, one conversation at the latest'
);
select results_eq(
    $$select event_type, count(*) from public.outbox_events
      where id > pg_temp.seen('outbox before batch')
      group by event_type order by event_type$$,
    $$values ('conversation.started'::text, 1::bigint), ('user.registered', 1),
        ('whatsapp.message_received', 3)$$,
    'the batch emits one user.registered, one conversation.started and three message_received'
);
select is(
    (select array_agg(payload ->> 'wamid' order by id) from public.outbox_events
     where id > pg_temp.seen('outbox before batch')
        and event_type = 'whatsapp.message_received'),
    array['wamid.BT1', 'wamid.BT2', 'wamid.BT3'],
    'a contact''s messages are emitted in the order they were sent'
);

-- The same known person under both identifiers in one webhook: both contacts resolve to one
-- user, so each goes through the one-contact path, and the session counts both messages in the
-- one conversation.
insert into pg_temp.payload (name, body) values
('known-both', pg_temp.meta(jsonb_build_object(
    'messages', jsonb_build_array(
        tests.meta_text('250788000071', 'wamid.K01', '1767225600', 'phone')
            || '{"from_user_id": "RW.1000000071"}'
    )
))),
('known-twice', pg_temp.meta(jsonb_build_object(
    'messages', jsonb_build_array(
        tests.meta_text('250788000071', 'wamid.K02', '1767225700', 'phone again'),
        jsonb_build_object(
            'from_user_id', 'RW.1000000071', 'id', 'wamid.K03', 'timestamp', '1767225800',
            'type', 'text', 'text', jsonb_build_object('body', 'user id')
        )
    )
)));
select is(
    public.ingest_whatsapp_webhook('meta', pg_temp.body('known-both'))
    || public.ingest_whatsapp_webhook('meta', pg_temp.body('known-twice')),
    pg_temp.summary(2, 0, 0, 0, 0),
    'a known person under both identifiers in one batch: both messages stored'
);
select results_eq(
    $$select
        (select count(*) from public.users
         where phone_number = '+250788000071' or wa_user_id = 'RW.1000000071'),
        (select message_count from public.whatsapp_sessions where wa_user_id = 'RW.1000000071'),
        (select count(distinct mapping_id) from public.message_tracking
         where wamid in ('wamid.K01', 'wamid.K02', 'wamid.K03')),
        (select count(distinct user_id) from public.message_tracking
         where wamid in ('wamid.K01', 'wamid.K02', 'wamid.K03'))$$,
    $$values (1::bigint, 3::bigint, 1::bigint, 1::bigint)$$,
    'one user, a session counting all 3 messages and one conversation for both identifiers'
);

-- A message with neither a phone nor a user id cannot belong to anyone.
insert into pg_temp.snap (note, f) values ('before no sender', pg_temp.footprint());
insert into pg_temp.payload (name, body) values
('no-sender', pg_temp.meta(jsonb_build_object(
    'messages', jsonb_build_array(
        tests.meta_text('250788000072', 'wamid.N01', '1767225600', 'fine'),
        tests.meta_text(null, 'wamid.N02', '1767225600', 'from nobody') - 'from'
    )
)));
select is(
    public.ingest_whatsapp_webhook('meta', pg_temp.body('no-sender')),
    pg_temp.summary(1, 0, 0, 0, 0, 1),
    'a message without a sender is dead-lettered; the other message is stored'
);
select results_eq(
    $$select detail, wamid, contact from private.whatsapp_dead_letters order by id desc limit 1$$,
    $$values ('the message has no sender (from or from_user_id)', 'wamid.N02', null::text)$$,
    'its dead letter names its wamid and no sender'
);
select is(
    pg_temp.footprint(),
    pg_temp.snap('before no sender') || jsonb_build_object(
        'users', (pg_temp.snap('before no sender') ->> 'users')::integer + 1,
        'user_preferences', (pg_temp.snap('before no sender') ->> 'user_preferences')::integer + 1,
        'sessions', (pg_temp.snap('before no sender') ->> 'sessions')::integer + 1,
        'session_messages', (pg_temp.snap('before no sender') ->> 'session_messages')::integer + 1,
        'mappings', (pg_temp.snap('before no sender') ->> 'mappings')::integer + 1,
        'messages', (pg_temp.snap('before no sender') ->> 'messages')::integer + 1,
        'outbox', (pg_temp.snap('before no sender') ->> 'outbox')::integer + 3
    ),
    'only the message with a sender is stored (its user, session, conversation and 3 events)'
);

select * from finish();
rollback;
