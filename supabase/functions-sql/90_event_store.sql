-- The event store: appends with optimistic concurrency and idempotent event ids, reads per
-- aggregate (from a snapshot), the global order with subscriptions and consumer groups, and
-- the analysts' views. Only service_role reads or writes: events carry any domain's data.

-- Positions ---------------------------------------------------------------------------------------

create or replace function private.event_position(p_transaction xid8, p_rank bigint)
returns bigint
language plpgsql
immutable
strict
set search_path = ''
as $$
-- 2^20 ranks per transaction: a transaction id would need 2^43 (8.8e12 transactions, centuries
-- at this machine's rate) to overflow a bigint.
begin
    return (p_transaction::text::bigint << 20) + p_rank;
end;
$$;
comment on function private.event_position(xid8, bigint) is
'The global_position of the p_rank-th event (from 0) appended by transaction p_transaction.';

create or replace function private.settled_position()
returns bigint
language plpgsql
stable
security definer
set search_path = ''
as $$
-- The outbox's rule (private.oldest_running_transaction) applied to positions: every position
-- below it belongs to a transaction that has ended, so no event can appear there any more.
begin
    return private.event_position(private.oldest_running_transaction(), 0);
end;
$$;
comment on function private.settled_position() is
'The lowest global_position an event may still take: positions below it are final (committed '
'or never to be), so a reader that reads only below it skips nothing. SECURITY DEFINER for '
'the analysts'' lag view.';
grant execute on function private.settled_position() to analyst;

create or replace function private.event_consumer(
    p_aggregate_type text,
    p_aggregate_id text,
    p_consumer_count integer
)
returns integer
language plpgsql
immutable
strict
set search_path = ''
as $$
-- A consumer group splits by aggregate, as message-db's do, so one aggregate's events stay in
-- one consumer and in order. md5 rather than Postgres' internal hashes: any client can compute
-- it (the first 60 bits of md5('<type>:<id>') as an unsigned number, modulo the count).
begin
    return (
        ('x' || pg_catalog.left(pg_catalog.md5(p_aggregate_type || ':' || p_aggregate_id), 15))
        ::bit(60)::bigint % p_consumer_count
    )::integer;
end;
$$;
comment on function private.event_consumer(text, text, integer) is
'Which of p_consumer_count consumers of a group reads the aggregate''s events: the first 60 bits '
'of md5(''<type>:<id>'') modulo the count.';
grant execute on function private.event_consumer(text, text, integer) to analyst;

-- Appending ---------------------------------------------------------------------------------------

create or replace function private.require_event_names(
    p_function text,
    p_aggregate_type text,
    p_aggregate_id text
)
returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
    perform private.require_length(p_aggregate_type, 1, 200, p_function, 'p_aggregate_type');
    perform private.require_length(p_aggregate_id, 1, 200, p_function, 'p_aggregate_id');
end;
$$;
comment on function private.require_event_names(text, text, text) is
'22023 unless the aggregate type and id are 1 to 200 characters.';

create or replace function private.require_new_event(p_function text, p_prefix text, p_event jsonb)
returns void
language plpgsql
immutable
set search_path = ''
as $$
-- One event, {event_type, payload, metadata?, event_id?, causation_id?}: an element of
-- append_events' p_events (p_prefix 'p_events[3].') or append_event's arguments (p_prefix 'p_'),
-- so that the error names what the caller wrote.
declare
    v_event_id text := p_event ->> 'event_id';
begin
    if pg_catalog.jsonb_typeof(p_event) is distinct from 'object' then
        raise exception '%: % must be a JSON object', p_function, pg_catalog.rtrim(p_prefix, '.')
        using errcode = '22023';
    end if;
    if pg_catalog.jsonb_typeof(p_event -> 'event_type') is distinct from 'string'
        or pg_catalog.char_length(p_event ->> 'event_type') not between 1 and 200 then
        raise exception '%: %event_type must be 1 to 200 characters', p_function, p_prefix
        using errcode = '22023';
    end if;
    perform private.require_json_object(p_event -> 'payload', p_function, p_prefix || 'payload');
    perform private.require_json_size(p_event -> 'payload', 65536, p_function,
        p_prefix || 'payload');
    if coalesce(pg_catalog.jsonb_typeof(p_event -> 'metadata'), 'null') <> 'null' then
        perform private.require_json_object(p_event -> 'metadata', p_function,
            p_prefix || 'metadata');
        perform private.require_json_size(p_event -> 'metadata', 8192, p_function,
            p_prefix || 'metadata');
    end if;
    if v_event_id is not null
        and v_event_id !~* '^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$' then
        raise exception '%: %event_id must be a uuid (got %)',
            p_function, p_prefix, private.quoted_for_error(v_event_id, 40)
        using errcode = '22023';
    end if;
    perform private.require_identifier(p_event ->> 'causation_id', p_function,
        p_prefix || 'causation_id');
end;
$$;
comment on function private.require_new_event(text, text, jsonb) is
'22023 naming the field (p_prefix and its name) unless p_event is {event_type: 1 to 200 '
'characters, payload: an object of at most 64 KiB, metadata: absent, null or an object of at '
'most 8 KiB, event_id: absent, null or a uuid, causation_id: absent, null or 1 to 200 '
'characters}.';

create or replace function private.event_digest(
    p_aggregate_type text,
    p_aggregate_id text,
    p_event jsonb
)
returns uuid
language plpgsql
immutable
set search_path = ''
as $$
-- What a retry must repeat for its event id to name the same event.
begin
    return pg_catalog.md5(pg_catalog.jsonb_build_array(
        p_aggregate_type, p_aggregate_id, p_event -> 'event_type', p_event -> 'payload'
    )::text)::uuid;
end;
$$;
comment on function private.event_digest(text, text, jsonb) is
'md5 of an event''s aggregate, event type and payload as a uuid: an event id appended again must '
'come with the same.';

create or replace function private.append_to_stream(
    p_function text,
    p_aggregate_type text,
    p_aggregate_id text,
    p_expected_version bigint,
    p_correlation_id text,
    p_events jsonb
)
returns jsonb
language plpgsql
volatile
set search_path = ''
as $$
-- The one writer of events, for append_event (one) and append_events (a batch), arguments
-- already checked. Returns the answers, [{event_id, aggregate_type, aggregate_id, version,
-- global_position}], in order.
declare
    v_count integer := pg_catalog.jsonb_array_length(p_events);
    v_ids uuid[];
    -- Of the ids the caller chose (null for those generated here): only those can be retried.
    v_digests uuid[];
    v_supplied integer;
    v_answers jsonb;
    v_base bigint;
    v_first_position bigint;
    v_claimed integer;
    v_stream private.event_streams;
    v_last_version bigint;
    v_rank text;
    v_actor record;
begin
    -- One event (append_event, the hot write) by expressions, a batch by a query.
    if v_count = 1 then
        v_ids := array[
            coalesce((p_events -> 0 ->> 'event_id')::uuid, pg_catalog.gen_random_uuid())
        ];
        v_supplied := (p_events -> 0 ->> 'event_id' is not null)::integer;
        if v_supplied = 1 then
            v_digests := array[
                private.event_digest(p_aggregate_type, p_aggregate_id, p_events -> 0)
            ];
        end if;
    else
        select
            pg_catalog.array_agg(
                coalesce((e.value ->> 'event_id')::uuid, pg_catalog.gen_random_uuid())
                order by e.ordinality
            ),
            pg_catalog.array_agg(
                case
                    when e.value ->> 'event_id' is not null
                        then private.event_digest(p_aggregate_type, p_aggregate_id, e.value)
                end
                order by e.ordinality
            ),
            pg_catalog.count(e.value ->> 'event_id')
        into v_ids, v_digests, v_supplied
        from pg_catalog.jsonb_array_elements(p_events) with ordinality as e;
    end if;

    -- A retry (ids the caller chose, seen before) gets the first answer and writes nothing.
    if v_supplied > 0 then
        v_answers := private.appended_answers(p_function, p_aggregate_type, p_aggregate_id,
            v_ids, v_digests);
        if v_answers is not null then
            return v_answers;
        end if;
    end if;

    -- Appends to one aggregate take turns here, to the commit; other aggregates' never wait.
    -- An advisory lock rather than the stream's row: taking it gives the transaction no id, so
    -- one that starts writing here gets an id above every earlier writer's of the aggregate,
    -- and its positions (from that id) follow theirs, as its versions do.
    perform pg_catalog.pg_advisory_xact_lock(
        pg_catalog.hashtextextended('event_stream:' || p_aggregate_type || ':' || p_aggregate_id, 0)
    );

    -- This transaction's next positions, after its own earlier events: the rank it has used is
    -- kept in a setting local to the transaction (a rolled-back savepoint takes its ranks back
    -- with its events). Never below the transaction's own base, whatever the setting says.
    v_base := private.event_position(pg_catalog.pg_current_xact_id(), 0);
    v_first_position := v_base + greatest(
        coalesce(
            nullif(pg_catalog.current_setting('easymo.event_store_next_rank', true), '')::bigint,
            0
        ),
        0
    );
    if v_first_position + v_count > v_base + 1048576 then
        raise exception '%: at most 1048576 events per transaction', p_function
        using errcode = 'PT413';
    end if;

    -- The ids the caller chose, first: a concurrent append of the same id makes this wait for
    -- its end and then conflict, before any version is taken. Generated ids are random uuids
    -- (version 4), not kept here: nobody can retry with one they were never told.
    if v_supplied > 0 then
        insert into private.event_ids (
            event_id, aggregate_type, aggregate_id, global_position, digest, created_at
        )
        select a.event_id, p_aggregate_type, p_aggregate_id, v_first_position + a.rank - 1,
            a.digest, pg_catalog.now()
        from rows from (pg_catalog.unnest(v_ids), pg_catalog.unnest(v_digests)) with ordinality
            as a (event_id, digest, rank)
        where a.digest is not null
        on conflict (event_id) do nothing;
        get diagnostics v_claimed = row_count;
        if v_claimed < v_supplied then
            v_answers := private.appended_answers(p_function, p_aggregate_type, p_aggregate_id,
                v_ids, v_digests);
            if v_claimed = 0 and v_answers is not null then
                return v_answers;
            end if;
            -- Some ids were appended (by a transaction that ended while this one waited), and
            -- some not: appended_answers named the first that differs.
            raise exception '%: some of these event ids are already appended, others not',
                p_function
            using errcode = 'PT409';
        end if;
    end if;

    -- The versions, in one statement where the append is allowed: at the end (expected version
    -- null), as a new aggregate (0) or after version n. created_at is the transaction's start, so
    -- a later append may be older than the first one: the bounds widen both ways. Under
    -- repeatable read, a stream changed since the snapshot fails (40001) rather than take a
    -- version twice. A transaction that wrote before it got here may hold an id below the last
    -- writer's of the aggregate: its positions would put its events before earlier versions, so
    -- it is not let through (and starts again below, with a new id).
    if p_expected_version is null then
        insert into private.event_streams as s (
            aggregate_type, aggregate_id, version, last_position, first_event_at, last_event_at
        )
        values (
            p_aggregate_type, p_aggregate_id, v_count, v_first_position + v_count - 1,
            pg_catalog.now(), pg_catalog.now()
        )
        on conflict (aggregate_type, aggregate_id) do update
            set
                version = s.version + v_count,
                last_position = excluded.last_position,
                first_event_at = least(s.first_event_at, excluded.first_event_at),
                last_event_at = greatest(s.last_event_at, excluded.last_event_at)
            where s.last_position < v_first_position
        returning s.version into v_last_version;
    elsif p_expected_version = 0 then
        insert into private.event_streams as s (
            aggregate_type, aggregate_id, version, last_position, first_event_at, last_event_at
        )
        values (
            p_aggregate_type, p_aggregate_id, v_count, v_first_position + v_count - 1,
            pg_catalog.now(), pg_catalog.now()
        )
        on conflict (aggregate_type, aggregate_id) do nothing
        returning s.version into v_last_version;
    else
        update private.event_streams as s
        set
            version = s.version + v_count,
            last_position = v_first_position + v_count - 1,
            first_event_at = least(s.first_event_at, pg_catalog.now()),
            last_event_at = greatest(s.last_event_at, pg_catalog.now())
        where
            s.aggregate_type = p_aggregate_type and s.aggregate_id = p_aggregate_id
            and s.version = p_expected_version and s.last_position < v_first_position
        returning s.version into v_last_version;
    end if;
    if v_last_version is null then
        select s.* into v_stream
        from private.event_streams as s
        where s.aggregate_type = p_aggregate_type and s.aggregate_id = p_aggregate_id;
        if coalesce(v_stream.version, 0) <> coalesce(p_expected_version, v_stream.version) then
            raise exception '%: % % is at version %, not %', p_function, p_aggregate_type,
                p_aggregate_id, coalesce(v_stream.version, 0), p_expected_version
            using errcode = 'PT409',
                detail = pg_catalog.jsonb_build_object(
                    'current_version', coalesce(v_stream.version, 0),
                    'expected_version', p_expected_version
                )::text;
        end if;
        raise exception '%: this transaction wrote before % % was appended to by a later one; '
            'retry it', p_function, p_aggregate_type, p_aggregate_id
        using errcode = '40001';
    end if;
    v_actor := private.request_actor();

    -- One event by values (a set's function scan, CTE and aggregate cost it an eighth of its
    -- rate), a batch by a query.
    if v_count = 1 then
        insert into public.event_store (
            event_id, aggregate_type, aggregate_id, event_type, version, global_position,
            payload, metadata, correlation_id, causation_id, actor, created_at
        )
        values (
            v_ids[1],
            p_aggregate_type,
            p_aggregate_id,
            p_events -> 0 ->> 'event_type',
            v_last_version,
            v_first_position,
            p_events -> 0 -> 'payload',
            case
                when pg_catalog.jsonb_typeof(p_events -> 0 -> 'metadata') = 'object'
                    then p_events -> 0 -> 'metadata'
                else '{}'
            end,
            p_correlation_id,
            p_events -> 0 ->> 'causation_id',
            v_actor.actor_type || ':' || coalesce(v_actor.actor_identifier, ''),
            pg_catalog.now()
        );
        v_answers := pg_catalog.jsonb_build_array(
            pg_catalog.jsonb_build_object(
                'event_id', v_ids[1],
                'aggregate_type', p_aggregate_type,
                'aggregate_id', p_aggregate_id,
                'version', v_last_version,
                'global_position', v_first_position
            )
        );
    else
        with appended as (
            insert into public.event_store (
                event_id, aggregate_type, aggregate_id, event_type, version, global_position,
                payload, metadata, correlation_id, causation_id, actor, created_at
            )
            select
                v_ids[e.ordinality],
                p_aggregate_type,
                p_aggregate_id,
                e.value ->> 'event_type',
                v_last_version - v_count + e.ordinality,
                v_first_position + e.ordinality - 1,
                e.value -> 'payload',
                case
                    when pg_catalog.jsonb_typeof(e.value -> 'metadata') = 'object'
                        then e.value -> 'metadata'
                    else '{}'
                end,
                p_correlation_id,
                e.value ->> 'causation_id',
                v_actor.actor_type || ':' || coalesce(v_actor.actor_identifier, ''),
                pg_catalog.now()
            from pg_catalog.jsonb_array_elements(p_events) with ordinality as e
            returning event_id, version, global_position
        )

        select pg_catalog.jsonb_agg(
            pg_catalog.jsonb_build_object(
                'event_id', a.event_id,
                'aggregate_type', p_aggregate_type,
                'aggregate_id', p_aggregate_id,
                'version', a.version,
                'global_position', a.global_position
            )
            order by a.version
        )
        into v_answers
        from appended as a;
    end if;
    v_rank := pg_catalog.set_config(
        'easymo.event_store_next_rank', (v_first_position - v_base + v_count)::text, true
    );
    return v_answers;
end;
$$;
comment on function private.append_to_stream(text, text, text, bigint, text, jsonb) is
'Appends events p_events ([{event_type, payload, metadata?, event_id?, causation_id?}], checked) '
'to one aggregate at consecutive versions, when its version is p_expected_version (null: any); '
'PT409 with {current_version, expected_version} in the details when not. Ids the caller chose '
'and appended before with the same content return their first answers and write nothing; with '
'other content PT409.';

create or replace function private.appended_answers(
    p_function text,
    p_aggregate_type text,
    p_aggregate_id text,
    p_event_ids uuid[],
    p_digests uuid[]
)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
-- The answers a retry gets: null when none of the ids was appended; PT409 naming the first id
-- that differs when only some were (a batch is retried whole, so each of its events needs an
-- id of the caller's), or with another aggregate or content.
declare
    v_clash uuid;
    v_found integer;
    v_answers jsonb;
begin
    select
        pg_catalog.count(d.event_id),
        (pg_catalog.array_agg(a.event_id order by a.rank) filter (
            where d.event_id is null or d.aggregate_type <> p_aggregate_type
                or d.aggregate_id <> p_aggregate_id or d.digest <> a.digest
        ))[1],
        pg_catalog.jsonb_agg(
            pg_catalog.jsonb_build_object(
                'event_id', d.event_id,
                'aggregate_type', d.aggregate_type,
                'aggregate_id', d.aggregate_id,
                'version', e.version,
                'global_position', d.global_position
            )
            order by a.rank
        )
    into v_found, v_clash, v_answers
    from rows from (pg_catalog.unnest(p_event_ids), pg_catalog.unnest(p_digests)) with ordinality
        as a (event_id, digest, rank)
    left join private.event_ids as d on a.event_id = d.event_id
    left join public.event_store as e
        on d.global_position = e.global_position and d.created_at = e.created_at;
    if v_found = 0 then
        return null;
    end if;
    if v_clash is not null then
        raise exception '%: event id % is not what was appended under it before (another '
            'aggregate or content, or a batch retried with other events or without its ids)',
            p_function, v_clash
        using errcode = 'PT409';
    end if;
    return v_answers;
end;
$$;
comment on function private.appended_answers(text, text, text, uuid[], uuid[]) is
'The first answers to events p_event_ids already appended to the aggregate with digests '
'p_digests; null when none was appended; PT409 naming the first id that differs when some were '
'not, or were appended with another aggregate or content.';

create or replace function public.append_event(
    p_aggregate_id text,
    p_aggregate_type text,
    p_event_type text,
    p_payload jsonb,
    p_correlation_id text default null,
    p_metadata jsonb default null,
    p_expected_version bigint default null,
    p_event_id uuid default null,
    p_causation_id text default null
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_event jsonb := pg_catalog.jsonb_build_object(
        'event_type', p_event_type,
        'payload', p_payload,
        'metadata', p_metadata,
        'event_id', p_event_id,
        'causation_id', p_causation_id
    );
begin
    -- The checks below in one expression where they pass (this is the hot write); the helpers
    -- word the refusal when one does not.
    if p_aggregate_type is null or pg_catalog.char_length(p_aggregate_type) not between 1 and 200
        or p_aggregate_id is null or pg_catalog.char_length(p_aggregate_id) not between 1 and 200
        or p_event_type is null or pg_catalog.char_length(p_event_type) not between 1 and 200
        or pg_catalog.jsonb_typeof(p_payload) is distinct from 'object'
        or pg_catalog.octet_length(p_payload::text) > 65536
        or pg_catalog.jsonb_typeof(p_metadata) <> 'object'
        or pg_catalog.octet_length(p_metadata::text) > 8192
        or pg_catalog.char_length(p_correlation_id) not between 1 and 200
        or pg_catalog.char_length(p_causation_id) not between 1 and 200
        or p_expected_version < 0 then
        perform private.require_event_names('append_event', p_aggregate_type, p_aggregate_id);
        perform private.require_new_event('append_event', 'p_', v_event);
        perform private.require_identifier(p_correlation_id, 'append_event', 'p_correlation_id');
        perform private.require_at_least(
            coalesce(p_expected_version, 0), 0, 'append_event', 'p_expected_version'
        );
    end if;
    return private.append_to_stream(
        'append_event', p_aggregate_type, p_aggregate_id, p_expected_version, p_correlation_id,
        pg_catalog.jsonb_build_array(v_event)
    ) -> 0;
end;
$$;
comment on function public.append_event(text, text, text, jsonb, text, jsonb, bigint, uuid, text) is
'Appends an event of p_event_type with p_payload (an object, at most 64 KiB) to aggregate '
'p_aggregate_type/p_aggregate_id; returns {event_id, aggregate_type, aggregate_id, version, '
'global_position}. p_expected_version: null appends at the end, 0 only to a new aggregate, n '
'only when the aggregate is at version n (else PT409, details {current_version, '
'expected_version}). p_event_id is the idempotency key: the same id again returns the first '
'answer and writes nothing; with other content PT409. Bad arguments 22023. service_role only.';
revoke all on function public.append_event(
    text, text, text, jsonb, text, jsonb, bigint, uuid, text
) from public, anon, authenticated;
grant execute on function public.append_event(
    text, text, text, jsonb, text, jsonb, bigint, uuid, text
) to service_role;

create or replace function public.append_events(
    p_aggregate_id text,
    p_aggregate_type text,
    p_events jsonb,
    p_expected_version bigint default null,
    p_correlation_id text default null
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_answers jsonb;
begin
    perform private.require_event_names('append_events', p_aggregate_type, p_aggregate_id);
    if pg_catalog.jsonb_typeof(p_events) is distinct from 'array'
        or pg_catalog.jsonb_array_length(p_events) not between 1 and 1000 then
        raise exception 'append_events: p_events must be an array of 1 to 1000 events'
        using errcode = '22023';
    end if;
    perform private.require_json_size(p_events, 1048576, 'append_events', 'p_events');
    perform private.require_new_event('append_events', 'p_events[' || (e.ordinality - 1) || '].',
        e.value)
    from pg_catalog.jsonb_array_elements(p_events) with ordinality as e;
    if exists (
        select from pg_catalog.jsonb_array_elements(p_events) as e
        where e.value ->> 'event_id' is not null
        group by (e.value ->> 'event_id')::uuid
        having pg_catalog.count(*) > 1
    ) then
        raise exception 'append_events: p_events names an event_id twice'
        using errcode = '22023';
    end if;
    perform private.require_identifier(p_correlation_id, 'append_events', 'p_correlation_id');
    if p_expected_version < 0 then
        perform private.require_at_least(p_expected_version, 0, 'append_events',
            'p_expected_version');
    end if;
    v_answers := private.append_to_stream(
        'append_events', p_aggregate_type, p_aggregate_id, p_expected_version, p_correlation_id,
        p_events
    );
    return pg_catalog.jsonb_build_object(
        'aggregate_type', p_aggregate_type,
        'aggregate_id', p_aggregate_id,
        'first_version', v_answers -> 0 -> 'version',
        'last_version', v_answers -> -1 -> 'version',
        'events', v_answers
    );
end;
$$;
comment on function public.append_events(text, text, jsonb, bigint, text) is
'Appends p_events, an array of 1 to 1000 {event_type, payload, metadata?, event_id?, '
'causation_id?} (at most 1 MiB), to one aggregate atomically at consecutive versions, with '
'append_event''s expected version and idempotency; returns {aggregate_type, aggregate_id, '
'first_version, last_version, events: [append_event''s answer per event]}. service_role only.';
revoke all on function public.append_events(text, text, jsonb, bigint, text)
from public, anon, authenticated;
grant execute on function public.append_events(text, text, jsonb, bigint, text) to service_role;

-- Reading one aggregate ---------------------------------------------------------------------------

create or replace function public.get_aggregate_events(
    p_aggregate_type text,
    p_aggregate_id text,
    p_limit integer default 1000,
    p_from_version bigint default 1
)
returns setof public.event_store
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
    v_stream private.event_streams;
begin
    perform private.require_event_names('get_aggregate_events', p_aggregate_type, p_aggregate_id);
    perform private.require_between(p_limit, 1, 10000, 'get_aggregate_events', 'p_limit');
    perform private.require_at_least(p_from_version, 1, 'get_aggregate_events',
        'p_from_version');
    select s.* into v_stream
    from private.event_streams as s
    where s.aggregate_type = p_aggregate_type and s.aggregate_id = p_aggregate_id;
    if not found then
        return;
    end if;
    -- The months the aggregate has events in: the other partitions are pruned, not visited.
    return query
    select e.*
    from public.event_store as e
    where e.aggregate_type = p_aggregate_type and e.aggregate_id = p_aggregate_id
        and e.version >= p_from_version
        and e.created_at between v_stream.first_event_at and v_stream.last_event_at
    order by e.version
    limit p_limit;
end;
$$;
comment on function public.get_aggregate_events(text, text, integer, bigint) is
'The events of aggregate p_aggregate_type/p_aggregate_id from version p_from_version (default 1) '
'in version order, at most p_limit (1 to 10000, default 1000); none for an aggregate without '
'events. Bad arguments 22023. service_role only.';
revoke all on function public.get_aggregate_events(text, text, integer, bigint)
from public, anon, authenticated;
grant execute on function public.get_aggregate_events(text, text, integer, bigint)
to service_role;

create or replace function public.save_snapshot(
    p_aggregate_type text,
    p_aggregate_id text,
    p_version bigint,
    p_state jsonb
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_current bigint;
    v_saved boolean;
begin
    perform private.require_event_names('save_snapshot', p_aggregate_type, p_aggregate_id);
    perform private.require_json_object(p_state, 'save_snapshot', 'p_state');
    perform private.require_json_size(p_state, 1048576, 'save_snapshot', 'p_state');
    select s.version into v_current
    from private.event_streams as s
    where s.aggregate_type = p_aggregate_type and s.aggregate_id = p_aggregate_id;
    if coalesce(v_current, 0) = 0 then
        raise exception 'save_snapshot: no aggregate % %', p_aggregate_type, p_aggregate_id
        using errcode = 'PT404';
    end if;
    perform private.require_between(p_version, 1, v_current, 'save_snapshot', 'p_version');
    -- An older snapshot than the one kept changes nothing: snapshotters may race.
    insert into public.event_snapshots as s (aggregate_type, aggregate_id, version, state)
    values (p_aggregate_type, p_aggregate_id, p_version, p_state)
    on conflict (aggregate_type, aggregate_id) do update
        set version = excluded.version, state = excluded.state, created_at = pg_catalog.now()
        where s.version < excluded.version;
    get diagnostics v_saved = row_count;
    return pg_catalog.jsonb_build_object(
        'aggregate_type', p_aggregate_type,
        'aggregate_id', p_aggregate_id,
        'version', p_version,
        'saved', v_saved
    );
end;
$$;
comment on function public.save_snapshot(text, text, bigint, jsonb) is
'Keeps p_state (an object, at most 1 MiB) as the state of aggregate p_aggregate_type/'
'p_aggregate_id at p_version (1 to its current version, else 22023) unless a later snapshot is '
'kept; returns {aggregate_type, aggregate_id, version, saved}. Unknown aggregate PT404. '
'service_role only.';
revoke all on function public.save_snapshot(text, text, bigint, jsonb)
from public, anon, authenticated;
grant execute on function public.save_snapshot(text, text, bigint, jsonb) to service_role;

create or replace function public.load_aggregate(
    p_aggregate_type text,
    p_aggregate_id text,
    p_limit integer default 1000
)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
-- What a command handler needs in one call: the latest snapshot and the events after it.
declare
    v_snapshot public.event_snapshots;
    v_version bigint;
begin
    perform private.require_event_names('load_aggregate', p_aggregate_type, p_aggregate_id);
    perform private.require_between(p_limit, 1, 10000, 'load_aggregate', 'p_limit');
    select s.version into v_version
    from private.event_streams as s
    where s.aggregate_type = p_aggregate_type and s.aggregate_id = p_aggregate_id;
    select s.* into v_snapshot
    from public.event_snapshots as s
    where s.aggregate_type = p_aggregate_type and s.aggregate_id = p_aggregate_id;
    return pg_catalog.jsonb_build_object(
        'aggregate_type', p_aggregate_type,
        'aggregate_id', p_aggregate_id,
        'version', coalesce(v_version, 0),
        'snapshot', case when v_snapshot.version is not null then
            pg_catalog.jsonb_build_object(
                'version', v_snapshot.version,
                'state', v_snapshot.state,
                'created_at', v_snapshot.created_at
            )
        end,
        'events', coalesce((
            select pg_catalog.jsonb_agg(pg_catalog.to_jsonb(e) order by e.version)
            from public.get_aggregate_events(
                p_aggregate_type, p_aggregate_id, p_limit, coalesce(v_snapshot.version, 0) + 1
            ) as e
        ), '[]')
    );
end;
$$;
comment on function public.load_aggregate(text, text, integer) is
'Aggregate p_aggregate_type/p_aggregate_id as a command handler loads it: {aggregate_type, '
'aggregate_id, version (0 when it has no events), snapshot: {version, state, created_at} or '
'null, events: up to p_limit events after the snapshot}. service_role only.';
revoke all on function public.load_aggregate(text, text, integer)
from public, anon, authenticated;
grant execute on function public.load_aggregate(text, text, integer) to service_role;

-- Reading everything in order ---------------------------------------------------------------------

create or replace function private.events_after(
    p_after_position bigint,
    p_limit integer,
    p_aggregate_types text[],
    p_consumer_index integer,
    p_consumer_count integer
)
returns setof public.event_store
language plpgsql
stable
set search_path = ''
-- Its plan does not depend on the arguments (a merge of every month's primary key from
-- p_after_position), and planning it costs more than running it: a plan made once per session.
set plan_cache_mode = 'force_generic_plan'
as $$
-- The one reader of the global order, for read_all_events and subscriptions: settled positions
-- only, so a later commit never lands behind what a reader has seen.
declare
    v_settled bigint := private.settled_position();
begin
    return query
    select e.*
    from public.event_store as e
    where
        e.global_position > p_after_position
        and e.global_position < v_settled
        and (p_aggregate_types is null or e.aggregate_type = any(p_aggregate_types))
        and (
            p_consumer_count = 1
            or private.event_consumer(e.aggregate_type, e.aggregate_id, p_consumer_count)
            = p_consumer_index
        )
    order by e.global_position
    limit p_limit;
end;
$$;
comment on function private.events_after(bigint, integer, text[], integer, integer) is
'Up to p_limit settled events after p_after_position in global_position order, of '
'p_aggregate_types (null: all) and of consumer p_consumer_index of p_consumer_count.';

create or replace function public.read_all_events(
    p_after_position bigint default 0,
    p_limit integer default 1000,
    p_aggregate_types text[] default null
)
returns setof public.event_store
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
    perform private.require_at_least(p_after_position, 0, 'read_all_events',
        'p_after_position');
    perform private.require_between(p_limit, 1, 10000, 'read_all_events', 'p_limit');
    if pg_catalog.cardinality(p_aggregate_types) > 100 or exists (
        select from pg_catalog.unnest(p_aggregate_types) as t (name)
        where t.name is null or pg_catalog.char_length(t.name) not between 1 and 200
    ) then
        raise exception 'read_all_events: p_aggregate_types must be null or up to 100 names of 1 '
            'to 200 characters'
        using errcode = '22023';
    end if;
    return query
    select * from private.events_after(p_after_position, p_limit, p_aggregate_types, 0, 1);
end;
$$;
comment on function public.read_all_events(bigint, integer, text[]) is
'Events after global_position p_after_position (default 0) in position order, at most p_limit '
'(1 to 10000, default 1000), of aggregate types p_aggregate_types (null: all). Only events whose '
'position can no longer be preceded by a later commit: a reader that asks again after the last '
'position it got receives every event exactly once. service_role only.';
revoke all on function public.read_all_events(bigint, integer, text[])
from public, anon, authenticated;
grant execute on function public.read_all_events(bigint, integer, text[]) to service_role;

create or replace function public.read_subscription(
    p_name text,
    p_limit integer default 100,
    p_consumer_index integer default 0,
    p_consumer_count integer default 1
)
returns setof public.event_store
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_subscription public.event_subscriptions;
begin
    perform private.require_length(p_name, 1, 200, 'read_subscription', 'p_name');
    perform private.require_between(p_limit, 1, 10000, 'read_subscription', 'p_limit');
    perform private.require_between(p_consumer_count, 1, 1000, 'read_subscription',
        'p_consumer_count');
    perform private.require_between(p_consumer_index, 0, p_consumer_count - 1,
        'read_subscription', 'p_consumer_index');
    select s.* into v_subscription
    from public.event_subscriptions as s
    where s.name = p_name and s.consumer_index = p_consumer_index;
    if not found then
        -- A consumer joins (made at the beginning of the store) under the name's lock, so two
        -- joining at once cannot split by different counts.
        perform pg_catalog.pg_advisory_xact_lock(
            pg_catalog.hashtextextended('event_subscription:' || p_name, 0)
        );
        insert into public.event_subscriptions (name, consumer_index, consumer_count)
        select p_name, p_consumer_index, p_consumer_count
        where not exists (
            select from public.event_subscriptions as s
            where s.name = p_name and s.consumer_count <> p_consumer_count
        )
        on conflict (name, consumer_index) do nothing;
        select s.* into v_subscription
        from public.event_subscriptions as s
        where s.name = p_name and s.consumer_index = p_consumer_index;
    end if;
    -- Every consumer of a group splits by the same count, or an aggregate would reach two.
    if v_subscription.consumer_count is distinct from p_consumer_count then
        raise exception 'read_subscription: % is a group of %, not %', p_name,
            coalesce(v_subscription.consumer_count, (
                select s.consumer_count from public.event_subscriptions as s
                where s.name = p_name limit 1
            )),
            p_consumer_count
        using errcode = 'PT409';
    end if;
    return query
    select * from private.events_after(
        v_subscription.position, p_limit, null, p_consumer_index, p_consumer_count
    );
end;
$$;
comment on function public.read_subscription(text, integer, integer, integer) is
'The next events (at most p_limit, 1 to 10000, default 100) for subscription p_name after the '
'position it acknowledged, made on first read. In a consumer group of p_consumer_count, consumer '
'p_consumer_index gets the events of its aggregates only (private.event_consumer), so one '
'aggregate''s events stay in one consumer, in order; another group size for an existing '
'consumer is PT409. Read again until ack_subscription moves the position. service_role only.';
revoke all on function public.read_subscription(text, integer, integer, integer)
from public, anon, authenticated;
grant execute on function public.read_subscription(text, integer, integer, integer)
to service_role;

create or replace function public.ack_subscription(
    p_name text,
    p_position bigint,
    p_consumer_index integer default 0
)
returns bigint
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_position bigint;
begin
    perform private.require_length(p_name, 1, 200, 'ack_subscription', 'p_name');
    perform private.require_between(p_consumer_index, 0, 999, 'ack_subscription',
        'p_consumer_index');
    -- A position not yet settled was never read: acknowledging it would skip what lands there.
    perform private.require_between(p_position, 0, private.settled_position() - 1,
        'ack_subscription', 'p_position');
    update public.event_subscriptions as s
    set position = greatest(s.position, p_position), updated_at = pg_catalog.now()
    where s.name = p_name and s.consumer_index = p_consumer_index
    returning s.position into v_position;
    if not found then
        raise exception 'ack_subscription: no subscription % consumer %', p_name, p_consumer_index
        using errcode = 'PT404';
    end if;
    return v_position;
end;
$$;
comment on function public.ack_subscription(text, bigint, integer) is
'Moves subscription p_name (consumer p_consumer_index) forward to p_position, the last event it '
'has handled; an older position changes nothing. Returns the position kept. A position not yet '
'read is 22023, an unknown subscription PT404. service_role only.';
revoke all on function public.ack_subscription(text, bigint, integer)
from public, anon, authenticated;
grant execute on function public.ack_subscription(text, bigint, integer) to service_role;

-- Monitoring --------------------------------------------------------------------------------------

create or replace view monitoring.event_store_stats as
select
    e.aggregate_type,
    e.event_type,
    pg_catalog.count(*) as events,
    pg_catalog.count(distinct e.aggregate_id) as aggregates,
    pg_catalog.count(*) filter (
        where e.created_at > pg_catalog.now() - interval '24 hours'
    ) as events_last_24h,
    pg_catalog.max(e.created_at) as newest_at
from public.event_store as e
group by e.aggregate_type, e.event_type;
comment on view monitoring.event_store_stats is
'Per aggregate type and event type: events, aggregates, events in the last 24 hours and the '
'newest. Counts only, never payloads.';
grant select on monitoring.event_store_stats to analyst;

create or replace view monitoring.event_subscription_lag as
select
    s.name,
    s.consumer_index,
    s.consumer_count,
    s.position,
    l.events as lag_events,
    -- From epochs: a time written as infinity by hand must not break the view.
    coalesce(
        extract(epoch from pg_catalog.now())::double precision
        - extract(epoch from l.oldest_unread_at)::double precision,
        0
    ) as lag_seconds,
    s.updated_at
from public.event_subscriptions as s
cross join lateral (
    select
        pg_catalog.count(*) as events,
        pg_catalog.min(e.created_at) as oldest_unread_at
    from public.event_store as e
    where
        e.global_position > s.position
        and e.global_position < private.settled_position()
        and (
            s.consumer_count = 1
            or private.event_consumer(e.aggregate_type, e.aggregate_id, s.consumer_count)
            = s.consumer_index
        )
) as l;
comment on view monitoring.event_subscription_lag is
'Per subscription consumer: the position it acknowledged, how many settled events it has not '
'acknowledged and how old the oldest of them is (seconds).';
grant select on monitoring.event_subscription_lag to analyst;
