-- whatsapp_message_queue (migration 20260401130200_whatsapp_message_queue.sql, functions in
-- supabase/functions-sql/*_whatsapp_payloads.sql and *_whatsapp_queue.sql): enqueue with its
-- payload rules and the 24-hour customer service window, claims (priority across recipients, one
-- at a time and in order per recipient), the sender's outcomes and the message_tracking rows they
-- write, pause and resume, redrive, retention, and who may call what. Runs as postgres on a fresh
-- clone in one transaction: now() is constant, so a lease is expired or a row aged by moving its
-- timestamps into the past by hand.
begin;
select plan(156);

create temp table seen (note text primary key, n bigint);
grant select, insert on pg_temp.seen to anon, authenticated, service_role;
create function pg_temp.seen(p_note text)
returns bigint
language sql
as $$ select n from pg_temp.seen where note = p_note $$;

-- The enqueue statement a throws_ok runs: to +250788000001 (whose window is open) by default.
create function pg_temp.enqueue_sql(
    p_type text, p_payload jsonb, p_phone text default '+250788000001'
)
returns text
language sql
as $$
    select format(
        'select public.enqueue_whatsapp_message(%L, %L, %L::jsonb)', p_phone, p_type, p_payload
    )
$$;

-- A sender result for the message noted as p_note.
create function pg_temp.result(p_note text, p_outcome text, p_extra jsonb default '{}')
returns jsonb
language sql
as $$
    select jsonb_build_object('id', pg_temp.seen(p_note), 'outcome', p_outcome) || p_extra
$$;

create function pg_temp.sent(p_note text, p_wamid text, p_provider text default 'meta')
returns jsonb
language sql
as $$
    select pg_temp.result(
        p_note, 'sent', jsonb_build_object('provider', p_provider, 'provider_message_id', p_wamid)
    )
$$;

-- record_whatsapp_sends' answer (cancelled: see test_whatsapp_queue_cancel.sql).
create function pg_temp.counts(
    p_sent integer,
    p_retrying integer,
    p_failed integer,
    p_dead integer,
    p_unconfirmed integer,
    p_released integer,
    p_ignored integer,
    p_tracked integer
)
returns jsonb
language sql
as $$
    select jsonb_build_object(
        'sent', p_sent, 'retrying', p_retrying, 'failed', p_failed, 'dead', p_dead,
        'unconfirmed', p_unconfirmed, 'released', p_released, 'ignored', p_ignored,
        'tracked', p_tracked, 'cancelled', 0
    )
$$;

-- Interactive payloads the rules below vary.
create function pg_temp.buttons(p_buttons jsonb)
returns jsonb
language sql
as $$
    select jsonb_build_object(
        'type', 'button', 'body', jsonb_build_object('text', 'Pick one'),
        'action', jsonb_build_object('buttons', p_buttons)
    )
$$;

create function pg_temp.reply(p_id text, p_title text, p_type text default 'reply')
returns jsonb
language sql
as $$
    select jsonb_build_object(
        'type', p_type, 'reply', jsonb_build_object('id', p_id, 'title', p_title)
    )
$$;

create function pg_temp.list(p_sections jsonb)
returns jsonb
language sql
as $$
    select jsonb_build_object(
        'type', 'list', 'body', jsonb_build_object('text', 'Choose a ride'),
        'action', jsonb_build_object('button', 'Rides', 'sections', p_sections)
    )
$$;

-- p_count rows named p_prefix1, p_prefix2, ...
create function pg_temp.list_rows(p_prefix text, p_count integer)
returns jsonb
language sql
as $$
    select jsonb_agg(jsonb_build_object('id', p_prefix || n, 'title', 'Row ' || n) order by n)
    from generate_series(1, p_count) as n
$$;

-- Contacts: +2507880000NN (NN 01 to 20) wrote just now; 91 wrote 23 hours ago, 92 25 hours ago;
-- 99 never wrote. +250788000001 is also a registered user.
insert into public.users (phone_number, display_name) values ('+250788000001', 'Aline');
insert into public.conversation_mappings (wa_id, user_id, last_inbound_at)
select
    '2507880000' || lpad(n::text, 2, '0'),
    case when n = 1 then (select id from public.users where phone_number = '+250788000001') end,
    now()
from generate_series(1, 20) as n;
insert into public.conversation_mappings (wa_id, last_inbound_at) values
('250788000091', now() - interval '23 hours'),
('250788000092', now() - interval '25 hours');

-- enqueue_whatsapp_message --------------------------------------------------------------------

insert into pg_temp.seen (note, n) values
(
    'text',
    public.enqueue_whatsapp_message(
        '+250788000001', 'text', '{"body": "Hello", "preview_url": false}'
    )
),
(
    'template',
    public.enqueue_whatsapp_message(
        '+250788000002', 'template',
        '{"name": "ride_update", "language": {"code": "en_US"},
          "components": [{"type": "body", "parameters": [{"type": "text", "text": "5"}]}]}',
        7, 'corr-1'
    )
),
(
    'media',
    public.enqueue_whatsapp_message(
        'whatsapp:+250788000003', 'media',
        '{"media_type": "document", "link": "https://example.com/r.pdf", "caption": "Receipt",
          "filename": "r.pdf"}',
        3
    )
),
(
    'button',
    public.enqueue_whatsapp_message(
        '250788000004', 'interactive',
        pg_temp.buttons(jsonb_build_array(pg_temp.reply('yes', 'Yes'), pg_temp.reply('no', 'No')))
    )
),
(
    'list',
    public.enqueue_whatsapp_message(
        '+250 788 000 005', 'interactive',
        '{"type": "list", "header": {"type": "text", "text": "Rides"},
          "body": {"text": "Choose a ride"}, "footer": {"text": "easyMO"},
          "action": {"button": "Rides", "sections": [{"title": "Nearby", "rows": [
              {"id": "moto", "title": "Moto", "description": "2 min away"},
              {"id": "cab", "title": "Cab"}]}]}}',
        10
    )
),
(
    'location',
    public.enqueue_whatsapp_message(
        '00250788000006', 'location',
        '{"latitude": -1.9441, "longitude": 30.0619, "name": "Kigali", "address": "KN 3 Rd"}',
        5, null, now() + interval '10 minutes'
    )
);

select results_eq(
    $$select recipient_phone::text, message_type::text, priority::integer, status, attempts,
             scheduled_at - now(), visible_at = scheduled_at, correlation_id, idempotency_key
        from public.whatsapp_message_queue order by id$$,
    $$values
        ('+250788000001', 'text', 5, 'pending', 0, interval '0', true, null::text, null::text),
        ('+250788000002', 'template', 7, 'pending', 0, interval '0', true, 'corr-1', null),
        ('+250788000003', 'media', 3, 'pending', 0, interval '0', true, null, null),
        ('+250788000004', 'interactive', 5, 'pending', 0, interval '0', true, null, null),
        ('+250788000005', 'interactive', 10, 'pending', 0, interval '0', true, null, null),
        ('+250788000006', 'location', 5, 'pending', 0, interval '10 minutes', true, null, null)$$,
    'enqueue_whatsapp_message stores each type pending with its priority (default 5), due at '
    || 'p_scheduled_at (default now), phones in E.164 from digits, whatsapp:, spaces and 00'
);
select results_eq(
    $$select payload::jsonb from public.whatsapp_message_queue order by id$$,
    $$values
        ('{"body": "Hello", "preview_url": false}'::jsonb),
        ('{"name": "ride_update", "language": {"code": "en_US"},
           "components": [{"type": "body", "parameters": [{"type": "text", "text": "5"}]}]}'),
        ('{"media_type": "document", "link": "https://example.com/r.pdf", "caption": "Receipt",
           "filename": "r.pdf"}'),
        (pg_temp.buttons(
            jsonb_build_array(pg_temp.reply('yes', 'Yes'), pg_temp.reply('no', 'No')))),
        ('{"type": "list", "header": {"type": "text", "text": "Rides"},
           "body": {"text": "Choose a ride"}, "footer": {"text": "easyMO"},
           "action": {"button": "Rides", "sections": [{"title": "Nearby", "rows": [
               {"id": "moto", "title": "Moto", "description": "2 min away"},
               {"id": "cab", "title": "Cab"}]}]}}'),
        ('{"latitude": -1.9441, "longitude": 30.0619, "name": "Kigali", "address": "KN 3 Rd"}')$$,
    'the payloads are stored as given'
);

-- The correlation id: the request's x-correlation-id header unless p_correlation_id is given.
insert into pg_temp.seen (note, n)
select 'header on', length(set_config('request.headers', '{"x-correlation-id": "req-77"}', true));
insert into pg_temp.seen (note, n) values
('from header', public.enqueue_whatsapp_message('+250788000007', 'text', '{"body": "a"}')),
(
    'explicit',
    public.enqueue_whatsapp_message(
        '+250788000007', 'text', '{"body": "b"}', 5, 'explicit-1'
    )
);
insert into pg_temp.seen (note, n)
select 'header off', length(set_config('request.headers', '', true));
select results_eq(
    $$select correlation_id from public.whatsapp_message_queue
       where id in (pg_temp.seen('from header'), pg_temp.seen('explicit')) order by id$$,
    $$values ('req-77'::text), ('explicit-1')$$,
    'the correlation id is the request''s x-correlation-id, unless p_correlation_id is given'
);

-- Idempotency.
insert into pg_temp.seen (note, n) values (
    'keyed',
    public.enqueue_whatsapp_message(
        '+250788000008', 'text', '{"body": "Your code is 1234"}', 5, null, null, 'otp-1'
    )
);
select is(
    public.enqueue_whatsapp_message(
        '+250788000009', 'text', '{"body": "Another"}', 9, null, null, 'otp-1'
    ),
    pg_temp.seen('keyed'),
    'the same idempotency key returns the first id'
);
select results_eq(
    $$select recipient_phone::text, payload::jsonb, priority::integer
        from public.whatsapp_message_queue where idempotency_key = 'otp-1'$$,
    $$values ('+250788000008', '{"body": "Your code is 1234"}'::jsonb, 5)$$,
    'and stores nothing more: the first message stays as it was'
);
-- A retry of the call after the recipient's window closed: the message is already queued.
update public.conversation_mappings set last_inbound_at = now() - interval '25 hours'
where wa_id = '250788000008';
select lives_ok(
    $$insert into pg_temp.seen (note, n) values (
        'keyed retry',
        public.enqueue_whatsapp_message(
            '+250788000008', 'text', '{"body": "Your code is 1234"}', 5, null, null, 'otp-1'
        )
    )$$,
    'a retry with the key after the window closed is not refused: the message is queued already'
);
select is(
    pg_temp.seen('keyed retry'), pg_temp.seen('keyed'),
    'it returns the first id'
);
update public.conversation_mappings set last_inbound_at = now() where wa_id = '250788000008';

-- Payload rules -------------------------------------------------------------------------------

insert into pg_temp.seen (note, n)
select 'queued before refusals', count(*) from public.whatsapp_message_queue;

-- text
select throws_ok(
    pg_temp.enqueue_sql('text', '{}'),
    '22023', 'enqueue_whatsapp_message: payload.body is required',
    'text: a missing body is refused'
);
select throws_ok(
    pg_temp.enqueue_sql('text', jsonb_build_object('body', repeat('a', 4097))),
    '22023', 'enqueue_whatsapp_message: payload.body must be a string of 1 to 4096 characters',
    'text: a body over 4096 characters is refused'
);
select is(
    private.whatsapp_payload_problem('text', jsonb_build_object('body', repeat('a', 4096))),
    null,
    'text: a body of 4096 characters is fine'
);
select throws_ok(
    pg_temp.enqueue_sql('text', '{"body": 42}'),
    '22023', 'enqueue_whatsapp_message: payload.body must be a string of 1 to 4096 characters',
    'text: a body that is not a string is refused'
);
select throws_ok(
    pg_temp.enqueue_sql('text', '{"body": "hi", "previewUrl": true}'),
    '22023',
    'enqueue_whatsapp_message: payload has an unknown field previewUrl (known: body, preview_url)',
    'text: an unknown field is refused, naming it'
);
select throws_ok(
    pg_temp.enqueue_sql('text', '{"body": "hi", "preview_url": "yes"}'),
    '22023', 'enqueue_whatsapp_message: payload.preview_url must be true or false',
    'text: a preview_url that is not a boolean is refused'
);

-- template
select throws_ok(
    pg_temp.enqueue_sql('template', '{"name": "Ride Update", "language": {"code": "en"}}'),
    '22023',
    'enqueue_whatsapp_message: payload.name must be a template name (lower case letters, digits '
    || 'and _, at most 512)',
    'template: a name with capitals and a space is refused'
);
select throws_ok(
    pg_temp.enqueue_sql('template', '{"name": "ride_update"}'),
    '22023', 'enqueue_whatsapp_message: payload.language must be a JSON object',
    'template: a missing language is refused'
);
select throws_ok(
    pg_temp.enqueue_sql('template', '{"name": "ride_update", "language": {"code": "english"}}'),
    '22023',
    'enqueue_whatsapp_message: payload.language.code must be a language code such as en or en_US',
    'template: a language code that is not one is refused'
);
select is(
    private.whatsapp_payload_problem('template', '{"name": "ride_update", "language": {}}'),
    'payload.language.code must be a language code such as en or en_US',
    'template: a language without a code is refused'
);
select throws_ok(
    pg_temp.enqueue_sql(
        'template',
        '{"name": "ride_update", "language": {"code": "en"}, "components": {"type": "body"}}'
    ),
    '22023', 'enqueue_whatsapp_message: payload.components must be an array',
    'template: components that are not an array are refused'
);
select throws_ok(
    pg_temp.enqueue_sql(
        'template',
        '{"name": "ride_update", "language": {"code": "en"},
          "components": [{"type": "header"}, {"parameters": []}]}'
    ),
    '22023', 'enqueue_whatsapp_message: payload.components[1] must be an object with a type',
    'template: a component without a type is refused, naming its index'
);
select is(
    private.whatsapp_payload_problem(
        'template', '{"content_sid": "HX0123", "content_variables": "{\"1\": \"5\"}"}'
    ),
    'payload.name must be a template name (lower case letters, digits and _, at most 512)',
    'template: a name is required even beside Twilio''s content_sid'
);

-- media
select throws_ok(
    pg_temp.enqueue_sql('media', '{"media_type": "gif", "link": "https://example.com/a.gif"}'),
    '22023',
    'enqueue_whatsapp_message: payload.media_type must be image, audio, video, document or '
    || 'sticker',
    'media: an unknown media_type is refused'
);
select throws_ok(
    pg_temp.enqueue_sql(
        'media', '{"media_type": "image", "id": "1234", "link": "https://example.com/a.jpg"}'
    ),
    '22023',
    'enqueue_whatsapp_message: payload must have exactly one of id (an uploaded media id) and link',
    'media: both id and link are refused'
);
select throws_ok(
    pg_temp.enqueue_sql('media', '{"media_type": "image"}'),
    '22023',
    'enqueue_whatsapp_message: payload must have exactly one of id (an uploaded media id) and link',
    'media: neither id nor link is refused'
);
select throws_ok(
    pg_temp.enqueue_sql('media', '{"media_type": "image", "link": "ftp://example.com/a.jpg"}'),
    '22023', 'enqueue_whatsapp_message: payload.link must be an http or https URL',
    'media: a link that is not http(s) is refused'
);
select throws_ok(
    pg_temp.enqueue_sql(
        'media', '{"media_type": "audio", "id": "1234", "caption": "Listen"}'
    ),
    '22023', 'enqueue_whatsapp_message: payload.caption is only for image, video and document',
    'media: a caption on audio is refused'
);
select throws_ok(
    pg_temp.enqueue_sql('media', '{"media_type": "image", "id": "1234", "filename": "a.jpg"}'),
    '22023', 'enqueue_whatsapp_message: payload.filename is only for document',
    'media: a filename on an image is refused'
);
select throws_ok(
    pg_temp.enqueue_sql(
        'media',
        jsonb_build_object('media_type', 'image', 'id', '1234', 'caption', repeat('c', 1025))
    ),
    '22023', 'enqueue_whatsapp_message: payload.caption must be a string of 1 to 1024 characters',
    'media: a caption over 1024 characters is refused'
);
select is(
    private.whatsapp_payload_problem(
        'media',
        jsonb_build_object('media_type', 'video', 'id', '1234', 'caption', repeat('c', 1024))
    ),
    null,
    'media: a video by id with a caption of 1024 characters is fine'
);

-- interactive
select throws_ok(
    pg_temp.enqueue_sql(
        'interactive',
        pg_temp.buttons(jsonb_build_array(pg_temp.reply('yes', 'Yes'))) || '{"type": "product"}'
    ),
    '22023', 'enqueue_whatsapp_message: payload.type must be button or list',
    'interactive: a type other than button or list is refused'
);
select throws_ok(
    pg_temp.enqueue_sql(
        'interactive',
        pg_temp.buttons(jsonb_build_array(pg_temp.reply('yes', 'Yes'))) || '{"body": {}}'
    ),
    '22023', 'enqueue_whatsapp_message: payload.body.text is required',
    'interactive: a body without text is refused'
);
select throws_ok(
    pg_temp.enqueue_sql(
        'interactive',
        pg_temp.buttons(jsonb_build_array(
            pg_temp.reply('a', 'A'), pg_temp.reply('b', 'B'), pg_temp.reply('c', 'C'),
            pg_temp.reply('d', 'D')
        ))
    ),
    '22023',
    'enqueue_whatsapp_message: payload.action.buttons must be an array of 1 to 3 reply buttons',
    'interactive: 4 buttons are refused'
);
select throws_ok(
    pg_temp.enqueue_sql(
        'interactive',
        pg_temp.buttons(
            jsonb_build_array(pg_temp.reply('a', 'A'), pg_temp.reply('b', repeat('t', 21)))
        )
    ),
    '22023',
    'enqueue_whatsapp_message: payload.action.buttons[1].reply.title must be a string of 1 to 20 '
    || 'characters',
    'interactive: a button title of 21 characters is refused, naming the button'
);
select is(
    private.whatsapp_payload_problem(
        'interactive', pg_temp.buttons(jsonb_build_array(pg_temp.reply('a', repeat('t', 20))))
    ),
    null,
    'interactive: a button title of 20 characters is fine'
);
select throws_ok(
    pg_temp.enqueue_sql(
        'interactive',
        pg_temp.buttons(jsonb_build_array(pg_temp.reply('a', 'Yes'), pg_temp.reply('a', 'No')))
    ),
    '22023',
    'enqueue_whatsapp_message: payload.action.buttons must have distinct reply ids and titles',
    'interactive: duplicate button ids are refused'
);
select throws_ok(
    pg_temp.enqueue_sql(
        'interactive', pg_temp.buttons(jsonb_build_array(pg_temp.reply('a', 'Open', 'url')))
    ),
    '22023', 'enqueue_whatsapp_message: payload.action.buttons[0].type must be reply',
    'interactive: a button whose type is not reply is refused'
);
select throws_ok(
    pg_temp.enqueue_sql(
        'interactive', pg_temp.list(jsonb_build_array(jsonb_build_object(
            'title', 'All', 'rows', pg_temp.list_rows('r', 11)
        )))
    ),
    '22023',
    'enqueue_whatsapp_message: payload.action.sections must hold at most 10 rows in all, with '
    || 'distinct ids',
    'interactive: a list of 11 rows is refused'
);
select is(
    private.whatsapp_payload_problem(
        'interactive', pg_temp.list(jsonb_build_array(
            jsonb_build_object('title', 'Near', 'rows', pg_temp.list_rows('n', 5)),
            jsonb_build_object('title', 'Far', 'rows', pg_temp.list_rows('f', 5))
        ))
    ),
    null,
    'interactive: a list of 10 rows in two titled sections is fine'
);
select throws_ok(
    pg_temp.enqueue_sql(
        'interactive', pg_temp.list(jsonb_build_array(jsonb_build_object(
            'rows', jsonb_build_array(jsonb_build_object('id', 'r1', 'title', repeat('t', 25)))
        )))
    ),
    '22023',
    'enqueue_whatsapp_message: payload.action.sections[0].rows[0].title must be a string of 1 to '
    || '24 characters',
    'interactive: a row title of 25 characters is refused, naming the row'
);
select throws_ok(
    pg_temp.enqueue_sql(
        'interactive', pg_temp.list(jsonb_build_array(
            jsonb_build_object('rows', pg_temp.list_rows('n', 2)),
            jsonb_build_object('rows', pg_temp.list_rows('f', 2))
        ))
    ),
    '22023', 'enqueue_whatsapp_message: payload.action.sections[0].title is required',
    'interactive: two sections without titles are refused'
);
select throws_ok(
    pg_temp.enqueue_sql(
        'interactive',
        pg_temp.buttons(jsonb_build_array(pg_temp.reply('a', 'A')))
        || '{"header": {"type": "audio"}}'
    ),
    '22023',
    'enqueue_whatsapp_message: payload.header.type must be text, image, video or document',
    'interactive: a header of type audio is refused'
);
select throws_ok(
    pg_temp.enqueue_sql(
        'interactive',
        pg_temp.buttons(jsonb_build_array(pg_temp.reply('a', 'A')))
        || jsonb_build_object('footer', jsonb_build_object('text', repeat('f', 61)))
    ),
    '22023', 'enqueue_whatsapp_message: payload.footer.text must be a string of 1 to 60 characters',
    'interactive: a footer over 60 characters is refused'
);

-- location
select throws_ok(
    pg_temp.enqueue_sql('location', '{"latitude": 91, "longitude": 30}'),
    '22023', 'enqueue_whatsapp_message: payload.latitude must be a number from -90 to 90',
    'location: latitude 91 is refused'
);
select throws_ok(
    pg_temp.enqueue_sql('location', '{"latitude": -1.9, "longitude": "30.06"}'),
    '22023', 'enqueue_whatsapp_message: payload.longitude must be a number from -180 to 180',
    'location: a longitude written as a string is refused'
);
select throws_ok(
    pg_temp.enqueue_sql('location', '{"latitude": -1.9, "longitude": 30, "url": "https://x.rw"}'),
    '22023',
    'enqueue_whatsapp_message: payload has an unknown field url (known: latitude, longitude, '
    || 'name, address)',
    'location: an unknown field is refused'
);

-- any type
select throws_ok(
    pg_temp.enqueue_sql('text', '["hello"]'),
    '22023', 'enqueue_whatsapp_message: payload must be a JSON object',
    'a payload that is not an object is refused'
);
select throws_ok(
    pg_temp.enqueue_sql('text', null),
    '22023', 'enqueue_whatsapp_message: payload must be a JSON object',
    'a null payload is refused'
);
select throws_ok(
    pg_temp.enqueue_sql(
        'template',
        jsonb_build_object(
            'name', 'ride_update', 'language', jsonb_build_object('code', 'en'),
            'components', jsonb_build_array(
                jsonb_build_object('type', 'body', 'text', repeat('x', 65536))
            )
        )
    ),
    '22023', 'enqueue_whatsapp_message: payload must be at most 64 kB',
    'a payload over 64 kB is refused'
);
select throws_ok(
    pg_temp.enqueue_sql('video', '{"link": "https://example.com/v.mp4"}'),
    '22023',
    'enqueue_whatsapp_message: message_type must be text, template, media, interactive or location',
    'an unknown message type is refused'
);
select throws_ok(
    pg_temp.enqueue_sql('text', '{"body": "hi"}', '12345'),
    '22023',
    'enqueue_whatsapp_message: p_recipient_phone must be a phone number (E.164, e.g. '
    || '+250788123456; got ''12345'')',
    'a phone number too short to be one is refused'
);
select throws_ok(
    pg_temp.enqueue_sql('text', '{"body": "hi"}', null),
    '22023',
    'enqueue_whatsapp_message: p_recipient_phone must be a phone number (E.164, e.g. '
    || '+250788123456; got null)',
    'a null phone number is refused'
);
select throws_ok(
    $$select public.enqueue_whatsapp_message('+250788000001', 'text', '{"body": "hi"}', 0)$$,
    '22023', 'enqueue_whatsapp_message: p_priority must be 1 to 10 (got 0)',
    'priority 0 is refused'
);
select throws_ok(
    $$select public.enqueue_whatsapp_message('+250788000001', 'text', '{"body": "hi"}', 11)$$,
    '22023', 'enqueue_whatsapp_message: p_priority must be 1 to 10 (got 11)',
    'priority 11 is refused'
);
select throws_ok(
    format(
        'select public.enqueue_whatsapp_message(%L, %L, %L, 5, null, null, %L)',
        '+250788000001', 'text', '{"body": "hi"}', repeat('k', 256)
    ),
    '22023', 'enqueue_whatsapp_message: p_idempotency_key must be 1 to 255 characters',
    'an idempotency key of 256 characters is refused'
);
select throws_ok(
    $$select public.enqueue_whatsapp_message(
        '+250788000001', 'text', '{"body": "hi"}', 5, null, null, '')$$,
    '22023', 'enqueue_whatsapp_message: p_idempotency_key must be 1 to 255 characters',
    'an empty idempotency key is refused'
);
select is(
    (select count(*) from public.whatsapp_message_queue), pg_temp.seen('queued before refusals'),
    'refused enqueues store nothing'
);

-- The 24-hour customer service window ---------------------------------------------------------

select throws_ok(
    pg_temp.enqueue_sql('text', '{"body": "hi"}', '+250788000099'),
    'PT409', null,
    'a free-form message to a recipient who never wrote is PT409'
);
select throws_ok(
    pg_temp.enqueue_sql('location', '{"latitude": 0, "longitude": 0}', '+250788000099'),
    'PT409', null,
    'so is any other free-form type (location)'
);
insert into pg_temp.seen (note, n) values
('23 hours', public.enqueue_whatsapp_message('+250788000091', 'text', '{"body": "hi"}')),
(
    'within window',
    public.enqueue_whatsapp_message(
        '+250788000091', 'text', '{"body": "later"}', 5, null, now() + interval '59 minutes'
    )
);
select is(
    (select count(*) from public.whatsapp_message_queue
      where id in (pg_temp.seen('23 hours'), pg_temp.seen('within window'))),
    2::bigint,
    'a recipient who wrote 23 hours ago may get a free-form message now, or due before the window '
    || 'closes'
);
select throws_ok(
    pg_temp.enqueue_sql('text', '{"body": "hi"}', '+250788000092'),
    'PT409', null,
    'a recipient who wrote 25 hours ago may not'
);
select throws_ok(
    $$select public.enqueue_whatsapp_message(
        '+250788000091', 'text', '{"body": "hi"}', 5, null, now() + interval '2 hours')$$,
    'PT409', null,
    'a free-form message due after the window closes is PT409'
);
insert into pg_temp.seen (note, n) values
(
    'template never wrote',
    public.enqueue_whatsapp_message(
        '+250788000099', 'template', '{"name": "welcome", "language": {"code": "rw"}}'
    )
),
(
    'template window closed',
    public.enqueue_whatsapp_message(
        '+250788000092', 'template', '{"name": "welcome", "language": {"code": "rw"}}', 5, null,
        now() + interval '3 days'
    )
);
select is(
    (select count(*) from public.whatsapp_message_queue
      where id in (pg_temp.seen('template never wrote'), pg_temp.seen('template window closed'))),
    2::bigint,
    'a template is always accepted, window or not'
);

-- claim_whatsapp_messages ---------------------------------------------------------------------

delete from public.whatsapp_message_queue;
insert into pg_temp.seen (note, n) values
('r1 first', public.enqueue_whatsapp_message('+250788000001', 'text', '{"body": "1"}', 2)),
('r1 urgent', public.enqueue_whatsapp_message('+250788000001', 'text', '{"body": "2"}', 9)),
('r2', public.enqueue_whatsapp_message('+250788000002', 'text', '{"body": "1"}', 5)),
(
    'r3',
    public.enqueue_whatsapp_message(
        '+250788000003', 'template', '{"name": "welcome", "language": {"code": "en"}}', 8
    )
),
(
    'r4 later',
    public.enqueue_whatsapp_message(
        '+250788000004', 'text', '{"body": "1"}', 10, null, now() + interval '1 hour'
    )
),
(
    'r5 second',
    public.enqueue_whatsapp_message('+250788000005', 'text', '{"body": "2"}', 5, null, now())
),
(
    'r5 first',
    public.enqueue_whatsapp_message(
        '+250788000005', 'text', '{"body": "1"}', 5, null, now() - interval '1 minute'
    )
);

select results_eq(
    $$select id, attempts, claimed_by from public.claim_whatsapp_messages(1, 30, 'w1')$$,
    $$values (pg_temp.seen('r3'), 1, 'w1'::text)$$,
    'claim_whatsapp_messages takes the highest priority first (8): the 9 waits behind its '
    || 'recipient''s earlier message'
);
select results_eq(
    $$select id from public.claim_whatsapp_messages(10, 30, 'w2')$$,
    $$values (pg_temp.seen('r2')), (pg_temp.seen('r5 first')), (pg_temp.seen('r1 first'))$$,
    'then one per recipient by priority: a recipient''s message scheduled earliest (not enqueued '
    || 'first), never a second one, nothing scheduled later'
);
select ok(
    (select bool_and(
        status = 'pending' and claimed_at = now() and visible_at = now() + interval '30 seconds'
    )
       from public.whatsapp_message_queue
      where id in (pg_temp.seen('r3'), pg_temp.seen('r2'), pg_temp.seen('r1 first'))),
    'claimed messages stay pending, hidden for the visibility timeout'
);
select is_empty(
    $$select id from public.claim_whatsapp_messages(10, 30, 'w3')$$,
    'while a recipient''s message is in flight the next one to it is not claimed'
);
select is(
    public.record_whatsapp_sends(
        jsonb_build_array(pg_temp.result('r1 first', 'retry', '{"retry_in_s": 60}')), 'w2'
    ),
    pg_temp.counts(0, 1, 0, 0, 0, 0, 0, 0),
    'the sender puts a message back for a retry in a minute'
);
select is_empty(
    $$select id from public.claim_whatsapp_messages(10, 30, 'w3')$$,
    'while a recipient''s message waits for its retry the next one to it is not claimed either'
);
select is(
    public.record_whatsapp_sends(
        jsonb_build_array(pg_temp.sent('r5 first', 'wamid.R5-1')), 'w2'
    ),
    pg_temp.counts(1, 0, 0, 0, 0, 0, 0, 1),
    'the sender records a message sent'
);
select results_eq(
    $$select id, claimed_by from public.claim_whatsapp_messages(10, 30, 'w3')$$,
    $$values (pg_temp.seen('r5 second'), 'w3'::text)$$,
    'once a recipient''s message is sent its next one is claimed'
);
-- A message scheduled before one already in flight to the same recipient.
insert into pg_temp.seen (note, n) values (
    'r5 backdated',
    public.enqueue_whatsapp_message(
        '+250788000005', 'text', '{"body": "0"}', 5, null, now() - interval '1 hour'
    )
);
select is_empty(
    $$select id from public.claim_whatsapp_messages(10, 30, 'w3')$$,
    'a message scheduled before one in flight to its recipient waits for it too (one at a time '
    || 'per recipient)'
);
delete from public.whatsapp_message_queue where id = pg_temp.seen('r5 backdated');

-- A lease that runs out: claimed again, by another worker, whose result alone counts.
update public.whatsapp_message_queue set visible_at = now() - interval '1 second'
where id = pg_temp.seen('r2');
select results_eq(
    $$select id, attempts, claimed_by from public.claim_whatsapp_messages(10, 30, 'w4')$$,
    $$values (pg_temp.seen('r2'), 2, 'w4'::text)$$,
    'a message whose lease ran out is claimed again, its attempts counted'
);
select is(
    public.record_whatsapp_sends(jsonb_build_array(pg_temp.sent('r2', 'wamid.R2-late')), 'w2'),
    pg_temp.counts(0, 0, 0, 0, 0, 0, 1, 0),
    'the late result of the worker that lost the lease is ignored'
);
select results_eq(
    $$select status, claimed_by, provider_message_id from public.whatsapp_message_queue
       where id = pg_temp.seen('r2')$$,
    $$values ('pending'::text, 'w4'::text, null::text)$$,
    'and changes nothing'
);

-- The last delivery's lease runs out: dead, and the recipient's next message goes.
insert into pg_temp.seen (note, n) values
('fragile', public.enqueue_whatsapp_message('+250788000006', 'text', '{"body": "1"}')),
('after fragile', public.enqueue_whatsapp_message('+250788000006', 'text', '{"body": "2"}'));
update public.whatsapp_message_queue set max_retries = 1 where id = pg_temp.seen('fragile');
insert into pg_temp.seen (note, n)
select 'fragile claim 1', count(*) from public.claim_whatsapp_messages(10, 30, 'w1');
update public.whatsapp_message_queue set visible_at = now() - interval '1 second'
where id = pg_temp.seen('fragile');
select results_eq(
    $$select id, attempts from public.claim_whatsapp_messages(10, 30, 'w1')$$,
    $$values (pg_temp.seen('fragile'), 2)$$,
    'a message with max_retries 1 is delivered a second time when the first lease runs out'
);
update public.whatsapp_message_queue set visible_at = now() - interval '1 second'
where id = pg_temp.seen('fragile');
select is_empty(
    $$select id from public.claim_whatsapp_messages(10, 30, 'w1')$$,
    'when the last lease runs out it is not returned again'
);
select results_eq(
    $$select status, attempts, last_error, finished_at = now() from public.whatsapp_message_queue
       where id = pg_temp.seen('fragile')$$,
    $$values ('dead'::text, 2, 'visibility timeout expired on the last attempt'::text, true)$$,
    'but dead-lettered, saying why'
);
select results_eq(
    $$select id from public.claim_whatsapp_messages(10, 30, 'w1')$$,
    $$values (pg_temp.seen('after fragile'))$$,
    'and the recipient''s next message is claimed'
);

select throws_ok(
    $$select public.claim_whatsapp_messages(0)$$,
    '22023', 'claim_whatsapp_messages: p_batch_size must be 1 to 1000 (got 0)',
    'a batch of 0 is refused'
);
select throws_ok(
    $$select public.claim_whatsapp_messages(1001)$$,
    '22023', 'claim_whatsapp_messages: p_batch_size must be 1 to 1000 (got 1001)',
    'a batch over 1000 is refused'
);
select throws_ok(
    $$select public.claim_whatsapp_messages(10, 0)$$,
    '22023', 'claim_whatsapp_messages: p_visibility_timeout_s must be 1 to 43200 (got 0)',
    'a visibility timeout of 0 is refused'
);
select throws_ok(
    $$select public.claim_whatsapp_messages(10, null)$$,
    '22023', 'claim_whatsapp_messages: p_visibility_timeout_s must be 1 to 43200 (got null)',
    'a null visibility timeout is refused'
);

-- record_whatsapp_sends -----------------------------------------------------------------------

delete from public.whatsapp_message_queue;
insert into pg_temp.seen (note, n) values
-- Claimed by w2 first (the highest priority), so that w1's results for it are ignored.
('s other', public.enqueue_whatsapp_message('+250788000009', 'text', '{"body": "o"}', 10)),
('s text', public.enqueue_whatsapp_message('+250788000001', 'text', '{"body": "Your driver"}')),
(
    's media',
    public.enqueue_whatsapp_message(
        '+250788000002', 'media',
        '{"media_type": "image", "link": "https://example.com/car.jpg", "caption": "Car"}'
    )
),
(
    's early',
    public.enqueue_whatsapp_message(
        '+250788000003', 'template', '{"name": "welcome", "language": {"code": "en"}}', 5,
        'corr-early'
    )
),
(
    's interactive',
    public.enqueue_whatsapp_message(
        '+250788000011', 'interactive', pg_temp.buttons(jsonb_build_array(pg_temp.reply('a', 'A')))
    )
),
(
    's location',
    public.enqueue_whatsapp_message(
        '+250788000012', 'location', '{"latitude": -1.95, "longitude": 30.06}'
    )
),
('s retry', public.enqueue_whatsapp_message('+250788000004', 'text', '{"body": "r"}')),
('s dead', public.enqueue_whatsapp_message('+250788000005', 'text', '{"body": "d"}')),
('s failed', public.enqueue_whatsapp_message('+250788000006', 'text', '{"body": "f"}')),
('s unconfirmed', public.enqueue_whatsapp_message('+250788000007', 'text', '{"body": "u"}')),
('s released', public.enqueue_whatsapp_message('+250788000008', 'text', '{"body": "x"}')),
(
    's unclaimed',
    public.enqueue_whatsapp_message(
        '+250788000010', 'text', '{"body": "n"}', 5, null, now() + interval '1 hour'
    )
);
update public.whatsapp_message_queue set max_retries = 1 where id = pg_temp.seen('s retry');
update public.whatsapp_message_queue set max_retries = 0 where id = pg_temp.seen('s dead');
insert into pg_temp.seen (note, n)
select 'w2 claimed', count(*) from public.claim_whatsapp_messages(1, 60, 'w2');
insert into pg_temp.seen (note, n)
select 'w1 claimed', count(*) from public.claim_whatsapp_messages(100, 60, 'w1');
select is(
    pg_temp.seen('w1 claimed'), 10::bigint,
    'w1 holds every message of the batch but the one w2 holds and the one not yet due'
);

-- Statuses that arrived before the sender recorded its send.
insert into private.pending_message_statuses (wamid, status, provider_timestamp, payload) values
('wamid.EARLY', 'delivered', now() - interval '1 second', '{"status": "delivered"}'),
('wamid.EARLY', 'sent', now() - interval '2 seconds', '{"status": "sent"}');

select is(
    public.record_whatsapp_sends(
        jsonb_build_array(
            pg_temp.sent('s text', 'wamid.TEXT'),
            pg_temp.sent('s media', 'wamid.MEDIA'),
            pg_temp.sent('s early', 'wamid.EARLY', 'twilio'),
            pg_temp.sent('s interactive', 'wamid.INTERACTIVE'),
            pg_temp.sent('s location', 'wamid.LOCATION'),
            pg_temp.result(
                's retry', 'retry',
                '{"retry_in_s": 120, "error_code": "130429", "error": "Rate limit hit"}'
            ),
            pg_temp.result('s dead', 'retry', '{"error_code": "131000", "error": "Unknown"}'),
            pg_temp.result(
                's failed', 'failed', '{"error_code": "131026", "error": "Message undeliverable"}'
            ),
            pg_temp.result('s unconfirmed', 'unconfirmed', '{"error": "read timeout"}'),
            pg_temp.result('s released', 'released'),
            pg_temp.sent('s other', 'wamid.OTHER'),
            pg_temp.sent('s unclaimed', 'wamid.UNCLAIMED'),
            '{"id": -1, "outcome": "released"}'::jsonb
        ),
        'w1'
    ),
    pg_temp.counts(5, 1, 1, 1, 1, 1, 3, 5),
    'record_whatsapp_sends returns the counts per outcome, and what it ignored (another worker''s '
    || 'message, one not claimed, one unknown)'
);

select results_eq(
    $$select status, sent_at = now(), finished_at = now(), provider, provider_message_id,
             claimed_by, attempts
        from public.whatsapp_message_queue
       where id in (pg_temp.seen('s text'), pg_temp.seen('s early')) order by id$$,
    $$values ('sent'::text, true, true, 'meta'::text, 'wamid.TEXT'::text, 'w1'::text, 1),
             ('sent', true, true, 'twilio', 'wamid.EARLY', 'w1', 1)$$,
    'a sent message is sent, finished, with its provider and the provider''s message id'
);
select results_eq(
    $$select wamid, direction, provider, message_type, body, user_id, mapping_id,
             (metadata ->> 'queue_id')::bigint, metadata ->> 'recipient_phone', correlation_id
        from public.message_tracking
       where wamid in ('wamid.TEXT', 'wamid.MEDIA', 'wamid.LOCATION') order by wamid$$,
    $$values
        ('wamid.LOCATION'::text, 'OUTBOUND'::text, 'meta'::text, 'location'::text, null::text,
         null::uuid, (select id from public.conversation_mappings where wa_id = '250788000012'),
         pg_temp.seen('s location'), '+250788000012'::text, null::text),
        ('wamid.MEDIA', 'OUTBOUND', 'meta', 'image', 'Car', null,
         (select id from public.conversation_mappings where wa_id = '250788000002'),
         pg_temp.seen('s media'), '+250788000002', null),
        ('wamid.TEXT', 'OUTBOUND', 'meta', 'text', 'Your driver',
         (select id from public.users where phone_number = '+250788000001'),
         (select id from public.conversation_mappings where wa_id = '250788000001'),
         pg_temp.seen('s text'), '+250788000001', null)$$,
    'each sent message gets an OUTBOUND message_tracking row under its wamid: media as its '
    || 'media_type, the body or caption, the known user and conversation, the queue id'
);
select is(
    (select status from public.message_tracking where wamid = 'wamid.TEXT'), 'accepted',
    'its status is accepted'
);
select is(
    (select body from public.message_tracking where wamid = 'wamid.INTERACTIVE'), 'Pick one',
    'an interactive message''s tracked body is its body.text'
);
select results_eq(
    $$select provider, message_type, status, sent_at = now() - interval '2 seconds',
             delivered_at = now() - interval '1 second', correlation_id
        from public.message_tracking where wamid = 'wamid.EARLY'$$,
    $$values ('twilio'::text, 'template'::text, 'delivered'::text, true, true,
              'corr-early'::text)$$,
    'statuses that arrived before the row are applied when the sent message is recorded'
);
select is_empty(
    $$select wamid from private.pending_message_statuses where wamid = 'wamid.EARLY'$$,
    'and are no longer pending'
);

select results_eq(
    $$select status, attempts, visible_at = now() + interval '120 seconds', claimed_at, claimed_by,
             last_error_code, last_error, finished_at, sent_at
        from public.whatsapp_message_queue where id = pg_temp.seen('s retry')$$,
    $$values ('pending'::text, 1, true, null::timestamptz, null::text, '130429'::text,
              'Rate limit hit'::text, null::timestamptz, null::timestamptz)$$,
    'retry: pending again, visible after retry_in_s, its claim cleared, the error kept'
);
select results_eq(
    $$select status, attempts, last_error_code, last_error, finished_at = now()
        from public.whatsapp_message_queue where id = pg_temp.seen('s dead')$$,
    $$values ('dead'::text, 1, '131000'::text, 'Unknown'::text, true)$$,
    'retry once attempts exceed max_retries (0): dead, finished'
);
select results_eq(
    $$select status, last_error_code, last_error, finished_at = now(), sent_at,
             provider_message_id
        from public.whatsapp_message_queue where id = pg_temp.seen('s failed')$$,
    $$values ('failed'::text, '131026'::text, 'Message undeliverable'::text, true,
              null::timestamptz, null::text)$$,
    'failed: terminal, finished, with the error'
);
select results_eq(
    $$select status, last_error, finished_at = now()
        from public.whatsapp_message_queue where id = pg_temp.seen('s unconfirmed')$$,
    $$values ('unconfirmed'::text, 'read timeout'::text, true)$$,
    'unconfirmed: kept aside, finished'
);
select results_eq(
    $$select status, attempts, visible_at = now(), claimed_at, claimed_by, finished_at
        from public.whatsapp_message_queue where id = pg_temp.seen('s released')$$,
    $$values ('pending'::text, 0, true, null::timestamptz, null::text, null::timestamptz)$$,
    'released: pending and visible now, the delivery not counted'
);
select results_eq(
    $$select id, status, attempts, claimed_by, provider_message_id
        from public.whatsapp_message_queue
       where id in (pg_temp.seen('s other'), pg_temp.seen('s unclaimed')) order by id$$,
    $$values (pg_temp.seen('s other'), 'pending'::text, 1, 'w2'::text, null::text),
             (pg_temp.seen('s unclaimed'), 'pending', 0, null, null)$$,
    'results for a message another worker holds, or nobody claimed, change nothing'
);
select is_empty(
    $$select wamid from public.message_tracking where wamid in ('wamid.OTHER', 'wamid.UNCLAIMED')$$,
    'and track nothing'
);
select results_eq(
    $$select event_type, aggregate_id, (payload ->> 'queue_id')::bigint, payload ->> 'error_code',
             payload ->> 'recipient_phone', (payload ->> 'attempts')::integer
        from public.outbox_events where aggregate_type = 'whatsapp_message_queue'
       order by event_type$$,
    $$values
        ('whatsapp.send_dead'::text, pg_temp.seen('s dead')::text, pg_temp.seen('s dead'),
         '131000'::text, '+250788000005'::text, 1),
        ('whatsapp.send_failed', pg_temp.seen('s failed')::text, pg_temp.seen('s failed'),
         '131026', '+250788000006', 1),
        ('whatsapp.send_unconfirmed', pg_temp.seen('s unconfirmed')::text,
         pg_temp.seen('s unconfirmed'), null, '+250788000007', 1)$$,
    'failed, dead and unconfirmed messages emit whatsapp.send_<status> with the error code'
);

-- The retried message, delivered a second time (max_retries 1), fails again: dead.
update public.whatsapp_message_queue set visible_at = now() where id = pg_temp.seen('s retry');
select results_eq(
    $$select id, attempts from public.claim_whatsapp_messages(100, 60, 'w1')
       where id = pg_temp.seen('s retry')$$,
    $$values (pg_temp.seen('s retry'), 2)$$,
    'the retried message is claimed again when its backoff is over'
);
insert into pg_temp.seen (note, n)
select 'retried dead', (public.record_whatsapp_sends(
    jsonb_build_array(pg_temp.result('s retry', 'retry', '{"error": "again"}')), 'w1'
) ->> 'dead')::bigint;
select results_eq(
    $$select status, last_error, finished_at = now(), pg_temp.seen('retried dead')
        from public.whatsapp_message_queue where id = pg_temp.seen('s retry')$$,
    $$values ('dead'::text, 'again'::text, true, 1::bigint)$$,
    'and dead when that delivery fails too (attempts 2 > max_retries 1)'
);
-- 's released' was claimed again with it (attempts 1): a retry without retry_in_s, recorded
-- without p_worker_id.
insert into pg_temp.seen (note, n)
select 'backoff retrying', (public.record_whatsapp_sends(
    jsonb_build_array(pg_temp.result('s released', 'retry')), null
) ->> 'retrying')::bigint;
select ok(
    (select visible_at between now() + interval '2 seconds' and now() + interval '2.4 seconds'
            and pg_temp.seen('backoff retrying') = 1
       from public.whatsapp_message_queue where id = pg_temp.seen('s released')),
    'a retry without retry_in_s waits 2^attempts seconds plus up to a fifth; without '
    || 'p_worker_id the holder''s result counts'
);

-- Bad results: refused, changing nothing (w2 still holds 's other').
select throws_ok(
    $$select public.record_whatsapp_sends('{"id": 1, "outcome": "sent"}', 'w2')$$,
    '22023', 'record_whatsapp_sends: p_results must be a JSON array of results',
    'p_results that is not an array is refused'
);
select throws_ok(
    $$select public.record_whatsapp_sends(null, 'w2')$$,
    '22023', 'record_whatsapp_sends: p_results must be a JSON array of results',
    'null p_results is refused'
);
select throws_ok(
    format(
        'select public.record_whatsapp_sends(%L, %L)',
        jsonb_build_array(pg_temp.sent('s other', 'wamid.BAD'), 7), 'w2'
    ),
    '22023', 'record_whatsapp_sends: p_results[1] must be an object',
    'an element that is not an object is refused, naming it'
);
select throws_ok(
    format(
        'select public.record_whatsapp_sends(%L, %L)',
        jsonb_build_array(pg_temp.sent('s other', 'wamid.BAD'), '{"outcome": "released"}'::jsonb),
        'w2'
    ),
    '22023', 'record_whatsapp_sends: p_results[1] needs the message id (a whole number)',
    'a result without an id is refused'
);
select throws_ok(
    format(
        'select public.record_whatsapp_sends(%L, %L)',
        jsonb_build_array(
            pg_temp.sent('s other', 'wamid.BAD'), '{"id": "12", "outcome": "released"}'::jsonb
        ),
        'w2'
    ),
    '22023', 'record_whatsapp_sends: p_results[1] needs the message id (a whole number)',
    'an id that is a string is refused'
);
select throws_ok(
    format(
        'select public.record_whatsapp_sends(%L, %L)',
        jsonb_build_array(
            pg_temp.sent('s other', 'wamid.BAD'), '{"id": 1.5, "outcome": "released"}'::jsonb
        ),
        'w2'
    ),
    '22023', null,
    'an id that is not a whole number is refused with 22023'
);
select throws_ok(
    format(
        'select public.record_whatsapp_sends(%L, %L)',
        jsonb_build_array(
            pg_temp.sent('s other', 'wamid.BAD'), pg_temp.result('s unclaimed', 'delivered')
        ),
        'w2'
    ),
    '22023',
    'record_whatsapp_sends: p_results[1] outcome must be sent, retry, failed, unconfirmed or '
    || 'released',
    'an unknown outcome is refused'
);
select throws_ok(
    format(
        'select public.record_whatsapp_sends(%L, %L)',
        jsonb_build_array(pg_temp.result('s other', 'sent', '{"provider": "meta"}')), 'w2'
    ),
    '22023',
    'record_whatsapp_sends: p_results[0] sent needs provider (meta or twilio) and '
    || 'provider_message_id',
    'sent without provider_message_id is refused'
);
select throws_ok(
    format(
        'select public.record_whatsapp_sends(%L, %L)',
        jsonb_build_array(
            pg_temp.result('s other', 'sent', '{"provider": "vonage", "provider_message_id": "x"}')
        ),
        'w2'
    ),
    '22023',
    'record_whatsapp_sends: p_results[0] sent needs provider (meta or twilio) and '
    || 'provider_message_id',
    'sent by an unknown provider is refused'
);
select throws_ok(
    format(
        'select public.record_whatsapp_sends(%L, %L)',
        jsonb_build_array(
            pg_temp.sent('s other', 'wamid.BAD'),
            pg_temp.result('s unclaimed', 'retry', '{"retry_in_s": -1}')
        ),
        'w2'
    ),
    '22023', 'record_whatsapp_sends: p_results[1] retry_in_s must be 0 to 604800 seconds',
    'a negative retry_in_s is refused'
);
select throws_ok(
    format(
        'select public.record_whatsapp_sends(%L, %L)',
        jsonb_build_array(
            pg_temp.sent('s other', 'wamid.BAD'),
            pg_temp.result('s unclaimed', 'retry', '{"retry_in_s": "soon"}')
        ),
        'w2'
    ),
    '22023', 'record_whatsapp_sends: p_results has an id or retry_in_s that is not a number',
    'a retry_in_s that is not a number is refused'
);
select throws_ok(
    format(
        'select public.record_whatsapp_sends(%L, %L)',
        jsonb_build_array(
            pg_temp.sent('s other', 'wamid.BAD'), pg_temp.result('s other', 'released')
        ),
        'w2'
    ),
    '22023', 'record_whatsapp_sends: p_results names a message more than once',
    'a message named twice is refused'
);
select results_eq(
    $$select status, attempts, claimed_by, provider_message_id, last_error
        from public.whatsapp_message_queue where id = pg_temp.seen('s other')$$,
    $$values ('pending'::text, 1, 'w2'::text, null::text, null::text)$$,
    'refused results change nothing'
);
select is_empty(
    $$select wamid from public.message_tracking where wamid = 'wamid.BAD'$$,
    'and track nothing'
);

-- pause_whatsapp_queue and resume_whatsapp_queue ----------------------------------------------

-- 's unclaimed' falls due.
update public.whatsapp_message_queue set scheduled_at = now(), visible_at = now()
where id = pg_temp.seen('s unclaimed');

select ok(
    public.pause_whatsapp_queue('token expired', '190', 'w1'),
    'pause_whatsapp_queue stops the line: true'
);
select ok(
    not public.pause_whatsapp_queue('account locked', '131031', 'w2'),
    'pausing again is false'
);
select results_eq(
    $$select reason, error_code, paused_by from private.whatsapp_sender_pause$$,
    $$values ('token expired'::text, '190'::text, 'w1'::text)$$,
    'and keeps the first reason'
);
select is_empty(
    $$select id from public.claim_whatsapp_messages(100, 60, 'w3')$$,
    'claims return nothing while the queue is paused, though messages are due'
);
select results_eq(
    $$select attempts from public.whatsapp_message_queue where id = pg_temp.seen('s unclaimed')$$,
    $$values (0)$$,
    'and the messages keep their attempts'
);
select throws_ok(
    $$select public.pause_whatsapp_queue(null)$$,
    '22023', 'pause_whatsapp_queue: p_reason must be 1 to 2000 characters',
    'a null reason is refused'
);
select throws_ok(
    $$select public.pause_whatsapp_queue('')$$,
    '22023', 'pause_whatsapp_queue: p_reason must be 1 to 2000 characters',
    'an empty reason is refused'
);
select ok(public.resume_whatsapp_queue(), 'resume_whatsapp_queue lifts the pause: true');
select ok(not public.resume_whatsapp_queue(), 'resuming again is false');
select results_eq(
    $$select id from public.claim_whatsapp_messages(100, 60, 'w3')$$,
    $$values (pg_temp.seen('s unclaimed'))$$,
    'after resuming claims return due messages again'
);

-- redrive_whatsapp_messages -------------------------------------------------------------------

-- Dead now: 's dead' and 's retry'.
select is(
    public.redrive_whatsapp_messages('dead', array[pg_temp.seen('s dead')]), 1,
    'redrive_whatsapp_messages puts back the dead messages named in p_ids'
);
select results_eq(
    $$select id, status, attempts, visible_at = now(), claimed_at, claimed_by, finished_at
        from public.whatsapp_message_queue
       where id in (pg_temp.seen('s dead'), pg_temp.seen('s retry')) order by id$$,
    $$values
        (pg_temp.seen('s retry'), 'dead'::text, 2, false, null::timestamptz, null::text, now()),
        (pg_temp.seen('s dead'), 'pending', 0, true, null, null, null)$$,
    'pending, visible now, attempts reset, unclaimed and unfinished; the other dead one stays'
);
select is(public.redrive_whatsapp_messages(), 1, 'without p_ids it puts back every dead one');
select is(
    (select status from public.whatsapp_message_queue where id = pg_temp.seen('s retry')),
    'pending',
    'the rest of the dead letters are pending'
);
select is(public.redrive_whatsapp_messages(), 0, 'with no dead letters left it puts back none');
select is(
    public.redrive_whatsapp_messages('unconfirmed'), 1,
    'unconfirmed messages can be redriven after a check'
);
select throws_ok(
    $$select public.redrive_whatsapp_messages('sent')$$,
    '22023', 'redrive_whatsapp_messages: p_status must be dead, failed or unconfirmed',
    'sent messages cannot be redriven'
);
select throws_ok(
    $$select public.redrive_whatsapp_messages(null)$$,
    '22023', 'redrive_whatsapp_messages: p_status must be dead, failed or unconfirmed',
    'a null status is refused'
);

-- Retention -----------------------------------------------------------------------------------

delete from public.whatsapp_message_queue;
insert into public.whatsapp_message_queue (
    recipient_phone, message_type, payload, status, enqueued_at, finished_at, last_error
)
values
('+250788000001', 'text', '{"body": "a"}', 'sent', now() - interval '9 days',
 now() - interval '8 days', 'sent 8 days'),
('+250788000001', 'text', '{"body": "b"}', 'sent', now() - interval '7 days',
 now() - interval '6 days', 'sent 6 days'),
('+250788000001', 'text', '{"body": "c"}', 'failed', now() - interval '9 days',
 now() - interval '8 days', 'failed 8 days'),
('+250788000001', 'text', '{"body": "d"}', 'dead', now() - interval '9 days',
 now() - interval '8 days', 'dead 8 days'),
('+250788000001', 'text', '{"body": "e"}', 'dead', now() - interval '32 days',
 now() - interval '31 days', 'dead 31 days'),
('+250788000001', 'text', '{"body": "f"}', 'unconfirmed', now() - interval '30 days',
 now() - interval '29 days', 'unconfirmed 29 days'),
('+250788000001', 'text', '{"body": "g"}', 'unconfirmed', now() - interval '32 days',
 now() - interval '31 days', 'unconfirmed 31 days'),
('+250788000001', 'text', '{"body": "h"}', 'pending', now() - interval '60 days', null,
 'pending 60 days');
select is(
    private.purge_whatsapp_message_queue(), 4,
    'purge_whatsapp_message_queue deletes sent and failed after 7 days, dead and unconfirmed '
    || 'after 30'
);
select results_eq(
    $$select last_error from public.whatsapp_message_queue order by last_error$$,
    $$values ('dead 8 days'::text), ('pending 60 days'), ('sent 6 days'),
             ('unconfirmed 29 days')$$,
    'younger ones stay, and pending messages however old'
);
select results_eq(
    $$select schedule, command from cron.job where jobname = 'purge-whatsapp-message-queue'$$,
    $$values ('47 * * * *'::text, 'select private.purge_whatsapp_message_queue()'::text)$$,
    'pg_cron purges the queue''s history hourly'
);

-- Who may call and read -----------------------------------------------------------------------

delete from public.whatsapp_message_queue;

create function pg_temp.rpc_calls()
returns table (name text, call text)
language sql
as $$
    values
    (
        'enqueue_whatsapp_message',
        'select public.enqueue_whatsapp_message(''+250788000001'', ''template'', '
        || '''{"name": "welcome", "language": {"code": "en"}}'')'
    ),
    ('claim_whatsapp_messages', 'select public.claim_whatsapp_messages()'),
    ('record_whatsapp_sends', 'select public.record_whatsapp_sends(''[]'')'),
    ('pause_whatsapp_queue', 'select public.pause_whatsapp_queue(''x'')'),
    ('resume_whatsapp_queue', 'select public.resume_whatsapp_queue()'),
    ('redrive_whatsapp_messages', 'select public.redrive_whatsapp_messages()')
$$;

select throws_ok(
    format('select tests.as_role(%L, %L)', 'anon', c.call),
    '42501', 'permission denied for function ' || c.name,
    'anon may not call ' || c.name
)
from pg_temp.rpc_calls() as c;
select throws_ok(
    format(
        'select tests.as_caller(%L, %L, %L)',
        'authenticated',
        '{"sub": "a0000000-0000-4000-8000-000000000001", "role": "authenticated"}',
        c.call
    ),
    '42501', 'permission denied for function ' || c.name,
    'an authenticated user may not call ' || c.name
)
from pg_temp.rpc_calls() as c;
select throws_ok(
    $$select tests.as_role('anon', 'select count(*) from public.whatsapp_message_queue')$$,
    '42501', 'permission denied for table whatsapp_message_queue',
    'anon may not read the queue'
);
select throws_ok(
    $$select tests.as_caller(
        'authenticated', '{"sub": "a0000000-0000-4000-8000-000000000001", "role": "authenticated"}',
        'select count(*) from public.whatsapp_message_queue'
    )$$,
    '42501', 'permission denied for table whatsapp_message_queue',
    'an authenticated user may not read the queue'
);
select throws_ok(
    $$select tests.as_role('service_role', 'delete from public.whatsapp_message_queue')$$,
    '42501', 'permission denied for table whatsapp_message_queue',
    'service_role reads the queue but changes it only through the RPCs'
);
select lives_ok(
    $$select tests.as_role(
        'service_role',
        'insert into pg_temp.seen (note, n) select ''service enqueue'', '
        || 'public.enqueue_whatsapp_message(''+250788000001'', ''text'', ''{"body": "hi"}'')'
    )$$,
    'service_role enqueues'
);
select lives_ok(
    $$select tests.as_role(
        'service_role',
        'insert into pg_temp.seen (note, n) select ''service claim'', id '
        || 'from public.claim_whatsapp_messages(10, 30, ''svc'')'
    )$$,
    'service_role claims'
);
select is(
    pg_temp.seen('service claim'), pg_temp.seen('service enqueue'),
    'and gets the message it enqueued'
);
select is_empty(
    $$select p.oid::regprocedure::text from pg_catalog.pg_proc as p
       where p.pronamespace = 'public'::regnamespace
         and p.proname in ('enqueue_whatsapp_message', 'claim_whatsapp_messages',
                           'record_whatsapp_sends', 'pause_whatsapp_queue',
                           'resume_whatsapp_queue', 'redrive_whatsapp_messages')
         and (coalesce(obj_description(p.oid, 'pg_proc'), '') = ''
              or has_function_privilege('anon', p.oid, 'execute')
              or has_function_privilege('authenticated', p.oid, 'execute')
              or not has_function_privilege('service_role', p.oid, 'execute')
              or not p.prosecdef
              or not coalesce('search_path=""' = any(p.proconfig), false))$$,
    'every WhatsApp queue RPC has a comment, is service_role only, security definer, search_path '
    || 'pinned'
);
select is(
    (select count(*) from pg_catalog.pg_proc as p
      where p.pronamespace = 'public'::regnamespace
        and p.proname in ('enqueue_whatsapp_message', 'claim_whatsapp_messages',
                          'record_whatsapp_sends', 'pause_whatsapp_queue',
                          'resume_whatsapp_queue', 'redrive_whatsapp_messages')),
    6::bigint,
    'the six RPCs exist, one signature each'
);
select is_empty(
    $$select p.oid::regprocedure::text from pg_catalog.pg_proc as p
       where p.pronamespace = 'private'::regnamespace
         and (p.proname like 'whatsapp\_%\_problem' or p.proname like 'json\_%\_problem'
              or p.proname = 'purge_whatsapp_message_queue')
         and (coalesce(obj_description(p.oid, 'pg_proc'), '') = ''
              or p.proconfig is distinct from array['search_path=""'])$$,
    'the private helpers have comments and a pinned search_path'
);

select * from finish();
rollback;
