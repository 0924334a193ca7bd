-- Meta statuses of outbound messages (functions-sql's WhatsApp ingest): which are applied and
-- which ignored, their events; and statuses that arrive before their message, kept pending
-- and applied when it is recorded.
-- Runs as postgres on a fresh clone, in one transaction: now() is constant, and the provider
-- timestamps are fixed (1767225600 is 2026-01-01 00:00:00 UTC). The helpers and the payloads
-- of the story are tests/sql/fixtures/whatsapp_ingest.sql.
begin;
select plan(21);

call tests.fixture('whatsapp_ingest');
call pg_temp.story_batch();

-- Statuses --------------------------------------------------------------------------------------

-- The sender recorded four outbound messages to Alice (OUT-1 to OUT-4).
do $$
begin
    perform pg_temp.outbound('wamid.OUT-' || n, 'alice', 'send-' || n)
    from generate_series(1, 4) as n;
end;
$$;

-- No p_correlation_id and no headers: the event takes the message's own correlation id.
select is(
    public.ingest_whatsapp_webhook('meta', pg_temp.statuses(
        pg_temp.status('wamid.OUT-1', 'sent', '1767229200')
    ), null),
    pg_temp.summary(0, 0, 1, 0, 0),
    'sent is applied to an accepted outbound message'
);
select is(
    public.ingest_whatsapp_webhook('meta', pg_temp.statuses(
        pg_temp.status('wamid.OUT-1', 'delivered', '1767229260'),
        pg_temp.status('wamid.OUT-2', 'read', '1767229260'),
        pg_temp.status('wamid.OUT-4', 'read', '1767229260')
    ), 'st-2'),
    pg_temp.summary(0, 0, 3, 0, 0),
    'delivered after sent, and read straight after accepted, are applied'
);
select is(
    public.ingest_whatsapp_webhook('meta', pg_temp.statuses(
        pg_temp.status('wamid.OUT-1', 'read', '1767229320'),
        pg_temp.status('wamid.OUT-2', 'delivered', '1767229330'),
        pg_temp.status('wamid.OUT-1', 'delivered', '1767229260')
    ), 'st-3'),
    pg_temp.summary(0, 0, 1, 2, 0),
    'read is applied; delivered after read and a repeated delivered are ignored'
);
select is(
    public.ingest_whatsapp_webhook('meta', pg_temp.statuses(
        pg_temp.status('wamid.OUT-3', 'sent', '1767229200'),
        pg_temp.status('wamid.OUT-3', 'failed', '1767229210', '[{"code": 131047,
            "title": "Re-engagement message", "message": "Re-engagement message",
            "error_data": {"details": "More than 24 hours since the customer last replied"}}]')
    ), 'st-4'),
    pg_temp.summary(0, 0, 2, 0, 0),
    'sent then failed are both applied'
);
select is(
    public.ingest_whatsapp_webhook('meta', pg_temp.statuses(
        pg_temp.status('wamid.OUT-3', 'delivered', '1767229300'),
        pg_temp.status('wamid.OUT-3', 'read', '1767229310'),
        pg_temp.status('wamid.OUT-4', 'failed', '1767229320', '[{"code": 131026}]'),
        pg_temp.status('wamid.OUT-1', 'deleted', '1767229330'),
        pg_temp.status('wamid.A01', 'read', '1767229340')
    ), 'st-5'),
    pg_temp.summary(0, 0, 0, 5, 0),
    'statuses after failed, failed after read, an unknown status and one about an inbound message '
    || 'are all ignored'
);

select results_eq(
    $$select status, sent_at, delivered_at, read_at, failed_at, error, ignored_status_count
      from public.message_tracking where wamid = 'wamid.OUT-1'$$,
    $$values ('read', to_timestamp(1767229200), to_timestamp(1767229260), to_timestamp(1767229320),
              null::timestamptz, null::jsonb, 2)$$,
    'sent, delivered, read: each applied with its timestamp; the repeat and the unknown counted'
);
select results_eq(
    $$select e.payload ->> 'from_status', e.payload ->> 'status', e.payload ->> 'at',
             e.correlation_id
      from public.outbox_events as e
      where e.event_type = 'whatsapp.status_updated' and e.payload ->> 'wamid' = 'wamid.OUT-1'
      order by e.id$$,
    $$values ('accepted', 'sent', '2026-01-01T01:00:00+00:00', 'send-1'),
             ('sent', 'delivered', '2026-01-01T01:01:00+00:00', 'st-2'),
             ('delivered', 'read', '2026-01-01T01:02:00+00:00', 'st-3')$$,
    'each applied status emits whatsapp.status_updated with the call''s correlation id, else the '
    || 'message''s'
);
select results_eq(
    $$select e.aggregate_type, e.aggregate_id, e.payload ->> 'message_id',
             e.payload ->> 'user_id', e.payload ->> 'mapping_id'
      from public.outbox_events as e
      where e.event_type = 'whatsapp.status_updated' and e.payload ->> 'wamid' = 'wamid.OUT-1'
          and e.payload ->> 'status' = 'read'$$,
    $$select 'whatsapp_message', t.id::text, t.id::text, t.user_id::text, t.mapping_id::text
      from public.message_tracking as t where t.wamid = 'wamid.OUT-1'$$,
    'whatsapp.status_updated carries the message, its user and its conversation'
);
select results_eq(
    $$select status, delivered_at, read_at, ignored_status_count
      from public.message_tracking where wamid = 'wamid.OUT-2'$$,
    $$values ('read', null::timestamptz, to_timestamp(1767229260), 1)$$,
    'read before delivered: read stays, the late delivered is ignored and counted'
);
select results_eq(
    $$select status, sent_at, delivered_at, read_at, failed_at, error, ignored_status_count
      from public.message_tracking where wamid = 'wamid.OUT-3'$$,
    $$values ('failed', to_timestamp(1767229200), null::timestamptz, null::timestamptz,
              to_timestamp(1767229210), '[{"code": 131047, "title": "Re-engagement message",
              "message": "Re-engagement message",
              "error_data": {"details": "More than 24 hours since the customer last replied"}}]'
              ::jsonb, 2)$$,
    'failed is applied with its errors and failed_at; delivered and read after it are ignored'
);
select is(
    (
        select e.payload -> 'error' -> 0 ->> 'code' from public.outbox_events as e
        where e.event_type = 'whatsapp.status_updated' and e.payload ->> 'wamid' = 'wamid.OUT-3'
            and e.payload ->> 'status' = 'failed'
    ),
    '131047',
    'the failed status event carries the error'
);
select results_eq(
    $$select status, failed_at, error, ignored_status_count
      from public.message_tracking where wamid = 'wamid.OUT-4'$$,
    $$values ('read', null::timestamptz, null::jsonb, 1)$$,
    'failed after read is ignored: the message stays read, without error'
);
select results_eq(
    $$select status, read_at, ignored_status_count
      from public.message_tracking where wamid = 'wamid.A01'$$,
    $$values ('received', null::timestamptz, 1)$$,
    'a status about an inbound message changes nothing but is counted'
);
select is(
    (
        select count(*) from public.outbox_events
        where event_type = 'whatsapp.status_updated' and payload ->> 'wamid' like 'wamid.%'
    ),
    7::bigint,
    'only the 7 applied statuses emitted whatsapp.status_updated'
);

-- Statuses before their message -----------------------------------------------------------------

select is(
    public.ingest_whatsapp_webhook('meta', pg_temp.statuses(
        pg_temp.status('wamid.OUT-5', 'read', '1767229600')
    ), 'pend-1'),
    pg_temp.summary(0, 0, 0, 0, 1),
    'a status for an unknown wamid is kept pending'
);
select is(
    public.ingest_whatsapp_webhook('meta', pg_temp.statuses(
        pg_temp.status('wamid.OUT-5', 'delivered', '1767229500'),
        pg_temp.status('wamid.OUT-5', 'read', '1767229600'),
        pg_temp.status('wamid.OUT-6', 'deleted', '1767229600')
    ), 'pend-2'),
    pg_temp.summary(0, 0, 0, 2, 1),
    'a second status is pending too; the same status again and an unknown one are ignored'
);
select set_eq(
    $$select wamid, status, provider_timestamp from private.pending_message_statuses$$,
    $$values ('wamid.OUT-5', 'delivered', to_timestamp(1767229500)),
             ('wamid.OUT-5', 'read', to_timestamp(1767229600))$$,
    'pending_message_statuses holds each (wamid, status) once, and no unknown status'
);
-- As service_role, which cannot reach private: the trigger applying pending statuses must.
grant select on pg_temp.ids to service_role;
grant execute on function pg_temp.uid(text), pg_temp.outbound(text, text, text, text)
to service_role;
select lives_ok(
    $$select tests.as_role(
        'service_role', 'select pg_temp.outbound(''wamid.OUT-5'', ''alice'', ''send-5'')'
    )$$,
    'service_role records the outbound message the pending statuses are about'
);
select results_eq(
    $$select status, delivered_at, read_at, ignored_status_count
      from public.message_tracking where wamid = 'wamid.OUT-5'$$,
    $$values ('read', to_timestamp(1767229500), to_timestamp(1767229600), 0)$$,
    'pending statuses are applied in rank order when the row appears: read, with both timestamps'
);
select is_empty(
    $$select wamid from private.pending_message_statuses where wamid = 'wamid.OUT-5'$$,
    'applied pending statuses are removed'
);
select results_eq(
    $$select e.payload ->> 'from_status', e.payload ->> 'status', e.correlation_id
      from public.outbox_events as e
      where e.event_type = 'whatsapp.status_updated' and e.payload ->> 'wamid' = 'wamid.OUT-5'
      order by e.id$$,
    $$values ('accepted', 'delivered', 'send-5'), ('delivered', 'read', 'send-5')$$,
    'applying pending statuses emits their events, with the message''s correlation id'
);

select * from finish();
rollback;
