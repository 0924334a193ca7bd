-- ingest_whatsapp_webhook: a provider's webhook, stored in one transaction. Each provider's shape
-- is read into the same normalised messages and statuses (jsonb), which one path then stores:
-- users, sessions, conversations, message_tracking, statuses and outbox events.

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
    return case
        when p_seconds ~ '^[0-9]{1,11}$' then pg_catalog.to_timestamp(p_seconds::double precision)
    end;
end;
$$;
comment on function private.unix_time(text) is
'A provider''s Unix time in seconds as a timestamp; null when it is not one.';

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
        'at', private.unix_time(m.message ->> 'timestamp'),
        'body', case t.message_type
            when 'text' then m.message -> 'text' ->> 'body'
            when 'interactive' then coalesce(
                m.message -> 'interactive' -> 'button_reply' ->> 'title',
                m.message -> 'interactive' -> 'list_reply' ->> 'title'
            )
            when 'button' then m.message -> 'button' ->> 'text'
            when 'system' then m.message -> 'system' ->> 'body'
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
        'display_phone_number', c.value -> 'metadata' ->> 'display_phone_number'
    )
    from private.meta_change_values(p_payload) as c (value)
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
    left join lateral (
        select x.contact
        from pg_catalog.jsonb_array_elements(
            private.jsonb_array(c.value -> 'contacts')
        ) as x (contact)
        where x.contact ->> 'wa_id' = m.message ->> 'from'
            or x.contact ->> 'user_id' = m.message ->> 'from_user_id'
        limit 1
    ) as k on true;
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
as $$
begin
    return query
    select pg_catalog.jsonb_build_object(
        'wamid', s.status ->> 'id',
        'status', s.status ->> 'status',
        'at', private.unix_time(s.status ->> 'timestamp'),
        'error', s.status -> 'errors',
        'payload', s.status
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
        'display_phone_number', pg_catalog.ltrim(private.normalize_phone(p_form ->> 'To'), '+')
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
        'payload', p_form
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

create or replace function private.store_inbound_message(p_message jsonb, p_correlation_id text)
returns boolean
language plpgsql
volatile
set search_path = ''
as $$
declare
    v_wamid text := p_message ->> 'wamid';
    v_at timestamptz := coalesce((p_message ->> 'at')::timestamptz, pg_catalog.now());
    v_user record;
    v_mapping_id uuid;
    v_started boolean;
    v_message_id uuid;
    v_contact_key text := p_message ->> 'contact_key';
begin
    -- The wamid is the idempotency key. With the lock, a retry racing the first delivery waits
    -- for it and then finds its row.
    perform private.lock_wamid(v_wamid);
    if exists (select from public.message_tracking as t where t.wamid = v_wamid) then
        return false;
    end if;

    v_user := private.find_or_register_user(
        p_message ->> 'from_phone',
        p_message ->> 'from_user_id',
        p_message ->> 'contact_name',
        v_at
    );
    if v_user.registered then
        perform private.emit_event(
            'user', v_user.user_id::text, 'user.registered',
            pg_catalog.jsonb_build_object(
                'user_id', v_user.user_id,
                'phone_number', p_message ->> 'from_phone',
                'wa_user_id', p_message ->> 'from_user_id',
                'display_name', p_message ->> 'contact_name',
                'channel', 'whatsapp'
            ),
            p_correlation_id
        );
    end if;
    if p_message ->> 'from_phone' is not null or p_message ->> 'from_user_id' is not null then
        perform private.touch_whatsapp_session(
            p_message ->> 'from_phone', p_message ->> 'from_user_id', v_user.user_id, v_at, true
        );
    end if;

    -- A contact first seen by one identifier and now by the other keeps its conversation.
    v_contact_key := coalesce(
        (
            select m.wa_id from public.conversation_mappings as m
            where m.status = 'active' and m.user_id = v_user.user_id
                and m.wa_id <> v_contact_key
                and not exists (
                    select from public.conversation_mappings as k
                    where k.status = 'active' and k.wa_id = v_contact_key
                )
            limit 1
        ),
        v_contact_key
    );
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
    values (
        v_contact_key,
        v_user.user_id,
        p_message ->> 'contact_name',
        p_message ->> 'phone_number_id',
        p_message ->> 'display_phone_number',
        v_wamid,
        greatest(v_at, pg_catalog.now()),
        v_at
    )
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
    returning m.id, m.xmax = 0 into v_mapping_id, v_started;
    if v_started then
        perform private.emit_event(
            'conversation', v_mapping_id::text, 'conversation.started',
            pg_catalog.jsonb_build_object(
                'mapping_id', v_mapping_id,
                'wa_id', v_contact_key,
                'user_id', v_user.user_id,
                'contact_name', p_message ->> 'contact_name',
                'phone_number_id', p_message ->> 'phone_number_id'
            ),
            p_correlation_id
        );
    end if;

    insert into public.message_tracking (
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
    values (
        v_wamid,
        v_mapping_id,
        v_user.user_id,
        'INBOUND',
        p_message ->> 'provider',
        p_message ->> 'type',
        'received',
        p_message ->> 'body',
        nullif(p_message -> 'media', 'null'),
        nullif(p_message -> 'content', 'null'),
        nullif(p_message -> 'context', 'null'),
        nullif(p_message -> 'error', 'null'),
        (p_message ->> 'at')::timestamptz,
        p_correlation_id,
        pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
            'provider_type', p_message ->> 'provider_type'
        ))
    )
    returning id into v_message_id;

    perform private.emit_event(
        'whatsapp_message', v_message_id::text, 'whatsapp.message_received',
        pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
            'message_id', v_message_id,
            'wamid', v_wamid,
            'type', p_message ->> 'type',
            'user_id', v_user.user_id,
            'mapping_id', v_mapping_id,
            'wa_id', v_contact_key,
            'at', v_at,
            'body', p_message ->> 'body',
            'media', nullif(p_message -> 'media', 'null'),
            'content', nullif(p_message -> 'content', 'null'),
            'context', nullif(p_message -> 'context', 'null')
        )),
        p_correlation_id
    );
    return true;
end;
$$;
comment on function private.store_inbound_message(jsonb, text) is
'Stores one normalised inbound message with its user, session, conversation and outbox events; '
'false (and nothing written) when its wamid is already stored.';

create or replace function private.apply_message_status(p_status jsonb, p_correlation_id text)
returns text
language plpgsql
volatile
set search_path = ''
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
        error = coalesce(nullif(p_status -> 'error', 'null'), t.error)
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
                'payload', v_pending.payload
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
'Records an ingest''s latency, duplicates and messages by type in system_metrics; a failure is '
'a warning, never an error.';

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
declare
    v_started timestamptz := pg_catalog.clock_timestamp();
    v_correlation_id text := coalesce(p_correlation_id, private.request_correlation_id());
    v_item jsonb;
    v_stored integer := 0;
    v_duplicates integer := 0;
    v_outcome text;
    v_applied integer := 0;
    v_ignored integer := 0;
    v_pending integer := 0;
    v_types jsonb := '{}';
    v_summary jsonb;
begin
    if p_provider is null or p_provider not in ('meta', 'twilio') then
        raise exception 'ingest_whatsapp_webhook: p_provider must be meta or twilio (got %)',
            coalesce(pg_catalog.quote_literal(p_provider), 'null')
        using errcode = '22023';
    end if;
    if pg_catalog.jsonb_typeof(p_payload) is distinct from 'object' then
        raise exception 'ingest_whatsapp_webhook: p_payload must be a JSON object'
        using errcode = '22023';
    end if;
    if p_provider = 'meta' and p_payload ->> 'object' is distinct from 'whatsapp_business_account'
        then
        raise exception 'ingest_whatsapp_webhook: a Meta payload''s object must be '
            'whatsapp_business_account (got %)',
            coalesce(pg_catalog.quote_literal(p_payload ->> 'object'), 'null')
        using errcode = '22023';
    end if;

    -- One order for every batch (contact, time, wamid): concurrent batches about the same
    -- contacts lock their rows in the same order and cannot deadlock.
    for v_item in
        select m.message
        from private.webhook_messages(p_provider, p_payload) as m (message)
        order by
            m.message ->> 'contact_key',
            (m.message ->> 'at')::timestamptz nulls last,
            m.message ->> 'wamid'
    loop
        if coalesce(v_item ->> 'wamid', '') = '' then
            -- The message itself stays out of the error: its text would reach logs and replies.
            raise exception 'ingest_whatsapp_webhook: a message from % has no id',
                coalesce(v_item ->> 'contact_key', 'an unknown contact')
            using errcode = '22023';
        end if;
        if private.store_inbound_message(v_item, v_correlation_id) then
            v_stored := v_stored + 1;
            v_types := v_types || pg_catalog.jsonb_build_object(
                v_item ->> 'type', coalesce((v_types ->> (v_item ->> 'type'))::integer, 0) + 1
            );
        else
            v_duplicates := v_duplicates + 1;
        end if;
    end loop;

    for v_item in
        select s.status
        from private.webhook_statuses(p_provider, p_payload) as s (status)
        order by
            s.status ->> 'wamid',
            private.status_rank(s.status ->> 'status') nulls last,
            (s.status ->> 'at')::timestamptz
    loop
        if coalesce(v_item ->> 'wamid', '') = '' then
            raise exception 'ingest_whatsapp_webhook: a % status has no message id',
                coalesce(v_item ->> 'status', 'unnamed')
            using errcode = '22023';
        end if;
        v_outcome := private.apply_message_status(v_item, v_correlation_id);
        case v_outcome
            when 'applied' then v_applied := v_applied + 1;
            when 'pending' then v_pending := v_pending + 1;
            else v_ignored := v_ignored + 1;
        end case;
    end loop;

    v_summary := pg_catalog.jsonb_build_object(
        'messages_stored', v_stored,
        'duplicates', v_duplicates,
        'statuses_applied', v_applied,
        'statuses_ignored', v_ignored,
        'statuses_pending', v_pending
    );
    perform private.record_ingest_metrics(
        p_provider, v_summary, v_types, pg_catalog.clock_timestamp() - v_started
    );
    return v_summary;
end;
$$;
comment on function public.ingest_whatsapp_webhook(text, jsonb, text) is
'Stores a WhatsApp webhook in one transaction. p_provider meta: the Cloud API body, every entry, '
'change, message and status; twilio: the form fields as a JSON object. Messages are idempotent '
'by wamid; statuses move forward only and wait for an unknown wamid. Returns {messages_stored, '
'duplicates, statuses_applied, statuses_ignored, statuses_pending}. A payload of the wrong '
'shape is 22023. service_role only.';
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
