-- The outbox events an ingest emits (functions-sql's WhatsApp ingest): what each carries, and
-- the correlation id: the call's, else the request's headers.
-- Runs as postgres on a fresh clone, in one transaction: now() is constant, and the provider
-- timestamps are fixed (1767225600 is 2026-01-01 00:00:00 UTC). The helpers and the payloads
-- of the story are tests/sql/fixtures/whatsapp_ingest.sql.
begin;
select plan(9);

call tests.fixture('whatsapp_ingest');
call pg_temp.story_batch();

-- Outbox ----------------------------------------------------------------------------------------

select results_eq(
    $$select e.aggregate_type, e.aggregate_id, e.payload ->> 'message_id', e.payload ->> 'wamid',
             e.payload ->> 'user_id', e.payload ->> 'mapping_id', e.payload ->> 'wa_id',
             e.payload ->> 'type', e.payload ->> 'body', e.correlation_id
      from public.outbox_events as e
      where e.event_type = 'whatsapp.message_received' and e.payload ->> 'wamid' = 'wamid.B01'$$,
    $$select 'whatsapp_message', t.id::text, t.id::text, t.wamid, t.user_id::text,
             t.mapping_id::text, '250788000002', 'interactive', 'Yes please', 'corr-batch'
      from public.message_tracking as t where t.wamid = 'wamid.B01'$$,
    'whatsapp.message_received carries the message, wamid, user, conversation, type and body'
);
select results_eq(
    $$select e.aggregate_type, e.aggregate_id, e.payload, e.correlation_id
      from public.outbox_events as e
      where e.event_type = 'user.registered' and e.aggregate_id = pg_temp.uid('bob')::text$$,
    $$values ('user', pg_temp.uid('bob')::text, jsonb_build_object(
        'user_id', pg_temp.uid('bob'), 'phone_number', '+250788000002',
        'wa_user_id', 'RW.1000000002', 'display_name', 'Bob', 'channel', 'whatsapp'
    ), 'corr-batch')$$,
    'user.registered carries the user id and identifiers'
);
select results_eq(
    $$select e.aggregate_type, e.aggregate_id, e.payload ->> 'mapping_id', e.payload ->> 'wa_id',
             e.payload ->> 'user_id', e.correlation_id
      from public.outbox_events as e
      where e.event_type = 'conversation.started' and e.payload ->> 'wa_id' = '250788000002'$$,
    $$select 'conversation', m.id::text, m.id::text, m.wa_id, m.user_id::text, 'corr-batch'
      from public.conversation_mappings as m where m.wa_id = '250788000002'$$,
    'conversation.started carries the conversation, the wa_id and the user'
);
select is(
    (select count(*) from public.outbox_events where correlation_id = 'corr-batch'),
    23::bigint,
    'every event of the batch carries its p_correlation_id: 17 messages, 3 users, 3 conversations'
);

-- Without p_correlation_id, the request's x-correlation-id header, else x-request-id.
insert into pg_temp.payload (name, body) values ('hana', pg_temp.meta(jsonb_build_object(
    'contacts', '[{"profile": {"name": "Hana"}, "wa_id": "250788000020"}]'::jsonb,
    'messages', jsonb_build_array(
        tests.meta_text('250788000020', 'wamid.H01', '1767226000', 'hello')
    )
))),
('hana-2', pg_temp.meta(jsonb_build_object('messages', jsonb_build_array(
    tests.meta_text('250788000020', 'wamid.H02', '1767226060', 'hello again')
)))),
('hana-3', pg_temp.meta(jsonb_build_object('messages', jsonb_build_array(
    tests.meta_text('250788000020', 'wamid.H03', '1767226120', 'and again')
))));
do $$
begin
    perform set_config(
        'request.headers', '{"x-correlation-id": "hdr-corr", "x-request-id": "hdr-req"}', true
    );
end;
$$;
select is(
    public.ingest_whatsapp_webhook('meta', pg_temp.body('hana'), null),
    pg_temp.summary(1, 0, 0, 0, 0),
    'a webhook without p_correlation_id is stored'
);
select results_eq(
    $$select event_type, correlation_id from public.outbox_events
      where payload ->> 'wa_id' = '250788000020' or payload ->> 'phone_number' = '+250788000020'
      order by id$$,
    $$values ('user.registered', 'hdr-corr'), ('conversation.started', 'hdr-corr'),
             ('whatsapp.message_received', 'hdr-corr')$$,
    'without p_correlation_id the events carry the request''s x-correlation-id header'
);
select is(
    (select correlation_id from public.message_tracking where wamid = 'wamid.H01'),
    'hdr-corr',
    'without p_correlation_id the message carries the x-correlation-id header'
);
do $$
begin
    perform public.ingest_whatsapp_webhook('meta', pg_temp.body('hana-2'), 'explicit-corr');
end;
$$;
select is(
    (select correlation_id from public.message_tracking where wamid = 'wamid.H02'),
    'explicit-corr',
    'p_correlation_id wins over the header'
);
do $$ begin perform set_config('request.headers', '{"x-request-id": "hdr-req"}', true); end $$;
do $$
begin
    perform public.ingest_whatsapp_webhook('meta', pg_temp.body('hana-3'), null);
end;
$$;
select is(
    (select correlation_id from public.message_tracking where wamid = 'wamid.H03'),
    'hdr-req',
    'without x-correlation-id the correlation id is the x-request-id header'
);
do $$ begin perform set_config('request.headers', '', true); end $$;

select * from finish();
rollback;
