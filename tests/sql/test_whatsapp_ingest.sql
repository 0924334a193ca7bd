-- WhatsApp inbound (supabase/functions-sql/52_whatsapp_ingest.sql): ingest_whatsapp_webhook for
-- Meta and Twilio, and what it writes: users and their preferences, sessions, conversations,
-- message_tracking, statuses (pending ones too), outbox events and metrics; bad input, privileges,
-- RLS and the tables' constraints. Runs as postgres on a fresh clone, in one transaction: now() is
-- constant, and the provider timestamps below are fixed (1767225600 is 2026-01-01 00:00:00 UTC).
begin;
select plan(166);

-- Helpers ----------------------------------------------------------------------------------------

-- Payloads by name (reused for retries), users by name, counts and ids noted along the way.
-- The API roles read and write these from inside as_caller; pg_temp functions they cannot call.
create temp table payload (name text primary key, body jsonb not null);
create temp table ids (name text primary key, id uuid not null);
create temp table seen (note text primary key, n bigint not null);
create temp table visible (note text not null, id text not null);
create temp table snap (note text primary key, f jsonb not null);
grant select on pg_temp.payload, pg_temp.ids to anon, authenticated, service_role;
grant select, insert on pg_temp.seen, pg_temp.visible to anon, authenticated, service_role;

create function pg_temp.uid(p_name text)
returns uuid
language sql
as $$ select id from pg_temp.ids where name = p_name $$;

create function pg_temp.claims(p_name text)
returns text
language sql
as $$
    select format(
        '{"sub": "%s", "role": "authenticated"}',
        coalesce(pg_temp.uid(p_name)::text, 'c0ffee00-1111-4222-8333-444455556666')
    )
$$;

create function pg_temp.seen(p_note text)
returns bigint
language sql
as $$ select n from pg_temp.seen where note = p_note $$;

create function pg_temp.snap(p_note text)
returns jsonb
language sql
as $$ select f from pg_temp.snap where note = p_note $$;

create function pg_temp.body(p_name text)
returns jsonb
language sql
as $$ select body from pg_temp.payload where name = p_name $$;

-- The result an ingest should return.
create function pg_temp.summary(
    p_stored integer,
    p_duplicates integer,
    p_applied integer,
    p_ignored integer,
    p_pending integer,
    p_dead_lettered integer default 0
)
returns jsonb
language sql
as $$
    select jsonb_build_object(
        'messages_stored', p_stored,
        'duplicates', p_duplicates,
        'statuses_applied', p_applied,
        'statuses_ignored', p_ignored,
        'statuses_pending', p_pending,
        'dead_lettered', p_dead_lettered
    )
$$;

-- How much of everything ingest writes there is: compared before and after a call that must
-- store nothing (metrics apart, which a refused or duplicate call may or may not write).
create function pg_temp.footprint()
returns jsonb
language sql
as $$
    select jsonb_build_object(
        'users', (select count(*) from public.users),
        'user_preferences', (select count(*) from public.user_preferences),
        'sessions', (select count(*) from public.whatsapp_sessions),
        'session_messages', (select coalesce(sum(message_count), 0) from public.whatsapp_sessions),
        'mappings', (select count(*) from public.conversation_mappings),
        'messages', (select count(*) from public.message_tracking),
        'ignored_statuses', (
            select coalesce(sum(ignored_status_count), 0) from public.message_tracking
        ),
        'outbox', (select count(*) from public.outbox_events),
        'pending', (select count(*) from private.pending_message_statuses)
    )
$$;

-- A Meta webhook with one entry and one change whose value is p_value (messages, contacts or
-- statuses), to business number 15550001111.
create function pg_temp.meta(p_value jsonb)
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
                    )
                ) || p_value
            ))
        ))
    )
$$;

-- A Meta status of an outbound message.
create function pg_temp.status(p_wamid text, p_status text, p_ts text, p_errors jsonb default null)
returns jsonb
language sql
as $$
    select jsonb_strip_nulls(jsonb_build_object(
        'id', p_wamid, 'status', p_status, 'timestamp', p_ts,
        'recipient_id', '250788000001', 'errors', p_errors
    ))
$$;

create function pg_temp.statuses(variadic p_statuses jsonb[])
returns jsonb
language sql
as $$ select pg_temp.meta(jsonb_build_object('statuses', to_jsonb(p_statuses))) $$;

-- An outbound message the sender recorded (direction OUTBOUND, accepted), to a user.
create function pg_temp.outbound(
    p_wamid text, p_user text, p_correlation_id text, p_provider text default 'meta'
)
returns uuid
language sql
as $$
    insert into public.message_tracking (
        wamid, mapping_id, user_id, direction, provider, message_type, status, body, correlation_id
    )
    values (
        p_wamid,
        (
            select m.id from public.conversation_mappings as m
            where m.user_id = pg_temp.uid(p_user) and m.status = 'active'
            order by m.created_at desc limit 1
        ),
        pg_temp.uid(p_user),
        'OUTBOUND', p_provider, 'text', 'accepted', 'Your driver is on the way', p_correlation_id
    )
    returning id
$$;

-- Meta: one batch, several entries and changes, every message type ----------------------------

-- Alice writes from her phone (8 messages over two changes of entry 1); Bob from his phone, and
-- Meta also gives his business-scoped user id (5 messages); Carol has withheld her phone: only
-- her user id (4 messages).
insert into pg_temp.payload (name, body) values ('batch', $json$
{
  "object": "whatsapp_business_account",
  "entry": [
    {
      "id": "WABA1",
      "changes": [
        {
          "field": "messages",
          "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": "PN1"},
            "contacts": [{"profile": {"name": "Alice"}, "wa_id": "250788000001"}],
            "messages": [
              {"from": "250788000001", "id": "wamid.A01", "timestamp": "1767225600",
               "type": "text", "text": {"body": "Hello, I need a ride"}},
              {"from": "250788000001", "id": "wamid.A02", "timestamp": "1767225660",
               "type": "image",
               "image": {"id": "MEDIA-IMG", "mime_type": "image/jpeg", "sha256": "sha-img",
                         "caption": "I am here"}},
              {"from": "250788000001", "id": "wamid.A03", "timestamp": "1767225720",
               "type": "audio",
               "audio": {"id": "MEDIA-AUD", "mime_type": "audio/ogg; codecs=opus",
                         "sha256": "sha-aud", "voice": true}},
              {"from": "250788000001", "id": "wamid.A04", "timestamp": "1767225780",
               "type": "video",
               "video": {"id": "MEDIA-VID", "mime_type": "video/mp4", "sha256": "sha-vid",
                         "caption": "the street"}}
            ]
          }
        },
        {
          "field": "messages",
          "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": "PN1"},
            "contacts": [{"profile": {"name": "Alice"}, "wa_id": "250788000001"}],
            "messages": [
              {"from": "250788000001", "id": "wamid.A05", "timestamp": "1767225840",
               "type": "document",
               "document": {"id": "MEDIA-DOC", "mime_type": "application/pdf",
                            "sha256": "sha-doc", "caption": "my receipt",
                            "filename": "receipt.pdf"}},
              {"from": "250788000001", "id": "wamid.A06", "timestamp": "1767225900",
               "type": "sticker",
               "sticker": {"id": "MEDIA-STK", "mime_type": "image/webp", "sha256": "sha-stk",
                           "animated": false}},
              {"from": "250788000001", "id": "wamid.A07", "timestamp": "1767225960",
               "type": "location",
               "location": {"latitude": -1.9441, "longitude": 30.0619,
                            "name": "Kigali Convention Centre", "address": "KG 2 Roundabout"}},
              {"from": "250788000001", "id": "wamid.A08", "timestamp": "1767226020",
               "type": "contacts",
               "contacts": [{"name": {"formatted_name": "Eve", "first_name": "Eve"},
                             "phones": [{"phone": "+250788000099", "wa_id": "250788000099",
                                         "type": "CELL"}]}]}
            ]
          }
        }
      ]
    },
    {
      "id": "WABA1",
      "changes": [
        {
          "field": "messages",
          "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": "PN1"},
            "contacts": [{"profile": {"name": "Bob"}, "wa_id": "250788000002",
                          "user_id": "RW.1000000002"}],
            "messages": [
              {"from": "250788000002", "id": "wamid.B01", "timestamp": "1767225600",
               "type": "interactive",
               "interactive": {"type": "button_reply",
                               "button_reply": {"id": "yes", "title": "Yes please"}}},
              {"from": "250788000002", "id": "wamid.B02", "timestamp": "1767225660",
               "type": "interactive",
               "interactive": {"type": "list_reply",
                               "list_reply": {"id": "moto", "title": "Moto taxi",
                                              "description": "Two wheels"}}},
              {"from": "250788000002", "id": "wamid.B03", "timestamp": "1767225720",
               "type": "button",
               "context": {"from": "15550001111", "id": "wamid.OUT-TEMPLATE"},
               "button": {"text": "Track my ride", "payload": "TRACK_42"}},
              {"from": "250788000002", "id": "wamid.B04", "timestamp": "1767225780",
               "type": "reaction",
               "reaction": {"message_id": "wamid.OUT-TEMPLATE", "emoji": "👍"}},
              {"from": "250788000002", "id": "wamid.B05", "timestamp": "1767225840",
               "type": "order",
               "order": {"catalog_id": "CAT1", "text": "Two please",
                         "product_items": [{"product_retailer_id": "SKU1", "quantity": "2",
                                            "item_price": "1500", "currency": "RWF"}]}}
            ]
          }
        },
        {
          "field": "messages",
          "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": "PN1"},
            "contacts": [{"profile": {"name": "Carol"}, "user_id": "RW.1000000003"}],
            "messages": [
              {"from_user_id": "RW.1000000003", "id": "wamid.C01", "timestamp": "1767225600",
               "type": "system",
               "system": {"body": "Carol changed her username", "type": "user_changed_username"}},
              {"from_user_id": "RW.1000000003", "id": "wamid.C02", "timestamp": "1767225660",
               "type": "unsupported",
               "errors": [{"code": 131051, "title": "Message type unknown",
                           "message": "Message type unknown",
                           "error_data": {"details": "Message type is not currently supported"}}]},
              {"from_user_id": "RW.1000000003", "id": "wamid.C03", "timestamp": "1767225720",
               "type": "poll",
               "poll": {"question": "Which car?", "options": ["sedan", "van"]}},
              {"from_user_id": "RW.1000000003", "id": "wamid.C04", "timestamp": "1767225780",
               "type": "text", "text": {"body": "Yes, that one"},
               "context": {"from": "15550001111", "id": "wamid.OUT-0"}}
            ]
          }
        }
      ]
    }
  ]
}
$json$);

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
insert into pg_temp.payload (name, body) values
('dan-first', pg_temp.meta(jsonb_build_object(
    'messages', jsonb_build_array(
        tests.meta_text('250788000004', 'wamid.D01', '1767226000', 'first')
    )
))),
('later', pg_temp.meta(jsonb_build_object(
    'contacts', '[
        {"profile": {"name": "Dan"}, "wa_id": "250788000004"},
        {"profile": {"name": "Alice"}, "wa_id": "250788000001", "user_id": "RW.1000000001"},
        {"profile": {"name": "Caroline"}, "wa_id": "250788000003", "user_id": "RW.1000000003"}
    ]'::jsonb,
    'messages', jsonb_build_array(
        tests.meta_text('250788000004', 'wamid.D02', '1767226100', 'second'),
        tests.meta_text('250788000001', 'wamid.A09', '1767226200', 'where are you?'),
        tests.meta_text('250788000003', 'wamid.C05', '1767226200', 'my phone now')
            || '{"from_user_id": "RW.1000000003"}'
    )
)));

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
insert into pg_temp.payload (name, body) values ('alice-late', pg_temp.meta(jsonb_build_object(
    'messages', jsonb_build_array(
        tests.meta_text('250788000001', 'wamid.A10', '1767225000', 'sent this morning')
    )
)));
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
insert into pg_temp.payload (name, body) values ('alice-again', pg_temp.meta(jsonb_build_object(
    'messages', jsonb_build_array(
        tests.meta_text('250788000001', 'wamid.A11', '1767226800', 'me again')
    )
)));
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

-- Duplicates ------------------------------------------------------------------------------------

insert into pg_temp.snap (note, f) values ('before duplicate', pg_temp.footprint());
insert into pg_temp.seen (note, n)
select 'received metrics before duplicate', count(*) from public.system_metrics
where service_name = 'whatsapp-ingest' and metric_name = 'messages.received';
select is(
    public.ingest_whatsapp_webhook('meta', pg_temp.body('batch'), 'corr-retry'),
    pg_temp.summary(0, 17, 0, 0, 0),
    'the same batch again stores nothing and counts 17 duplicates'
);
select is(
    pg_temp.footprint() -> 'users', pg_temp.snap('before duplicate') -> 'users',
    'a duplicate batch registers no user'
);
select is(
    pg_temp.footprint() -> 'messages', pg_temp.snap('before duplicate') -> 'messages',
    'a duplicate batch adds no message_tracking row'
);
select is(
    pg_temp.footprint() -> 'session_messages',
    pg_temp.snap('before duplicate') -> 'session_messages',
    'a duplicate batch adds nothing to the sessions'' message counts'
);
select is(
    pg_temp.footprint() -> 'mappings', pg_temp.snap('before duplicate') -> 'mappings',
    'a duplicate batch makes no conversation'
);
select is(
    pg_temp.footprint() -> 'outbox', pg_temp.snap('before duplicate') -> 'outbox',
    'a duplicate batch emits no event'
);
select is(
    (
        select count(*) from public.system_metrics
        where service_name = 'whatsapp-ingest' and metric_name = 'messages.duplicate'
            and value = 17 and tags = '{"provider": "meta"}'
    ),
    1::bigint,
    'the duplicate batch records messages.duplicate 17'
);
select is(
    (
        select count(*) from public.system_metrics
        where service_name = 'whatsapp-ingest' and metric_name = 'messages.received'
    ),
    pg_temp.seen('received metrics before duplicate'),
    'the duplicate batch records no messages.received'
);

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

-- Statuses --------------------------------------------------------------------------------------

-- The sender recorded four outbound messages to Alice (OUT-1 to OUT-4).
do $$
begin
    perform pg_temp.outbound('wamid.OUT-' || n, 'alice', 'send-' || n)
    from generate_series(1, 4) as n;
end;
$$;

-- No p_correlation_id and no headers: the event takes the message's own correlation id.
select is(
    public.ingest_whatsapp_webhook('meta', pg_temp.statuses(
        pg_temp.status('wamid.OUT-1', 'sent', '1767229200')
    ), null),
    pg_temp.summary(0, 0, 1, 0, 0),
    'sent is applied to an accepted outbound message'
);
select is(
    public.ingest_whatsapp_webhook('meta', pg_temp.statuses(
        pg_temp.status('wamid.OUT-1', 'delivered', '1767229260'),
        pg_temp.status('wamid.OUT-2', 'read', '1767229260'),
        pg_temp.status('wamid.OUT-4', 'read', '1767229260')
    ), 'st-2'),
    pg_temp.summary(0, 0, 3, 0, 0),
    'delivered after sent, and read straight after accepted, are applied'
);
select is(
    public.ingest_whatsapp_webhook('meta', pg_temp.statuses(
        pg_temp.status('wamid.OUT-1', 'read', '1767229320'),
        pg_temp.status('wamid.OUT-2', 'delivered', '1767229330'),
        pg_temp.status('wamid.OUT-1', 'delivered', '1767229260')
    ), 'st-3'),
    pg_temp.summary(0, 0, 1, 2, 0),
    'read is applied; delivered after read and a repeated delivered are ignored'
);
select is(
    public.ingest_whatsapp_webhook('meta', pg_temp.statuses(
        pg_temp.status('wamid.OUT-3', 'sent', '1767229200'),
        pg_temp.status('wamid.OUT-3', 'failed', '1767229210', '[{"code": 131047,
            "title": "Re-engagement message", "message": "Re-engagement message",
            "error_data": {"details": "More than 24 hours since the customer last replied"}}]')
    ), 'st-4'),
    pg_temp.summary(0, 0, 2, 0, 0),
    'sent then failed are both applied'
);
select is(
    public.ingest_whatsapp_webhook('meta', pg_temp.statuses(
        pg_temp.status('wamid.OUT-3', 'delivered', '1767229300'),
        pg_temp.status('wamid.OUT-3', 'read', '1767229310'),
        pg_temp.status('wamid.OUT-4', 'failed', '1767229320', '[{"code": 131026}]'),
        pg_temp.status('wamid.OUT-1', 'deleted', '1767229330'),
        pg_temp.status('wamid.A01', 'read', '1767229340')
    ), 'st-5'),
    pg_temp.summary(0, 0, 0, 5, 0),
    'statuses after failed, failed after read, an unknown status and one about an inbound message '
    || 'are all ignored'
);

select results_eq(
    $$select status, sent_at, delivered_at, read_at, failed_at, error, ignored_status_count
      from public.message_tracking where wamid = 'wamid.OUT-1'$$,
    $$values ('read', to_timestamp(1767229200), to_timestamp(1767229260), to_timestamp(1767229320),
              null::timestamptz, null::jsonb, 2)$$,
    'sent, delivered, read: each applied with its timestamp; the repeat and the unknown counted'
);
select results_eq(
    $$select e.payload ->> 'from_status', e.payload ->> 'status', e.payload ->> 'at',
             e.correlation_id
      from public.outbox_events as e
      where e.event_type = 'whatsapp.status_updated' and e.payload ->> 'wamid' = 'wamid.OUT-1'
      order by e.id$$,
    $$values ('accepted', 'sent', '2026-01-01T01:00:00+00:00', 'send-1'),
             ('sent', 'delivered', '2026-01-01T01:01:00+00:00', 'st-2'),
             ('delivered', 'read', '2026-01-01T01:02:00+00:00', 'st-3')$$,
    'each applied status emits whatsapp.status_updated with the call''s correlation id, else the '
    || 'message''s'
);
select results_eq(
    $$select e.aggregate_type, e.aggregate_id, e.payload ->> 'message_id',
             e.payload ->> 'user_id', e.payload ->> 'mapping_id'
      from public.outbox_events as e
      where e.event_type = 'whatsapp.status_updated' and e.payload ->> 'wamid' = 'wamid.OUT-1'
          and e.payload ->> 'status' = 'read'$$,
    $$select 'whatsapp_message', t.id::text, t.id::text, t.user_id::text, t.mapping_id::text
      from public.message_tracking as t where t.wamid = 'wamid.OUT-1'$$,
    'whatsapp.status_updated carries the message, its user and its conversation'
);
select results_eq(
    $$select status, delivered_at, read_at, ignored_status_count
      from public.message_tracking where wamid = 'wamid.OUT-2'$$,
    $$values ('read', null::timestamptz, to_timestamp(1767229260), 1)$$,
    'read before delivered: read stays, the late delivered is ignored and counted'
);
select results_eq(
    $$select status, sent_at, delivered_at, read_at, failed_at, error, ignored_status_count
      from public.message_tracking where wamid = 'wamid.OUT-3'$$,
    $$values ('failed', to_timestamp(1767229200), null::timestamptz, null::timestamptz,
              to_timestamp(1767229210), '[{"code": 131047, "title": "Re-engagement message",
              "message": "Re-engagement message",
              "error_data": {"details": "More than 24 hours since the customer last replied"}}]'
              ::jsonb, 2)$$,
    'failed is applied with its errors and failed_at; delivered and read after it are ignored'
);
select is(
    (
        select e.payload -> 'error' -> 0 ->> 'code' from public.outbox_events as e
        where e.event_type = 'whatsapp.status_updated' and e.payload ->> 'wamid' = 'wamid.OUT-3'
            and e.payload ->> 'status' = 'failed'
    ),
    '131047',
    'the failed status event carries the error'
);
select results_eq(
    $$select status, failed_at, error, ignored_status_count
      from public.message_tracking where wamid = 'wamid.OUT-4'$$,
    $$values ('read', null::timestamptz, null::jsonb, 1)$$,
    'failed after read is ignored: the message stays read, without error'
);
select results_eq(
    $$select status, read_at, ignored_status_count
      from public.message_tracking where wamid = 'wamid.A01'$$,
    $$values ('received', null::timestamptz, 1)$$,
    'a status about an inbound message changes nothing but is counted'
);
select is(
    (
        select count(*) from public.outbox_events
        where event_type = 'whatsapp.status_updated' and payload ->> 'wamid' like 'wamid.%'
    ),
    7::bigint,
    'only the 7 applied statuses emitted whatsapp.status_updated'
);

-- Statuses before their message -----------------------------------------------------------------

select is(
    public.ingest_whatsapp_webhook('meta', pg_temp.statuses(
        pg_temp.status('wamid.OUT-5', 'read', '1767229600')
    ), 'pend-1'),
    pg_temp.summary(0, 0, 0, 0, 1),
    'a status for an unknown wamid is kept pending'
);
select is(
    public.ingest_whatsapp_webhook('meta', pg_temp.statuses(
        pg_temp.status('wamid.OUT-5', 'delivered', '1767229500'),
        pg_temp.status('wamid.OUT-5', 'read', '1767229600'),
        pg_temp.status('wamid.OUT-6', 'deleted', '1767229600')
    ), 'pend-2'),
    pg_temp.summary(0, 0, 0, 2, 1),
    'a second status is pending too; the same status again and an unknown one are ignored'
);
select set_eq(
    $$select wamid, status, provider_timestamp from private.pending_message_statuses$$,
    $$values ('wamid.OUT-5', 'delivered', to_timestamp(1767229500)),
             ('wamid.OUT-5', 'read', to_timestamp(1767229600))$$,
    'pending_message_statuses holds each (wamid, status) once, and no unknown status'
);
-- As service_role, which cannot reach private: the trigger applying pending statuses must.
grant select on pg_temp.ids to service_role;
grant execute on function pg_temp.uid(text), pg_temp.outbound(text, text, text, text)
to service_role;
select lives_ok(
    $$select tests.as_role(
        'service_role', 'select pg_temp.outbound(''wamid.OUT-5'', ''alice'', ''send-5'')'
    )$$,
    'service_role records the outbound message the pending statuses are about'
);
select results_eq(
    $$select status, delivered_at, read_at, ignored_status_count
      from public.message_tracking where wamid = 'wamid.OUT-5'$$,
    $$values ('read', to_timestamp(1767229500), to_timestamp(1767229600), 0)$$,
    'pending statuses are applied in rank order when the row appears: read, with both timestamps'
);
select is_empty(
    $$select wamid from private.pending_message_statuses where wamid = 'wamid.OUT-5'$$,
    'applied pending statuses are removed'
);
select results_eq(
    $$select e.payload ->> 'from_status', e.payload ->> 'status', e.correlation_id
      from public.outbox_events as e
      where e.event_type = 'whatsapp.status_updated' and e.payload ->> 'wamid' = 'wamid.OUT-5'
      order by e.id$$,
    $$values ('accepted', 'delivered', 'send-5'), ('delivered', 'read', 'send-5')$$,
    'applying pending statuses emits their events, with the message''s correlation id'
);

-- Twilio ----------------------------------------------------------------------------------------

insert into pg_temp.payload (name, body) values
('tw-text', '{"SmsMessageSid": "SM0001", "NumMedia": "0", "ProfileName": "Tumi",
  "SmsSid": "SM0001", "WaId": "250788000010", "SmsStatus": "received", "Body": "Muraho",
  "To": "whatsapp:+15550001111", "NumSegments": "1", "MessageSid": "SM0001",
  "AccountSid": "AC1", "From": "whatsapp:+250788000010", "ApiVersion": "2010-04-01"}'),
('tw-media', '{"MessageSid": "SM0002", "SmsStatus": "received", "WaId": "250788000010",
  "ProfileName": "Tumi", "From": "whatsapp:+250788000010", "To": "whatsapp:+15550001111",
  "Body": "", "NumMedia": "2",
  "MediaUrl0": "https://api.twilio.com/Media/ME0", "MediaContentType0": "image/jpeg",
  "MediaUrl1": "https://api.twilio.com/Media/ME1", "MediaContentType1": "application/pdf"}'),
('tw-location', '{"MessageSid": "SM0003", "SmsStatus": "received", "WaId": "250788000010",
  "From": "whatsapp:+250788000010", "To": "whatsapp:+15550001111", "Body": "",
  "NumMedia": "0", "Latitude": "-1.9441", "Longitude": "30.0619",
  "Address": "KG 2 Roundabout", "Label": "Kigali Convention Centre"}'),
('tw-button', '{"MessageSid": "SM0004", "SmsStatus": "received", "WaId": "250788000010",
  "From": "whatsapp:+250788000010", "To": "whatsapp:+15550001111", "Body": "Confirm",
  "NumMedia": "0", "ButtonText": "Confirm", "ButtonPayload": "CONFIRM_42"}'),
('tw-delivered', '{"MessageSid": "SM0900", "SmsSid": "SM0900", "MessageStatus": "delivered",
  "SmsStatus": "delivered", "To": "whatsapp:+250788000010", "From": "whatsapp:+15550001111",
  "AccountSid": "AC1", "ChannelPrefix": "whatsapp", "ApiVersion": "2010-04-01"}'),
('tw-undelivered', '{"MessageSid": "SM0901", "MessageStatus": "undelivered",
  "SmsStatus": "undelivered", "ErrorCode": "63016",
  "ErrorMessage": "Outside the allowed window", "To": "whatsapp:+250788000010",
  "From": "whatsapp:+15550001111", "AccountSid": "AC1"}');

select is(
    public.ingest_whatsapp_webhook('twilio', pg_temp.body('tw-text'), 'tw-1'),
    pg_temp.summary(1, 0, 0, 0, 0),
    'a Twilio text message is stored'
);
insert into pg_temp.ids (name, id)
select 'tumi', id from public.users where phone_number = '+250788000010';
select results_eq(
    $$select provider, direction, status, message_type, body, media, content, provider_timestamp,
             user_id
      from public.message_tracking where wamid = 'SM0001'$$,
    $$values ('twilio', 'INBOUND', 'received', 'text', 'Muraho', null::jsonb, null::jsonb,
              null::timestamptz, pg_temp.uid('tumi'))$$,
    'a Twilio text is kept by MessageSid with its Body, from provider twilio'
);
select results_eq(
    $$select phone_number, wa_user_id, display_name from public.users
      where id = pg_temp.uid('tumi')$$,
    $$values ('+250788000010', null::text, 'Tumi')$$,
    'the Twilio sender is registered by the phone of From, named by ProfileName'
);
select results_eq(
    $$select wa_id, last_message_id, phone_number_id, display_phone_number, last_inbound_at
      from public.conversation_mappings where user_id = pg_temp.uid('tumi')$$,
    $$values ('250788000010', 'SM0001', 'whatsapp:+15550001111', '15550001111', now())$$,
    'the Twilio conversation is under the WaId, to the To number, last inbound now'
);
do $$
begin
    perform public.ingest_whatsapp_webhook('twilio', pg_temp.body('tw-media'), 'tw-2');
end;
$$;
select results_eq(
    $$select message_type, body, media from public.message_tracking where wamid = 'SM0002'$$,
    $$values ('image', null::text, '{"url": "https://api.twilio.com/Media/ME0",
              "mime_type": "image/jpeg", "items": [
              {"url": "https://api.twilio.com/Media/ME0", "mime_type": "image/jpeg"},
              {"url": "https://api.twilio.com/Media/ME1", "mime_type": "application/pdf"}]}'
              ::jsonb)$$,
    'Twilio media: every MediaUrl/MediaContentType as media.items, the type from the first mime'
);
do $$
begin
    perform public.ingest_whatsapp_webhook('twilio', pg_temp.body('tw-location'), 'tw-3');
end;
$$;
select results_eq(
    $$select message_type, body, content from public.message_tracking where wamid = 'SM0003'$$,
    $$values ('location', null::text, '{"latitude": "-1.9441", "longitude": "30.0619",
              "address": "KG 2 Roundabout", "name": "Kigali Convention Centre"}'::jsonb)$$,
    'a Twilio location keeps Latitude, Longitude, Address and Label as content'
);
do $$
begin
    perform public.ingest_whatsapp_webhook('twilio', pg_temp.body('tw-button'), 'tw-4');
end;
$$;
select results_eq(
    $$select message_type, body, content from public.message_tracking where wamid = 'SM0004'$$,
    $$values ('button', 'Confirm', '{"text": "Confirm", "payload": "CONFIRM_42"}'::jsonb)$$,
    'a Twilio button reply keeps ButtonText as body and ButtonPayload in content'
);
select is(
    (select message_count from public.whatsapp_sessions where user_id = pg_temp.uid('tumi')),
    4::bigint,
    'the Twilio contact has one session counting its 4 messages'
);
select is(
    (
        select sum(value) from public.system_metrics
        where service_name = 'whatsapp-ingest' and metric_name = 'messages.received'
            and tags = '{"provider": "twilio", "type": "image"}'
    ),
    1::float8,
    'Twilio messages are counted in messages.received tagged with provider twilio'
);

do $$
begin
    perform pg_temp.outbound('SM0900', 'tumi', 'send-tw-1', 'twilio');
    perform pg_temp.outbound('SM0901', 'tumi', 'send-tw-2', 'twilio');
end;
$$;
select is(
    public.ingest_whatsapp_webhook('twilio', pg_temp.body('tw-delivered'), 'tw-5'),
    pg_temp.summary(0, 0, 1, 0, 0),
    'a Twilio delivered callback is applied'
);
select results_eq(
    $$select status, delivered_at, error from public.message_tracking where wamid = 'SM0900'$$,
    $$values ('delivered', now(), null::jsonb)$$,
    'the Twilio message is delivered, at the time of the callback'
);
select is(
    public.ingest_whatsapp_webhook('twilio', pg_temp.body('tw-undelivered'), 'tw-6'),
    pg_temp.summary(0, 0, 1, 0, 0),
    'a Twilio undelivered callback is applied'
);
select results_eq(
    $$select status, failed_at, error from public.message_tracking where wamid = 'SM0901'$$,
    $$values ('failed', now(),
              '[{"code": "63016", "message": "Outside the allowed window"}]'::jsonb)$$,
    'undelivered is failed, with ErrorCode and ErrorMessage as the error'
);

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
