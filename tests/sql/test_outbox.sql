-- The transactional outbox (the outbox's functions-sql file): private.emit_events,
-- private.emit_event, claim_outbox_events, mark_outbox_published, private.purge_published_outbox_events, and who may
-- call them and read outbox_events. Runs as postgres on a fresh clone of the migrated template.
--
-- A relay claims only events of transactions below the oldest one still running, so events
-- written by this (test) transaction are never claimable. Claimable events are inserted here as
-- postgres with an explicit old txid (3, 4, 5, 6), which every snapshot's xmin is above.
begin;
select plan(74);

-- Events by name (their event_type), what each claim returned in its order, and counts.
create temp table ev (name text primary key, id bigint not null);
create function pg_temp.ev(p_name text)
returns bigint
language sql
as $$ select id from pg_temp.ev where name = p_name $$;
create temp table claimed (
    note text not null,
    ord bigint not null,
    id bigint not null,
    event_type text not null,
    claimed_by text,
    claimed_until timestamptz
);
create temp table seen (note text primary key, n bigint not null);
create function pg_temp.seen(p_note text)
returns bigint
language sql
as $$ select n from pg_temp.seen where note = p_note $$;
grant select, insert on pg_temp.ev, pg_temp.claimed, pg_temp.seen
to anon, authenticated, service_role;

-- private.emit_event ------------------------------------------------------------------------------

insert into pg_temp.ev (name, id) values
(
    'own.full',
    private.emit_event(
        'ride', 'ride-1', 'own.full', '{"fare": 1200}', 'corr-1', '{"source": "test"}'
    )
),
('own.bare', private.emit_event('ride', 'ride-2', 'own.bare', '{}')),
('own.null_metadata', private.emit_event('ride', 'ride-3', 'own.null_metadata', '{}', null, null));

select results_eq(
    $$select aggregate_type, aggregate_id, event_type, event_version, payload, metadata,
             correlation_id, created_at, claimed_by, claimed_until, published_at
        from public.outbox_events where id = pg_temp.ev('own.full')$$,
    $$values ('ride', 'ride-1', 'own.full', '1.0', '{"fare": 1200}'::jsonb,
              '{"source": "test"}'::jsonb, 'corr-1', now(), null::text, null::timestamptz,
              null::timestamptz)$$,
    'emit_event returns the id of an unclaimed, unpublished event holding the values given'
);
select is(
    (select txid from public.outbox_events where id = pg_temp.ev('own.full')),
    pg_current_xact_id(),
    'emit_event records the txid of the current transaction'
);
select results_eq(
    $$select metadata, correlation_id from public.outbox_events where id = pg_temp.ev('own.bare')$$,
    $$values ('{}'::jsonb, null::text)$$,
    'without the optional arguments the event has metadata {} and no correlation id'
);
select is(
    (select metadata from public.outbox_events where id = pg_temp.ev('own.null_metadata')),
    '{}'::jsonb,
    'emit_event stores a null p_metadata as {}'
);

-- claim_outbox_events: this transaction's events wait ---------------------------------------------

select ok(
    (
        select bool_and(txid >= pg_snapshot_xmin(pg_current_snapshot()))
        from public.outbox_events
        where id in (select id from pg_temp.ev)
    ),
    'this transaction''s events are not below the xmin of its snapshot'
);
insert into pg_temp.claimed
select 'own', c.ordinality, c.id, c.event_type, c.claimed_by, c.claimed_until
from public.claim_outbox_events(1000, 'relay-0') with ordinality as c;
select is(
    (select count(*) from pg_temp.claimed where note = 'own'),
    0::bigint,
    'claim_outbox_events claims none of the events of a transaction still running'
);
select is(
    (select count(*) from public.outbox_events where claimed_by is not null),
    0::bigint,
    'the events of the running transaction are left unclaimed'
);

-- claim_outbox_events: order, batch and lease -----------------------------------------------------

-- Inserted in id order e.1 .. e.6; their transactions began in the order of txid.
with inserted as (
    insert into public.outbox_events (
        aggregate_type, aggregate_id, event_type, payload, txid, published_at
    )
    values
    ('test', 'a', 'e.1', '{}', '4', null),
    ('test', 'b', 'e.2', '{}', '3', null),
    ('test', 'c', 'e.3', '{}', '3', null),
    ('test', 'd', 'e.4', '{}', '4', null),
    ('test', 'e', 'e.5', '{}', '5', now() - interval '1 hour'),
    ('test', 'f', 'e.6', '{}', '5', null)
    returning event_type, id
)
insert into pg_temp.ev (name, id) select event_type, id from inserted;

insert into pg_temp.claimed
select 'first', c.ordinality, c.id, c.event_type, c.claimed_by, c.claimed_until
from public.claim_outbox_events(3, 'relay-1') with ordinality as c;

select results_eq(
    $$select event_type from pg_temp.claimed where note = 'first' order by ord$$,
    $$values ('e.2'), ('e.3'), ('e.1')$$,
    'claim_outbox_events returns the oldest events first, in (txid, id) order, up to p_batch'
);
select results_eq(
    $$select event_type, claimed_by, claimed_until
        from public.outbox_events where event_type in ('e.1', 'e.2', 'e.3')
       order by event_type$$,
    $$values ('e.1', 'relay-1', now() + interval '30 seconds'),
             ('e.2', 'relay-1', now() + interval '30 seconds'),
             ('e.3', 'relay-1', now() + interval '30 seconds')$$,
    'the claimed events are held by the worker for the default lease of 30 seconds'
);
select results_eq(
    $$select claimed_by, claimed_until from pg_temp.claimed where note = 'first' order by ord$$,
    $$select claimed_by, claimed_until from public.outbox_events
       where event_type in ('e.2', 'e.3', 'e.1') order by txid, id$$,
    'claim_outbox_events returns the rows as claimed'
);
select is(
    (
        select count(*) from public.outbox_events
        where event_type in ('e.4', 'e.5', 'e.6') and claimed_by is not null
    ),
    0::bigint,
    'the events beyond the batch are left unclaimed'
);

insert into pg_temp.claimed
select 'second', c.ordinality, c.id, c.event_type, c.claimed_by, c.claimed_until
from public.claim_outbox_events(10, 'relay-2', 60) with ordinality as c;

select results_eq(
    $$select event_type from pg_temp.claimed where note = 'second' order by ord$$,
    $$values ('e.4'), ('e.6')$$,
    'a second claim skips the events another worker holds, published ones and running ones'
);
select results_eq(
    $$select event_type, claimed_by, claimed_until
        from public.outbox_events where event_type in ('e.4', 'e.6')
       order by event_type$$,
    $$values ('e.4', 'relay-2', now() + interval '60 seconds'),
             ('e.6', 'relay-2', now() + interval '60 seconds')$$,
    'the second worker holds its events for the p_lease_seconds it asked'
);
select is(
    (select claimed_by from public.outbox_events where event_type = 'e.1'),
    'relay-1',
    'the first worker still holds the events it claimed'
);

insert into pg_temp.claimed
select 'third', c.ordinality, c.id, c.event_type, c.claimed_by, c.claimed_until
from public.claim_outbox_events(10, 'relay-3') with ordinality as c;
select is(
    (select count(*) from pg_temp.claimed where note = 'third'),
    0::bigint,
    'while every lease holds, a third worker claims nothing'
);

-- relay-1's lease on e.2 runs out; e.3 only later.
update public.outbox_events set claimed_until = now() - interval '1 second'
where event_type = 'e.2';
insert into pg_temp.claimed
select 'takeover', c.ordinality, c.id, c.event_type, c.claimed_by, c.claimed_until
from public.claim_outbox_events(10, 'relay-3') with ordinality as c;

select results_eq(
    $$select event_type, claimed_by from pg_temp.claimed where note = 'takeover'$$,
    $$values ('e.2', 'relay-3')$$,
    'an event whose lease ran out is claimed again, by the worker asking'
);
select results_eq(
    $$select claimed_by, claimed_until from public.outbox_events where event_type = 'e.2'$$,
    $$values ('relay-3', now() + interval '30 seconds')$$,
    'the new worker holds it with a new lease'
);

update public.outbox_events set claimed_until = now() - interval '1 second'
where event_type = 'e.3';
insert into pg_temp.claimed
select 'anonymous', c.ordinality, c.id, c.event_type, c.claimed_by, c.claimed_until
from public.claim_outbox_events(10) with ordinality as c;
select results_eq(
    $$select event_type, claimed_by from pg_temp.claimed where note = 'anonymous'$$,
    $$values ('e.3', 'relay')$$,
    'without p_worker the claim is recorded for ''relay'''
);

select is(
    (
        select count(*) from pg_temp.claimed
        where event_type = 'e.5' or event_type like 'own.%'
    ),
    0::bigint,
    'no claim ever returned the published event or this transaction''s events'
);
select is(
    (select claimed_by from public.outbox_events where event_type = 'e.5'),
    null,
    'the published event was never claimed'
);

-- claim_outbox_events: bad input is 22023 and claims nothing --------------------------------------

insert into public.outbox_events (aggregate_type, aggregate_id, event_type, payload, txid)
values ('test', 'g', 'e.7', '{}', '6');
insert into pg_temp.ev (name, id)
select event_type, id from public.outbox_events where event_type = 'e.7';

select throws_ok(
    $$select * from public.claim_outbox_events(0, 'relay-4')$$,
    '22023',
    'claim_outbox_events: p_batch must be 1 to 1000 (got 0)',
    'claim_outbox_events refuses a batch of 0'
);
select throws_ok(
    $$select * from public.claim_outbox_events(1001, 'relay-4')$$,
    '22023',
    'claim_outbox_events: p_batch must be 1 to 1000 (got 1001)',
    'claim_outbox_events refuses a batch of 1001'
);
select throws_ok(
    $$select * from public.claim_outbox_events(null, 'relay-4')$$,
    '22023',
    'claim_outbox_events: p_batch must be 1 to 1000 (got null)',
    'claim_outbox_events refuses a null batch'
);
select throws_ok(
    $$select * from public.claim_outbox_events(10, 'relay-4', 0)$$,
    '22023',
    'claim_outbox_events: p_lease_seconds must be 1 to 3600 (got 0)',
    'claim_outbox_events refuses a lease of 0 seconds'
);
select throws_ok(
    $$select * from public.claim_outbox_events(10, 'relay-4', 3601)$$,
    '22023',
    'claim_outbox_events: p_lease_seconds must be 1 to 3600 (got 3601)',
    'claim_outbox_events refuses a lease of 3601 seconds'
);
select throws_ok(
    $$select * from public.claim_outbox_events(10, 'relay-4', null)$$,
    '22023',
    'claim_outbox_events: p_lease_seconds must be 1 to 3600 (got null)',
    'claim_outbox_events refuses a null lease'
);
select results_eq(
    $$select claimed_by, claimed_until from public.outbox_events where event_type = 'e.7'$$,
    $$values (null::text, null::timestamptz)$$,
    'the refused claims left the claimable event unclaimed'
);

insert into pg_temp.claimed
select 'bounds', c.ordinality, c.id, c.event_type, c.claimed_by, c.claimed_until
from public.claim_outbox_events(1000, 'relay-4', 3600) with ordinality as c;
select results_eq(
    $$select event_type, claimed_by, claimed_until from pg_temp.claimed where note = 'bounds'$$,
    $$values ('e.7', 'relay-4', now() + interval '1 hour')$$,
    'claim_outbox_events accepts a batch of 1000 and a lease of 3600 seconds'
);

-- mark_outbox_published ---------------------------------------------------------------------------

-- Now: e.1 relay-1, e.2 relay-3, e.3 relay, e.4 and e.6 relay-2, e.7 relay-4, e.5 published.
select is(
    public.mark_outbox_published(array[pg_temp.ev('e.4'), pg_temp.ev('e.6'), pg_temp.ev('e.1')],
        'relay-2'),
    2,
    'mark_outbox_published with p_worker marks only the events that worker holds, and says how many'
);
select results_eq(
    $$select event_type, published_at, claimed_until
        from public.outbox_events where event_type in ('e.1', 'e.4', 'e.6')
       order by event_type$$,
    $$values ('e.1', null::timestamptz, now() + interval '30 seconds'),
             ('e.4', now(), null::timestamptz),
             ('e.6', now(), null::timestamptz)$$,
    'the worker''s events are published now with their lease cleared; another worker''s is not'
);
select is(
    public.mark_outbox_published(array[pg_temp.ev('e.5'), pg_temp.ev('e.1'), pg_temp.ev('e.4')]),
    1,
    'mark_outbox_published without p_worker marks any unpublished event, not published ones'
);
select results_eq(
    $$select event_type, published_at
        from public.outbox_events where event_type in ('e.1', 'e.4', 'e.5')
       order by event_type$$,
    $$values ('e.1', now()), ('e.4', now()), ('e.5', now() - interval '1 hour')$$,
    'events already published keep the time they were published'
);
select is(
    public.mark_outbox_published(array[]::bigint[], 'relay-3'),
    0,
    'mark_outbox_published of no ids marks nothing'
);
select is(
    public.mark_outbox_published(array[-1, 0]::bigint[]),
    0,
    'mark_outbox_published of unknown ids marks nothing'
);
select throws_ok(
    $$select public.mark_outbox_published(null, 'relay-3')$$,
    '22023',
    'mark_outbox_published: p_ids must be an array of event ids',
    'mark_outbox_published refuses null ids'
);
select is(
    (select published_at from public.outbox_events where event_type = 'e.2'),
    null,
    'the refused call published nothing'
);

-- private.purge_published_outbox_events ----------------------------------------------------------

with inserted as (
    insert into public.outbox_events (
        aggregate_type, aggregate_id, event_type, payload, txid, created_at, published_at
    )
    values
    ('test', 'p', 'p.8_days', '{}', '3', now() - interval '9 days', now() - interval '8 days'),
    ('test', 'p', 'p.6_days', '{}', '3', now() - interval '9 days', now() - interval '6 days'),
    ('test', 'p', 'p.unpublished', '{}', '3', now() - interval '30 days', null)
    returning event_type, id
)
insert into pg_temp.ev (name, id) select event_type, id from inserted;
insert into pg_temp.seen (note, n) values
('unpublished', (select count(*) from public.outbox_events where published_at is null));

select is(
    private.purge_published_outbox_events(),
    1,
    'purge_published_outbox_events deletes events published over 7 days ago by default'
);
select results_eq(
    $$select event_type from public.outbox_events where event_type like 'p.%' order by event_type$$,
    $$values ('p.6_days'), ('p.unpublished')$$,
    'the event published 8 days ago is gone; the one of 6 days and the unpublished one stay'
);
select is(
    private.purge_published_outbox_events('1 day'),
    1,
    'with p_older_than 1 day, the event published 6 days ago goes'
);
select is(
    private.purge_published_outbox_events('30 minutes'),
    1,
    'with p_older_than 30 minutes, the event published an hour ago goes'
);
select is(
    (select count(*) from public.outbox_events where published_at is null),
    pg_temp.seen('unpublished'),
    'purging never deleted an unpublished event, however old'
);
select is(
    (select count(*) from public.outbox_events where published_at = now()),
    3::bigint,
    'the events published just now are kept'
);

-- Who may call the RPCs ---------------------------------------------------------------------------

select throws_ok(
    $$select tests.as_role('anon', 'select * from public.claim_outbox_events(10, ''x'')')$$,
    '42501',
    'permission denied for function claim_outbox_events',
    'anon may not call claim_outbox_events'
);
select throws_ok(
    $$select tests.as_caller(
        'authenticated',
        '{"sub": "5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab", "role": "authenticated"}',
        'select * from public.claim_outbox_events(10, ''x'')'
    )$$,
    '42501',
    'permission denied for function claim_outbox_events',
    'authenticated may not call claim_outbox_events'
);
select throws_ok(
    $$select tests.as_role('anon', 'select public.mark_outbox_published(array[1::bigint])')$$,
    '42501',
    'permission denied for function mark_outbox_published',
    'anon may not call mark_outbox_published'
);
select throws_ok(
    $$select tests.as_caller(
        'authenticated',
        '{"sub": "5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab", "role": "authenticated"}',
        'select public.mark_outbox_published(array[1::bigint])'
    )$$,
    '42501',
    'permission denied for function mark_outbox_published',
    'authenticated may not call mark_outbox_published'
);
select throws_ok(
    $$select tests.as_role(
        'anon', 'select private.emit_event(''x'', ''1'', ''forged'', ''{}'')'
    )$$,
    '42501',
    'permission denied for schema private',
    'anon may not call private.emit_event'
);
select throws_ok(
    $$select tests.as_role(
        'authenticated', 'select private.emit_event(''x'', ''1'', ''forged'', ''{}'')'
    )$$,
    '42501',
    'permission denied for schema private',
    'authenticated may not call private.emit_event'
);
select throws_ok(
    $$select tests.as_role(
        'service_role', 'select private.emit_event(''x'', ''1'', ''forged'', ''{}'')'
    )$$,
    '42501',
    'permission denied for schema private',
    'service_role may not call private.emit_event: events come with the changes they announce'
);
select throws_ok(
    $$select tests.as_role('service_role', 'select private.purge_published_outbox_events()')$$,
    '42501',
    'permission denied for schema private',
    'service_role may not call private.purge_published_outbox_events'
);

-- e.3's lease runs out for service_role to claim it.
update public.outbox_events set claimed_until = now() - interval '1 second'
where event_type = 'e.3';
select lives_ok(
    $$select tests.as_role(
        'service_role',
        'insert into pg_temp.claimed'
        ' select ''service'', c.ordinality, c.id, c.event_type, c.claimed_by, c.claimed_until'
        ' from public.claim_outbox_events(10, ''relay-svc'') with ordinality as c'
    )$$,
    'service_role calls claim_outbox_events'
);
select results_eq(
    $$select event_type, claimed_by from pg_temp.claimed where note = 'service' order by ord$$,
    $$values ('e.3', 'relay-svc'), ('p.unpublished', 'relay-svc')$$,
    'service_role''s claim took the event whose lease ran out and the old unpublished one'
);
select lives_ok(
    $$select tests.as_role(
        'service_role',
        format(
            'insert into pg_temp.seen select ''service marked'','
            ' public.mark_outbox_published(array[%s::bigint], ''relay-svc'')',
            pg_temp.ev('e.3')
        )
    )$$,
    'service_role calls mark_outbox_published'
);
select is(pg_temp.seen('service marked'), 1::bigint, 'service_role''s call marked its event');
select is(
    (select published_at from public.outbox_events where event_type = 'e.3'),
    now(),
    'the event service_role marked is published'
);

-- Who reads outbox_events -------------------------------------------------------------------------

select ok(
    (select relrowsecurity from pg_class where oid = 'public.outbox_events'::regclass),
    'outbox_events has row level security enabled'
);
select table_privs_are(
    'public', 'outbox_events', 'anon', array[]::name[],
    'anon has no privilege on outbox_events'
);
select table_privs_are(
    'public', 'outbox_events', 'authenticated', array[]::name[],
    'authenticated has no privilege on outbox_events'
);
select table_privs_are(
    'public', 'outbox_events', 'service_role', array['SELECT'],
    'service_role may only select from outbox_events'
);
select throws_ok(
    $$select tests.as_caller(
        'authenticated',
        '{"sub": "5d2f1e0a-7c3b-4a9d-8e6f-0123456789ab", "role": "authenticated"}',
        'select count(*) from public.outbox_events'
    )$$,
    '42501',
    'permission denied for table outbox_events',
    'authenticated reading outbox_events is refused'
);
select throws_ok(
    $$select tests.as_caller(
        'anon', '{"role": "anon"}', 'select count(*) from public.outbox_events'
    )$$,
    '42501',
    'permission denied for table outbox_events',
    'anon reading outbox_events is refused'
);
select lives_ok(
    $$select tests.as_caller(
        'service_role',
        '{"role": "service_role"}',
        'insert into pg_temp.seen select ''service reads'', count(*) from public.outbox_events'
    )$$,
    'service_role reads outbox_events'
);
select is(
    pg_temp.seen('service reads'),
    (select count(*) from public.outbox_events),
    'service_role sees every event'
);
select throws_ok(
    $$select tests.as_role(
        'service_role',
        'insert into public.outbox_events (aggregate_type, aggregate_id, event_type, payload)'
        ' values (''x'', ''1'', ''forged'', ''{}'')'
    )$$,
    '42501',
    'permission denied for table outbox_events',
    'service_role may not insert events directly'
);
select throws_ok(
    $$select tests.as_role(
        'service_role', 'update public.outbox_events set published_at = now()'
    )$$,
    '42501',
    'permission denied for table outbox_events',
    'service_role may not update events directly'
);
select throws_ok(
    $$select tests.as_role('service_role', 'delete from public.outbox_events')$$,
    '42501',
    'permission denied for table outbox_events',
    'service_role may not delete events directly'
);

-- private.emit_events: a batch in one insert ------------------------------------------------------

create temp table batch (position bigint primary key, id bigint not null);
insert into pg_temp.batch (position, id)
select e.position, e.id
from private.emit_events(
    'ride',
    array['ride-b1', 'ride-b2', 'ride-b3'],
    'own.batch',
    array['{"n": 1}', '{"n": 2}', '{"n": 3}']::jsonb [],
    'corr-b',
    '{"source": "batch"}'
) with ordinality as e (id, position);

select results_eq(
    $$select b.position, o.aggregate_type, o.aggregate_id, o.event_type, o.payload, o.metadata,
             o.correlation_id, o.txid = pg_current_xact_id(), o.published_at
        from pg_temp.batch as b
        inner join public.outbox_events as o on o.id = b.id
        order by b.position$$,
    $$values
        (1::bigint, 'ride', 'ride-b1', 'own.batch', '{"n": 1}'::jsonb, '{"source": "batch"}'::jsonb,
         'corr-b', true, null::timestamptz),
        (2, 'ride', 'ride-b2', 'own.batch', '{"n": 2}', '{"source": "batch"}', 'corr-b', true, null),
        (3, 'ride', 'ride-b3', 'own.batch', '{"n": 3}', '{"source": "batch"}', 'corr-b', true, null)$$,
    'emit_events writes one event per element and returns their ids in array order'
);
select ok(
    (select array_agg(id order by position) = array_agg(id order by id) from pg_temp.batch),
    'emit_events gives ids in array order: relays publish the batch in that order'
);
select is(
    (
        select count(*) from private.emit_events(
            'ride', '{}'::text [], 'own.empty', '{}'::jsonb [], null, null
        )
    ) + (
        select count(*) from private.emit_events('ride', null, 'own.empty', null)
    ) + (select count(*) from public.outbox_events where event_type = 'own.empty'),
    0::bigint,
    'emit_events of empty or null arrays writes nothing'
);
select throws_ok(
    $$select private.emit_events('ride', array['a', 'b'], 'own.uneven', array['{}']::jsonb [])$$,
    '22023',
    'emit_events: p_aggregate_ids and p_payloads must be arrays of one length (got 2 and 1)',
    'emit_events refuses arrays of different lengths'
);
select throws_ok(
    $$select private.emit_events('ride', array['a'], 'own.uneven', null)$$,
    '22023',
    'emit_events: p_aggregate_ids and p_payloads must be arrays of one length (got 1 and null)',
    'emit_events refuses ids without payloads'
);
select is(
    (select count(*) from public.outbox_events where event_type = 'own.uneven'),
    0::bigint,
    'a refused batch writes nothing'
);
select is(
    (
        select array_agg(p.oid::regprocedure::text order by p.oid::regprocedure::text)
        from pg_proc as p
        where p.prosrc ~* 'insert\s+into\s+public\s*\.\s*outbox_events'
    ),
    array['private.emit_events(text,text[],text,jsonb[],text,jsonb)'],
    'one writer: no function but private.emit_events inserts into outbox_events'
);
select throws_ok(
    $$select tests.as_role(
        'service_role',
        'select private.emit_events(''x'', array[''1''], ''forged'', array[''{}''::jsonb])'
    )$$,
    '42501',
    'permission denied for schema private',
    'service_role may not call private.emit_events'
);

select * from finish();
rollback;
