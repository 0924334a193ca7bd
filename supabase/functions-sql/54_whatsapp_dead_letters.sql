-- Webhook dead letters: the one writer, the operator's RPCs (list, retry after a fix, discard),
-- erasure, the purge job and the monitoring view. The ingest (whatsapp_ingest) writes a letter
-- for each message or status it cannot store; the edge writes one for a signed body it cannot
-- pass on at all (not JSON, or JSON Postgres cannot hold), through dead_letter_whatsapp_webhook.

create or replace function private.dead_letter_whatsapp(
    p_provider text,
    p_kind text,
    p_reason text,
    p_detail text,
    p_sqlstate text,
    p_raw jsonb,
    p_raw_body bytea,
    p_wamid text,
    p_contact text,
    p_correlation_id text
)
returns bigint
language plpgsql
volatile
set search_path = ''
as $$
-- Whatever it is given is kept: an id or contact too long to be one is left out of its column
-- (it is still in the raw message), a long detail is cut.
declare
    v_id bigint;
begin
    insert into private.whatsapp_dead_letters as d (
        provider,
        kind,
        reason,
        detail,
        sqlstate,
        wamid,
        contact,
        raw,
        raw_body,
        correlation_id,
        fingerprint
    )
    values (
        p_provider,
        p_kind,
        p_reason,
        pg_catalog.left(coalesce(nullif(p_detail, ''), 'no detail'), 2000),
        p_sqlstate,
        case when pg_catalog.char_length(p_wamid) between 1 and 255 then p_wamid end,
        case when pg_catalog.char_length(p_contact) between 1 and 255 then p_contact end,
        p_raw,
        p_raw_body,
        case
            when pg_catalog.char_length(p_correlation_id) between 1 and 200 then p_correlation_id
        end,
        pg_catalog.sha256(
            pg_catalog.convert_to(p_provider || ':' || p_kind || ':', 'UTF8')
            || coalesce(pg_catalog.convert_to(p_raw::text, 'UTF8'), p_raw_body)
        )
    )
    -- Delivered again: it is still not stored, so a resolved letter opens again, with the latest
    -- reason and correlation id.
    on conflict (fingerprint) do update
        set
            times_seen = d.times_seen + 1,
            last_seen_at = pg_catalog.now(),
            reason = excluded.reason,
            detail = excluded.detail,
            sqlstate = excluded.sqlstate,
            correlation_id = coalesce(excluded.correlation_id, d.correlation_id),
            resolution = null,
            resolved_at = null,
            resolution_note = null
    returning d.id into v_id;
    return v_id;
end;
$$;
comment on function private.dead_letter_whatsapp(
    text, text, text, text, text, jsonb, bytea, text, text, text
) is
'Keeps what a webhook carried that could not be stored; the same thing again counts on the '
'first row (times_seen) and opens it again if it was resolved. Returns the dead letter''s id. '
'The one writer of whatsapp_dead_letters.';

create or replace function public.dead_letter_whatsapp_webhook(
    p_provider text,
    p_body bytea,
    p_detail text,
    p_sqlstate text default null,
    p_correlation_id text default null
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_raw jsonb;
begin
    if p_provider is null or p_provider not in ('meta', 'twilio') then
        raise exception 'dead_letter_whatsapp_webhook: p_provider must be meta or twilio (got %)',
            private.quoted_for_error(p_provider, 20)
        using errcode = '22023';
    end if;
    if p_body is null or pg_catalog.octet_length(p_body) > 8388608 then
        raise exception 'dead_letter_whatsapp_webhook: p_body must be a body of at most 8 MiB'
        using errcode = '22023';
    end if;
    perform private.require_length(p_detail, 1, 2000, 'dead_letter_whatsapp_webhook', 'p_detail');
    if p_sqlstate !~ '^[0-9A-Z]{5}$' then
        raise exception 'dead_letter_whatsapp_webhook: p_sqlstate must be null or a SQLSTATE'
        using errcode = '22023';
    end if;
    perform private.require_identifier(
        p_correlation_id, 'dead_letter_whatsapp_webhook', 'p_correlation_id'
    );
    -- Kept as JSON when it is JSON Postgres can hold (an operator can read and retry it), else
    -- as the bytes that were signed.
    begin
        v_raw := pg_catalog.convert_from(p_body, 'UTF8')::jsonb;
    exception when data_exception or program_limit_exceeded then
        v_raw := null;
    end;
    return pg_catalog.jsonb_build_object(
        'dead_letter_id', private.dead_letter_whatsapp(
            p_provider,
            'payload',
            'invalid_payload',
            p_detail,
            p_sqlstate,
            v_raw,
            case when v_raw is null then p_body end,
            null,
            null,
            p_correlation_id
        )
    );
end;
$$;
comment on function public.dead_letter_whatsapp_webhook(text, bytea, text, text, text) is
'Keeps a signed webhook body that cannot be ingested at all (not JSON, JSON Postgres cannot hold, '
'or refused by ingest_whatsapp_webhook) as a dead letter: p_body (at most 8 MiB) with p_detail '
'(1 to 2000 characters), the SQLSTATE that refused it, if any, and the correlation id. The same '
'body again is the same letter. Returns {dead_letter_id}. service_role only (the edge).';
revoke all on function public.dead_letter_whatsapp_webhook(text, bytea, text, text, text)
from public, anon, authenticated;
grant execute on function public.dead_letter_whatsapp_webhook(text, bytea, text, text, text)
to service_role;

create or replace function public.list_whatsapp_dead_letters(
    p_state text default 'open',
    p_limit integer default 50,
    p_after_id bigint default null
)
returns table (
    id bigint,
    provider text,
    kind text,
    reason text,
    detail text,
    sqlstate text,
    wamid text,
    contact text,
    raw jsonb,
    raw_body bytea,
    correlation_id text,
    times_seen integer,
    received_at timestamptz,
    last_seen_at timestamptz,
    retry_count integer,
    last_retry_at timestamptz,
    resolution text,
    resolved_at timestamptz,
    resolution_note text
)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
    if p_state is null or p_state not in ('open', 'resolved', 'all') then
        raise exception 'list_whatsapp_dead_letters: p_state must be open, resolved or all (got %)',
            private.quoted_for_error(p_state, 20)
        using errcode = '22023';
    end if;
    -- A letter may hold a whole body (up to the edge's limit): a page stays bounded.
    perform private.require_between(p_limit, 1, 100, 'list_whatsapp_dead_letters', 'p_limit');
    return query
    select
        d.id,
        d.provider,
        d.kind,
        d.reason,
        d.detail,
        d.sqlstate,
        d.wamid,
        d.contact,
        d.raw,
        d.raw_body,
        d.correlation_id,
        d.times_seen,
        d.received_at,
        d.last_seen_at,
        d.retry_count,
        d.last_retry_at,
        d.resolution,
        d.resolved_at,
        d.resolution_note
    from private.whatsapp_dead_letters as d
    where
        d.id > coalesce(p_after_id, 0)
        and case p_state
            when 'open' then d.resolution is null
            when 'resolved' then d.resolution is not null
            else true
        end
    order by d.id
    limit p_limit;
end;
$$;
comment on function public.list_whatsapp_dead_letters(text, integer, bigint) is
'Webhook dead letters in id order: p_state open (waiting, the default), resolved or all; at most '
'p_limit (1 to 100, default 50) after id p_after_id (for the next page). service_role only.';
revoke all on function public.list_whatsapp_dead_letters(text, integer, bigint)
from public, anon, authenticated;
grant execute on function public.list_whatsapp_dead_letters(text, integer, bigint)
to service_role;

create or replace function private.dead_letter_webhook_payload(
    p_letter private.whatsapp_dead_letters
)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
-- A kept message or status goes back in the envelope its provider sends it in; a kept body is
-- read as JSON (it fails again when it still is not).
begin
    return case
        when p_letter.kind = 'payload'
            then coalesce(
                p_letter.raw, pg_catalog.convert_from(p_letter.raw_body, 'UTF8')::jsonb
            )
        when p_letter.provider = 'twilio' then p_letter.raw
        else pg_catalog.jsonb_build_object(
            'object', 'whatsapp_business_account',
            'entry', pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
                'id', 'dead-letter',
                'changes', pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
                    'field', 'messages', 'value', p_letter.raw
                ))
            ))
        )
    end;
end;
$$;
comment on function private.dead_letter_webhook_payload(private.whatsapp_dead_letters) is
'The webhook payload that carries a dead letter''s message, status or body again.';

create or replace function private.locked_dead_letter(p_id bigint, p_function text)
returns private.whatsapp_dead_letters
language plpgsql
volatile
set search_path = ''
as $$
-- Locked until the caller commits: a retry and a discard of one letter take turns.
declare
    v_letter private.whatsapp_dead_letters;
begin
    if p_id is null then
        raise exception '%: p_id must be a dead letter id', p_function using errcode = '22023';
    end if;
    select d.* into v_letter
    from private.whatsapp_dead_letters as d
    where d.id = p_id
    for update;
    if not found then
        raise exception '%: no dead letter %', p_function, p_id using errcode = 'PT404';
    end if;
    return v_letter;
end;
$$;
comment on function private.locked_dead_letter(bigint, text) is
'Dead letter p_id, locked for update; 22023 for a null id, PT404 for an unknown one, naming '
'p_function.';

create or replace function public.retry_whatsapp_dead_letter(p_id bigint)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Runs the kept message through the ingest again, as a provider retry would: after a fix it is
-- stored (or found stored meanwhile), else it stays with the new detail. A kept body that now
-- ingests may still hold single messages that fail: each becomes a letter of its own.
declare
    v_letter private.whatsapp_dead_letters;
    v_summary jsonb;
    v_sqlstate text;
    v_detail text;
    v_resolution text;
    v_correlation_id text;
    v_actor record := private.request_actor();
begin
    v_letter := private.locked_dead_letter(p_id, 'retry_whatsapp_dead_letter');
    v_correlation_id := coalesce(v_letter.correlation_id, private.request_correlation_id());
    if v_letter.resolution is not null then
        return pg_catalog.jsonb_build_object(
            'id', v_letter.id,
            'outcome', 'already_resolved',
            'resolution', v_letter.resolution,
            'detail', v_letter.detail
        );
    end if;

    begin
        if v_letter.kind = 'payload' then
            -- A whole body: the shape checks too, and what in it still fails becomes a letter of
            -- its own.
            v_summary := public.ingest_whatsapp_webhook(
                v_letter.provider, private.dead_letter_webhook_payload(v_letter), v_correlation_id
            );
        else
            v_summary := private.ingest_webhook(
                v_letter.provider,
                private.dead_letter_webhook_payload(v_letter),
                v_correlation_id,
                false
            );
        end if;
        if v_summary -> 'faults' <> '[]' then
            v_sqlstate := v_summary -> 'faults' -> 0 ->> 'sqlstate';
            v_detail := v_summary -> 'faults' -> 0 ->> 'detail';
        end if;
    exception when data_exception or integrity_constraint_violation or program_limit_exceeded then
        get stacked diagnostics v_sqlstate = returned_sqlstate, v_detail = message_text;
    end;
    if v_detail is null
        and (v_summary ->> 'messages_stored')::integer + (v_summary ->> 'duplicates')::integer
        + (v_summary ->> 'statuses_applied')::integer + (v_summary ->> 'statuses_ignored')::integer
        + (v_summary ->> 'statuses_pending')::integer + (v_summary ->> 'dead_lettered')::integer
        = 0 then
        v_sqlstate := '22023';
        v_detail := 'it carries no message and no status';
    end if;
    v_resolution := case
        when v_detail is not null then null
        when (v_summary ->> 'messages_stored')::integer > 0
            or (v_summary ->> 'statuses_applied')::integer > 0
            or (v_summary ->> 'statuses_pending')::integer > 0
            or (v_summary ->> 'dead_lettered')::integer > 0
            then 'stored'
        else 'duplicate'
    end;

    update private.whatsapp_dead_letters as d
    set
        retry_count = d.retry_count + 1,
        last_retry_at = pg_catalog.now(),
        detail = coalesce(pg_catalog.left(v_detail, 2000), d.detail),
        sqlstate = case when v_detail is not null then v_sqlstate else d.sqlstate end,
        resolution = v_resolution,
        resolved_at = case when v_resolution is not null then pg_catalog.now() end
    where d.id = v_letter.id
    returning d.* into v_letter;
    perform public.log_audit_event(
        v_actor.actor_type, v_actor.actor_identifier, 'whatsapp_dead_letter.retried',
        'whatsapp_dead_letter', v_letter.id::text,
        pg_catalog.jsonb_build_object(
            'outcome', coalesce(v_resolution, 'failed'), 'sqlstate', v_sqlstate
        )
    );
    return pg_catalog.jsonb_build_object(
        'id', v_letter.id,
        'outcome', coalesce(v_resolution, 'failed'),
        'resolution', v_letter.resolution,
        'detail', v_letter.detail,
        'sqlstate', v_letter.sqlstate,
        'retry_count', v_letter.retry_count,
        'dead_lettered', coalesce((v_summary ->> 'dead_lettered')::integer, 0)
    );
end;
$$;
comment on function public.retry_whatsapp_dead_letter(bigint) is
'Ingests dead letter p_id again. Returns {id, outcome, resolution, detail, sqlstate, '
'retry_count, dead_lettered}: outcome stored (resolved; for a kept body, dead_lettered counts '
'the messages in it that still fail, each now a letter of its own), duplicate (it was stored '
'meanwhile; resolved), failed (still refused, or nothing in it; the detail is the new reason) '
'or already_resolved (nothing done). Audited. PT404 for an unknown id. service_role only.';
revoke all on function public.retry_whatsapp_dead_letter(bigint)
from public, anon, authenticated;
grant execute on function public.retry_whatsapp_dead_letter(bigint) to service_role;

create or replace function public.discard_whatsapp_dead_letter(p_id bigint, p_note text)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_letter private.whatsapp_dead_letters;
    v_actor record := private.request_actor();
begin
    perform private.require_length(p_note, 1, 500, 'discard_whatsapp_dead_letter', 'p_note');
    v_letter := private.locked_dead_letter(p_id, 'discard_whatsapp_dead_letter');
    if v_letter.resolution is not null then
        return pg_catalog.jsonb_build_object(
            'id', v_letter.id,
            'resolution', v_letter.resolution,
            'resolved_at', v_letter.resolved_at,
            'already_resolved', true
        );
    end if;
    update private.whatsapp_dead_letters as d
    set resolution = 'discarded', resolved_at = pg_catalog.now(), resolution_note = p_note
    where d.id = v_letter.id
    returning d.* into v_letter;
    perform public.log_audit_event(
        v_actor.actor_type, v_actor.actor_identifier, 'whatsapp_dead_letter.discarded',
        'whatsapp_dead_letter', v_letter.id::text, pg_catalog.jsonb_build_object('note', p_note)
    );
    return pg_catalog.jsonb_build_object(
        'id', v_letter.id,
        'resolution', v_letter.resolution,
        'resolved_at', v_letter.resolved_at,
        'already_resolved', false
    );
end;
$$;
comment on function public.discard_whatsapp_dead_letter(bigint, text) is
'Gives up on dead letter p_id with p_note (1 to 500 characters): resolved as discarded, kept 30 '
'days, audited. Discarding a resolved letter changes nothing. Returns {id, resolution, '
'resolved_at, already_resolved}. PT404 for an unknown id. service_role only.';
revoke all on function public.discard_whatsapp_dead_letter(bigint, text)
from public, anon, authenticated;
grant execute on function public.discard_whatsapp_dead_letter(bigint, text) to service_role;

create or replace function private.erase_whatsapp_dead_letters(
    p_phone_number text,
    p_wa_user_id text
)
returns integer
language plpgsql
volatile
set search_path = ''
as $$
-- A letter names its sender in contact when the ingest could read one; a kept body is searched
-- for the number's digits standing alone (Meta writes them bare, Twilio as whatsapp:+ in a
-- form, so not inside a longer number) and for the user id as a JSON string. Letters are few,
-- so reading them all is fine. They are deleted, not blanked: nothing refers to them, and a
-- body holding several senders cannot be split any more than it could be ingested.
declare
    v_digits text := '(^|[^0-9])' || pg_catalog.ltrim(p_phone_number, '+') || '([^0-9]|$)';
    v_user_id text := pg_catalog.to_jsonb(p_wa_user_id)::text;
    v_erased integer;
begin
    delete from private.whatsapp_dead_letters as d
    where
        d.contact in (
            p_phone_number,
            pg_catalog.ltrim(p_phone_number, '+'),
            'whatsapp:' || p_phone_number,
            p_wa_user_id
        )
        or d.raw::text ~ v_digits
        or pg_catalog.strpos(d.raw::text, v_user_id) > 0
        or pg_catalog.encode(d.raw_body, 'escape') ~ v_digits
        or pg_catalog.strpos(pg_catalog.encode(d.raw_body, 'escape'), v_user_id) > 0;
    get diagnostics v_erased = row_count;
    return v_erased;
end;
$$;
comment on function private.erase_whatsapp_dead_letters(text, text) is
'Deletes the webhook dead letters that name p_phone_number or p_wa_user_id, for erase_user_data; '
'returns how many.';

create or replace function private.purge_whatsapp_dead_letters(
    p_older_than interval default '30 days'
)
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_deleted integer;
begin
    delete from private.whatsapp_dead_letters as d
    where d.resolved_at < pg_catalog.now() - p_older_than;
    get diagnostics v_deleted = row_count;
    return v_deleted;
end;
$$;
comment on function private.purge_whatsapp_dead_letters(interval) is
'Deletes dead letters resolved more than p_older_than ago; open ones are never deleted.';

select private.schedule_cron(
    'purge-whatsapp-dead-letters', '47 3 * * *',
    'select private.purge_whatsapp_dead_letters()'
);

create or replace view monitoring.whatsapp_dead_letters as
select
    d.provider,
    d.kind,
    d.reason,
    count(*) filter (where d.resolution is null) as open,
    count(*) filter (where d.resolution is not null) as resolved,
    sum(d.times_seen) filter (where d.resolution is null) as open_deliveries,
    min(d.received_at) filter (where d.resolution is null) as oldest_open_at,
    -- From epochs: an infinite time reads as an infinite age, not an error.
    (
        extract(epoch from pg_catalog.now())
        - min(extract(epoch from d.received_at)) filter (where d.resolution is null)
    ) as oldest_open_age_s,
    max(d.last_seen_at) as last_seen_at
from private.whatsapp_dead_letters as d
group by d.provider, d.kind, d.reason;
comment on view monitoring.whatsapp_dead_letters is
'Webhook dead letters by provider, kind and reason: how many wait (open) and since when, how '
'many were resolved, and when one was last seen. Open letters are messages not stored: alert '
'on open > 0.';
grant select on monitoring.whatsapp_dead_letters to analyst;
