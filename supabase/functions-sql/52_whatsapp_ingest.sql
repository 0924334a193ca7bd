-- ingest_whatsapp_webhook: a provider's webhook, stored in one transaction. Each provider's shape
-- is read into the same normalised messages and statuses (jsonb), which one path then stores:
-- users, sessions, conversations, message_tracking, statuses and outbox events.
--
-- Functions whose statements take a payload or a batch force generic plans: with custom plans
-- (the default for a statement's first runs, and for good when the planner prices a generic
-- plan over a batch of unknown size above a custom one) every call planned every statement
-- again, which cost more than running them. A generic plan cannot know a batch's size and
-- prices it at 100 rows, for which reading a whole table looks cheaper than looking each row up
-- (and a generic plan made while a table was small is kept while it grows). The batch functions
-- turn off hash and merge joins and sequential scans, so each row is an index lookup however
-- large the tables grow: a webhook carries at most a few hundred messages.

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

create or replace function private.status_rank(p_status text)
returns integer
language plpgsql
immutable
set search_path = ''
as $$
begin
    return case p_status
        when 'accepted' then 1
        when 'sent' then 2
        when 'delivered' then 3
        when 'read' then 4
        when 'failed' then 5
    end;
end;
$$;
comment on function private.status_rank(text) is
'The order outbound statuses move in: accepted, sent, delivered, read; failed last (terminal).';

create or replace function private.lock_wamid(p_wamid text)
returns void
language plpgsql
volatile
set search_path = ''
as $$
-- A status and the outbound row it is about may arrive in two transactions at once: both take
-- this lock before looking for the other, so one always sees the other. (PL/pgSQL keeps the
-- plan; a SQL function would be planned on every call.)
begin
    perform pg_catalog.pg_advisory_xact_lock(
        pg_catalog.hashtextextended('wamid:' || p_wamid, 0)
    );
end;
$$;
comment on function private.lock_wamid(text) is
'Serialises, until commit, the transactions handling one wamid.';

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

-- Storing ----------------------------------------------------------------------------------------

create or replace function private.find_or_register_user(
    p_phone_number text,
    p_wa_user_id text,
    p_display_name text,
    p_active_at timestamptz,
    out user_id uuid,
    out registered boolean
)
language plpgsql
volatile
set search_path = ''
as $$
declare
    v_user public.users;
begin
    registered := false;
    if p_phone_number is null and p_wa_user_id is null then
        return;
    end if;
    loop
        -- The user id is the stronger identity: a phone number can change hands.
        select u.* into v_user
        from public.users as u
        where u.wa_user_id = p_wa_user_id or u.phone_number = p_phone_number
        order by u.wa_user_id = p_wa_user_id desc nulls last
        limit 1
        for update;
        if found then
            update public.users as u
            set
                last_active_at = greatest(u.last_active_at, p_active_at),
                display_name = coalesce(u.display_name, pg_catalog.left(p_display_name, 256)),
                -- The identifier this message adds, unless another user already has it.
                phone_number = coalesce(u.phone_number, (
                    select p_phone_number where not exists (
                        select from public.users as o where o.phone_number = p_phone_number
                    )
                )),
                wa_user_id = coalesce(u.wa_user_id, (
                    select p_wa_user_id where not exists (
                        select from public.users as o where o.wa_user_id = p_wa_user_id
                    )
                ))
            where u.id = v_user.id;
            user_id := v_user.id;
            return;
        end if;
        insert into public.users (phone_number, wa_user_id, display_name, last_active_at)
        values (p_phone_number, p_wa_user_id, pg_catalog.left(p_display_name, 256), p_active_at)
        on conflict do nothing
        returning id into user_id;
        if user_id is not null then
            insert into public.user_preferences (user_id) values (user_id);
            registered := true;
            return;
        end if;
        -- Another transaction registered this contact meanwhile: find that user.
    end loop;
end;
$$;
comment on function private.find_or_register_user(text, text, text, timestamptz) is
'The user with this phone number or WhatsApp user id, registered (with default preferences) '
'when there is none; registered says which.';

-- Replaced by the batch functions below.
drop function if exists private.store_inbound_message(jsonb, text);

create or replace function private.batch_contacts(p_messages jsonb[])
returns private.inbound_contact[]
language plpgsql
stable
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
begin
    return (
        select pg_catalog.array_agg(row(
            c.contact_key,
            c.phone_number,
            c.wa_user_id,
            c.names[1],
            c.phone_number_ids[1],
            c.display_phone_numbers[1],
            c.wamids[1],
            c.last_at,
            c.message_count,
            null,
            false,
            false,
            null,
            null
        )::private.inbound_contact order by c.contact_key)
        from (
            select
                n.message ->> 'contact_key' as contact_key,
                max(n.message ->> 'from_phone') as phone_number,
                max(n.message ->> 'from_user_id') as wa_user_id,
                pg_catalog.array_agg(n.message ->> 'contact_name' order by n.at desc, n.wamid desc)
                filter (where n.message ->> 'contact_name' is not null) as names,
                pg_catalog.array_agg(
                    n.message ->> 'phone_number_id' order by n.at desc, n.wamid desc
                ) filter (where n.message ->> 'phone_number_id' is not null) as phone_number_ids,
                pg_catalog.array_agg(
                    n.message ->> 'display_phone_number' order by n.at desc, n.wamid desc
                ) filter (
                    where n.message ->> 'display_phone_number' is not null
                ) as display_phone_numbers,
                pg_catalog.array_agg(n.wamid order by n.at desc, n.wamid desc) as wamids,
                max(n.at) as last_at,
                count(*)::integer as message_count
            from (
                select
                    m.message,
                    m.message ->> 'wamid' as wamid,
                    coalesce((m.message ->> 'at')::timestamptz, pg_catalog.now()) as at
                from pg_catalog.unnest(p_messages) as m (message)
            ) as n
            group by n.message ->> 'contact_key'
        ) as c
    );
end;
$$;
comment on function private.batch_contacts(jsonb[]) is
'The contacts of a batch of normalised inbound messages, one per contact key, with their '
'identifiers, latest name and number, last message and count; nothing resolved yet.';

create or replace function private.resolve_batch_users(
    p_contacts private.inbound_contact[],
    p_correlation_id text
)
returns private.inbound_contact[]
language plpgsql
volatile
set search_path = ''
set plan_cache_mode = force_generic_plan
set enable_hashjoin = off
set enable_mergejoin = off
set enable_seqscan = off
as $$
-- The user of each contact, registered when there is none, with one statement per step for the
-- whole batch. A contact whose user lacks one of its identifiers, shares its user with another
-- contact, or was registered by a concurrent batch meanwhile goes through
-- find_or_register_user instead, which handles every case one contact at a time.
declare
    v_contacts private.inbound_contact [] := p_contacts;
    v_locked uuid [];
    v_user record;
begin
    -- The user id is the stronger identity: a phone number can change hands.
    select pg_catalog.array_agg(pg_catalog.jsonb_populate_record(f.contact, pg_catalog.jsonb_build_object(
        'user_id', f.user_id,
        'resolved', f.user_id is not null and f.complete and f.sharers = 1
    )) order by (f.contact).contact_key)
    into v_contacts
    from (
        select
            c as contact,
            u.id as user_id,
            (c.phone_number is null or u.phone_number is not null)
            and (c.wa_user_id is null or u.wa_user_id is not null) as complete,
            pg_catalog.count(*) over (partition by u.id) as sharers
        from pg_catalog.unnest(v_contacts) as c
        left join lateral (
            select x.id, x.phone_number, x.wa_user_id
            from public.users as x
            where x.wa_user_id = c.wa_user_id or x.phone_number = c.phone_number
            order by x.wa_user_id = c.wa_user_id desc nulls last
            limit 1
        ) as u on true
    ) as f;

    -- Locked in id order, the same in every batch, and checked again once locked: a concurrent
    -- erasure may have taken the identifier the user was found by.
    select pg_catalog.array_agg(l.id) into v_locked
    from (
        select u.id
        from public.users as u
        inner join pg_catalog.unnest(v_contacts) as c on u.id = c.user_id
        where c.resolved and (u.wa_user_id = c.wa_user_id or u.phone_number = c.phone_number)
        order by u.id
        for update of u
    ) as l;
    update public.users as u
    set
        last_active_at = greatest(u.last_active_at, c.last_at),
        display_name = coalesce(u.display_name, pg_catalog.left(c.contact_name, 256))
    from pg_catalog.unnest(v_contacts) as c
    where u.id = c.user_id and u.id = any(v_locked);

    -- Registered in contact order; a contact another batch registered first is not returned.
    with registered as (
        insert into public.users as u (phone_number, wa_user_id, display_name, last_active_at)
        select c.phone_number, c.wa_user_id, pg_catalog.left(c.contact_name, 256), c.last_at
        from pg_catalog.unnest(v_contacts) as c
        where c.user_id is null and (c.phone_number is not null or c.wa_user_id is not null)
        order by c.contact_key
        on conflict do nothing
        returning u.id, u.phone_number, u.wa_user_id
    ),

    preferences as (
        insert into public.user_preferences (user_id)
        select r.id from registered as r
    ),

    -- The registered found by their identifiers in a jsonb object, not by a join (see
    -- store_inbound_messages).
    by_identifiers as materialized (
        select pg_catalog.jsonb_object_agg(
            pg_catalog.jsonb_build_array(r.phone_number, r.wa_user_id)::text, r.id
        ) as registered_ids
        from registered as r
    )

    select pg_catalog.array_agg(pg_catalog.jsonb_populate_record(c, pg_catalog.jsonb_build_object(
        'user_id', coalesce(r.id, c.user_id),
        'resolved', r.id is not null or (c.resolved and c.user_id = any(v_locked)),
        'registered', r.id is not null
    )) order by c.contact_key)
    into v_contacts
    from pg_catalog.unnest(v_contacts) as c
    cross join by_identifiers as b
    left join lateral (
        select (
            b.registered_ids
            ->> pg_catalog.jsonb_build_array(c.phone_number, c.wa_user_id)::text
        )::uuid as id
        where c.user_id is null
    ) as r on true;

    for i in 1 .. coalesce(pg_catalog.array_length(v_contacts, 1), 0) loop
        continue when v_contacts[i].resolved
        or (v_contacts[i].phone_number is null and v_contacts[i].wa_user_id is null);
        v_user := private.find_or_register_user(
            v_contacts[i].phone_number,
            v_contacts[i].wa_user_id,
            v_contacts[i].contact_name,
            v_contacts[i].last_at
        );
        v_contacts[i].user_id := v_user.user_id;
        v_contacts[i].registered := v_user.registered;
    end loop;

    insert into public.outbox_events (
        aggregate_type, aggregate_id, event_type, payload, correlation_id
    )
    select
        'user',
        c.user_id::text,
        'user.registered',
        pg_catalog.jsonb_build_object(
            'user_id', c.user_id,
            'phone_number', c.phone_number,
            'wa_user_id', c.wa_user_id,
            'display_name', c.contact_name,
            'channel', 'whatsapp'
        ),
        p_correlation_id
    from pg_catalog.unnest(v_contacts) as c
    where c.registered
    order by c.contact_key;
    return v_contacts;
end;
$$;
comment on function private.resolve_batch_users(private.inbound_contact[], text) is
'Finds or registers the user of each contact of an inbound batch (emitting user.registered) and '
'records their activity; returns the contacts with user_id and registered set.';

create or replace function private.touch_batch_sessions(p_contacts private.inbound_contact[])
returns void
language plpgsql
volatile
set search_path = ''
set plan_cache_mode = force_generic_plan
set enable_hashjoin = off
set enable_mergejoin = off
set enable_seqscan = off
as $$
-- Found as users are. A session lacking one of the contact's identifiers, shared by two
-- contacts, or made by a concurrent batch meanwhile goes through touch_whatsapp_session.
declare
    v_done jsonb;
begin
    with found as (
        select
            c.contact_key,
            c.last_at,
            c.message_count,
            c.user_id,
            s.id,
            pg_catalog.count(*) over (partition by s.id) as sharers
        from pg_catalog.unnest(p_contacts) as c
        cross join lateral (
            select x.id, x.phone_number, x.wa_user_id
            from public.whatsapp_sessions as x
            where x.wa_user_id = c.wa_user_id or x.phone_number = c.phone_number
            order by x.wa_user_id = c.wa_user_id desc nulls last
            limit 1
        ) as s
        where
            (c.phone_number is null or s.phone_number is not null)
            and (c.wa_user_id is null or s.wa_user_id is not null)
    ),

    touched as (
        update public.whatsapp_sessions as s
        set
            status = case when s.status = 'suspended' then s.status else 'active' end,
            last_message_at = greatest(s.last_message_at, f.last_at),
            last_heartbeat_at = pg_catalog.now(),
            message_count = s.message_count + f.message_count,
            user_id = coalesce(s.user_id, f.user_id)
        from found as f
        where s.id = f.id and f.sharers = 1
        returning f.contact_key
    ),

    made as (
        insert into public.whatsapp_sessions as s (
            phone_number, wa_user_id, user_id, last_message_at, last_heartbeat_at, message_count
        )
        select
            c.phone_number, c.wa_user_id, c.user_id, c.last_at, pg_catalog.now(), c.message_count
        from pg_catalog.unnest(p_contacts) as c
        where
            (c.phone_number is not null or c.wa_user_id is not null)
            and not exists (
                select from public.whatsapp_sessions as x
                where x.wa_user_id = c.wa_user_id or x.phone_number = c.phone_number
            )
        order by c.contact_key
        on conflict do nothing
        returning s.phone_number, s.wa_user_id
    ),

    -- Sets as jsonb objects, not arrays searched per contact (see store_inbound_messages).
    made_keys as materialized (
        select pg_catalog.jsonb_object_agg(
            pg_catalog.jsonb_build_array(m.phone_number, m.wa_user_id)::text, true
        ) as identifiers
        from made as m
    )

    select pg_catalog.jsonb_object_agg(k.contact_key, true) into v_done
    from (
        select t.contact_key from touched as t
        union all
        select c.contact_key
        from pg_catalog.unnest(p_contacts) as c
        cross join made_keys as m
        where m.identifiers ? pg_catalog.jsonb_build_array(c.phone_number, c.wa_user_id)::text
    ) as k;

    perform private.touch_whatsapp_session(
        c.phone_number, c.wa_user_id, c.user_id, c.last_at, c.message_count
    )
    from (
        select c.*
        from pg_catalog.unnest(p_contacts) as c
        where
            (c.phone_number is not null or c.wa_user_id is not null)
            and not coalesce(v_done, '{}') ? c.contact_key
        order by c.contact_key
    ) as c;
end;
$$;
comment on function private.touch_batch_sessions(private.inbound_contact[]) is
'Records the messages of an inbound batch on each contact''s WhatsApp session, making the '
'sessions there are none of.';

create or replace function private.upsert_batch_conversations(
    p_contacts private.inbound_contact[],
    p_correlation_id text
)
returns private.inbound_contact[]
language plpgsql
volatile
set search_path = ''
set plan_cache_mode = force_generic_plan
set enable_hashjoin = off
set enable_mergejoin = off
set enable_seqscan = off
as $$
declare
    v_contacts private.inbound_contact [];
begin
    -- A contact first seen by one identifier and now by the other keeps its conversation.
    -- (status = 'active') is true rather than status = 'active': only the user_id and wa_id
    -- indexes fit then, where a generic plan made while the table was empty could pick a partial
    -- index of the active rows and read all of it on every call.
    select pg_catalog.array_agg(pg_catalog.jsonb_populate_record(c, pg_catalog.jsonb_build_object(
        'conversation_key', coalesce(
            (
                select m.wa_id from public.conversation_mappings as m
                where
                    m.user_id = c.user_id and (m.status = 'active') is true
                    and m.wa_id <> c.contact_key
                    and not exists (
                        select from public.conversation_mappings as k
                        where k.wa_id = c.contact_key and (k.status = 'active') is true
                    )
                limit 1
            ),
            c.contact_key
        )
    )) order by c.contact_key)
    into v_contacts
    from pg_catalog.unnest(p_contacts) as c;

    with conversations as (
        select
            c.conversation_key,
            (pg_catalog.array_agg(c.user_id) filter (where c.user_id is not null))[1] as user_id,
            (pg_catalog.array_agg(c.contact_name order by c.last_at desc, c.last_wamid desc)
            filter (where c.contact_name is not null))[1] as contact_name,
            (pg_catalog.array_agg(c.phone_number_id order by c.last_at desc, c.last_wamid desc)
            filter (where c.phone_number_id is not null))[1] as phone_number_id,
            (pg_catalog.array_agg(
                c.display_phone_number order by c.last_at desc, c.last_wamid desc
            ) filter (where c.display_phone_number is not null))[1] as display_phone_number,
            (pg_catalog.array_agg(c.last_wamid order by c.last_at desc, c.last_wamid desc))[1]
            as last_wamid,
            max(c.last_at) as last_at
        from pg_catalog.unnest(v_contacts) as c
        group by c.conversation_key
    ),

    upserted as (
        insert into public.conversation_mappings as m (
            wa_id,
            user_id,
            contact_name,
            phone_number_id,
            display_phone_number,
            last_message_id,
            last_activity_at,
            last_inbound_at
        )
        select
            v.conversation_key,
            v.user_id,
            v.contact_name,
            v.phone_number_id,
            v.display_phone_number,
            v.last_wamid,
            greatest(v.last_at, pg_catalog.now()),
            v.last_at
        from conversations as v
        order by v.conversation_key
        on conflict (wa_id) where status = 'active' do update
            set
                user_id = coalesce(m.user_id, excluded.user_id),
                contact_name = coalesce(excluded.contact_name, m.contact_name),
                phone_number_id = coalesce(excluded.phone_number_id, m.phone_number_id),
                display_phone_number = coalesce(
                    excluded.display_phone_number, m.display_phone_number
                ),
                -- A late retry of an older message does not move the conversation back.
                last_message_id = case
                    when excluded.last_inbound_at >= coalesce(m.last_inbound_at, '-infinity')
                        then excluded.last_message_id
                    else m.last_message_id
                end,
                last_activity_at = greatest(m.last_activity_at, excluded.last_activity_at),
                last_inbound_at = greatest(m.last_inbound_at, excluded.last_inbound_at)
        returning
            m.id, m.wa_id, m.user_id, m.contact_name, m.phone_number_id, m.xmax = 0 as started
    ),

    -- A started conversation's row holds what this batch inserted.
    started as (
        insert into public.outbox_events (
            aggregate_type, aggregate_id, event_type, payload, correlation_id
        )
        select
            'conversation',
            u.id::text,
            'conversation.started',
            pg_catalog.jsonb_build_object(
                'mapping_id', u.id,
                'wa_id', u.wa_id,
                'user_id', u.user_id,
                'contact_name', u.contact_name,
                'phone_number_id', u.phone_number_id
            ),
            p_correlation_id
        from upserted as u
        where u.started
        order by u.wa_id
    ),

    -- Found by key in a jsonb object, not by a join (see store_inbound_messages).
    mapping_ids as materialized (
        select pg_catalog.jsonb_object_agg(u.wa_id, u.id) as by_wa_id
        from upserted as u
    )

    select pg_catalog.array_agg(pg_catalog.jsonb_populate_record(c, pg_catalog.jsonb_build_object(
        'mapping_id', m.by_wa_id -> c.conversation_key
    )) order by c.contact_key)
    into v_contacts
    from pg_catalog.unnest(v_contacts) as c
    cross join mapping_ids as m;
    return v_contacts;
end;
$$;
comment on function private.upsert_batch_conversations(private.inbound_contact[], text) is
'Starts or continues the active conversation of each contact of an inbound batch (emitting '
'conversation.started); returns the contacts with conversation_key and mapping_id set.';

create or replace function private.store_inbound_messages(
    p_messages jsonb[],
    p_correlation_id text
)
returns jsonb
language plpgsql
volatile
set search_path = ''
set plan_cache_mode = force_generic_plan
set enable_hashjoin = off
set enable_mergejoin = off
set enable_seqscan = off
as $$
-- One statement per step for the whole batch, not per message: in a webhook of 20 messages,
-- starting a statement costs more than the rows it writes.
declare
    v_new jsonb [];
    v_contacts private.inbound_contact [];
    v_by_contact jsonb;
    v_wa_id jsonb;
begin
    -- The wamid is the idempotency key. Locked in one order (a subquery with ORDER BY is not
    -- flattened), so a retry racing the first delivery waits for it and then finds its rows.
    perform private.lock_wamid(w.wamid)
    from (
        select distinct m.message ->> 'wamid' as wamid
        from pg_catalog.unnest(p_messages) as m (message)
        order by 1
    ) as w;

    -- The first delivery of each wamid not stored yet.
    select pg_catalog.array_agg(n.message order by n.ordinality)
    into v_new
    from (
        select distinct on (m.message ->> 'wamid') m.message, m.ordinality
        from pg_catalog.unnest(p_messages) with ordinality as m (message, ordinality)
        where not exists (
            select from public.message_tracking as t where t.wamid = m.message ->> 'wamid'
        )
        order by m.message ->> 'wamid', m.ordinality
    ) as n;
    if v_new is null then
        return pg_catalog.jsonb_build_object(
            'stored', 0, 'duplicates', pg_catalog.cardinality(p_messages), 'types', '{}'::jsonb
        );
    end if;

    v_contacts := private.batch_contacts(v_new);
    v_contacts := private.resolve_batch_users(v_contacts, p_correlation_id);
    perform private.touch_batch_sessions(v_contacts);
    v_contacts := private.upsert_batch_conversations(v_contacts, p_correlation_id);

    -- Each message finds its contact in a jsonb object (a binary search by key): a join of two
    -- unnested arrays is a nested loop here, as these functions run without hash joins.
    select pg_catalog.jsonb_object_agg(c.contact_key, pg_catalog.jsonb_build_object(
        'user_id', c.user_id, 'mapping_id', c.mapping_id
    ))
    into v_by_contact
    from pg_catalog.unnest(v_contacts) as c;
    select pg_catalog.jsonb_object_agg(c.mapping_id, c.conversation_key)
    into v_wa_id
    from pg_catalog.unnest(v_contacts) as c;

    with stored as (
        insert into public.message_tracking as t (
            wamid,
            mapping_id,
            user_id,
            direction,
            provider,
            message_type,
            status,
            body,
            media,
            content,
            context,
            error,
            provider_timestamp,
            correlation_id,
            metadata
        )
        select
            n.message ->> 'wamid',
            (k.contact ->> 'mapping_id')::uuid,
            (k.contact ->> 'user_id')::uuid,
            'INBOUND',
            n.message ->> 'provider',
            n.message ->> 'type',
            'received',
            n.message ->> 'body',
            nullif(n.message -> 'media', 'null'),
            nullif(n.message -> 'content', 'null'),
            nullif(n.message -> 'context', 'null'),
            nullif(n.message -> 'error', 'null'),
            (n.message ->> 'at')::timestamptz,
            p_correlation_id,
            pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                'provider_type', n.message ->> 'provider_type',
                'provider_timestamp_raw', n.message -> 'unread_at'
            ))
        from pg_catalog.unnest(v_new) with ordinality as n (message, ordinality)
        cross join lateral (
            select v_by_contact -> (n.message ->> 'contact_key') as contact
        ) as k
        order by n.ordinality
        returning
            t.id,
            t.wamid,
            t.message_type,
            t.user_id,
            t.mapping_id,
            t.provider_timestamp,
            t.body,
            t.media,
            t.content,
            t.context
    )

    -- In the order the messages were inserted: RETURNING gives the rows as they are written.
    insert into public.outbox_events (
        aggregate_type, aggregate_id, event_type, payload, correlation_id
    )
    select
        'whatsapp_message',
        s.id::text,
        'whatsapp.message_received',
        pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
            'message_id', s.id,
            'wamid', s.wamid,
            'type', s.message_type,
            'user_id', s.user_id,
            'mapping_id', s.mapping_id,
            'wa_id', v_wa_id ->> s.mapping_id::text,
            'at', coalesce(s.provider_timestamp, pg_catalog.now()),
            'body', s.body,
            'media', s.media,
            'content', s.content,
            'context', s.context
        )),
        p_correlation_id
    from stored as s;

    return pg_catalog.jsonb_build_object(
        'stored', pg_catalog.cardinality(v_new),
        'duplicates', pg_catalog.cardinality(p_messages) - pg_catalog.cardinality(v_new),
        'types', (
            select pg_catalog.jsonb_object_agg(t.message_type, t.messages)
            from (
                select n.message ->> 'type' as message_type, count(*) as messages
                from pg_catalog.unnest(v_new) as n (message)
                group by 1
            ) as t
        )
    );
end;
$$;
comment on function private.store_inbound_messages(jsonb[], text) is
'Stores a batch of normalised inbound messages, in (contact, time, wamid) order, with their '
'users, sessions, conversations and outbox events. Returns {stored, duplicates, types}: a '
'message whose wamid is already stored, or repeated in the batch, is a duplicate and writes '
'nothing.';

create or replace function private.apply_message_status(p_status jsonb, p_correlation_id text)
returns text
language plpgsql
volatile
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
    v_wamid text := p_status ->> 'wamid';
    v_status text := p_status ->> 'status';
    v_at timestamptz := coalesce((p_status ->> 'at')::timestamptz, pg_catalog.now());
    v_message public.message_tracking;
begin
    perform private.lock_wamid(v_wamid);
    select t.* into v_message
    from public.message_tracking as t
    where t.wamid = v_wamid
    for update;
    if not found then
        -- It may precede the outbound row (the sender records the wamid after the provider
        -- answered): kept, once per (wamid, status), until the row is inserted.
        if private.status_rank(v_status) is null then
            return 'ignored';
        end if;
        insert into private.pending_message_statuses (
            wamid, status, provider_timestamp, error, payload
        )
        values (
            v_wamid, v_status, (p_status ->> 'at')::timestamptz,
            nullif(p_status -> 'error', 'null'), p_status -> 'payload'
        )
        on conflict do nothing;
        return case when found then 'pending' else 'ignored' end;
    end if;

    -- Forward only: a status already passed, repeated, unknown, after failed, or about an
    -- inbound message changes nothing but is counted.
    if v_message.direction <> 'OUTBOUND'
        or private.status_rank(v_status) is null
        or v_message.status = 'failed'
        or (v_status = 'failed' and v_message.status = 'read')
        or (
            v_status <> 'failed'
            and private.status_rank(v_status) <= private.status_rank(v_message.status)
        ) then
        update public.message_tracking as t
        set ignored_status_count = t.ignored_status_count + 1
        where t.id = v_message.id;
        return 'ignored';
    end if;

    update public.message_tracking as t
    set
        status = v_status,
        sent_at = case when v_status = 'sent' then coalesce(t.sent_at, v_at) else t.sent_at end,
        delivered_at = case
            when v_status = 'delivered' then coalesce(t.delivered_at, v_at) else t.delivered_at
        end,
        read_at = case when v_status = 'read' then coalesce(t.read_at, v_at) else t.read_at end,
        failed_at = case
            when v_status = 'failed' then coalesce(t.failed_at, v_at) else t.failed_at
        end,
        error = coalesce(nullif(p_status -> 'error', 'null'), t.error),
        -- The status' time is now() then; the provider's own, unreadable, is kept beside it.
        metadata = case
            when coalesce(p_status -> 'unread_at', 'null') = 'null' then t.metadata
            else pg_catalog.jsonb_set(
                t.metadata,
                '{status_timestamps_raw}',
                coalesce(t.metadata -> 'status_timestamps_raw', '{}')
                || pg_catalog.jsonb_build_object(v_status, p_status -> 'unread_at')
            )
        end
    where t.id = v_message.id;

    perform private.emit_event(
        'whatsapp_message', v_message.id::text, 'whatsapp.status_updated',
        pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
            'message_id', v_message.id,
            'wamid', v_wamid,
            'from_status', v_message.status,
            'status', v_status,
            'at', v_at,
            'user_id', v_message.user_id,
            'mapping_id', v_message.mapping_id,
            'error', nullif(p_status -> 'error', 'null')
        )),
        coalesce(p_correlation_id, v_message.correlation_id)
    );
    return 'applied';
end;
$$;
comment on function private.apply_message_status(jsonb, text) is
'Applies one normalised status to its message_tracking row: ''applied'', ''ignored'' (late, '
'repeated or unknown; counted on the row) or ''pending'' (no row yet).';

create or replace function private.apply_pending_statuses()
returns trigger
language plpgsql
-- Whoever records an outbound message (service_role, the sender) need not reach private.
security definer
set search_path = ''
as $$
declare
    v_pending private.pending_message_statuses;
begin
    perform private.lock_wamid(new.wamid);
    -- In the order statuses move, whatever order they arrived in.
    for v_pending in
        select p.* from private.pending_message_statuses as p
        where p.wamid = new.wamid
        order by private.status_rank(p.status)
    loop
        perform private.apply_message_status(
            pg_catalog.jsonb_build_object(
                'wamid', v_pending.wamid,
                'status', v_pending.status,
                'at', v_pending.provider_timestamp,
                'error', v_pending.error,
                'payload', v_pending.payload,
                'unread_at', case
                    when v_pending.provider_timestamp is null then v_pending.payload -> 'timestamp'
                end
            ),
            new.correlation_id
        );
    end loop;
    delete from private.pending_message_statuses as p where p.wamid = new.wamid;
    return null;
end;
$$;
comment on function private.apply_pending_statuses() is
'AFTER INSERT trigger on outbound message_tracking rows: applies the statuses that arrived '
'before the row, then forgets them.';

create or replace trigger message_tracking_pending_statuses
after insert on public.message_tracking
for each row when (new.direction = 'OUTBOUND')
execute function private.apply_pending_statuses();

-- The RPC ----------------------------------------------------------------------------------------

create or replace function private.record_ingest_metrics(
    p_provider text,
    p_summary jsonb,
    p_types jsonb,
    p_elapsed interval
)
returns void
language plpgsql
volatile
set search_path = ''
as $$
begin
    -- One insert of values valid by construction: record_metrics' validation is for callers
    -- whose input is not, and here it cost as much as storing the message.
    insert into public.system_metrics (
        service_name, metric_type, metric_name, value, unit, tags
    )
    select 'whatsapp-ingest', m.metric_type, m.metric_name, m.value, m.unit, m.tags
    from (
        select
            'latency' as metric_type,
            'ingest.duration' as metric_name,
            extract(epoch from p_elapsed)::double precision * 1000 as value,
            'ms' as unit,
            pg_catalog.jsonb_build_object('provider', p_provider) as tags
        union all
        select
            'counter',
            'messages.duplicate',
            (p_summary ->> 'duplicates')::double precision,
            null,
            pg_catalog.jsonb_build_object('provider', p_provider)
        union all
        select
            'counter',
            'items.dead_lettered',
            (p_summary ->> 'dead_lettered')::double precision,
            null,
            pg_catalog.jsonb_build_object('provider', p_provider)
        where (p_summary ->> 'dead_lettered')::integer > 0
        union all
        select
            'counter',
            'messages.received',
            t.value::double precision,
            null,
            pg_catalog.jsonb_build_object('provider', p_provider, 'type', t.key)
        from pg_catalog.jsonb_each_text(p_types) as t
    ) as m;
exception when others then
    -- Metrics are worth less than the messages: a failure here never fails the ingest.
    raise warning 'ingest_whatsapp_webhook: metrics not recorded: % (%)', sqlerrm, sqlstate;
end;
$$;
comment on function private.record_ingest_metrics(text, jsonb, jsonb, interval) is
'Records an ingest''s latency, duplicates, dead letters and messages by type in system_metrics; '
'a failure is a warning, never an error.';

create or replace function private.inbound_message_fault(p_message jsonb)
returns text
language plpgsql
immutable
set search_path = ''
as $$
-- What makes a normalised message one that cannot be stored; null when it can be. The message
-- itself stays out of the text: it reaches logs and operators' screens.
begin
    return case
        when coalesce(p_message ->> 'wamid', '') = '' then 'the message has no id'
        when pg_catalog.char_length(p_message ->> 'wamid') > 255
            then 'the message id is longer than 255 characters'
        when p_message ->> 'contact_key' is null
            then 'the message has no sender (from or from_user_id)'
        when p_message ->> 'from_phone' is null and p_message ->> 'from_user_id' is null
            then 'the sender is not a phone number and the message has no from_user_id'
        when pg_catalog.char_length(p_message ->> 'from_user_id') not between 1 and 100
            then 'from_user_id must be 1 to 100 characters'
        when pg_catalog.char_length(p_message ->> 'contact_key') > 100
            then 'the sender is longer than 100 characters'
        when pg_catalog.jsonb_typeof(p_message -> 'media') not in ('object', 'null')
            then 'the media of a ' || (p_message ->> 'type') || ' message is not an object'
    end;
end;
$$;
comment on function private.inbound_message_fault(jsonb) is
'Why a normalised inbound message cannot be stored (no id, an id over 255 characters, no sender, '
'a sender that is neither a phone number nor a user id, ...); null when it can be.';

create or replace function private.message_status_fault(p_status jsonb)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
    return case
        when coalesce(p_status ->> 'wamid', '') = ''
            then 'the ' || coalesce(p_status ->> 'status', 'unnamed') || ' status has no message id'
        when pg_catalog.char_length(p_status ->> 'wamid') > 255
            then 'the status'' message id is longer than 255 characters'
    end;
end;
$$;
comment on function private.message_status_fault(jsonb) is
'Why a normalised status cannot be applied (no message id, or one over 255 characters); null '
'when it can be.';

create or replace function private.added_counts(p_first jsonb, p_second jsonb)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
-- Counts of two halves of a batch, added key by key, nested objects too (messages by type).
begin
    return (
        select coalesce(pg_catalog.jsonb_object_agg(k.key, k.total), '{}')
        from (
            select
                e.key,
                case
                    when pg_catalog.jsonb_typeof(p_first -> e.key) = 'object'
                        or pg_catalog.jsonb_typeof(p_second -> e.key) = 'object'
                        then private.added_counts(
                            coalesce(p_first -> e.key, '{}'), coalesce(p_second -> e.key, '{}')
                        )
                    else pg_catalog.to_jsonb(
                        coalesce((p_first ->> e.key)::bigint, 0)
                        + coalesce((p_second ->> e.key)::bigint, 0)
                    )
                end as total
            from (
                select f.key from pg_catalog.jsonb_object_keys(p_first) as f (key)
                union
                select g.key from pg_catalog.jsonb_object_keys(p_second) as g (key)
            ) as e
        ) as k
    );
end;
$$;
comment on function private.added_counts(jsonb, jsonb) is
'Two objects of counts added key by key (nested objects of counts too).';

create or replace function private.apply_message_statuses(
    p_statuses jsonb[],
    p_correlation_id text
)
returns jsonb
language plpgsql
volatile
set search_path = ''
as $$
declare
    v_status jsonb;
    v_outcome text;
    v_outcomes jsonb := '{"applied": 0, "ignored": 0, "pending": 0}';
begin
    foreach v_status in array coalesce(p_statuses, '{}') loop
        v_outcome := private.apply_message_status(v_status, p_correlation_id);
        v_outcome := case when v_outcome in ('applied', 'pending') then v_outcome else 'ignored' end;
        v_outcomes := v_outcomes || pg_catalog.jsonb_build_object(
            v_outcome, (v_outcomes ->> v_outcome)::integer + 1
        );
    end loop;
    return v_outcomes;
end;
$$;
comment on function private.apply_message_statuses(jsonb[], text) is
'Applies normalised statuses in order; returns how many were applied, ignored and pending.';

create or replace function private.store_or_set_aside(
    p_kind text,
    p_items jsonb[],
    p_correlation_id text,
    inout faults jsonb,
    out counts jsonb
)
language plpgsql
volatile
set search_path = ''
as $$
-- A batch of messages (p_kind message) or statuses (status) in one go. When a statement refuses
-- it (a value no check foresaw), each half is tried on its own, and so on down to the one item
-- refused, which is set aside with what the database said: k refusals in n items cost about
-- 2k log2(n) tries, where one by one cost n (a 10,000-message batch then ran past the statement
-- timeout on every retry). A fault a retry cures is not caught: lock and statement timeouts,
-- serialisation failures and deadlocks (two deliveries splitting into halves can lock in
-- different orders), and a unique violation (only a race gives one here) reach the webhook as a
-- 503.
declare
    v_half integer;
    v_first record;
    v_second record;
    v_sqlstate text;
    v_detail text;
begin
    counts := case p_kind
        when 'message' then '{"stored": 0, "duplicates": 0, "types": {}}'::jsonb
        else '{"applied": 0, "ignored": 0, "pending": 0}'::jsonb
    end;
    if coalesce(pg_catalog.cardinality(p_items), 0) = 0 then
        return;
    end if;
    begin
        counts := case p_kind
            when 'message' then private.store_inbound_messages(p_items, p_correlation_id)
            else private.apply_message_statuses(p_items, p_correlation_id)
        end;
        return;
    exception when data_exception or integrity_constraint_violation or program_limit_exceeded then
        get stacked diagnostics v_sqlstate = returned_sqlstate, v_detail = message_text;
        if v_sqlstate in ('23505', '23P01') then
            raise;
        end if;
    end;
    if pg_catalog.cardinality(p_items) = 1 then
        faults := faults || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
            'kind', p_kind,
            'item', p_items[1],
            'reason', 'database_error',
            'detail', v_detail,
            'sqlstate', v_sqlstate
        ));
        return;
    end if;
    v_half := pg_catalog.cardinality(p_items) / 2;
    v_first := private.store_or_set_aside(p_kind, p_items[1:v_half], p_correlation_id, faults);
    v_second := private.store_or_set_aside(
        p_kind, p_items[v_half + 1:], p_correlation_id, v_first.faults
    );
    faults := v_second.faults;
    counts := private.added_counts(v_first.counts, v_second.counts);
end;
$$;
comment on function private.store_or_set_aside(text, jsonb[], text, jsonb) is
'Stores normalised messages (p_kind message) or applies statuses (status); an item the database '
'refuses is added to faults (kind, item, reason database_error, detail, sqlstate) and the others '
'are stored. counts is store_inbound_messages'' or apply_message_statuses'' answer.';

create or replace function private.ingest_webhook(
    p_provider text,
    p_payload jsonb,
    p_correlation_id text,
    p_dead_letter boolean
)
returns jsonb
language plpgsql
volatile
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
-- With p_dead_letter, what cannot be stored becomes a dead letter; without (a dead letter's own
-- retry), it is only reported in faults.
declare
    v_started timestamptz := pg_catalog.clock_timestamp();
    v_messages jsonb [];
    v_statuses jsonb [];
    v_faults jsonb := '[]';
    v_stored record;
    v_applied record;
    v_summary jsonb;
begin
    -- One order for every batch (contact, time, wamid): concurrent batches about the same
    -- contacts lock their rows in the same order and cannot deadlock. Messages that cannot be
    -- stored are set aside first.
    select
        pg_catalog.array_agg(m.message order by
            m.message ->> 'contact_key',
            (m.message ->> 'at')::timestamptz nulls last,
            m.message ->> 'wamid') filter (where f.fault is null),
        coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
            'kind', 'message',
            'item', m.message,
            'reason', 'invalid_payload',
            'detail', f.fault,
            'sqlstate', '22023'
        )) filter (where f.fault is not null), '[]')
    into v_messages, v_faults
    from private.webhook_messages(p_provider, p_payload) as m (message)
    cross join lateral (select private.inbound_message_fault(m.message) as fault) as f;

    select
        pg_catalog.array_agg(s.status order by
            s.status ->> 'wamid',
            private.status_rank(s.status ->> 'status') nulls last,
            (s.status ->> 'at')::timestamptz) filter (where f.fault is null),
        v_faults || coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
            'kind', 'status',
            'item', s.status,
            'reason', 'invalid_payload',
            'detail', f.fault,
            'sqlstate', '22023'
        )) filter (where f.fault is not null), '[]')
    into v_statuses, v_faults
    from private.webhook_statuses(p_provider, p_payload) as s (status)
    cross join lateral (select private.message_status_fault(s.status) as fault) as f;

    -- An empty list returns before its subtransaction: most webhooks carry one kind.
    v_stored := private.store_or_set_aside('message', v_messages, p_correlation_id, v_faults);
    v_applied := private.store_or_set_aside(
        'status', v_statuses, p_correlation_id, v_stored.faults
    );
    v_faults := v_applied.faults;

    if p_dead_letter then
        perform private.dead_letter_whatsapp(
            p_provider,
            f.fault ->> 'kind',
            f.fault ->> 'reason',
            f.fault ->> 'detail',
            f.fault ->> 'sqlstate',
            f.fault -> 'item' -> 'raw',
            null,
            f.fault -> 'item' ->> 'wamid',
            coalesce(f.fault -> 'item' ->> 'from_phone', f.fault -> 'item' ->> 'contact_key'),
            p_correlation_id
        )
        from pg_catalog.jsonb_array_elements(v_faults) as f (fault)
        -- One order in every transaction: two deliveries setting aside the same two things
        -- wait for each other instead of deadlocking.
        order by (f.fault -> 'item' -> 'raw')::text;
    end if;

    v_summary := pg_catalog.jsonb_build_object(
        'messages_stored', (v_stored.counts ->> 'stored')::integer,
        'duplicates', (v_stored.counts ->> 'duplicates')::integer,
        'statuses_applied', (v_applied.counts ->> 'applied')::integer,
        'statuses_ignored', (v_applied.counts ->> 'ignored')::integer,
        'statuses_pending', (v_applied.counts ->> 'pending')::integer,
        'dead_lettered', case when p_dead_letter then pg_catalog.jsonb_array_length(v_faults) else 0
        end
    );
    perform private.record_ingest_metrics(
        p_provider,
        v_summary,
        v_stored.counts -> 'types',
        pg_catalog.clock_timestamp() - v_started
    );
    if not p_dead_letter then
        v_summary := v_summary || pg_catalog.jsonb_build_object('faults', (
            select coalesce(pg_catalog.jsonb_agg(f.fault - 'item'), '[]')
            from pg_catalog.jsonb_array_elements(v_faults) as f (fault)
        ));
    end if;
    return v_summary;
end;
$$;
comment on function private.ingest_webhook(text, jsonb, text, boolean) is
'Stores what a webhook payload of p_provider carries; what cannot be stored becomes a dead letter '
'(p_dead_letter) or is reported in faults. Returns the summary of ingest_whatsapp_webhook.';

create or replace function public.ingest_whatsapp_webhook(
    p_provider text,
    p_payload jsonb,
    p_correlation_id text default null
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
    if p_provider is null or p_provider not in ('meta', 'twilio') then
        raise exception 'ingest_whatsapp_webhook: p_provider must be meta or twilio (got %)',
            private.quoted_for_error(p_provider, 20)
        using errcode = '22023';
    end if;
    perform private.require_json_object(p_payload, 'ingest_whatsapp_webhook', 'p_payload');
    perform private.require_json_size(p_payload, 8388608, 'ingest_whatsapp_webhook', 'p_payload');
    perform private.require_identifier(
        p_correlation_id, 'ingest_whatsapp_webhook', 'p_correlation_id'
    );
    if p_provider = 'meta' and p_payload ->> 'object' is distinct from 'whatsapp_business_account'
        then
        raise exception 'ingest_whatsapp_webhook: a Meta payload''s object must be '
            'whatsapp_business_account (got %)',
            private.quoted_for_error(p_payload ->> 'object', 60)
        using errcode = '22023';
    end if;
    return private.ingest_webhook(
        p_provider,
        p_payload,
        coalesce(p_correlation_id, private.request_correlation_id()),
        true
    );
end;
$$;
comment on function public.ingest_whatsapp_webhook(text, jsonb, text) is
'Stores a WhatsApp webhook in one transaction. p_provider meta: the Cloud API body, every entry, '
'change, message and status; twilio: the form fields as a JSON object (at most 8 MiB). Messages '
'are idempotent by wamid; statuses move forward only and wait for an unknown wamid. A message or '
'status that cannot be stored (no id, a sender that is not a phone number, a value the database '
'refuses) becomes a webhook dead letter and the rest is stored. Returns {messages_stored, '
'duplicates, statuses_applied, statuses_ignored, statuses_pending, dead_lettered}. A payload '
'that is not a provider''s shape at all is 22023. service_role only.';
revoke all on function public.ingest_whatsapp_webhook(text, jsonb, text)
from public, anon, authenticated;
grant execute on function public.ingest_whatsapp_webhook(text, jsonb, text) to service_role;

-- Who reads --------------------------------------------------------------------------------------

create or replace trigger users_updated_at
before update on public.users
for each row execute function private.set_updated_at();
create or replace trigger user_preferences_updated_at
before update on public.user_preferences
for each row execute function private.set_updated_at();
create or replace trigger message_tracking_updated_at
before update on public.message_tracking
for each row execute function private.set_updated_at();

drop policy if exists users_own_select on public.users;
create policy users_own_select on public.users
for select to authenticated
using (id = (select auth.uid()));
drop policy if exists users_own_update on public.users;
create policy users_own_update on public.users
for update to authenticated
using (id = (select auth.uid()))
with check (id = (select auth.uid()));
drop policy if exists user_preferences_own_select on public.user_preferences;
create policy user_preferences_own_select on public.user_preferences
for select to authenticated
using (user_id = (select auth.uid()));
drop policy if exists user_preferences_own_update on public.user_preferences;
create policy user_preferences_own_update on public.user_preferences
for update to authenticated
using (user_id = (select auth.uid()))
with check (user_id = (select auth.uid()));
drop policy if exists message_tracking_own_select on public.message_tracking;
create policy message_tracking_own_select on public.message_tracking
for select to authenticated
using (user_id = (select auth.uid()));
