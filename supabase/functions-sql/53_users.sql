-- Users: one-time codes that verify a phone number (issue_otp, verify_otp), GDPR erasure
-- (erase_user), the hourly erasure of users inactive for 180 days (anonymize_inactive_users),
-- and the triggers and policies of users and user_preferences. (The WhatsApp ingest's storage
-- file registers users as their first message arrives.)

-- One-time codes ---------------------------------------------------------------------------------

create or replace function private.otp_code()
returns text
language plpgsql
volatile
set search_path = ''
as $$
-- Four random bytes from pgcrypto (not random(), whose sequence can be predicted) are a number
-- below 2^32. Numbers from 4 294 000 000 up, the last and partial run of a million, are drawn
-- again, so that each of the million codes is equally likely.
declare
    v_bytes bytea;
    v_number bigint;
begin
    loop
        v_bytes := extensions.gen_random_bytes(4);
        v_number := (pg_catalog.get_byte(v_bytes, 0)::bigint << 24)
            + (pg_catalog.get_byte(v_bytes, 1) << 16)
            + (pg_catalog.get_byte(v_bytes, 2) << 8)
            + pg_catalog.get_byte(v_bytes, 3);
        exit when v_number < 4294000000;
    end loop;
    return pg_catalog.lpad((v_number % 1000000)::text, 6, '0');
end;
$$;
comment on function private.otp_code() is
'A random one-time code of 6 digits, 000000 to 999999 equally likely, from a cryptographic '
'random source.';

create or replace function public.issue_otp(p_phone_number text)
returns text
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_phone text := private.required_phone(p_phone_number, 'issue_otp');
    v_user public.users;
    v_retry_at timestamptz;
    v_code text;
begin
    -- Issues for one phone take turns, so that two at once cannot both pass the cap.
    perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('otp:' || v_phone, 0));

    -- A code only verify_otp can accept: for a user (registered by their first WhatsApp message),
    -- who may sign in. Refused before the cap counts anything, and no message paid for.
    select u.* into v_user from public.users as u where u.phone_number = v_phone;
    if not found then
        raise exception 'issue_otp: no user has this phone number'
        using errcode = 'PT404',
            hint = 'a user is registered by their first WhatsApp message to the business';
    end if;
    if v_user.blocked_at is not null then
        raise exception 'issue_otp: the user with this phone number is blocked'
        using errcode = 'PT403';
    end if;

    -- At most 5 in any hour: while the fifth most recent issue is less than an hour old, the
    -- next one waits until it is. A refused issue is not counted.
    select i.issued_at + interval '1 hour' into v_retry_at
    from private.otp_issues as i
    where i.phone_number = v_phone and i.issued_at > pg_catalog.now() - interval '1 hour'
    order by i.issued_at desc
    limit 1 offset 4;
    if v_retry_at is not null then
        -- Rounded up to the second: a retry at the time named is never refused.
        v_retry_at := pg_catalog.date_trunc(
            'second', v_retry_at + interval '1 second' - interval '1 microsecond'
        );
        raise exception 'issue_otp: at most 5 codes an hour are sent to a phone number; try again '
            'in % seconds (at %)',
            pg_catalog.ceil(extract(epoch from v_retry_at - pg_catalog.now()))::bigint,
            pg_catalog.to_char(v_retry_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
        using errcode = 'PT429';
    end if;

    v_code := private.otp_code();
    insert into private.otp_issues (phone_number) values (v_phone);
    -- One live code per phone: a new one replaces the last, its attempts and its use. Only the
    -- hash is kept; bcrypt at cost 8 takes milliseconds, and 3 attempts leave no room to guess.
    insert into private.otp_codes as o (phone_number, user_id, code_hash, expires_at)
    values (
        v_phone,
        v_user.id,
        extensions.crypt(v_code, extensions.gen_salt('bf', 8)),
        pg_catalog.now() + interval '5 minutes'
    )
    on conflict (phone_number) do update
        set
            user_id = excluded.user_id,
            code_hash = excluded.code_hash,
            attempts = 0,
            expires_at = excluded.expires_at,
            created_at = excluded.created_at,
            verified_at = null;
    return v_code;
end;
$$;
comment on function public.issue_otp(text) is
'Issues a one-time code for p_phone_number and returns it (6 digits, as text) for the caller to '
'send; only its bcrypt hash is stored. It replaces the phone''s previous code, expires in 5 '
'minutes and allows 3 wrong attempts. Only a user''s phone gets a code: a phone with no user '
'is PT404 (users are registered by their first WhatsApp message; an erased user''s number has '
'none), a blocked user''s PT403, both refused before the cap counts. At most 5 codes per phone '
'in any hour: the sixth is PT429, saying when to try again. A bad phone number is 22023. '
'service_role only.';
revoke all on function public.issue_otp(text) from public, anon, authenticated;
grant execute on function public.issue_otp(text) to service_role;

create or replace function public.verify_otp(p_phone_number text, p_code text)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- An error rolls back everything the call wrote, and a wrong code must be counted: so a wrong
-- code is not an error but an answer ({"verified": false, "reason": "wrong_code", ...}) that
-- commits its attempt. Every other refusal writes nothing and is an error.
declare
    v_phone text := private.required_phone(p_phone_number, 'verify_otp');
    v_code text := pg_catalog.btrim(p_code);
    v_user_id uuid;
    v_blocked_at timestamptz;
    v_otp private.otp_codes;
    v_attempts_left integer;
    v_verified_at timestamptz;
begin
    -- The code stays out of the message: errors reach logs.
    if v_code is null or v_code !~ '^[0-9]{6}$' then
        raise exception 'verify_otp: p_code must be the 6 digits of the code sent'
        using errcode = '22023';
    end if;
    select u.id, u.blocked_at into v_user_id, v_blocked_at
    from public.users as u
    where u.phone_number = v_phone;
    if v_user_id is null then
        raise exception 'verify_otp: no user has this phone number'
        using errcode = 'PT404';
    end if;
    -- Blocked after the code was sent: the code no longer makes them verified.
    if v_blocked_at is not null then
        raise exception 'verify_otp: the user with this phone number is blocked'
        using errcode = 'PT403';
    end if;

    -- Calls for one code take turns: of two racing with the right code, the second finds it
    -- used; of wrong ones, each sees the attempts of those before it.
    select o.* into v_otp
    from private.otp_codes as o
    where o.phone_number = v_phone
    for update;
    if not found then
        raise exception 'verify_otp: no code was issued to this phone number; request one'
        using errcode = 'PT404';
    end if;
    if v_otp.verified_at is not null then
        raise exception 'verify_otp: this code was already used; request a new one'
        using errcode = 'PT409';
    end if;
    if v_otp.attempts >= 3 then
        raise exception 'verify_otp: this code had 3 wrong attempts; request a new one'
        using errcode = 'PT429';
    end if;
    if v_otp.expires_at <= pg_catalog.now() then
        raise exception 'verify_otp: this code expired; request a new one'
        using errcode = '22023';
    end if;

    if extensions.crypt(v_code, v_otp.code_hash) <> v_otp.code_hash then
        update private.otp_codes as o
        set attempts = o.attempts + 1
        where o.phone_number = v_phone
        returning 3 - o.attempts into v_attempts_left;
        return pg_catalog.jsonb_build_object(
            'verified', false,
            'reason', 'wrong_code',
            'attempts_left', v_attempts_left,
            'message', case v_attempts_left
                when 0 then 'wrong code, no attempts left: request a new code'
                when 1 then 'wrong code, 1 attempt left'
                else pg_catalog.format('wrong code, %s attempts left', v_attempts_left)
            end
        );
    end if;

    update private.otp_codes as o
    set verified_at = pg_catalog.now(), user_id = v_user_id
    where o.phone_number = v_phone;
    update public.users as u
    set
        verified_at = pg_catalog.now(),
        last_active_at = greatest(u.last_active_at, pg_catalog.now())
    where u.id = v_user_id
    returning u.verified_at into v_verified_at;
    perform private.emit_event(
        'user', v_user_id::text, 'user.verified',
        pg_catalog.jsonb_build_object(
            'user_id', v_user_id, 'verified_at', v_verified_at, 'method', 'otp'
        ),
        private.request_correlation_id()
    );
    return pg_catalog.jsonb_build_object(
        'verified', true, 'user_id', v_user_id, 'verified_at', v_verified_at
    );
end;
$$;
comment on function public.verify_otp(text, text) is
'Checks p_code against the code issued to p_phone_number. Right: the code is used up, the user '
'verified (verified_at now, outbox event user.verified) and {"verified": true, "user_id", '
'"verified_at"} returned. Wrong: the attempt is counted and {"verified": false, "reason": '
'"wrong_code", "attempts_left", "message"} returned, not raised, since an error would roll the '
'count back. Errors, which change nothing: no user with the number PT404; the user blocked '
'PT403; no code issued PT404; code already used PT409; 3 wrong attempts made PT429; code '
'expired 22023; a bad phone number or a code that is not 6 digits 22023. service_role only.';
revoke all on function public.verify_otp(text, text) from public, anon, authenticated;
grant execute on function public.verify_otp(text, text) to service_role;

create or replace function private.purge_otp_codes()
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_codes integer;
    v_issues integer;
begin
    -- An expired code is kept a day, to tell a late user it expired rather than that none was
    -- sent; an issue counts towards the cap for an hour.
    delete from private.otp_codes as o where o.expires_at < pg_catalog.now() - interval '1 day';
    get diagnostics v_codes = row_count;
    delete from private.otp_issues as i where i.issued_at < pg_catalog.now() - interval '1 hour';
    get diagnostics v_issues = row_count;
    return v_codes + v_issues;
end;
$$;
comment on function private.purge_otp_codes() is
'Deletes one-time codes expired more than a day ago and issues older than an hour (phone '
'numbers are kept no longer than they serve); returns how many rows went.';

select private.schedule_cron(
    'purge-otp-codes', '29 * * * *', 'select private.purge_otp_codes()'
);

-- GDPR erasure -----------------------------------------------------------------------------------

create or replace function private.erase_user_data(
    p_user_id uuid,
    p_reason text,
    p_actor_type text,
    p_actor_identifier text
)
returns jsonb
language plpgsql
volatile
set search_path = ''
as $$
-- Erased: users.block_reason is 'erased (GDPR)'. Every step touches only what is not erased yet,
-- so erasing again changes nothing; the audit record and the event come with the first erasure.
declare
    v_user public.users;
    v_already_erased boolean;
    v_wa_ids text[];
    v_mapping_ids uuid[];
    v_message_ids uuid[];
    v_preferences integer;
    v_sessions integer;
    v_conversations integer;
    v_messages integer;
    v_codes integer;
    v_payment_methods integer;
    v_dead_letters integer;
    v_locations integer;
    v_events integer;
    v_queue jsonb;
    v_counts jsonb;
    -- What the inbound events (the WhatsApp ingest) and users' events say about a person.
    v_personal_keys text [] := array[
        'phone_number', 'wa_user_id', 'display_name', 'contact_name', 'wa_id', 'body', 'media',
        'content', 'context', 'recipient_phone'
    ];
begin
    -- No key update: a sender recording a send to them holds the queue row this erasure needs
    -- and then takes a key share on the user (message_tracking's foreign key); a full update
    -- lock here would deadlock with it. The key (phone number) changes only at the end, when
    -- every such sender is done.
    select u.* into v_user from public.users as u where u.id = p_user_id for no key update;
    if not found then
        return null;
    end if;
    v_already_erased := v_user.block_reason is not distinct from 'erased (GDPR)';
    -- The contact as WhatsApp and the desk name it: the phone's digits, the business-scoped id.
    v_wa_ids := pg_catalog.array_remove(
        array[pg_catalog.ltrim(v_user.phone_number, '+'), v_user.wa_user_id], null
    );
    -- The user's conversations, and those of the contact not yet linked to any user.
    select coalesce(pg_catalog.array_agg(m.id), '{}') into v_mapping_ids
    from public.conversation_mappings as m
    where m.user_id = p_user_id or (m.user_id is null and m.wa_id = any(v_wa_ids));

    delete from public.user_preferences as p where p.user_id = p_user_id;
    get diagnostics v_preferences = row_count;

    -- A session must have a phone number or a WhatsApp id (whatsapp_sessions_identified), and
    -- both are personal: the user's sessions go.
    delete from public.whatsapp_sessions as s
    where s.user_id = p_user_id
        or s.phone_number = v_user.phone_number
        or s.wa_user_id = v_user.wa_user_id;
    get diagnostics v_sessions = row_count;

    -- Conversations keep their ids and history; the contact's id (wa_id is not null, and unique
    -- among active ones) becomes 'erased:' and the conversation's id, and active ones close.
    update public.conversation_mappings as m
    set
        wa_id = 'erased:' || m.id::text,
        contact_name = null,
        status = case when m.status = 'active' then 'closed' else m.status end
    where m.id = any(v_mapping_ids)
        and (
            m.wa_id <> 'erased:' || m.id::text or m.contact_name is not null or m.status = 'active'
        );
    get diagnostics v_conversations = row_count;

    -- What is still to be sent to them is not sent; what was, forgets them. Before the messages
    -- below: a sender recording a send to them waits for this, and the read below then finds
    -- the message it recorded.
    v_queue := private.erase_whatsapp_recipient(v_user.phone_number);

    -- What was said, both ways: the user's messages, every message of their conversations (the
    -- replies sent to them too), and what was sent to their number outside any conversation,
    -- before they were a user. The rows stay, for counts and statuses.
    select coalesce(pg_catalog.array_agg(t.id), '{}') into v_message_ids
    from public.message_tracking as t
    where t.user_id = p_user_id
        or t.mapping_id = any(v_mapping_ids)
        or (t.direction = 'OUTBOUND' and t.metadata ->> 'recipient_phone' = v_user.phone_number);
    update public.message_tracking as t
    set
        body = null,
        media = null,
        content = null,
        context = null,
        metadata = t.metadata - 'recipient_phone'
    where t.id = any(v_message_ids)
        and (
            t.body is not null or t.media is not null or t.content is not null
            or t.context is not null or t.metadata ? 'recipient_phone'
        );
    get diagnostics v_messages = row_count;

    -- Events not yet published (or kept a week after) would carry the same data on: they keep
    -- their ids and lose the personal fields.
    update public.outbox_events as e
    set payload = (e.payload - v_personal_keys) || '{"erased": true}'
    where
        (
            (e.aggregate_type = 'user' and e.aggregate_id = p_user_id::text)
            or (
                e.aggregate_type = 'conversation'
                and e.aggregate_id = any(v_mapping_ids::text [])
            )
            or (
                e.aggregate_type = 'whatsapp_message'
                and e.aggregate_id = any(v_message_ids::text [])
            )
        )
        and e.payload ?| v_personal_keys;
    get diagnostics v_events = row_count;

    delete from private.otp_codes as o
    where o.user_id = p_user_id or o.phone_number = v_user.phone_number;
    get diagnostics v_codes = row_count;
    delete from private.otp_issues as i where i.phone_number = v_user.phone_number;
    -- Account details are personal data; the transactions that used them are money records and
    -- stay (they never held the details).
    delete from public.payment_methods as m where m.user_id = p_user_id;
    get diagnostics v_payment_methods = row_count;
    -- Webhook messages that could not be stored are kept whole, sender and text included.
    v_dead_letters := private.erase_whatsapp_dead_letters(v_user.phone_number, v_user.wa_user_id);
    -- Where they were and the places they kept say who they are.
    delete from public.locations as l where l.user_id = p_user_id;
    get diagnostics v_locations = row_count;

    v_counts := pg_catalog.jsonb_build_object(
        'preferences_deleted', v_preferences,
        'sessions_deleted', v_sessions,
        'conversations_anonymised', v_conversations,
        'messages_blanked', v_messages,
        'events_scrubbed', v_events,
        'otp_codes_deleted', v_codes,
        'payment_methods_deleted', v_payment_methods,
        'dead_letters_deleted', v_dead_letters,
        'locations_deleted', v_locations
    ) || v_queue;
    if not v_already_erased then
        -- Ids stay, for the rows that refer to the user; users_identified allows a blocked user
        -- without identifiers.
        update public.users as u
        set
            phone_number = null,
            wa_user_id = null,
            display_name = null,
            blocked_at = pg_catalog.now(),
            block_reason = 'erased (GDPR)'
        where u.id = p_user_id
        returning u.* into v_user;
        -- Counts only: nothing personal goes into the append-only log.
        perform public.log_audit_event(
            p_actor_type, p_actor_identifier, 'user.erased', 'user', p_user_id::text,
            pg_catalog.jsonb_build_object('reason', p_reason) || v_counts
        );
        perform private.emit_event(
            'user', p_user_id::text, 'user.erased',
            pg_catalog.jsonb_build_object(
                'user_id', p_user_id, 'erased_at', v_user.blocked_at, 'reason', p_reason
            ),
            private.request_correlation_id()
        );
    end if;
    return pg_catalog.jsonb_build_object(
        'user_id', p_user_id,
        'erased_at', v_user.blocked_at,
        'already_erased', v_already_erased
    ) || v_counts;
end;
$$;
comment on function private.erase_user_data(uuid, text, text, text) is
'Erases a user''s personal data (see erase_user), recording p_reason and the actor in the audit '
'log; returns what erase_user returns, or null when there is no such user.';

create or replace function public.erase_user(p_user_id uuid)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_actor record := private.request_actor();
    v_result jsonb;
begin
    if p_user_id is null then
        raise exception 'erase_user: p_user_id must be a user id'
        using errcode = '22023';
    end if;
    v_result := private.erase_user_data(
        p_user_id, 'request', v_actor.actor_type, v_actor.actor_identifier
    );
    if v_result is null then
        raise exception 'erase_user: no user has id %', p_user_id
        using errcode = 'PT404';
    end if;
    return v_result;
end;
$$;
comment on function public.erase_user(uuid) is
'GDPR erasure of user p_user_id: phone number, WhatsApp id and name removed, the user blocked '
'(''erased (GDPR)''), preferences, sessions, one-time codes and payment methods deleted, the '
'text, media and content of their messages (both ways, also those sent to their number before '
'they were a user) blanked, the webhook dead letters naming them deleted, their '
'conversations'' contact id replaced and name removed, the personal fields of their outbox '
'events removed, and their outbound queue reached: messages '
'not yet sent cancelled, every queued message''s number, payload and error text removed (a '
'send in flight is recorded without them). Ids stay for the rows that refer to them; '
'transactions and wallets stay (money records), but no money moves to or from an erased user '
'afterwards (PT410). Writes an audit record (user.erased, counts only) and the outbox event '
'user.erased. Returns {user_id, erased_at, already_erased, preferences_deleted, '
'sessions_deleted, conversations_anonymised, messages_blanked, events_scrubbed, '
'otp_codes_deleted, payment_methods_deleted, dead_letters_deleted, locations_deleted, '
'queued_messages_cancelled, '
'queued_messages_blanked, queue_events_scrubbed}; erasing an erased user changes nothing. '
'Unknown id PT404. service_role only.';
revoke all on function public.erase_user(uuid) from public, anon, authenticated;
grant execute on function public.erase_user(uuid) to service_role;

create or replace function public.anonymize_inactive_users(
    p_days integer default 180,
    p_limit integer default 1000
)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_user_id uuid;
    v_erased integer := 0;
begin
    if p_days is null or p_days < 1 then
        raise exception 'anonymize_inactive_users: p_days must be 1 or more (got %)',
            coalesce(p_days::text, 'null')
        using errcode = '22023';
    end if;
    perform private.require_between(p_limit, 1, 100000, 'anonymize_inactive_users', 'p_limit');
    -- The longest inactive first, at most p_limit in one transaction: a backlog (the first run
    -- on old data) is worked off over several runs instead of holding locks for minutes.
    -- A user writing right now is locked by the ingest: skipped, being active. One who wrote
    -- since the query began no longer matches it when locked, and is skipped too.
    for v_user_id in
        select u.id
        from public.users as u
        where coalesce(u.last_active_at, u.registered_at)
            < pg_catalog.now() - pg_catalog.make_interval(days => p_days)
            and u.block_reason is distinct from 'erased (GDPR)'
            -- A driver whose app reports positions is active without writing on WhatsApp:
            -- read here, so that the position report (thousands a second) writes no user row.
            and not exists (
                select from public.locations as l
                where
                    l.user_id = u.id and l.location_type = 'current'
                    and l.recorded_at >= pg_catalog.now() - pg_catalog.make_interval(days => p_days)
            )
        order by coalesce(u.last_active_at, u.registered_at), u.id
        limit p_limit
        for no key update skip locked
    loop
        perform private.erase_user_data(
            v_user_id, 'inactive', 'system', 'anonymize_inactive_users'
        );
        v_erased := v_erased + 1;
    end loop;
    return v_erased;
end;
$$;
comment on function public.anonymize_inactive_users(integer, integer) is
'Erases, as erase_user does, users not active (last_active_at, else registered_at) for p_days '
'days (default 180) and not erased yet, the longest inactive first and at most p_limit (default '
'1000) per call; returns how many. Runs hourly from pg_cron. p_days below 1 or p_limit outside '
'1 to 100000 is 22023. service_role only.';
revoke all on function public.anonymize_inactive_users(integer, integer)
from public, anon, authenticated;
grant execute on function public.anonymize_inactive_users(integer, integer) to service_role;

select private.schedule_cron(
    'anonymize-inactive-users', '17 * * * *', 'select public.anonymize_inactive_users()'
);

create or replace function private.require_user(
    p_user_id uuid,
    p_function text,
    p_argument text default null
)
returns void
language plpgsql
stable
set search_path = ''
as $$
begin
    if not exists (select from public.users as u where u.id = p_user_id) then
        raise exception '%: no user %', p_function,
            p_user_id::text || case when p_argument is null then '' else ' (' || p_argument || ')' end
        using errcode = 'PT404';
    end if;
end;
$$;
comment on function private.require_user(uuid, text, text) is
'PT404 "p_function: no user <id>" (naming p_argument when given) unless user p_user_id exists.';

create or replace function private.require_not_erased(
    p_user_id uuid,
    p_counterparty_id uuid,
    p_function text
)
returns void
language plpgsql
stable
set search_path = ''
as $$
-- Money stays on an erased user's records, but none moves to or from an identity nobody can
-- reach any more, and no new personal data is kept for it. 410 Gone through the gateway.
declare
    v_erased uuid;
begin
    select u.id into v_erased
    from public.users as u
    where u.id in (p_user_id, p_counterparty_id) and u.block_reason = 'erased (GDPR)'
    order by u.id = p_user_id desc
    limit 1;
    if v_erased is not null then
        raise exception '%: user % was erased (GDPR): no money moves to or from them, and '
            'nothing new is kept about them', p_function, v_erased
        using errcode = 'PT410';
    end if;
end;
$$;
comment on function private.require_not_erased(uuid, uuid, text) is
'PT410 "p_function: user <id> was erased (GDPR): ..." when p_user_id or p_counterparty_id '
'(either may be null) is an erased user.';

create or replace function private.lock_living_user(p_user_id uuid, p_function text)
returns void
language plpgsql
volatile
set search_path = ''
as $$
-- For a write that keeps something new about the user. Without the lock, a write that checked
-- the user while erase_user ran would commit after the erasure's deletes and keep personal data
-- of an erased user: the foreign key's FOR KEY SHARE does not wait for the erasure's FOR NO KEY
-- UPDATE, but FOR SHARE does, and the check after it then sees the erasure.
begin
    perform from public.users as u where u.id = p_user_id for share;
    if not found then
        raise exception '%: no user %', p_function, p_user_id using errcode = 'PT404';
    end if;
    perform private.require_not_erased(p_user_id, null, p_function);
end;
$$;
comment on function private.lock_living_user(uuid, text) is
'Locks user p_user_id FOR SHARE until the transaction ends (an erasure in flight is waited for): '
'PT404 "p_function: no user <id>" when there is none, PT410 when the user was erased.';

-- Who reads --------------------------------------------------------------------------------------

create or replace trigger users_updated_at
before update on public.users
for each row execute function private.set_updated_at();
create or replace trigger user_preferences_updated_at
before update on public.user_preferences
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
