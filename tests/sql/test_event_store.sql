-- The event store (migration 20261207140000_event_store.sql, functions in
-- supabase/functions-sql/*_event_store.sql, private.oldest_running_transaction in *_outbox.sql):
-- appends with optimistic concurrency and idempotent event ids, reads of one aggregate (pruned to
-- the months it has events in) and from a snapshot, the global order with subscriptions and
-- consumer groups, the analysts' views, and who may call and read what. Runs as postgres on a
-- fresh clone in one transaction: now() is constant, and this transaction's own appends sit at or
-- above private.settled_position() for as long as it runs, so no ordered reader returns them here.
-- The events the ordered readers are tested on are inserted as the owner with the positions of
-- old transactions (ids 3 to 7), below every snapshot's xmin, as test_outbox.sql does for relays.
--
-- Consumer groups split on md5; the consumers below were computed with Python's hashlib,
-- int(md5(b'<type>:<id>').hexdigest()[:15], 16) % n: of 2, ledger:l-1 1, ledger:l-2 1,
-- ledger:l-3 0, wallet:w-1 1, wallet:w-2 0, wallet:w-3 0; of 3, ledger:l-1 1, wallet:w-1 2,
-- trip:trip-123 0.
begin;
select plan(289);

-- Partition names and month bounds are UTC; so are the expectations computed here.
set local timezone = 'UTC';

-- What calls answered, by a note, for later assertions (API roles write here too).
create temp table answers (note text primary key, answer jsonb);
grant select, insert on pg_temp.answers to anon, authenticated, service_role, analyst;
create function pg_temp.answer(p_note text)
returns jsonb
language sql
as $$ select a.answer from pg_temp.answers as a where a.note = p_note $$;

-- Everything the store's tables hold, as one value: a refused call must leave it as it was.
create function pg_temp.store_state()
returns jsonb
language sql
as $$
    select jsonb_build_object(
        'event_store', (
            select jsonb_build_array(
                count(*), md5(coalesce(string_agg(e::text, ',' order by e::text), ''))
            )
            from public.event_store as e
        ),
        'event_streams', (
            select jsonb_build_array(
                count(*), md5(coalesce(string_agg(s::text, ',' order by s::text), ''))
            )
            from private.event_streams as s
        ),
        'event_ids', (
            select jsonb_build_array(
                count(*), md5(coalesce(string_agg(i::text, ',' order by i::text), ''))
            )
            from private.event_ids as i
        ),
        'event_snapshots', (
            select jsonb_build_array(
                count(*), md5(coalesce(string_agg(s::text, ',' order by s::text), ''))
            )
            from public.event_snapshots as s
        ),
        'event_subscriptions', (
            select jsonb_build_array(
                count(*), md5(coalesce(string_agg(s::text, ',' order by s::text), ''))
            )
            from public.event_subscriptions as s
        )
    )
$$;
create temp table states (note text primary key, state jsonb not null);
create function pg_temp.state(p_note text)
returns jsonb
language sql
as $$ select s.state from pg_temp.states as s where s.note = p_note $$;

-- What a call raised: {sqlstate, message, detail}; {"sqlstate": "accepted"} when it raised
-- nothing (its work is undone all the same).
create function pg_temp.raised(p_sql text)
returns jsonb
language plpgsql
as $$
declare
    v_state text;
    v_message text;
    v_detail text;
begin
    begin
        execute p_sql;
    exception when others then
        get stacked diagnostics
            v_state = returned_sqlstate, v_message = message_text, v_detail = pg_exception_detail;
        return jsonb_build_object(
            'sqlstate', v_state, 'message', v_message, 'detail', nullif(v_detail, '')
        );
    end;
    raise exception 'accepted' using errcode = 'ZZ001';
exception when sqlstate 'ZZ001' then
    return jsonb_build_object('sqlstate', 'accepted');
end;
$$;

-- The first position of this transaction's events: its id times 2^20.
create function pg_temp.own_base()
returns bigint
language sql
as $$ select pg_current_xact_id()::text::bigint << 20 $$;

-- The schema --------------------------------------------------------------------------------------

select is((select count(*) from public.event_store), 0::bigint, 'the store starts empty');
select results_eq(
    $$select p.partstrat::text, pg_get_partkeydef(p.partrelid)
        from pg_catalog.pg_partitioned_table as p
       where p.partrelid = 'public.event_store'::regclass$$,
    $$values ('r', 'RANGE (created_at)')$$,
    'event_store is partitioned by range of created_at'
);
select results_eq(
    $$select premake_months, retention_months from private.partitioned_tables
       where schema_name = 'public' and table_name = 'event_store'$$,
    $$values (3, null::integer)$$,
    'the partition manager makes event_store''s months 3 ahead and keeps them for good'
);
select is(
    tests.current_child('public.event_store'),
    'event_store_p' || to_char(now(), 'YYYY_MM'),
    'this month''s child of event_store exists'
);
select results_eq(
    $$select c.relname::text collate "default",
             coalesce(obj_description(c.oid, 'pg_class'), '') <> ''
        from pg_catalog.pg_class as c
       where c.oid in (
           'public.event_store'::regclass, 'private.event_streams'::regclass,
           'private.event_ids'::regclass, 'public.event_snapshots'::regclass,
           'public.event_subscriptions'::regclass, 'monitoring.event_store_stats'::regclass,
           'monitoring.event_subscription_lag'::regclass
       )
       order by c.relname::text collate "C"$$,
    $$values ('event_ids', true), ('event_snapshots', true), ('event_store', true),
             ('event_store_stats', true), ('event_streams', true), ('event_subscription_lag', true),
             ('event_subscriptions', true)$$,
    'the five tables and two views exist, each with a comment'
);

-- append_event: the seed's example, versions and the answer ---------------------------------------

insert into pg_temp.answers (note, answer) values (
    'trip.1',
    public.append_event(
        p_aggregate_id := 'trip-123',
        p_aggregate_type := 'trip',
        p_event_type := 'trip.requested',
        p_payload := '{"rider": "user-1", "pickup": "Kimihurura", "dropoff": "Nyamirambo"}'
    )
);
select is(
    array(select jsonb_object_keys(pg_temp.answer('trip.1')) order by 1),
    array['aggregate_id', 'aggregate_type', 'event_id', 'global_position', 'version'],
    'append_event answers {event_id, aggregate_type, aggregate_id, version, global_position}'
);
select results_eq(
    $$select a ->> 'aggregate_type', a ->> 'aggregate_id', (a ->> 'version')::bigint,
             (a ->> 'global_position')::bigint
        from pg_temp.answer('trip.1') as a$$,
    $$values ('trip', 'trip-123', 1::bigint, pg_temp.own_base())$$,
    'the first event of trip-123 is version 1, at this transaction''s first position (id × 2^20)'
);
select results_eq(
    $$select event_id, aggregate_type, aggregate_id, event_type, version, global_position, payload,
             metadata, correlation_id, causation_id, actor, created_at
        from public.event_store where aggregate_id = 'trip-123'$$,
    $$values (
        (pg_temp.answer('trip.1') ->> 'event_id')::uuid, 'trip', 'trip-123', 'trip.requested',
        1::bigint, pg_temp.own_base(),
        '{"rider": "user-1", "pickup": "Kimihurura", "dropoff": "Nyamirambo"}'::jsonb, '{}'::jsonb,
        null::text, null::text, 'database:postgres', now()
    )$$,
    'the event is stored as given: metadata {} by default, the actor the database role (no claims)'
);

select lives_ok(
    $$select tests.as_caller(
        'service_role', '{"role": "service_role"}',
        $q$insert into pg_temp.answers (note, answer) values ('trip.2', public.append_event(
            p_aggregate_id := 'trip-123', p_aggregate_type := 'trip',
            p_event_type := 'trip.accepted', p_payload := '{"driver": "driver-7"}',
            p_correlation_id := 'corr-42', p_metadata := '{"source": "dispatch"}',
            p_causation_id := 'cmd-accept-1'
        ))$q$
    )$$,
    'service_role appends trip-123''s second event with a correlation, metadata and a cause'
);
select lives_ok(
    $$select tests.as_caller(
        'service_role', '{"role": "service_role", "sub": "dispatch"}',
        $q$insert into pg_temp.answers (note, answer) values ('trip.3', public.append_event(
            'trip-123', 'trip', 'trip.started', '{"at": "pickup"}', null, null
        ))$q$
    )$$,
    'a service with its own sub appends the third, metadata null'
);
select results_eq(
    $$select version, global_position - pg_temp.own_base(), event_type, metadata, correlation_id,
             causation_id, actor
        from public.event_store where aggregate_id = 'trip-123' order by version$$,
    $$values (1::bigint, 0::bigint, 'trip.requested', '{}'::jsonb, null::text, null::text,
              'database:postgres'),
             (2, 1, 'trip.accepted', '{"source": "dispatch"}', 'corr-42', 'cmd-accept-1',
              'service:service_role'),
             (3, 2, 'trip.started', '{}', null, null, 'service:dispatch')$$,
    'versions 1, 2, 3 without a gap at consecutive positions; the actor from the JWT claims'
);
select results_eq(
    $$select (a.answer ->> 'event_id')::uuid, (a.answer ->> 'version')::bigint,
             (a.answer ->> 'global_position')::bigint
        from pg_temp.answers as a where a.note like 'trip._' order by a.note$$,
    $$select event_id, version, global_position from public.event_store
       where aggregate_id = 'trip-123' order by version$$,
    'each answer names the event stored, its version and position'
);
select results_eq(
    $$select version, first_event_at, last_event_at from private.event_streams
       where aggregate_type = 'trip' and aggregate_id = 'trip-123'$$,
    $$values (3::bigint, now(), now())$$,
    'the aggregate''s stream row holds version 3 and the created_at of its first and last events'
);
select is_empty(
    $$select from private.event_ids$$,
    'ids generated for the caller are not kept (nobody can retry with them)'
);

insert into pg_temp.answers (note, answer) values
('other type', public.append_event('trip-123', 'order', 'order.placed', '{}'));
select results_eq(
    $$select (a ->> 'version')::bigint, (a ->> 'global_position')::bigint - pg_temp.own_base()
        from pg_temp.answer('other type') as a$$,
    $$values (1::bigint, 3::bigint)$$,
    'an aggregate is its type and id: order trip-123 starts at version 1, at the next position'
);

-- append_event: p_expected_version ----------------------------------------------------------------

insert into pg_temp.states (note, state) values ('before conflicts', pg_temp.store_state());
select throws_ok(
    $$select public.append_event('trip-123', 'trip', 'trip.cancelled', '{}',
        p_expected_version := 0)$$,
    'PT409',
    'append_event: trip trip-123 is at version 3, not 0',
    'expected version 0 (a new aggregate) for one at version 3 is PT409'
);
select is(
    (pg_temp.raised(
        $$select public.append_event('trip-123', 'trip', 'trip.cancelled', '{}',
            p_expected_version := 0)$$
    ) ->> 'detail')::jsonb,
    '{"current_version": 3, "expected_version": 0}'::jsonb,
    'its details carry the current and the expected version as JSON'
);
select throws_ok(
    $$select public.append_event('trip-123', 'trip', 'trip.cancelled', '{}',
        p_expected_version := 2)$$,
    'PT409',
    'append_event: trip trip-123 is at version 3, not 2',
    'an expected version behind the aggregate is PT409'
);
select is(
    (pg_temp.raised(
        $$select public.append_event('trip-123', 'trip', 'trip.cancelled', '{}',
            p_expected_version := 4)$$
    ) ->> 'detail')::jsonb,
    '{"current_version": 3, "expected_version": 4}'::jsonb,
    'an expected version ahead of the aggregate is PT409 with both versions'
);
select is(
    pg_temp.raised(
        $$select public.append_event('trip-404', 'trip', 'trip.cancelled', '{}',
            p_expected_version := 5)$$
    ),
    jsonb_build_object(
        'sqlstate', 'PT409',
        'message', 'append_event: trip trip-404 is at version 0, not 5',
        'detail', '{"current_version": 0, "expected_version": 5}'
    ),
    'expecting version 5 of an aggregate without events is PT409, current version 0'
);
select is(
    pg_temp.store_state(), pg_temp.state('before conflicts'),
    'the conflicts wrote no event, stream, event id, snapshot or subscription'
);

insert into pg_temp.answers (note, answer) values
('trip.4', public.append_event('trip-123', 'trip', 'trip.finished', '{"fare": 2500}', p_expected_version := 3));
select is(
    (pg_temp.answer('trip.4') ->> 'version')::bigint, 4::bigint,
    'expected version 3 when the aggregate is at 3 appends version 4'
);
insert into pg_temp.answers (note, answer) values
('trip-200.1', public.append_event('trip-200', 'trip', 'trip.requested', '{}', p_expected_version := 0));
select results_eq(
    $$select (pg_temp.answer('trip-200.1') ->> 'version')::bigint, s.version, s.first_event_at
        from private.event_streams as s where s.aggregate_id = 'trip-200'$$,
    $$values (1::bigint, 1::bigint, now())$$,
    'expected version 0 for an aggregate without events appends version 1'
);
select is(
    (pg_temp.raised(
        $$select public.append_event('trip-200', 'trip', 'trip.requested', '{}',
            p_expected_version := 0)$$
    ) ->> 'detail')::jsonb,
    '{"current_version": 1, "expected_version": 0}'::jsonb,
    'and expected version 0 again is PT409: it exists now'
);

-- append_event: p_event_id is the idempotency key -------------------------------------------------

insert into pg_temp.answers (note, answer) values (
    'retry.first',
    public.append_event(
        'trip-300', 'trip', 'trip.requested', '{"rider": "user-2"}',
        p_event_id := 'a0000000-0000-4000-8000-000000000001'
    )
);
insert into pg_temp.states (note, state) values ('before retries', pg_temp.store_state());
insert into pg_temp.answers (note, answer) values (
    'retry.again',
    public.append_event(
        'trip-300', 'trip', 'trip.requested', '{"rider": "user-2"}',
        p_event_id := 'a0000000-0000-4000-8000-000000000001'
    )
);
insert into pg_temp.answers (note, answer) values (
    'retry.expected',
    public.append_event(
        'trip-300', 'trip', 'trip.requested', '{"rider": "user-2"}', p_expected_version := 0,
        p_event_id := 'a0000000-0000-4000-8000-000000000001'
    )
);
select results_eq(
    $$select a ->> 'event_id', (a ->> 'version')::bigint from pg_temp.answer('retry.first') as a$$,
    $$values ('a0000000-0000-4000-8000-000000000001', 1::bigint)$$,
    'an event appended with p_event_id keeps that id'
);
select is(
    pg_temp.answer('retry.again'), pg_temp.answer('retry.first'),
    'the same id and content again returns the first append''s answer'
);
select is(
    pg_temp.answer('retry.expected'), pg_temp.answer('retry.first'),
    'a retry with the expected version the first append had (0) gets that answer, not PT409'
);
select is(
    pg_temp.store_state(), pg_temp.state('before retries'),
    'the retries wrote nothing'
);
select throws_ok(
    $$select public.append_event('trip-300', 'trip', 'trip.requested', '{"rider": "user-3"}',
        p_event_id := 'a0000000-0000-4000-8000-000000000001')$$,
    'PT409',
    'append_event: event id a0000000-0000-4000-8000-000000000001 is not what was appended under '
    || 'it before (another aggregate or content, or a batch retried with other events or without '
    || 'its ids)',
    'the same id with another payload is PT409'
);
select throws_ok(
    $$select public.append_event('trip-300', 'trip', 'trip.cancelled', '{"rider": "user-2"}',
        p_event_id := 'a0000000-0000-4000-8000-000000000001')$$,
    'PT409', null, 'the same id with another event type is PT409'
);
select throws_ok(
    $$select public.append_event('trip-301', 'trip', 'trip.requested', '{"rider": "user-2"}',
        p_event_id := 'a0000000-0000-4000-8000-000000000001')$$,
    'PT409', null, 'the same id for another aggregate id is PT409'
);
select throws_ok(
    $$select public.append_event('trip-300', 'ride', 'trip.requested', '{"rider": "user-2"}',
        p_event_id := 'a0000000-0000-4000-8000-000000000001')$$,
    'PT409', null, 'the same id for another aggregate type is PT409'
);
select is(
    pg_temp.store_state(), pg_temp.state('before retries'),
    'the refused ids wrote nothing'
);

-- append_events -----------------------------------------------------------------------------------

insert into pg_temp.answers (note, answer) values (
    'order.batch',
    public.append_events(
        p_aggregate_id := 'order-1',
        p_aggregate_type := 'order',
        p_events := '[
            {"event_type": "order.placed", "payload": {"items": 2},
             "event_id": "b0000000-0000-4000-8000-000000000001"},
            {"event_type": "order.paid", "payload": {"amount": 1500}, "metadata": {"psp": "mtn"},
             "event_id": "b0000000-0000-4000-8000-000000000002", "causation_id": "order.placed"},
            {"event_type": "order.shipped", "payload": {},
             "event_id": "b0000000-0000-4000-8000-000000000003", "metadata": null}
        ]',
        p_expected_version := 0,
        p_correlation_id := 'checkout-9'
    )
);
select is(
    array(select jsonb_object_keys(pg_temp.answer('order.batch')) order by 1),
    array['aggregate_id', 'aggregate_type', 'events', 'first_version', 'last_version'],
    'append_events answers {aggregate_type, aggregate_id, first_version, last_version, events}'
);
select results_eq(
    $$select a ->> 'aggregate_type', a ->> 'aggregate_id', (a ->> 'first_version')::bigint,
             (a ->> 'last_version')::bigint, jsonb_array_length(a -> 'events')
        from pg_temp.answer('order.batch') as a$$,
    $$values ('order', 'order-1', 1::bigint, 3::bigint, 3)$$,
    'the batch took versions 1 to 3 of order-1'
);
select results_eq(
    $$select e.value ->> 'event_id', e.value ->> 'aggregate_type', e.value ->> 'aggregate_id',
             (e.value ->> 'version')::bigint, (e.value ->> 'global_position')::bigint
        from jsonb_array_elements(pg_temp.answer('order.batch') -> 'events') as e$$,
    $$select event_id::text, aggregate_type, aggregate_id, version, global_position
        from public.event_store where aggregate_id = 'order-1' order by version$$,
    'its events answer each event stored, in order, as append_event does'
);
select results_eq(
    $$select event_id, event_type, version,
             global_position - (select min(global_position) from public.event_store
                                 where aggregate_id = 'order-1'),
             payload, metadata, correlation_id, causation_id, actor
        from public.event_store where aggregate_id = 'order-1' order by version$$,
    $$values ('b0000000-0000-4000-8000-000000000001'::uuid, 'order.placed', 1::bigint, 0::bigint,
              '{"items": 2}'::jsonb, '{}'::jsonb, 'checkout-9', null::text, 'database:postgres'),
             ('b0000000-0000-4000-8000-000000000002', 'order.paid', 2, 1, '{"amount": 1500}',
              '{"psp": "mtn"}', 'checkout-9', 'order.placed', 'database:postgres'),
             ('b0000000-0000-4000-8000-000000000003', 'order.shipped', 3, 2, '{}', '{}',
              'checkout-9', null, 'database:postgres')$$,
    'each event stored with its own type, payload, metadata and cause, all with the correlation'
);
select is(
    (select min(global_position) from public.event_store where aggregate_id = 'order-1'),
    (
        select max(global_position) + 1 from public.event_store
        where aggregate_id <> 'order-1' and global_position >= pg_temp.own_base()
    ),
    'the batch follows this transaction''s earlier events in the global order'
);

insert into pg_temp.answers (note, answer) values (
    'order.more',
    public.append_events('order-1', 'order', '[
        {"event_type": "order.delivered", "payload": {}},
        {"event_type": "order.rated", "payload": {"stars": 5}}
    ]')
);
select results_eq(
    $$select (a ->> 'first_version')::bigint, (a ->> 'last_version')::bigint,
             (a -> 'events' -> 1 ->> 'global_position')::bigint
             - (a -> 'events' -> 0 ->> 'global_position')::bigint
        from pg_temp.answer('order.more') as a$$,
    $$values (4::bigint, 5::bigint, 1::bigint)$$,
    'a batch without an expected version goes at the end: versions 4 and 5'
);
select is(
    (select version from private.event_streams where aggregate_id = 'order-1'),
    5::bigint,
    'order-1''s stream is at version 5'
);

insert into pg_temp.states (note, state) values ('before batch conflicts', pg_temp.store_state());
select is(
    pg_temp.raised(
        $$select public.append_events('order-1', 'order',
            '[{"event_type": "order.refunded", "payload": {}}]', 3)$$
    ),
    jsonb_build_object(
        'sqlstate', 'PT409',
        'message', 'append_events: order order-1 is at version 5, not 3',
        'detail', '{"current_version": 5, "expected_version": 3}'
    ),
    'a batch with an expected version behind the aggregate is PT409 with both versions'
);
insert into pg_temp.answers (note, answer) values (
    'order.batch retried',
    public.append_events(
        p_aggregate_id := 'order-1',
        p_aggregate_type := 'order',
        p_events := '[
            {"event_type": "order.placed", "payload": {"items": 2},
             "event_id": "b0000000-0000-4000-8000-000000000001"},
            {"event_type": "order.paid", "payload": {"amount": 1500}, "metadata": {"psp": "mtn"},
             "event_id": "b0000000-0000-4000-8000-000000000002", "causation_id": "order.placed"},
            {"event_type": "order.shipped", "payload": {},
             "event_id": "b0000000-0000-4000-8000-000000000003", "metadata": null}
        ]',
        p_expected_version := 0,
        p_correlation_id := 'checkout-9'
    )
);
select is(
    pg_temp.answer('order.batch retried'), pg_temp.answer('order.batch'),
    'the batch retried with the same ids returns the first answer, though order-1 is at 5 now'
);
select throws_ok(
    $$select public.append_events('order-1', 'order', '[
        {"event_type": "order.placed", "payload": {"items": 2},
         "event_id": "b0000000-0000-4000-8000-000000000001"},
        {"event_type": "order.noted", "payload": {},
         "event_id": "b0000000-0000-4000-8000-000000000009"}
    ]')$$,
    'PT409',
    'append_events: event id b0000000-0000-4000-8000-000000000009 is not what was appended under '
    || 'it before (another aggregate or content, or a batch retried with other events or without '
    || 'its ids)',
    'a batch of some ids already appended and some new is PT409'
);
select throws_ok(
    $$select public.append_events('order-1', 'order', '[
        {"event_type": "order.noted", "payload": {},
         "event_id": "b0000000-0000-4000-8000-000000000009"},
        {"event_type": "order.placed", "payload": {"items": 2},
         "event_id": "b0000000-0000-4000-8000-000000000001"}
    ]')$$,
    'PT409', null, 'whichever comes first in the batch'
);
select throws_ok(
    $$select public.append_events('order-2', 'order', '[
        {"event_type": "order.placed", "payload": {"items": 2},
         "event_id": "b0000000-0000-4000-8000-000000000001"}
    ]')$$,
    'PT409', null, 'an id of order-1''s batch appended to order-2 is PT409'
);
select is(
    pg_temp.store_state(), pg_temp.state('before batch conflicts'),
    'the batch conflicts and the retry wrote nothing'
);
select throws_ok(
    $$select public.append_events('order-3', 'order', '[
        {"event_type": "a", "payload": {}, "event_id": "b0000000-0000-4000-8000-0000000000f1"},
        {"event_type": "a", "payload": {}, "event_id": "b0000000-0000-4000-8000-0000000000f1"}
    ]')$$,
    '22023', 'append_events: p_events names an event_id twice',
    'a batch naming one event id twice is 22023'
);
select is(
    pg_temp.store_state(), pg_temp.state('before batch conflicts'),
    'the batch naming an id twice wrote nothing'
);

insert into pg_temp.answers (note, answer) values (
    'bulk',
    public.append_events(
        'order-bulk', 'order',
        (
            select jsonb_agg(jsonb_build_object('event_type', 'order.line', 'payload',
                jsonb_build_object('line', g)) order by g)
            from generate_series(1, 1000) as g
        )
    )
);
select results_eq(
    $$select (a ->> 'first_version')::bigint, (a ->> 'last_version')::bigint,
             (select count(*) from public.event_store where aggregate_id = 'order-bulk'),
             (select count(distinct global_position) from public.event_store
               where aggregate_id = 'order-bulk'),
             (select bool_and(version = (payload ->> 'line')::bigint) from public.event_store
               where aggregate_id = 'order-bulk')
        from pg_temp.answer('bulk') as a$$,
    $$values (1::bigint, 1000::bigint, 1000::bigint, 1000::bigint, true)$$,
    'a batch of 1000 events is taken whole: versions 1 to 1000 in the order given'
);

-- Bad arguments: 22023 naming the argument, and nothing written -----------------------------------

-- Each call has one bad argument; the aggregates named exist where that matters (trip-123 is at
-- version 4). A good event for the batches' element 0, so that the bad one is element 1.
create temp table refused (
    n integer generated always as identity,
    description text not null,
    call text not null,
    errcode text not null,
    message text
);
insert into refused (description, call, errcode, message) values
-- append_event
('append_event: empty p_aggregate_type', $$select public.append_event('t-1', '', 'e', '{}')$$, '22023', 'append_event: p_aggregate_type must be 1 to 200 characters'),
('append_event: p_aggregate_type of 201 characters', $$select public.append_event('t-1', repeat('t', 201), 'e', '{}')$$, '22023', 'append_event: p_aggregate_type must be 1 to 200 characters'),
('append_event: null p_aggregate_type', $$select public.append_event('t-1', null, 'e', '{}')$$, '22023', 'append_event: p_aggregate_type must be 1 to 200 characters'),
('append_event: empty p_aggregate_id', $$select public.append_event('', 'trip', 'e', '{}')$$, '22023', 'append_event: p_aggregate_id must be 1 to 200 characters'),
('append_event: p_aggregate_id of 201 characters', $$select public.append_event(repeat('t', 201), 'trip', 'e', '{}')$$, '22023', 'append_event: p_aggregate_id must be 1 to 200 characters'),
('append_event: null p_aggregate_id', $$select public.append_event(null, 'trip', 'e', '{}')$$, '22023', 'append_event: p_aggregate_id must be 1 to 200 characters'),
('append_event: empty p_event_type', $$select public.append_event('t-1', 'trip', '', '{}')$$, '22023', 'append_event: p_event_type must be 1 to 200 characters'),
('append_event: p_event_type of 201 characters', $$select public.append_event('t-1', 'trip', repeat('e', 201), '{}')$$, '22023', 'append_event: p_event_type must be 1 to 200 characters'),
('append_event: null p_event_type', $$select public.append_event('t-1', 'trip', null, '{}')$$, '22023', 'append_event: p_event_type must be 1 to 200 characters'),
('append_event: p_payload an array', $$select public.append_event('t-1', 'trip', 'e', '[]')$$, '22023', 'append_event: p_payload must be a JSON object'),
('append_event: p_payload a string', $$select public.append_event('t-1', 'trip', 'e', '"x"')$$, '22023', 'append_event: p_payload must be a JSON object'),
('append_event: p_payload JSON null', $$select public.append_event('t-1', 'trip', 'e', 'null')$$, '22023', 'append_event: p_payload must be a JSON object'),
('append_event: null p_payload', $$select public.append_event('t-1', 'trip', 'e', null)$$, '22023', 'append_event: p_payload must be a JSON object'),
('append_event: p_payload over 64 KiB', $$select public.append_event('t-1', 'trip', 'e', jsonb_build_object('p', repeat('x', 65528)))$$, '22023', 'append_event: p_payload must be at most 65536 bytes of JSON (got 65537)'),
('append_event: p_metadata an array', $$select public.append_event('t-1', 'trip', 'e', '{}', null, '[]')$$, '22023', 'append_event: p_metadata must be a JSON object'),
('append_event: p_metadata over 8 KiB', $$select public.append_event('t-1', 'trip', 'e', '{}', null, jsonb_build_object('m', repeat('x', 8184)))$$, '22023', 'append_event: p_metadata must be at most 8192 bytes of JSON (got 8193)'),
('append_event: empty p_correlation_id', $$select public.append_event('t-1', 'trip', 'e', '{}', '')$$, '22023', 'append_event: p_correlation_id must be null or 1 to 200 characters'),
('append_event: p_correlation_id of 201 characters', $$select public.append_event('t-1', 'trip', 'e', '{}', repeat('c', 201))$$, '22023', 'append_event: p_correlation_id must be null or 1 to 200 characters'),
('append_event: empty p_causation_id', $$select public.append_event('t-1', 'trip', 'e', '{}', p_causation_id := '')$$, '22023', 'append_event: p_causation_id must be null or 1 to 200 characters'),
('append_event: p_causation_id of 201 characters', $$select public.append_event('t-1', 'trip', 'e', '{}', p_causation_id := repeat('c', 201))$$, '22023', 'append_event: p_causation_id must be null or 1 to 200 characters'),
('append_event: negative p_expected_version', $$select public.append_event('trip-123', 'trip', 'e', '{}', p_expected_version := -1)$$, '22023', 'append_event: p_expected_version must be at least 0 (got -1)'),
-- append_events
('append_events: empty p_aggregate_type', $$select public.append_events('o-1', '', '[{"event_type": "e", "payload": {}}]')$$, '22023', 'append_events: p_aggregate_type must be 1 to 200 characters'),
('append_events: p_aggregate_type of 201 characters', $$select public.append_events('o-1', repeat('o', 201), '[{"event_type": "e", "payload": {}}]')$$, '22023', 'append_events: p_aggregate_type must be 1 to 200 characters'),
('append_events: empty p_aggregate_id', $$select public.append_events('', 'order', '[{"event_type": "e", "payload": {}}]')$$, '22023', 'append_events: p_aggregate_id must be 1 to 200 characters'),
('append_events: p_aggregate_id of 201 characters', $$select public.append_events(repeat('o', 201), 'order', '[{"event_type": "e", "payload": {}}]')$$, '22023', 'append_events: p_aggregate_id must be 1 to 200 characters'),
('append_events: p_events empty', $$select public.append_events('o-1', 'order', '[]')$$, '22023', 'append_events: p_events must be an array of 1 to 1000 events'),
('append_events: p_events of 1001 events', $$select public.append_events('o-1', 'order', (select jsonb_agg(jsonb_build_object('event_type', 'e', 'payload', '{}'::jsonb)) from generate_series(1, 1001)))$$, '22023', 'append_events: p_events must be an array of 1 to 1000 events'),
('append_events: p_events an object', $$select public.append_events('o-1', 'order', '{"event_type": "e", "payload": {}}')$$, '22023', 'append_events: p_events must be an array of 1 to 1000 events'),
('append_events: null p_events', $$select public.append_events('o-1', 'order', null)$$, '22023', 'append_events: p_events must be an array of 1 to 1000 events'),
('append_events: p_events over 1 MiB', $$select public.append_events('o-1', 'order', (select jsonb_agg(jsonb_build_object('event_type', 'e', 'payload', jsonb_build_object('p', repeat('x', 62000)))) from generate_series(1, 17)))$$, '22023', null),
('append_events: an event that is not an object', $$select public.append_events('o-1', 'order', '[{"event_type": "e", "payload": {}}, "e"]')$$, '22023', 'append_events: p_events[1] must be a JSON object'),
('append_events: an event without event_type', $$select public.append_events('o-1', 'order', '[{"event_type": "e", "payload": {}}, {"payload": {}}]')$$, '22023', 'append_events: p_events[1].event_type must be 1 to 200 characters'),
('append_events: an empty event_type', $$select public.append_events('o-1', 'order', '[{"event_type": "e", "payload": {}}, {"event_type": "", "payload": {}}]')$$, '22023', 'append_events: p_events[1].event_type must be 1 to 200 characters'),
('append_events: an event_type that is a number', $$select public.append_events('o-1', 'order', '[{"event_type": "e", "payload": {}}, {"event_type": 7, "payload": {}}]')$$, '22023', 'append_events: p_events[1].event_type must be 1 to 200 characters'),
('append_events: an event_type of 201 characters', $$select public.append_events('o-1', 'order', jsonb_build_array('{"event_type": "e", "payload": {}}'::jsonb, jsonb_build_object('event_type', repeat('e', 201), 'payload', '{}'::jsonb)))$$, '22023', 'append_events: p_events[1].event_type must be 1 to 200 characters'),
('append_events: an event without payload', $$select public.append_events('o-1', 'order', '[{"event_type": "e", "payload": {}}, {"event_type": "e"}]')$$, '22023', 'append_events: p_events[1].payload must be a JSON object'),
('append_events: a payload that is not an object', $$select public.append_events('o-1', 'order', '[{"event_type": "e", "payload": {}}, {"event_type": "e", "payload": [1]}]')$$, '22023', 'append_events: p_events[1].payload must be a JSON object'),
('append_events: a payload over 64 KiB', $$select public.append_events('o-1', 'order', jsonb_build_array('{"event_type": "e", "payload": {}}'::jsonb, jsonb_build_object('event_type', 'e', 'payload', jsonb_build_object('p', repeat('x', 65528)))))$$, '22023', 'append_events: p_events[1].payload must be at most 65536 bytes of JSON (got 65537)'),
('append_events: metadata that is not an object', $$select public.append_events('o-1', 'order', '[{"event_type": "e", "payload": {}}, {"event_type": "e", "payload": {}, "metadata": "m"}]')$$, '22023', 'append_events: p_events[1].metadata must be a JSON object'),
('append_events: metadata over 8 KiB', $$select public.append_events('o-1', 'order', jsonb_build_array('{"event_type": "e", "payload": {}}'::jsonb, jsonb_build_object('event_type', 'e', 'payload', '{}'::jsonb, 'metadata', jsonb_build_object('m', repeat('x', 8184)))))$$, '22023', 'append_events: p_events[1].metadata must be at most 8192 bytes of JSON (got 8193)'),
('append_events: an event_id that is not a uuid', $$select public.append_events('o-1', 'order', '[{"event_type": "e", "payload": {}}, {"event_type": "e", "payload": {}, "event_id": "evt-1"}]')$$, '22023', 'append_events: p_events[1].event_id must be a uuid (got ''evt-1'')'),
('append_events: an event_id that is a number', $$select public.append_events('o-1', 'order', '[{"event_type": "e", "payload": {}}, {"event_type": "e", "payload": {}, "event_id": 12}]')$$, '22023', 'append_events: p_events[1].event_id must be a uuid (got ''12'')'),
('append_events: a causation_id of 201 characters', $$select public.append_events('o-1', 'order', jsonb_build_array('{"event_type": "e", "payload": {}}'::jsonb, jsonb_build_object('event_type', 'e', 'payload', '{}'::jsonb, 'causation_id', repeat('c', 201))))$$, '22023', 'append_events: p_events[1].causation_id must be null or 1 to 200 characters'),
('append_events: an empty causation_id', $$select public.append_events('o-1', 'order', '[{"event_type": "e", "payload": {}}, {"event_type": "e", "payload": {}, "causation_id": ""}]')$$, '22023', 'append_events: p_events[1].causation_id must be null or 1 to 200 characters'),
('append_events: p_correlation_id of 201 characters', $$select public.append_events('o-1', 'order', '[{"event_type": "e", "payload": {}}]', null, repeat('c', 201))$$, '22023', 'append_events: p_correlation_id must be null or 1 to 200 characters'),
('append_events: negative p_expected_version', $$select public.append_events('order-1', 'order', '[{"event_type": "e", "payload": {}}]', -1)$$, '22023', 'append_events: p_expected_version must be at least 0 (got -1)'),
-- get_aggregate_events
('get_aggregate_events: empty p_aggregate_type', $$select * from public.get_aggregate_events('', 'trip-123')$$, '22023', 'get_aggregate_events: p_aggregate_type must be 1 to 200 characters'),
('get_aggregate_events: p_aggregate_type of 201 characters', $$select * from public.get_aggregate_events(repeat('t', 201), 'trip-123')$$, '22023', 'get_aggregate_events: p_aggregate_type must be 1 to 200 characters'),
('get_aggregate_events: empty p_aggregate_id', $$select * from public.get_aggregate_events('trip', '')$$, '22023', 'get_aggregate_events: p_aggregate_id must be 1 to 200 characters'),
('get_aggregate_events: p_aggregate_id of 201 characters', $$select * from public.get_aggregate_events('trip', repeat('t', 201))$$, '22023', 'get_aggregate_events: p_aggregate_id must be 1 to 200 characters'),
('get_aggregate_events: null p_aggregate_id', $$select * from public.get_aggregate_events('trip', null)$$, '22023', 'get_aggregate_events: p_aggregate_id must be 1 to 200 characters'),
('get_aggregate_events: p_limit 0', $$select * from public.get_aggregate_events('trip', 'trip-123', 0)$$, '22023', 'get_aggregate_events: p_limit must be 1 to 10000 (got 0)'),
('get_aggregate_events: p_limit 10001', $$select * from public.get_aggregate_events('trip', 'trip-123', 10001)$$, '22023', 'get_aggregate_events: p_limit must be 1 to 10000 (got 10001)'),
('get_aggregate_events: null p_limit', $$select * from public.get_aggregate_events('trip', 'trip-123', null)$$, '22023', 'get_aggregate_events: p_limit must be 1 to 10000 (got null)'),
('get_aggregate_events: p_from_version 0', $$select * from public.get_aggregate_events('trip', 'trip-123', 10, 0)$$, '22023', 'get_aggregate_events: p_from_version must be at least 1 (got 0)'),
('get_aggregate_events: null p_from_version', $$select * from public.get_aggregate_events('trip', 'trip-123', 10, null)$$, '22023', 'get_aggregate_events: p_from_version must be at least 1 (got null)'),
-- load_aggregate
('load_aggregate: empty p_aggregate_type', $$select public.load_aggregate('', 'trip-123')$$, '22023', 'load_aggregate: p_aggregate_type must be 1 to 200 characters'),
('load_aggregate: p_aggregate_id of 201 characters', $$select public.load_aggregate('trip', repeat('t', 201))$$, '22023', 'load_aggregate: p_aggregate_id must be 1 to 200 characters'),
('load_aggregate: p_limit 0', $$select public.load_aggregate('trip', 'trip-123', 0)$$, '22023', 'load_aggregate: p_limit must be 1 to 10000 (got 0)'),
('load_aggregate: p_limit 10001', $$select public.load_aggregate('trip', 'trip-123', 10001)$$, '22023', 'load_aggregate: p_limit must be 1 to 10000 (got 10001)'),
-- save_snapshot
('save_snapshot: empty p_aggregate_type', $$select public.save_snapshot('', 'trip-123', 1, '{}')$$, '22023', 'save_snapshot: p_aggregate_type must be 1 to 200 characters'),
('save_snapshot: p_aggregate_id of 201 characters', $$select public.save_snapshot('trip', repeat('t', 201), 1, '{}')$$, '22023', 'save_snapshot: p_aggregate_id must be 1 to 200 characters'),
('save_snapshot: p_state an array', $$select public.save_snapshot('trip', 'trip-123', 1, '[]')$$, '22023', 'save_snapshot: p_state must be a JSON object'),
('save_snapshot: null p_state', $$select public.save_snapshot('trip', 'trip-123', 1, null)$$, '22023', 'save_snapshot: p_state must be a JSON object'),
('save_snapshot: p_state over 1 MiB', $$select public.save_snapshot('trip', 'trip-123', 1, jsonb_build_object('s', repeat('x', 1048568)))$$, '22023', 'save_snapshot: p_state must be at most 1048576 bytes of JSON (got 1048577)'),
('save_snapshot: p_version 0', $$select public.save_snapshot('trip', 'trip-123', 0, '{}')$$, '22023', 'save_snapshot: p_version must be 1 to 4 (got 0)'),
('save_snapshot: p_version above the current version', $$select public.save_snapshot('trip', 'trip-123', 5, '{}')$$, '22023', 'save_snapshot: p_version must be 1 to 4 (got 5)'),
('save_snapshot: null p_version', $$select public.save_snapshot('trip', 'trip-123', null, '{}')$$, '22023', 'save_snapshot: p_version must be 1 to 4 (got null)'),
('save_snapshot: an aggregate without events', $$select public.save_snapshot('trip', 'trip-999', 1, '{}')$$, 'PT404', 'save_snapshot: no aggregate trip trip-999'),
-- read_all_events
('read_all_events: p_after_position -1', $$select * from public.read_all_events(-1)$$, '22023', 'read_all_events: p_after_position must be at least 0 (got -1)'),
('read_all_events: null p_after_position', $$select * from public.read_all_events(null)$$, '22023', 'read_all_events: p_after_position must be at least 0 (got null)'),
('read_all_events: p_limit 0', $$select * from public.read_all_events(0, 0)$$, '22023', 'read_all_events: p_limit must be 1 to 10000 (got 0)'),
('read_all_events: p_limit 10001', $$select * from public.read_all_events(0, 10001)$$, '22023', 'read_all_events: p_limit must be 1 to 10000 (got 10001)'),
('read_all_events: an empty aggregate type', $$select * from public.read_all_events(0, 10, array['trip', ''])$$, '22023', 'read_all_events: p_aggregate_types must be null or up to 100 names of 1 to 200 characters'),
('read_all_events: a null aggregate type', $$select * from public.read_all_events(0, 10, array['trip', null])$$, '22023', 'read_all_events: p_aggregate_types must be null or up to 100 names of 1 to 200 characters'),
('read_all_events: an aggregate type of 201 characters', $$select * from public.read_all_events(0, 10, array[repeat('t', 201)])$$, '22023', 'read_all_events: p_aggregate_types must be null or up to 100 names of 1 to 200 characters'),
('read_all_events: 101 aggregate types', $$select * from public.read_all_events(0, 10, (select array_agg('type-' || g) from generate_series(1, 101) as g))$$, '22023', 'read_all_events: p_aggregate_types must be null or up to 100 names of 1 to 200 characters'),
-- read_subscription
('read_subscription: empty p_name', $$select * from public.read_subscription('')$$, '22023', 'read_subscription: p_name must be 1 to 200 characters'),
('read_subscription: p_name of 201 characters', $$select * from public.read_subscription(repeat('s', 201))$$, '22023', 'read_subscription: p_name must be 1 to 200 characters'),
('read_subscription: null p_name', $$select * from public.read_subscription(null)$$, '22023', 'read_subscription: p_name must be 1 to 200 characters'),
('read_subscription: p_limit 0', $$select * from public.read_subscription('s', 0)$$, '22023', 'read_subscription: p_limit must be 1 to 10000 (got 0)'),
('read_subscription: p_limit 10001', $$select * from public.read_subscription('s', 10001)$$, '22023', 'read_subscription: p_limit must be 1 to 10000 (got 10001)'),
('read_subscription: p_consumer_count 0', $$select * from public.read_subscription('s', 10, 0, 0)$$, '22023', 'read_subscription: p_consumer_count must be 1 to 1000 (got 0)'),
('read_subscription: p_consumer_count 1001', $$select * from public.read_subscription('s', 10, 0, 1001)$$, '22023', 'read_subscription: p_consumer_count must be 1 to 1000 (got 1001)'),
('read_subscription: p_consumer_index -1', $$select * from public.read_subscription('s', 10, -1, 2)$$, '22023', 'read_subscription: p_consumer_index must be 0 to 1 (got -1)'),
('read_subscription: p_consumer_index equal to the count', $$select * from public.read_subscription('s', 10, 2, 2)$$, '22023', 'read_subscription: p_consumer_index must be 0 to 1 (got 2)'),
('read_subscription: p_consumer_index 1 of 1', $$select * from public.read_subscription('s', 10, 1)$$, '22023', 'read_subscription: p_consumer_index must be 0 to 0 (got 1)'),
-- ack_subscription (the subscriptions it could move are made further down)
('ack_subscription: empty p_name', $$select public.ack_subscription('', 0)$$, '22023', 'ack_subscription: p_name must be 1 to 200 characters'),
('ack_subscription: p_name of 201 characters', $$select public.ack_subscription(repeat('s', 201), 0)$$, '22023', 'ack_subscription: p_name must be 1 to 200 characters'),
('ack_subscription: p_consumer_index -1', $$select public.ack_subscription('s', 0, -1)$$, '22023', 'ack_subscription: p_consumer_index must be 0 to 999 (got -1)'),
('ack_subscription: p_consumer_index 1000', $$select public.ack_subscription('s', 0, 1000)$$, '22023', 'ack_subscription: p_consumer_index must be 0 to 999 (got 1000)'),
('ack_subscription: an unknown subscription', $$select public.ack_subscription('nobody', 0)$$, 'PT404', 'ack_subscription: no subscription nobody consumer 0');

insert into pg_temp.states (note, state) values ('before refusals', pg_temp.store_state());
select throws_ok(r.call, r.errcode, r.message, r.description || ' is ' || r.errcode)
from refused as r
order by r.n;
select matches(
    pg_temp.raised(
        $$select public.append_events('o-1', 'order', (select jsonb_agg(jsonb_build_object(
            'event_type', 'e', 'payload', jsonb_build_object('p', repeat('x', 62000))))
            from generate_series(1, 17)))$$
    ) ->> 'message',
    '^append_events: p_events must be at most 1048576 bytes of JSON \(got 10[0-9]{5}\)$',
    'append_events: p_events over 1 MiB names p_events and its size'
);
select is(
    pg_temp.raised('select public.ack_subscription(''s'', -1)'),
    jsonb_build_object(
        'sqlstate', '22023',
        'message', format('ack_subscription: p_position must be 0 to %s (got -1)',
            private.settled_position() - 1),
        'detail', null
    ),
    'ack_subscription: a negative p_position is 22023'
);
select is(
    pg_temp.store_state(), pg_temp.state('before refusals'),
    'the refused calls wrote no event, stream, event id, snapshot or subscription'
);
select results_eq(
    $$select
        (
            select version from private.event_streams
            where aggregate_type = 'trip' and aggregate_id = 'trip-123'
        ),
        (select count(*) from public.event_store where aggregate_id in ('t-1', 'o-1')),
        (select count(*) from public.event_subscriptions)$$,
    $$values (4::bigint, 0::bigint, 0::bigint)$$,
    'trip-123 is still at version 4; no t-1, o-1 or subscription was made'
);

-- Boundaries that are accepted.
insert into pg_temp.answers (note, answer) values (
    'bounds',
    public.append_event(
        repeat('i', 200), repeat('t', 200), repeat('e', 200),
        jsonb_build_object('p', repeat('x', 65527)), repeat('c', 200),
        jsonb_build_object('m', repeat('x', 8183)), 0, null, repeat('c', 200)
    )
);
select results_eq(
    $$select (a ->> 'version')::bigint, octet_length(e.payload::text),
             octet_length(e.metadata::text)
        from pg_temp.answer('bounds') as a
       inner join public.event_store as e on e.event_id = (a ->> 'event_id')::uuid$$,
    $$values (1::bigint, 65536, 8192)$$,
    'names of 200 characters, a payload of 64 KiB and metadata of 8 KiB are accepted'
);

-- get_aggregate_events ----------------------------------------------------------------------------

select results_eq(
    $$select * from public.get_aggregate_events('trip', 'trip-123')$$,
    $$select * from public.event_store where aggregate_type = 'trip' and aggregate_id = 'trip-123'
       order by version$$,
    'get_aggregate_events(''trip'', ''trip-123'') returns its events, whole, in version order'
);
select results_eq(
    $$select version, event_type from public.get_aggregate_events('trip', 'trip-123')$$,
    $$values (1::bigint, 'trip.requested'), (2, 'trip.accepted'), (3, 'trip.started'),
             (4, 'trip.finished')$$,
    'versions 1 to 4'
);
select results_eq(
    $$select version from public.get_aggregate_events('trip', 'trip-123', p_from_version := 3)$$,
    $$values (3::bigint), (4)$$,
    'from version 3'
);
select results_eq(
    $$select version from public.get_aggregate_events('trip', 'trip-123', 2)$$,
    $$values (1::bigint), (2)$$,
    'at most p_limit events'
);
select results_eq(
    $$select version from public.get_aggregate_events('trip', 'trip-123', 1, 2)$$,
    $$values (2::bigint)$$,
    'p_limit and p_from_version together page through the aggregate'
);
select is_empty(
    $$select * from public.get_aggregate_events('trip', 'trip-123', 10, 5)$$,
    'nothing after the current version'
);
select is_empty(
    $$select * from public.get_aggregate_events('trip', 'trip-999')$$,
    'nothing for an aggregate without events'
);
select results_eq(
    $$select aggregate_type, version from public.get_aggregate_events('order', 'trip-123')$$,
    $$values ('order', 1::bigint)$$,
    'order trip-123 is read apart from trip trip-123'
);
select is(
    (select count(*) from public.get_aggregate_events('order', 'order-bulk', 10000)),
    1000::bigint,
    'p_limit 10000 reads the whole bulk order'
);
-- A transaction that began a second after this one committed version 1 of trip late: this
-- one's append is stamped earlier, and the read must still find it.
insert into private.event_streams (
    aggregate_type, aggregate_id, version, last_position, first_event_at, last_event_at
)
values (
    'trip', 'late', 1, private.event_position('2', 1), now() + interval '1 second',
    now() + interval '1 second'
);
insert into public.event_store (
    event_id, aggregate_type, aggregate_id, event_type, version, global_position, payload, actor,
    created_at
)
values (
    gen_random_uuid(), 'trip', 'late', 'trip.requested', 1, private.event_position('2', 1), '{}',
    'database:postgres', now() + interval '1 second'
);
select is(
    (public.append_event('late', 'trip', 'trip.cancelled', '{}') ->> 'version')::bigint, 2::bigint,
    'an append stamped before the aggregate''s first event is version 2'
);
select results_eq(
    $$select version from public.get_aggregate_events('trip', 'late')$$,
    $$values (1::bigint), (2)$$,
    'an event stamped before the aggregate''s first is read with the others'
);
-- Out of the way of the global order's tests below (its position is settled).
delete from public.event_store where aggregate_type = 'trip' and aggregate_id = 'late';
delete from private.event_ids where aggregate_type = 'trip' and aggregate_id = 'late';
delete from private.event_streams where aggregate_type = 'trip' and aggregate_id = 'late';

-- read_all_events: only settled positions, in order -----------------------------------------------

-- Events of transactions 3 to 6 (long ended), in the order of their positions; inserted last
-- first, so that the order read is the positions' and not the insertion's. s1 is in last month.
create temp table settled (
    name text primary key,
    aggregate_type text not null,
    aggregate_id text not null,
    event_type text not null,
    version bigint not null,
    global_position bigint not null,
    created_at timestamptz not null
);
insert into settled values
('s1', 'ledger', 'l-1', 'ledger.opened', 1, private.event_position('3', 0),
    date_trunc('month', now()) - interval '1 month' + interval '1 day'),
('s2', 'wallet', 'w-1', 'wallet.credited', 1, private.event_position('3', 1),
    now() - interval '9 minutes'),
('s3', 'ledger', 'l-2', 'ledger.opened', 1, private.event_position('4', 0),
    now() - interval '8 minutes'),
('s4', 'ledger', 'l-1', 'ledger.closed', 2, private.event_position('4', 1),
    now() - interval '7 minutes'),
('s5', 'wallet', 'w-2', 'wallet.credited', 1, private.event_position('5', 0),
    now() - interval '6 minutes'),
('s6', 'ledger', 'l-3', 'ledger.opened', 1, private.event_position('5', 1),
    now() - interval '5 minutes'),
('s7', 'wallet', 'w-3', 'wallet.credited', 1, private.event_position('6', 0),
    now() - interval '4 minutes'),
('s8', 'wallet', 'w-1', 'wallet.debited', 2, private.event_position('6', 1),
    now() - interval '3 minutes');
create function pg_temp.pos(p_name text)
returns bigint
language sql
as $$ select s.global_position from pg_temp.settled as s where s.name = p_name $$;
insert into public.event_store (
    event_id, aggregate_type, aggregate_id, event_type, version, global_position, payload, actor,
    created_at
)
select
    gen_random_uuid(), s.aggregate_type, s.aggregate_id, s.event_type, s.version,
    s.global_position, jsonb_build_object('name', s.name), 'database:postgres', s.created_at
from settled as s
order by s.name desc;

select ok(
    private.settled_position() <= pg_temp.own_base(),
    'this transaction, still running, holds the settled position at or below its own first position'
);
select results_eq(
    $$select bool_and(global_position >= private.settled_position()), count(*) > 1000
        from public.event_store where global_position >= pg_temp.own_base()$$,
    $$values (true, true)$$,
    'every event appended by this transaction is at or above the settled position'
);
select ok(
    (select bool_and(global_position < private.settled_position()) from settled),
    'the events of the ended transactions are below it'
);
select results_eq(
    $$select global_position, aggregate_type, aggregate_id, event_type
        from public.read_all_events()$$,
    $$select global_position, aggregate_type, aggregate_id, event_type from settled order by name$$,
    'read_all_events returns the settled events in position order, none of this transaction''s'
);
select results_eq(
    $$select * from public.read_all_events(0, 1)$$,
    $$select * from public.event_store where global_position = pg_temp.pos('s1')$$,
    'whole rows, at most p_limit'
);
select results_eq(
    $$select global_position from public.read_all_events(pg_temp.pos('s2'), 3)$$,
    $$values (pg_temp.pos('s3')), (pg_temp.pos('s4')), (pg_temp.pos('s5'))$$,
    'after a position, the next p_limit events'
);
select is_empty(
    $$select * from public.read_all_events(pg_temp.pos('s8'))$$,
    'nothing after the last settled event'
);
select is_empty(
    $$select * from public.read_all_events(0, 10000, array['trip', 'order'])$$,
    'nothing of this transaction''s trips and orders, though they are in the store'
);
select results_eq(
    $$select global_position from public.read_all_events(0, 100, array['wallet'])$$,
    $$select global_position from settled where aggregate_type = 'wallet' order by name$$,
    'p_aggregate_types keeps the events of those types'
);
select results_eq(
    $$select count(*) from public.read_all_events(0, 100, array['wallet', 'ledger', 'nothing'])$$,
    $$values (8::bigint)$$,
    'of any of those types'
);

-- A reader that asks again after the last position it got.
create function pg_temp.read_in_pages(p_limit integer)
returns bigint []
language plpgsql
as $$
declare
    v_seen bigint [] := '{}';
    v_page bigint [];
begin
    loop
        select array_agg(e.global_position order by e.global_position) into v_page
        from public.read_all_events(
            coalesce(v_seen[cardinality(v_seen)], 0), p_limit
        ) as e;
        exit when v_page is null;
        v_seen := v_seen || v_page;
    end loop;
    return v_seen;
end;
$$;
select is(
    pg_temp.read_in_pages(3),
    array(select global_position from settled order by name),
    'a reader asking again after its last position, 3 at a time, gets each event once, in order'
);

-- Subscriptions -----------------------------------------------------------------------------------

create temp table got (
    note text not null,
    ord bigint not null,
    global_position bigint not null,
    aggregate_type text not null,
    aggregate_id text not null
);
grant select, insert on pg_temp.got to service_role;
create procedure pg_temp.read(
    p_note text, p_name text, p_limit integer, p_index integer default 0, p_count integer default 1
)
language sql
as $$
    insert into pg_temp.got (note, ord, global_position, aggregate_type, aggregate_id)
    select p_note, r.ordinality, r.global_position, r.aggregate_type, r.aggregate_id
    from public.read_subscription(p_name, p_limit, p_index, p_count) with ordinality as r
$$;
create function pg_temp.got(p_note text)
returns bigint []
language sql
as $$
    select coalesce(array_agg(g.global_position order by g.ord), '{}')
    from pg_temp.got as g where g.note = p_note
$$;
create function pg_temp.positions(variadic p_names text [])
returns bigint []
language sql
as $$ select array(select pg_temp.pos(n) from unnest(p_names) as n) $$;

call pg_temp.read('projector 1', 'projector', 2);
select results_eq(
    $$select name, consumer_index, consumer_count, position, created_at, updated_at
        from public.event_subscriptions$$,
    $$values ('projector', 0, 1, 0::bigint, now(), now())$$,
    'read_subscription makes the subscription on its first read, at position 0'
);
select is(
    pg_temp.got('projector 1'), pg_temp.positions('s1', 's2'),
    'and returns the first p_limit settled events'
);
call pg_temp.read('projector 2', 'projector', 2);
select is(
    pg_temp.got('projector 2'), pg_temp.positions('s1', 's2'),
    'until acknowledged, the same events again'
);
select is(
    public.ack_subscription('projector', pg_temp.pos('s2')), pg_temp.pos('s2'),
    'ack_subscription moves the position to the last event handled and returns it'
);
select is(
    (select position from public.event_subscriptions where name = 'projector'),
    pg_temp.pos('s2'),
    'the subscription keeps that position'
);
call pg_temp.read('projector 3', 'projector', 3);
select is(
    pg_temp.got('projector 3'), pg_temp.positions('s3', 's4', 's5'),
    'the next read resumes after it'
);
select is(
    public.ack_subscription('projector', pg_temp.pos('s1')), pg_temp.pos('s2'),
    'a stale ack changes nothing and returns the position kept'
);
select is(
    public.ack_subscription('projector', pg_temp.pos('s2')), pg_temp.pos('s2'),
    'acking the same position again changes nothing'
);
select is(
    (select position from public.event_subscriptions where name = 'projector'),
    pg_temp.pos('s2'),
    'the position stays where it was'
);
select is(
    pg_temp.raised(
        format('select public.ack_subscription(''projector'', %s)', private.settled_position())
    ),
    jsonb_build_object(
        'sqlstate', '22023',
        'message', format('ack_subscription: p_position must be 0 to %s (got %s)',
            private.settled_position() - 1, private.settled_position()),
        'detail', null
    ),
    'acking the settled position, where an event may still land, is 22023'
);
select throws_ok(
    format(
        'select public.ack_subscription(''projector'', %s)',
        pg_temp.answer('trip.4') ->> 'global_position'
    ),
    '22023', null,
    'acking the position of an event of a transaction still running is 22023'
);
select throws_ok(
    format('select public.ack_subscription(''projector'', %s, 1)', pg_temp.pos('s3')),
    'PT404', 'ack_subscription: no subscription projector consumer 1',
    'acking a consumer the subscription does not have is PT404'
);
select is(
    (select position from public.event_subscriptions where name = 'projector'),
    pg_temp.pos('s2'),
    'the refused acks left the position'
);

-- A consumer group of 2.
call pg_temp.read('grouped 0', 'grouped', 100, 0, 2);
call pg_temp.read('grouped 1', 'grouped', 100, 1, 2);
select results_eq(
    $$select private.event_consumer('ledger', 'l-1', 2), private.event_consumer('ledger', 'l-2', 2),
             private.event_consumer('ledger', 'l-3', 2), private.event_consumer('wallet', 'w-1', 2),
             private.event_consumer('wallet', 'w-2', 2), private.event_consumer('wallet', 'w-3', 2),
             private.event_consumer('ledger', 'l-1', 3), private.event_consumer('wallet', 'w-1', 3),
             private.event_consumer('trip', 'trip-123', 3),
             private.event_consumer('trip', 'trip-123', 1)$$,
    $$values (1, 1, 0, 1, 0, 0, 1, 2, 0, 0)$$,
    'event_consumer is the first 60 bits of md5(''<type>:<id>'') modulo the count, as hashlib says'
);
select is(
    pg_temp.got('grouped 0'), pg_temp.positions('s5', 's6', 's7'),
    'consumer 0 of 2 gets the events of l-3, w-2 and w-3, in position order'
);
select is(
    pg_temp.got('grouped 1'), pg_temp.positions('s1', 's2', 's3', 's4', 's8'),
    'consumer 1 of 2 gets those of l-1, l-2 and w-1, in position order'
);
select is_empty(
    $$select g.aggregate_type, g.aggregate_id from got as g where g.note like 'grouped _'
       group by g.aggregate_type, g.aggregate_id having count(distinct g.note) > 1$$,
    'each aggregate''s events go to one consumer only'
);
select is_empty(
    $$select g.global_position from got as g
       where g.note like 'grouped _'
         and private.event_consumer(g.aggregate_type, g.aggregate_id, 2)
             <> right(g.note, 1)::integer$$,
    'the one event_consumer names'
);
select set_eq(
    $$select g.global_position from got as g where g.note like 'grouped _'$$,
    $$select global_position from settled$$,
    'together the consumers get every settled event, each once'
);
select results_eq(
    $$select consumer_index, consumer_count, position from public.event_subscriptions
       where name = 'grouped' order by consumer_index$$,
    $$values (0, 2, 0::bigint), (1, 2, 0::bigint)$$,
    'each consumer of the group has its row'
);
select throws_ok(
    $$select * from public.read_subscription('grouped', 100, 0, 3)$$,
    'PT409',
    'read_subscription: grouped is a group of 2, not 3',
    'another group size for an existing consumer is PT409'
);
select throws_ok(
    $$select * from public.read_subscription('grouped', 100, 2, 3)$$,
    'PT409',
    'read_subscription: grouped is a group of 2, not 3',
    'a new consumer of another group size is PT409 too'
);
select is(
    public.ack_subscription('grouped', pg_temp.pos('s3'), 1), pg_temp.pos('s3'),
    'consumer 1 acknowledges s3'
);
call pg_temp.read('grouped 1 again', 'grouped', 100, 1, 2);
call pg_temp.read('grouped 0 again', 'grouped', 100, 0, 2);
select is(
    pg_temp.got('grouped 1 again'), pg_temp.positions('s4', 's8'),
    'consumer 1 resumes after its own position'
);
select is(
    pg_temp.got('grouped 0 again'), pg_temp.positions('s5', 's6', 's7'),
    'consumer 0''s position is its own: unmoved'
);

-- Snapshots ---------------------------------------------------------------------------------------

select is(
    public.save_snapshot('trip', 'trip-123', 2, '{"status": "accepted", "driver": "driver-7"}'),
    '{"aggregate_type": "trip", "aggregate_id": "trip-123", "version": 2, "saved": true}'::jsonb,
    'save_snapshot keeps the state at version 2 and says so'
);
select results_eq(
    $$select aggregate_type, aggregate_id, version, state, created_at from public.event_snapshots$$,
    $$values ('trip', 'trip-123', 2::bigint,
              '{"status": "accepted", "driver": "driver-7"}'::jsonb, now())$$,
    'the snapshot row'
);
select is(
    public.load_aggregate('trip', 'trip-123'),
    jsonb_build_object(
        'aggregate_type', 'trip',
        'aggregate_id', 'trip-123',
        'version', 4,
        'snapshot', jsonb_build_object(
            'version', 2, 'state', '{"status": "accepted", "driver": "driver-7"}'::jsonb,
            'created_at', now()
        ),
        'events', (
            select jsonb_agg(to_jsonb(e) order by e.version) from public.event_store as e
            where e.aggregate_type = 'trip' and e.aggregate_id = 'trip-123' and e.version > 2
        )
    ),
    'load_aggregate returns the current version, the snapshot and the events after it (3 and 4)'
);
select is(
    jsonb_path_query_array(public.load_aggregate('trip', 'trip-123', 1), '$.events[*].version'),
    '[3]'::jsonb,
    'at most p_limit events after the snapshot'
);
select is(
    public.save_snapshot('trip', 'trip-123', 1, '{"status": "requested"}'),
    '{"aggregate_type": "trip", "aggregate_id": "trip-123", "version": 1, "saved": false}'::jsonb,
    'an older snapshot is not saved'
);
select is(
    public.save_snapshot('trip', 'trip-123', 2, '{"status": "other"}'),
    '{"aggregate_type": "trip", "aggregate_id": "trip-123", "version": 2, "saved": false}'::jsonb,
    'nor another one of the same version'
);
select results_eq(
    $$select version, state from public.event_snapshots$$,
    $$values (2::bigint, '{"status": "accepted", "driver": "driver-7"}'::jsonb)$$,
    'the snapshot kept is unchanged'
);
select is(
    public.save_snapshot('trip', 'trip-123', 4, '{"status": "finished"}') ->> 'saved',
    'true',
    'a later one replaces it'
);
select results_eq(
    $$select a ->> 'version', a -> 'snapshot' ->> 'version', a -> 'snapshot' -> 'state',
             a -> 'events'
        from public.load_aggregate('trip', 'trip-123') as a$$,
    $$values ('4', '4', '{"status": "finished"}'::jsonb, '[]'::jsonb)$$,
    'with a snapshot of the current version, no events follow it'
);
select is(
    public.load_aggregate('trip', 'trip-999'),
    '{"aggregate_type": "trip", "aggregate_id": "trip-999", "version": 0, "snapshot": null,
      "events": []}'::jsonb,
    'an aggregate without events: version 0, no snapshot, no events'
);
select results_eq(
    $$select a ->> 'version', a -> 'snapshot', a -> 'events'
        from public.load_aggregate('trip', 'trip-200') as a$$,
    $$select '1', 'null'::jsonb, jsonb_agg(to_jsonb(e)) from public.event_store as e
       where e.aggregate_id = 'trip-200'$$,
    'an aggregate without a snapshot: every event'
);

-- Monitoring, as the analyst ----------------------------------------------------------------------

create temp table analyst_read (view_name text, row_data jsonb);
grant select, insert on pg_temp.analyst_read to analyst;
select lives_ok(
    $$select tests.as_role('analyst',
        'insert into pg_temp.analyst_read select ''stats'', to_jsonb(v)'
        ' from monitoring.event_store_stats as v')$$,
    'analyst reads monitoring.event_store_stats'
);
select lives_ok(
    $$select tests.as_role('analyst',
        'insert into pg_temp.analyst_read select ''lag'', to_jsonb(v)'
        ' from monitoring.event_subscription_lag as v')$$,
    'analyst reads monitoring.event_subscription_lag'
);
select columns_are(
    'monitoring', 'event_store_stats',
    array['aggregate_type', 'event_type', 'events', 'aggregates', 'events_last_24h', 'newest_at'],
    'event_store_stats has counts and a time, never a payload'
);
select results_eq(
    $$select r.row_data ->> 'aggregate_type', r.row_data ->> 'event_type',
             (r.row_data ->> 'events')::bigint, (r.row_data ->> 'aggregates')::bigint,
             (r.row_data ->> 'events_last_24h')::bigint, (r.row_data ->> 'newest_at')::timestamptz
        from analyst_read as r
       where r.view_name = 'stats' and r.row_data ->> 'aggregate_type' in ('ledger', 'wallet')
       order by 1, 2$$,
    $$values ('ledger', 'ledger.closed', 1::bigint, 1::bigint, 1::bigint,
              now() - interval '7 minutes'),
             ('ledger', 'ledger.opened', 3, 3, 2, now() - interval '5 minutes'),
             ('wallet', 'wallet.credited', 3, 3, 3, now() - interval '4 minutes'),
             ('wallet', 'wallet.debited', 1, 1, 1, now() - interval '3 minutes')$$,
    'per aggregate type and event type: events, aggregates, those of the last 24 hours, the newest'
);
select results_eq(
    $$select r.row_data ->> 'event_type', (r.row_data ->> 'events')::bigint,
             (r.row_data ->> 'aggregates')::bigint
        from analyst_read as r
       where r.view_name = 'stats' and r.row_data ->> 'aggregate_type' = 'order'
       order by 1$$,
    $$select event_type, count(*), count(distinct aggregate_id) from public.event_store
       where aggregate_type = 'order' group by event_type order by 1$$,
    'the appended events, of transactions still running, are counted too'
);
select results_eq(
    $$select r.row_data ->> 'name', (r.row_data ->> 'consumer_index')::integer,
             (r.row_data ->> 'consumer_count')::integer, (r.row_data ->> 'position')::bigint,
             (r.row_data ->> 'lag_events')::bigint, (r.row_data ->> 'lag_seconds')::double precision
        from analyst_read as r
       where r.view_name = 'lag'
       order by 1, 2$$,
    $$values ('grouped', 0, 2, 0::bigint, 3::bigint, 360::double precision),
             ('grouped', 1, 2, pg_temp.pos('s3'), 2, 420),
             ('projector', 0, 1, pg_temp.pos('s2'), 6, 480)$$,
    'per consumer: its position, the settled events of its own after it and the oldest''s age'
);
select throws_ok(
    $$select tests.as_role('analyst', 'select count(*) from public.event_store')$$,
    '42501', 'permission denied for table event_store',
    'analyst cannot read public.event_store'
);
select throws_ok(
    $$select tests.as_role('analyst', 'select count(*) from public.event_snapshots')$$,
    '42501', 'permission denied for table event_snapshots',
    'analyst cannot read public.event_snapshots'
);
select throws_ok(
    $$select tests.as_role('analyst', 'select count(*) from public.event_subscriptions')$$,
    '42501', 'permission denied for table event_subscriptions',
    'analyst cannot read public.event_subscriptions'
);
select throws_ok(
    $$select tests.as_role('analyst', 'select count(*) from public.read_all_events()')$$,
    '42501', 'permission denied for function read_all_events',
    'analyst cannot call read_all_events'
);

-- Partition pruning -------------------------------------------------------------------------------

-- account a-old lives two months ago, a-new this month, a-span from two months ago to now. The
-- old events go in as the owner, with the stream rows an append would have made then; the
-- partition manager then makes last month's and that month's children and moves them there.
create temp table months as
select
    date_trunc('month', now()) - interval '2 months' as two_ago,
    'event_store_p' || to_char(now() - interval '2 months', 'YYYY_MM') as two_ago_child,
    'event_store_p' || to_char(date_trunc('month', now()) - interval '1 month', 'YYYY_MM')
    as last_child,
    'event_store_p' || to_char(now(), 'YYYY_MM') as this_child;
insert into public.event_store (
    event_id, aggregate_type, aggregate_id, event_type, version, global_position, payload, actor,
    created_at
)
select
    gen_random_uuid(), 'account', a.id, 'account.changed', v,
    private.event_position('7', a.n * 10 + v), '{}', 'database:postgres',
    m.two_ago + interval '3 days' + v * interval '1 hour'
from months as m
cross join (values (1, 'a-old'), (2, 'a-span')) as a (n, id)
cross join generate_series(1, 3) as v
where a.id = 'a-old' or v <= 2;
insert into private.event_streams (
    aggregate_type, aggregate_id, version, last_position, first_event_at, last_event_at
)
select
    'account', e.aggregate_id, max(e.version), max(e.global_position), min(e.created_at),
    max(e.created_at)
from public.event_store as e
where e.aggregate_type = 'account'
group by e.aggregate_id;
insert into pg_temp.answers (note, answer) values
('a-span.3', public.append_event('a-span', 'account', 'account.changed', '{}')),
('a-new.1', public.append_event('a-new', 'account', 'account.changed', '{}'));
create temp table maintained as select * from private.maintain_partitions();
select results_eq(
    $$select m.partition_name::text, m.action from maintained as m
       where m.table_name = 'public.event_store' order by 1, 2$$,
    $$select c, a from months as m
       cross join lateral (values (m.two_ago_child), (m.last_child)) as p (c)
       cross join (values ('created'), ('moved')) as x (a)
       order by 1, 2$$,
    'maintenance made the children of two months ago (the accounts) and last month (s1) and moved '
    || 'their rows out of the default partition'
);
select is(
    (select count(*) from partitions.event_store_default),
    0::bigint,
    'the default partition is empty'
);

-- Scans of each of event_store's partitions (its heap and its indexes) so far in this transaction.
create function pg_temp.scans()
returns table (partition_name text, scans bigint)
language sql
as $$
    select
        c.table_name::text,
        pg_stat_get_xact_numscans(c.child) + coalesce((
            select sum(pg_stat_get_xact_numscans(i.indexrelid))::bigint
            from pg_catalog.pg_index as i where i.indrelid = c.child
        ), 0)
    from private.partition_children('public.event_store') as c
$$;
-- The partitions p_sql reads: those whose scans it counted.
create function pg_temp.partitions_read(p_sql text)
returns text []
language plpgsql
as $$
declare
    v_before jsonb := (
        select jsonb_object_agg(s.partition_name, s.scans) from pg_temp.scans() as s
    );
begin
    execute p_sql;
    return array(
        select s.partition_name from pg_temp.scans() as s
        where s.scans > (v_before ->> s.partition_name)::bigint
        order by 1
    );
end;
$$;

select results_eq(
    $$select version, created_at >= (select two_ago from months)
                      and created_at < (select two_ago from months) + interval '1 month'
        from public.get_aggregate_events('account', 'a-old')$$,
    $$values (1::bigint, true), (2, true), (3, true)$$,
    'a-old''s three events, all of two months ago'
);
select results_eq(
    $$select version from public.get_aggregate_events('account', 'a-span')$$,
    $$values (1::bigint), (2), (3)$$,
    'a-span''s events from two months ago and today, in version order'
);
select is(
    pg_temp.partitions_read(
        'select count(*) from public.get_aggregate_events(''account'', ''a-old'')'
    ),
    (select array[two_ago_child] from months),
    'reading a-old visits only the partition of two months ago'
);
select is(
    pg_temp.partitions_read(
        'select count(*) from public.get_aggregate_events(''account'', ''a-new'')'
    ),
    (select array[this_child] from months),
    'reading a-new visits only this month''s'
);
select is(
    pg_temp.partitions_read(
        'select count(*) from public.get_aggregate_events(''account'', ''a-span'')'
    ),
    (select array[two_ago_child, last_child, this_child] from months),
    'reading a-span visits the months from its first event to its last, no other'
);
-- Plans are generic after five calls: bounds known only at execution must still prune.
select is(
    pg_temp.partitions_read(
        'select count(*) from generate_series(1, 8) as g'
        ' cross join lateral public.get_aggregate_events(''account'', ''a-old'', 1000, g - g + 1)'
    ),
    (select array[two_ago_child] from months),
    'and so it stays, call after call'
);
select is(
    pg_temp.partitions_read(
        'select count(*) from public.event_store'
        ' where aggregate_type = ''account'' and aggregate_id = ''a-old'''
    ),
    array(
        select c.table_name::text from private.partition_children('public.event_store') as c
        order by 1
    ),
    'whereas the same read without the bounds of created_at visits every partition'
);

-- Who may call and read what ----------------------------------------------------------------------

-- A user aggregate whose id is the owner's user id: being its subject gives no access either.
insert into pg_temp.answers (note, answer) values (
    'user', public.append_event(
        '5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab', 'user', 'user.registered',
        '{"phone_number": "+250788000001"}'
    )
);
create temp table callers (caller text, role_name text, claims text);
insert into callers values
('anon', 'anon', '{"role": "anon"}'),
(
    'the owner', 'authenticated',
    '{"sub": "5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab", "role": "authenticated"}'
),
(
    'a stranger', 'authenticated',
    '{"sub": "0b6c1d2e-3f40-4a5b-9c6d-7e8f90a1b2c3", "role": "authenticated"}'
);
create temp table rpc_calls (function_name text, call text);
insert into rpc_calls values
('append_event', $$select public.append_event('5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab', 'user', 'user.renamed', '{}')$$),
('append_events', $$select public.append_events('5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab', 'user', '[{"event_type": "user.renamed", "payload": {}}]')$$),
('get_aggregate_events', $$select count(*) from public.get_aggregate_events('user', '5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab')$$),
('load_aggregate', $$select public.load_aggregate('user', '5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab')$$),
('save_snapshot', $$select public.save_snapshot('user', '5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab', 1, '{}')$$),
('read_all_events', $$select count(*) from public.read_all_events()$$),
('read_subscription', $$select count(*) from public.read_subscription('projector')$$),
('ack_subscription', $$select public.ack_subscription('projector', 0)$$);
create temp table event_tables (table_name text, denied text);
insert into event_tables values
('public.event_store', 'permission denied for table event_store'),
('public.event_snapshots', 'permission denied for table event_snapshots'),
('public.event_subscriptions', 'permission denied for table event_subscriptions'),
('private.event_streams', 'permission denied for schema private'),
('private.event_ids', 'permission denied for schema private'),
('partitions.event_store_default', 'permission denied for schema partitions');

insert into pg_temp.states (note, state) values ('before the API roles', pg_temp.store_state());
select throws_ok(
    format('select tests.as_caller(%L, %L, %L)', c.role_name, c.claims, r.call),
    '42501',
    'permission denied for function ' || r.function_name,
    format('%s may not call %s', c.caller, r.function_name)
)
from rpc_calls as r
cross join callers as c
order by r.function_name, c.caller;
select throws_ok(
    format(
        'select tests.as_caller(%L, %L, %L)', c.role_name, c.claims,
        'select count(*) from ' || t.table_name
    ),
    '42501',
    t.denied,
    format('%s may not read %s', c.caller, t.table_name)
)
from event_tables as t
cross join callers as c
order by t.table_name, c.caller;
select is(
    pg_temp.store_state(), pg_temp.state('before the API roles'),
    'the refused callers changed nothing'
);
select results_eq(
    $$select t.table_name, r.rolname::text,
             has_table_privilege(r.rolname, t.table_name, 'select'),
             has_table_privilege(r.rolname, t.table_name, 'insert, update, delete, truncate')
        from (values ('public.event_store'), ('public.event_snapshots'),
                     ('public.event_subscriptions')) as t (table_name)
       cross join (values ('anon'), ('authenticated'), ('service_role')) as r (rolname)
       order by 1, 2$$,
    $$values ('public.event_snapshots', 'anon', false, false),
             ('public.event_snapshots', 'authenticated', false, false),
             ('public.event_snapshots', 'service_role', true, false),
             ('public.event_store', 'anon', false, false),
             ('public.event_store', 'authenticated', false, false),
             ('public.event_store', 'service_role', true, false),
             ('public.event_subscriptions', 'anon', false, false),
             ('public.event_subscriptions', 'authenticated', false, false),
             ('public.event_subscriptions', 'service_role', true, false)$$,
    'service_role may only select the public event tables; anon and authenticated nothing'
);
select is_empty(
    $$select c.oid::regclass from pg_catalog.pg_class as c
       where (
           c.oid in ('public.event_store'::regclass, 'public.event_snapshots'::regclass,
                     'public.event_subscriptions'::regclass)
           or c.oid in (select child from private.partition_children('public.event_store'))
       ) and not c.relrowsecurity$$,
    'row level security is on for the public event tables and every partition of event_store'
);

-- service_role: every RPC, one statement each (a read does not see what its own statement wrote).
create temp table service_calls (
    n integer generated always as identity, note text not null, call text not null
);
insert into service_calls (note, call) values
('svc.append_event', $$public.append_event('trip-svc', 'trip', 'trip.requested', '{}')$$),
('svc.append_events', $$public.append_events('trip-svc', 'trip', '[{"event_type": "trip.accepted", "payload": {}}, {"event_type": "trip.started", "payload": {}}]', 1)$$),
('svc.get_aggregate_events', $$(select jsonb_agg(e.version order by e.version) from public.get_aggregate_events('trip', 'trip-svc') as e)$$),
('svc.read_all_events', $$(select to_jsonb(count(*)) from public.read_all_events(0, 10000))$$),
('svc.read_subscription', $$(select to_jsonb(count(*)) from public.read_subscription('svc-projector', 10000))$$),
('svc.ack_subscription', format('to_jsonb(public.ack_subscription(%L, %s))', 'svc-projector', pg_temp.pos('s8'))),
('svc.save_snapshot', $$public.save_snapshot('trip', 'trip-svc', 3, '{"s": 3}')$$),
('svc.load_aggregate', $$public.load_aggregate('trip', 'trip-svc')$$),
('svc.select', $$jsonb_build_array((select count(*) from public.event_store), (select count(*) from public.event_snapshots), (select count(*) from public.event_subscriptions))$$);
select lives_ok(
    format(
        'select tests.as_caller(%L, %L, %L)', 'service_role', '{"role": "service_role"}',
        format('insert into pg_temp.answers (note, answer) values (%L, %s)', c.note, c.call)
    ),
    format('service_role calls %s', c.note)
)
from service_calls as c
order by c.n;
select results_eq(
    $$select
        (pg_temp.answer('svc.append_event') ->> 'version')::bigint,
        (pg_temp.answer('svc.append_events') ->> 'first_version')::bigint,
        (pg_temp.answer('svc.append_events') ->> 'last_version')::bigint,
        pg_temp.answer('svc.get_aggregate_events'),
        (select array_agg(actor) from public.event_store where aggregate_id = 'trip-svc')$$,
    $$values (1::bigint, 2::bigint, 3::bigint, '[1, 2, 3]'::jsonb,
              array['service:service_role', 'service:service_role', 'service:service_role'])$$,
    'its appends took versions 1 to 3 of trip-svc as service:service_role, and it read them back'
);
select results_eq(
    $$select pg_temp.answer('svc.read_all_events'), pg_temp.answer('svc.read_subscription')$$,
    $$select to_jsonb(count(*)), to_jsonb(count(*)) from public.event_store
       where global_position < private.settled_position()$$,
    'it read every settled event, through read_all_events and through a new subscription'
);
select results_eq(
    $$select pg_temp.answer('svc.ack_subscription'),
             pg_temp.answer('svc.save_snapshot') -> 'saved',
             pg_temp.answer('svc.load_aggregate') -> 'version',
             pg_temp.answer('svc.load_aggregate') -> 'snapshot' -> 'state',
             pg_temp.answer('svc.load_aggregate') -> 'events'$$,
    $$values (to_jsonb(pg_temp.pos('s8')), 'true'::jsonb, '3'::jsonb, '{"s": 3}'::jsonb,
              '[]'::jsonb)$$,
    'its ack moved the subscription, its snapshot was saved and loaded back'
);
select is(
    pg_temp.answer('svc.select'),
    jsonb_build_array(
        (select count(*) from public.event_store),
        (select count(*) from public.event_snapshots),
        (select count(*) from public.event_subscriptions)
    ),
    'service_role sees every row of the three public tables'
);
select throws_ok(
    $$select tests.as_role('service_role',
        'insert into public.event_store (event_id, aggregate_type, aggregate_id, event_type,'
        ' version, global_position, payload, actor) values (gen_random_uuid(), ''trip'','
        ' ''forged'', ''x'', 1, 1, ''{}'', ''service:x'')')$$,
    '42501', 'permission denied for table event_store',
    'service_role may not insert events directly: only through append_event(s)'
);
select throws_ok(
    $$select tests.as_role('service_role', 'update public.event_store set payload = ''{}''')$$,
    '42501', 'permission denied for table event_store',
    'service_role may not change an event'
);
select throws_ok(
    $$select tests.as_role('service_role', 'delete from public.event_store')$$,
    '42501', 'permission denied for table event_store',
    'service_role may not delete an event'
);
select throws_ok(
    $$select tests.as_role('service_role', 'update public.event_subscriptions set position = 0')$$,
    '42501', 'permission denied for table event_subscriptions',
    'service_role may not move a subscription but through ack_subscription'
);
select throws_ok(
    $$select tests.as_role('service_role', 'select count(*) from private.event_streams')$$,
    '42501', 'permission denied for schema private',
    'service_role may not read private.event_streams'
);

-- The RPCs in the catalog -------------------------------------------------------------------------

select results_eq(
    $$select p.proname::text collate "default", p.prosecdef, p.proconfig collate "default",
             coalesce(obj_description(p.oid, 'pg_proc'), '') <> '',
             has_function_privilege('service_role', p.oid, 'execute'),
             has_function_privilege('anon', p.oid, 'execute'),
             has_function_privilege('authenticated', p.oid, 'execute'),
             exists (select from aclexplode(p.proacl) as a where a.grantee = 0)
        from pg_catalog.pg_proc as p
       where p.pronamespace = 'public'::regnamespace
         and p.proname in ('append_event', 'append_events', 'get_aggregate_events',
                           'load_aggregate', 'save_snapshot', 'read_all_events',
                           'read_subscription', 'ack_subscription')
       order by p.proname::text collate "C"$$,
    $$select f, true, array['search_path=""'], true, true, false, false, false
        from unnest(array['ack_subscription', 'append_event', 'append_events',
                          'get_aggregate_events', 'load_aggregate', 'read_all_events',
                          'read_subscription', 'save_snapshot']) as f$$,
    'each RPC is one function, security definer with search_path pinned, commented, service_role '
    || 'only'
);
select set_eq(
    $$select p.proname::text collate "default" from pg_catalog.pg_proc as p
       where p.pronamespace = 'public'::regnamespace
         and p.prosrc ~ ('(event_store|event_streams|event_ids|event_snapshots|'
                         'event_subscriptions|append_to_stream|events_after)')$$,
    $$values ('ack_subscription'), ('append_event'), ('append_events'), ('get_aggregate_events'),
             ('load_aggregate'), ('read_all_events'), ('read_subscription'), ('save_snapshot')$$,
    'these eight are every function in public that reaches the event store'
);
select is_empty(
    $$select p.oid::regprocedure from pg_catalog.pg_proc as p
       where p.pronamespace = 'private'::regnamespace
         and p.proname in ('event_position', 'settled_position', 'event_consumer',
                           'require_event_names', 'require_new_event', 'append_to_stream',
                           'appended_answers', 'events_after', 'oldest_running_transaction')
         and coalesce(obj_description(p.oid, 'pg_proc'), '') = ''$$,
    'the private functions behind them are commented too'
);

select * from finish();
rollback;
