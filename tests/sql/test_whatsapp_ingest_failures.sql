-- When something is wrong (functions-sql's WhatsApp ingest): metrics that cannot be written,
-- bad input refused with 22023 storing nothing, and a message or status that cannot be
-- stored dead-lettered while the rest of its batch is. Runs on the story of the meta and
-- statuses files.
-- Runs as postgres on a fresh clone, in one transaction: now() is constant, and the provider
-- timestamps are fixed (1767225600 is 2026-01-01 00:00:00 UTC). The helpers and the payloads
-- of the story are tests/sql/fixtures/whatsapp_ingest.sql.
begin;
select plan(19);

call tests.fixture('whatsapp_ingest');
call pg_temp.story_batch();
call pg_temp.story_statuses();

-- Metrics are worth less than the messages ------------------------------------------------------

insert into pg_temp.seen (note, n)
select 'metrics before outage', count(*) from public.system_metrics;
-- Every metric insert fails (the constraint holds for no row); the message must not.
alter table public.system_metrics add constraint metrics_outage check (false) not valid;
insert into pg_temp.payload (name, body) values ('no-metrics', pg_temp.meta(jsonb_build_object(
    'messages', jsonb_build_array(
        tests.meta_text('250788000004', 'wamid.D03', '1767227000', 'metrics are down')
    )
)));
select lives_ok(
    $$select public.ingest_whatsapp_webhook('meta', pg_temp.body('no-metrics'), 'corr-nometrics')$$,
    'an ingest succeeds while system_metrics refuses every row'
);
select is(
    (select body from public.message_tracking where wamid = 'wamid.D03'),
    'metrics are down',
    'the message is stored though its metrics could not be'
);
select is(
    (select count(*) from public.system_metrics),
    pg_temp.seen('metrics before outage'),
    'no metric was recorded during the outage'
);
alter table public.system_metrics drop constraint metrics_outage;

-- Bad input: 22023, and nothing stored ----------------------------------------------------------

insert into pg_temp.snap (note, f) values ('before bad input', pg_temp.footprint());
insert into pg_temp.seen (note, n)
select 'metrics before bad input', count(*) from public.system_metrics;
insert into pg_temp.payload (name, body) values
('no-id', pg_temp.meta(jsonb_build_object(
    'messages', jsonb_build_array(
        tests.meta_text('250788000030', 'wamid.X01', '1767225600', 'valid'),
        tests.meta_text('250788000030', null, '1767225660', 'no id') - 'id'
    )
))),
('empty-id', pg_temp.meta(jsonb_build_object(
    'messages', jsonb_build_array(tests.meta_text('250788000030', '', '1767225600', 'empty'))
))),
('status-no-id', pg_temp.statuses(
    pg_temp.status('wamid.OUT-1', 'read', '1767229900'),
    pg_temp.status(null, 'read', '1767229900')
)),
('tw-no-sid', '{"SmsStatus": "received", "WaId": "250788000031",
  "From": "whatsapp:+250788000031", "To": "whatsapp:+15550001111", "Body": "hi"}');

select throws_ok(
    $$select public.ingest_whatsapp_webhook(null, pg_temp.body('batch'))$$,
    '22023',
    'ingest_whatsapp_webhook: p_provider must be meta or twilio (got null)',
    'a null provider is refused'
);
select throws_ok(
    $$select public.ingest_whatsapp_webhook('sms', pg_temp.body('batch'))$$,
    '22023',
    'ingest_whatsapp_webhook: p_provider must be meta or twilio (got ''sms'')',
    'an unknown provider is refused'
);
select throws_ok(
    $$select public.ingest_whatsapp_webhook('meta', '[{"object": "whatsapp_business_account"}]')$$,
    '22023',
    'ingest_whatsapp_webhook: p_payload must be a JSON object',
    'a payload that is an array is refused'
);
select throws_ok(
    $$select public.ingest_whatsapp_webhook('twilio', '"Body=hi"')$$,
    '22023',
    'ingest_whatsapp_webhook: p_payload must be a JSON object',
    'a payload that is a string is refused'
);
select throws_ok(
    $$select public.ingest_whatsapp_webhook('meta', null)$$,
    '22023',
    'ingest_whatsapp_webhook: p_payload must be a JSON object',
    'a null payload is refused'
);
select throws_ok(
    $$select public.ingest_whatsapp_webhook(
        'meta', pg_temp.body('batch') || '{"object": "page"}'
    )$$,
    '22023',
    'ingest_whatsapp_webhook: a Meta payload''s object must be whatsapp_business_account '
    || '(got ''page'')',
    'a Meta payload about another object (page) is refused'
);
select throws_ok(
    $$select public.ingest_whatsapp_webhook('meta', pg_temp.body('batch') - 'object')$$,
    '22023',
    'ingest_whatsapp_webhook: a Meta payload''s object must be whatsapp_business_account '
    || '(got null)',
    'a Meta payload without object is refused'
);
select is(
    pg_temp.footprint(), pg_temp.snap('before bad input'),
    'no refused call stored anything: users, sessions, conversations, messages, statuses, events'
);
select is(
    (select count(*) from public.system_metrics),
    pg_temp.seen('metrics before bad input'),
    'no refused call recorded metrics'
);

-- A message or status that cannot be stored is a dead letter; the rest of its batch is stored.

select is(
    public.ingest_whatsapp_webhook('meta', pg_temp.body('no-id')),
    pg_temp.summary(1, 0, 0, 0, 0, 1),
    'a batch with a message without id: the valid message is stored, the other dead-lettered'
);
select results_eq(
    $$select body from public.message_tracking where wamid = 'wamid.X01'$$,
    $$values ('valid'::text)$$,
    'the valid message before it is stored'
);
select results_eq(
    $$select kind, reason, detail, sqlstate, contact, raw -> 'messages' -> 0 ->> 'text'
      from private.whatsapp_dead_letters order by id desc limit 1$$,
    $$values ('message', 'invalid_payload', 'the message has no id', '22023', '+250788000030',
              '{"body": "no id"}')$$,
    'the message without id is kept whole with its reason, SQLSTATE and sender'
);
select is(
    public.ingest_whatsapp_webhook('meta', pg_temp.body('empty-id')),
    pg_temp.summary(0, 0, 0, 0, 0, 1),
    'a message with an empty id is dead-lettered'
);
select is(
    public.ingest_whatsapp_webhook('meta', pg_temp.body('status-no-id')),
    pg_temp.summary(0, 0, 0, 1, 0, 1),
    'a status without id is dead-lettered; the other status of the batch is handled'
);
select is(
    public.ingest_whatsapp_webhook('twilio', pg_temp.body('tw-no-sid')),
    pg_temp.summary(0, 0, 0, 0, 0, 1),
    'a Twilio message without MessageSid is dead-lettered'
);
select results_eq(
    $$select kind, detail, raw ->> 'Body' from private.whatsapp_dead_letters
      order by id desc limit 2$$,
    $$values ('message', 'the message has no id', 'hi'::text),
             ('status', 'the read status has no message id', null)$$,
    'the Twilio form and the Meta status are kept whole'
);

select * from finish();
rollback;
