-- The WhatsApp ingest's storage: a batch of normalised inbound messages stored with its users,
-- sessions, conversations, message_tracking rows and outbox events, and statuses applied to
-- outbound messages (or kept until their row exists). Also message_tracking's triggers and
-- policies: this file owns the table.
--
-- Functions whose statements take a payload or a batch force generic plans: with custom plans
-- (the default for a statement's first runs, and for good when the planner prices a generic
-- plan over a batch of unknown size above a custom one) every call planned every statement
-- again, which cost more than running them. A generic plan cannot know a batch's size and
-- prices it at 100 rows, for which reading a whole table looks cheaper than looking each row up
-- (and a generic plan made while a table was small is kept while it grows). The batch functions
-- turn off hash and merge joins and sequential scans, so each row is an index lookup however
-- large the tables grow: a webhook carries at most a few hundred messages.

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

create or replace function private.batch_contacts(p_messages jsonb[])
returns private.inbound_contact[]
language plpgsql
stable
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
begin
    return (
        -- Every field of the type named, in its order: the row is cast to the type.
        select pg_catalog.array_agg(c::private.inbound_contact order by c.contact_key)
        from (
            select
                n.message ->> 'contact_key' as contact_key,
                max(n.message ->> 'from_phone') as phone_number,
                max(n.message ->> 'from_user_id') as wa_user_id,
                (pg_catalog.array_agg(
                    n.message ->> 'contact_name' order by n.at desc, n.wamid desc
                ) filter (where n.message ->> 'contact_name' is not null))[1] as contact_name,
                (pg_catalog.array_agg(
                    n.message ->> 'phone_number_id' order by n.at desc, n.wamid desc
                ) filter (where n.message ->> 'phone_number_id' is not null))[1] as phone_number_id,
                (pg_catalog.array_agg(
                    n.message ->> 'display_phone_number' order by n.at desc, n.wamid desc
                ) filter (
                    where n.message ->> 'display_phone_number' is not null
                ))[1] as display_phone_number,
                (pg_catalog.array_agg(n.wamid order by n.at desc, n.wamid desc))[1] as last_wamid,
                max(n.at) as last_at,
                count(*)::integer as message_count,
                null::uuid as user_id,
                false as resolved,
                false as registered,
                null::text as conversation_key,
                null::uuid as mapping_id
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
    -- Each contact rebuilt with every field of the type named, in its order.
    select pg_catalog.array_agg(f::private.inbound_contact order by f.contact_key)
    into v_contacts
    from (
        select
            c.contact_key,
            c.phone_number,
            c.wa_user_id,
            c.contact_name,
            c.phone_number_id,
            c.display_phone_number,
            c.last_wamid,
            c.last_at,
            c.message_count,
            u.id as user_id,
            u.id is not null
            and (c.phone_number is null or u.phone_number is not null)
            and (c.wa_user_id is null or u.wa_user_id is not null)
            and pg_catalog.count(*) over (partition by u.id) = 1 as resolved,
            c.registered,
            c.conversation_key,
            c.mapping_id
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

    select pg_catalog.array_agg(f::private.inbound_contact order by f.contact_key)
    into v_contacts
    from (
        select
            c.contact_key,
            c.phone_number,
            c.wa_user_id,
            c.contact_name,
            c.phone_number_id,
            c.display_phone_number,
            c.last_wamid,
            c.last_at,
            c.message_count,
            coalesce(r.id, c.user_id) as user_id,
            r.id is not null or (c.resolved and c.user_id = any(v_locked)) as resolved,
            r.id is not null as registered,
            c.conversation_key,
            c.mapping_id
        from pg_catalog.unnest(v_contacts) as c
        cross join by_identifiers as b
        left join lateral (
            select (
                b.registered_ids
                ->> pg_catalog.jsonb_build_array(c.phone_number, c.wa_user_id)::text
            )::uuid as id
            where c.user_id is null
        ) as r on true
    ) as f;

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

    perform private.emit_events(
        'user', r.user_ids, 'user.registered', r.payloads, p_correlation_id
    )
    from (
        select
            pg_catalog.array_agg(c.user_id::text order by c.contact_key) as user_ids,
            pg_catalog.array_agg(pg_catalog.jsonb_build_object(
                'user_id', c.user_id,
                'phone_number', c.phone_number,
                'wa_user_id', c.wa_user_id,
                'display_name', c.contact_name,
                'channel', 'whatsapp'
            ) order by c.contact_key) as payloads
        from pg_catalog.unnest(v_contacts) as c
        where c.registered
    ) as r;
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
    v_mapping_ids jsonb;
    v_started_ids text [];
    v_started_payloads jsonb [];
begin
    -- A contact first seen by one identifier and now by the other keeps its conversation.
    -- (status = 'active') is true rather than status = 'active': only the user_id and wa_id
    -- indexes fit then, where a generic plan made while the table was empty could pick a partial
    -- index of the active rows and read all of it on every call.
    select pg_catalog.array_agg(f::private.inbound_contact order by f.contact_key)
    into v_contacts
    from (
        select
            c.contact_key,
            c.phone_number,
            c.wa_user_id,
            c.contact_name,
            c.phone_number_id,
            c.display_phone_number,
            c.last_wamid,
            c.last_at,
            c.message_count,
            c.user_id,
            c.resolved,
            c.registered,
            coalesce(
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
            ) as conversation_key,
            c.mapping_id
        from pg_catalog.unnest(p_contacts) as c
    ) as f;

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
    started as materialized (
        select
            pg_catalog.array_agg(u.id::text order by u.wa_id) as ids,
            pg_catalog.array_agg(pg_catalog.jsonb_build_object(
                'mapping_id', u.id,
                'wa_id', u.wa_id,
                'user_id', u.user_id,
                'contact_name', u.contact_name,
                'phone_number_id', u.phone_number_id
            ) order by u.wa_id) as payloads
        from upserted as u
        where u.started
    ),

    -- Found by key in a jsonb object, not by a join (see store_inbound_messages).
    mapping_ids as materialized (
        select pg_catalog.jsonb_object_agg(u.wa_id, u.id) as by_wa_id
        from upserted as u
    )

    select m.by_wa_id, s.ids, s.payloads
    into v_mapping_ids, v_started_ids, v_started_payloads
    from mapping_ids as m
    cross join started as s;

    perform private.emit_events(
        'conversation', v_started_ids, 'conversation.started', v_started_payloads, p_correlation_id
    );

    select pg_catalog.array_agg(f::private.inbound_contact order by f.contact_key)
    into v_contacts
    from (
        select
            c.contact_key,
            c.phone_number,
            c.wa_user_id,
            c.contact_name,
            c.phone_number_id,
            c.display_phone_number,
            c.last_wamid,
            c.last_at,
            c.message_count,
            c.user_id,
            c.resolved,
            c.registered,
            c.conversation_key,
            (v_mapping_ids ->> c.conversation_key)::uuid as mapping_id
        from pg_catalog.unnest(v_contacts) as c
    ) as f;
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
    v_message_ids text [];
    v_received jsonb [];
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

    -- In the order the messages were inserted: RETURNING gives the rows as they are written,
    -- and one aggregate's input keeps that order.
    select
        pg_catalog.array_agg(s.id::text),
        pg_catalog.array_agg(pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
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
        )))
    into v_message_ids, v_received
    from stored as s;
    perform private.emit_events(
        'whatsapp_message', v_message_ids, 'whatsapp.message_received', v_received,
        p_correlation_id
    );

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

-- Who reads --------------------------------------------------------------------------------------

create or replace trigger message_tracking_updated_at
before update on public.message_tracking
for each row execute function private.set_updated_at();

drop policy if exists message_tracking_own_select on public.message_tracking;
create policy message_tracking_own_select on public.message_tracking
for select to authenticated
using (user_id = (select auth.uid()));
