-- Webhook dead letters (supabase/functions-sql/*_whatsapp_dead_letters.sql, the ingest in
-- whatsapp_ingest, migration 20261207120000_whatsapp_dead_letters.sql): what a signed webhook
-- carried that cannot be stored is kept whole, the rest of the batch is stored, and an operator
-- lists, retries after a fix, or discards it. Runs as postgres on a fresh clone in one
-- transaction.
begin;
select plan(75);

create temp table seen (note text primary key, n bigint, result jsonb);
grant select, insert on pg_temp.seen to anon, authenticated, service_role;
create function pg_temp.seen(p_note text)
returns bigint
language sql
as $$ select n from pg_temp.seen where note = p_note $$;

-- A Meta webhook of these messages, one change to the business number, with their contacts.
create function pg_temp.meta(variadic p_messages jsonb [])
returns jsonb
language sql
as $$
    select jsonb_build_object(
        'object', 'whatsapp_business_account',
        'entry', jsonb_build_array(jsonb_build_object(
            'id', 'WABA1',
            'changes', jsonb_build_array(jsonb_build_object(
                'field', 'messages',
                'value', jsonb_build_object(
                    'messaging_product', 'whatsapp',
                    'metadata', jsonb_build_object(
                        'display_phone_number', '15550001111', 'phone_number_id', 'PN1'
                    ),
                    'contacts', (
                        select jsonb_agg(jsonb_build_object(
                            'wa_id', m ->> 'from', 'profile', jsonb_build_object('name', 'Nia')
                        ))
                        from unnest(p_messages) as m
                    ),
                    'messages', to_jsonb(p_messages)
                )
            ))
        ))
    )
$$;

create function pg_temp.letter(p_wamid text)
returns private.whatsapp_dead_letters
language sql
as $$ select d.* from private.whatsapp_dead_letters as d where d.wamid = p_wamid $$;

-- The ingest sets aside what cannot be stored ---------------------------------------------------

select is(
    public.ingest_whatsapp_webhook('meta', pg_temp.meta(
        tests.meta_text('250788300001', 'wamid.DL-OK', '1767225600', 'fine'),
        tests.meta_text('250788300002', repeat('w', 300), '1767225600', 'long id'),
        tests.meta_text('not-a-phone', 'wamid.DL-NOPHONE', '1767225600', 'who'),
        tests.meta_text('250788300003', 'wamid.DL-MEDIA', '1767225600', 'x')
        || '{"type": "image", "image": "not an object"}'
    ), 'corr-dl-1') - array['duplicates', 'statuses_applied', 'statuses_ignored',
        'statuses_pending'],
    '{"messages_stored": 1, "dead_lettered": 3}'::jsonb,
    'a batch of one good message and three that cannot be stored: one stored, three set aside'
);
select results_eq(
    $$select kind, reason, detail, sqlstate, wamid, contact, correlation_id, times_seen
      from private.whatsapp_dead_letters order by wamid nulls first$$,
    $$values
        ('message', 'invalid_payload', 'the message id is longer than 255 characters', '22023',
         null::text, '+250788300002', 'corr-dl-1', 1),
        ('message', 'invalid_payload', 'the media of a image message is not an object', '22023',
         'wamid.DL-MEDIA', '+250788300003', 'corr-dl-1', 1),
        ('message', 'invalid_payload',
         'the sender is not a phone number and the message has no from_user_id', '22023',
         'wamid.DL-NOPHONE', 'not-a-phone', 'corr-dl-1', 1)$$,
    'each is kept with its reason, SQLSTATE, wamid (when it is one), sender and correlation id'
);
select is(
    (pg_temp.letter('wamid.DL-NOPHONE')).raw,
    jsonb_build_object(
        'messaging_product', 'whatsapp',
        'metadata', '{"display_phone_number": "15550001111", "phone_number_id": "PN1"}'::jsonb,
        'contacts', '[{"wa_id": "not-a-phone", "profile": {"name": "Nia"}}]'::jsonb,
        'messages', jsonb_build_array(
            tests.meta_text('not-a-phone', 'wamid.DL-NOPHONE', '1767225600', 'who')
        )
    ),
    'a message is kept whole, in its change value with the metadata and its contact entry'
);
select results_eq(
    $$select value, tags from public.system_metrics where metric_name = 'items.dead_lettered'$$,
    $$values (3::double precision, '{"provider": "meta"}'::jsonb)$$,
    'the ingest counts what it set aside in system_metrics'
);
select is_empty(
    $$select from public.message_tracking where wamid in ('wamid.DL-NOPHONE', 'wamid.DL-MEDIA')
      union all
      select from public.conversation_mappings where wa_id = 'not-a-phone'
      union all
      select from public.whatsapp_sessions where phone_number is null and wa_user_id is null$$,
    'nothing of them is stored: no message, no conversation for "not-a-phone"'
);
select is(
    public.ingest_whatsapp_webhook('meta', pg_temp.meta(
        tests.meta_text('not-a-phone', 'wamid.DL-NOPHONE', '1767225600', 'who')
    )) ->> 'dead_lettered',
    '1',
    'the same message delivered again is set aside again'
);
select results_eq(
    $$select count(*), sum(times_seen) from private.whatsapp_dead_letters$$,
    $$values (3::bigint, 4::bigint)$$,
    '... as the same letter, seen twice'
);

-- A time that cannot be read is no reason to refuse a message: it is kept as it came.
select is(
    public.ingest_whatsapp_webhook('meta', pg_temp.meta(
        tests.meta_text('250788300004', 'wamid.DL-T1', 'yesterday', 'a'),
        tests.meta_text('250788300004', 'wamid.DL-T2', '-5', 'b'),
        tests.meta_text('250788300004', 'wamid.DL-T3', '99999999999999', 'c'),
        tests.meta_text('250788300004', 'wamid.DL-T4', '99999999999', 'd')
    )) ->> 'messages_stored',
    '4',
    'messages whose times cannot be read are stored'
);
select results_eq(
    $$select provider_timestamp, metadata ->> 'provider_timestamp_raw'
      from public.message_tracking where wamid like 'wamid.DL-T_' order by wamid$$,
    $$values (null::timestamptz, 'yesterday'), (null, '-5'), (null, '99999999999999'),
             (null, '99999999999')$$,
    'each keeps its raw time on the row; a time past 2100 is not read as one'
);

-- A refusal no check foresaw: the batch is stored message by message, and only the refused
-- one is set aside, with what the database said.
alter table public.message_tracking add constraint dl_boom check (body is distinct from 'boom');
select is(
    public.ingest_whatsapp_webhook('meta', pg_temp.meta(
        tests.meta_text('250788300005', 'wamid.DL-B1', '1767225600', 'before'),
        tests.meta_text('250788300005', 'wamid.DL-BOOM', '1767225660', 'boom'),
        tests.meta_text('250788300006', 'wamid.DL-B2', '1767225720', 'after')
    ), 'corr-boom') - array['duplicates', 'statuses_applied', 'statuses_ignored',
        'statuses_pending'],
    '{"messages_stored": 2, "dead_lettered": 1}'::jsonb,
    'a message a constraint refuses is set aside; the two beside it are stored'
);
select results_eq(
    $$select reason, sqlstate, detail ~ 'dl_boom' from private.whatsapp_dead_letters
      where wamid = 'wamid.DL-BOOM'$$,
    $$values ('database_error', '23514', true)$$,
    'it is kept as a database_error with the SQLSTATE and the message the database gave'
);
select results_eq(
    $$select wamid from public.message_tracking where wamid like 'wamid.DL-B_' order by wamid$$,
    $$values ('wamid.DL-B1'), ('wamid.DL-B2')$$,
    'the other two are stored'
);
insert into pg_temp.seen (note, n) values ('boom', (pg_temp.letter('wamid.DL-BOOM')).id);

-- Retry -----------------------------------------------------------------------------------------

select is(
    public.retry_whatsapp_dead_letter(pg_temp.seen('boom'))
    - array['id', 'detail'],
    '{"outcome": "failed", "resolution": null, "sqlstate": "23514", "retry_count": 1,
      "dead_lettered": 0}'::jsonb,
    'a retry before the fix fails: the letter stays open, counted'
);
alter table public.message_tracking drop constraint dl_boom;
select is(
    public.retry_whatsapp_dead_letter(pg_temp.seen('boom')) - array['id', 'detail', 'sqlstate'],
    '{"outcome": "stored", "resolution": "stored", "retry_count": 2, "dead_lettered": 0}'::jsonb,
    'after the fix the retry stores it'
);
select results_eq(
    $$select body, correlation_id from public.message_tracking where wamid = 'wamid.DL-BOOM'$$,
    $$values ('boom'::text, 'corr-boom'::text)$$,
    'the message is stored as it came, with the correlation id of its delivery'
);
select results_eq(
    $$select resolution, resolved_at is not null from private.whatsapp_dead_letters
      where id = pg_temp.seen('boom')$$,
    $$values ('stored'::text, true)$$,
    'the letter is resolved'
);
select is(
    public.retry_whatsapp_dead_letter(pg_temp.seen('boom')) ->> 'outcome',
    'already_resolved',
    'retrying a resolved letter does nothing'
);
select is(
    (select count(*) from public.message_tracking where wamid = 'wamid.DL-BOOM'),
    1::bigint,
    '... and stores nothing twice'
);
select results_eq(
    $$select action::text, resource_id::text, metadata ->> 'outcome' from public.system_audit_logs
      where action = 'whatsapp_dead_letter.retried' order by created_at, id$$,
    format('values (%L, %L, %L), (%L, %L, %L)',
        'whatsapp_dead_letter.retried', pg_temp.seen('boom'), 'failed',
        'whatsapp_dead_letter.retried', pg_temp.seen('boom'), 'stored'),
    'each retry is audited with its outcome'
);

-- A message that was stored meanwhile (Meta delivered it again after a fix) is a duplicate.
insert into pg_temp.seen (note, n) values (
    'dup',
    private.dead_letter_whatsapp(
        'meta', 'message', 'database_error', 'lost', '23514',
        jsonb_build_object('messages', jsonb_build_array(
            tests.meta_text('250788300005', 'wamid.DL-B1', '1767225600', 'before')
        )),
        null, 'wamid.DL-B1', '250788300005', null
    )
);
select is(
    public.retry_whatsapp_dead_letter(pg_temp.seen('dup')) ->> 'outcome',
    'duplicate',
    'a letter whose message is stored meanwhile resolves as a duplicate'
);
select is(
    (public.retry_whatsapp_dead_letter((pg_temp.letter('wamid.DL-NOPHONE')).id)) - array['id'],
    '{"outcome": "failed", "resolution": null, "retry_count": 1, "sqlstate": "22023",
      "detail": "the sender is not a phone number and the message has no from_user_id",
      "dead_lettered": 0}'::jsonb,
    'a message that still cannot be stored fails again, and is not set aside a second time'
);
select is(
    (select count(*) from private.whatsapp_dead_letters where wamid = 'wamid.DL-NOPHONE'),
    1::bigint,
    '... one letter still'
);
select throws_ok(
    $$select public.retry_whatsapp_dead_letter(null)$$,
    '22023',
    'retry_whatsapp_dead_letter: p_id must be a dead letter id',
    'retry: a null id is refused'
);
select throws_ok(
    $$select public.retry_whatsapp_dead_letter(-1)$$,
    'PT404',
    'retry_whatsapp_dead_letter: no dead letter -1',
    'retry: an unknown id is PT404'
);

-- A body that could not be ingested at all ------------------------------------------------------

select is(
    public.dead_letter_whatsapp_webhook(
        'meta', '\xfffe7b7d'::bytea, 'The body is not JSON', null, 'corr-body'
    ) ? 'dead_letter_id',
    true,
    'a body that is not UTF-8 is kept'
);
insert into pg_temp.seen (note, n)
select 'bytes', id from private.whatsapp_dead_letters where correlation_id = 'corr-body';
select results_eq(
    $$select kind, reason, raw, raw_body, detail from private.whatsapp_dead_letters
      where id = pg_temp.seen('bytes')$$,
    $$values ('payload', 'invalid_payload', null::jsonb, '\xfffe7b7d'::bytea,
              'The body is not JSON')$$,
    '... as the bytes that were signed'
);
select is(
    (public.dead_letter_whatsapp_webhook('meta', '\xfffe7b7d'::bytea, 'The body is not JSON')
    ->> 'dead_letter_id')::bigint,
    pg_temp.seen('bytes'),
    'the same body again is the same letter'
);
select is(
    public.retry_whatsapp_dead_letter(pg_temp.seen('bytes')) - array['id', 'detail'],
    '{"outcome": "failed", "resolution": null, "sqlstate": "22021", "retry_count": 1,
      "dead_lettered": 0}'::jsonb,
    'a retry of bytes that are still not JSON fails with the reason'
);
insert into pg_temp.seen (note, n) values (
    'json body',
    (public.dead_letter_whatsapp_webhook(
        'meta',
        convert_to(pg_temp.meta(
            tests.meta_text('250788300007', 'wamid.DL-J1', '1767225600', 'kept'),
            tests.meta_text('not-a-phone-2', 'wamid.DL-J2', '1767225600', 'again')
        )::text, 'UTF8'),
        'The database could not ingest it',
        '22003'
    ) ->> 'dead_letter_id')::bigint
);
select results_eq(
    $$select raw ->> 'object', raw_body from private.whatsapp_dead_letters
      where id = pg_temp.seen('json body')$$,
    $$values ('whatsapp_business_account'::text, null::bytea)$$,
    'a body that is JSON Postgres can hold is kept as JSON'
);
select is(
    public.retry_whatsapp_dead_letter(pg_temp.seen('json body')) - array['id', 'detail'],
    '{"outcome": "stored", "resolution": "stored", "sqlstate": "22003", "retry_count": 1,
      "dead_lettered": 1}'::jsonb,
    'a kept body retried after a fix is ingested and resolved; what in it still fails is counted'
);
select results_eq(
    $$select (select count(*) from public.message_tracking where wamid = 'wamid.DL-J1'),
             (select count(*) from private.whatsapp_dead_letters
              where wamid = 'wamid.DL-J2' and resolution is null)$$,
    $$values (1::bigint, 1::bigint)$$,
    '... its good message stored, the one that still cannot be stored a letter of its own'
);
select throws_ok(
    $$select public.dead_letter_whatsapp_webhook('sms', '\x00'::bytea, 'x')$$,
    '22023',
    'dead_letter_whatsapp_webhook: p_provider must be meta or twilio (got ''sms'')',
    'dead_letter_whatsapp_webhook: an unknown provider is refused'
);
select throws_ok(
    $$select public.dead_letter_whatsapp_webhook('meta', null, 'x')$$,
    '22023',
    'dead_letter_whatsapp_webhook: p_body must be a body of at most 8 MiB',
    'a null body is refused'
);
select throws_ok(
    $$select public.dead_letter_whatsapp_webhook(
        'meta', convert_to(repeat('x', 8388609), 'UTF8'), 'x'
    )$$,
    '22023',
    'dead_letter_whatsapp_webhook: p_body must be a body of at most 8 MiB',
    'a body over 8 MiB is refused'
);
select throws_ok(
    $$select public.dead_letter_whatsapp_webhook('meta', '\x00'::bytea, '')$$,
    '22023',
    'dead_letter_whatsapp_webhook: p_detail must be 1 to 2000 characters',
    'an empty detail is refused'
);
select throws_ok(
    $$select public.dead_letter_whatsapp_webhook('meta', '\x00'::bytea, repeat('d', 2001))$$,
    '22023',
    'dead_letter_whatsapp_webhook: p_detail must be 1 to 2000 characters',
    'a detail over 2000 characters is refused'
);
select throws_ok(
    $$select public.dead_letter_whatsapp_webhook('meta', '\x00'::bytea, 'x', 'oops')$$,
    '22023',
    'dead_letter_whatsapp_webhook: p_sqlstate must be null or a SQLSTATE',
    'a SQLSTATE that is not one is refused'
);
select throws_ok(
    $$select public.dead_letter_whatsapp_webhook('meta', '\x00'::bytea, 'x', null, repeat('c', 201))$$,
    '22023',
    'dead_letter_whatsapp_webhook: p_correlation_id must be null or 1 to 200 characters',
    'a correlation id over 200 characters is refused'
);

-- A kept body that is not a webhook at all, or carries nothing, is not "stored" by a retry.
insert into pg_temp.seen (note, n) values
(
    'page',
    (public.dead_letter_whatsapp_webhook(
        'meta', convert_to('{"object": "page", "entry": []}', 'UTF8'), 'not ours'
    ) ->> 'dead_letter_id')::bigint
),
(
    'empty',
    (public.dead_letter_whatsapp_webhook(
        'meta', convert_to('{"object": "whatsapp_business_account", "entry": []}', 'UTF8'), 'e'
    ) ->> 'dead_letter_id')::bigint
);
select is(
    public.retry_whatsapp_dead_letter(pg_temp.seen('page')) - array['id', 'retry_count'],
    '{"outcome": "failed", "resolution": null, "sqlstate": "22023", "dead_lettered": 0,
      "detail": "ingest_whatsapp_webhook: a Meta payload''s object must be whatsapp_business_account (got ''page'')"}'::jsonb,
    'a retried body about another object fails with the ingest''s own refusal'
);
select is(
    public.retry_whatsapp_dead_letter(pg_temp.seen('empty')) - array['id', 'retry_count'],
    '{"outcome": "failed", "resolution": null, "sqlstate": "22023", "dead_lettered": 0,
      "detail": "it carries no message and no status"}'::jsonb,
    'a retried body with nothing in it fails: it is never resolved as stored'
);

-- A status whose time cannot be read is applied at the database's time; the provider's stays.
insert into public.message_tracking (wamid, direction, provider, message_type, status)
values ('wamid.DL-OUT', 'OUTBOUND', 'meta', 'text', 'accepted');
select is(
    public.ingest_whatsapp_webhook('meta', jsonb_build_object(
        'object', 'whatsapp_business_account',
        'entry', jsonb_build_array(jsonb_build_object('id', 'W', 'changes', jsonb_build_array(
            jsonb_build_object('field', 'messages', 'value', jsonb_build_object(
                'statuses', jsonb_build_array(jsonb_build_object(
                    'id', 'wamid.DL-OUT', 'status', 'sent', 'timestamp', 'soon',
                    'recipient_id', '250788300009'
                ))
            ))
        )))
    )) ->> 'statuses_applied',
    '1',
    'a status with an unreadable time is applied'
);
select results_eq(
    $$select status, sent_at = now(), metadata -> 'status_timestamps_raw'
      from public.message_tracking where wamid = 'wamid.DL-OUT'$$,
    $$values ('sent'::text, true, '{"sent": "soon"}'::jsonb)$$,
    '... at the database''s time, with the provider''s raw time kept on the row'
);

-- Two refusals in a batch of 40: halves are tried until only the two are set aside.
alter table public.message_tracking add constraint dl_bang check (body is distinct from 'bang');
select is(
    public.ingest_whatsapp_webhook('meta', (
        select pg_temp.meta(variadic array_agg(tests.meta_text(
            '2507883100' || lpad(g::text, 2, '0'), 'wamid.DL-H' || g, '1767225600',
            case when g in (7, 31) then 'bang' else 'fine ' || g end
        ) order by g))
        from generate_series(1, 40) as g
    )) - array['duplicates', 'statuses_applied', 'statuses_ignored', 'statuses_pending'],
    '{"messages_stored": 38, "dead_lettered": 2}'::jsonb,
    'two refused messages among 40: 38 stored, 2 set aside'
);
select results_eq(
    $$select wamid, sqlstate from private.whatsapp_dead_letters where wamid like 'wamid.DL-H%'
      order by wamid$$,
    $$values ('wamid.DL-H31'::text, '23514'::text), ('wamid.DL-H7', '23514')$$,
    '... exactly the two, each with the SQLSTATE'
);
select results_eq(
    $$select count(*), count(distinct o.aggregate_id)
      from public.outbox_events as o
      where o.event_type = 'whatsapp.message_received' and o.payload ->> 'wamid' like 'wamid.DL-H%'$$,
    $$values (38::bigint, 38::bigint)$$,
    '... and each stored message has one event, none twice'
);
alter table public.message_tracking drop constraint dl_bang;

-- List ------------------------------------------------------------------------------------------

select results_eq(
    $$select id from public.list_whatsapp_dead_letters() order by id$$,
    $$select id from private.whatsapp_dead_letters where resolution is null order by id$$,
    'open (the default) lists the letters that wait, in id order'
);
select results_eq(
    $$select count(*) from public.list_whatsapp_dead_letters('resolved', 100)$$,
    $$values (3::bigint)$$,
    'resolved lists the three resolved'
);
select results_eq(
    $$select id from public.list_whatsapp_dead_letters('all', 2, (
        select min(id) from private.whatsapp_dead_letters
    ))$$,
    $$select id from private.whatsapp_dead_letters order by id offset 1 limit 2$$,
    'p_limit and p_after_id page through them'
);
select throws_ok(
    $$select public.list_whatsapp_dead_letters('closed')$$,
    '22023',
    'list_whatsapp_dead_letters: p_state must be open, resolved or all (got ''closed'')',
    'list: an unknown state is refused'
);
select throws_ok(
    $$select public.list_whatsapp_dead_letters('open', 0)$$,
    '22023',
    'list_whatsapp_dead_letters: p_limit must be 1 to 100 (got 0)',
    'list: a limit of 0 is refused'
);
select throws_ok(
    $$select public.list_whatsapp_dead_letters('open', 101)$$,
    '22023',
    'list_whatsapp_dead_letters: p_limit must be 1 to 100 (got 101)',
    'list: a limit over 100 is refused (a letter may hold a whole body)'
);

-- Discard ---------------------------------------------------------------------------------------

select is(
    public.discard_whatsapp_dead_letter(
        (pg_temp.letter('wamid.DL-NOPHONE')).id, 'Sender is a test device'
    ) - array['id', 'resolved_at'],
    '{"resolution": "discarded", "already_resolved": false}'::jsonb,
    'an operator discards a letter that can never be stored'
);
select is(
    public.discard_whatsapp_dead_letter((pg_temp.letter('wamid.DL-NOPHONE')).id, 'again')
    ->> 'already_resolved',
    'true',
    'discarding it again changes nothing'
);
select results_eq(
    $$select resolution, resolution_note from private.whatsapp_dead_letters
      where wamid = 'wamid.DL-NOPHONE'$$,
    $$values ('discarded'::text, 'Sender is a test device'::text)$$,
    '... the first note stays'
);
select throws_ok(
    $$select public.discard_whatsapp_dead_letter(null, 'x')$$,
    '22023',
    'discard_whatsapp_dead_letter: p_id must be a dead letter id',
    'discard: a null id is refused'
);
select throws_ok(
    $$select public.discard_whatsapp_dead_letter(1, '')$$,
    '22023',
    'discard_whatsapp_dead_letter: p_note must be 1 to 500 characters',
    'discard: an empty note is refused'
);
select throws_ok(
    $$select public.discard_whatsapp_dead_letter(1, repeat('n', 501))$$,
    '22023',
    'discard_whatsapp_dead_letter: p_note must be 1 to 500 characters',
    'discard: a note over 500 characters is refused'
);
select throws_ok(
    $$select public.discard_whatsapp_dead_letter(-1, 'x')$$,
    'PT404',
    'discard_whatsapp_dead_letter: no dead letter -1',
    'discard: an unknown id is PT404'
);

select is(
    public.ingest_whatsapp_webhook('meta', pg_temp.meta(
        tests.meta_text('not-a-phone', 'wamid.DL-NOPHONE', '1767225600', 'who')
    )) ->> 'dead_lettered',
    '1',
    'the discarded message is delivered again'
);
select results_eq(
    $$select resolution, resolved_at, times_seen from private.whatsapp_dead_letters
      where wamid = 'wamid.DL-NOPHONE'$$,
    $$values (null::text, null::timestamptz, 3)$$,
    '... and its letter is open again: it is still not stored'
);
select lives_ok(
    $$select public.discard_whatsapp_dead_letter(
        (pg_temp.letter('wamid.DL-NOPHONE')).id, 'Sender is a test device'
    )$$,
    'and discarded again'
);

-- Who may ---------------------------------------------------------------------------------------

select throws_ok(
    $$select tests.as_caller('anon', '{"role": "anon"}',
        'select public.list_whatsapp_dead_letters()')$$,
    '42501',
    'permission denied for function list_whatsapp_dead_letters',
    'anon cannot list dead letters'
);
select throws_ok(
    $$select tests.as_caller('authenticated',
        '{"role": "authenticated", "sub": "00000000-0000-4000-8000-000000000001"}',
        'select public.list_whatsapp_dead_letters()')$$,
    '42501',
    'permission denied for function list_whatsapp_dead_letters',
    'an authenticated user cannot list dead letters (they hold other people''s messages)'
);
select throws_ok(
    $$select tests.as_caller('authenticated',
        '{"role": "authenticated", "sub": "00000000-0000-4000-8000-000000000001"}',
        format('select public.retry_whatsapp_dead_letter(%s)', pg_temp.seen('bytes')))$$,
    '42501',
    'permission denied for function retry_whatsapp_dead_letter',
    'an authenticated user cannot retry one'
);
select throws_ok(
    $$select tests.as_caller('anon', '{"role": "anon"}',
        'select public.discard_whatsapp_dead_letter(1, ''x'')')$$,
    '42501',
    'permission denied for function discard_whatsapp_dead_letter',
    'anon cannot discard one'
);
select throws_ok(
    $$select tests.as_caller('authenticated',
        '{"role": "authenticated", "sub": "00000000-0000-4000-8000-000000000001"}',
        'select public.dead_letter_whatsapp_webhook(''meta'', ''\x00''::bytea, ''x'')')$$,
    '42501',
    'permission denied for function dead_letter_whatsapp_webhook',
    'an authenticated user cannot write one'
);
select throws_ok(
    $$select tests.as_caller('service_role', '{"role": "service_role"}',
        'select count(*) from private.whatsapp_dead_letters')$$,
    '42501',
    'permission denied for schema private',
    'the table itself is out of reach even of service_role: the RPCs are the way in'
);
select lives_ok(
    $$select tests.as_caller('service_role', '{"role": "service_role"}', format(
        'insert into pg_temp.seen (note, n) select %L, count(*) '
        'from public.list_whatsapp_dead_letters(%L, 100)', 'listed by service_role', 'all'
    ))$$,
    'service_role lists them'
);
select is(
    pg_temp.seen('listed by service_role'),
    (select count(*) from private.whatsapp_dead_letters),
    '... all of them'
);
select lives_ok(
    $$select tests.as_caller('service_role', '{"role": "service_role"}', format(
        'select public.discard_whatsapp_dead_letter(%s, %L)', pg_temp.seen('bytes'), 'unreadable'
    ))$$,
    'service_role discards one'
);

-- Monitoring and purge --------------------------------------------------------------------------

select results_eq(
    $$select provider, kind, reason, open, resolved from monitoring.whatsapp_dead_letters
      order by provider, kind, reason$$,
    $$select provider, kind, reason,
             count(*) filter (where resolution is null),
             count(*) filter (where resolution is not null)
      from private.whatsapp_dead_letters group by 1, 2, 3 order by 1, 2, 3$$,
    'monitoring.whatsapp_dead_letters counts open and resolved letters by provider, kind, reason'
);
select is(
    (select sum(open) from monitoring.whatsapp_dead_letters),
    7::numeric,
    '... seven still wait (the long id, the bad media, the second sender that is not a phone, '
    'the two bodies that are no webhook, the two refused among 40)'
);
update private.whatsapp_dead_letters
set resolved_at = now() - interval '31 days'
where id = pg_temp.seen('boom');
select is(
    private.purge_whatsapp_dead_letters(),
    1,
    'the purge deletes letters resolved more than 30 days ago'
);
select is(
    (select count(*) from private.whatsapp_dead_letters where resolution is null),
    7::bigint,
    '... and never an open one'
);
select isnt_empty(
    $$select from cron.job where jobname = 'purge-whatsapp-dead-letters'$$,
    'the purge runs daily from pg_cron'
);

select * from finish();
rollback;
