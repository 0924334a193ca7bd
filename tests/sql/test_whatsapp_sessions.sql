-- WhatsApp sessions and desk conversations (supabase/functions-sql/*_whatsapp_sessions.sql):
-- private.normalize_phone, update_whatsapp_session_activity, cleanup_expired_whatsapp_sessions
-- and its pg_cron job, correlate_conversation, private.service_window_closes_at, the updated_at
-- triggers and who may read whatsapp_sessions and conversation_mappings. Runs as postgres on a
-- fresh clone of the migrated template.
begin;
select plan(111);

-- What the RPCs returned (note, then the row), counts noted along the way, and the rows a role
-- could see (written by that role through as_caller, asserted afterwards as postgres).
create temp table returned as
select ''::text as note, s.* from public.whatsapp_sessions as s
with no data;
create temp table seen (note text primary key, n bigint not null);
create function pg_temp.seen(p_note text)
returns bigint
language sql
as $$ select n from pg_temp.seen where note = p_note $$;
create temp table visible (note text not null, id uuid not null);
grant select, insert on pg_temp.returned, pg_temp.seen, pg_temp.visible
to anon, authenticated, service_role;

-- Users: the owner of +250788100002, and one who will own +250788100001 later.
insert into public.users (id, phone_number) values
('11111111-1111-4111-8111-111111111111', '+250788100002');

-- private.normalize_phone -------------------------------------------------------------------------

select is(
    private.normalize_phone('250788123456'), '+250788123456',
    'normalize_phone turns WhatsApp''s bare digits into E.164'
);
select is(
    private.normalize_phone('+250788123456'), '+250788123456',
    'normalize_phone leaves an E.164 number as it is'
);
select is(
    private.normalize_phone('whatsapp:+250788123456'), '+250788123456',
    'normalize_phone strips Twilio''s whatsapp: prefix'
);
select is(
    private.normalize_phone('WhatsApp:+250788123456'), '+250788123456',
    'normalize_phone strips the whatsapp: prefix whatever its case'
);
select is(
    private.normalize_phone(' +250 (788) 123-456 '), '+250788123456',
    'normalize_phone drops spaces, dashes and parentheses'
);
select is(
    private.normalize_phone('250.788.123.456'), '+250788123456',
    'normalize_phone drops dots'
);
select is(
    private.normalize_phone('00250788123456'), '+250788123456',
    'normalize_phone reads a 00 prefix as the international +'
);
select is(
    private.normalize_phone('0788123456'), null,
    'normalize_phone refuses a national number (country code cannot start with 0)'
);
select is(
    private.normalize_phone('not a phone'), null,
    'normalize_phone refuses letters'
);
select is(
    private.normalize_phone('+250788'), null,
    'normalize_phone refuses a number of 6 digits, too short for E.164'
);
select is(
    private.normalize_phone('+2507881234567890'), null,
    'normalize_phone refuses a number of 16 digits, too long for E.164'
);
select is(private.normalize_phone(''), null, 'normalize_phone refuses an empty string');
select is(private.normalize_phone(null), null, 'normalize_phone of null is null');

-- update_whatsapp_session_activity: the happy path ------------------------------------------------

insert into pg_temp.returned
select 'created', * from public.update_whatsapp_session_activity('250788100001');

select results_eq(
    $$select phone_number, wa_user_id, user_id, status, message_count, last_message_at,
             last_heartbeat_at
        from pg_temp.returned where note = 'created'$$,
    $$values ('+250788100001', null::text, null::uuid, 'active', 1::bigint, now(), now())$$,
    'update_whatsapp_session_activity returns a new active session, one message, active now'
);
select results_eq(
    $$select id, phone_number, status, message_count
        from public.whatsapp_sessions where phone_number = '+250788100001'$$,
    $$select id, phone_number, status, message_count
        from pg_temp.returned where note = 'created'$$,
    'update_whatsapp_session_activity stores the session it returns, found by E.164 number'
);

insert into pg_temp.returned
select 'again', * from public.update_whatsapp_session_activity('+250 788 100 001');

select results_eq(
    $$select id, message_count from pg_temp.returned where note = 'again'$$,
    $$select id, 2::bigint from pg_temp.returned where note = 'created'$$,
    'a second message for the same number (written differently) counts on the same session'
);
select is(
    (select count(*) from public.whatsapp_sessions where phone_number = '+250788100001'),
    1::bigint,
    'the number still has one session'
);

-- A heartbeat an hour after the last message: counted as activity, not as a message.
update public.whatsapp_sessions
set last_message_at = now() - interval '1 hour', last_heartbeat_at = now() - interval '1 hour'
where phone_number = '+250788100001';
insert into pg_temp.returned
select 'heartbeat', * from public.update_whatsapp_session_activity('250788100001', false);

select is(
    (select message_count from public.whatsapp_sessions where phone_number = '+250788100001'),
    2::bigint,
    'with p_increment_message_count false the message count stays as it was'
);
select results_eq(
    $$select last_message_at, last_heartbeat_at
        from public.whatsapp_sessions where phone_number = '+250788100001'$$,
    $$values (now(), now())$$,
    'with p_increment_message_count false last_message_at and last_heartbeat_at become now'
);

update public.whatsapp_sessions set status = 'inactive' where phone_number = '+250788100001';
insert into pg_temp.returned
select 'touch', * from public.update_whatsapp_session_activity('250788100001');
select is(
    (select status from public.whatsapp_sessions where phone_number = '+250788100001'),
    'active',
    'activity makes an inactive session active again'
);

update public.whatsapp_sessions set status = 'expired' where phone_number = '+250788100001';
insert into pg_temp.returned
select 'touch', * from public.update_whatsapp_session_activity('250788100001');
select is(
    (select status from public.whatsapp_sessions where phone_number = '+250788100001'),
    'active',
    'activity makes an expired session active again'
);

update public.whatsapp_sessions set status = 'suspended' where phone_number = '+250788100001';
insert into pg_temp.returned
select 'touch', * from public.update_whatsapp_session_activity('250788100001');
select is(
    (select status from public.whatsapp_sessions where phone_number = '+250788100001'),
    'suspended',
    'activity leaves a suspended session suspended'
);
select is(
    (select message_count from public.whatsapp_sessions where phone_number = '+250788100001'),
    5::bigint,
    'every message was counted, the suspended session''s included'
);

-- Linking the session to the user with that phone number.
insert into pg_temp.returned
select 'owner', * from public.update_whatsapp_session_activity('00250788100002');
select is(
    (select user_id from pg_temp.returned where note = 'owner'),
    '11111111-1111-4111-8111-111111111111'::uuid,
    'a new session is linked to the user who has that phone number'
);
select is(
    (select user_id from public.whatsapp_sessions where phone_number = '+250788100001'),
    null::uuid,
    'a session whose number no user has is linked to nobody'
);
insert into public.users (id, phone_number) values
('22222222-2222-4222-8222-222222222222', '+250788100001');
insert into pg_temp.returned
select 'touch', * from public.update_whatsapp_session_activity('250788100001', false);
select is(
    (select user_id from public.whatsapp_sessions where phone_number = '+250788100001'),
    '22222222-2222-4222-8222-222222222222'::uuid,
    'an existing session is linked once a user with its number exists'
);

-- update_whatsapp_session_activity: bad input is 22023 and changes nothing ------------------------

insert into pg_temp.seen (note, n) values
('sessions before bad calls', (select count(*) from public.whatsapp_sessions)),
(
    'count before bad calls',
    (select message_count from public.whatsapp_sessions where phone_number = '+250788100001')
);

select throws_ok(
    $$select public.update_whatsapp_session_activity('not a phone')$$,
    '22023',
    'update_whatsapp_session_activity: p_phone_number must be a phone number (E.164, e.g. '
    || '+250788123456; got ''not a phone'')',
    'update_whatsapp_session_activity refuses a string that is no phone number'
);
select throws_ok(
    $$select public.update_whatsapp_session_activity('0788100001')$$,
    '22023',
    'update_whatsapp_session_activity: p_phone_number must be a phone number (E.164, e.g. '
    || '+250788123456; got ''0788100001'')',
    'update_whatsapp_session_activity refuses a national number without country code'
);
select throws_ok(
    $$select public.update_whatsapp_session_activity(null)$$,
    '22023',
    'update_whatsapp_session_activity: p_phone_number must be a phone number (E.164, e.g. '
    || '+250788123456; got null)',
    'update_whatsapp_session_activity refuses a null phone number'
);
select throws_ok(
    $$select public.update_whatsapp_session_activity('250788100003', null)$$,
    '22023',
    'update_whatsapp_session_activity: p_increment_message_count must be true or false',
    'update_whatsapp_session_activity refuses a null p_increment_message_count'
);
select throws_ok(
    $$select public.update_whatsapp_session_activity('250788100001', null)$$,
    '22023',
    'update_whatsapp_session_activity: p_increment_message_count must be true or false',
    'update_whatsapp_session_activity refuses a null p_increment_message_count for a known number'
);
select is(
    (select count(*) from public.whatsapp_sessions),
    pg_temp.seen('sessions before bad calls'),
    'the refused calls made no session'
);
select is(
    (select message_count from public.whatsapp_sessions where phone_number = '+250788100001'),
    pg_temp.seen('count before bad calls'),
    'the refused call for a known number counted nothing'
);

-- update_whatsapp_session_activity: who may call it -----------------------------------------------

select throws_ok(
    $$select tests.as_role(
        'anon', 'select public.update_whatsapp_session_activity(''250788100009'')'
    )$$,
    '42501',
    'permission denied for function update_whatsapp_session_activity',
    'anon may not call update_whatsapp_session_activity'
);
select throws_ok(
    $$select tests.as_caller(
        'authenticated',
        '{"sub": "11111111-1111-4111-8111-111111111111", "role": "authenticated"}',
        'select public.update_whatsapp_session_activity(''250788100009'')'
    )$$,
    '42501',
    'permission denied for function update_whatsapp_session_activity',
    'authenticated may not call update_whatsapp_session_activity'
);
select lives_ok(
    $$select tests.as_role(
        'service_role',
        'insert into pg_temp.returned'
        ' select ''service'', * from public.update_whatsapp_session_activity(''250788100009'')'
    )$$,
    'service_role calls update_whatsapp_session_activity'
);
select results_eq(
    $$select phone_number, status, message_count
        from public.whatsapp_sessions where phone_number = '+250788100009'$$,
    $$values ('+250788100009', 'active', 1::bigint)$$,
    'service_role''s call made the session'
);

-- cleanup_expired_whatsapp_sessions ---------------------------------------------------------------

delete from public.whatsapp_sessions;
insert into public.whatsapp_sessions (phone_number, status, last_message_at, created_at) values
('+250788200001', 'active', now() - interval '25 hours', now() - interval '3 days'),
('+250788200002', 'inactive', now() - interval '30 hours', now() - interval '3 days'),
('+250788200003', 'suspended', now() - interval '48 hours', now() - interval '3 days'),
('+250788200004', 'active', now() - interval '2 hours', now() - interval '3 days'),
('+250788200005', 'active', null, now() - interval '25 hours'),
('+250788200006', 'active', null, now() - interval '5 minutes'),
('+250788200007', 'expired', now() - interval '40 hours', now() - interval '3 days'),
('+250788200008', 'active', now() - interval '30 minutes', now() - interval '3 days');
insert into public.conversation_mappings (wa_id, status, last_activity_at) values
('250788200001', 'active', now() - interval '25 hours'),
('250788200004', 'active', now() - interval '50 minutes'),
('250788200009', 'closed', now() - interval '3 days');

select is(
    public.cleanup_expired_whatsapp_sessions(),
    3,
    'cleanup_expired_whatsapp_sessions returns how many sessions it expired'
);
select results_eq(
    $$select phone_number, status from public.whatsapp_sessions order by phone_number$$,
    $$values ('+250788200001', 'expired'),
             ('+250788200002', 'expired'),
             ('+250788200003', 'suspended'),
             ('+250788200004', 'active'),
             ('+250788200005', 'expired'),
             ('+250788200006', 'active'),
             ('+250788200007', 'expired'),
             ('+250788200008', 'active')$$,
    'by default active and inactive sessions idle over 24 hours (or never written to and made '
    'that long ago) expire; suspended and recent ones do not'
);
select results_eq(
    $$select wa_id, status from public.conversation_mappings order by wa_id$$,
    $$values ('250788200001', 'expired'),
             ('250788200004', 'active'),
             ('250788200009', 'closed')$$,
    'an active conversation idle over 24 hours expires with the sessions; others stay as they were'
);
select is(
    public.cleanup_expired_whatsapp_sessions(),
    0,
    'a second run finds nothing more to expire'
);

set local easymo.whatsapp_session_ttl = '1 hour';
select is(
    public.cleanup_expired_whatsapp_sessions(),
    1,
    'with easymo.whatsapp_session_ttl set to 1 hour, the session idle for 2 hours expires too'
);
select results_eq(
    $$select phone_number, status from public.whatsapp_sessions
       where phone_number in ('+250788200004', '+250788200006', '+250788200008')
       order by phone_number$$,
    $$values ('+250788200004', 'expired'),
             ('+250788200006', 'active'),
             ('+250788200008', 'active')$$,
    'the 1 hour setting expires only sessions idle for more than an hour'
);
select is(
    public.cleanup_expired_whatsapp_sessions('10 minutes'),
    1,
    'p_idle_for overrides the setting: 10 minutes expires the session idle for 30 minutes'
);
select results_eq(
    $$select phone_number, status from public.whatsapp_sessions
       where phone_number in ('+250788200006', '+250788200008')
       order by phone_number$$,
    $$values ('+250788200006', 'active'), ('+250788200008', 'expired')$$,
    'p_idle_for 10 minutes leaves the session made 5 minutes ago'
);
select is(
    (select status from public.conversation_mappings where wa_id = '250788200004'),
    'expired',
    'the conversation idle for 50 minutes expired with p_idle_for 10 minutes'
);

-- Non-positive intervals change nothing.
insert into public.whatsapp_sessions (phone_number, status, last_message_at) values
('+250788200010', 'active', now() - interval '1 minute');
insert into public.conversation_mappings (wa_id, status, last_activity_at) values
('250788200010', 'active', now() - interval '1 minute');
set local easymo.whatsapp_session_ttl = '';

select throws_ok(
    $$select public.cleanup_expired_whatsapp_sessions('0 seconds')$$,
    '22023',
    'cleanup_expired_whatsapp_sessions: p_idle_for must be positive (got 00:00:00)',
    'cleanup_expired_whatsapp_sessions refuses a zero p_idle_for'
);
select throws_ok(
    $$select public.cleanup_expired_whatsapp_sessions('-1 hour')$$,
    '22023',
    'cleanup_expired_whatsapp_sessions: p_idle_for must be positive (got -01:00:00)',
    'cleanup_expired_whatsapp_sessions refuses a negative p_idle_for'
);
set local easymo.whatsapp_session_ttl = '-5 minutes';
select throws_ok(
    $$select public.cleanup_expired_whatsapp_sessions()$$,
    '22023',
    'cleanup_expired_whatsapp_sessions: p_idle_for must be positive (got -00:05:00)',
    'cleanup_expired_whatsapp_sessions refuses a negative easymo.whatsapp_session_ttl'
);
set local easymo.whatsapp_session_ttl = '';
select results_eq(
    $$select s.status, m.status
        from public.whatsapp_sessions as s, public.conversation_mappings as m
       where s.phone_number = '+250788200010' and m.wa_id = '250788200010'$$,
    $$values ('active', 'active')$$,
    'the refused calls expired neither the session nor the conversation idle for a minute'
);

select throws_ok(
    $$select tests.as_role('anon', 'select public.cleanup_expired_whatsapp_sessions()')$$,
    '42501',
    'permission denied for function cleanup_expired_whatsapp_sessions',
    'anon may not call cleanup_expired_whatsapp_sessions'
);
select throws_ok(
    $$select tests.as_caller(
        'authenticated',
        '{"sub": "11111111-1111-4111-8111-111111111111", "role": "authenticated"}',
        'select public.cleanup_expired_whatsapp_sessions()'
    )$$,
    '42501',
    'permission denied for function cleanup_expired_whatsapp_sessions',
    'authenticated may not call cleanup_expired_whatsapp_sessions'
);
select lives_ok(
    $$select tests.as_role(
        'service_role',
        'insert into pg_temp.seen'
        ' select ''service cleanup'', public.cleanup_expired_whatsapp_sessions(''30 seconds'')'
    )$$,
    'service_role calls cleanup_expired_whatsapp_sessions'
);
select is(
    pg_temp.seen('service cleanup'),
    2::bigint,
    'service_role''s call expired the two sessions idle for over 30 seconds'
);

-- pg_cron jobs ------------------------------------------------------------------------------------

select results_eq(
    $$select jobname::text collate "default", schedule, command, active
        from cron.job
       where jobname in ('expire-whatsapp-sessions', 'purge-outbox-events')
       order by jobname collate "C"$$,
    $$values
        ('expire-whatsapp-sessions', '*/15 * * * *',
         'select public.cleanup_expired_whatsapp_sessions()', true),
        ('purge-outbox-events', '41 3 * * *',
         'select private.purge_published_outbox_events()', true)$$,
    'pg_cron expires sessions every 15 minutes and purges published outbox events daily at 03:41'
);

-- correlate_conversation --------------------------------------------------------------------------

delete from public.conversation_mappings;
insert into public.conversation_mappings (wa_id, user_id, status) values
('250788300001', '11111111-1111-4111-8111-111111111111', 'active'),
('250788300001', '11111111-1111-4111-8111-111111111111', 'closed'),
('250788300002', null, 'closed'),
('250788300004', null, 'active'),
('250788300005', null, 'active');

select results_eq(
    $$select wa_id, status, conversation_id, communication_id
        from public.correlate_conversation('250788300001', 'conv-1', 'comm-1')$$,
    $$values ('250788300001', 'active', 'conv-1', 'comm-1')$$,
    'correlate_conversation returns the active conversation with the desk''s ids'
);
select results_eq(
    $$select status, conversation_id, communication_id
        from public.conversation_mappings where wa_id = '250788300001' order by status$$,
    $$values ('active', 'conv-1', 'comm-1'), ('closed', null, null)$$,
    'correlate_conversation stored the ids on the active conversation only'
);
select results_eq(
    $$select id, conversation_id, communication_id
        from public.correlate_conversation('250788300001', 'conv-1', 'comm-1')$$,
    $$select id, conversation_id, communication_id
        from public.conversation_mappings where wa_id = '250788300001' and status = 'active'$$,
    'the same correlation again answers with the same row, without an error'
);
select results_eq(
    $$select id, conversation_id, communication_id
        from public.correlate_conversation('250788300001', 'conv-1')$$,
    $$select id, 'conv-1'::text, 'comm-1'::text
        from public.conversation_mappings where wa_id = '250788300001' and status = 'active'$$,
    'the same conversation id without a communication id keeps the communication id'
);
select is(
    (select count(*) from public.conversation_mappings where conversation_id = 'conv-1'),
    1::bigint,
    'repeating the correlation left one conversation with that id'
);
select throws_ok(
    $$select public.correlate_conversation('250788300001', 'conv-2', 'comm-1')$$,
    'PT409',
    'correlate_conversation: the active conversation of 250788300001 is already correlated '
    || 'with conv-1',
    'correlate_conversation refuses another conversation id with PT409'
);
select throws_ok(
    $$select public.correlate_conversation('250788300001', 'conv-1', 'comm-2')$$,
    'PT409',
    'correlate_conversation: the active conversation of 250788300001 is already correlated '
    || 'with conv-1',
    'correlate_conversation refuses the same conversation id with another communication id'
);
select results_eq(
    $$select conversation_id, communication_id
        from public.conversation_mappings where wa_id = '250788300001' and status = 'active'$$,
    $$values ('conv-1', 'comm-1')$$,
    'the refused correlations left the conversation as it was'
);
select throws_ok(
    $$select public.correlate_conversation('250788300002', 'conv-3')$$,
    'PT404',
    'correlate_conversation: 250788300002 has no active conversation',
    'correlate_conversation answers PT404 for a contact whose conversations are all closed'
);
select throws_ok(
    $$select public.correlate_conversation('250788300003', 'conv-3')$$,
    'PT404',
    'correlate_conversation: 250788300003 has no active conversation',
    'correlate_conversation answers PT404 for a contact without any conversation'
);
select is(
    (select conversation_id from public.conversation_mappings where wa_id = '250788300002'),
    null,
    'the PT404 left the closed conversation uncorrelated'
);

select throws_ok(
    $$select public.correlate_conversation('', 'conv-4')$$,
    '22023',
    'correlate_conversation: p_wa_id must name the contact (1 to 200 characters)',
    'correlate_conversation refuses an empty p_wa_id'
);
select throws_ok(
    $$select public.correlate_conversation('   ', 'conv-4')$$,
    '22023',
    'correlate_conversation: p_wa_id must name the contact (1 to 200 characters)',
    'correlate_conversation refuses a blank p_wa_id'
);
select throws_ok(
    $$select public.correlate_conversation(null, 'conv-4')$$,
    '22023',
    'correlate_conversation: p_wa_id must name the contact (1 to 200 characters)',
    'correlate_conversation refuses a null p_wa_id'
);
select throws_ok(
    $$select public.correlate_conversation('250788300004', '')$$,
    '22023',
    'correlate_conversation: p_conversation_id must be 1 to 100 characters',
    'correlate_conversation refuses an empty p_conversation_id'
);
select throws_ok(
    $$select public.correlate_conversation('250788300004', '  ')$$,
    '22023',
    'correlate_conversation: p_conversation_id must be 1 to 100 characters',
    'correlate_conversation refuses a blank p_conversation_id'
);
select throws_ok(
    $$select public.correlate_conversation('250788300004', null)$$,
    '22023',
    'correlate_conversation: p_conversation_id must be 1 to 100 characters',
    'correlate_conversation refuses a null p_conversation_id'
);
select throws_ok(
    format($$select public.correlate_conversation('250788300004', %L)$$, repeat('c', 101)),
    '22023',
    'correlate_conversation: p_conversation_id must be 1 to 100 characters',
    'correlate_conversation refuses a p_conversation_id of 101 characters'
);
select throws_ok(
    $$select public.correlate_conversation('250788300004', 'conv-4', ' ')$$,
    '22023',
    'correlate_conversation: p_communication_id must be 1 to 100 characters, or null',
    'correlate_conversation refuses a blank p_communication_id'
);
select throws_ok(
    format(
        $$select public.correlate_conversation('250788300004', 'conv-4', %L)$$, repeat('m', 101)
    ),
    '22023',
    'correlate_conversation: p_communication_id must be 1 to 100 characters, or null',
    'correlate_conversation refuses a p_communication_id of 101 characters'
);
select is(
    (select conversation_id from public.conversation_mappings where wa_id = '250788300004'),
    null,
    'the refused correlations left the conversation uncorrelated'
);
-- The desk may learn the communication id after the conversation id.
select results_eq(
    $$select conversation_id, communication_id
        from public.correlate_conversation('250788300005', 'conv-5')$$,
    $$values ('conv-5', null::text)$$,
    'correlate_conversation sets a conversation id alone'
);
select results_eq(
    $$select conversation_id, communication_id
        from public.correlate_conversation('250788300005', 'conv-5', 'comm-5')$$,
    $$values ('conv-5', 'comm-5')$$,
    'correlate_conversation adds the communication id later to the same conversation'
);
select is(
    (
        select conversation_id
        from public.correlate_conversation('250788300004', repeat('c', 100))
    ),
    repeat('c', 100),
    'correlate_conversation accepts a p_conversation_id of 100 characters'
);

select throws_ok(
    $$select tests.as_role(
        'anon', 'select public.correlate_conversation(''250788300005'', ''conv-5'')'
    )$$,
    '42501',
    'permission denied for function correlate_conversation',
    'anon may not call correlate_conversation'
);
select throws_ok(
    $$select tests.as_caller(
        'authenticated',
        '{"sub": "11111111-1111-4111-8111-111111111111", "role": "authenticated"}',
        'select public.correlate_conversation(''250788300005'', ''conv-5'')'
    )$$,
    '42501',
    'permission denied for function correlate_conversation',
    'authenticated may not call correlate_conversation'
);
select lives_ok(
    $$select tests.as_role(
        'service_role', 'select public.correlate_conversation(''250788300005'', ''conv-5'')'
    )$$,
    'service_role calls correlate_conversation'
);
select is(
    (select conversation_id from public.conversation_mappings where wa_id = '250788300005'),
    'conv-5',
    'service_role''s call correlated the conversation'
);

-- private.service_window_closes_at ----------------------------------------------------------------

insert into public.conversation_mappings (wa_id, status, last_inbound_at) values
('250788400001', 'closed', now() - interval '30 hours'),
('250788400001', 'active', now() - interval '2 hours'),
('250788400002', 'expired', now() - interval '1 hour'),
('250788400003', 'active', null);

select is(
    private.service_window_closes_at('250788400001'),
    now() + interval '22 hours',
    'the service window closes 24 hours after the contact''s latest inbound message'
);
select is(
    private.service_window_closes_at('250788400002'),
    now() + interval '23 hours',
    'the latest inbound message counts whatever the status of its conversation'
);
select is(
    private.service_window_closes_at('250788400003'),
    null,
    'a contact who never wrote has no service window'
);
select is(
    private.service_window_closes_at('250788400004'),
    null,
    'a contact without any conversation has no service window'
);

-- updated_at triggers -----------------------------------------------------------------------------

insert into public.whatsapp_sessions (phone_number, created_at, updated_at) values
('+250788500001', '2020-01-01', '2020-01-01'),
('+250788500002', '2020-01-01', '2020-01-01');
insert into public.conversation_mappings (wa_id, created_at, updated_at) values
('250788500001', '2020-01-01', '2020-01-01'),
('250788500002', '2020-01-01', '2020-01-01');

update public.whatsapp_sessions set metadata = '{"touched": true}'
where phone_number = '+250788500001';
select is(
    (select updated_at from public.whatsapp_sessions where phone_number = '+250788500001'),
    now(),
    'an update of a whatsapp session sets its updated_at to now'
);
update public.whatsapp_sessions set metadata = '{"touched": true}', updated_at = '2001-01-01'
where phone_number = '+250788500002';
select is(
    (select updated_at from public.whatsapp_sessions where phone_number = '+250788500002'),
    now(),
    'an update that writes updated_at of a whatsapp session still gets now'
);
update public.conversation_mappings set metadata = '{"touched": true}'
where wa_id = '250788500001';
select is(
    (select updated_at from public.conversation_mappings where wa_id = '250788500001'),
    now(),
    'an update of a conversation mapping sets its updated_at to now'
);
update public.conversation_mappings set metadata = '{"touched": true}', updated_at = '2001-01-01'
where wa_id = '250788500002';
select is(
    (select updated_at from public.conversation_mappings where wa_id = '250788500002'),
    now(),
    'an update that writes updated_at of a conversation mapping still gets now'
);

-- Who reads whatsapp_sessions and conversation_mappings -------------------------------------------

delete from public.whatsapp_sessions;
delete from public.conversation_mappings;
insert into public.whatsapp_sessions (phone_number, user_id) values
('+250788600001', '11111111-1111-4111-8111-111111111111'),
('+250788600002', '22222222-2222-4222-8222-222222222222'),
('+250788600003', null);
insert into public.conversation_mappings (wa_id, user_id, status) values
('250788600001', '11111111-1111-4111-8111-111111111111', 'active'),
('250788600001', '11111111-1111-4111-8111-111111111111', 'closed'),
('250788600002', '22222222-2222-4222-8222-222222222222', 'active'),
('250788600003', null, 'active');

select table_privs_are(
    'public', 'whatsapp_sessions', 'anon', array[]::name[],
    'anon has no privilege on whatsapp_sessions'
);
select table_privs_are(
    'public', 'whatsapp_sessions', 'authenticated', array['SELECT'],
    'authenticated may only select from whatsapp_sessions'
);
select table_privs_are(
    'public', 'conversation_mappings', 'anon', array[]::name[],
    'anon has no privilege on conversation_mappings'
);
select table_privs_are(
    'public', 'conversation_mappings', 'authenticated', array['SELECT'],
    'authenticated may only select from conversation_mappings'
);

select lives_ok(
    $$select tests.as_caller(
        'authenticated',
        '{"sub": "11111111-1111-4111-8111-111111111111", "role": "authenticated"}',
        'insert into pg_temp.visible select ''owner sessions'', id from public.whatsapp_sessions;'
        'insert into pg_temp.visible'
        ' select ''owner mappings'', id from public.conversation_mappings'
    )$$,
    'an authenticated user reads whatsapp_sessions and conversation_mappings'
);
select results_eq(
    $$select s.phone_number
        from pg_temp.visible as v join public.whatsapp_sessions as s on s.id = v.id
       where v.note = 'owner sessions'$$,
    $$values ('+250788600001')$$,
    'the user sees exactly their own whatsapp session'
);
select results_eq(
    $$select m.wa_id, m.status
        from pg_temp.visible as v join public.conversation_mappings as m on m.id = v.id
       where v.note = 'owner mappings'
       order by m.status$$,
    $$values ('250788600001', 'active'), ('250788600001', 'closed')$$,
    'the user sees exactly their own conversations, closed ones included'
);
select lives_ok(
    $$select tests.as_caller(
        'authenticated',
        '{"sub": "33333333-3333-4333-8333-333333333333", "role": "authenticated"}',
        'insert into pg_temp.seen select ''stranger sessions'', count(*)'
        ' from public.whatsapp_sessions;'
        'insert into pg_temp.seen select ''stranger mappings'', count(*)'
        ' from public.conversation_mappings'
    )$$,
    'an authenticated user with no session reads both tables'
);
select is(
    pg_temp.seen('stranger sessions'), 0::bigint,
    'a user with no session sees no whatsapp session'
);
select is(
    pg_temp.seen('stranger mappings'), 0::bigint,
    'a user with no conversation sees no conversation'
);
select throws_ok(
    $$select tests.as_caller(
        'authenticated',
        '{"sub": "11111111-1111-4111-8111-111111111111", "role": "authenticated"}',
        'update public.whatsapp_sessions set status = ''suspended'''
    )$$,
    '42501',
    'permission denied for table whatsapp_sessions',
    'authenticated may not update whatsapp_sessions, not even their own'
);
select throws_ok(
    $$select tests.as_caller(
        'authenticated',
        '{"sub": "11111111-1111-4111-8111-111111111111", "role": "authenticated"}',
        'update public.conversation_mappings set conversation_id = ''forged'''
    )$$,
    '42501',
    'permission denied for table conversation_mappings',
    'authenticated may not update conversation_mappings, not even their own'
);
select throws_ok(
    $$select tests.as_caller(
        'anon', '{"role": "anon"}', 'select count(*) from public.whatsapp_sessions'
    )$$,
    '42501',
    'permission denied for table whatsapp_sessions',
    'anon reading whatsapp_sessions is refused'
);
select throws_ok(
    $$select tests.as_caller(
        'anon', '{"role": "anon"}', 'select count(*) from public.conversation_mappings'
    )$$,
    '42501',
    'permission denied for table conversation_mappings',
    'anon reading conversation_mappings is refused'
);
select lives_ok(
    $$select tests.as_caller(
        'service_role',
        '{"role": "service_role"}',
        'insert into pg_temp.seen select ''service sessions'', count(*)'
        ' from public.whatsapp_sessions;'
        'insert into pg_temp.seen select ''service mappings'', count(*)'
        ' from public.conversation_mappings'
    )$$,
    'service_role reads both tables'
);
select is(
    pg_temp.seen('service sessions'), 3::bigint,
    'service_role sees every whatsapp session'
);
select is(
    pg_temp.seen('service mappings'), 4::bigint,
    'service_role sees every conversation'
);

-- monitoring.whatsapp_session_stats ---------------------------------------------------------------

-- Known sessions only (the transaction is rolled back): two active, one inactive.
delete from public.whatsapp_sessions;
insert into public.whatsapp_sessions (
    phone_number, status, last_message_at, message_count, error_count, last_heartbeat_at
)
values
('+250788200001', 'active', now() - interval '10 minutes', 40, 2, now() - interval '30 seconds'),
('+250788200002', 'active', now() - interval '3 hours', 60, 3, now() - interval '90 seconds'),
('+250788200003', 'inactive', now() - interval '3 days', 5, 0, null);
create temp table session_stats as
select * from monitoring.whatsapp_session_stats with no data;
grant insert on pg_temp.session_stats to analyst;
select lives_ok(
    $$select tests.as_role(
        'analyst',
        'insert into pg_temp.session_stats select * from monitoring.whatsapp_session_stats'
    )$$,
    'analyst reads whatsapp_session_stats'
);
select results_eq(
    $$select status, sessions, active_last_hour, active_last_day, messages, errors, error_rate,
            round(oldest_heartbeat_age_s)::numeric
        from pg_temp.session_stats order by status$$,
    $$values ('active'::text, 2::bigint, 1::bigint, 2::bigint, 100::bigint, 5::bigint,
              0.0500::numeric, 90::numeric),
             ('inactive', 1, 0, 0, 5, 0, 0.0000, null)$$,
    'per status: sessions, active in the last hour and day, messages, errors, error rate and '
    || 'the oldest heartbeat''s age'
);
select throws_ok(
    $$select tests.as_role('analyst', 'select * from public.whatsapp_sessions')$$,
    '42501', null, 'analyst reads the view, not the table behind it'
);

select * from finish();
rollback;
