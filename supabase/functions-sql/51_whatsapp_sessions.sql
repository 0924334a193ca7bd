-- WhatsApp sessions (one per contact) and conversations with the desk.

create or replace function private.normalize_phone(p_phone text)
returns text
language plpgsql
immutable
set search_path = ''
as $$
-- WhatsApp sends digits (250788123456), Twilio whatsapp:+250788123456, people write
-- +250 788 123 456 or 00250...: all become E.164, anything else null.
declare
    v_phone text := pg_catalog.regexp_replace(
        pg_catalog.regexp_replace(
            pg_catalog.regexp_replace(pg_catalog.btrim(p_phone), '^whatsapp:', '', 'i'),
            '[\s().-]', '', 'g'
        ),
        '^(00|\+)?', '+'
    );
begin
    return case when v_phone ~ '^\+[1-9][0-9]{6,14}$' then v_phone end;
end;
$$;
comment on function private.normalize_phone(text) is
'A phone number in E.164 (+250788123456) from WhatsApp digits, a whatsapp: address or a '
'written number; null when it cannot be one.';

create or replace function private.required_phone(
    p_phone text,
    p_function text,
    p_argument text default 'p_phone_number'
)
returns text
language plpgsql
immutable
set search_path = ''
as $$
declare
    v_phone text := private.normalize_phone(p_phone);
begin
    if v_phone is null then
        raise exception '%: % must be a phone number (E.164, e.g. +250788123456; got %)',
            p_function, p_argument, private.quoted_for_error(p_phone, 40)
        using errcode = '22023';
    end if;
    return v_phone;
end;
$$;
comment on function private.required_phone(text, text, text) is
'p_phone in E.164, or 22023 naming p_function and its argument p_argument when it cannot be a '
'phone number.';

create or replace function private.touch_whatsapp_session(
    p_phone_number text,
    p_wa_user_id text,
    p_user_id uuid,
    p_at timestamptz,
    p_message_count integer
)
returns public.whatsapp_sessions
language plpgsql
set search_path = ''
as $$
declare
    v_session public.whatsapp_sessions;
begin
    -- Found by either identifier; made when neither is known. A concurrent maker wins the
    -- unique index and this transaction then finds its row.
    loop
        update public.whatsapp_sessions as s
        set
            status = case when s.status = 'suspended' then s.status else 'active' end,
            last_message_at = greatest(s.last_message_at, p_at),
            last_heartbeat_at = pg_catalog.now(),
            message_count = s.message_count + p_message_count,
            -- The identifier this activity adds, unless another session already has it.
            phone_number = coalesce(s.phone_number, (
                select p_phone_number where not exists (
                    select from public.whatsapp_sessions as o where o.phone_number = p_phone_number
                )
            )),
            wa_user_id = coalesce(s.wa_user_id, (
                select p_wa_user_id where not exists (
                    select from public.whatsapp_sessions as o where o.wa_user_id = p_wa_user_id
                )
            )),
            user_id = coalesce(s.user_id, p_user_id)
        where s.id = (
            select x.id from public.whatsapp_sessions as x
            where x.wa_user_id = p_wa_user_id or x.phone_number = p_phone_number
            order by x.wa_user_id = p_wa_user_id desc nulls last
            limit 1
        )
        returning s.* into v_session;
        if found then
            return v_session;
        end if;
        insert into public.whatsapp_sessions (
            phone_number, wa_user_id, user_id, last_message_at, last_heartbeat_at, message_count
        )
        values (
            p_phone_number,
            p_wa_user_id,
            p_user_id,
            p_at,
            pg_catalog.now(),
            p_message_count
        )
        on conflict do nothing
        returning * into v_session;
        if found then
            return v_session;
        end if;
    end loop;
end;
$$;
comment on function private.touch_whatsapp_session(text, text, uuid, timestamptz, integer) is
'Records activity, and p_message_count messages, on the session of a contact (phone number '
'and/or WhatsApp user id), making the session when there is none; a suspended session stays '
'suspended.';

create or replace function public.update_whatsapp_session_activity(
    p_phone_number text,
    p_increment_message_count boolean default true
)
returns public.whatsapp_sessions
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_phone text := private.required_phone(p_phone_number, 'update_whatsapp_session_activity');
begin
    if p_increment_message_count is null then
        raise exception 'update_whatsapp_session_activity: p_increment_message_count must be true '
            'or false'
        using errcode = '22023';
    end if;
    return private.touch_whatsapp_session(
        v_phone,
        null,
        (select u.id from public.users as u where u.phone_number = v_phone),
        pg_catalog.now(),
        case when p_increment_message_count then 1 else 0 end
    );
end;
$$;
comment on function public.update_whatsapp_session_activity(text, boolean) is
'Marks the WhatsApp session of p_phone_number active now (making it if needed) and, unless '
'p_increment_message_count is false, counts a message. Returns the session. service_role only.';
revoke all on function public.update_whatsapp_session_activity(text, boolean)
from public, anon, authenticated;
grant execute on function public.update_whatsapp_session_activity(text, boolean) to service_role;

create or replace function public.cleanup_expired_whatsapp_sessions(
    p_idle_for interval default null
)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    -- ALTER DATABASE ... SET easymo.whatsapp_session_ttl = '12 hours' changes the default.
    v_idle_for interval := coalesce(
        p_idle_for,
        nullif(pg_catalog.current_setting('easymo.whatsapp_session_ttl', true), '')::interval,
        interval '24 hours'
    );
    v_expired integer;
begin
    if v_idle_for <= interval '0' then
        raise exception 'cleanup_expired_whatsapp_sessions: p_idle_for must be positive (got %)',
            v_idle_for
        using errcode = '22023';
    end if;
    update public.whatsapp_sessions as s
    set status = 'expired'
    where s.status in ('active', 'inactive')
        and coalesce(s.last_message_at, s.created_at) < pg_catalog.now() - v_idle_for;
    get diagnostics v_expired = row_count;
    -- The desk conversation of a contact gone quiet as long ends with it.
    update public.conversation_mappings as m
    set status = 'expired'
    where m.status = 'active' and m.last_activity_at < pg_catalog.now() - v_idle_for;
    return v_expired;
end;
$$;
comment on function public.cleanup_expired_whatsapp_sessions(interval) is
'Expires sessions, and active desk conversations, idle for longer than p_idle_for (default the '
'setting easymo.whatsapp_session_ttl, else 24 hours). Returns the number of sessions expired. '
'Runs every 15 minutes from pg_cron. service_role only.';
revoke all on function public.cleanup_expired_whatsapp_sessions(interval)
from public, anon, authenticated;
grant execute on function public.cleanup_expired_whatsapp_sessions(interval) to service_role;

select private.schedule_cron(
    'expire-whatsapp-sessions', '*/15 * * * *',
    'select public.cleanup_expired_whatsapp_sessions()'
);

create or replace function public.correlate_conversation(
    p_wa_id text,
    p_conversation_id text,
    p_communication_id text default null
)
returns public.conversation_mappings
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_mapping public.conversation_mappings;
begin
    if coalesce(pg_catalog.btrim(p_wa_id), '') = '' or pg_catalog.char_length(p_wa_id) > 200 then
        raise exception 'correlate_conversation: p_wa_id must name the contact (1 to 200 '
            'characters)'
        using errcode = '22023';
    end if;
    if coalesce(pg_catalog.btrim(p_conversation_id), '') = ''
        or pg_catalog.char_length(p_conversation_id) > 100 then
        raise exception 'correlate_conversation: p_conversation_id must be 1 to 100 characters'
        using errcode = '22023';
    end if;
    if p_communication_id is not null and (
        pg_catalog.btrim(p_communication_id) = '' or pg_catalog.char_length(p_communication_id) > 100
    ) then
        raise exception 'correlate_conversation: p_communication_id must be 1 to 100 characters, '
            'or null'
        using errcode = '22023';
    end if;

    select m.* into v_mapping
    from public.conversation_mappings as m
    where m.wa_id = p_wa_id and m.status = 'active'
    for update;
    if not found then
        raise exception 'correlate_conversation: % has no active conversation', p_wa_id
        using errcode = 'PT404';
    end if;
    -- A desk retrying the same correlation, or adding the communication id later, is answered
    -- as the first time; a different id is a conflict.
    if v_mapping.conversation_id <> p_conversation_id
        or v_mapping.communication_id <> p_communication_id then
        raise exception 'correlate_conversation: the active conversation of % is already '
            'correlated with %', p_wa_id, v_mapping.conversation_id
        using errcode = 'PT409';
    end if;

    update public.conversation_mappings as m
    set
        conversation_id = p_conversation_id,
        communication_id = coalesce(p_communication_id, m.communication_id)
    where m.id = v_mapping.id
    returning m.* into v_mapping;
    return v_mapping;
end;
$$;
comment on function public.correlate_conversation(text, text, text) is
'Sets the desk''s conversation (and communication) id on the active conversation of p_wa_id. '
'Repeating it, or adding the communication id later, is harmless; a different id is PT409, no '
'active conversation PT404. '
'service_role only.';
revoke all on function public.correlate_conversation(text, text, text)
from public, anon, authenticated;
grant execute on function public.correlate_conversation(text, text, text) to service_role;

create or replace function private.service_window_closes_at(p_wa_id text)
returns timestamptz
language plpgsql
stable
set search_path = ''
as $$
begin
    return (
        select max(m.last_inbound_at) + interval '24 hours'
        from public.conversation_mappings as m
        where m.wa_id = p_wa_id
    );
end;
$$;
comment on function private.service_window_closes_at(text) is
'When the 24-hour customer service window of contact p_wa_id closes (null: it never opened); '
'free-form messages may be sent until then, templates always.';

create or replace trigger whatsapp_sessions_updated_at
before update on public.whatsapp_sessions
for each row execute function private.set_updated_at();
create or replace trigger conversation_mappings_updated_at
before update on public.conversation_mappings
for each row execute function private.set_updated_at();

drop policy if exists whatsapp_sessions_own_select on public.whatsapp_sessions;
create policy whatsapp_sessions_own_select on public.whatsapp_sessions
for select to authenticated
using (user_id = (select auth.uid()));
drop policy if exists conversation_mappings_own_select on public.conversation_mappings;
create policy conversation_mappings_own_select on public.conversation_mappings
for select to authenticated
using (user_id = (select auth.uid()));

-- Monitoring --------------------------------------------------------------------------------------

create or replace view monitoring.whatsapp_session_stats as
-- Ages from epochs: a time written as infinity by hand must not break the view. No phone
-- numbers or ids: counts only.
select
    s.status,
    pg_catalog.count(*) as sessions,
    pg_catalog.count(*) filter (
        where s.last_message_at > pg_catalog.now() - interval '1 hour'
    ) as active_last_hour,
    pg_catalog.count(*) filter (
        where s.last_message_at > pg_catalog.now() - interval '1 day'
    ) as active_last_day,
    pg_catalog.sum(s.message_count)::bigint as messages,
    pg_catalog.sum(s.error_count)::bigint as errors,
    round(
        pg_catalog.sum(s.error_count)::numeric
        / nullif(pg_catalog.sum(s.message_count), 0),
        4
    ) as error_rate,
    extract(epoch from pg_catalog.now())::double precision
    - extract(epoch from pg_catalog.min(s.last_heartbeat_at))::double precision
        as oldest_heartbeat_age_s,
    pg_catalog.max(s.last_message_at) as last_message_at
from public.whatsapp_sessions as s
group by s.status;
comment on view monitoring.whatsapp_session_stats is
'Per session status (active, inactive, suspended, expired): sessions, those with a message in the '
'last hour and day, messages and errors counted on them, the error rate (errors per message), '
'the age in seconds of the oldest heartbeat and the newest message. The seed''s '
'whatsapp_session_stats.';
grant select on monitoring.whatsapp_session_stats to analyst;
