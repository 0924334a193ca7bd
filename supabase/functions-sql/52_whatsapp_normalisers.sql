-- The WhatsApp providers' webhooks read into one normalised shape: pure, immutable functions
-- that turn a Meta Cloud API body or a Twilio form (as a JSON object) into the messages and
-- statuses (jsonb) that the WhatsApp ingest's storage file stores. They read no table.
--
-- Those that take a payload force generic plans: a custom plan for every call costs more than
-- running it (the WhatsApp ingest's storage file says more).

create or replace function private.jsonb_array(p_value jsonb)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
begin
    return case when pg_catalog.jsonb_typeof(p_value) = 'array' then p_value else '[]' end;
end;
$$;
comment on function private.jsonb_array(jsonb) is
'p_value when it is a JSON array, else an empty one: a missing or mistyped list is no list.';

create or replace function private.unix_time(p_seconds text)
returns timestamptz
language plpgsql
immutable
set search_path = ''
as $$
begin
    -- From 2009 (WhatsApp's first year) to 2100: anything else is a provider's bug, and an
    -- absurd time stored would break every age computed from it.
    return case
        when p_seconds ~ '^[0-9]{1,10}$' and p_seconds::bigint between 1230768000 and 4102444800
            then pg_catalog.to_timestamp(p_seconds::double precision)
    end;
end;
$$;
comment on function private.unix_time(text) is
'A provider''s Unix time in seconds (2009 to 2100) as a timestamp; null when it is not one.';

-- Meta Cloud API ---------------------------------------------------------------------------------

create or replace function private.meta_change_values(p_payload jsonb)
returns setof jsonb
language plpgsql
immutable
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
begin
    return query
    select c.change -> 'value'
    from pg_catalog.jsonb_array_elements(private.jsonb_array(p_payload -> 'entry')) as e (entry)
    cross join lateral pg_catalog.jsonb_array_elements(
        private.jsonb_array(e.entry -> 'changes')
    ) as c (change);
end;
$$;
comment on function private.meta_change_values(jsonb) is
'The value of every change of every entry of a Meta Cloud API webhook, in order.';

create or replace function private.meta_messages(p_payload jsonb)
returns setof jsonb
language plpgsql
immutable
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
begin
    return query
    select pg_catalog.jsonb_build_object(
        'provider', 'meta',
        'wamid', m.message ->> 'id',
        'type', t.message_type,
        'provider_type', m.message ->> 'type',
        'from_phone', private.normalize_phone(m.message ->> 'from'),
        'from_user_id', coalesce(m.message ->> 'from_user_id', k.contact ->> 'user_id'),
        'contact_key', coalesce(m.message ->> 'from', m.message ->> 'from_user_id'),
        'contact_name', k.contact -> 'profile' ->> 'name',
        'at', ts.at,
        -- A time that cannot be read is kept as it came (message_tracking.metadata).
        'unread_at', case when ts.at is null then m.message -> 'timestamp' end,
        'body', case t.message_type
            when 'text' then m.message -> 'text' ->> 'body'
            when 'interactive' then coalesce(
                m.message -> 'interactive' -> 'button_reply' ->> 'title',
                m.message -> 'interactive' -> 'list_reply' ->> 'title'
            )
            when 'button' then m.message -> 'button' ->> 'text'
            when 'system' then m.message -> 'system' ->> 'body'
            -- The note a customer may add to a cart.
            when 'order' then m.message -> 'order' ->> 'text'
            else m.message -> t.message_type ->> 'caption'
        end,
        'media', case
            when t.message_type in ('image', 'audio', 'video', 'document', 'sticker')
                then m.message -> t.message_type
        end,
        'content', case
            when t.message_type = 'unsupported' then m.message
            when t.message_type not in ('text', 'image', 'audio', 'video', 'document', 'sticker')
                then m.message -> t.message_type
        end,
        'context', m.message -> 'context',
        'error', m.message -> 'errors',
        'phone_number_id', c.value -> 'metadata' ->> 'phone_number_id',
        'display_phone_number', c.value -> 'metadata' ->> 'display_phone_number',
        -- What a dead letter keeps: the message in the change value it came in, so a retry
        -- reads it again as it was sent.
        -- (No jsonb_strip_nulls: it would reach into the message and change it.)
        'raw', pg_catalog.jsonb_build_object(
            'messaging_product', c.value -> 'messaging_product',
            'metadata', c.value -> 'metadata',
            'contacts', case
                when k.contact is null then '[]'::jsonb else pg_catalog.jsonb_build_array(k.contact)
            end,
            'messages', pg_catalog.jsonb_build_array(m.message)
        )
    )
    from private.meta_change_values(p_payload) as c (value)
    -- The change's contacts by wa_id and by user id, built once per change: a search of the
    -- list per message grew with the square of the batch. The first of a repeated id wins.
    cross join lateral (
        select
            pg_catalog.jsonb_object_agg(x.contact ->> 'wa_id', x.contact order by x.position desc)
            filter (where x.contact ->> 'wa_id' is not null) as by_wa_id,
            pg_catalog.jsonb_object_agg(
                x.contact ->> 'user_id', x.contact order by x.position desc
            ) filter (where x.contact ->> 'user_id' is not null) as by_user_id
        from pg_catalog.jsonb_array_elements(
            private.jsonb_array(c.value -> 'contacts')
        ) with ordinality as x (contact, position)
    ) as directory
    cross join lateral pg_catalog.jsonb_array_elements(
        private.jsonb_array(c.value -> 'messages')
    ) as m (message)
    -- A type this code does not know yet is kept whole as unsupported, never dropped.
    cross join lateral (
        select case
            when m.message ->> 'type' in (
                'text', 'image', 'audio', 'video', 'document', 'sticker', 'location', 'contacts',
                'interactive', 'button', 'reaction', 'order', 'system'
            ) then m.message ->> 'type'
            else 'unsupported'
        end as message_type
    ) as t
    cross join lateral (
        select coalesce(
            directory.by_wa_id -> (m.message ->> 'from'),
            directory.by_user_id -> (m.message ->> 'from_user_id')
        ) as contact
    ) as k
    cross join lateral (select private.unix_time(m.message ->> 'timestamp') as at) as ts;
end;
$$;
comment on function private.meta_messages(jsonb) is
'The messages of a Meta Cloud API webhook, every entry and change, normalised for '
'private.store_inbound_message.';

create or replace function private.meta_statuses(p_payload jsonb)
returns setof jsonb
language plpgsql
immutable
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
begin
    return query
    select pg_catalog.jsonb_build_object(
        'wamid', s.status ->> 'id',
        'status', s.status ->> 'status',
        'at', private.unix_time(s.status ->> 'timestamp'),
        -- As for messages: a time that cannot be read is kept as it came.
        'unread_at', case
            when private.unix_time(s.status ->> 'timestamp') is null then s.status -> 'timestamp'
        end,
        'error', s.status -> 'errors',
        'payload', s.status,
        'raw', pg_catalog.jsonb_build_object(
            'messaging_product', c.value -> 'messaging_product',
            'metadata', c.value -> 'metadata',
            'statuses', pg_catalog.jsonb_build_array(s.status)
        )
    )
    from private.meta_change_values(p_payload) as c (value)
    cross join lateral pg_catalog.jsonb_array_elements(
        private.jsonb_array(c.value -> 'statuses')
    ) as s (status);
end;
$$;
comment on function private.meta_statuses(jsonb) is
'The statuses of a Meta Cloud API webhook, normalised for private.apply_message_status.';

-- Twilio -----------------------------------------------------------------------------------------

create or replace function private.twilio_is_message(p_form jsonb)
returns boolean
language plpgsql
immutable
set search_path = ''
as $$
-- Inbound messages say received; status callbacks carry the outbound message's status.
begin
    return coalesce(p_form ->> 'MessageStatus', p_form ->> 'SmsStatus', 'received')
        in ('received', 'receiving');
end;
$$;
comment on function private.twilio_is_message(jsonb) is
'Whether a Twilio webhook''s fields are an inbound message rather than a status callback.';

create or replace function private.twilio_messages(p_form jsonb)
returns setof jsonb
language plpgsql
immutable
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
begin
    return query
    select pg_catalog.jsonb_build_object(
        'provider', 'twilio',
        'wamid', p_form ->> 'MessageSid',
        'type', t.message_type,
        'provider_type', p_form ->> 'MessageType',
        'from_phone', private.normalize_phone(p_form ->> 'From'),
        'from_user_id', null,
        'contact_key', coalesce(
            p_form ->> 'WaId', pg_catalog.ltrim(private.normalize_phone(p_form ->> 'From'), '+')
        ),
        'contact_name', p_form ->> 'ProfileName',
        'at', null,
        'body', coalesce(p_form ->> 'ButtonText', nullif(p_form ->> 'Body', '')),
        'media', case when media.items <> '[]' then
            media.items -> 0 || pg_catalog.jsonb_build_object('items', media.items)
        end,
        'content', case t.message_type
            when 'location' then pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                'latitude', p_form ->> 'Latitude',
                'longitude', p_form ->> 'Longitude',
                'address', p_form ->> 'Address',
                'name', p_form ->> 'Label'
            ))
            when 'button' then pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                'text', p_form ->> 'ButtonText', 'payload', p_form ->> 'ButtonPayload'
            ))
            when 'unsupported' then p_form
        end,
        'context', case when p_form ? 'OriginalRepliedMessageSid' then
            pg_catalog.jsonb_build_object('id', p_form ->> 'OriginalRepliedMessageSid')
        end,
        'error', null,
        'phone_number_id', p_form ->> 'To',
        'display_phone_number', pg_catalog.ltrim(private.normalize_phone(p_form ->> 'To'), '+'),
        'raw', p_form
    )
    from (
        select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
            'url', p_form ->> ('MediaUrl' || i.n),
            'mime_type', p_form ->> ('MediaContentType' || i.n)
        ) order by i.n), '[]') as items
        from pg_catalog.generate_series(
            0,
            case
                when p_form ->> 'NumMedia' ~ '^[0-9]{1,2}$' then (p_form ->> 'NumMedia')::integer
                else 0
            end - 1
        ) as i (n)
    ) as media
    cross join lateral (
        select case
            when p_form ->> 'MessageType' in (
                'text', 'image', 'audio', 'video', 'document', 'sticker', 'location', 'contacts',
                'interactive', 'button', 'reaction', 'order'
            ) then p_form ->> 'MessageType'
            when p_form ? 'MessageType' then 'unsupported'
            when p_form ? 'Latitude' then 'location'
            when p_form ? 'ButtonText' then 'button'
            when media.items <> '[]' then case pg_catalog.split_part(
                media.items -> 0 ->> 'mime_type', '/', 1
            )
                when 'image' then 'image'
                when 'audio' then 'audio'
                when 'video' then 'video'
                else 'document'
            end
            else 'text'
        end as message_type
    ) as t
    where private.twilio_is_message(p_form);
end;
$$;
comment on function private.twilio_messages(jsonb) is
'The inbound message of a Twilio WhatsApp webhook (its form fields as a JSON object), '
'normalised for private.store_inbound_message; none for a status callback.';

create or replace function private.twilio_statuses(p_form jsonb)
returns setof jsonb
language plpgsql
immutable
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
begin
    return query
    select pg_catalog.jsonb_build_object(
        'wamid', p_form ->> 'MessageSid',
        'status', case p_form ->> 'MessageStatus'
            when 'queued' then 'accepted'
            when 'accepted' then 'accepted'
            when 'scheduled' then 'accepted'
            when 'sending' then 'accepted'
            when 'undelivered' then 'failed'
            else p_form ->> 'MessageStatus'
        end,
        'at', null,
        'error', case when p_form ? 'ErrorCode' then pg_catalog.jsonb_build_array(
            pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                'code', p_form ->> 'ErrorCode', 'message', p_form ->> 'ErrorMessage'
            ))
        ) end,
        'payload', p_form,
        'raw', p_form
    )
    where not private.twilio_is_message(p_form) and p_form ? 'MessageStatus';
end;
$$;
comment on function private.twilio_statuses(jsonb) is
'The status of a Twilio status callback, in Meta''s terms (undelivered is failed, queued and '
'sending are accepted), normalised for private.apply_message_status.';

create or replace function private.webhook_messages(p_provider text, p_payload jsonb)
returns setof jsonb
language plpgsql
immutable
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
begin
    if p_provider = 'meta' then
        return query select m.message from private.meta_messages(p_payload) as m (message);
    elsif p_provider = 'twilio' then
        return query select m.message from private.twilio_messages(p_payload) as m (message);
    end if;
end;
$$;
comment on function private.webhook_messages(text, jsonb) is
'The inbound messages of p_provider''s webhook payload, normalised.';

create or replace function private.webhook_statuses(p_provider text, p_payload jsonb)
returns setof jsonb
language plpgsql
immutable
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
begin
    if p_provider = 'meta' then
        return query select s.status from private.meta_statuses(p_payload) as s (status);
    elsif p_provider = 'twilio' then
        return query select s.status from private.twilio_statuses(p_payload) as s (status);
    end if;
end;
$$;
comment on function private.webhook_statuses(text, jsonb) is
'The statuses of p_provider''s webhook payload, normalised.';
