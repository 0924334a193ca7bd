-- ingest_whatsapp_webhook on a Meta batch (functions-sql's WhatsApp ingest): two entries and
-- four changes, every message type and how each is kept, and the batch's metrics.
-- Runs as postgres on a fresh clone, in one transaction: now() is constant, and the provider
-- timestamps are fixed (1767225600 is 2026-01-01 00:00:00 UTC). The helpers and the payloads
-- of the story are tests/sql/fixtures/whatsapp_ingest.sql.
begin;
select plan(22);

call tests.fixture('whatsapp_ingest');

-- Meta: one batch, several entries and changes, every message type ----------------------------

-- Alice writes from her phone (8 messages over two changes of entry 1); Bob from his phone, and
-- Meta also gives his business-scoped user id (5 messages); Carol has withheld her phone: only
-- her user id (4 messages).
select is(
    public.ingest_whatsapp_webhook('meta', pg_temp.body('batch'), 'corr-batch'),
    pg_temp.summary(17, 0, 0, 0, 0),
    'a Meta batch of two entries and four changes stores all 17 messages'
);

insert into pg_temp.ids (name, id)
select 'alice', id from public.users where phone_number = '+250788000001'
union all
select 'bob', id from public.users where phone_number = '+250788000002'
union all
select 'carol', id from public.users where wa_user_id = 'RW.1000000003';

-- Metrics of that batch, the first ingest of this test: every whatsapp-ingest row is its.
select set_eq(
    $$select metric_type, metric_name, tags, value from public.system_metrics
      where service_name = 'whatsapp-ingest' and metric_name <> 'ingest.duration'$$,
    $$values
        ('counter', 'messages.duplicate', '{"provider": "meta"}'::jsonb, 0::float8),
        ('counter', 'messages.received', '{"provider": "meta", "type": "text"}', 2),
        ('counter', 'messages.received', '{"provider": "meta", "type": "image"}', 1),
        ('counter', 'messages.received', '{"provider": "meta", "type": "audio"}', 1),
        ('counter', 'messages.received', '{"provider": "meta", "type": "video"}', 1),
        ('counter', 'messages.received', '{"provider": "meta", "type": "document"}', 1),
        ('counter', 'messages.received', '{"provider": "meta", "type": "sticker"}', 1),
        ('counter', 'messages.received', '{"provider": "meta", "type": "location"}', 1),
        ('counter', 'messages.received', '{"provider": "meta", "type": "contacts"}', 1),
        ('counter', 'messages.received', '{"provider": "meta", "type": "interactive"}', 2),
        ('counter', 'messages.received', '{"provider": "meta", "type": "button"}', 1),
        ('counter', 'messages.received', '{"provider": "meta", "type": "reaction"}', 1),
        ('counter', 'messages.received', '{"provider": "meta", "type": "order"}', 1),
        ('counter', 'messages.received', '{"provider": "meta", "type": "system"}', 1),
        ('counter', 'messages.received', '{"provider": "meta", "type": "unsupported"}', 2)$$,
    'the batch records messages.received per type (tagged with it) and 0 duplicates'
);
select results_eq(
    $$select count(*), min(metric_type), min(unit), min(tags::text), bool_and(value >= 0)
      from public.system_metrics
      where service_name = 'whatsapp-ingest' and metric_name = 'ingest.duration'$$,
    $$values (1::bigint, 'latency', 'ms', '{"provider": "meta"}', true)$$,
    'the batch records one ingest.duration latency in ms, tagged with the provider'
);

-- Every message type ----------------------------------------------------------------------------

select results_eq(
    $$select count(*), bool_and(direction = 'INBOUND'), bool_and(status = 'received'),
             bool_and(provider = 'meta'), bool_and(correlation_id = 'corr-batch'),
             bool_and(ignored_status_count = 0)
      from public.message_tracking where wamid like 'wamid.%'$$,
    $$values (17::bigint, true, true, true, true, true)$$,
    'every message of the batch is INBOUND, received, from meta, with the batch''s correlation id'
);
select is(
    (select provider_timestamp from public.message_tracking where wamid = 'wamid.A04'),
    to_timestamp(1767225780),
    'a message keeps the provider''s timestamp'
);
select results_eq(
    $$select message_type, body, media, content, context, error, metadata
      from public.message_tracking where wamid = 'wamid.A01'$$,
    $$values ('text', 'Hello, I need a ride', null::jsonb, null::jsonb, null::jsonb, null::jsonb,
              '{"provider_type": "text"}'::jsonb)$$,
    'a text message keeps its body and nothing else'
);
select results_eq(
    $$select message_type, body, media, content from public.message_tracking
      where wamid = 'wamid.A02'$$,
    $$values ('image', 'I am here', '{"id": "MEDIA-IMG", "mime_type": "image/jpeg",
              "sha256": "sha-img", "caption": "I am here"}'::jsonb, null::jsonb)$$,
    'an image keeps id, mime_type, sha256 and caption as media; its body is the caption'
);
select results_eq(
    $$select message_type, body, media from public.message_tracking where wamid = 'wamid.A03'$$,
    $$values ('audio', null::text, '{"id": "MEDIA-AUD", "mime_type": "audio/ogg; codecs=opus",
              "sha256": "sha-aud", "voice": true}'::jsonb)$$,
    'an audio message keeps its media and has no body'
);
select results_eq(
    $$select message_type, body, media from public.message_tracking where wamid = 'wamid.A04'$$,
    $$values ('video', 'the street', '{"id": "MEDIA-VID", "mime_type": "video/mp4",
              "sha256": "sha-vid", "caption": "the street"}'::jsonb)$$,
    'a video keeps its media; its body is the caption'
);
select results_eq(
    $$select message_type, body, media from public.message_tracking where wamid = 'wamid.A05'$$,
    $$values ('document', 'my receipt', '{"id": "MEDIA-DOC", "mime_type": "application/pdf",
              "sha256": "sha-doc", "caption": "my receipt", "filename": "receipt.pdf"}'::jsonb)$$,
    'a document keeps its media with the filename; its body is the caption'
);
select results_eq(
    $$select message_type, body, media from public.message_tracking where wamid = 'wamid.A06'$$,
    $$values ('sticker', null::text, '{"id": "MEDIA-STK", "mime_type": "image/webp",
              "sha256": "sha-stk", "animated": false}'::jsonb)$$,
    'a sticker keeps its media'
);
select results_eq(
    $$select message_type, body, media, content from public.message_tracking
      where wamid = 'wamid.A07'$$,
    $$values ('location', null::text, null::jsonb, '{"latitude": -1.9441, "longitude": 30.0619,
              "name": "Kigali Convention Centre", "address": "KG 2 Roundabout"}'::jsonb)$$,
    'a location is kept as content'
);
select results_eq(
    $$select message_type, content -> 0 -> 'name' ->> 'formatted_name',
             content -> 0 -> 'phones' -> 0 ->> 'wa_id'
      from public.message_tracking where wamid = 'wamid.A08'$$,
    $$values ('contacts', 'Eve', '250788000099')$$,
    'shared contacts are kept as content, names and phones'
);
select results_eq(
    $$select message_type, body, content from public.message_tracking where wamid = 'wamid.B01'$$,
    $$values ('interactive', 'Yes please', '{"type": "button_reply",
              "button_reply": {"id": "yes", "title": "Yes please"}}'::jsonb)$$,
    'an interactive button_reply is kept as content; its body is the title'
);
select results_eq(
    $$select message_type, body, content -> 'list_reply' ->> 'id'
      from public.message_tracking where wamid = 'wamid.B02'$$,
    $$values ('interactive', 'Moto taxi', 'moto')$$,
    'an interactive list_reply is kept as content; its body is the title'
);
select results_eq(
    $$select message_type, body, content, context from public.message_tracking
      where wamid = 'wamid.B03'$$,
    $$values ('button', 'Track my ride', '{"text": "Track my ride", "payload": "TRACK_42"}'::jsonb,
              '{"from": "15550001111", "id": "wamid.OUT-TEMPLATE"}'::jsonb)$$,
    'a template button reply keeps text and payload, and the message it answers as context'
);
select results_eq(
    $$select message_type, body, content from public.message_tracking where wamid = 'wamid.B04'$$,
    $$values ('reaction', null::text,
              '{"message_id": "wamid.OUT-TEMPLATE", "emoji": "👍"}'::jsonb)$$,
    'a reaction keeps the message reacted to and the emoji'
);
select results_eq(
    $$select message_type, content ->> 'catalog_id',
             content -> 'product_items' -> 0 ->> 'product_retailer_id', body
      from public.message_tracking where wamid = 'wamid.B05'$$,
    $$values ('order', 'CAT1', 'SKU1', 'Two please')$$,
    'an order keeps its catalog and items as content, and its note as body'
);
select results_eq(
    $$select message_type, body, content ->> 'type' from public.message_tracking
      where wamid = 'wamid.C01'$$,
    $$values ('system', 'Carol changed her username', 'user_changed_username')$$,
    'a system message keeps its body and content'
);
select results_eq(
    $$select message_type, error, content ->> 'id', metadata from public.message_tracking
      where wamid = 'wamid.C02'$$,
    $$values ('unsupported', '[{"code": 131051, "title": "Message type unknown",
              "message": "Message type unknown",
              "error_data": {"details": "Message type is not currently supported"}}]'::jsonb,
              'wamid.C02', '{"provider_type": "unsupported"}'::jsonb)$$,
    'an unsupported message is kept, its errors as error'
);
select results_eq(
    $$select message_type, content, metadata from public.message_tracking
      where wamid = 'wamid.C03'$$,
    $$values ('unsupported', '{"from_user_id": "RW.1000000003", "id": "wamid.C03",
              "timestamp": "1767225720", "type": "poll",
              "poll": {"question": "Which car?", "options": ["sedan", "van"]}}'::jsonb,
              '{"provider_type": "poll"}'::jsonb)$$,
    'a type unknown today is kept as unsupported: the whole message, provider_type its type'
);
select results_eq(
    $$select message_type, body, context from public.message_tracking where wamid = 'wamid.C04'$$,
    $$values ('text', 'Yes, that one', '{"from": "15550001111", "id": "wamid.OUT-0"}'::jsonb)$$,
    'a reply keeps the message it replies to as context'
);

select * from finish();
rollback;
