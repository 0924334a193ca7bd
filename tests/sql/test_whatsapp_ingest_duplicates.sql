-- A webhook delivered twice (functions-sql's WhatsApp ingest): the same batch again stores,
-- registers and emits nothing, and counts its duplicates.
-- Runs as postgres on a fresh clone, in one transaction: now() is constant, and the provider
-- timestamps are fixed (1767225600 is 2026-01-01 00:00:00 UTC). The helpers and the payloads
-- of the story are tests/sql/fixtures/whatsapp_ingest.sql.
begin;
select plan(8);

call tests.fixture('whatsapp_ingest');
call pg_temp.story_batch();

-- Duplicates ------------------------------------------------------------------------------------

insert into pg_temp.snap (note, f) values ('before duplicate', pg_temp.footprint());
insert into pg_temp.seen (note, n)
select 'received metrics before duplicate', count(*) from public.system_metrics
where service_name = 'whatsapp-ingest' and metric_name = 'messages.received';
select is(
    public.ingest_whatsapp_webhook('meta', pg_temp.body('batch'), 'corr-retry'),
    pg_temp.summary(0, 17, 0, 0, 0),
    'the same batch again stores nothing and counts 17 duplicates'
);
select is(
    pg_temp.footprint() -> 'users', pg_temp.snap('before duplicate') -> 'users',
    'a duplicate batch registers no user'
);
select is(
    pg_temp.footprint() -> 'messages', pg_temp.snap('before duplicate') -> 'messages',
    'a duplicate batch adds no message_tracking row'
);
select is(
    pg_temp.footprint() -> 'session_messages',
    pg_temp.snap('before duplicate') -> 'session_messages',
    'a duplicate batch adds nothing to the sessions'' message counts'
);
select is(
    pg_temp.footprint() -> 'mappings', pg_temp.snap('before duplicate') -> 'mappings',
    'a duplicate batch makes no conversation'
);
select is(
    pg_temp.footprint() -> 'outbox', pg_temp.snap('before duplicate') -> 'outbox',
    'a duplicate batch emits no event'
);
select is(
    (
        select count(*) from public.system_metrics
        where service_name = 'whatsapp-ingest' and metric_name = 'messages.duplicate'
            and value = 17 and tags = '{"provider": "meta"}'
    ),
    1::bigint,
    'the duplicate batch records messages.duplicate 17'
);
select is(
    (
        select count(*) from public.system_metrics
        where service_name = 'whatsapp-ingest' and metric_name = 'messages.received'
    ),
    pg_temp.seen('received metrics before duplicate'),
    'the duplicate batch records no messages.received'
);

select * from finish();
rollback;
