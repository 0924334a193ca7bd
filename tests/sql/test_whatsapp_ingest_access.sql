-- Who may call ingest_whatsapp_webhook and read or change what it writes: anon, the owner, a
-- stranger and service_role (RLS of users, user_preferences, message_tracking,
-- whatsapp_sessions and conversation_mappings), and the tables' constraints. Runs on the
-- story of the meta, identity and statuses files.
-- Runs as postgres on a fresh clone, in one transaction: now() is constant, and the provider
-- timestamps are fixed (1767225600 is 2026-01-01 00:00:00 UTC). The helpers and the payloads
-- of the story are tests/sql/fixtures/whatsapp_ingest.sql.
begin;
select plan(37);

call tests.fixture('whatsapp_ingest');
call pg_temp.story_batch();
call pg_temp.story_later();
call pg_temp.story_conversations();
call pg_temp.story_statuses();

-- Privileges ------------------------------------------------------------------------------------

select throws_ok(
    $$select tests.as_caller(
        'anon', '{"role": "anon"}',
        'select public.ingest_whatsapp_webhook(''meta'', (select body from pg_temp.payload '
        'where name = ''batch''))'
    )$$,
    '42501',
    'permission denied for function ingest_whatsapp_webhook',
    'anon cannot call ingest_whatsapp_webhook'
);
select throws_ok(
    $$select tests.as_caller(
        'authenticated', pg_temp.claims('alice'),
        'select public.ingest_whatsapp_webhook(''meta'', (select body from pg_temp.payload '
        'where name = ''batch''))'
    )$$,
    '42501',
    'permission denied for function ingest_whatsapp_webhook',
    'authenticated cannot call ingest_whatsapp_webhook'
);
insert into pg_temp.payload (name, body) values ('service-role', pg_temp.meta(jsonb_build_object(
    'messages', jsonb_build_array(
        tests.meta_text('250788000004', 'wamid.D04', '1767227100', 'via the service role')
    )
)));
select lives_ok(
    $$select tests.as_caller(
        'service_role', '{"role": "service_role"}',
        'select public.ingest_whatsapp_webhook(''meta'', (select body from pg_temp.payload '
        'where name = ''service-role''), ''corr-sr'')'
    )$$,
    'service_role calls ingest_whatsapp_webhook'
);
select results_eq(
    $$select user_id, correlation_id from public.message_tracking where wamid = 'wamid.D04'$$,
    $$values (pg_temp.uid('dan'), 'corr-sr')$$,
    'service_role''s call stored the message'
);

-- RLS -------------------------------------------------------------------------------------------

select lives_ok(
    $$select tests.as_caller('authenticated', pg_temp.claims('alice'), '
        insert into pg_temp.visible (note, id)
        select ''owner users'', id::text from public.users
        union all select ''owner preferences'', user_id::text from public.user_preferences
        union all select ''owner messages'', id::text from public.message_tracking
        union all select ''owner sessions'', id::text from public.whatsapp_sessions
        union all select ''owner mappings'', id::text from public.conversation_mappings
    ')$$,
    'an authenticated user reads users, preferences, messages, sessions and conversations'
);
select set_eq(
    $$select id from pg_temp.visible where note = 'owner users'$$,
    $$values (pg_temp.uid('alice')::text)$$,
    'the owner sees her own users row only'
);
select set_eq(
    $$select id from pg_temp.visible where note = 'owner preferences'$$,
    $$values (pg_temp.uid('alice')::text)$$,
    'the owner sees her own preferences only'
);
select set_eq(
    $$select id from pg_temp.visible where note = 'owner messages'$$,
    $$select id::text from public.message_tracking where user_id = pg_temp.uid('alice')$$,
    'the owner sees exactly her own messages, in and out'
);
select set_eq(
    $$select id from pg_temp.visible where note = 'owner sessions'$$,
    $$select id::text from public.whatsapp_sessions where user_id = pg_temp.uid('alice')$$,
    'the owner sees her own session only'
);
select set_eq(
    $$select id from pg_temp.visible where note = 'owner mappings'$$,
    $$select id::text from public.conversation_mappings where user_id = pg_temp.uid('alice')$$,
    'the owner sees her own conversations, the closed one too'
);

select lives_ok(
    $$select tests.as_caller('authenticated', pg_temp.claims('stranger'), '
        insert into pg_temp.visible (note, id)
        select ''stranger'', id::text from public.users
        union all select ''stranger'', user_id::text from public.user_preferences
        union all select ''stranger'', id::text from public.message_tracking
        union all select ''stranger'', id::text from public.whatsapp_sessions
        union all select ''stranger'', id::text from public.conversation_mappings
    ')$$,
    'an authenticated stranger (a uuid that is no user) reads the five tables'
);
select is_empty(
    $$select id from pg_temp.visible where note = 'stranger'$$,
    'a stranger sees no users, preferences, messages, sessions or conversations'
);

-- anon: the foundation migration removed Supabase's default grants to anon and these tables grant
-- it nothing, so Postgres refuses the read itself (42501) before any policy.
select throws_ok(
    $$select tests.as_caller('anon', '{"role": "anon"}', 'select count(*) from public.users')$$,
    '42501', 'permission denied for table users',
    'anon cannot read users'
);
select throws_ok(
    $$select tests.as_caller(
        'anon', '{"role": "anon"}', 'select count(*) from public.user_preferences'
    )$$,
    '42501', 'permission denied for table user_preferences',
    'anon cannot read user_preferences'
);
select throws_ok(
    $$select tests.as_caller(
        'anon', '{"role": "anon"}', 'select count(*) from public.message_tracking'
    )$$,
    '42501', 'permission denied for table message_tracking',
    'anon cannot read message_tracking'
);
select throws_ok(
    $$select tests.as_caller(
        'anon', '{"role": "anon"}', 'select count(*) from public.whatsapp_sessions'
    )$$,
    '42501', 'permission denied for table whatsapp_sessions',
    'anon cannot read whatsapp_sessions'
);
select throws_ok(
    $$select tests.as_caller(
        'anon', '{"role": "anon"}', 'select count(*) from public.conversation_mappings'
    )$$,
    '42501', 'permission denied for table conversation_mappings',
    'anon cannot read conversation_mappings'
);

select lives_ok(
    $$select tests.as_caller('service_role', '{"role": "service_role"}', '
        insert into pg_temp.seen (note, n)
        select ''service users'', count(*) from public.users
        union all select ''service preferences'', count(*) from public.user_preferences
        union all select ''service messages'', count(*) from public.message_tracking
        union all select ''service sessions'', count(*) from public.whatsapp_sessions
        union all select ''service mappings'', count(*) from public.conversation_mappings
    ')$$,
    'service_role reads the five tables'
);
select results_eq(
    $$select pg_temp.seen('service users'), pg_temp.seen('service preferences'),
             pg_temp.seen('service messages'), pg_temp.seen('service sessions'),
             pg_temp.seen('service mappings')$$,
    $$select (select count(*) from public.users), (select count(*) from public.user_preferences),
             (select count(*) from public.message_tracking),
             (select count(*) from public.whatsapp_sessions),
             (select count(*) from public.conversation_mappings)$$,
    'service_role sees every row of the five tables'
);

-- What a user may change of their own.
select lives_ok(
    $$select tests.as_caller('authenticated', pg_temp.claims('alice'),
        'update public.users set display_name = ''Alice M.'' where id = '
        '(select id from pg_temp.ids where name = ''alice'')')$$,
    'the owner updates her display name'
);
select is(
    (select display_name from public.users where id = pg_temp.uid('alice')),
    'Alice M.',
    'the owner''s new display name is stored'
);
select lives_ok(
    $$select tests.as_caller('authenticated', pg_temp.claims('alice'),
        'update public.user_preferences set language = ''rw-RW'', notification_enabled = false '
        'where user_id = (select id from pg_temp.ids where name = ''alice'')')$$,
    'the owner updates her preferences'
);
select results_eq(
    $$select language, notification_enabled from public.user_preferences
      where user_id = pg_temp.uid('alice')$$,
    $$values ('rw-RW', false)$$,
    'the owner''s new preferences are stored'
);
select throws_ok(
    $$select tests.as_caller('authenticated', pg_temp.claims('alice'),
        'update public.users set verified_at = now() '
        'where id = (select id from pg_temp.ids where name = ''alice'')')$$,
    '42501', 'permission denied for table users',
    'the owner cannot mark herself verified'
);
select throws_ok(
    $$select tests.as_caller('authenticated', pg_temp.claims('alice'),
        'update public.users set blocked_at = null, block_reason = null '
        'where id = (select id from pg_temp.ids where name = ''alice'')')$$,
    '42501', 'permission denied for table users',
    'the owner cannot change blocked_at'
);
select throws_ok(
    $$select tests.as_caller('authenticated', pg_temp.claims('alice'),
        'update public.users set phone_number = ''+250788000077'' '
        'where id = (select id from pg_temp.ids where name = ''alice'')')$$,
    '42501', 'permission denied for table users',
    'the owner cannot change her phone number'
);
select lives_ok(
    $$select tests.as_caller('authenticated', pg_temp.claims('alice'), '
        with changed as (
            update public.users set display_name = ''Mallory''
            where id = (select id from pg_temp.ids where name = ''bob'')
            returning 1
        )
        insert into pg_temp.seen (note, n) select ''alice updates bob'', count(*) from changed
    ')$$,
    'the owner attempts to rename another user'
);
select is(
    pg_temp.seen('alice updates bob'), 0::bigint,
    'updating another user''s row changes no row'
);
select lives_ok(
    $$select tests.as_caller('authenticated', pg_temp.claims('alice'), '
        with changed as (
            update public.user_preferences set notification_enabled = false
            where user_id = (select id from pg_temp.ids where name = ''bob'')
            returning 1
        )
        insert into pg_temp.seen (note, n)
        select ''alice updates bob preferences'', count(*) from changed
    ')$$,
    'the owner attempts to change another user''s preferences'
);
select results_eq(
    $$select pg_temp.seen('alice updates bob preferences'),
             (select u.display_name from public.users as u where u.id = pg_temp.uid('bob')),
             (
                 select p.notification_enabled from public.user_preferences as p
                 where p.user_id = pg_temp.uid('bob')
             )$$,
    $$values (0::bigint, 'Bob', true)$$,
    'another user''s name and preferences are left as they were'
);

-- Constraints -----------------------------------------------------------------------------------

select throws_ok(
    $$insert into public.users (phone_number) values ('250788000099')$$,
    '23514',
    'new row for relation "users" violates check constraint "users_phone_number_e164"',
    'a phone number without + is refused'
);
select throws_ok(
    $$insert into public.users (phone_number) values ('+0788000099')$$,
    '23514',
    'new row for relation "users" violates check constraint "users_phone_number_e164"',
    'a phone number whose country code starts with 0 is refused'
);
select throws_ok(
    $$update public.user_preferences set language = 'English'
      where user_id = pg_temp.uid('bob')$$,
    '23514',
    'new row for relation "user_preferences" violates check constraint '
    || '"user_preferences_language_tag"',
    'a language that is not a BCP 47 tag is refused'
);
select throws_ok(
    $$insert into public.message_tracking (wamid, direction, message_type, status)
      values ('wamid.BAD-1', 'SIDEWAYS', 'text', 'received')$$,
    '23514',
    'new row for relation "message_tracking" violates check constraint '
    || '"message_tracking_direction_known"',
    'a direction other than INBOUND or OUTBOUND is refused'
);
select throws_ok(
    $$insert into public.message_tracking (wamid, direction, message_type, status)
      values ('wamid.BAD-2', 'OUTBOUND', 'text', 'lost')$$,
    '23514',
    'new row for relation "message_tracking" violates check constraint '
    || '"message_tracking_status_known"',
    'an unknown status is refused'
);
select throws_ok(
    $$insert into public.message_tracking (wamid, direction, message_type, status)
      values ('wamid.BAD-3', 'OUTBOUND', 'hologram', 'accepted')$$,
    '23514',
    'new row for relation "message_tracking" violates check constraint '
    || '"message_tracking_type_known"',
    'an unknown message type is refused'
);
select throws_ok(
    $$insert into public.conversation_mappings (wa_id, status) values ('250788000002', 'active')$$,
    '23505',
    'duplicate key value violates unique constraint "conversation_mappings_one_active"',
    'a second active conversation for a wa_id is refused'
);

select * from finish();
rollback;
