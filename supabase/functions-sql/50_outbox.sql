-- The transactional outbox: events written in the transaction that made the change, and the
-- RPCs relays publish them with.

create or replace function private.emit_events(
    p_aggregate_type text,
    p_aggregate_ids text[],
    p_event_type text,
    p_payloads jsonb[],
    p_correlation_id text default null,
    p_metadata jsonb default '{}'
)
returns setof bigint
language plpgsql
volatile
set search_path = ''
as $$
-- The one statement that writes outbox rows: a batch of one event type in one insert, so a
-- webhook of 20 messages starts one statement for its events rather than 20. PL/pgSQL rather
-- than SQL: it keeps its plan for the session, where a SQL function that cannot be inlined is
-- planned again on every call.
begin
    if pg_catalog.cardinality(p_aggregate_ids) is distinct from pg_catalog.cardinality(p_payloads)
        then
        raise exception 'emit_events: p_aggregate_ids and p_payloads must be arrays of one length '
            '(got % and %)',
            coalesce(pg_catalog.cardinality(p_aggregate_ids)::text, 'null'),
            coalesce(pg_catalog.cardinality(p_payloads)::text, 'null')
        using errcode = '22023';
    end if;
    -- In array order: ids are given, and relays publish, in the order of the batch.
    return query
    insert into public.outbox_events as o (
        aggregate_type, aggregate_id, event_type, payload, metadata, correlation_id
    )
    select
        p_aggregate_type,
        e.aggregate_id,
        p_event_type,
        e.payload,
        coalesce(p_metadata, '{}'),
        p_correlation_id
    from rows from (
        pg_catalog.unnest(p_aggregate_ids), pg_catalog.unnest(p_payloads)
    ) with ordinality as e (aggregate_id, payload, position)
    order by e.position
    returning o.id;
end;
$$;
comment on function private.emit_events(text, text[], text, jsonb[], text, jsonb) is
'Appends one event per element of p_aggregate_ids and p_payloads (arrays of one length, else '
'22023), all of p_aggregate_type and p_event_type, to outbox_events in the calling transaction, '
'in array order; returns their ids in that order. Null or empty arrays append nothing.';

create or replace function private.emit_event(
    p_aggregate_type text,
    p_aggregate_id text,
    p_event_type text,
    p_payload jsonb,
    p_correlation_id text default null,
    p_metadata jsonb default '{}'
)
returns bigint
language plpgsql
volatile
set search_path = ''
as $$
declare
    v_id bigint;
begin
    select e.id into v_id
    from private.emit_events(
        p_aggregate_type,
        array[p_aggregate_id],
        p_event_type,
        array[p_payload],
        p_correlation_id,
        p_metadata
    ) as e (id);
    return v_id;
end;
$$;
comment on function private.emit_event(text, text, text, jsonb, text, jsonb) is
'Appends an event to outbox_events in the calling transaction (through private.emit_events); '
'returns its id.';

create or replace function private.oldest_running_transaction()
returns xid8
language plpgsql
stable
set search_path = ''
as $$
-- A row's writer becomes visible at its commit, not at its insert: a reader that moved past a
-- row by the order of insertion would never see a slower writer's rows behind it. Transactions
-- below this one have all ended, so rows tagged with them are final and can be read in order.
begin
    return pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot());
end;
$$;
comment on function private.oldest_running_transaction() is
'The oldest transaction still running: every transaction below it has committed or aborted. '
'Ordered readers (the outbox''s relays, the event store''s readers) read only rows written below '
'it, so none is ever skipped.';

create or replace function public.claim_outbox_events(
    p_batch integer default 100,
    p_worker text default null,
    p_lease_seconds integer default 30
)
returns setof public.outbox_events
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
    perform private.require_between(p_batch, 1, 1000, 'claim_outbox_events', 'p_batch');
    perform private.require_between(
        p_lease_seconds, 1, 3600, 'claim_outbox_events', 'p_lease_seconds'
    );
    -- Stored as claimed_by.
    perform private.require_identifier(p_worker, 'claim_outbox_events', 'p_worker');

    -- Only events below the oldest transaction still running: a transaction that began earlier
    -- and commits later would otherwise slip an event in before ones already published. Rows
    -- another relay holds are skipped, not waited for; an expired lease is taken over.
    return query
    with candidate as (
        select e.id
        from public.outbox_events as e
        where e.published_at is null
            and e.txid < private.oldest_running_transaction()
            and (e.claimed_until is null or e.claimed_until < pg_catalog.now())
        order by e.txid, e.id
        limit p_batch
        for update skip locked
    )

    update public.outbox_events as e
    set
        claimed_by = coalesce(p_worker, 'relay'),
        claimed_until = pg_catalog.now() + pg_catalog.make_interval(secs => p_lease_seconds)
    from candidate as c
    where e.id = c.id
    returning e.*;
end;
$$;
comment on function public.claim_outbox_events(integer, text, integer) is
'Claims up to p_batch unpublished events for p_worker for p_lease_seconds, oldest first in the '
'order their transactions began; events of transactions still running wait. Several relays get '
'disjoint batches. service_role only.';
revoke all on function public.claim_outbox_events(integer, text, integer)
from public, anon, authenticated;
grant execute on function public.claim_outbox_events(integer, text, integer) to service_role;

create or replace function public.mark_outbox_published(
    p_ids bigint[],
    p_worker text default null
)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    v_marked integer;
begin
    if p_ids is null then
        raise exception 'mark_outbox_published: p_ids must be an array of event ids'
        using errcode = '22023';
    end if;
    perform private.require_identifier(p_worker, 'mark_outbox_published', 'p_worker');
    -- A relay whose lease ran out may no longer own its events: it marks only what it holds.
    update public.outbox_events as e
    set published_at = pg_catalog.now(), claimed_until = null
    where e.id = any(p_ids)
        and e.published_at is null
        and (p_worker is null or e.claimed_by = p_worker);
    get diagnostics v_marked = row_count;
    return v_marked;
end;
$$;
comment on function public.mark_outbox_published(bigint[], text) is
'Marks events published; with p_worker only those that worker holds. Already published ones are '
'left as they are. Returns how many were marked. service_role only.';
revoke all on function public.mark_outbox_published(bigint[], text)
from public, anon, authenticated;
grant execute on function public.mark_outbox_published(bigint[], text) to service_role;

create or replace function private.purge_published_outbox_events(
    p_older_than interval default '7 days'
)
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_deleted integer;
begin
    delete from public.outbox_events as e
    where e.published_at < pg_catalog.now() - p_older_than;
    get diagnostics v_deleted = row_count;
    return v_deleted;
end;
$$;
comment on function private.purge_published_outbox_events(interval) is
'Deletes events published more than p_older_than ago; unpublished ones are never deleted.';

select private.schedule_cron(
    'purge-outbox-events', '41 3 * * *',
    'select private.purge_published_outbox_events()'
);

drop policy if exists outbox_events_service_select on public.outbox_events;
create policy outbox_events_service_select on public.outbox_events
for select to service_role
using (true);
